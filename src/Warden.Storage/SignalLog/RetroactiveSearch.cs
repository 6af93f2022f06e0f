using System.Globalization;
using System.Runtime.InteropServices;
using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
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
/// <param name="Distance">Minimum Hamming distance over the upload's variants (0 for exact types and vPDQ, whose match is by frame shares).</param>
public sealed record RetroHit(NewEntry Entry, int Day, long LogId, int Distance);

/// <summary>
/// Searches new bank entries against the signal log with the exact Hamming index. Each day of the current
/// week (and any day whose week is still open) has one <see cref="PdqIndex"/> over every logged PDQ variant
/// (id = row id), kept as a snapshot file (<c>dDAY-MAXID.pdq</c>); once a week (Monday to Sunday) is over,
/// its days are merged into one index (<c>wMONDAY-MASK-MAX0_..._MAX6.pdq</c>; id = day of week &lt;&lt; 48 | row id),
/// because a query's cost grows far slower than the partition it searches (a 7M index answers in ~1.5× the
/// time of a 1M one), so fewer, larger indexes cost less per entry. Snapshots load memory-mapped and are
/// brought up to date by adding the rows logged since. The delta is searched partition by partition, so
/// each index is touched once per delta. Exact signals (digests, model fingerprints) are one keyed lookup per
/// day; vPDQ entries are matched against the day's logged videos (<see cref="VideoIndex"/>, python-threatexchange's rule),
/// TMK+PDQF entries against the day's logged TMK features (level 1 then level 2).
/// One instance per process; not for concurrent use.
/// </summary>
public sealed class RetroactiveSearch : IDisposable
{
    /// <summary>Rows added to a partition's index since its snapshot before a new snapshot is written.</summary>
    public const int SnapshotEvery = 4096;

    /// <summary>Bits of a merged week's ids that hold the row id; the day of the week sits above them.</summary>
    internal const int RowBits = 48;

    private const long RowMask = (1L << RowBits) - 1;

    private readonly SignalLog _log;
    private readonly Dictionary<int, Part> _parts = [];
    private readonly Dictionary<int, Part> _weeks = [];

    /// <summary>Creates the search over <paramref name="log"/>.</summary>
    public RetroactiveSearch(SignalLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        _log = log;
    }

    /// <summary>Number of indexes open: single days plus merged weeks.</summary>
    public int OpenPartitions => _parts.Count + _weeks.Count;

    /// <summary>Number of merged weeks open (tests).</summary>
    public int OpenWeeks => _weeks.Count;

    /// <summary>
    /// The log's index units now: "wMONDAY" for each closed week (searched as one merged index), "dDAY" for
    /// each other day. Their days together are every partition, each in one unit; a large delta fans out as
    /// one work item per unit (<see cref="RetroTasks"/>).
    /// </summary>
    public static IReadOnlyList<string> Units(SignalLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var today = SignalLog.DayOf(log.Now);
        return log.Partitions()
            .Select(day => WeekOf(day) is var monday && AddDays(monday, 7) <= today ? "w" + monday.ToString(CultureInfo.InvariantCulture) : "d" + day.ToString(CultureInfo.InvariantCulture))
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// Whether a partition belongs to a unit ("wMONDAY": a day of that week; "dDAY": that day). Judged by the
    /// day alone, so a unit named when its week was open still covers exactly its day after the week closes.
    /// </summary>
    public static bool InUnit(string unit, int day)
    {
        var (kind, n) = ParseUnit(unit);
        return kind == 'w' ? WeekOf(day) == n : day == n;
    }

    /// <summary>A unit's kind ('w' or 'd') and day; <see cref="FormatException"/> when it is not one (a task row edited by hand).</summary>
    private static (char Kind, int Day) ParseUnit(string unit)
    {
        ArgumentNullException.ThrowIfNull(unit);
        if (unit.Length != 9 || unit[0] is not ('w' or 'd')
            || !int.TryParse(unit.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            || !DateOnly.TryParseExact(unit.AsSpan(1), "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            throw new FormatException($"'{unit}' is not a signal log unit (wYYYYMMDD or dYYYYMMDD).");
        }

        return (unit[0], n);
    }

    /// <summary>Every logged upload each entry matches (PDQ within the entry's threshold; exact types by equality), restricted to uploads matched before the entry was live.</summary>
    public IReadOnlyList<RetroHit> Search(IReadOnlyList<NewEntry> entries) => Search(entries, null);

    /// <summary>
    /// As <see cref="Search(IReadOnlyList{NewEntry})"/>, over the partitions of one unit only (<see cref="Units"/>;
    /// null: all): one fanned-out work item. The union over every unit equals the search of the whole log.
    /// </summary>
    public IReadOnlyList<RetroHit> Search(IReadOnlyList<NewEntry> entries, string? unit)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (unit is not null)
        {
            ParseUnit(unit); // a malformed unit fails here, not only once partitions exist
        }

        var hits = new List<RetroHit>();
        var all = _log.Partitions();
        var days = unit is null ? all : all.Where(d => InUnit(unit, d)).ToList();
        var today = SignalLog.DayOf(_log.Now);

        // A week whose Sunday is past is closed: its days are searched as one merged index.
        var weeks = new SortedDictionary<int, int>();
        var single = new List<int>();
        foreach (var day in days)
        {
            var monday = WeekOf(day);
            if (AddDays(monday, 7) <= today)
            {
                weeks[monday] = weeks.GetValueOrDefault(monday) | (1 << Offset(monday, day));
            }
            else
            {
                single.Add(day);
            }
        }

        // A merged week is always the week's every present day (its snapshot's identity), even when a unit
        // names only some of them; hits outside the unit's days are dropped below.
        foreach (var monday in weeks.Keys.ToList())
        {
            weeks[monday] = all.Where(d => WeekOf(d) == monday).Aggregate(0, (m, d) => m | (1 << Offset(monday, d)));
        }

        // Indexes of partitions that are gone (retention) or changed shape (a week closed) are let go.
        var allSingle = all.Where(d => AddDays(WeekOf(d), 7) > today).ToHashSet();
        var allWeeks = all.Select(WeekOf).Where(m => AddDays(m, 7) <= today).ToHashSet();
        foreach (var gone in _parts.Keys.Where(d => !allSingle.Contains(d)).ToList())
        {
            _parts[gone].Index.Dispose();
            _parts.Remove(gone);
        }

        foreach (var (monday, part) in _weeks.Where(w => !allWeeks.Contains(w.Key) || (weeks.TryGetValue(w.Key, out var m) && m != w.Value.Mask)).ToList())
        {
            part.Index.Dispose();
            _weeks.Remove(monday);
        }

        var pdq = new List<(NewEntry Entry, PdqHash Hash)>();
        var vpdq = new List<(NewEntry Entry, VpdqHash Hash)>();
        var tmk = new List<(NewEntry Entry, TmkFeatures Features)>();
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
            else if (e.SignalType == SignalTypes.Vpdq.Name)
            {
                if (VpdqHash.TryParse(e.Signal, out var v, out _))
                {
                    vpdq.Add((e, v));
                }
            }
            else if (e.SignalType == SignalTypes.TmkPdqf.Name)
            {
                if (TmkHasher.TryParseSignal(e.Signal, out var f, out _) && f is not null)
                {
                    tmk.Add((e, f));
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

        var byDay = new Dictionary<int, List<RetroHit>>();
        List<RetroHit> DayHits(int day) => byDay.TryGetValue(day, out var l) ? l : byDay[day] = [];
        if (pdq.Count > 0)
        {
            var found = new List<PdqMatch>();
            var best = new Dictionary<long, int>();
            foreach (var (monday, mask) in weeks)
            {
                SearchIndex(RefreshWeek(monday, mask).Index, pdq, found, best, id => (AddDays(monday, (int)(id >> RowBits)), id & RowMask), DayHits);
            }

            foreach (var day in single)
            {
                SearchIndex(Refresh(day), pdq, found, best, id => (day, id), DayHits);
            }
        }

        if (vpdq.Count > 0)
        {
            foreach (var day in days)
            {
                SearchVideos(day, vpdq, DayHits);
            }
        }

        if (tmk.Count > 0)
        {
            foreach (var day in days)
            {
                SearchTmk(day, tmk, DayHits);
            }
        }

        foreach (var (type, byValue) in exact)
        {
            foreach (var day in days)
            {
                foreach (var (value, id) in _log.LookupExact(day, type, byValue.Keys))
                {
                    DayHits(day).AddRange(byValue[value].Select(e => new RetroHit(e, day, id, 0)));
                }
            }
        }

        var wanted = days.ToHashSet();
        foreach (var (day, dayHits) in byDay.Where(d => wanted.Contains(d.Key)).OrderBy(d => d.Key))
        {
            // Only uploads matched before the entry was live: later ones were matched against it already.
            var uploads = _log.Get(day, dayHits.Select(h => h.LogId));
            hits.AddRange(dayHits.Where(h => uploads.TryGetValue(h.LogId, out var u) && u.Upload.BankSequence < h.Entry.Seq));
        }

        return hits;
    }

    /// <summary>
    /// Removes a dropped partition from the snapshot files (retention): deletes the day's own snapshots and
    /// rewrites a merged week that holds it without its rows (deleting the week once no day is left), so no
    /// hash of an expired upload stays on disk.
    /// </summary>
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

        var monday = WeekOf(day);
        var bit = 1 << Offset(monday, day);
        foreach (var w in WeekSnapshots(directory, monday).Where(w => (w.Mask & bit) != 0))
        {
            var mask = w.Mask & ~bit;
            if (mask != 0)
            {
                try
                {
                    using var old = PdqIndex.Load(w.File);
                    var hashes = new List<PdqHash>();
                    var ids = new List<long>();
                    old.CopyLiveTo(hashes, ids, id => (mask & (1 << (int)(id >> RowBits))) != 0);
                    using var kept = new PdqIndex();
                    kept.AddRange(CollectionsMarshal.AsSpan(hashes), CollectionsMarshal.AsSpan(ids));
                    var max = (long[])w.Max.Clone();
                    max[Offset(monday, day)] = 0;
                    kept.Save(Path.Combine(directory, WeekName(monday, mask, max)));
                }
                catch (InvalidDataException)
                {
                    // A damaged week is only a cache: its days are read from their rows at the next search.
                }
            }

            File.Delete(w.File);
        }
    }

    /// <summary>The snapshot files holding a partition: its own, or the merged week's that includes it (tests).</summary>
    public static IReadOnlyList<string> Snapshots(string directory, int day)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var monday = WeekOf(day);
        var bit = 1 << Offset(monday, day);
        return [.. Directory.GetFiles(directory, string.Create(CultureInfo.InvariantCulture, $"d{day}-*.pdq")), .. WeekSnapshots(directory, monday).Where(w => (w.Mask & bit) != 0).Select(w => w.File)];
    }

    /// <summary>The Monday (yyyymmdd) of a day's week.</summary>
    public static int WeekOf(int day)
    {
        var d = DateOf(day);
        return DayOf(d.AddDays(-(((int)d.DayOfWeek + 6) % 7)));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _parts.Values.Concat(_weeks.Values))
        {
            p.Index.Dispose();
        }

        _parts.Clear();
        _weeks.Clear();
    }

    private static void SearchIndex(
        PdqIndex index, List<(NewEntry Entry, PdqHash Hash)> pdq, List<PdqMatch> found, Dictionary<long, int> best, Func<long, (int Day, long Row)> decode, Func<int, List<RetroHit>> dayHits)
    {
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
                var (day, row) = decode(id);
                dayHits(day).Add(new RetroHit(entry, day, row, d));
            }
        }
    }

    /// <summary>
    /// vPDQ entries against a day's logged videos: one frame index over the videos (built per pass: videos are a
    /// small share of uploads), each entry a query. The live match asks whether enough of the upload's frames
    /// are in the bank video; here the upload is the indexed side, so the two percentage thresholds swap.
    /// </summary>
    private void SearchVideos(int day, List<(NewEntry Entry, VpdqHash Hash)> entries, Func<int, List<RetroHit>> dayHits)
    {
        var logged = _log.ReadExtra(day, SignalTypes.Vpdq.Name);
        if (logged.Count == 0)
        {
            return;
        }

        using var videos = new VideoIndex();
        foreach (var (id, value) in logged)
        {
            if (VpdqHash.TryParse(value, out var h, out _))
            {
                videos.AddVpdq(id, h);
            }
        }

        var options = new VideoMatchOptions(QueryMatchPercent: VpdqMatcher.ComparedMatchThresholdPercent, ComparedMatchPercent: VpdqMatcher.QueryMatchThresholdPercent);
        foreach (var (entry, hash) in entries)
        {
            foreach (var m in videos.Match(hash, null, options))
            {
                dayHits(day).Add(new RetroHit(entry, day, m.Id, 0));
            }
        }
    }

    /// <summary>
    /// TMK+PDQF entries against a day's logged videos that have TMK: level 1 (cosine of the pure averages) then
    /// level 2 (the temporal kernel), both ≥ 0.7 as the live match (<see cref="VideoSignalIndex"/>) asks.
    /// </summary>
    private void SearchTmk(int day, List<(NewEntry Entry, TmkFeatures Features)> entries, Func<int, List<RetroHit>> dayHits)
    {
        var logged = _log.ReadExtra(day, SignalTypes.TmkPdqf.Name);
        if (logged.Count == 0)
        {
            return;
        }

        using var videos = new VideoIndex();
        foreach (var (id, value) in logged)
        {
            if (TmkHasher.TryParseSignal(value, out var f, out _) && f is not null)
            {
                videos.AddTmk(id, f);
            }
        }

        foreach (var (entry, features) in entries)
        {
            foreach (var m in videos.Match(null, features))
            {
                dayHits(day).Add(new RetroHit(entry, day, m.Id, 0));
            }
        }
    }

    private static DateOnly DateOf(int day) => new(day / 10000, day / 100 % 100, day % 100);

    private static int DayOf(DateOnly d) => (d.Year * 10000) + (d.Month * 100) + d.Day;

    private static int AddDays(int day, int n) => DayOf(DateOf(day).AddDays(n));

    private static int Offset(int monday, int day) => DateOf(day).DayNumber - DateOf(monday).DayNumber;

    private static string WeekName(int monday, int mask, long[] max) =>
        string.Create(CultureInfo.InvariantCulture, $"w{monday}-{mask}-{string.Join('_', max)}.pdq");

    /// <summary>The merged snapshots of one week (file, days mask, highest row id per day); malformed names are ignored.</summary>
    private static List<(string File, int Mask, long[] Max)> WeekSnapshots(string directory, int monday)
    {
        var found = new List<(string, int, long[])>();
        foreach (var f in Directory.EnumerateFiles(directory, string.Create(CultureInfo.InvariantCulture, $"w{monday}-*.pdq")))
        {
            var parts = Path.GetFileNameWithoutExtension(f).Split('-');
            var max = parts.Length == 3 ? parts[2].Split('_') : [];
            if (max.Length == 7
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var mask) && mask is > 0 and < 128
                && max.All(m => long.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                found.Add((f, mask, max.Select(m => long.Parse(m, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray()));
            }
        }

        return found;
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
            part.Index.AddRange(CollectionsMarshal.AsSpan(hashes), CollectionsMarshal.AsSpan(ids));
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

    /// <summary>
    /// The merged index of a closed week's present days (<paramref name="mask"/>): opened from its snapshot, or
    /// built once from the days' own snapshots and rows (whose snapshots are then deleted), then given any rows
    /// logged to those days since.
    /// </summary>
    private Part RefreshWeek(int monday, int mask)
    {
        var dir = _log.SnapshotDirectory;
        if (!_weeks.TryGetValue(monday, out var part))
        {
            part = OpenWeek(dir, monday, mask) ?? BuildWeek(monday, mask);
            _weeks[monday] = part;
        }

        var hashes = new List<PdqHash>();
        var ids = new List<long>();
        for (var o = 0; o < 7; o++)
        {
            if ((mask & (1 << o)) != 0)
            {
                ReadEncoded(AddDays(monday, o), o, part.Max[o], hashes, ids, part.Max);
            }
        }

        if (hashes.Count > 0)
        {
            part.Index.AddRange(CollectionsMarshal.AsSpan(hashes), CollectionsMarshal.AsSpan(ids));
            part.Unsaved += hashes.Count;
        }

        if (part.Unsaved > 0)
        {
            SaveWeek(monday, part);
        }

        return part;
    }

    private static Part? OpenWeek(string dir, int monday, int mask)
    {
        if (!Directory.Exists(dir))
        {
            return null;
        }

        foreach (var w in WeekSnapshots(dir, monday).Where(w => w.Mask == mask))
        {
            try
            {
                return new Part(PdqIndex.Load(w.File), 0) { Mask = mask, Max = w.Max };
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                TryDelete(w.File);
            }
        }

        return null;
    }

    private Part BuildWeek(int monday, int mask)
    {
        var hashes = new List<PdqHash>();
        var ids = new List<long>();
        var max = new long[7];
        for (var o = 0; o < 7; o++)
        {
            if ((mask & (1 << o)) == 0)
            {
                continue;
            }

            // The day's own index (snapshot) if it has one, then its rows past it.
            var day = AddDays(monday, o);
            var open = OpenSnapshot(day);
            var prefix = (long)o << RowBits;
            var before = ids.Count;
            open.Index.CopyLiveTo(hashes, ids);
            for (var i = before; i < ids.Count; i++)
            {
                ids[i] |= prefix;
            }

            max[o] = open.MaxId;
            open.Index.Dispose();
            ReadEncoded(day, o, open.MaxId, hashes, ids, max);
        }

        var index = new PdqIndex();
        index.AddRange(CollectionsMarshal.AsSpan(hashes), CollectionsMarshal.AsSpan(ids));
        return new Part(index, 0) { Mask = mask, Max = max, Unsaved = Math.Max(1, hashes.Count) };
    }

    /// <summary>Reads a day's PDQ rows after <paramref name="afterId"/> with week-encoded ids; advances max[offset].</summary>
    private void ReadEncoded(int day, int offset, long afterId, List<PdqHash> hashes, List<long> ids, long[] max)
    {
        var before = ids.Count;
        _log.ReadPdq(day, afterId, hashes, ids);
        if (ids.Count == before)
        {
            return;
        }

        max[offset] = ids[^1];
        var prefix = (long)offset << RowBits;
        for (var i = before; i < ids.Count; i++)
        {
            if (ids[i] is <= 0 or > RowMask)
            {
                throw new InvalidDataException($"Signal log row id {ids[i]} of partition {day} does not fit a merged week's {RowBits}-bit row field.");
            }

            ids[i] |= prefix;
        }
    }

    private void SaveWeek(int monday, Part part)
    {
        var dir = _log.SnapshotDirectory;
        try
        {
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, WeekName(monday, part.Mask, part.Max));
            part.Index.Save(path);
            foreach (var old in WeekSnapshots(dir, monday).Select(w => w.File).Where(f => !string.Equals(f, path, StringComparison.Ordinal)))
            {
                TryDelete(old);
            }

            // The week now holds these days: their own snapshots would only double the disk.
            for (var o = 0; o < 7; o++)
            {
                if ((part.Mask & (1 << o)) != 0)
                {
                    foreach (var f in Directory.EnumerateFiles(dir, string.Create(CultureInfo.InvariantCulture, $"d{AddDays(monday, o)}-*.pdq")))
                    {
                        TryDelete(f);
                    }
                }
            }

            part.Unsaved = 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Without a snapshot the week is rebuilt next time: slower, never wrong.
        }
    }

    private Part OpenSnapshot(int day)
    {
        var dir = _log.SnapshotDirectory;
        var newest = (Directory.Exists(dir) ? Directory.GetFiles(dir, string.Create(CultureInfo.InvariantCulture, $"d{day}-*.pdq")) : [])
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
            foreach (var old in Directory.GetFiles(dir, string.Create(CultureInfo.InvariantCulture, $"d{day}-*.pdq")).Where(f => !string.Equals(f, path, StringComparison.Ordinal)))
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

        /// <summary>A merged week: the days (bit = day of week from Monday) it holds.</summary>
        public int Mask { get; init; }

        /// <summary>A merged week: the highest row id indexed per day of week.</summary>
        public long[] Max { get; init; } = [];
    }
}

/// <summary>
/// One retroactive pass: reads the bank change feed from the log's checkpoint, searches the entries that
/// became live against the signal log, and records each hit once (<see cref="SignalLog.RecordMatch(SignalMatch)"/>;
/// key "rt:ENTRY:DAY:ID"), then advances the checkpoint. Safe to repeat and to run on several nodes: a hit
/// recorded twice is one row. A page of the feed with at least the fan-out size of entries is not searched
/// here: it becomes one <see cref="RetroTasks"/> task per log unit for the backfill workers.
/// </summary>
public static class RetroactivePass
{
    /// <summary>The checkpoint's name in the log's state table.</summary>
    public const string Checkpoint = "retroactive_seq";

    /// <summary>Runs until the change feed is caught up; returns the matches newly recorded here (fanned-out deltas record theirs in the workers).</summary>
    /// <param name="banks">The banks (change feed).</param>
    /// <param name="log">The signal log.</param>
    /// <param name="search">This process's search.</param>
    /// <param name="pageLimit">Entries read per page of the feed (one delta).</param>
    /// <param name="fanOutAt">A delta of at least this many live entries is fanned out over the workers; 0: never.</param>
    public static IReadOnlyList<SignalMatch> Run(BankStore banks, SignalLog log, RetroactiveSearch search, int pageLimit = 10_000, int fanOutAt = 0)
    {
        ArgumentNullException.ThrowIfNull(banks);
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(search);
        ArgumentOutOfRangeException.ThrowIfNegative(fanOutAt);
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
                var entries = LiveEntries(banks, batch.Entries);
                if (fanOutAt > 0 && entries.Count >= fanOutAt)
                {
                    // Created before the checkpoint moves: a crash in between repeats this with the same keys.
                    new RetroTasks(log).Create(after, batch.HighWater, entries.Count, RetroactiveSearch.Units(log));
                }
                else if (entries.Count > 0)
                {
                    var hits = search.Search(entries);
                    using var c = log.Open();
                    using var tx = c.BeginTransaction();
                    recorded.AddRange(Record(log, c, tx, hits));
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

    /// <summary>The entries of change range (after, high] that are live in enabled block lists now (a fanned-out task's delta).</summary>
    public static IReadOnlyList<NewEntry> ReadDelta(BankStore banks, long after, long high)
    {
        ArgumentNullException.ThrowIfNull(banks);
        var entries = new List<NewEntry>();
        var changes = new List<EntryChange>();
        while (after < high)
        {
            var batch = banks.ChangesSince(after, 10_000);
            changes.AddRange(batch.Entries.Where(e => e.Seq <= high));
            if (!batch.HasMore || batch.HighWater <= after)
            {
                break;
            }

            after = batch.HighWater;
        }

        entries.AddRange(LiveEntries(banks, changes));
        return entries;
    }

    /// <summary>Records hits inside the caller's transaction, each once by key; returns those newly recorded.</summary>
    public static IReadOnlyList<SignalMatch> Record(SignalLog log, System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, IReadOnlyList<RetroHit> hits)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(hits);
        var recorded = new List<SignalMatch>();

        // Read before writing: the reads use their own connection, which must not wait on this transaction's writes.
        var groups = hits.GroupBy(h => h.Day).Select(g => (Hits: g.ToList(), Uploads: log.Get(g.Key, g.Select(h => h.LogId)))).ToList();
        foreach (var (group, uploads) in groups)
        {
            foreach (var h in group)
            {
                var u = uploads[h.LogId];
                var match = new SignalMatch(
                    string.Create(CultureInfo.InvariantCulture, $"rt:{h.Entry.EntryId}:{h.Day}:{h.LogId}"), "retroactive", h.Day, h.LogId, h.Entry.BankId, h.Entry.EntryId,
                    h.Entry.SignalType, h.Distance, u.Upload.Uploader, u.Upload.ContentId, u.Upload.UploadedAt, u.Sha256);
                if (log.RecordMatch(connection, transaction, match))
                {
                    recorded.Add(match);
                }
            }
        }

        return recorded;
    }

    private static List<NewEntry> LiveEntries(BankStore banks, IReadOnlyList<EntryChange> changes)
    {
        if (changes.Count == 0)
        {
            return [];
        }

        var bankById = banks.ListBanks().ToDictionary(b => b.Id);
        return changes
            .Where(e => e.Live && bankById.TryGetValue(e.BankId, out var b) && b.Enabled && b.Kind == BankKind.BlockList)
            .Select(e => new NewEntry(e.Id, e.BankId, e.SignalType, e.Signal, (SignalTypes.TryGet(e.SignalType, out var type) ? bankById[e.BankId].ThresholdFor(type) : 0), e.Seq))
            .ToList();
    }
}
