using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Warden.Fuzz.Tests;

/// <summary>The SharpFuzz-instrumented copy scripts/fuzz makes, in a temporary folder, shared by the tests below.</summary>
public sealed class InstrumentedBuild : IDisposable
{
    private readonly Lazy<(string? Folder, string? Skip, string Log)> _build;

    public InstrumentedBuild()
    {
        Root = FuzzSmokeTests.RepoRoot();
        Work = Path.Combine(Path.GetTempPath(), "warden-fuzz-inst-" + Guid.NewGuid().ToString("N")[..8]);
        _build = new(Make);
    }

    public string Root { get; }

    public string Work { get; }

    // The configuration these tests were built in (bin/CONFIG/net10.0): scripts/fuzz instruments that build.
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    /// <summary>The instrumented folder, or a skip reason.</summary>
    public (string? Folder, string? Skip, string Log) Get() => _build.Value;

    public void Dispose()
    {
        if (Directory.Exists(Work))
        {
            Directory.Delete(Work, recursive: true);
        }
    }

    /// <summary>Runs scripts/fuzz with the work folders in <see cref="Work"/>.</summary>
    public (int Exit, string Output) Script(params string[] args) =>
        Run(Path.Combine(Root, "scripts", "fuzz"), args);

    public (int Exit, string Output) Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["WARDEN_FUZZ_OUT"] = Path.Combine(Work, "out");
        info.Environment["WARDEN_FUZZ_FINDINGS"] = Path.Combine(Work, "findings");
        info.Environment["CONFIGURATION"] = Configuration;
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            return (-1, stdout + stderr.Result + "\n(killed after 2 minutes)");
        }

        return (p.ExitCode, stdout + stderr.Result);
    }

    private (string? Folder, string? Skip, string Log) Make()
    {
        if (!File.Exists(Path.Combine(Root, "fuzz", "out", "tools", "sharpfuzz")))
        {
            return (null, "SharpFuzz.CommandLine is not installed in fuzz/out/tools (scripts/test installs it; so does scripts/fuzz TARGET)", string.Empty);
        }

        if (!File.Exists(Path.Combine(Root, "fuzz", "Warden.Fuzz", "bin", Configuration, "net10.0", "Warden.Fuzz.dll")))
        {
            return (null, $"fuzz/Warden.Fuzz is not built in {Configuration}", string.Empty);
        }

        var (exit, output) = Script("--no-build", "--instrument");
        Assert.True(exit == 0, "scripts/fuzz --instrument failed:\n" + output);
        return (Path.Combine(Work, "out", "inst"), null, output);
    }
}

/// <summary>
/// Instrumented fuzzing starts and finds coverage. It died at start with an AccessViolationException: SharpFuzz's
/// instrumentation writes every edge through a map pointer that is null until a fuzzing loop installs one, and the
/// harness ran Warden code (the target table's initialiser) before that. Runs every command of the harness on the
/// instrumented copy, then a few hundred coverage-guided executions (in process, and with afl++ where installed).
/// </summary>
public sealed class InstrumentedFuzzingTests(InstrumentedBuild build) : IClassFixture<InstrumentedBuild>
{
    [SkippableFact]
    public void An_instrumented_build_runs_every_command_and_collects_coverage_in_process()
    {
        var inst = Built();
        var dll = Path.Combine(inst, "Warden.Fuzz.dll");

        // Every command reaches Warden code before any fuzzing loop: none may find the map missing.
        var (listExit, list) = build.Run("dotnet", dll, "list");
        Assert.True(listExit == 0, list);
        Assert.Equal(Targets.All.Count, list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var seeds = Directory.GetFiles(Path.Combine(build.Root, "fuzz", "corpus", "tmk"));
        var (reproExit, repro) = build.Run("dotnet", [dll, "repro", "tmk", .. seeds]);
        Assert.True(reproExit == 0, repro);

        var (runExit, run) = build.Run("dotnet", dll, "run", "jpeg-dc", "--execs", "400", "--seconds", "15", "--seed", "7", "--findings", Path.Combine(build.Work, "findings"));
        Assert.True(runExit == 0, run);
        var summary = run.Split('\n').Last(l => l.StartsWith("target=", StringComparison.Ordinal));
        Assert.Contains("engine=inproc+coverage", summary, StringComparison.Ordinal);
        Assert.True(Number(summary, "edges") > 50, summary);
        Assert.True(Number(summary, "execs") > 4, summary);
    }

    [SkippableFact]
    public void An_instrumented_build_runs_under_afl()
    {
        var inst = Built();
        Assert.True(Directory.Exists(inst));
        Skip.IfNot(OnPath("afl-fuzz"), "afl-fuzz (Debian's afl++) is not installed");

        var (exit, output) = build.Script("--no-build", "--engine", "afl", "cbor", "3");
        Assert.True(exit == 0, output);
        var summary = output.Split('\n').Last(l => l.StartsWith("target=", StringComparison.Ordinal));
        Assert.Contains("engine=afl++", summary, StringComparison.Ordinal);
        Assert.True(Number(summary, "execs") > 0, summary);
        Assert.True(Number(summary, "edges") > 0, summary);
    }

    private string Built()
    {
        var (folder, skip, _) = build.Get();
        Skip.If(folder is null, skip);
        return folder!;
    }

    private static long Number(string summary, string key)
    {
        var m = Regex.Match(summary, $@"\b{Regex.Escape(key)}=(\d+)");
        Assert.True(m.Success, $"no {key}= in: {summary}");
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(d => File.Exists(Path.Combine(d, program)));
}
