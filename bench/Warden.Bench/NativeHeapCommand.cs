using System.Diagnostics;
using System.Globalization;
using NetVips;
using Warden.Core.Imaging;
using Warden.Core.Runtime;

namespace Warden.Bench;

/// <summary>
/// `native-heap`: a cheap, in-process reproduction of the soak's native-heap growth. Decodes synthetic images
/// (PNG, WebP, GIF, JPEG; several sizes) through libvips at a steady rate on decoding threads, with glibc's malloc
/// set as asked, and prints per interval the RSS, glibc's arena-like mappings (/proc/self/smaps), what malloc holds
/// (mallinfo2: arena bytes, of them free, and separately mapped chunks) and the gen2 GCs and their pause time. One
/// configuration per run, so candidates are compared side by side in separate processes:
///   --threads N          decoding threads (default 2)
///   --threading fixed|pool|churn   N long-lived threads; the .NET thread pool (as the server: any pool thread
///                        decodes, at most N at once); or a new thread for every 8 decodes (thread churn)
///   --rate R             decodes per second in all (default 100), --seconds S (60), --interval I (5)
///   --formats png,webp,gif,jpeg   the mix (default all four), --sizes 640x480,… (default six from 300x300 to 2048x1536), --via decoder|buffer|source: ImageDecoder (the
///                        server's path), or NetVips directly from a byte[] (memory pressure per call) or a Source
///   --arena-max N        mallopt(M_ARENA_MAX) (0: glibc's default), --mmap-threshold BYTES (0: glibc's dynamic
///                        threshold), --trim S (malloc_trim every S seconds; 0: never)
/// </summary>
internal static class NativeHeapCommand
{
    private static readonly (int W, int H)[] Sizes = [(640, 480), (1024, 768), (800, 1200), (1600, 1200), (2048, 1536), (300, 300)];

    public static int Run(string[] args)
    {
        var threads = ThroughputCommand.Option(args, "--threads", 2);
        var threading = ThroughputCommand.OptionString(args, "--threading", "pool");
        var rate = ThroughputCommand.Option(args, "--rate", 100);
        var seconds = ThroughputCommand.Option(args, "--seconds", 60);
        var interval = ThroughputCommand.Option(args, "--interval", 5);
        var formats = ThroughputCommand.OptionString(args, "--formats", "png,webp,gif,jpeg").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var via = ThroughputCommand.OptionString(args, "--via", "decoder");
        var arenaMax = ThroughputCommand.Option(args, "--arena-max", 0);
        var mmapThreshold = ThroughputCommand.Option(args, "--mmap-threshold", 0);
        var trim = ThroughputCommand.Option(args, "--trim", 0);
        if (threading is not ("fixed" or "pool" or "churn") || via is not ("decoder" or "buffer" or "source") || threads < 1 || rate < 1 || seconds < 1 || interval < 1)
        {
            Console.Error.WriteLine("native-heap: --threading fixed|pool|churn, --via decoder|buffer|source, and positive --threads, --rate, --seconds, --interval");
            return 2;
        }

        // The settings go in before any decoding thread exists, as the server sets them at start.
        var capped = GlibcMalloc.CapArenas(arenaMax);
        var fixedThreshold = GlibcMalloc.SetMmapThreshold(mmapThreshold);
        var sizes = ThroughputCommand.OptionString(args, "--sizes", string.Empty) is { Length: > 0 } list
            ? [.. list.Split(',').Select(x => x.Split('x')).Select(p => (int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture)))]
            : Sizes;
        var images = Images(formats, sizes);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"native-heap: {images.Length} images ({string.Join(",", formats)}, {images.Sum(i => i.Length) / images.Length / 1024} KiB mean), {rate}/s on {threads} {threading} threads via {via}, {seconds} s; " +
            $"arena max {(capped ? arenaMax.ToString(CultureInfo.InvariantCulture) : "default")}, mmap threshold {(fixedThreshold ? mmapThreshold.ToString(CultureInfo.InvariantCulture) : "dynamic")}, trim {(trim > 0 ? trim + " s" : "never")}; glibc {GlibcMalloc.Available}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cpu {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Trim()}"));

        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        var faultsStart = MinorFaults();
        var watch = Stopwatch.StartNew();
        var due = 0L;
        var decoded = 0L;
        var failed = 0L;
        var slots = new SemaphoreSlim(threads);
        var stop = TimeSpan.FromSeconds(seconds);

        void DecodeOne(long n)
        {
            try
            {
                Decode(images[(int)(n % images.Length)], via);
                Interlocked.Increment(ref decoded);
            }
            catch (Exception ex) when (ex is ImageDecodeException or VipsException)
            {
                Interlocked.Increment(ref failed);
            }
        }

        // Each decode has a due time (n / rate); whoever takes it waits for it, so the rate stays steady.
        bool Next(out long n)
        {
            n = Interlocked.Increment(ref due) - 1;
            var at = TimeSpan.FromSeconds((double)n / rate);
            if (at >= stop)
            {
                return false;
            }

            var wait = at - watch.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                Thread.Sleep(wait);
            }

            return true;
        }

        var workers = new List<Thread>();
        var pending = new List<Task>();
        if (threading == "fixed")
        {
            for (var t = 0; t < threads; t++)
            {
                workers.Add(new Thread(() => { while (Next(out var n)) { DecodeOne(n); } }) { IsBackground = true });
            }
        }
        else if (threading == "churn")
        {
            // N at a time, each thread living for 8 decodes: new threads keep arriving, as a pool that grows and retires.
            for (var t = 0; t < threads; t++)
            {
                workers.Add(new Thread(() =>
                {
                    var more = true;
                    while (more)
                    {
                        var child = new Thread(() =>
                        {
                            for (var k = 0; k < 8 && (more = Next(out var n)); k++)
                            {
                                DecodeOne(n);
                            }
                        });
                        child.Start();
                        child.Join();
                    }
                })
                { IsBackground = true });
            }
        }
        else
        {
            workers.Add(new Thread(() =>
            {
                while (Next(out var n))
                {
                    slots.Wait();
                    lock (pending)
                    {
                        pending.Add(Task.Run(() => { try { DecodeOne(n); } finally { slots.Release(); } }));
                    }
                }
            })
            { IsBackground = true });
        }

        var first = Sample();
        Print(0, first, first, 0);
        workers.ForEach(w => w.Start());
        var samples = new List<Reading> { first };
        var lastDecoded = 0L;
        for (var t = interval; t <= seconds; t += interval)
        {
            var sleep = TimeSpan.FromSeconds(t) - watch.Elapsed;
            if (sleep > TimeSpan.Zero)
            {
                Thread.Sleep(sleep);
            }

            if (trim > 0 && t % trim == 0)
            {
                GlibcMalloc.Trim();
            }

            var now = Sample();
            var d = Interlocked.Read(ref decoded);
            Print(t, now, samples[^1], d - lastDecoded);
            lastDecoded = d;
            samples.Add(now);
        }

        workers.ForEach(w => w.Join());
        lock (pending)
        {
            Task.WaitAll([.. pending]);
        }

        // Growth after the first quarter (the soak's "after the first 2 minutes"): the warm-up fills the arenas once.
        var baseAt = samples.Count / 4;
        var b = samples[baseAt];
        var e = samples[^1];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT decoded {decoded} failed {failed}; RSS {b.Memory.Rss / 1048576.0:F0} MiB at {baseAt * interval} s -> {e.Memory.Rss / 1048576.0:F0} MiB ({100.0 * (e.Memory.Rss - b.Memory.Rss) / b.Memory.Rss:+0.0;-0.0} %); " +
            $"arena-like {b.Memory.ArenaLike / 1048576.0:F0} -> {e.Memory.ArenaLike / 1048576.0:F0} MiB ({b.Memory.ArenaMaps} -> {e.Memory.ArenaMaps} maps); " +
            $"peak RSS {samples.Max(s => s.Memory.Rss) / 1048576.0:F0} MiB; gen2 {(e.Gen2 - first.Gen2) * 60.0 / seconds:F0}/min, GC pause {(e.Pause - first.Pause).TotalMilliseconds * 60.0 / seconds:F0} ms/min; " +
            $"CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalMilliseconds * 1000 / Math.Max(1, decoded):F0} µs per decode, {(MinorFaults() - faultsStart) / (double)Math.Max(1, decoded):F0} page faults per decode"));
        return failed == 0 ? 0 : 1;
    }

    // /proc/self/stat field 10: minor page faults (fresh pages of mapped buffers are faulted in and zeroed).
    private static long MinorFaults()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7], CultureInfo.InvariantCulture);
    }

    private sealed record Reading(ProcessMemory Memory, MallocInfo? Malloc, int Gen2, TimeSpan Pause);

    private static Reading Sample() =>
        new(ProcessMemory.Read() ?? new ProcessMemory(0, 0, 0, 0, 0, 0), GlibcMalloc.Info(), GC.CollectionCount(2), GC.GetTotalPauseDuration());

    private static void Print(int t, Reading now, Reading last, long decodes)
    {
        var m = now.Malloc;
        var malloc = m is null ? "malloc ?" : string.Create(CultureInfo.InvariantCulture, $"malloc arenas {m.Arena / 1048576.0:F0} MiB ({m.Free / 1048576.0:F0} free), mapped {m.Mapped / 1048576.0:F0} MiB in {m.MappedChunks}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{t,5} s  {decodes,6} decodes  RSS {now.Memory.Rss / 1048576.0:F0} MiB  {now.Memory}; {malloc}; gen2 +{now.Gen2 - last.Gen2} pause {(now.Pause - last.Pause).TotalMilliseconds:F0} ms"));
    }

    private static void Decode(byte[] data, string via)
    {
        if (via == "decoder")
        {
            using var d = ImageDecoder.Decode(data);
            return;
        }

        // Straight through NetVips, to compare how the input reaches libvips: a byte[] argument is copied into a
        // GValue blob that reports the copy to the GC as memory pressure; a Source from memory does not.
        using var source = via == "source" ? Source.NewFromMemory(data) : null;
        using var image = source is null ? Image.NewFromBuffer(data, access: Enums.Access.Sequential) : Image.NewFromSource(source, access: Enums.Access.Sequential);
        var ptr = image.WriteToMemory(out _);
        NetVips.NetVips.Free(ptr);
    }

    private static byte[][] Images(string[] formats, (int W, int H)[] sizes)
    {
        var list = new List<byte[]>();
        var seed = 1;
        foreach (var (w, h) in sizes)
        {
            foreach (var f in formats)
            {
                using var small = Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed)
                    .Bandjoin(Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 1), Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 2));
                using var big = small.Resize(w / 16.0, vscale: h / 12.0, kernel: Enums.Kernel.Cubic);
                using var grain = Image.Gaussnoise(big.Width, big.Height, sigma: 9, mean: 0, seed: seed + 3);
                using var sum = big + grain;
                using var rgb = sum.Cast(Enums.BandFormat.Uchar);
                seed += 4;
                list.Add(f switch
                {
                    "png" => rgb.PngsaveBuffer(compression: 1),
                    "webp" => rgb.WebpsaveBuffer(q: 80),
                    "gif" => rgb.GifsaveBuffer(),
                    "jpeg" => rgb.JpegsaveBuffer(q: 85),
                    _ => throw new ArgumentException($"unknown format {f} (png, webp, gif, jpeg)"),
                });
            }
        }

        return [.. list];
    }
}
