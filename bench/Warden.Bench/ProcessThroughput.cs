using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Warden.Bench;

/// <summary>
/// `throughput CORPUS --mode process --warden PATH [--reference PATH] [--passes N] [--cpu N]`: whole programs,
/// timed as processes from start to exit, pinned to one core (taskset -c N) and run side by side in one loop
/// (the reference, then Warden, every pass) so both see the same machine load. Warden is the built binary
/// (scripts/install) running `hash -f csv --no-progress FILES...`; the reference is Meta's C++ `pdq-photo-hasher
/// FILES...` (built as docs/performance.md says). Also times startup: `warden --help` and `warden hash` of one
/// small file. Prints best and median of each and the ratio reference / Warden (above 1 = Warden faster), in wall
/// time and in CPU time (user + system of the child, from getrusage): on a busy machine the pinned core is shared
/// and wall time mostly measures waiting, while CPU time is what the program itself cost.
/// </summary>
internal static class ProcessThroughput
{
    public static int Run(string[] args)
    {
        var corpus = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "test";
        var passes = ThroughputCommand.Option(args, "--passes", 10);
        var cpu = ThroughputCommand.Option(args, "--cpu", 0);
        var warden = ThroughputCommand.OptionString(args, "--warden", Path.Combine(Corpora.RepoRoot(), "out", "warden"));
        var reference = ThroughputCommand.OptionString(args, "--reference", string.Empty);
        if (!File.Exists(warden))
        {
            Console.Error.WriteLine($"bench: no warden binary at {warden}: build it with scripts/install, or pass --warden PATH.");
            return 2;
        }

        if (reference.Length > 0 && !File.Exists(reference))
        {
            Console.Error.WriteLine($"bench: no reference binary at {reference} (docs/performance.md says how to build Meta's pdq-photo-hasher).");
            return 2;
        }

        var files = Corpora.Named(corpus).ToArray();
        var megabytes = files.Sum(f => new FileInfo(f).Length) / 1e6;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"corpus={corpus} files={files.Length} MB={megabytes:F1} mode=process cpu={cpu} passes={passes} warden={warden} reference={(reference.Length > 0 ? reference : "(none)")}"));

        // Startup: the smallest file of the corpus, and the help text.
        var one = files.MinBy(f => new FileInfo(f).Length)!;
        var jobs = new List<(string Name, string Program, string[] Args)>
        {
            ("warden --help", warden, ["--help"]),
            ("warden hash one file", warden, ["hash", "--no-progress", one]),
            ("warden hash corpus", warden, ["hash", "-f", "csv", "--no-progress", .. files]),
        };
        if (reference.Length > 0)
        {
            jobs.Insert(2, ("reference one file", reference, [one]));
            jobs.Add(("reference corpus", reference, files));
        }

        var times = jobs.ToDictionary(j => j.Name, _ => new List<double>());
        var cpuTimes = jobs.ToDictionary(j => j.Name, _ => new List<double>());
        for (var pass = -1; pass < passes; pass++)
        {
            foreach (var (name, program, jobArgs) in jobs)
            {
                var cpuBefore = ChildrenCpuSeconds();
                var seconds = Time(cpu, program, jobArgs, out var exit, out var stderr);
                var cpuSeconds = ChildrenCpuSeconds() - cpuBefore;
                if (exit != 0)
                {
                    Console.Error.WriteLine($"bench: {name} exited {exit}: {stderr.Trim()}");
                    return 1;
                }

                if (pass >= 0)
                {
                    times[name].Add(seconds);
                    cpuTimes[name].Add(cpuSeconds);
                }
            }
        }

        foreach (var (name, list) in times)
        {
            list.Sort();
            var cpuList = cpuTimes[name];
            cpuList.Sort();
            var images = name.EndsWith("corpus", StringComparison.Ordinal) ? files.Length : 1;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-22} wall best {list[0] * 1000,8:F1} ms  median {list[list.Count / 2] * 1000,8:F1} ms   cpu best {cpuList[0] * 1000,7:F1} ms  median {cpuList[cpuList.Count / 2] * 1000,7:F1} ms  {images / cpuList[cpuList.Count / 2],7:F1} images/cpu-s"));
        }

        if (reference.Length > 0)
        {
            static double Median(List<double> l) => l[l.Count / 2];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ratio reference/warden, wall (median): corpus {Median(times["reference corpus"]) / Median(times["warden hash corpus"]):F2}x, one file {Median(times["reference one file"]) / Median(times["warden hash one file"]):F2}x"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ratio reference/warden, cpu  (median): corpus {Median(cpuTimes["reference corpus"]) / Median(cpuTimes["warden hash corpus"]):F2}x, one file {Median(cpuTimes["reference one file"]) / Median(cpuTimes["warden hash one file"]):F2}x"));
        }

        return 0;
    }

    /// <summary>Wall time of one run of <paramref name="program"/> pinned to <paramref name="cpu"/>; output is read and dropped.</summary>
    private static double Time(int cpu, string program, string[] args, out int exit, out string stderr)
    {
        var psi = new ProcessStartInfo("taskset", ["-c", cpu.ToString(CultureInfo.InvariantCulture), program, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.BaseStream.CopyTo(Stream.Null);
        p.WaitForExit();
        var seconds = sw.Elapsed.TotalSeconds;
        exit = p.ExitCode;
        stderr = err.Result;
        return seconds;
    }

    /// <summary>User + system CPU seconds of every child this process has waited for.</summary>
    private static double ChildrenCpuSeconds()
    {
        const int RusageChildren = -1;
        return GetRusage(RusageChildren, out var u) == 0 ? u.UserSeconds + (u.UserMicros / 1e6) + u.SystemSeconds + (u.SystemMicros / 1e6) : double.NaN;
    }

    [DllImport("libc", EntryPoint = "getrusage")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code in this project; the struct is blittable.
    private static extern int GetRusage(int who, out Rusage usage);
#pragma warning restore SYSLIB1054

    /// <summary>struct rusage on Linux x64: two timevals, then 14 longs this bench does not read.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 144)]
    private struct Rusage
    {
        public long UserSeconds;
        public long UserMicros;
        public long SystemSeconds;
        public long SystemMicros;
    }
}
