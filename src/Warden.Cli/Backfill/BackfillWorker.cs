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
internal sealed record WorkerOptions(string Name, TimeSpan? ExitWhenIdle, TimeSpan ItemDelay, long MaxBytes, int MaxDeliver);

/// <summary>
/// One backfill worker: takes items from the queue one at a time, reads (file, http(s) URL, s3 object),
/// hashes, matches against the enabled banks, and in ONE database transaction claims the item's key, logs
/// its signals and records its block-list matches; then acknowledges. A redelivered item (a worker died after
/// committing, before acknowledging) finds its key taken and is only acknowledged, so at-least-once delivery
/// gives each item, log row and match exactly once. Poison items (unreadable, malformed, failing every
/// delivery) go to the dead-letter subject with the reason. The server acts on the recorded matches
/// (RetroactiveService claims each once).
/// </summary>
internal sealed class BackfillWorker(IWorkQueue queue, BankStore store, Storage.SignalLog log, WorkerOptions options, TextWriter output, TextWriter error) : IDisposable
{
    private readonly BackfillLedger _ledger = new(log);
    private readonly ContentHasher _hasher = new(Core.Hashing.Pdq.PdqResize.Fast, ImageLimits.Default with { MaxBytes = options.MaxBytes });
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(60) };
    private BankMatcher? _matcher;
    private long _matcherSeq = -1;
    private DateTimeOffset _checkedAt;

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
                if (_ledger.IsPaused())
                {
                    await Task.Delay(1000, cancellationToken).ConfigureAwait(false);
                    idleSince = DateTimeOffset.UtcNow;
                    continue;
                }

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
        _matcher?.Dispose();
        _hasher.Dispose();
        _http.Dispose();
    }

    private async Task<bool> NothingWaitingAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await queue.StateAsync(cancellationToken).ConfigureAwait(false)).Waiting == 0;
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            return false;
        }
    }

    private async Task ProcessAsync(IWorkLease lease, CancellationToken cancellationToken)
    {
        var item = WorkItem.Parse(lease.Data.Span, out var malformed);
        if (item is null)
        {
            await FinishAsync(lease, null, "dead", () => lease.DeadLetterAsync(malformed!, cancellationToken), cancellationToken).ConfigureAwait(false);
            return;
        }

        Event("start", item.Key, j => j.WriteNumber("delivery", lease.Deliveries));
        try
        {
            if (_ledger.IsDone(item.Key))
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
        catch (Exception ex) when (ex is IOException or StorageException or System.Data.Common.DbException or HttpRequestException or TaskCanceledException or InvalidDataException)
        {
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
        using var c = log.Open();
        using var tx = c.BeginTransaction();
        if (!_ledger.TryComplete(c, tx, item.Key, "logged", options.Name))
        {
            tx.Rollback();
            return -1;
        }

        var (day, id) = log.Append(c, tx, SignalLogAdapter.From(hashes), new UploadRecord(item.Uploader, item.Source, null, uploadedAt, "backfill", seq));
        BackfillLedger.SetRow(c, tx, item.Key, day, id);
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
