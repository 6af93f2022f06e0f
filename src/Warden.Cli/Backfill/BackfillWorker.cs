using System.Globalization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Imaging;
using Warden.Storage;

namespace Warden.Cli.Backfill;

/// <summary>What a worker is told.</summary>
/// <param name="Name">Worker name (recorded with each item).</param>
/// <param name="ExitWhenIdle">Exit after this long with nothing to do and nothing waiting (null: run until stopped).</param>
/// <param name="ItemDelay">A pause before each item (pacing a slow origin; tests use it to kill a worker mid-item).</param>
/// <param name="MaxBytes">Largest item read.</param>
/// <param name="MaxDeliver">Deliveries of one item before it is dead-lettered.</param>
/// <param name="Lease">The queue's lease: a busy worker extends it every third of it, so only a dead worker's items go to another.</param>
internal sealed record WorkerOptions(string Name, TimeSpan? ExitWhenIdle, TimeSpan ItemDelay, long MaxBytes, int MaxDeliver, TimeSpan Lease);

/// <summary>
/// One backfill worker: takes items from the queue one at a time, reads (file, http(s) URL, s3 object),
/// hashes, matches against the enabled banks, and in ONE database transaction claims the item's key, logs
/// its signals and records its block-list matches; then acknowledges. A redelivered item (a worker died after
/// committing, before acknowledging) finds its key taken and is only acknowledged, so at-least-once delivery
/// gives each item, log row and match exactly once. Poison items (unreadable, malformed, failing every
/// delivery) go to the dead-letter subject with the reason. The server acts on the recorded matches
/// (RetroactiveService claims each once).
/// Workers also run the tasks of retroactive deltas the server fanned out (<see cref="RetroTasks"/>): every couple
/// of seconds one of them publishes the tasks not yet queued, and a task is searched against its unit of the
/// signal log, its matches recorded and the task marked done in one transaction, so it too takes effect once.
/// </summary>
internal sealed class BackfillWorker(IWorkQueue queue, BankStore store, Storage.SignalLog log, WorkerOptions options, TextWriter output, TextWriter error) : IDisposable
{
    private readonly BackfillLedger _ledger = new(log);
    private readonly RetroTasks _tasks = new(log);
    private readonly ContentHasher _hasher = new(Core.Hashing.Pdq.PdqResize.Fast, ImageLimits.Default with { MaxBytes = options.MaxBytes });
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(60) };
    private BankMatcher? _matcher;
    private long _matcherSeq = -1;
    private DateTimeOffset _checkedAt;
    private RetroactiveSearch? _search;
    private DateTimeOffset _publishedAt;
    private DateTimeOffset _pauseCheckedAt;
    private bool _paused;
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
                leases = await queue.TakeAsync(1, TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
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

            foreach (var lease in leases)
            {
                await ProcessAsync(lease, cancellationToken).ConfigureAwait(false);
            }

            idleSince = DateTimeOffset.UtcNow;
        }

        error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warden: worker {options.Name}: stopped after {Processed} items"));
        return WardenCli.Ok;
    }

    public void Dispose()
    {
        _connection?.Dispose();
        _search?.Dispose();
        _matcher?.Dispose();
        _hasher.Dispose();
        _http.Dispose();
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

    /// <summary>The pause switch, read from the database at most once a second (not once per item).</summary>
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

    /// <summary>Extends the lease every third of it while the item is worked on.</summary>
    private async Task HeartbeatAsync(IWorkLease lease, CancellationToken cancellationToken)
    {
        var every = TimeSpan.FromMilliseconds(Math.Max(200, options.Lease.TotalMilliseconds / 3));
        try
        {
            while (true)
            {
                await Task.Delay(every, cancellationToken).ConfigureAwait(false);
                await lease.InProgressAsync(cancellationToken).ConfigureAwait(false);
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

    private async Task ProcessAsync(IWorkLease lease, CancellationToken cancellationToken)
    {
        using var beat = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var heartbeat = HeartbeatAsync(lease, beat.Token);
        try
        {
            await ProcessLeasedAsync(lease, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await beat.CancelAsync().ConfigureAwait(false);
            await heartbeat.ConfigureAwait(false);
        }
    }

    /// <summary>A retroactive task: search the delta's entries against the task's unit of the log, record, mark done.</summary>
    private async Task ProcessRetroAsync(IWorkLease lease, WorkItem item, CancellationToken cancellationToken)
    {
        var task = _tasks.Get(item.Source);
        if (task is null)
        {
            await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync(item.Source + ": no such retroactive task in this database", cancellationToken), cancellationToken).ConfigureAwait(false);
            return;
        }

        if (task.Done)
        {
            await FinishAsync(lease, item, "duplicate", () => lease.AckAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
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

        await FinishAsync(lease, item, recorded < 0 ? "duplicate" : "searched", () => lease.AckAsync(cancellationToken), cancellationToken, Math.Max(0, recorded)).ConfigureAwait(false);
    }

    private async Task ProcessLeasedAsync(IWorkLease lease, CancellationToken cancellationToken)
    {
        var item = WorkItem.Parse(lease.Data.Span, out var malformed);
        if (item is null)
        {
            await FinishAsync(lease, null, "dead", () => lease.DeadLetterAsync(malformed!, cancellationToken), cancellationToken).ConfigureAwait(false);
            return;
        }

        Event("start", item.Key, j =>
        {
            j.WriteNumber("delivery", lease.Deliveries);
            if (item.Kind is { } kind)
            {
                j.WriteString("kind", kind);
            }
        });
        try
        {
            if (item.Kind == WorkItem.RetroKind)
            {
                await ProcessRetroAsync(lease, item, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (BackfillLedger.IsDone(Connection(), item.Key))
            {
                await FinishAsync(lease, item, "duplicate", () => lease.AckAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
                return;
            }

            if (options.ItemDelay > TimeSpan.Zero)
            {
                await Task.Delay(options.ItemDelay, cancellationToken).ConfigureAwait(false);
            }

            var read = await ReadAsync(item.Source, cancellationToken).ConfigureAwait(false);
            if (read.Permanent is { } reason)
            {
                await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync(item.Source + ": " + reason, cancellationToken), cancellationToken).ConfigureAwait(false);
                return;
            }

            if (read.Transient is { } problem)
            {
                throw new IOException(problem);
            }

            var hashes = _hasher.HashStream(new MemoryStream(read.Data!, writable: false), dihedral: true);
            var (matcher, seq) = Matcher();
            var hits = matcher.Match(hashes.ToSignals());
            var matches = Record(item, hashes, hits, read.Modified ?? log.Now, seq);
            await FinishAsync(lease, item, matches < 0 ? "duplicate" : "logged", () => lease.AckAsync(cancellationToken), cancellationToken, Math.Max(0, matches)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: the item is neither acknowledged nor lost; its lease runs out and another worker takes it.
        }
        catch (FormatException ex)
        {
            // A retroactive task whose row names no log unit: the database was edited by hand; retrying cannot help.
            await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync(item.Source + ": " + ex.Message, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or StorageException or System.Data.Common.DbException or HttpRequestException or TaskCanceledException or InvalidDataException)
        {
            if (ex is StorageException or System.Data.Common.DbException)
            {
                // The kept connection may be the broken part (a database restart): the next item opens a fresh one.
                _connection?.Dispose();
                _connection = null;
            }

            if (lease.Deliveries >= options.MaxDeliver)
            {
                await FinishAsync(lease, item, "dead", () => lease.DeadLetterAsync($"{item.Source}: failed {lease.Deliveries} times, last: {ex.Message}", cancellationToken), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                error.WriteLine($"warden: worker {options.Name}: {item.Source}: {ex.Message} (delivery {lease.Deliveries}; retried later)");
                await Settle(() => lease.RetryAsync(cancellationToken)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The item's exactly-once unit; returns the matches recorded, or -1 when another delivery already did it.</summary>
    private int Record(WorkItem item, ContentHashes hashes, IReadOnlyList<MatchHit> hits, DateTimeOffset uploadedAt, long seq)
    {
        log.EnsurePartition();
        var c = Connection();
        using var tx = c.BeginTransaction();
        var (day, id) = log.Append(c, tx, SignalLogAdapter.From(hashes), new UploadRecord(item.Uploader, item.Source, null, uploadedAt, "backfill", seq));

        // The key is claimed with the row it produced, in one statement; taken already: undo the row (a redelivery).
        if (!_ledger.TryComplete(c, tx, item.Key, "logged", options.Name, day, id))
        {
            tx.Rollback();
            return -1;
        }

        var n = 0;
        foreach (var h in hits.Where(h => h.Bank.Kind == BankKind.BlockList && !h.Suppressed).DistinctBy(h => (h.EntryId, h.SignalType)))
        {
            var key = string.Create(CultureInfo.InvariantCulture, $"bf:{item.Key}:{h.EntryId}:{h.SignalType}");
            if (log.RecordMatch(c, tx, new SignalMatch(key, "backfill", day, id, h.Bank.Id, h.EntryId, h.SignalType, h.Distance, item.Uploader, item.Source, uploadedAt, hashes.Exact.Sha256Hex)))
            {
                n++;
            }
        }

        tx.Commit();
        return n;
    }

    /// <summary>
    /// The worker's one database connection for the per-item ledger check and transaction: opening a pooled
    /// connection per statement costs more than the statements (SQLite reruns its pragmas on every open).
    /// </summary>
    private System.Data.Common.DbConnection Connection() => _connection ??= log.Open();

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

    private async Task<(byte[]? Data, DateTimeOffset? Modified, string? Permanent, string? Transient)> ReadAsync(string source, CancellationToken cancellationToken)
    {
        if (source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(source, UriKind.Absolute, out var uri))
            {
                return (null, null, "not a valid URL", null);
            }

            using var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status >= 500 || status == 429)
            {
                return (null, null, null, $"HTTP {status}");
            }

            if (status != 200)
            {
                return (null, null, $"HTTP {status}", null);
            }

            if (response.Content.Headers.ContentLength > options.MaxBytes)
            {
                return (null, null, $"larger than {options.MaxBytes} bytes", null);
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var data = await ReadLimitedAsync(body, cancellationToken).ConfigureAwait(false);
            return data is null ? (null, null, $"larger than {options.MaxBytes} bytes", null) : (data, response.Content.Headers.LastModified, null, null);
        }

        if (source.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            return await S3Source.ReadAsync(source, options.MaxBytes, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            var info = new FileInfo(source);
            if (!info.Exists)
            {
                return (null, null, "no such file", null);
            }

            if (info.Length > options.MaxBytes)
            {
                return (null, null, $"larger than {options.MaxBytes} bytes", null);
            }

            return (await File.ReadAllBytesAsync(source, cancellationToken).ConfigureAwait(false), info.LastWriteTimeUtc, null, null);
        }
        catch (UnauthorizedAccessException ex)
        {
            return (null, null, ex.Message, null);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return (null, null, "not a usable path: " + ex.Message, null);
        }
    }

    private async Task<byte[]?> ReadLimitedAsync(Stream body, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > options.MaxBytes)
            {
                return null;
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    private async Task FinishAsync(IWorkLease lease, WorkItem? item, string outcome, Func<Task> settle, CancellationToken cancellationToken, int matches = 0)
    {
        _ = cancellationToken;
        await Settle(settle).ConfigureAwait(false);
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

    private void Event(string name, string key, Action<System.Text.Json.Utf8JsonWriter> more)
    {
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
