using System.Collections.Immutable;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Core.Banks;
using Warden.Core.ModelFiles;
using Warden.Core.Signals;
using Warden.Storage;

namespace Warden.Server.Index;

/// <summary>The near tiers of one model against the registered models (review scores, never acted on).</summary>
/// <param name="Similar">R and T4 hits.</param>
/// <param name="Contained">T3 hits (records already in <paramref name="Similar"/> left out).</param>
/// <param name="Derivation">T5, when the model is explained by registered models.</param>
/// <param name="Candidates">Records the index handed to the matcher (the rest of the bank was never read).</param>
public sealed record ModelNearAnswer(IReadOnlyList<NearHit> Similar, IReadOnlyList<NearHit> Contained, Derivation? Derivation, int Candidates);

/// <summary>
/// The server's <see cref="NearIndex"/> over the models registered in the enabled banks (sketch records in
/// <c>DB.models/BANK/ID.json</c>, written by <c>warden model add</c>), so a query reads only its candidates'
/// records, never every registered model. Built at start (in the background; a query before then builds it
/// once), then kept current from the bank change feed like the PDQ index: a live <c>sha256</c> or
/// <c>mfv1_model</c> entry whose record file exists registers that record, a deleted or disabled one
/// unregisters it (unless another live entry still names it), and a bank change (enabled, kind) rebuilds.
/// Records registered since the last build sit in a small in-memory overlay with an index of its own; removed
/// ones are masked; past <see cref="MaxOverlay"/> changes the index is rebuilt and swapped in.
/// </summary>
public sealed partial class ModelIndex(BankStore store, ServerOptions options, TimeProvider time, ILogger<ModelIndex> logger) : BackgroundService
{
    /// <summary>Registrations and removals kept beside the built index before it is rebuilt.</summary>
    internal static int MaxOverlay { get; set; } = 256;

    private readonly Lock _build = new();
    private volatile Snapshot? _state;
    private long _seq = -1;

    /// <summary>Records in the index and its overlay (diagnostics, tests).</summary>
    public int Count => _state is { } s ? s.Catalog.Length - s.Removed.Count + s.Added.Count : 0;

    /// <summary>How long a query waits for a writer in progress before answering from the snapshot it has.</summary>
    private static readonly TimeSpan ReadYourWritesWait = TimeSpan.FromSeconds(10);

    /// <summary>Times the index was built (diagnostics, tests).</summary>
    public int Builds { get; private set; }

    /// <summary>The folder of the sketch records (beside the bank database, as the CLI writes it).</summary>
    public string Directory => store.Path + ".models";

    /// <summary>The near tiers of <paramref name="fp"/>: candidates from the index, scored exactly as a full scan scores them.</summary>
    public ModelNearAnswer Near(ModelFingerprint fp, IReadOnlyDictionary<string, BankKind> kinds)
    {
        ArgumentNullException.ThrowIfNull(fp);
        ArgumentNullException.ThrowIfNull(kinds);
        // Read-your-writes, as the per-request scan had: a model registered a moment ago (or deleted) counts now,
        // not one poll later. One counter read per query; the changes are applied here when the poll has not yet.
        if (_state is null)
        {
            Poll();
        }
        else if (store.ChangeSequence() != Interlocked.Read(ref _seq) && _build.TryEnter(ReadYourWritesWait))
        {
            // While another thread applies changes or rebuilds (the background poll may be applying this very
            // change), the query waits for it, then catches up with what is left; only a rebuild longer than the
            // wait (a very large bank at start) makes it answer from the snapshot it has.
            try
            {
                ApplyChanges();
            }
            finally
            {
                _build.Exit();
            }
        }

        var s = Current();
        if (s.Catalog.Length == 0 && s.AddedList.Length == 0)
        {
            return new ModelNearAnswer([], [], null, 0);
        }

        var loaded = new Dictionary<int, ModelRecord?>();
        List<ModelRecord> Records(IEnumerable<int> numbers)
        {
            var list = new List<ModelRecord>();
            foreach (var i in numbers)
            {
                if (!loaded.TryGetValue(i, out var r))
                {
                    r = loaded[i] = s.Removed.Contains(s.Catalog[i]) ? null : Load(s.Catalog[i]);
                }

                if (r is not null)
                {
                    list.Add(r);
                }
            }

            return list;
        }

        // Registrations since the build have an index of their own (small, rebuilt on each change).
        var overlay = new HashSet<ModelRecord>(ReferenceEqualityComparer.Instance);
        List<ModelRecord> Overlay(IEnumerable<int> numbers)
        {
            var list = numbers.Select(i => s.AddedList[i]).ToList();
            overlay.UnionWith(list);
            return list;
        }

        var sketch = Records(s.Index.SketchCandidates(fp)).Concat(Overlay(s.AddedIndex.SketchCandidates(fp))).ToList();
        var rows = Records(s.Index.RowCandidates(fp)).Concat(Overlay(s.AddedIndex.RowCandidates(fp))).ToList();

        // An exact copy is an exact hit already; its near tiers would only repeat it.
        var same = sketch.Concat(rows).Where(r => r.ModelId is not null && r.ModelId == fp.ModelIdHex).Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var similar = NearMatcher.Similar(fp, sketch).Where(h => !same.Contains(h.Record.Id)).ToList();
        var contained = NearMatcher.Contained(fp, rows, (r, _) => same.Contains(r.Id)).Where(h => !similar.Any(n => n.Record.Id == h.Record.Id)).ToList();
        Derivation? derivation = null;
        bool IsBase(ModelRecord r) => kinds.TryGetValue(r.Bank, out var k) && k == BankKind.AllowList;

        // A near copy of a block-listed model says what T5 would; a near copy of a base does not (a LoRA baked
        // in at a low strength leaves the file within T4 of its base), so the derivation is still sought.
        if (same.Count == 0 && !similar.Any(h => !IsBase(h.Record)))
        {
            // T5 columns: the models the index found (a merge is near its parents) and the adapters whose ΔW
            // is what the file adds to one of the bases found (a LoRA bake-in).
            var full = sketch.Concat(rows).DistinctBy(r => (r.Bank, r.Id)).ToList();
            var bases = full.Where(IsBase).ToList();
            var adapters = Records(s.Index.AdapterCandidates(fp, bases)).Concat(Overlay(s.AddedIndex.AdapterCandidates(fp, bases)));
            derivation = NearMatcher.Derive(fp, [.. full.Concat(adapters).DistinctBy(r => (r.Bank, r.Id))], IsBase);
        }

        var considered = loaded.Count + overlay.Count;
        return new ModelNearAnswer(similar, contained, derivation, considered);
    }

    /// <summary>Builds the index now when it is not built yet; returns the state.</summary>
    private Snapshot Current()
    {
        if (_state is { } s)
        {
            return s;
        }

        lock (_build)
        {
            return _state ?? Rebuild();
        }
    }

    private ModelRecord? Load(RecordKey key)
    {
        try
        {
            return ModelRecord.Read(File.ReadAllBytes(Path.Combine(Directory, key.Bank, key.Id + ".json")));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            LogRecordUnreadable(logger, key.Bank, key.Id, ex.Message);
            return null;
        }
    }

    // A record counts while its bank holds a live entry naming it (its file SHA-256, or the model ID of a folder).
    private bool Registered(string bank, string id) =>
        File.Exists(Path.Combine(Directory, bank, id + ".json"))
        && (store.EntriesWithSignal(bank, SignalTypes.Sha256.Name, id).Count > 0 || store.EntriesWithSignal(bank, SignalTypes.Mfv1Model.Name, id).Count > 0);

    /// <summary>Builds from the record files of the enabled banks and swaps the result in.</summary>
    internal Snapshot Rebuild()
    {
        var started = time.GetTimestamp();

        // The change number is read first: a registration racing the build is applied again by the next poll
        // (applying is idempotent), never lost.
        var seq = store.ChangeSequence();
        var catalog = new List<RecordKey>();
        foreach (var bank in store.ListBanks().Where(b => b.Enabled))
        {
            var dir = Path.Combine(Directory, bank.Name);
            if (!System.IO.Directory.Exists(dir))
            {
                continue;
            }

            foreach (var file in System.IO.Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
            {
                var id = Path.GetFileNameWithoutExtension(file);
                if (Registered(bank.Name, id))
                {
                    catalog.Add(new RecordKey(bank.Name, id));
                }
            }
        }

        var keys = catalog.ToArray();
        var empty = new ModelRecord { Id = "", Name = "", Bank = "" };
        // An unreadable record file (truncated, corrupt) is logged and masked, never a failed build or request.
        var unreadable = ImmutableHashSet.CreateBuilder<RecordKey>();
        var index = NearIndex.Build(keys.Length, i =>
        {
            if (Load(keys[i]) is { } r)
            {
                return r;
            }

            unreadable.Add(keys[i]);
            return empty;
        });
        var state = new Snapshot(index, keys, ImmutableDictionary<RecordKey, ModelRecord>.Empty, unreadable.ToImmutable(), NearIndex.Build([]), [], unreadable.Count);
        _state = state;
        Interlocked.Exchange(ref _seq, seq);
        Builds++;
        var ms = time.GetElapsedTime(started).TotalMilliseconds;
        LogBuilt(logger, keys.Length, index.Postings, ms);
        return state;
    }

    /// <summary>Applies the bank changes since the last poll; returns how many records it (un)registered.</summary>
    internal int Poll()
    {
        // One writer at a time (the background poll, a query catching up, a rebuild); queries read snapshots.
        lock (_build)
        {
            if (_state is null)
            {
                Rebuild();
                return 0;
            }

            return ApplyChanges();
        }
    }

    private int ApplyChanges()
    {

        var changed = 0;
        Dictionary<long, Bank>? banks = null;
        while (true)
        {
            var batch = store.ChangesSince(Interlocked.Read(ref _seq));
            if (batch.Banks.Count > 0 || batch.HighWater < Interlocked.Read(ref _seq))
            {
                Rebuild();
                return changed + 1;
            }

            foreach (var e in batch.Entries.Where(e => e.SignalType == SignalTypes.Sha256.Name || e.SignalType == SignalTypes.Mfv1Model.Name))
            {
                banks ??= store.ListBanks().ToDictionary(b => b.Id);
                if (!banks.TryGetValue(e.BankId, out var bank) || !bank.Enabled || !File.Exists(Path.Combine(Directory, bank.Name, e.Signal + ".json")))
                {
                    continue; // an image digest, or a model of a disabled bank: not a record of the index
                }

                changed += Apply(new RecordKey(bank.Name, e.Signal)) ? 1 : 0;
            }

            Interlocked.Exchange(ref _seq, batch.HighWater);
            if (!batch.HasMore)
            {
                break;
            }
        }

        if (_state is { } s && s.Added.Count + s.Removed.Count - s.Unreadable > MaxOverlay)
        {
            Rebuild();
        }

        return changed;
    }

    // Re-reads whether a record is registered and updates the overlay (copy on write: queries hold a snapshot).
    private bool Apply(RecordKey key)
    {
        var s = _state!;
        var live = Registered(key.Bank, key.Id);
        var inCatalog = Array.IndexOf(s.Catalog, key) >= 0;
        var next = s;
        if (live)
        {
            var record = Load(key);
            if (record is null)
            {
                return false;
            }

            // Re-registered (or re-added with new sketches): the overlay's copy replaces the indexed one.
            next = s with { Added = s.Added.SetItem(key, record), Removed = inCatalog ? s.Removed.Add(key) : s.Removed };
        }
        else if (s.Added.ContainsKey(key) || (inCatalog && !s.Removed.Contains(key)))
        {
            next = s with { Added = s.Added.Remove(key), Removed = inCatalog ? s.Removed.Add(key) : s.Removed };
        }

        if (ReferenceEquals(next, s))
        {
            return false;
        }

        ModelRecord[] added = [.. next.Added.Values];
        _state = next with { AddedList = added, AddedIndex = NearIndex.Build(added) };
        return true;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(Math.Max(50, options.IndexPollMilliseconds));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Run(() => Poll(), stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is StorageException or InvalidOperationException or IOException or System.Data.Common.DbException)
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

    /// <summary>A registered record: bank name and record id (file SHA-256, or model ID for folders).</summary>
    internal readonly record struct RecordKey(string Bank, string Id);

    /// <summary>The built index, its record numbers, and the changes since it was built.</summary>
    internal sealed record Snapshot(NearIndex Index, RecordKey[] Catalog, ImmutableDictionary<RecordKey, ModelRecord> Added, ImmutableHashSet<RecordKey> Removed, NearIndex AddedIndex, ModelRecord[] AddedList, int Unreadable);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model index built: {Models} registered models, {Postings} postings ({Ms:F0} ms)")]
    private static partial void LogBuilt(ILogger logger, int models, long postings, double ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model record {Bank}/{Id} unreadable: {Reason}")]
    private static partial void LogRecordUnreadable(ILogger logger, string bank, string id, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model index poll failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string reason);
}
