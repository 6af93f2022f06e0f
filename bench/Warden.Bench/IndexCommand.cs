using System.Diagnostics;
using System.Globalization;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;

namespace Warden.Bench;

/// <summary>
/// `index [--size 10m] [--data uniform|clustered] [--radius 31] [--queries N] [--brute N] [--tables m] [--snapshot DIR]`:
/// builds a <see cref="PdqIndex"/> and reports build time, single and 8-variant queries/s, the brute-force scan
/// over the same hashes, and RSS. `index sweep --size N`: multi-index vs scan time per radius (the crossover).
/// Run under `taskset -c 0` for one-core figures.
/// </summary>
internal static class IndexCommand
{
    public static int Run(string[] args)
    {
        if (args.FirstOrDefault() == "sweep")
        {
            return Sweep(args);
        }

        var size = Size(Option(args, "--size", "1m"));
        var clustered = Option(args, "--data", "uniform") == "clustered";
        var radius = int.Parse(Option(args, "--radius", "31"), CultureInfo.InvariantCulture);
        var queryCount = int.Parse(Option(args, "--queries", "20000"), CultureInfo.InvariantCulture);
        var bruteCount = int.Parse(Option(args, "--brute", size >= 50_000_000 ? "10" : "100"), CultureInfo.InvariantCulture);
        var tables = int.Parse(Option(args, "--tables", "0"), CultureInfo.InvariantCulture);
        var snapshot = Option(args, "--snapshot", "");
        Console.WriteLine($"size={size:N0} data={(clustered ? "clustered" : "uniform")} radius={radius} cpus={Environment.ProcessorCount}");

        var rng = new Rng(12345);
        var centres = Enumerable.Range(0, 1000).Select(_ => rng.Hash()).ToArray();
        var samples = new List<PdqHash>();

        // Generate and add in chunks of one maximal segment so the input never costs more than one segment's worth.
        using var index = new PdqIndex(tables);
        var build = TimeSpan.Zero;
        long nextId = 1;
        for (var done = 0; done < size;)
        {
            var n = Math.Min(MihLayout.MaxSegment, size - done);
            build += AddChunk(index, n, clustered, centres, samples, rng, ref nextId);
            done += n;
        }

        // Aggressive: compact and give freed regions (the input chunks) back to the OS, so RSS is the index's.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var rss = Environment.WorkingSet;
        var segs = index.Segments;
        var t0 = segs[0].Tables;
        Console.WriteLine($"build {build.TotalSeconds:F2} s  segments={segs.Count} tables(seg0)={t0.Length} widths={string.Join('/', t0.ToArray().Select(t => t.Width).Distinct())} prefix={string.Join('/', t0.ToArray().Select(t => t.PrefixBits).Distinct())} scan-from-radius={segs[0].ScanFromRadius}");

        // Half misses (random), half hits (stored hashes with 0..radius bits flipped).
        var queries = new PdqHash[queryCount];
        for (var i = 0; i < queryCount; i++)
        {
            queries[i] = i % 2 == 0 ? rng.Hash() : rng.Flip(samples[rng.Next(samples.Count)], rng.Next(radius + 1));
        }

        var results = new List<PdqMatch>();
        long found = 0;
        var single = Time(() =>
        {
            found = 0;
            foreach (var q in queries)
            {
                results.Clear();
                index.Search(q, radius, results);
                found += results.Count;
            }
        });
        var variants = new PdqHash[8];
        var dihedralCount = Math.Max(1, queryCount / 8);
        var dihedral = Time(() =>
        {
            for (var i = 0; i < dihedralCount; i++)
            {
                // The query and 7 unrelated hashes: dihedral variants of a PDQ hash are as far apart as random ones.
                variants[0] = queries[i];
                for (var v = 1; v < 8; v++)
                {
                    variants[v] = queries[(i * 7 + v) % queries.Length];
                }

                results.Clear();
                index.SearchDihedral(variants, radius, results);
            }
        });

        long bruteFound = 0, indexFound = 0;
        var brute = Time(() =>
        {
            bruteFound = 0;
            for (var i = 0; i < bruteCount; i++)
            {
                results.Clear();
                foreach (var s in segs)
                {
                    BruteForce.Search(s.Hashes, s.Ids, queries[i], radius, results);
                }

                bruteFound += results.Count;
            }
        }, passes: 1);
        for (var i = 0; i < bruteCount; i++)
        {
            results.Clear();
            index.Search(queries[i], radius, results);
            indexFound += results.Count;
        }

        var peak = Process.GetCurrentProcess().PeakWorkingSet64;
        Console.WriteLine($"single  {queryCount / single:N0} q/s  ({single / queryCount * 1e6:F1} us, {found / (double)queryCount:F2} matches/query)");
        Console.WriteLine($"8-var   {dihedralCount / dihedral:N0} q/s  ({dihedral / dihedralCount * 1e6:F1} us)");
        Console.WriteLine($"brute   {bruteCount / brute:N1} q/s  ({brute / bruteCount * 1e3:F2} ms, {(double)size * bruteCount / brute / 1e9:F2} G cmp/s); same matches as index: {bruteFound == indexFound} ({bruteFound})");
        Console.WriteLine($"rss     {rss / 1048576.0:N0} MiB after build; peak {peak / 1048576.0:N0} MiB (includes one input chunk)");

        if (snapshot.Length > 0)
        {
            var path = Path.Combine(snapshot, $"bench-{size}.pdqx");
            var sw = Stopwatch.StartNew();
            index.Save(path);
            var save = sw.Elapsed;

            // Load is timed three times (best of, wall and process CPU): one sample under a loaded machine is noise.
            var loadWall = double.MaxValue;
            var loadCpu = double.MaxValue;
            for (var round = 0; round < 3; round++)
            {
                var (w, c) = Measure(() => PdqIndex.Load(path).Dispose());
                loadWall = Math.Min(loadWall, w);
                loadCpu = Math.Min(loadCpu, c);
            }

            using var loaded = PdqIndex.Load(path);
            long loadedFound = 0;
            for (var i = 0; i < bruteCount; i++)
            {
                results.Clear();
                loaded.Search(queries[i], radius, results);
                loadedFound += results.Count;
            }

            Console.WriteLine($"snapshot {new FileInfo(path).Length / 1048576.0:N0} MiB  save {save.TotalSeconds:F2} s  load (mmap + checksum + validation) {loadWall:F3} s (CPU {loadCpu:F3} s, best of 3)  same matches: {loadedFound == indexFound}");

            // The server answers from a loaded snapshot (searched in its 4 KiB-page mapping), not a built index: time
            // the same queries on it, best of four rounds in wall and in process CPU time (the steadier figure on a
            // shared machine).
            var best = (Wall1: double.MaxValue, Cpu1: double.MaxValue, Wall8: double.MaxValue, Cpu8: double.MaxValue);
            for (var round = 0; round < 4; round++)
            {
                var (w1, c1) = Measure(() =>
                {
                    foreach (var q in queries)
                    {
                        results.Clear();
                        loaded.Search(q, radius, results);
                    }
                });
                var (w8, c8) = Measure(() =>
                {
                    for (var i = 0; i < dihedralCount; i++)
                    {
                        variants[0] = queries[i];
                        for (var v = 1; v < 8; v++)
                        {
                            variants[v] = queries[(i * 7 + v) % queries.Length];
                        }

                        results.Clear();
                        loaded.SearchDihedral(variants, radius, results);
                    }
                });
                best = (Math.Min(best.Wall1, w1), Math.Min(best.Cpu1, c1), Math.Min(best.Wall8, w8), Math.Min(best.Cpu8, c8));
            }

            Console.WriteLine($"{"loaded (mapped)",-24} single {best.Wall1 / queryCount * 1e6:F1} us (CPU {best.Cpu1 / queryCount * 1e6:F1})  8-var {best.Wall8 / dihedralCount * 1e6:F1} us (CPU {best.Cpu8 / dihedralCount * 1e6:F1})  (built: {single / queryCount * 1e6:F1} / {dihedral / dihedralCount * 1e6:F1} us)");
            File.Delete(path);
        }

        return 0;
    }

    /// <summary>Generates one chunk and adds it, in its own frame so the input is garbage once it returns.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static TimeSpan AddChunk(PdqIndex index, int n, bool clustered, PdqHash[] centres, List<PdqHash> samples, Rng rng, ref long nextId)
    {
        var hashes = new PdqHash[n];
        var ids = new long[n];
        for (var i = 0; i < n; i++)
        {
            hashes[i] = clustered ? rng.Flip(centres[rng.Next(centres.Length)], rng.Next(41)) : rng.Hash();
            ids[i] = nextId++;
        }

        for (var i = 0; i < 1000; i++)
        {
            samples.Add(hashes[rng.Next(n)]);
        }

        var sw = Stopwatch.StartNew();
        index.AddRange(hashes, ids);
        return sw.Elapsed;
    }

    /// <summary>Per radius: multi-index and scan time for one segment of N uniform hashes (calibrates the crossover).</summary>
    private static int Sweep(string[] args)
    {
        var size = Size(Option(args, "--size", "1m"));
        var rng = new Rng(7);
        var hashes = Enumerable.Range(0, size).Select(_ => rng.Hash()).ToArray();
        var ids = Enumerable.Range(0, size).Select(i => (long)i).ToArray();
        using var mih = new PdqIndex(0, PdqIndex.SearchPath.MultiIndex);
        mih.AddRange(hashes, ids);
        using var scan = new PdqIndex(0, PdqIndex.SearchPath.Scan);
        scan.AddRange(hashes, ids);
        var seg = mih.Segments[0];
        Console.WriteLine($"size={size:N0} tables={seg.Tables.Length} model scan-from-radius={seg.ScanFromRadius}");
        var queries = Enumerable.Range(0, 64).Select(i => i % 2 == 0 ? rng.Hash() : rng.Flip(hashes[rng.Next(size)], rng.Next(32))).ToArray();
        var results = new List<PdqMatch>();
        foreach (var r in new[] { 0, 8, 16, 24, 31, 40, 48, 56, 64, 72, 80, 96 })
        {
            double Per(PdqIndex ix)
            {
                var n = 0;
                var sw = Stopwatch.StartNew();
                do
                {
                    results.Clear();
                    ix.Search(queries[n++ % queries.Length], r, results);
                }
                while (sw.ElapsedMilliseconds < 300);
                return sw.Elapsed.TotalMicroseconds / n;
            }

            var m = Per(mih);
            var s = Per(scan);
            Console.WriteLine($"r={r,3}  mih {m,10:F1} us  scan {s,10:F1} us  model mih {MihLayout.MihCost(seg.Tables, size, r) / 1000,10:F1} us  model scan {MihLayout.ScanCost(size) / 1000,8:F1} us  -> {(m < s ? "mih" : "scan")}");
        }

        return 0;
    }

    /// <summary>One run's wall and process CPU seconds.</summary>
    private static (double Wall, double Cpu) Measure(Action run)
    {
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        run();
        var wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu0).TotalSeconds);
    }

    /// <summary>Best of <paramref name="passes"/> runs after a warm-up, in seconds.</summary>
    private static double Time(Action run, int passes = 3)
    {
        run();
        var best = double.MaxValue;
        for (var p = 0; p < passes; p++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }

        return best;
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

    /// <summary>xorshift128+: fast, reproducible data generation (System.Random is slow for 100M hashes).</summary>
    private sealed class Rng(ulong seed)
    {
        private ulong _s0 = seed | 1;
        private ulong _s1 = (seed * 0x9E3779B97F4A7C15UL) | 1;

        public ulong NextU64()
        {
            var s1 = _s0;
            var s0 = _s1;
            _s0 = s0;
            s1 ^= s1 << 23;
            _s1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
            return _s1 + s0;
        }

        public int Next(int n) => (int)((NextU64() >> 32) * (ulong)n >> 32);

        public PdqHash Hash() => new(NextU64(), NextU64(), NextU64(), NextU64());

        /// <summary>Flips <paramref name="bits"/> random bits (a repeated position flips back: distance ≤ bits).</summary>
        public PdqHash Flip(PdqHash h, int bits)
        {
            ulong w0 = h.W0, w1 = h.W1, w2 = h.W2, w3 = h.W3;
            for (var k = 0; k < bits; k++)
            {
                var b = Next(256);
                var m = 1UL << (b & 63);
                switch (b >> 6)
                {
                    case 0: w0 ^= m; break;
                    case 1: w1 ^= m; break;
                    case 2: w2 ^= m; break;
                    default: w3 ^= m; break;
                }
            }

            return new PdqHash(w0, w1, w2, w3);
        }
    }
}
