using System.Globalization;
using FsCheck;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Matching;
using Warden.Core.Signals;

namespace Warden.Storage.Tests.SignalLog;

/// <summary>
/// Retroactive search equals a brute-force scan of the whole log: every (entry, upload) pair with the best
/// variant's distance within the entry's threshold and the upload matched before the entry went live, and
/// nothing else; on random and clustered data, over several partitions, from fresh and snapshotted indexes.
/// </summary>
public sealed class RetroactiveSearchTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero); // a Sunday

    [Property(MaxTest = 25)]
    public void Equals_brute_force_on_random_and_clustered_logs(int seed, bool clustered, byte daysRaw)
    {
        var rng = new Random(seed);
        var days = 1 + (daysRaw % 3);
        Check(rng, uploads: rng.Next(1, 100), entries: rng.Next(1, 30), days, clustered, radiusMax: 64);
    }

    [Property(MaxTest = 15)]
    public void Equals_brute_force_when_closed_weeks_are_merged(int seed, bool clustered, byte daysRaw, byte firstRaw)
    {
        // 1 to 16 days from any weekday: whole and partial weeks, merged once their Sunday is past.
        var rng = new Random(seed);
        Check(rng, uploads: rng.Next(1, 25), entries: rng.Next(1, 20), days: 1 + (daysRaw % 16), clustered, radiusMax: 64, first: Start.AddDays(firstRaw % 7));
    }

    [Fact]
    public void Equals_brute_force_where_partitions_are_large_enough_for_multi_index_segments()
    {
        // Over 4,096 variants a partition's index seals multi-index segments (the tail alone is a scan).
        Check(new Random(17), uploads: 1500, entries: 200, days: 2, clustered: true, radiusMax: 40);
    }

    [Fact]
    public void A_week_searched_while_open_is_merged_when_it_closes_and_sees_rows_logged_late()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start.AddDays(1)); // Monday 2 March
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), time: clock);
        var rng = new Random(23);
        var rows = new List<Row>();
        for (var d = 0; d < 7; d++)
        {
            clock.Now = Start.AddDays(1 + d);
            rows.AddRange(Append(log, clock, rng, 30, () => Hashes.Random(rng)));
        }

        var news = Entries(rng, rows, 40, () => Hashes.Random(rng), 50);

        // Sunday: the week is open, its days have their own snapshots.
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows), Found(search, news));
            Assert.Equal(0, search.OpenWeeks);
        }

        var days = log.Partitions();
        Assert.All(days.SkipLast(1), d => Assert.StartsWith("d", Path.GetFileName(Assert.Single(RetroactiveSearch.Snapshots(log.SnapshotDirectory, d))), StringComparison.Ordinal));

        // Monday: one merged index replaces the seven days' snapshots.
        clock.Now = Start.AddDays(8);
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows), Found(search, news));
            Assert.Equal(1, search.OpenWeeks);
            Assert.Equal(1, search.OpenPartitions);
        }

        var week = Assert.Single(Directory.GetFiles(log.SnapshotDirectory));
        Assert.StartsWith("w20260302-127-", Path.GetFileName(week), StringComparison.Ordinal);
        Assert.All(days, d => Assert.Equal(week, Assert.Single(RetroactiveSearch.Snapshots(log.SnapshotDirectory, d))));

        // A node with a late clock still logs to Sunday: the merged week picks the rows up (exactly once).
        clock.Now = Start.AddDays(7);
        var late = Append(log, clock, rng, 5, () => Hashes.Random(rng));
        rows.AddRange(late);
        clock.Now = Start.AddDays(8);
        var more = news.Concat(late.Select((r, i) => new NewEntry(1000 + i, 1, "pdq", Hashes.Flip(r.All[0], rng, 3).ToString(), 10, 200))).ToList();
        using (var search = new RetroactiveSearch(log))
        {
            var found = Found(search, more);
            Assert.Equal(Expected(more, rows), found);
            Assert.Equal(late.Count, found.Count(f => f.Item1 >= 1000 && late.Any(r => r.Id == f.Item3 && r.Day == f.Item2)));
        }
    }

    [Fact]
    public void Retention_rewrites_a_merged_week_without_the_dropped_days()
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start.AddDays(1));
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), retentionDays: 10, time: clock);
        var rng = new Random(29);
        var rows = new List<Row>();
        for (var d = 1; d <= 14; d++)
        {
            clock.Now = Start.AddDays(d); // Monday 2 March .. Sunday 15 March: two whole weeks
            rows.AddRange(Append(log, clock, rng, 12, () => Hashes.Random(rng)));
        }

        clock.Now = Start.AddDays(15);
        var news = Entries(rng, rows, 60, () => Hashes.Random(rng), 40);
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows), Found(search, news));
            Assert.Equal(2, search.OpenWeeks);
        }

        // 10 days' retention on 16 March drops 2..5 March: the first week keeps 6..8 March only.
        var dropped = log.DropExpired();
        Assert.Equal(new[] { 20260302, 20260303, 20260304, 20260305 }, dropped);
        Assert.All(dropped, d => Assert.Empty(RetroactiveSearch.Snapshots(log.SnapshotDirectory, d)));
        var kept = rows.Where(r => !dropped.Contains(r.Day)).ToList();
        var first = Assert.Single(RetroactiveSearch.Snapshots(log.SnapshotDirectory, 20260306));
        Assert.StartsWith("w20260302-112-", Path.GetFileName(first), StringComparison.Ordinal);
        using (var index = PdqIndex.Load(first))
        {
            // No hash of an expired upload is left on disk.
            Assert.Equal(kept.Where(r => r.Day < 20260309).Sum(r => r.All.Length), index.Count);
        }

        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, kept), Found(search, news));
        }

        // Retention takes the rest of the week: its snapshot goes too.
        clock.Now = Start.AddDays(18);
        Assert.Equal(new[] { 20260306, 20260307, 20260308 }, log.DropExpired());
        Assert.DoesNotContain(Directory.GetFiles(log.SnapshotDirectory), f => Path.GetFileName(f).StartsWith("w20260302-", StringComparison.Ordinal));
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows.Where(r => r.Day >= 20260309).ToList()), Found(search, news));
        }
    }

    [Property(MaxTest = 20)]
    public void Vpdq_entries_equal_pairwise_comparison_with_every_logged_video(int seed, bool closeWeek) => CheckVpdq(seed, closeWeek);

    [Fact]
    public void Vpdq_generator_produces_hits_and_misses()
    {
        // Guards the property above against a generator that never (or always) matches.
        var hits = Enumerable.Range(0, 6).Select(seed => CheckVpdq(seed, seed % 2 == 0)).ToList();
        Assert.Contains(hits, h => h.Hits > 0);
        Assert.Contains(hits, h => h.Misses > 0);
    }

    [Property(MaxTest = 15)]
    public void Exact_entries_digests_and_model_fingerprints_equal_a_scan(int seed)
    {
        // Exact types, model fingerprints (what a file's provenance names) included: every logged (type, value)
        // equal to an entry's, from uploads matched before it, across days and a merged week.
        using var dir = new TempDir();
        var rng = new Random(seed);
        var clock = new ManualClock(Start);
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), time: clock);
        string[] types = [SignalTypes.Md5.Name, SignalTypes.Sha256.Name, SignalTypes.CivitaiAutoV2.Name, SignalTypes.Mfv1Model.Name];
        var pool = Enumerable.Range(0, 12).Select(i => rng.Next(1000).ToString("x10", CultureInfo.InvariantCulture)).ToArray();
        var rows = new List<(int Day, long Id, HashSet<(string, string)> Signals, long Seq)>();
        for (var d = 0; d < 1 + rng.Next(9); d++)
        {
            clock.Now = Start.AddDays(d);
            for (var i = 0; i < rng.Next(1, 12); i++)
            {
                var signals = Enumerable.Range(0, rng.Next(0, 4)).Select(_ => (types[rng.Next(types.Length)], pool[rng.Next(pool.Length)])).ToHashSet();
                var seq = rng.Next(100);
                var (day, id) = log.Append(new LoggedSignals(null, 0, null, [.. signals]), new UploadRecord("u", "c", null, clock.Now, "api", seq));
                rows.Add((day, id, signals, seq));
            }
        }

        var news = Enumerable.Range(0, rng.Next(1, 10)).Select(e => new NewEntry(e + 1, 1, types[rng.Next(types.Length)], pool[rng.Next(pool.Length)], 0, rng.Next(100))).ToList();
        var expected = news.SelectMany(e => rows.Where(r => r.Seq < e.Seq && r.Signals.Contains((e.SignalType, e.Signal))).Select(r => (e.EntryId, r.Day, r.Id, 0))).ToHashSet();
        clock.Now = Start.AddDays(10);
        using var search = new RetroactiveSearch(log);
        Assert.Equal(expected, Found(search, news));
    }

    [Theory]
    [InlineData("")]
    [InlineData("d")]
    [InlineData("x20260302")]
    [InlineData("d2026030")]
    [InlineData("d202603022")]
    [InlineData("d20261302")]
    [InlineData("w20260230")]
    [InlineData("d+2026030")]
    [InlineData("d 2026030")]
    [InlineData("D20260302")]
    [InlineData("d２０２６０３０２")]
    public void A_malformed_unit_is_a_format_error_before_any_search(string unit)
    {
        Assert.Throws<FormatException>(() => RetroactiveSearch.InUnit(unit, 20260302));
        using var dir = new TempDir();
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        using var search = new RetroactiveSearch(new Storage.SignalLog(db, Path.Combine(dir.Path, "snap")));
        Assert.Throws<FormatException>(() => search.Search([], unit)); // even with no partition to test it against
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public void Tmk_entries_equal_pairwise_level1_and_level2_with_every_logged_video(int seed, bool closeWeek)
    {
        using var dir = new TempDir();
        var rng = new Random(seed);
        var clock = new ManualClock(Start.AddDays(1));
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), time: clock);

        // Frame features (PDQF: 256 floats): a few base clips; a copy is the same frames with noise of a random size.
        var bases = Enumerable.Range(0, 3).Select(_ => Frames(rng, rng.Next(20, 40))).ToArray();
        float[][] Copy(float[][] frames, double noise) => [.. frames.Select(f => f.Select(x => x + (float)(rng.NextDouble() - 0.5) * (float)noise).ToArray())];
        float[][] Clip() => rng.Next(3) == 0 ? Frames(rng, rng.Next(20, 40)) : Copy(bases[rng.Next(bases.Length)], rng.NextDouble() * 3);

        using var hasher = new Warden.Core.Hashing.ContentHasher();
        var videos = new List<(int Day, long Id, TmkFeatures Tmk, long Seq)>();
        for (var d = 0; d < 3; d++)
        {
            clock.Now = Start.AddDays(1 + d);
            for (var i = 0; i < 4; i++)
            {
                var seq = rng.Next(0, 100);
                var tmk = Tmk(Clip());

                // Logged as the match path logs a video (the adapter), with a vPDQ beside it for good measure.
                var digests = hasher.HashStream(new MemoryStream([(byte)d, (byte)i, 1, 2, 3]));
                var video = new VideoHashes(new VideoInfo(0, 1, "h264", 64, 64, 15, 1, 2, 30, 0, "mp4"), new VpdqHash([new VpdqFrame(0, 90, Hashes.Random(rng), 0)]), tmk, null, TimeSpan.Zero);
                var signals = SignalLogAdapter.From(digests, video);
                Assert.Contains("\"tmk_pdqf\"", signals.Extra, StringComparison.Ordinal);
                var (day, id) = log.Append(signals, new UploadRecord("u", "c" + i, null, clock.Now, "api", seq));
                videos.Add((day, id, tmk, seq));
            }
        }

        var news = Enumerable.Range(0, 8).Select(e => new NewEntry(e + 1, 1, "tmk_pdqf", TmkHasher.ToSignal(Tmk(Clip())), 70, rng.Next(0, 100))).ToList();
        var expected = new HashSet<(long, int, long, int)>();
        foreach (var e in news)
        {
            Assert.True(TmkHasher.TryParseSignal(e.Signal, out var q, out _));
            foreach (var v in videos.Where(v => v.Seq < e.Seq && TmkFeatures.Level1(q!, v.Tmk) >= TmkFeatures.DefaultLevel1Threshold && TmkFeatures.Level2(q!, v.Tmk) >= TmkFeatures.DefaultLevel2Threshold))
            {
                expected.Add((e.EntryId, v.Day, v.Id, 0));
            }
        }

        Assert.NotEmpty(expected); // the generator makes hits and misses
        Assert.True(expected.Count < news.Count * videos.Count, "some pairs must miss");
        clock.Now = closeWeek ? Start.AddDays(8) : Start.AddDays(4);
        using var search = new RetroactiveSearch(log);
        Assert.Equal(expected, Found(search, news));

        static float[][] Frames(Random rng, int n) => [.. Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, TmkFeatures.PdqfDimension).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray())];

        static TmkFeatures Tmk(float[][] frames)
        {
            var f = TmkFeatures.CreatePoullot();
            var scratch = new float[TmkFeatures.PdqfDimension];
            foreach (var frame in frames)
            {
                f.Ingest(frame, scratch);
            }

            f.Finish();
            return f;
        }
    }

    private static (int Hits, int Misses) CheckVpdq(int seed, bool closeWeek)
    {
        using var dir = new TempDir();
        var rng = new Random(seed);
        var clock = new ManualClock(Start.AddDays(1));
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), time: clock);
        var scenes = Enumerable.Range(0, 6).Select(_ => Hashes.Random(rng)).ToArray();
        VpdqHash Video(PdqHash[]? near = null)
        {
            // Frames drawn from a few scenes (so videos share content), some below the quality bar.
            var n = near?.Length ?? rng.Next(1, 10);
            return new VpdqHash([.. Enumerable.Range(0, n).Select(i => new VpdqFrame(i, rng.Next(4) == 0 ? rng.Next(0, 50) : rng.Next(50, 101), Hashes.Flip(near?[i] ?? scenes[rng.Next(scenes.Length)], rng, rng.Next(0, 45)), i))]);
        }

        var videos = new List<(int Day, long Id, VpdqHash Hash, long Seq)>();
        for (var d = 0; d < 3; d++)
        {
            clock.Now = Start.AddDays(1 + d);
            for (var i = 0; i < rng.Next(1, 15); i++)
            {
                var seq = rng.Next(0, 100);
                var kind = rng.Next(6);
                var v = Video();
                var extra = kind switch
                {
                    0 => null, // an image: no video signals
                    1 => "{not json", // damaged: skipped, never fatal
                    _ => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["vpdq"] = v.ToSignal() }),
                };
                var (day, id) = log.Append(new LoggedSignals(null, 0, null, [("md5", i.ToString("x32", CultureInfo.InvariantCulture))], extra), new UploadRecord("u", "c" + i, null, clock.Now, "api", seq));
                if (kind > 1)
                {
                    videos.Add((day, id, v, seq));
                }
            }
        }

        var news = Enumerable.Range(0, rng.Next(1, 12)).Select(e =>
        {
            var h = rng.Next(2) == 0 && videos.Count > 0 ? Video([.. videos[rng.Next(videos.Count)].Hash.Frames.Select(f => f.Hash)]) : Video();
            return new NewEntry(e + 1, 1, "vpdq", h.ToSignal(), 0, rng.Next(0, 100));
        }).ToList();
        var expected = new HashSet<(long, int, long, int)>();
        foreach (var e in news)
        {
            Assert.True(VpdqHash.TryParse(e.Signal, out var q, out _));
            foreach (var v in videos.Where(v => v.Seq < e.Seq && VpdqMatcher.Compare(v.Hash, q).IsMatch))
            {
                // The live rule: the upload is the query, the bank's video the compared one.
                expected.Add((e.EntryId, v.Day, v.Id, 0));
            }
        }

        clock.Now = closeWeek ? Start.AddDays(8) : Start.AddDays(4);
        using var search = new RetroactiveSearch(log);
        Assert.Equal(expected, Found(search, news));
        return (expected.Count, (news.Count * videos.Count) - expected.Count);
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("empty")]
    [InlineData("bad-name")]
    public void A_damaged_week_snapshot_is_rebuilt_from_the_rows_and_retention_still_removes_its_days(string damage)
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start.AddDays(1));
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), retentionDays: 10, time: clock);
        var rng = new Random(31);
        var rows = new List<Row>();
        for (var d = 1; d <= 7; d++)
        {
            clock.Now = Start.AddDays(d);
            rows.AddRange(Append(log, clock, rng, 700, () => Hashes.Random(rng))); // > 4,096 hashes: real segments
        }

        clock.Now = Start.AddDays(8);
        var news = Entries(rng, rows, 50, () => Hashes.Random(rng), 40);
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows), Found(search, news));
        }

        var week = Assert.Single(Directory.GetFiles(log.SnapshotDirectory));
        var bytes = File.ReadAllBytes(week);
        switch (damage)
        {
            case "flip":
                bytes[bytes.Length / 2] ^= 0x5A;
                File.WriteAllBytes(week, bytes);
                break;
            case "truncate":
                File.WriteAllBytes(week, bytes[..(bytes.Length / 3)]);
                break;
            case "empty":
                File.WriteAllBytes(week, []);
                break;
            default:
                File.Move(week, Path.Combine(log.SnapshotDirectory, "w20260302-999-x_y.pdq")); // not a week snapshot: ignored
                break;
        }

        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows), Found(search, news));
        }

        var rebuilt = Assert.Single(Directory.GetFiles(log.SnapshotDirectory, "w20260302-127-*.pdq"));
        using (PdqIndex.Load(rebuilt))
        {
        }

        // Damage again, then retention: it must not throw, and no snapshot may still hold the dropped days.
        File.WriteAllBytes(rebuilt, [1, 2, 3]);
        clock.Now = Start.AddDays(14);
        var dropped = log.DropExpired();
        Assert.Equal(new[] { 20260302, 20260303, 20260304 }, dropped);
        Assert.All(dropped, d => Assert.Empty(RetroactiveSearch.Snapshots(log.SnapshotDirectory, d)));
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(Expected(news, rows.Where(r => !dropped.Contains(r.Day)).ToList()), Found(search, news));
        }
    }

    private static void Check(Random rng, int uploads, int entries, int days, bool clustered, int radiusMax, DateTimeOffset? first = null)
    {
        var start = first ?? Start;
        using var dir = new TempDir();
        var clock = new ManualClock(start);
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), time: clock);
        var centres = Enumerable.Range(0, Math.Max(1, uploads / 10)).Select(_ => Hashes.Random(rng)).ToArray();
        PdqHash Next() => clustered ? Hashes.Flip(centres[rng.Next(centres.Length)], rng, rng.Next(0, 48)) : Hashes.Random(rng);

        var rows = new List<Row>();
        for (var d = 0; d < days; d++)
        {
            clock.Now = start.AddDays(d);
            rows.AddRange(Append(log, clock, rng, uploads, Next));
        }

        var news = Entries(rng, rows, entries, Next, radiusMax);
        var expected = Expected(news, rows);
        clock.Now = start.AddDays(days); // every partition written is now closed: its index is snapshotted
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(expected, Found(search, news));
        }

        // Fanned out (one work item per log unit, each in its own process): the units partition the log and the
        // union of their hits is the same set, each hit found by exactly one unit.
        var units = RetroactiveSearch.Units(log);
        Assert.All(log.Partitions(), d => Assert.Single(units, u => RetroactiveSearch.InUnit(u, d)));
        var union = new List<(long, int, long, int)>();
        foreach (var unit in units)
        {
            using var worker = new RetroactiveSearch(log);
            union.AddRange(worker.Search(news, unit).Select(h => (h.Entry.EntryId, h.Day, h.LogId, h.Distance)));
        }

        Assert.Equal(expected, union.ToHashSet());
        Assert.Equal(expected.Count, union.Count);

        // A new process loads the snapshots (memory-mapped; merged weeks where a week is over) and must find exactly the same.
        using (var again = new RetroactiveSearch(log))
        {
            Assert.Equal(expected, Found(again, news));
            var today = Storage.SignalLog.DayOf(clock.Now);
            var closedWeeks = log.Partitions().Select(RetroactiveSearch.WeekOf).Distinct().Count(m => DateOnly.ParseExact(m.ToString(CultureInfo.InvariantCulture), "yyyyMMdd", CultureInfo.InvariantCulture).AddDays(7) <= DateOnly.ParseExact(today.ToString(CultureInfo.InvariantCulture), "yyyyMMdd", CultureInfo.InvariantCulture));
            Assert.Equal(closedWeeks, again.OpenWeeks);
        }
    }

    private static List<Row> Append(Storage.SignalLog log, ManualClock clock, Random rng, int uploads, Func<PdqHash> next)
    {
        var rows = new List<Row>();
        for (var i = 0; i < uploads; i++)
        {
            var variants = Enumerable.Range(0, rng.Next(2) == 0 ? 1 : 8).Select(_ => next()).ToArray();
            var trimmed = rng.Next(4) == 0 ? new[] { next() } : null;
            var seq = rng.Next(0, 100);
            var (day, id) = log.Append(new LoggedSignals(variants, 80, trimmed, [("sha256", i.ToString("x64", CultureInfo.InvariantCulture))]), new UploadRecord("u" + i, "c" + i, null, clock.Now, "api", seq));
            rows.Add(new Row(day, id, [.. variants, .. trimmed ?? []], seq));
        }

        return rows;
    }

    private static List<NewEntry> Entries(Random rng, List<Row> rows, int entries, Func<PdqHash> next, int radiusMax) =>
        Enumerable.Range(0, entries).Select(e =>
        {
            // Half the entries are near a logged upload, so hits exist even on random data.
            var h = rng.Next(2) == 0 && rows.Count > 0 ? Hashes.Flip(rows[rng.Next(rows.Count)].All[0], rng, rng.Next(0, 40)) : next();
            return new NewEntry(e + 1, 1, "pdq", h.ToString(), rng.Next(0, radiusMax + 1), rng.Next(0, 100));
        }).ToList();

    private static HashSet<(long, int, long, int)> Expected(List<NewEntry> news, List<Row> rows)
    {
        var expected = new HashSet<(long, int, long, int)>();
        foreach (var e in news)
        {
            var q = PdqHash.Parse(e.Signal);
            foreach (var r in rows)
            {
                var best = r.All.Min(h => h.DistanceTo(q));
                if (best <= e.Threshold && r.Seq < e.Seq)
                {
                    expected.Add((e.EntryId, r.Day, r.Id, best));
                }
            }
        }

        return expected;
    }

    private static HashSet<(long, int, long, int)> Found(RetroactiveSearch search, List<NewEntry> news)
    {
        var hits = search.Search(news);
        var set = hits.Select(h => (h.Entry.EntryId, h.Day, h.LogId, h.Distance)).ToHashSet();
        Assert.Equal(hits.Count, set.Count); // each (entry, upload) once, whichever index held it
        return set;
    }

    private sealed record Row(int Day, long Id, PdqHash[] All, long Seq);
}

/// <summary>A temporary folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("warden-log-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
