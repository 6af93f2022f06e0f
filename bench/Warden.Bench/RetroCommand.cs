using System.Diagnostics;
using System.Globalization;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// `retro [--uploads 10m] [--days 10] [--merge 1|7] [--order partition|entry] [--variants 1] [--delta 10000] [--data clustered|uniform] [--dir DIR]`:
/// retroactive matching of a delta of new PDQ entries against a signal log's partition indexes, one core.
/// Builds one index per partition over the uploads' hashes (a day, or with --merge 7 a merged week of 7 days,
/// as RetroactiveSearch keeps closed weeks), saves each as the snapshot the server keeps, loads them
/// memory-mapped and times the delta's queries (radius 31) partition by partition, best variant per upload, as
/// RetroactiveSearch does. Reports wall and CPU time (CPU time is what one idle core would take: the dev
/// machine is shared) and the load average. `retro db [--uploads 200k] ...` runs the same end to end through a real
/// SQLite signal log (SignalLog + RetroactiveSearch): write, first search (builds snapshots), second search.
/// </summary>
internal static class RetroCommand
{
    public static int Run(string[] args)
    {
        if (args.FirstOrDefault() == "db")
        {
            return Db(args);
        }

        var uploads = Size(Option(args, "--uploads", "10m"));
        var days = int.Parse(Option(args, "--days", "10"), CultureInfo.InvariantCulture);
        var merge = Math.Max(1, int.Parse(Option(args, "--merge", "1"), CultureInfo.InvariantCulture));
        var variants = int.Parse(Option(args, "--variants", "1"), CultureInfo.InvariantCulture);
        var delta = Size(Option(args, "--delta", "10000"));
        var clustered = Option(args, "--data", "clustered") == "clustered";
        var dir = Directory.CreateDirectory(Option(args, "--dir", Path.Combine(Path.GetTempPath(), "warden-retro-bench"))).FullName;
        Console.WriteLine($"uploads={uploads:N0} days={days} days/partition={merge} variants/upload={variants} delta={delta:N0} data={(clustered ? "clustered" : "uniform")} radius=31");

        var rng = new Random(7);
        var centres = Enumerable.Range(0, 1000).Select(_ => Hash(rng)).ToArray();
        var samples = new List<PdqHash>();
        var build = Stopwatch.StartNew();
        var files = new List<string>();
        long id = 1;
        for (var first = 0; first < days; first += merge)
        {
            // One partition: `merge` consecutive days in one index, as a merged week is.
            var partDays = Math.Min(merge, days - first);
            var n = Enumerable.Range(first, partDays).Sum(d => (uploads / days) + (d < uploads % days ? 1 : 0));
            var hashes = new PdqHash[n * variants];
            var ids = new long[n * variants];
            for (var i = 0; i < n; i++, id++)
            {
                var h = clustered ? Flip(centres[rng.Next(centres.Length)], rng, rng.Next(41)) : Hash(rng);
                for (var v = 0; v < variants; v++)
                {
                    hashes[(i * variants) + v] = v == 0 ? h : Hash(rng); // other variants: unrelated bits, as a rotation's hash is
                    ids[(i * variants) + v] = id;
                }

                if (rng.Next(Math.Max(1, uploads / 20_000)) == 0)
                {
                    samples.Add(h);
                }
            }

            using var index = new PdqIndex();
            index.AddRange(hashes, ids);
            var file = Path.Combine(dir, $"d{20260101 + first}-{id}.pdq");
            index.Save(file);
            files.Add(file);
        }

        Console.WriteLine($"build + snapshot {build.Elapsed.TotalSeconds:F1} s ({new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length) / 1e6:F0} MB of snapshots)");
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);

        // Half the delta near logged uploads (0..31 bits away), half new content (misses), as a list's growth is.
        var entries = Enumerable.Range(0, delta).Select(i => i % 2 == 0 ? Flip(samples[rng.Next(samples.Count)], rng, rng.Next(32)) : Hash(rng)).ToArray();
        var rssBefore = Environment.WorkingSet;
        var load = Stopwatch.StartNew();
        var parts = files.Select(PdqIndex.Load).ToList();
        var loadTime = load.Elapsed;
        var found = new List<PdqMatch>();
        var best = new Dictionary<long, int>();
        long hits = 0;
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var query = Stopwatch.StartNew();

        // Partition by partition (as RetroactiveSearch does): each index's pages are touched once per delta;
        // --order entry runs the old loop (every partition per entry) for comparison.
        var byEntry = Option(args, "--order", "partition") == "entry";
        foreach (var (p, e) in byEntry ? entries.SelectMany(e => parts.Select(p => (p, e))) : parts.SelectMany(p => entries.Select(e => (p, e))))
        {
            found.Clear();
            best.Clear();
            p.Search(e, 31, found);
            foreach (var m in found)
            {
                best[m.Id] = best.TryGetValue(m.Id, out var x) ? Math.Min(x, m.Distance) : m.Distance;
            }

            hits += best.Count;
        }

        var queryTime = query.Elapsed;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load {parts.Count} snapshots (memory-mapped) {loadTime.TotalMilliseconds:F0} ms; {delta:N0} entries x {parts.Count} partitions: {queryTime.TotalSeconds:F2} s wall, {cpu.TotalSeconds:F2} s CPU on one thread ({cpu.TotalMilliseconds * 1000 / delta:F0} us/entry), {hits:N0} hits"));
        Console.WriteLine($"load average {LoadAverage()} (2 cores)");
        Console.WriteLine($"RSS {Environment.WorkingSet / 1e6:F0} MB (before loading {rssBefore / 1e6:F0} MB), peak {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        foreach (var p in parts)
        {
            p.Dispose();
        }

        Directory.Delete(dir, recursive: true);
        return 0;
    }

    private static int Db(string[] args)
    {
        var uploads = Size(Option(args, "--uploads", "200k"));
        var days = int.Parse(Option(args, "--days", "4"), CultureInfo.InvariantCulture);
        var delta = Size(Option(args, "--delta", "10000"));
        var dir = Directory.CreateTempSubdirectory("warden-retro-db-").FullName;
        var clock = new Clock { Now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero) };
        using var db = WardenDatabase.Open(Path.Combine(dir, "w.db"));
        var log = new SignalLog(db, Path.Combine(dir, "snap"), time: clock);
        var rng = new Random(9);
        var centres = Enumerable.Range(0, 1000).Select(_ => Hash(rng)).ToArray();
        var samples = new List<PdqHash>();
        var write = Stopwatch.StartNew();
        for (var d = 0; d < days; d++)
        {
            clock.Now = clock.Now.AddDays(1);
            log.EnsurePartition();
            var n = uploads / days;
            for (var done = 0; done < n; done += 10_000)
            {
                using var c = log.Open();
                using var tx = c.BeginTransaction();
                for (var i = done; i < Math.Min(n, done + 10_000); i++)
                {
                    var h = Flip(centres[rng.Next(centres.Length)], rng, rng.Next(41));
                    if (rng.Next(100) == 0)
                    {
                        samples.Add(h);
                    }

                    var sha = Convert.ToHexStringLower(BitConverter.GetBytes(((long)d << 32) | (long)i)).PadLeft(64, '0');
                    log.Append(c, tx, new LoggedSignals([h], 90, null, [("md5", sha[..32]), ("sha1", sha[..40]), ("sha256", sha)]), new UploadRecord("user-" + (i % 5000).ToString(CultureInfo.InvariantCulture), "content-" + i.ToString(CultureInfo.InvariantCulture), null, clock.Now, "api", 1));
                }

                tx.Commit();
            }
        }

        var writeTime = write.Elapsed;
        var bytes = new FileInfo(Path.Combine(dir, "w.db")).Length + (File.Exists(Path.Combine(dir, "w.db-wal")) ? new FileInfo(Path.Combine(dir, "w.db-wal")).Length : 0);
        using (var c = db.OpenConnection())
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;";
            cmd.ExecuteNonQuery();
        }

        bytes = new FileInfo(Path.Combine(dir, "w.db")).Length;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"signal log: {uploads:N0} uploads in {days} partitions written in {writeTime.TotalSeconds:F1} s; {bytes / 1e6:F1} MB on disk = {bytes / (double)uploads * 1e6 / 1e9:F2} GB per million uploads (1 PDQ + 3 digests each)"));
        clock.Now = clock.Now.AddDays(1); // every partition closed
        var entries = Enumerable.Range(0, delta).Select(i => new NewEntry(i + 1, 1, "pdq", (i % 2 == 0 ? Flip(samples[rng.Next(samples.Count)], rng, rng.Next(32)) : Hash(rng)).ToString(), 31, 2)).ToList();
        using (var search = new RetroactiveSearch(log))
        {
            var first = Stopwatch.StartNew();
            var hits = search.Search(entries).Count;
            Console.WriteLine($"first search (reads the partitions, builds and saves their snapshots): {first.Elapsed.TotalSeconds:F2} s, {hits:N0} hits");
        }

        using (var search = new RetroactiveSearch(log))
        {
            var second = Stopwatch.StartNew();
            var hits = search.Search(entries).Count;
            Console.WriteLine($"search from the snapshots (a new process): {second.Elapsed.TotalSeconds:F2} s, {hits:N0} hits; peak RSS {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static PdqHash Hash(Random rng) => new((ulong)rng.NextInt64() * 2 + (ulong)rng.Next(2), (ulong)rng.NextInt64() * 2 + (ulong)rng.Next(2), (ulong)rng.NextInt64() * 2 + (ulong)rng.Next(2), (ulong)rng.NextInt64() * 2 + (ulong)rng.Next(2));

    private static PdqHash Flip(PdqHash h, Random rng, int bits)
    {
        Span<ulong> w = [h.W0, h.W1, h.W2, h.W3];
        for (var i = 0; i < bits; i++)
        {
            var b = rng.Next(256);
            w[b >> 6] ^= 1UL << (b & 63);
        }

        return new PdqHash(w[0], w[1], w[2], w[3]);
    }

    private static int Size(string s) => s.ToLowerInvariant() switch
    {
        var x when x.EndsWith('m') => (int)(double.Parse(x[..^1], CultureInfo.InvariantCulture) * 1_000_000),
        var x when x.EndsWith('k') => (int)(double.Parse(x[..^1], CultureInfo.InvariantCulture) * 1_000),
        var x => int.Parse(x, CultureInfo.InvariantCulture),
    };

    private static string Option(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    private sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; }

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
