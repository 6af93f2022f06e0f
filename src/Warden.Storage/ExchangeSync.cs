using System.Diagnostics;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Exchanges;

namespace Warden.Storage;

/// <summary>What one sync pass did.</summary>
/// <param name="Entries">Live entries fetched.</param>
/// <param name="Tombstones">Deleted entries fetched.</param>
/// <param name="Filtered">Entries left out by the config.</param>
/// <param name="Unsupported">Fingerprints of types Warden does not match, by type.</param>
/// <param name="Errors">Malformed entries skipped.</param>
/// <param name="Commits">Database commits (records plus checkpoint).</param>
/// <param name="CheckpointTime">Where the checkpoint stands now.</param>
/// <param name="Elapsed">How long the pass took.</param>
public sealed record ExchangeSyncResult(long Entries, long Tombstones, long Filtered, IReadOnlyDictionary<string, long> Unsupported, long Errors, long Commits, DateTimeOffset? CheckpointTime, TimeSpan Elapsed);

/// <summary>Where a running sync stands (for progress lines).</summary>
/// <param name="Entries">Live entries so far.</param>
/// <param name="Tombstones">Tombstones so far.</param>
/// <param name="CheckpointTime">The committed checkpoint's time.</param>
/// <param name="Elapsed">Time since the start.</param>
public readonly record struct ExchangeSyncProgress(long Entries, long Tombstones, DateTimeOffset? CheckpointTime, TimeSpan Elapsed);

/// <summary>
/// Runs one sync pass of an exchange into its bank: takes the exchange's lease (one fetcher at a time across nodes
/// and processes), reads deltas from the stored checkpoint, commits records in batches (like HMA, which commits
/// every 5,000 updates, but larger: a batch is one transaction), and stores each batch's checkpoint only after its
/// records are committed. A pass killed anywhere resumes from the last stored checkpoint; records replayed from
/// there are idempotent (an entry is always re-sent whole and in its latest state), so nothing is lost or doubled.
/// </summary>
public sealed class ExchangeSync
{
    private readonly BankStore _banks;
    private readonly ExchangeStore _exchanges;

    public ExchangeSync(BankStore banks, ExchangeStore exchanges)
    {
        _banks = banks;
        _exchanges = exchanges;
    }

    /// <summary>Records buffered before a commit.</summary>
    public int CommitRecords { get; init; } = 100_000;

    /// <summary>Longest time between commits while records arrive.</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a lease lasts without renewal.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Called after each commit.</summary>
    public Action<ExchangeSyncProgress>? Progress { get; init; }

    /// <summary>
    /// One pass for <paramref name="exchange"/>, as <paramref name="owner"/>. Throws <see cref="ExchangeLeaseException"/>
    /// when another fetcher holds the lease, <see cref="ExchangeException"/> when the exchange fails (the progress
    /// committed so far stays). Status is recorded either way; the next scheduled fetch is set from
    /// <paramref name="nextOnSuccess"/> or <paramref name="nextOnFailure"/> (given the error).
    /// </summary>
    public async Task<ExchangeSyncResult> RunAsync(
        Exchange exchange,
        ExchangeRuntime runtime,
        string owner,
        CancellationToken cancellationToken,
        Func<DateTimeOffset>? nextOnSuccess = null,
        Func<Exception, DateTimeOffset>? nextOnFailure = null)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(runtime);
        if (!_exchanges.TryAcquireLease(exchange.Id, owner, LeaseTtl))
        {
            var holder = _exchanges.State(exchange.Id).LeaseOwner;
            throw new ExchangeLeaseException($"Exchange '{exchange.Name}' is being fetched by {holder ?? "another fetcher"}; try again when it finishes.");
        }

        using var renew = new CancellationTokenSource();
        var renewer = RenewAsync(exchange.Id, owner, renew.Token);
        try
        {
            var result = await FetchAsync(exchange, runtime, owner, cancellationToken);
            _exchanges.CompleteFetch(exchange.Id, owner, true, true, null, nextOnSuccess?.Invoke() ?? DateTimeOffset.UtcNow.AddSeconds(exchange.IntervalSeconds));
            return result;
        }
        catch (Exception ex) when (ex is ExchangeException or StorageException or ExchangeConfigException or HttpRequestException or OperationCanceledException)
        {
            var message = ex is OperationCanceledException ? "cancelled" : ex.Message;
            _exchanges.CompleteFetch(exchange.Id, owner, false, false, message, nextOnFailure?.Invoke(ex) ?? DateTimeOffset.UtcNow.AddSeconds(exchange.IntervalSeconds));
            throw;
        }
        finally
        {
            await renew.CancelAsync();
            await renewer;
        }
    }

    private async Task RenewAsync(long id, string owner, CancellationToken token)
    {
        try
        {
            while (true)
            {
                await Task.Delay(LeaseTtl / 3, token);
                _exchanges.RenewLease(id, owner, LeaseTtl);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (StorageException)
        {
            // The next commit checks the lease and stops the pass if it was lost.
        }
    }

    private static string SnapshotKey(string? externalId, string signalType, string signal) =>
        string.IsNullOrEmpty(externalId) ? signalType + "\n" + signal : externalId;

    private async Task<ExchangeSyncResult> FetchAsync(Exchange exchange, ExchangeRuntime runtime, string owner, CancellationToken cancellationToken)
    {
        var type = ExchangeTypes.Get(exchange.Type);
        using var config = JsonDocument.Parse(exchange.Config);
        var fetcher = type.CreateFetcher(config.RootElement, runtime);
        var state = _exchanges.State(exchange.Id);
        var clock = Stopwatch.StartNew();
        var source = "exchange:" + exchange.Name;
        var buffer = new List<BankEntryRecord>(CommitRecords + 2000);
        var unsupported = new Dictionary<string, long>(StringComparer.Ordinal);
        long entries = 0, tombstones = 0, filtered = 0, errors = 0, commits = 0;
        long pendingEntries = 0, pendingTombstones = 0, pendingUnsupported = 0, pendingErrors = 0;
        string? pendingCheckpoint = null;
        var checkpointTime = state.CheckpointTime;
        var lastCommit = clock.Elapsed;

        void Commit()
        {
            if (pendingCheckpoint is null)
            {
                return;
            }

            if (buffer.Count > 0)
            {
                // One transaction per commit: the checkpoint after it covers exactly these records, and a larger
                // transaction writes each randomly keyed index page fewer times (BankStore.Import).
                _banks.Import(exchange.BankId, buffer, source, transactionRecords: buffer.Count);
            }

            // Only now, with the records committed, does the checkpoint move.
            var time = fetcher.ProgressOf(pendingCheckpoint);
            if (!_exchanges.CommitProgress(exchange.Id, owner, pendingCheckpoint, time, pendingEntries, pendingTombstones, pendingUnsupported, pendingErrors))
            {
                throw new ExchangeLeaseException($"Exchange '{exchange.Name}': lost the fetch lease (another fetcher took over); stopping.");
            }

            checkpointTime = time;
            buffer.Clear();
            pendingCheckpoint = null;
            pendingEntries = pendingTombstones = pendingUnsupported = pendingErrors = 0;
            commits++;
            lastCommit = clock.Elapsed;
            Progress?.Invoke(new ExchangeSyncProgress(entries, tombstones, checkpointTime, clock.Elapsed));
        }

        HashSet<string>? listed = null;
        await foreach (var delta in fetcher.FetchAsync(state.Checkpoint, cancellationToken))
        {
            buffer.AddRange(delta.Records);
            if (delta.Snapshot)
            {
                listed ??= new HashSet<string>(StringComparer.Ordinal);
                foreach (var r in delta.Records)
                {
                    listed.Add(SnapshotKey(r.ExternalId, r.SignalType, r.Signal));
                }
            }

            pendingCheckpoint = delta.Checkpoint;
            entries += delta.Entries;
            tombstones += delta.Tombstones;
            filtered += delta.Filtered;
            errors += delta.Errors;
            pendingEntries += delta.Entries;
            pendingTombstones += delta.Tombstones;
            pendingErrors += delta.Errors;
            foreach (var (k, v) in delta.Unsupported)
            {
                unsupported[k] = unsupported.GetValueOrDefault(k) + v;
                pendingUnsupported += v;
            }

            if (delta.SnapshotEnd)
            {
                // What the listing no longer carries is tombstoned in the same commit as its last records, and
                // only then does the checkpoint (the listing's ETag) move: a pass cut short re-reads the listing.
                var stale = _banks.ExportEntries(exchange.BankId)
                    .Where(e => e.Source == source && !listed!.Contains(SnapshotKey(e.ExternalId, e.SignalType, e.Signal)))
                    .Select(e => new BankEntryRecord(e.SignalType, e.Signal, new Dictionary<string, string>(), ExternalId: e.ExternalId, Deleted: true))
                    .ToList();
                buffer.AddRange(stale);
                tombstones += stale.Count;
                pendingTombstones += stale.Count;
                listed = null;
                Commit();
            }
            else if (buffer.Count >= CommitRecords || clock.Elapsed - lastCommit >= CommitInterval)
            {
                Commit();
            }
        }

        Commit();
        return new ExchangeSyncResult(entries, tombstones, filtered, unsupported, errors, commits, checkpointTime, clock.Elapsed);
    }
}

/// <summary>Another fetcher holds (or took) the exchange's lease.</summary>
public sealed class ExchangeLeaseException : Exception
{
    public ExchangeLeaseException()
    {
    }

    public ExchangeLeaseException(string message)
        : base(message)
    {
    }

    public ExchangeLeaseException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
