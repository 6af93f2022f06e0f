using System.Diagnostics;
using System.Globalization;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;

namespace Warden.Bench;

/// <summary>
/// `throughput CORPUS [--passes N] [--mode fast|fullres|cli512] [--threads N] [--exact]`: decode + PDQ over
/// in-memory files, best of N passes, images/s and MB/s. Run under `taskset -c 0` for one-core figures.
/// `--mode process` times whole programs instead (<see cref="ProcessThroughput"/>).
/// </summary>
internal static class ThroughputCommand
{
    public static int Run(string[] args)
    {
        if (OptionString(args, "--mode", "fast") == "process")
        {
            return ProcessThroughput.Run(args);
        }

        var corpus = args.Length > 0 ? args[0] : "test";
        var passes = Option(args, "--passes", 5);
        var threads = Option(args, "--threads", 1);
        var exact = args.Contains("--exact");
        var mode = OptionString(args, "--mode", "fast") switch
        {
            "fast" => PdqResize.Fast,
            "fullres" => PdqResize.FullResolution,
            "cli512" => PdqResize.Cli512,
            var m => throw new ArgumentException($"unknown mode {m}"),
        };
        var files = Corpora.Named(corpus).Select(File.ReadAllBytes).ToArray();
        var megabytes = files.Sum(f => (long)f.Length) / 1e6;
        Console.WriteLine($"corpus={corpus} files={files.Length} MB={megabytes:F1} mode={mode} threads={threads} exact-hashes={exact} passes={passes} cpus={Environment.ProcessorCount}");

        var hashers = new ThreadLocal<PdqImageHasher>(() => new PdqImageHasher(mode));
        var best = double.MaxValue;
        for (var pass = -1; pass < passes; pass++)
        {
            var sw = Stopwatch.StartNew();
            if (threads == 1)
            {
                foreach (var f in files)
                {
                    HashOne(hashers.Value!, f, exact);
                }
            }
            else
            {
                Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = threads }, f => HashOne(hashers.Value!, f, exact));
            }

            var s = sw.Elapsed.TotalSeconds;
            if (pass >= 0)
            {
                best = Math.Min(best, s);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best {best * 1000:F1} ms  {files.Length / best:F1} images/s  {megabytes / best:F1} MB/s  {best * 1000 / files.Length:F2} ms/image"));
        return 0;
    }

    private static void HashOne(PdqImageHasher hasher, byte[] data, bool exact)
    {
        hasher.Hash(data);
        if (exact)
        {
            ExactHashes.Compute(data);
        }
    }

    internal static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    internal static string OptionString(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
