using System.Globalization;
using System.Text.Json;
using SharpFuzz;
using Warden.Fuzz;

// warden-fuzz: the harness behind scripts/fuzz. See docs/fuzzing.md.
//   list                                  targets, their entry points and documented refusals
//   run TARGET [options]                  in-process loop (coverage-guided when instrumented)
//   smoke [--execs N] [--seconds S]       every target over its corpus plus N mutations
//   repro TARGET FILE...                  runs saved inputs once each (exit 1 on a crash)
//   afl TARGET                            SharpFuzz fork server for afl-fuzz (stdin input)
//   make-corpus DIR                       writes the seed corpora

internal static class Cli
{
    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: warden-fuzz list | run TARGET [--seconds S] [--execs N] [--seed N] [--corpus DIR] [--findings DIR] [--queue DIR] [--json FILE] | smoke [--execs N] | repro TARGET FILE... | afl TARGET | make-corpus DIR");
            return 2;
        }

        var options = Options(args.Skip(1));
        switch (args[0])
        {
            case "list":
                foreach (var t in Targets.All)
                {
                    Console.WriteLine($"{t.Name,-20} {t.Entry}  [refusals: {t.Refusals}]");
                }

                return 0;
            case "make-corpus":
                Seeds.Write(args.Length > 1 ? args[1] : Path.Combine(RepoRoot(), "fuzz", "corpus"));
                return 0;
            case "run":
                return RunOne(Target(args), options);
            case "smoke":
                return Smoke(options);
            case "repro":
                return Repro(Target(args), args.Skip(2).Where(a => !a.StartsWith("--", StringComparison.Ordinal)));
            case "afl":
                var target = Target(args);
                Fuzzer.OutOfProcess.Run(stream =>
                {
                    using var ms = new MemoryStream();
                    stream.CopyTo(ms);
                    target.Run(ms.ToArray());
                });
                return 0;
            default:
                Console.Error.WriteLine($"unknown command {args[0]}");
                return 2;
        }
    }

    private static FuzzTarget Target(string[] args)
    {
        if (args.Length < 2 || Targets.Find(args[1]) is not { } target)
        {
            Console.Error.WriteLine($"name a target: {string.Join(", ", Targets.All.Select(t => t.Name))}");
            Environment.Exit(2);
            return null!;
        }

        return target;
    }

    private static int RunOne(FuzzTarget target, Dictionary<string, string> o)
    {
        var corpusDir = o.GetValueOrDefault("corpus") ?? Path.Combine(RepoRoot(), "fuzz", "corpus", target.Name);
        var corpus = LoadCorpus(corpusDir);
        if (o.GetValueOrDefault("queue") is { } queueDir)
        {
            corpus.AddRange(LoadCorpus(queueDir)); // resume a longer campaign from what it found before
        }

        var options = new FuzzOptions(
            TimeSpan.FromSeconds(double.Parse(o.GetValueOrDefault("seconds") ?? "60", CultureInfo.InvariantCulture)),
            long.Parse(o.GetValueOrDefault("execs") ?? "0", CultureInfo.InvariantCulture),
            int.Parse(o.GetValueOrDefault("seed") ?? Environment.TickCount.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
            o.GetValueOrDefault("findings") ?? Path.Combine(RepoRoot(), "fuzz", "findings", target.Name))
        {
            QueueDirectory = o.GetValueOrDefault("queue"),
            Timeout = o.TryGetValue("timeout-ms", out var ms) ? TimeSpan.FromMilliseconds(int.Parse(ms, CultureInfo.InvariantCulture)) : null,
        };
        var result = FuzzEngine.Run(target, corpus, options, Console.WriteLine);
        Console.WriteLine(result);
        foreach (var f in result.Findings)
        {
            Console.WriteLine($"  {f.Kind}: {f.Key} ({f.Input.Length} bytes) -> {options.FindingsDirectory}/{f.Kind}-{FuzzEngine.Hash(f.Input)}.bin");
        }

        if (o.GetValueOrDefault("json") is { } json)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(new
            {
                target = result.Target,
                engine = result.Engine,
                executions = result.Executions,
                seconds = Math.Round(result.Seconds, 1),
                execsPerSecond = Math.Round(result.ExecutionsPerSecond),
                crashes = result.Crashes,
                hangs = result.Hangs,
                memory = result.MemoryFindings,
                unique = result.Findings.Select(f => f.Key).ToArray(),
                peakRssMiB = result.PeakRssBytes / 1048576,
                maxAllocMiB = result.MaxAllocatedBytes / 1048576,
                slowestMs = Math.Round(result.SlowestMilliseconds),
                corpusStart = result.CorpusStart,
                corpusEnd = result.CorpusEnd,
                edges = result.Edges,
            }));
        }

        if (result.Hangs > 0)
        {
            // The hung worker cannot be stopped; leave without waiting for it.
            Console.Out.Flush();
            Environment.Exit(1);
        }

        return result.Findings.Count == 0 ? 0 : 1;
    }

    private static int Smoke(Dictionary<string, string> o)
    {
        var execs = long.Parse(o.GetValueOrDefault("execs") ?? "2000", CultureInfo.InvariantCulture);
        var seconds = double.Parse(o.GetValueOrDefault("seconds") ?? "10", CultureInfo.InvariantCulture);
        var failed = 0;
        foreach (var target in Targets.All)
        {
            var corpus = LoadCorpus(Path.Combine(RepoRoot(), "fuzz", "corpus", target.Name));
            var result = FuzzEngine.Run(target, corpus, new FuzzOptions(TimeSpan.FromSeconds(seconds), execs, 1) { Minimize = false });
            Console.WriteLine((result.Findings.Count == 0 ? "ok   " : "FAIL ") + result);
            foreach (var f in result.Findings)
            {
                Console.WriteLine($"  {f.Kind}: {f.Key}\n{f.Detail}");
            }

            failed += result.Findings.Count == 0 ? 0 : 1;
        }

        return failed == 0 ? 0 : 1;
    }

    private static int Repro(FuzzTarget target, IEnumerable<string> files)
    {
        var crashed = 0;
        foreach (var file in files)
        {
            var error = target.Check(File.ReadAllBytes(file));
            Console.WriteLine(error is null ? $"ok     {file}" : $"CRASH  {file}: {FuzzEngine.KeyOf(error)}\n{error}");
            crashed += error is null ? 0 : 1;
        }

        return crashed == 0 ? 0 : 1;
    }

    /// <summary>The seed files of one corpus folder, in name order (missing folder = empty corpus).</summary>
    public static List<byte[]> LoadCorpus(string dir) =>
        Directory.Exists(dir) ? [.. Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)] : [];

    private static Dictionary<string, string> Options(IEnumerable<string> args)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal);
        string? key = null;
        foreach (var a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                key = a[2..];
                o[key] = "true";
            }
            else if (key is not null)
            {
                o[key] = a;
                key = null;
            }
        }

        return o;
    }

    private static string RepoRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Environment.CurrentDirectory;
    }
}
