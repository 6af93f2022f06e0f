using System.Globalization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Imaging;
using Warden.Core.Runtime;
using Warden.Storage;

namespace Warden.Cli.Backfill;

/// <summary>What a worker is told.</summary>
/// <param name="Name">Worker name (recorded with each item).</param>
/// <param name="ExitWhenIdle">Exit after this long with nothing to do and nothing waiting (null: run until stopped).</param>
/// <param name="ItemDelay">A pause before each item (pacing a slow origin; tests use it to kill a worker mid-item).</param>
/// <param name="MaxBytes">Largest item read.</param>
/// <param name="MaxDeliver">Deliveries of one item before it is dead-lettered.</param>
/// <param name="Lease">The queue's lease: a busy worker extends it every third of it, so only a dead worker's items go to another.</param>
/// <param name="Threads">Items of a batch read, hashed and matched at once.</param>
/// <param name="MaxBatch">Most items taken from the queue at once (the batch adapts below it to about a tenth of a second of work).</param>
/// <param name="StatsEvery">Also print the running totals (a <c>stats_so_far</c> line) after a batch when this long has passed since the last (null: only the <c>stats</c> line at exit).</param>
internal sealed record WorkerOptions(string Name, TimeSpan? ExitWhenIdle, TimeSpan ItemDelay, long MaxBytes, int MaxDeliver, TimeSpan Lease, int Threads = 1, int MaxBatch = 64, TimeSpan? StatsEvery = null);

/// <summary>
/// One backfill worker: takes a batch of items from the queue (sized to about a tenth of a second of its work), reads
/// (file, http(s) URL, s3 object), hashes and matches them against the enabled banks (<see cref="WorkerOptions.Threads"/>
/// at once), and in ONE database transaction per batch claims each item's key, logs its signals and records its
/// block-list matches; then acknowledges the batch. A redelivered item (a worker died after committing, before
/// acknowledging) finds its key taken and is only acknowledged, so at-least-once delivery gives each item, log
/// row and match exactly once. Poison items (unreadable, malformed, failing every delivery) go to the
/// dead-letter subject with the reason. The server acts on the recorded matches (RetroactiveService claims each once).
/// Workers also run the tasks of retroactive deltas the server fanned out (<see cref="RetroTasks"/>): every couple
/// of seconds one of them publishes the tasks not yet queued, and a task is searched against its unit of the
/// signal log, its matches recorded and the task marked done in one transaction, so it too takes effect once.
/// </summary>
internal sealed class BackfillWorker(IWorkQueue queue, BankStore store, Storage.SignalLog log, WorkerOptions options, TextWriter output, TextWriter error) : IDisposable
{
    /// <summary>About this much work per batch: per-batch costs (a pull, a query, a commit: well under a millisecond) stay small, and at the end of a queue no worker sits on a long batch while others are idle.</summary>
    private static readonly TimeSpan BatchTarget = TimeSpan.FromMilliseconds(100);

    private readonly BackfillLedger _ledger = new(log);
    private readonly RetroTasks _tasks = new(log);
    private readonly System.Collections.Concurrent.ConcurrentBag<Slot> _slots = [];
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(60) };
    private readonly WorkerStats _stats = new();
    private BankMatcher? _matcher;
    private long _matcherSeq = -1;
    private DateTimeOffset _checkedAt;
    private RetroactiveSearch? _search;
    private DateTimeOffset _publishedAt;
    private DateTimeOffset _pauseCheckedAt;
    private bool _paused;
    private double _secondsPerItem;
    private long _statsAt = WorkerStats.Start();
    private System.Data.Common.DbConnection? _connection;

    /// <summary>Items processed (logged, duplicates and dead letters).</summary>
    public long Processed { get; private set; }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var idleSince = DateTimeOffset.UtcNow;
        while (!cancellationToken.IsCancellationRequested)
        {
            IReadOnlyList<IWorkLease> leases;
            try
            {
                if (Paused())
                {
                    await Task.Delay(1000, cancellationToken).ConfigureAwait(false);
                    idleSince = DateTimeOffset.UtcNow;
                    continue;
                }

                await PublishRetroTasksAsync(cancellationToken).ConfigureAwait(false);
                var fetch = WorkerStats.Start();
                leases = await queue.TakeAsync(BatchSize(), TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
                if (leases.Count > 0)
                {
                    _stats.Add(Stage.Fetch, fetch);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (IsTransient(ex))
            {
                // The broker is restarting or unreachable: the client reconnects by itself; try again shortly.
                error.WriteLine($"warden: worker {options.Name}: queue unavailable ({ex.Message}); retrying");
                await Delay(500, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (leases.Count == 0)
            {
                if (options.ExitWhenIdle is { } idle && DateTimeOffset.UtcNow - idleSince >= idle && await NothingWaitingAsync(cancellationToken).ConfigureAwait(false))
                {
                    break;
                }

                continue;
            }

            var started = WorkerStats.Start();
            await ProcessBatchAsync(leases, cancellationToken).ConfigureAwait(false);
            _stats.BatchEnded(Processed);
            Learn(leases.Count, WorkerStats.Since(started));
            if (options.StatsEvery is { } every && WorkerStats.Since(_statsAt) >= every)
            {
                // Running totals: a long-running worker's steady-state cost per stage is the difference of two lines
                // (the exit line's totals include the JIT tier-up of the first seconds).
                _statsAt = WorkerStats.Start();
                WriteStats("stats_so_far");
            }
            idleSince = DateTimeOffset.UtcNow;
        }

        WriteStats("stats");
        error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warden: worker {options.Name}: stopped after {Processed} items"));
        return WardenCli.Ok;
    }

    public void Dispose()
    {
        _connection?.Dispose();
        _search?.Dispose();
        _matcher?.Dispose();
        foreach (var slot in _slots)
        {
            slot.Hasher.Dispose();
        }

        _http.Dispose();
    }

    /// <summary>
    /// Items to take next: about <see cref="BatchTarget"/> of work at the rate seen so far, at least one per
    /// thread, at most <see cref="WorkerOptions.MaxBatch"/>. Starts at one per thread, so a slow or paced worker
    /// (large videos, --item-delay-ms) does not sit on many items while others are idle.
    /// </summary>
    private int BatchSize()
    {
        var min = Math.Min(options.Threads, options.MaxBatch);
        if (_secondsPerItem <= 0)
        {
            return min;
        }

        return (int)Math.Clamp(BatchTarget.TotalSeconds / _secondsPerItem, min, options.MaxBatch);
    }

    /// <summary>
    /// Running mean of wall time per item, the last batches weighing most. The first batch is left out: it pays
    /// the JIT of every stage and would keep the next batches needlessly small.
    /// </summary>
    private void Learn(int items, TimeSpan elapsed)
    {
        if (_stats.Batches <= 1)
        {
            return;
        }

        var perItem = elapsed.TotalSeconds / items;
        _secondsPerItem = _secondsPerItem <= 0 ? perItem : (0.5 * _secondsPerItem) + (0.5 * perItem);
    }

    private async Task<bool> NothingWaitingAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await queue.StateAsync(cancellationToken).ConfigureAwait(false)).Waiting == 0 && _tasks.ToQueue(1).Count == 0;
        }
        catch (Exception ex) when (IsTransient(ex) || ex is StorageException or System.Data.Common.DbException)
        {
            return false;
        }
    }

    /// <summary>The pause switch, read from the database at most once a second (not once per batch).</summary>
    private bool Paused()
    {
        var now = DateTimeOffset.UtcNow;
        if (now - _pauseCheckedAt >= TimeSpan.FromSeconds(1))
        {
            _paused = _ledger.IsPaused();
            _pauseCheckedAt = now;
        }

        return _paused;
    }

    /// <summary>
    /// Every couple of seconds: publishes the retroactive tasks the server created and nobody queued yet. Several
    /// workers may publish the same task at once; the broker drops the repeat (the task key is the message id), and
    /// a task that still slips through twice is recognised as done.
    /// </summary>
    private async Task PublishRetroTasksAsync(CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        if (now - _publishedAt < TimeSpan.FromSeconds(2))
        {
            return;
        }

        _publishedAt = now;
        var sent = new List<string>();
        try
        {
            foreach (var key in _tasks.ToQueue(1000))
            {
                await queue.EnqueueAsync(WorkItem.Retro(key), cancellationToken).ConfigureAwait(false);
                sent.Add(key);
            }
        }
        catch (Exception ex) when (IsTransient(ex) || ex is StorageException or System.Data.Common.DbException)
        {
            error.WriteLine($"warden: worker {options.Name}: could not queue retroactive tasks ({ex.Message}); retrying");
        }

        if (sent.Count > 0)
        {
            _tasks.MarkQueued(sent);
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warden: worker {options.Name}: queued {sent.Count} retroactive tasks"));
        }
    }

    /// <summary>Extends the leases of a batch every third of the lease while it is worked on.</summary>
    private async Task HeartbeatAsync(IReadOnlyList<IWorkLease> leases, CancellationToken cancellationToken)
    {
        var every = TimeSpan.FromMilliseconds(Math.Max(200, options.Lease.TotalMilliseconds / 3));
        try
        {
            while (true)
            {
                await Task.Delay(every, cancellationToken).ConfigureAwait(false);
                await Task.WhenAll(leases.Select(l => l.InProgressAsync(cancellationToken))).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            // The broker is away: the lease may run out and the item go to another worker, which finds it done.
        }
    }

    private async Task ProcessBatchAsync(IReadOnlyList<IWorkLease> leases, CancellationToken cancellationToken)
    {
        using var beat = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var heartbeat = HeartbeatAsync(leases, beat.Token);
        try
        {
            var content = new List<Pending>(leases.Count);
            var retro = new List<(IWorkLease Lease, WorkItem Item)>();
            foreach (var lease in leases)
            {
                var item = WorkItem.Parse(lease.Data.Span, out var malformed);
                if (item is null)
                {
                    await FinishAsync(lease, null, "dead", () => lease.DeadLetterAsync(malformed!, cancellationToken)).ConfigureAwait(false);
                    continue;
                }

                Event("start", item.Key, j =>
                {
                    j.WriteNumber("delivery", lease.Deliveries);
                    if (item.Kind is { } kind)
                    {
                        j.WriteString("kind", kind);
                    }
                });
                if (item.Kind == WorkItem.RetroKind)
                {
                    retro.Add((lease, item));
                }
                else
                {
                    content.Add(new Pending(lease, item));
                }
            }

            output.Flush();
            foreach (var (lease, item) in retro)
            {
                try
                {
                    await ProcessRetroAsync(lease, item, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (Recoverable(ex, cancellationToken))
                {
                    await FailAsync(lease, item, ex, cancellationToken).ConfigureAwait(false);
                }
            }

            if (content.Count > 0)
            {
                await ProcessContentAsync(content, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: unsettled items are neither acknowledged nor lost; their leases run out and another worker takes them.
        }
        finally
        {
            await beat.CancelAsync().ConfigureAwait(false);
            await heartbeat.ConfigureAwait(false);
            output.Flush();
        }
    }

    /// <summary>
    /// A batch of content items: one query for the keys already done, then read, hash and match (in parallel up to
    /// <see cref="WorkerOptions.Threads"/>), one transaction for every item's claim, log row and matches, then the acks.
    /// </summary>
    private async Task ProcessContentAsync(List<Pending> items, CancellationToken cancellationToken)
    {
        HashSet<string> done;
        var t = WorkerStats.Start();
        try
        {
            done = BackfillLedger.DoneKeys(Connection(), log.Database.Dialect, items.Select(p => p.Item.Key).ToList());
        }
        catch (Exception ex) when (ex is StorageException or System.Data.Common.DbException)
        {
            DropConnection();
            foreach (var p in items)
            {
                await FailAsync(p.Lease, p.Item, ex, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        _stats.Add(Stage.LedgerCheck, t);
        var todo = new List<Pending>(items.Count);
        var acks = new List<(Pending Item, string Outcome)>(items.Count);
        foreach (var p in items)
        {
            if (done.Contains(p.Item.Key))
            {
                acks.Add((p, "duplicate"));
            }
            else
            {
                todo.Add(p);
            }
        }

        if (todo.Count > 0)
        {
            var (matcher, seq) = Matcher();
            if (options.Threads <= 1 || todo.Count == 1)
            {
                foreach (var p in todo)
                {
                    await WorkAsync(p, matcher, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                await Parallel.ForEachAsync(todo, new ParallelOptions { MaxDegreeOfParallelism = options.Threads, CancellationToken = cancellationToken }, (p, ct) => new ValueTask(WorkAsync(p, matcher, ct))).ConfigureAwait(false);
            }

            var hashed = new List<Pending>(todo.Count);
            foreach (var p in todo)
            {
                if (p.Permanent is { } reason)
                {
                    await FinishAsync(p.Lease, p.Item, "dead", () => p.Lease.DeadLetterAsync(p.Item.Source + ": " + reason, cancellationToken)).ConfigureAwait(false);
                }
                else if (p.Failure is { } failure)
                {
                    await FailAsync(p.Lease, p.Item, failure, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    hashed.Add(p);
                }
            }

            if (hashed.Count > 0)
            {
                try
                {
                    Record(hashed, seq);
                    acks.AddRange(hashed.Select(p => (p, p.Matches < 0 ? "duplicate" : "logged")));
                }
                catch (Exception ex) when (ex is StorageException or System.Data.Common.DbException)
                {
                    // Nothing of the batch committed: every item is retried (or dead-lettered on its last delivery).
                    DropConnection();
                    foreach (var p in hashed)
                    {
                        await FailAsync(p.Lease, p.Item, ex, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }

        // Acknowledged only after the commit: a worker killed before this point leaves items that are redelivered
        // and recognised as done by their keys. The acks go out together, not one round trip after another.
        t = WorkerStats.Start();
        await Task.WhenAll(acks.Select(a => Settle(() => a.Item.Lease.AckAsync(cancellationToken)))).ConfigureAwait(false);
        _stats.Add(Stage.Ack, t);
        foreach (var (p, outcome) in acks)
        {
            Done(p.Item, outcome, Math.Max(0, p.Matches));
        }
    }

    /// <summary>Reads, hashes and matches one item into its <see cref="Pending"/> (thread-safe: one slot per call).</summary>
    private async Task WorkAsync(Pending p, BankMatcher matcher, CancellationToken cancellationToken)
    {
        if (options.ItemDelay > TimeSpan.Zero)
        {
            await Task.Delay(options.ItemDelay, cancellationToken).ConfigureAwait(false);
        }

        if (!_slots.TryTake(out var slot))
        {
            slot = new Slot(new ContentHasher(Core.Hashing.Pdq.PdqResize.Fast, ImageLimits.Default with { MaxBytes = options.MaxBytes }));
        }

        try
        {
            var t = WorkerStats.Start();
            var read = await ReadAsync(p.Item.Source, slot, cancellationToken).ConfigureAwait(false);
            _stats.Add(Stage.Read, t);
            if (read.Permanent is { } reason)
            {
                p.Permanent = reason;
                return;
            }

            if (read.Transient is { } problem)
            {
                p.Failure = new IOException(problem);
                return;
            }

            t = WorkerStats.Start();
            p.Hashes = slot.Hasher.HashBytes(read.Data, dihedral: true);
            _stats.Add(Stage.Hash, t);
            t = WorkerStats.Start();
            p.Hits = matcher.Match(p.Hashes.ToSignals());
            _stats.Add(Stage.Match, t);
            p.UploadedAt = read.Modified;
        }
        catch (Exception ex) when (Recoverable(ex, cancellationToken))
        {
            p.Failure = ex;
        }
        finally
        {
            _slots.Add(slot);
        }
    }

    private static bool Recoverable(Exception ex, CancellationToken cancellationToken) =>
        !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
        && ex is IOException or StorageException or System.Data.Common.DbException or HttpRequestException or TaskCanceledException or InvalidDataException or FormatException;

    /// <summary>An item that failed: retried later, or dead-lettered on its last delivery (or when retrying cannot help).</summary>
    private async Task FailAsync(IWorkLease lease, WorkItem item, Exception ex, CancellationToken cancellationToken)
    {
        if (ex is FormatException)
        {
            // A retroactive task whose row names no log unit: the database was edited by hand; retrying cannot help.
            await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync(item.Source + ": " + ex.Message, cancellationToken)).ConfigureAwait(false);
            return;
        }

        if (ex is StorageException or System.Data.Common.DbException)
        {
            // The kept connection may be the broken part (a database restart): the next batch opens a fresh one.
            DropConnection();
        }

        if (lease.Deliveries >= options.MaxDeliver)
        {
            await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync($"{item.Source}: failed {lease.Deliveries} times, last: {ex.Message}", cancellationToken)).ConfigureAwait(false);
        }
        else
        {
            error.WriteLine($"warden: worker {options.Name}: {item.Source}: {ex.Message} (delivery {lease.Deliveries}; retried later)");
            await Settle(() => lease.RetryAsync(cancellationToken)).ConfigureAwait(false);
        }
    }

    /// <summary>A retroactive task: search the delta's entries against the task's unit of the log, record, mark done.</summary>
    private async Task ProcessRetroAsync(IWorkLease lease, WorkItem item, CancellationToken cancellationToken)
    {
        var task = _tasks.Get(item.Source);
        if (task is null)
        {
            await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync(item.Source + ": no such retroactive task in this database", cancellationToken)).ConfigureAwait(false);
            return;
        }

        if (task.Done)
        {
            await FinishAsync(lease, item, "duplicate", () => lease.AckAsync(cancellationToken)).ConfigureAwait(false);
            return;
        }

        if (options.ItemDelay > TimeSpan.Zero)
        {
            await Task.Delay(options.ItemDelay, cancellationToken).ConfigureAwait(false);
        }

        var entries = RetroactivePass.ReadDelta(store, task.After, task.High);
        _search ??= new RetroactiveSearch(log);
        var hits = _search.Search(entries, task.Unit);
        int recorded;
        using (var c = log.Open())
        using (var tx = c.BeginTransaction())
        {
            recorded = RetroactivePass.Record(log, c, tx, hits).Count;
            if (_tasks.TryComplete(c, tx, task.Key, recorded, options.Name))
            {
                tx.Commit();
            }
            else
            {
                tx.Rollback();
                recorded = -1;
            }
        }

        await FinishAsync(lease, item, recorded < 0 ? "duplicate" : "searched", () => lease.AckAsync(cancellationToken), Math.Max(0, recorded)).ConfigureAwait(false);
    }

    /// <summary>
    /// The batch's exactly-once unit, one transaction: per item its log row, its key claimed with the row it
    /// produced, and its block-list matches. An item whose key another delivery already claimed (a redelivery racing
    /// this one) has its row taken back and is marked with Matches = -1; the rest commit together.
    /// </summary>
    private void Record(List<Pending> items, long seq)
    {
        log.EnsurePartition();
        var c = Connection();
        var t = WorkerStats.Start();
        using var tx = c.BeginTransaction();
        _stats.Add(Stage.Commit, t);
        foreach (var p in items)
        {
            var hashes = p.Hashes!;
            var uploadedAt = p.UploadedAt ?? log.Now;
            t = WorkerStats.Start();
            var (day, id) = log.Append(c, tx, SignalLogAdapter.From(hashes), new UploadRecord(p.Item.Uploader, p.Item.Source, null, uploadedAt, "backfill", seq));
            _stats.Add(Stage.LogWrite, t);
            t = WorkerStats.Start();
            var claimed = _ledger.TryComplete(c, tx, p.Item.Key, "logged", options.Name, day, id);
            if (!claimed)
            {
                Storage.SignalLog.Remove(c, tx, day, id);
            }

            _stats.Add(Stage.LedgerWrite, t);
            if (!claimed)
            {
                p.Matches = -1;
                continue;
            }

            t = WorkerStats.Start();
            var n = 0;
            foreach (var h in p.Hits!.Where(h => h.Bank.Kind == BankKind.BlockList && !h.Suppressed).DistinctBy(h => (h.EntryId, h.SignalType)))
            {
                var key = string.Create(CultureInfo.InvariantCulture, $"bf:{p.Item.Key}:{h.EntryId}:{h.SignalType}");
                if (log.RecordMatch(c, tx, new SignalMatch(key, "backfill", day, id, h.Bank.Id, h.EntryId, h.SignalType, h.Distance, p.Item.Uploader, p.Item.Source, uploadedAt, hashes.Exact.Sha256Hex)))
                {
                    n++;
                }
            }

            p.Matches = n;
            _stats.Add(Stage.MatchWrite, t);
        }

        t = WorkerStats.Start();
        tx.Commit();
        _stats.Add(Stage.Commit, t);
    }

    /// <summary>
    /// The worker's one database connection for the ledger check and the batch's transaction: opening a pooled
    /// connection per statement costs more than the statements (SQLite reruns its pragmas on every open).
    /// </summary>
    private System.Data.Common.DbConnection Connection() => _connection ??= log.Open();

    private void DropConnection()
    {
        _connection?.Dispose();
        _connection = null;
    }

    private (BankMatcher Matcher, long Seq) Matcher()
    {
        // The bank change number is checked every couple of seconds; the matcher is rebuilt when banks changed.
        var now = DateTimeOffset.UtcNow;
        if (_matcher is null || now - _checkedAt > TimeSpan.FromSeconds(2))
        {
            _checkedAt = now;
            if (_matcher is null || store.ChangeSequence() != _matcherSeq)
            {
                var banks = store.ListBanks();
                var matcher = new BankMatcher(banks);
                try
                {
                    // The snapshot's change number goes with each log row: retroactive matching searches only entries after it.
                    _matcherSeq = store.ReadIndex(e => matcher.Add(e.Id, e.BankId, e.SignalType, e.Signal));
                }
                catch
                {
                    matcher.Dispose();
                    throw;
                }

                _matcher?.Dispose();
                _matcher = matcher;
            }
        }

        return (_matcher, _matcherSeq);
    }

    private async Task<(ArraySegment<byte> Data, DateTimeOffset? Modified, string? Permanent, string? Transient)> ReadAsync(string source, Slot slot, CancellationToken cancellationToken)
    {
        if (source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(source, UriKind.Absolute, out var uri))
            {
                return (default, null, "not a valid URL", null);
            }

            using var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status >= 500 || status == 429)
            {
                return (default, null, null, $"HTTP {status}");
            }

            if (status != 200)
            {
                return (default, null, $"HTTP {status}", null);
            }

            if (response.Content.Headers.ContentLength > options.MaxBytes)
            {
                return (default, null, $"larger than {options.MaxBytes} bytes", null);
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var data = await BoundedRead.ReadAllAsync(body, options.MaxBytes, cancellationToken).ConfigureAwait(false);
            return data is null ? (default, null, $"larger than {options.MaxBytes} bytes", null) : (data, response.Content.Headers.LastModified, null, null);
        }

        if (source.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            var (bytes, modified, permanent, transient) = await S3Source.ReadAsync(source, options.MaxBytes, cancellationToken).ConfigureAwait(false);
            return (bytes is null ? default : new ArraySegment<byte>(bytes), modified, permanent, transient);
        }

        try
        {
            // A local file: read whole into the slot's reused buffer (as 'warden scan' does), synchronously: no
            // fresh array per item (large ones would each be a large-object allocation) and no thread hop.
            // Only a regular file: a FIFO or device at the item's path would hold this worker (and, redelivered,
            // every other) for ever; refused at once as a permanent failure (dead letter with the reason).
            using var handle = RegularFile.OpenRead(source, FileOptions.SequentialScan);
            var size = RandomAccess.GetLength(handle);
            if (size > options.MaxBytes)
            {
                return (default, null, $"larger than {options.MaxBytes} bytes", null);
            }

            var data = slot.ReadWhole(handle, size, options.MaxBytes);
            return data is { } d ? (d, File.GetLastWriteTimeUtc(handle), null, null) : (default, null, $"larger than {options.MaxBytes} bytes", null);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return (default, null, "no such file", null);
        }
        catch (UnauthorizedAccessException ex)
        {
            return (default, null, ex.Message, null);
        }
        catch (NotRegularFileException ex)
        {
            return (default, null, ex.Message, null);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return (default, null, "not a usable path: " + ex.Message, null);
        }
    }

    /// <summary>Settles one item (ack, dead letter) and reports it done.</summary>
    private async Task FinishAsync(IWorkLease lease, WorkItem? item, string outcome, Func<Task> settle, int matches = 0)
    {
        _ = lease;
        await Settle(settle).ConfigureAwait(false);
        Done(item, outcome, matches);
    }

    private void Done(WorkItem? item, string outcome, int matches)
    {
        Processed++;
        Event("done", item?.Key ?? "", j =>
        {
            j.WriteString("outcome", outcome);
            j.WriteNumber("matches", matches);
        });
    }

    private async Task Settle(Func<Task> settle)
    {
        try
        {
            await settle().ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            // An ack lost to a broker restart: the item comes back and is recognised as done by its key.
            error.WriteLine($"warden: worker {options.Name}: could not settle an item ({ex.Message}); it will be redelivered and skipped");
        }
    }

    /// <summary>One JSON line; flushed per batch phase (after the starts, after the batch), not per line.</summary>
    private void Event(string name, string key, Action<System.Text.Json.Utf8JsonWriter> more)
    {
        var t = WorkerStats.Start();
        lock (output)
        {
            CommonOptions.WriteJsonLine(output, j =>
            {
                j.WriteString("event", name);
                j.WriteNumber("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                j.WriteString("worker", options.Name);
                j.WriteString("key", key);
                more(j);
            });
        }

        _stats.Add(Stage.Events, t);
    }

    /// <summary>
    /// At exit (and with <see cref="WorkerOptions.StatsEvery"/> every so often), one JSON line: items, batches, and
    /// for the items after the first batch where the worker's wall time went per stage (summed over its threads) and
    /// the process's CPU time, all totals so far, for the benchmark and for tuning.
    /// </summary>
    private void WriteStats(string name)
    {
        lock (output)
        {
            CommonOptions.WriteJsonLine(output, j =>
            {
                j.WriteString("event", name);
                j.WriteNumber("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                j.WriteString("worker", options.Name);
                j.WriteNumber("items", Processed);
                j.WriteNumber("batches", _stats.Batches);
                j.WriteNumber("threads", options.Threads);
                j.WriteNumber("busy_items", _stats.BusyItems);
                j.WriteNumber("busy_cpu_ms", Math.Round(_stats.BusyCpu.TotalMilliseconds, 1));
                // Managed allocation and collections so far (whole process): with the CPU per item they tell a GC or
                // cache effect (several worker processes each sweeping their own gen0) from scheduling.
                j.WriteNumber("allocated_mb", Math.Round(GC.GetTotalAllocatedBytes() / 1048576.0, 1));
                j.WriteNumber("gc0", GC.CollectionCount(0));
                j.WriteNumber("gc1", GC.CollectionCount(1));
                j.WriteNumber("gc2", GC.CollectionCount(2));
                j.WriteStartObject("stages_ms");
                foreach (var stage in Enum.GetValues<Stage>())
                {
                    j.WriteNumber(WorkerStats.Name(stage), Math.Round(_stats.Milliseconds(stage), 1));
                }

                j.WriteEndObject();
            });
            output.Flush();
        }
    }

    private static async Task Delay(int ms, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(ms, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal static bool IsTransient(Exception ex) =>
        ex is NatsException or NatsJSException or TimeoutException or IOException or System.Net.Sockets.SocketException or InvalidOperationException
        || (ex is OperationCanceledException && ex is not TaskCanceledException { CancellationToken.IsCancellationRequested: true });
}

/// <summary>A content item of a batch and what became of it.</summary>
internal sealed class Pending(IWorkLease lease, WorkItem item)
{
    public IWorkLease Lease { get; } = lease;

    public WorkItem Item { get; } = item;

    public ContentHashes? Hashes { get; set; }

    public IReadOnlyList<MatchHit>? Hits { get; set; }

    public DateTimeOffset? UploadedAt { get; set; }

    /// <summary>Why it can never be processed (dead-lettered).</summary>
    public string? Permanent { get; set; }

    /// <summary>Why it failed this time (retried).</summary>
    public Exception? Failure { get; set; }

    /// <summary>Matches recorded; -1 when another delivery had already done it.</summary>
    public int Matches { get; set; }
}

/// <summary>One hashing thread's hasher and read buffer, reused from item to item.</summary>
internal sealed class Slot(ContentHasher hasher)
{
    private byte[] _buffer = [];

    public ContentHasher Hasher { get; } = hasher;

    /// <summary>Reads a file whole into the reused buffer; null when it turns out longer than <paramref name="max"/>.</summary>
    public ArraySegment<byte>? ReadWhole(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long size, long max)
    {
        var total = 0;
        while (true)
        {
            if (total == _buffer.Length)
            {
                // One byte over the expected size, so that reaching the end needs no second buffer; doubled when the
                // file grows while read, up to one byte over the limit.
                var capacity = Math.Min(total == 0 ? size + 1 : Math.Max(size + 1, (long)total * 2), max + 1);
                if (capacity <= total || capacity > Array.MaxLength)
                {
                    return null;
                }

                var grown = GC.AllocateUninitializedArray<byte>((int)capacity);
                _buffer.AsSpan(0, total).CopyTo(grown);
                _buffer = grown;
            }

            var read = RandomAccess.Read(handle, _buffer.AsSpan(total), total);
            if (read == 0)
            {
                return total > max ? null : (ArraySegment<byte>?)new ArraySegment<byte>(_buffer, 0, total);
            }

            total += read;
        }
    }
}

/// <summary>The stages of a worker's time (see <see cref="WorkerStats"/>).</summary>
internal enum Stage
{
    Fetch,
    LedgerCheck,
    Read,
    Hash,
    Match,
    LogWrite,
    LedgerWrite,
    MatchWrite,
    Commit,
    Ack,
    Events,
}

/// <summary>Time per stage, summed over a worker's threads (Stopwatch ticks; thread-safe).</summary>
internal sealed class WorkerStats
{
    private readonly long[] _ticks = new long[Enum.GetValues<Stage>().Length];
    private TimeSpan? _firstCpu;
    private TimeSpan _lastCpu;
    private long _firstItems;

    public long Batches { get; private set; }

    /// <summary>Process CPU time from the end of the first batch (its JIT and warm-up left out) to the end of the last.</summary>
    public TimeSpan BusyCpu => _firstCpu is { } first ? _lastCpu - first : TimeSpan.Zero;

    /// <summary>Items finished after the first batch (those <see cref="BusyCpu"/> covers).</summary>
    public long BusyItems { get; private set; }

    public static long Start() => System.Diagnostics.Stopwatch.GetTimestamp();

    public static TimeSpan Since(long start) => System.Diagnostics.Stopwatch.GetElapsedTime(start);

    public static string Name(Stage stage) => stage switch
    {
        Stage.Fetch => "fetch",
        Stage.LedgerCheck => "ledger_check",
        Stage.Read => "read",
        Stage.Hash => "hash",
        Stage.Match => "match",
        Stage.LogWrite => "log_write",
        Stage.LedgerWrite => "ledger_write",
        Stage.MatchWrite => "match_write",
        Stage.Commit => "begin_commit",
        Stage.Ack => "ack",
        _ => "events",
    };

    public void Add(Stage stage, long start) => Interlocked.Add(ref _ticks[(int)stage], System.Diagnostics.Stopwatch.GetTimestamp() - start);

    public double Milliseconds(Stage stage) => Interlocked.Read(ref _ticks[(int)stage]) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;

    /// <summary>Marks a batch's end; <paramref name="processed"/> is the worker's item count so far.</summary>
    public void BatchEnded(long processed)
    {
        Batches++;
        var now = Environment.CpuUsage.TotalTime;
        if (_firstCpu is null)
        {
            // The first batch pays the JIT and first-use costs of every stage: the figures start after it.
            _firstCpu = now;
            _firstItems = processed;
            Array.Clear(_ticks);
        }

        _lastCpu = now;
        BusyItems = processed - _firstItems;
    }
}
