using System.Globalization;
using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;
using Warden.Core.Signals;

namespace Warden.Storage;

/// <summary>A bank entry to search the signal log for.</summary>
/// <param name="EntryId">The entry.</param>
/// <param name="BankId">Its bank.</param>
/// <param name="SignalType">Its signal type.</param>
/// <param name="Signal">Its normalised signal.</param>
/// <param name="Threshold">PDQ: the bank's distance threshold (ignored for exact types).</param>
/// <param name="Seq">The change number that made it live: only uploads matched before it are retroactive hits.</param>
public sealed record NewEntry(long EntryId, long BankId, string SignalType, string Signal, int Threshold, long Seq);

/// <summary>A logged upload that a new entry matches.</summary>
/// <param name="Entry">The entry.</param>
/// <param name="Day">The upload's partition.</param>
/// <param name="LogId">The upload's row.</param>
/// <param name="Distance">Minimum Hamming distance over the upload's variants (0 for exact types).</param>
public sealed record RetroHit(NewEntry Entry, int Day, long LogId, int Distance);

/// <summary>
/// Searches new bank entries against the signal log with the exact Hamming index: one <see cref="PdqIndex"/> per
/// partition over every logged PDQ variant (id = row id), kept as a snapshot file per partition
/// (<c>dDAY-MAXID.pdq</c>, loaded memory-mapped) and brought up to date by adding the rows logged since. A new
/// entry is then one range query per partition, not a rescan; exact signals are one keyed lookup per partition.
/// One instance per process; not for concurrent use.
/// </summary>
public sealed class RetroactiveSearch : IDisposable
{
    /// <summary>Rows added to a partition's index since its snapshot before a new snapshot is written.</summary>
    public const int SnapshotEvery = 4096;

    private readonly SignalLog _log;
    private readonly Dictionary<int, Part> _parts = [];

    /// <summary>Creates the search over <paramref name="log"/>.</summary>
    public RetroactiveSearch(SignalLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        _log = log;
    }

    /// <summary>Number of partitions whose index is open.</summary>
    public int OpenPartitions => _parts.Count;

    /// <summary>Every logged upload each entry matches (PDQ within the entry's threshold; exact types by equality), restricted to uploads matched before the entry was live.</summary>
    public IReadOnlyList<RetroHit> Search(IReadOnlyList<NewEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var hits = new List<RetroHit>();
        var days = _log.Partitions();
        foreach (var gone in _parts.Keys.Except(days).ToList())
        {
            _parts[gone].Index.Dispose();
            _parts.Remove(gone);
        }

        var pdq = new List<(NewEntry Entry, PdqHash Hash)>();
        var exact = new Dictionary<string, Dictionary<string, List<NewEntry>>>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (e.SignalType == SignalTypes.Pdq.Name)
            {
                if (PdqHash.TryParse(e.Signal, out var h, out _))
                {
                    pdq.Add((e, h));
                }
            }
            else
            {
                if (!exact.TryGetValue(e.SignalType, out var byValue))
                {
                    exact[e.SignalType] = byValue = new Dictionary<string, List<NewEntry>>(StringComparer.Ordinal);
                }

                if (!byValue.TryGetValue(e.Signal, out var list))
                {
                    byValue[e.Signal] = list = [];
                }

                list.Add(e);
            }
        }

        var found = new List<PdqMatch>();
        var best = new Dictionary<long, int>();
        foreach (var day in days)
        {
            var dayHits = new List<RetroHit>();
            if (pdq.Count > 0)
            {
                var index = Refresh(day);
                foreach (var (entry, hash) in pdq)
                {
                    found.Clear();
                    best.Clear();
                    index.Search(hash, entry.Threshold, found);
                    foreach (var m in found)
                    {
                        // An upload is indexed once per variant: its distance is the best variant's.
                        best[m.Id] = best.TryGetValue(m.Id, out var d) ? Math.Min(d, m.Distance) : m.Distance;
                    }

                    foreach (var (id, d) in best)
                    {
                        dayHits.Add(new RetroHit(entry, day, id, d));
                    }
                }
            }

            foreach (var (type, byValue) in exact)
            {
                foreach (var (value, id) in _log.LookupExact(day, type, byValue.Keys))
                {
                    dayHits.AddRange(byValue[value].Select(e => new RetroHit(e, day, id, 0)));
                }
            }

            if (dayHits.Count > 0)
            {
                // Only uploads matched before the entry was live: later ones were matched against it already.
                var uploads = _log.Get(day, dayHits.Select(h => h.LogId));
                hits.AddRange(dayHits.Where(h => uploads.TryGetValue(h.LogId, out var u) && u.Upload.BankSequence < h.Entry.Seq));
            }
        }

        return hits;
    }

    /// <summary>Deletes a partition's snapshot files (retention dropped it).</summary>
    public static void DeleteSnapshots(string directory, int day)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        foreach (var f in Directory.EnumerateFiles(directory, string.Create(CultureInfo.InvariantCulture, $"d{day}-*.pdq")))
        {
            File.Delete(f);
        }
    }

    /// <summary>The snapshot files of a partition (tests).</summary>
    public static IReadOnlyList<string> Snapshots(string directory, int day) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory, string.Create(CultureInfo.InvariantCulture, $"d{day}-*.pdq")) : [];

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _parts.Values)
        {
            p.Index.Dispose();
        }

        _parts.Clear();
    }

    private PdqIndex Refresh(int day)
    {
        if (!_parts.TryGetValue(day, out var part))
        {
            part = OpenSnapshot(day);
            _parts[day] = part;
        }

        var hashes = new List<PdqHash>();
        var ids = new List<long>();
        _log.ReadPdq(day, part.MaxId, hashes, ids);
        if (hashes.Count > 0)
        {
            part.Index.AddRange(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(hashes), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids));
            part.MaxId = ids[^1];
            part.Unsaved += hashes.Count;
        }

        // A past day no longer changes: snapshot it once; today's gets a new snapshot every few thousand rows.
        var closed = day < SignalLog.DayOf(_log.Now);
        if (part.Unsaved > 0 && (closed || part.Unsaved >= SnapshotEvery))
        {
            SaveSnapshot(day, part);
        }

        return part.Index;
    }

    private Part OpenSnapshot(int day)
    {
        var dir = _log.SnapshotDirectory;
        var newest = Snapshots(dir, day)
            .Select(f => (File: f, Max: long.TryParse(Path.GetFileNameWithoutExtension(f).AsSpan(Path.GetFileNameWithoutExtension(f).IndexOf('-', StringComparison.Ordinal) + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : -1))
            .Where(s => s.Max >= 0)
            .OrderByDescending(s => s.Max)
            .FirstOrDefault();
        if (newest.File is not null)
        {
            try
            {
                return new Part(PdqIndex.Load(newest.File), newest.Max);
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                // A damaged snapshot is only a cache: rebuild the partition's index from its rows.
                TryDelete(newest.File);
            }
        }

        return new Part(new PdqIndex(), 0);
    }

    private void SaveSnapshot(int day, Part part)
    {
        var dir = _log.SnapshotDirectory;
        try
        {
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"d{day}-{part.MaxId}.pdq"));
            part.Index.Save(path);
            foreach (var old in Snapshots(dir, day).Where(f => !string.Equals(f, path, StringComparison.Ordinal)))
            {
                TryDelete(old);
            }

            part.Unsaved = 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Without a snapshot the index is rebuilt from the rows next time: slower, never wrong.
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    private sealed class Part(PdqIndex index, long maxId)
    {
        public PdqIndex Index { get; } = index;

        public long MaxId { get; set; } = maxId;

        public int Unsaved { get; set; }
    }
}

/// <summary>
/// One retroactive pass: reads the bank change feed from the log's checkpoint, searches the entries that
/// became live against the signal log, and records each hit once (<see cref="SignalLog.RecordMatch(SignalMatch)"/>;
/// key "rt:ENTRY:DAY:ID"), then advances the checkpoint. Safe to repeat and to run on several nodes: a hit
/// recorded twice is one row.
/// </summary>
public static class RetroactivePass
{
    /// <summary>The checkpoint's name in the log's state table.</summary>
    public const string Checkpoint = "retroactive_seq";

    /// <summary>Runs until the change feed is caught up; returns the matches newly recorded.</summary>
    public static IReadOnlyList<SignalMatch> Run(BankStore banks, SignalLog log, RetroactiveSearch search, int pageLimit = 10_000)
    {
        ArgumentNullException.ThrowIfNull(banks);
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(search);
        var recorded = new List<SignalMatch>();
        var after = log.GetCheckpoint(Checkpoint);
        while (true)
        {
            var batch = banks.ChangesSince(after, pageLimit);
            if (batch.HighWater < after)
            {
                after = 0; // another database behind the same name: start over (recording is idempotent)
                continue;
            }

            if (batch.Entries.Count > 0)
            {
                var bankById = banks.ListBanks().ToDictionary(b => b.Id);
                var entries = batch.Entries
                    .Where(e => e.Live && bankById.TryGetValue(e.BankId, out var b) && b.Enabled && b.Kind == BankKind.BlockList)
                    .Select(e => new NewEntry(e.Id, e.BankId, e.SignalType, e.Signal, (SignalTypes.TryGet(e.SignalType, out var type) ? bankById[e.BankId].ThresholdFor(type) : 0), e.Seq))
                    .ToList();
                foreach (var group in search.Search(entries).GroupBy(h => h.Day))
                {
                    var uploads = log.Get(group.Key, group.Select(h => h.LogId));
                    using var c = log.Open();
                    using var tx = c.BeginTransaction();
                    foreach (var h in group)
                    {
                        var u = uploads[h.LogId];
                        var match = new SignalMatch(
                            string.Create(CultureInfo.InvariantCulture, $"rt:{h.Entry.EntryId}:{h.Day}:{h.LogId}"), "retroactive", h.Day, h.LogId, h.Entry.BankId, h.Entry.EntryId,
                            h.Entry.SignalType, h.Distance, u.Upload.Uploader, u.Upload.ContentId, u.Upload.UploadedAt, u.Sha256);
                        if (log.RecordMatch(c, tx, match))
                        {
                            recorded.Add(match);
                        }
                    }

                    tx.Commit();
                }
            }

            after = batch.HighWater;
            log.SetCheckpoint(Checkpoint, after);
            if (!batch.HasMore)
            {
                return recorded;
            }
        }
    }
}
