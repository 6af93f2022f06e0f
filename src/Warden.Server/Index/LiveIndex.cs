using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Core.Banks;
using Warden.Server.Data;
using Warden.Storage;

namespace Warden.Server.Index;

/// <summary>The matcher and what goes with it, swapped as a whole when banks change.</summary>
/// <param name="Matcher">Indexes of the enabled banks (entries are added and removed in place).</param>
/// <param name="Banks">Every bank by id, enabled or not.</param>
/// <param name="BuiltAt">When this matcher was built.</param>
public sealed record IndexState(BankMatcher Matcher, IReadOnlyDictionary<long, Bank> Banks, DateTimeOffset BuiltAt);

/// <summary>
/// Holds the matcher in memory and keeps it current: built from storage at start, then every poll it applies
/// the entries changed since the last one (<see cref="BankStore.ChangesSince"/>), so a hash added, disabled or
/// deleted through any node or the CLI takes effect here within one poll interval. A change to a bank (enabled,
/// kind, threshold) rebuilds the matcher in the background and swaps it in. Bank actions and flood flags are
/// re-read every poll too.
/// </summary>
public sealed partial class LiveIndex(BankStore store, ServerStore server, ServerOptions options, TimeProvider time, ILogger<LiveIndex> logger) : BackgroundService
{
    private volatile IndexState? _state;
    private volatile IReadOnlyDictionary<long, BankAction> _actions = new Dictionary<long, BankAction>();
    private volatile IReadOnlySet<long> _quarantined = new HashSet<long>();
    private long _seq;
    private long _lastPollTicks;

    /// <summary>The current matcher, or null before the first build finished.</summary>
    public IndexState? Current => _state;

    /// <summary>Per-bank actions.</summary>
    public IReadOnlyDictionary<long, BankAction> Actions => _actions;

    /// <summary>Entries flood control has quarantined (they still match, but set off nothing).</summary>
    public IReadOnlySet<long> Quarantined => _quarantined;

    /// <summary>Whether the index started from a snapshot (diagnostics and tests).</summary>
    public bool StartedFromSnapshot { get; private set; }

    /// <summary>The change sequence applied so far.</summary>
    public long Sequence => Interlocked.Read(ref _seq);

    /// <summary>When the last poll succeeded.</summary>
    public DateTimeOffset? LastPoll => Interlocked.Read(ref _lastPollTicks) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    /// <summary>Ready when built and the last poll is recent (a node cut off from its database is not ready).</summary>
    public bool IsReady => _state is not null && LastPoll is { } last && time.GetUtcNow() - last < TimeSpan.FromSeconds(Math.Max(10, options.IndexPollMilliseconds * 20 / 1000.0));

    /// <summary>Marks an entry quarantined on this node at once (the database flag reaches other nodes on their next poll).</summary>
    internal void QuarantineLocally(long entryId)
    {
        var copy = new HashSet<long>(_quarantined) { entryId };
        _quarantined = copy;
    }

    /// <summary>Smallest index worth a snapshot; smaller ones build from the database about as fast.</summary>
    internal static long MinEntriesToSnapshot { get; set; } = 100_000;

    // Beside a SQLite file (DB.server-index/), or under the XDG cache for PostgreSQL (BankStore.CacheDirectory).
    private string SnapshotDir() => store.CacheDirectory("server-index");

    private static string BanksKey(IEnumerable<Bank> banks) => string.Join(',', banks.Where(b => b.Enabled).Select(b => b.Id));

    /// <summary>
    /// Starts from the snapshot when its enabled banks are today's: the snapshot records the change number it
    /// was taken at, and the first poll applies every change since (or rebuilds, if a bank changed), so a stale
    /// snapshot is still exact. Returns false when there is none or it does not fit.
    /// </summary>
    private bool TryLoadSnapshot()
    {
        var dir = SnapshotDir();
        var keyFile = Path.Combine(dir, "key");
        if (!File.Exists(keyFile))
        {
            return false;
        }

        try
        {
            var parts = File.ReadAllText(keyFile).Split(';');
            var banks = store.ListBanks();
            if (parts.Length != 4 || parts[0] != "v1" || parts[1] != "db=" + store.DatabaseId().ToString(System.Globalization.CultureInfo.InvariantCulture)
                || parts[3] != "banks=" + BanksKey(banks) || !long.TryParse(parts[2].AsSpan(4), System.Globalization.CultureInfo.InvariantCulture, out var seq))
            {
                return false;
            }

            var matcher = BankMatcher.Load(dir, banks, options.SignalTypes);
            _state = new IndexState(matcher, banks.ToDictionary(b => b.Id), time.GetUtcNow());
            Interlocked.Exchange(ref _seq, seq);
            LogSnapshot(logger, matcher.Count, seq);
            StartedFromSnapshot = true;
            return true;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or FormatException)
        {
            LogSnapshotUnusable(logger, ex.Message);
            return false;
        }
    }

    private void SaveSnapshot(BankMatcher matcher, IReadOnlyList<Bank> banks, long seq)
    {
        if (matcher.Count < MinEntriesToSnapshot)
        {
            return;
        }

        var dir = SnapshotDir();
        var temp = dir + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }

            matcher.Save(temp);

            // The key goes last: a snapshot interrupted half-way is never taken for a valid one. Files of an old
            // snapshot that another matcher has memory-mapped may be unlinked safely.
            File.WriteAllText(Path.Combine(temp, "key"), string.Create(System.Globalization.CultureInfo.InvariantCulture, $"v1;db={store.DatabaseId()};seq={seq};banks={BanksKey(banks)}"));
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            Directory.Move(temp, dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogSnapshotUnusable(logger, "could not save: " + ex.Message);
        }
    }

    /// <summary>Builds the matcher now (used at start and after bank changes).</summary>
    internal void Rebuild()
    {
        var started = time.GetTimestamp();
        // Banks and entries come from one database snapshot, so the change number fits both: a bank changed
        // while we read is either in this build or in the first poll after it, never lost between them.
        // ReadIndex hands over every bank before the first entry, so the matcher is made on the first entry.
        var banks = new List<Bank>();
        BankMatcher? matcher = null;
        long seq;
        try
        {
            seq = store.ReadIndex(
                e => (matcher ??= new BankMatcher(banks, options.SignalTypes)).Add(e.Id, e.BankId, e.SignalType, e.Signal),
                includeDisabledBanks: false,
                bank: banks.Add);
            matcher ??= new BankMatcher(banks, options.SignalTypes);
        }
        catch
        {
            matcher?.Dispose();
            throw;
        }

        SaveSnapshot(matcher, banks, seq);
        var old = _state;
        _state = new IndexState(matcher, banks.ToDictionary(b => b.Id), time.GetUtcNow());
        Interlocked.Exchange(ref _seq, seq);
        RefreshSideTables();
        Metrics.IndexEntries.Set(matcher.Count);
        var enabled = banks.Count(b => b.Enabled);
        var ms = time.GetElapsedTime(started).TotalMilliseconds;
        LogBuilt(logger, matcher.Count, enabled, ms);
        if (old is not null)
        {
            // Queries in flight may still hold the old matcher: dispose it after they are surely done.
            _ = Task.Delay(TimeSpan.FromSeconds(30), time).ContinueWith(_ => old.Matcher.Dispose(), TaskScheduler.Default);
        }
    }

    /// <summary>Applies every change since the last poll; returns how many entry changes it applied.</summary>
    internal int Poll()
    {
        var state = _state ?? throw new InvalidOperationException("The index is not built yet.");
        var applied = 0;
        while (true)
        {
            var batch = store.ChangesSince(Interlocked.Read(ref _seq));
            if (batch.Banks.Count > 0)
            {
                var names = string.Join(", ", batch.Banks.Select(b => b.Name));
                LogBankChange(logger, names);
                Rebuild();
                return applied + batch.Entries.Count;
            }

            foreach (var e in batch.Entries)
            {
                state.Matcher.Remove(e.Id, e.BankId, e.SignalType);
                if (e.Live)
                {
                    state.Matcher.Add(e.Id, e.BankId, e.SignalType, e.Signal);
                }
            }

            applied += batch.Entries.Count;
            Interlocked.Exchange(ref _seq, batch.HighWater);
            if (!batch.HasMore)
            {
                break;
            }
        }

        RefreshSideTables();
        Metrics.IndexEntries.Set(state.Matcher.Count);
        return applied;
    }

    private void RefreshSideTables()
    {
        _actions = server.BankActions();
        _quarantined = server.QuarantinedEntries();
        Interlocked.Exchange(ref _lastPollTicks, time.GetUtcNow().UtcTicks);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(Math.Max(50, options.IndexPollMilliseconds));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (_state is null)
                {
                    await Task.Run(
                        () =>
                        {
                            if (TryLoadSnapshot())
                            {
                                Poll();
                            }
                            else
                            {
                                Rebuild();
                            }
                        },
                        stoppingToken).ConfigureAwait(false);
                }
                else
                {
                    Poll();
                }
            }
            catch (Exception ex) when (ex is StorageException or InvalidOperationException or System.Data.Common.DbException)
            {
                LogPollFailed(logger, ex.Message);
            }

            try
            {
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _state?.Matcher.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Index built: {Entries} entries in {Banks} enabled banks ({Ms:F0} ms)")]
    private static partial void LogBuilt(ILogger logger, long entries, int banks, double ms);

    [LoggerMessage(Level = LogLevel.Information, Message = "Banks changed ({Banks}); rebuilding the index")]
    private static partial void LogBankChange(ILogger logger, string banks);

    [LoggerMessage(Level = LogLevel.Information, Message = "Index loaded from snapshot: {Entries} entries at change {Seq}; applying later changes")]
    private static partial void LogSnapshot(ILogger logger, long entries, long seq);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Index snapshot unusable, building from the database: {Reason}")]
    private static partial void LogSnapshotUnusable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Index poll failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string reason);
}
