using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Globalization;
using System.IO.Hashing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Core.Banks;
using Warden.Core.ModelFiles;
using Warden.Core.Signals;
using Warden.Core.Snapshots;
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
            if (_state is null)
            {
                Start();
            }

            return _state!;
        }
    }

    /// <summary>Whether the index started from its snapshot (diagnostics, tests).</summary>
    public bool StartedFromSnapshot { get; private set; }

    /// <summary>Smallest index worth a snapshot; smaller ones build from their record files about as fast.</summary>
    internal static int MinRecordsToSnapshot { get; set; } = 1_000;

    // Beside a SQLite file (DB.model-index/), or under the XDG cache for PostgreSQL (BankStore.CacheDirectory).
    private string SnapshotFile() => Path.Combine(store.CacheDirectory("model-index"), "near-index.bin");

    private static ReadOnlySpan<byte> Magic => "WDNMIDX1"u8;

    // Longest name or folder a snapshot string may hold: a damaged length is refused before it sizes anything.
    private const int MaxString = 4096;

    private string BanksKey() => string.Join(',', store.ListBanks().Where(b => b.Enabled).Select(b => b.Id.ToString(CultureInfo.InvariantCulture) + ":" + b.Name));

    /// <summary>
    /// First state: the snapshot when it loads and fits (then the change feed since it was taken is applied),
    /// else a build from the record files. Caller holds <see cref="_build"/>.
    /// </summary>
    private void Start()
    {
        if (TryLoadSnapshot())
        {
            ApplyChanges();
        }
        else
        {
            Rebuild();
        }
    }

    /// <summary>
    /// Loads the snapshot written by the last build: checksummed (XXH3-128 over everything before it),
    /// versioned, and for this database, this record folder and today's enabled banks; record files written or
    /// removed since (a re-registration the change feed does not show) go through the overlay. Anything that
    /// does not fit or does not read is logged and the index is rebuilt: a damaged snapshot is never searched.
    /// </summary>
    private bool TryLoadSnapshot()
    {
        var file = SnapshotFile();
        if (!File.Exists(file))
        {
            return false;
        }

        var started = time.GetTimestamp();
        try
        {
            var bytes = File.ReadAllBytes(file);
            if (bytes.Length < Magic.Length + 16 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic)
                || !XxHash128.Hash(bytes.AsSpan(0, bytes.Length - 16)).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 16)))
            {
                throw new InvalidDataException("bad magic or checksum");
            }

            var data = new SnapshotReader(bytes.AsSpan(0, bytes.Length - 16), "model index snapshot");
            data.Skip(Magic.Length);
            if (data.ReadInt64() != store.DatabaseId() || data.ReadString64(MaxString) != Directory || data.ReadString64(MaxString) != BanksKey())
            {
                LogSnapshotUnusable(logger, "taken for another database, record folder or set of banks");
                return false;
            }

            var seq = data.ReadInt64();
            var builtAt = data.ReadInt64();
            var n = data.ReadInt64();
            if (n < 0 || n > data.Remaining / 20)
            {
                throw new InvalidDataException("catalog length past the data");
            }

            var keys = new RecordKey[n];
            var stamps = new (long Length, long Ticks)[n];
            for (var i = 0; i < n; i++)
            {
                keys[i] = new RecordKey(data.ReadString64(MaxString), data.ReadString64(MaxString));
                stamps[i] = (data.ReadInt64(), data.ReadInt64());
            }

            var unreadable = ImmutableHashSet.CreateBuilder<RecordKey>();
            var u = data.ReadInt64();
            for (var i = 0L; i < u; i++)
            {
                var k = data.ReadInt64();
                unreadable.Add(k >= 0 && k < n ? keys[k] : throw new InvalidDataException("unreadable record number out of range"));
            }

            var empty = new ModelRecord { Id = "", Name = "", Bank = "" };
            var index = NearIndex.ReadFrom(ref data, i => Load(keys[i]) ?? empty);
            if (index.Count != keys.Length || data.Remaining != 0)
            {
                throw new InvalidDataException("index and catalog disagree");
            }

            _state = new Snapshot(index, keys, ImmutableDictionary<RecordKey, ModelRecord>.Empty, unreadable.ToImmutable(), NearIndex.Build([]), [], unreadable.Count);
            Interlocked.Exchange(ref _seq, seq);
            StartedFromSnapshot = true;
            int changed;
            try
            {
                changed = CatchUpFiles(keys, stamps, builtAt);
            }
            catch
            {
                // Half caught up is not an index to answer from: the next start tries again from the top.
                _state = null;
                StartedFromSnapshot = false;
                throw;
            }

            var ms = time.GetElapsedTime(started).TotalMilliseconds;
            LogSnapshot(logger, keys.Length, seq, changed, ms);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException)
        {
            LogSnapshotUnusable(logger, ex.Message);
            _state = null;
            StartedFromSnapshot = false;
            return false;
        }
    }

    // Record files whose size or time differ from the snapshot's, gone, or new since it was built: each is
    // re-read (or unregistered) through the overlay, as a change from the feed would be.
    private int CatchUpFiles(RecordKey[] keys, (long Length, long Ticks)[] stamps, long builtAt)
    {
        var seen = new Dictionary<RecordKey, (long, long)>();
        foreach (var bank in store.ListBanks().Where(b => b.Enabled))
        {
            var dir = new DirectoryInfo(Path.Combine(Directory, bank.Name));
            if (dir.Exists)
            {
                foreach (var f in dir.EnumerateFiles("*.json"))
                {
                    seen[new RecordKey(bank.Name, Path.GetFileNameWithoutExtension(f.Name))] = (f.Length, f.LastWriteTimeUtc.Ticks);
                }
            }
        }

        var changed = 0;
        for (var i = 0; i < keys.Length; i++)
        {
            if (!seen.Remove(keys[i], out var now) || now != stamps[i])
            {
                changed += Apply(keys[i]) ? 1 : 0;
            }
        }

        // A file not in the catalog counts only once its entry is live; files older than the build were seen by it.
        foreach (var (key, (_, ticks)) in seen)
        {
            if (ticks >= builtAt)
            {
                changed += Apply(key) ? 1 : 0;
            }
        }

        return changed;
    }

    private void SaveSnapshot(RecordKey[] keys, (long Length, long Ticks)[] stamps, NearIndex index, ImmutableHashSet<RecordKey> unreadable, long seq, long builtAt)
    {
        var file = SnapshotFile();
        try
        {
            if (keys.Length < MinRecordsToSnapshot)
            {
                if (File.Exists(file))
                {
                    File.Delete(file); // an older, larger snapshot must not outlive the bank it was taken of
                }

                return;
            }

            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var temp = file + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var hash = new XxHash128();
                using var body = new HashingStream(f, hash);
                body.Write(Magic);
                PutLong(body, store.DatabaseId());
                PutString(body, Directory);
                PutString(body, BanksKey());
                PutLong(body, seq);
                PutLong(body, builtAt);
                PutLong(body, keys.Length);
                var numbers = new Dictionary<RecordKey, long>();
                for (var i = 0; i < keys.Length; i++)
                {
                    PutString(body, keys[i].Bank);
                    PutString(body, keys[i].Id);
                    PutLong(body, stamps[i].Length);
                    PutLong(body, stamps[i].Ticks);
                    numbers[keys[i]] = i;
                }

                PutLong(body, unreadable.Count);
                foreach (var k in unreadable)
                {
                    PutLong(body, numbers[k]);
                }

                index.WriteTo(body);
                body.Flush();
                f.Write(hash.GetCurrentHash());
                f.Flush(flushToDisk: true);
            }

            File.Move(temp, file, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogSnapshotUnusable(logger, "could not save: " + ex.Message);
        }
    }

    private static void PutLong(Stream s, long v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        s.Write(b);
    }

    private static void PutString(Stream s, string v)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(v);
        PutLong(s, bytes.Length);
        s.Write(bytes);
    }

    // Hashes what passes through to the file (the snapshot is hashed as written, never held whole in memory).
    private sealed class HashingStream(Stream inner, XxHash128 hash) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.Append(buffer);
            inner.Write(buffer);
        }

        protected override void Dispose(bool disposing)
        {
            // The file stream belongs to the caller.
            base.Dispose(disposing);
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
        // File times are the real clock's (not the TimeProvider's), with a margin for their granularity.
        var builtAt = DateTime.UtcNow.AddSeconds(-2).Ticks;

        // The change number is read first: a registration racing the build is applied again by the next poll
        // (applying is idempotent), never lost.
        var seq = store.ChangeSequence();
        var catalog = new List<RecordKey>();
        var stamps = new List<(long Length, long Ticks)>();
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
                    // Stamped before it is read: a file rewritten after this is caught up at the next start.
                    var info = new FileInfo(file);
                    catalog.Add(new RecordKey(bank.Name, id));
                    stamps.Add(info.Exists ? (info.Length, info.LastWriteTimeUtc.Ticks) : (-1, -1));
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
        var unreadableSet = unreadable.ToImmutable();
        var state = new Snapshot(index, keys, ImmutableDictionary<RecordKey, ModelRecord>.Empty, unreadableSet, NearIndex.Build([]), [], unreadable.Count);
        _state = state;
        SaveSnapshot(keys, [.. stamps], index, unreadableSet, seq, builtAt);
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
                Start();
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Model index loaded from snapshot: {Models} registered models at change {Seq}, {Changed} record files caught up ({Ms:F0} ms); applying later changes")]
    private static partial void LogSnapshot(ILogger logger, int models, long seq, int changed, double ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model index snapshot unusable, building from the record files: {Reason}")]
    private static partial void LogSnapshotUnusable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model index poll failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string reason);
}
