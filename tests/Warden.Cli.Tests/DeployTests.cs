using System.Diagnostics;
using System.Text.Json;

namespace Warden.Cli.Tests;

/// <summary>
/// The release artifacts in deploy/, checked statically where no container engine or init system can run them:
/// systemd's own verifier on the unit, every warden command line in them parsed by the real command tree,
/// every file the Containerfile copies present, the compose file's services wired to each other.
/// </summary>
public sealed class DeployTests
{
    private static readonly string RepoRoot = Warden.Core.Tests.TestData.RepoRoot;
    private static readonly string Deploy = Path.Combine(RepoRoot, "deploy");

    private static (int Exit, string Out, string Err) Tool(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(d => File.Exists(Path.Combine(d, program)));

    /// <summary>The command line must parse: no unknown option, no missing argument, a command that exists.</summary>
    private static void AssertParses(string[] args, string where)
    {
        var parse = WardenCli.Root(TextWriter.Null, TextWriter.Null).Parse(args, WardenCli.ParserSettings);
        Assert.True(parse.Errors.Count == 0, $"{where}: warden {string.Join(' ', args)}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
    }

    private static string[] ExecStart(string unit)
    {
        var line = File.ReadAllLines(unit).Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal));
        return line["ExecStart=".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public void The_unit_runs_the_installed_binary_with_arguments_warden_accepts_and_does_not_create_databases()
    {
        var exec = ExecStart(Path.Combine(Deploy, "warden.service"));
        Assert.Equal("/opt/warden/warden", exec[0]);
        AssertParses(exec[1..], "deploy/warden.service");
        Assert.Equal("serve", exec[1]);
        Assert.DoesNotContain("--create", exec);
        var text = File.ReadAllText(Path.Combine(Deploy, "warden.service"));
        Assert.Contains("User=warden", text, StringComparison.Ordinal);
        Assert.Contains("StateDirectory=warden", text, StringComparison.Ordinal);
        Assert.Contains("--db /var/lib/warden/", text, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Systemd_verifies_the_unit()
    {
        Skip.IfNot(OnPath("systemd-analyze"), "systemd-analyze is not installed here");

        // The binary is not installed in /opt here; systemd checks that ExecStart is executable, so point it at one that is.
        var dir = Directory.CreateTempSubdirectory("warden-unit-").FullName;
        try
        {
            var unit = Path.Combine(dir, "warden.service");
            File.WriteAllText(unit, File.ReadAllText(Path.Combine(Deploy, "warden.service")).Replace("/opt/warden/warden", "/bin/true", StringComparison.Ordinal));
            var (exit, output, error) = Tool("systemd-analyze", "verify", unit);
            Assert.True(exit == 0 && output.Length == 0 && error.Length == 0, $"systemd-analyze verify: exit {exit}: {output}{error}");

            // And the verifier does catch a mistake, so its silence above means something.
            File.AppendAllText(unit, "\n[Service]\nExecStartt=/bin/true\n");
            var bad = Tool("systemd-analyze", "verify", unit);
            Assert.Contains("ExecStartt", bad.Err + bad.Out, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_containerfile_copies_what_exists_builds_with_the_install_script_and_runs_the_binary_it_built()
    {
        var lines = File.ReadAllLines(Path.Combine(Deploy, "Containerfile")).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal(2, lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)));
        foreach (var copy in lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from=", StringComparison.Ordinal)))
        {
            var parts = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in parts[1..^1])
            {
                Assert.True(Path.Exists(Path.Combine(RepoRoot, source)), $"Containerfile copies {source}, which is not in the repository");
            }
        }

        var run = lines.Single(l => l.StartsWith("RUN scripts/install ", StringComparison.Ordinal));
        var target = run.Split(' ')[2];
        Assert.True(File.Exists(Path.Combine(RepoRoot, "scripts", "install")));
        Assert.Contains($"COPY --from=build {target} {target}", lines);
        var entry = JsonSerializer.Deserialize<string[]>(lines.Single(l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal))["ENTRYPOINT ".Length..])!;
        var cmd = JsonSerializer.Deserialize<string[]>(lines.Single(l => l.StartsWith("CMD ", StringComparison.Ordinal))["CMD ".Length..])!;
        Assert.Equal([target + "/warden"], entry);
        AssertParses(cmd, "deploy/Containerfile CMD");
        Assert.Contains("WARDEN_DB=/var/lib/warden/warden.db", string.Join(' ', lines), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_compose_file_builds_this_containerfile_and_points_warden_at_its_postgres()
    {
        Skip.IfNot(OnPath("python3") && Tool("python3", "-c", "import yaml").Exit == 0, "python3 with PyYAML is needed to read the compose file");
        var (exit, json, err) = Tool("python3", "-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", Path.Combine(Deploy, "compose.yaml"));
        Assert.True(exit == 0, err);
        var services = JsonDocument.Parse(json).RootElement.GetProperty("services");
        var warden = services.GetProperty("warden");
        var postgres = services.GetProperty("postgres");
        var build = warden.GetProperty("build");
        var context = Path.GetFullPath(Path.Combine(Deploy, build.GetProperty("context").GetString()!));
        Assert.Equal(Path.GetFullPath(RepoRoot), context);
        Assert.True(File.Exists(Path.Combine(context, build.GetProperty("dockerfile").GetString()!)));
        Assert.Equal("service_healthy", warden.GetProperty("depends_on").GetProperty("postgres").GetProperty("condition").GetString());
        Assert.True(postgres.TryGetProperty("healthcheck", out _));

        var db = warden.GetProperty("environment").GetProperty("WARDEN_DB").GetString()!;
        Assert.True(Warden.Storage.WardenDatabase.IsPostgres(db));
        Assert.Contains("Host=postgres;", db, StringComparison.Ordinal);
        Assert.Contains($"Database={postgres.GetProperty("environment").GetProperty("POSTGRES_DB").GetString()};", db, StringComparison.Ordinal);
        Assert.Contains($"Username={postgres.GetProperty("environment").GetProperty("POSTGRES_USER").GetString()};", db, StringComparison.Ordinal);
        var command = warden.GetProperty("command").EnumerateArray().Select(e => e.GetString()!).ToArray();
        AssertParses(command, "deploy/compose.yaml");
        Assert.Contains("--create", command);
    }

    [SkippableFact]
    public void The_container_builds_where_an_engine_runs()
    {
        Skip.IfNot(OnPath("docker") || OnPath("podman"), "no container engine client (docker or podman) here");
        var engine = OnPath("podman") ? "podman" : "docker";
        Skip.If(Tool(engine, "info").Exit != 0, $"{engine} has no running engine here (client only), so the image is not built; the static checks above cover the Containerfile");
        Skip.If(Environment.GetEnvironmentVariable("WARDEN_TEST_CONTAINER_BUILD") != "1", "set WARDEN_TEST_CONTAINER_BUILD=1 to build the image (minutes, needs the base images reachable)");
        var (exit, output, error) = Tool(engine, "build", "-f", Path.Combine(Deploy, "Containerfile"), "-t", "warden-test", RepoRoot);
        Assert.True(exit == 0, output + error);
    }
}
