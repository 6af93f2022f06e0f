using System.Diagnostics;
using System.Globalization;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Provenance;

namespace Warden.Bench;

/// <summary>
/// `provenance CORPUS [--passes N]`: cost of provenance extraction next to hashing, one thread, in-memory files,
/// best of N passes. Hashing = PDQ (fast) + MD5/SHA-1/SHA-256 as `warden hash` does. Provenance is measured
/// metadata-only with the SHA-256 handed over (how scan/server call it), metadata-only computing its own
/// SHA-256, and with the pixel checks (watermark + LSB) run when the metadata says nothing.
/// </summary>
internal static class ProvenanceCommand
{
    public static int Run(string[] args)
    {
        var corpus = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "test";
        var i = Array.IndexOf(args, "--passes");
        var passes = i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : 5;
        var files = Corpora.Named(corpus).Select(File.ReadAllBytes).ToArray();
        var megabytes = files.Sum(f => (long)f.Length) / 1e6;
        Console.WriteLine($"corpus={corpus} files={files.Length} MB={megabytes:F1} passes={passes} (one thread)");

        var hasher = new PdqImageHasher(PdqResize.Fast);
        var sha = files.Select(f => ExactHashes.Compute(f).Sha256Hex).ToArray();
        var hashing = Best(passes, () =>
        {
            foreach (var f in files)
            {
                hasher.Hash(f);
                ExactHashes.Compute(f);
            }
        });
        var signals = 0;
        var metadata = Best(passes, () =>
        {
            signals = 0;
            for (var k = 0; k < files.Length; k++)
            {
                signals += ProvenanceReader.Read(files[k], ProvenanceOptions.Default, sha[k]).Signals.Count(s => s.AiIndication > AiIndication.Weak);
            }
        });
        var withSha = Best(passes, () =>
        {
            foreach (var f in files)
            {
                ProvenanceReader.Read(f);
            }
        });
        var pixelOptions = ProvenanceOptions.Default with { Pixels = PixelChecks.WhenNoMetadata };
        var pixels = Best(Math.Min(passes, 2), () =>
        {
            for (var k = 0; k < files.Length; k++)
            {
                ProvenanceReader.Read(files[k], pixelOptions, sha[k]);
            }
        });

        void Line(string name, double seconds) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-34} {seconds * 1000 / files.Length,8:F3} ms/image  {files.Length / seconds,9:F1} images/s  {100 * seconds / hashing,7:F2} % of hashing"));
        Line("hash (PDQ + MD5/SHA-1/SHA-256)", hashing);
        Line("provenance, metadata only", metadata);
        Line("provenance, metadata + own SHA-256", withSha);
        Line("provenance, pixels when no metadata", pixels);
        Console.WriteLine($"files with a non-weak signal: {signals}");
        return 0;
    }

    private static double Best(int passes, Action run)
    {
        var best = double.MaxValue;
        for (var pass = -1; pass < passes; pass++)
        {
            var sw = Stopwatch.StartNew();
            run();
            if (pass >= 0)
            {
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
        }

        return best;
    }
}
