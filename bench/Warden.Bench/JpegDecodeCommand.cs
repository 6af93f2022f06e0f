using System.Globalization;
using Warden.Core.Hashing;
using Warden.Core.Imaging;

namespace Warden.Bench;

/// <summary>
/// `jpeg CORPUS [--passes N]` (CORPUS `load`: see <see cref="FullScale"/>): per file, the 1/8 decode through libvips against Warden's (ImageDecoder: its own decoder where it can), whether their pixels are the same, and
/// the three digests, in CPU milliseconds (best of N passes), to see where a whole-process `hash` spends its time.
/// </summary>
internal static class JpegDecodeCommand
{
    public static int Run(string[] args)
    {
        var corpus = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "large";
        var passes = ThroughputCommand.Option(args, "--passes", 5);
        if (corpus == "load")
        {
            return FullScale(passes);
        }

        if (corpus == "load-ours")
        {
            return Ours(passes);
        }

        var files = Corpora.Named(corpus).ToArray();
        double totVips = 0, totDc = 0, totDigest = 0;
        Console.WriteLine("file  MB  vips-ms  dc-ms  digests-ms  same-pixels");
        foreach (var f in files)
        {
            var data = File.ReadAllBytes(f);
            var vips = Best(passes, () => Libvips(data));
            var dc = Best(passes, () => { using var d = ImageDecoder.Decode(data, null, static (_, _) => 8); });
            var digests = Best(passes, () => ExactHashes.Compute(data));
            string same;
            using (var img = ImageDecoder.Decode(data, null, static (_, _) => 8))
            {
                var (v, vw, vh, vb) = Libvips(data);
                same = img.Pixels.SequenceEqual(v) ? "yes" : $"NO ({img.PixelWidth}x{img.PixelHeight}x{img.BytesPerPixel} vs {vw}x{vh}x{vb})";
            }

            totVips += vips;
            totDc += dc;
            totDigest += digests;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(f)}  {data.Length / 1e6:F2}  {vips:F1}  {dc:F1}  {digests:F1}  {same}"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"total  vips {totVips:F1} ms  dc {totDc:F1} ms  digests {totDigest:F1} ms"));
        return 0;
    }

    /// <summary>
    /// `jpeg load`: the 64 generated 640x480 q85 JPEGs of `bench load`, in CPU microseconds per decode (mean over the set,
    /// best of N passes): at full scale through libvips and ImageDecoder, and scaled as /v1/match decodes them (PDQ's fast
    /// path, 1/4) through libvips and through ImageDecoder (Warden's own decoder), with how many decode identically.
    /// </summary>
    private static int FullScale(int passes)
    {
        var images = Enumerable.Range(0, 64).Select(LoadCommand.Jpeg).ToArray();
        var vips = Best(passes, () =>
        {
            foreach (var data in images)
            {
                using var image = NetVips.Image.JpegloadBuffer(data, autorotate: false, access: NetVips.Enums.Access.Sequential);
                _ = image.WriteToMemory<byte>();
            }
        });
        var warden = Best(passes, () =>
        {
            foreach (var data in images)
            {
                using var d = ImageDecoder.Decode(data);
            }
        });

        // What /v1/match does: PDQ's fast path lets the decoder scale down on load (ImageDecoder.ShrinkFactor).
        static int Reduction(int w, int h) => Warden.Core.Hashing.Pdq.PdqHasher.FastScale(w, h);
        var server = Best(passes, () =>
        {
            foreach (var data in images)
            {
                using var d = ImageDecoder.Decode(data, null, Reduction);
            }
        });
        var shrink = ImageDecoder.ShrinkFactor(Reduction(640, 480));

        // The same scaled decode through libvips, as ImageDecoder did it before Warden's decoder took 1/4 over.
        var vipsScaled = Best(passes, () =>
        {
            foreach (var data in images)
            {
                using var image = NetVips.Image.JpegloadBuffer(data, shrink: shrink, autorotate: false, access: NetVips.Enums.Access.Sequential);
                _ = image.WriteToMemory<byte>();
            }
        });
        var same = images.Count(data =>
        {
            using var ours = ImageDecoder.Decode(data, null, Reduction);
            using var image = NetVips.Image.JpegloadBuffer(data, shrink: shrink, autorotate: false);
            return ours.Pixels.SequenceEqual(image.WriteToMemory<byte>());
        });
        var perVips = vips * 1000 / images.Length;
        var perWarden = warden * 1000 / images.Length;
        var perServer = server * 1000 / images.Length;
        var perVipsScaled = vipsScaled * 1000 / images.Length;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load set: {images.Length} JPEGs 640x480, mean {images.Average(b => b.Length) / 1024:F0} KiB; CPU us per decode: libvips scale 1 {perVips:F0}  ImageDecoder scale 1 {perWarden:F0}  libvips scale 1/{shrink} {perVipsScaled:F0}  ImageDecoder as /v1/match (scale 1/{shrink}) {perServer:F0}; pixels identical to libvips at 1/{shrink}: {same}/{images.Length}"));
        return 0;
    }

    /// <summary>
    /// `jpeg load-ours`: only Warden's own decoder on the load set, at 1/8 and 1/4 (for profiling it: no libvips in the
    /// process), CPU microseconds per decode, best of N passes.
    /// </summary>
    private static int Ours(int passes)
    {
        var images = Enumerable.Range(0, 64).Select(LoadCommand.Jpeg).ToArray();
        foreach (var shrink in new[] { 8, 4 })
        {
            var cpu = Best(passes, () =>
            {
                foreach (var data in images)
                {
                    using var d = ImageDecoder.Decode(data, null, (_, _) => shrink);
                }
            });
            // Managed bytes allocated per decode on this thread (the output pixels included: the caller keeps them).
            var before = GC.GetAllocatedBytesForCurrentThread();
            foreach (var data in images)
            {
                using var d = ImageDecoder.Decode(data, null, (_, _) => shrink);
            }

            var allocated = (GC.GetAllocatedBytesForCurrentThread() - before) / images.Length;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Warden's decoder at 1/{shrink}: {cpu * 1000 / images.Length:F0} us per decode, {allocated} bytes allocated per decode"));
        }

        return 0;
    }

    private static (byte[] Pixels, int Width, int Height, int Bands) Libvips(byte[] data)
    {
        using var image = NetVips.Image.JpegloadBuffer(data, shrink: 8, autorotate: false, access: NetVips.Enums.Access.Sequential);
        return (image.WriteToMemory<byte>(), image.Width, image.Height, image.Bands);
    }

    private static double Best(int passes, Action a)
    {
        a();
        var best = double.MaxValue;
        for (var i = 0; i < passes; i++)
        {
            var t0 = ThreadCpuMs();
            a();
            best = Math.Min(best, ThreadCpuMs() - t0);
        }

        return best;
    }

    // The process CPU time (clock_gettime(CLOCK_PROCESS_CPUTIME_ID), libvips decodes on its own worker thread): the machine is shared, so wall time would
    // mostly measure waiting.
    internal static double ThreadCpuMs()
    {
        _ = ClockGetTime(2, out var ts);
        return (ts.Seconds * 1e3) + (ts.Nanoseconds / 1e6);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec timespec);

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
