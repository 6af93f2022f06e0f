using System.CommandLine;
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Warden.Storage.Tests;

namespace Warden.Cli.Tests;

/// <summary>
/// Fail closed: every command that takes --db refuses a database that does not exist (exit 2, one line, nothing
/// created) unless it is one of the commands that create; <c>scan --fail-on-match</c> never passes because of a
/// configuration mistake.
/// </summary>
public sealed class FailClosedTests : IDisposable
{
    private static readonly string RepoRoot = Warden.Core.Tests.TestData.RepoRoot;
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-failclosed-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        return (WardenCli.Run(args, output, error), output.ToString(), error.ToString());
    }

    private static string Image => Path.Combine(RepoRoot, "samples", "images", "sunset-plasma.jpg");

    private string Csv
    {
        get
        {
            var path = Path.Combine(_dir, "list.csv");
            File.WriteAllLines(path, ["signal_type,signal", $"md5,{new string('a', 32)}"]);
            return path;
        }
    }

    /// <summary>
    /// The arguments (besides --db) that make each database command runnable. Keyed by the command's path; the
    /// tree walk below fails when a command taking --db is missing here, so new commands join the class.
    /// </summary>
    private Dictionary<string, string[]> Arguments() => new(StringComparer.Ordinal)
    {
        ["bank create"] = ["demo"],
        ["backfill status"] = ["--nats", "nats://127.0.0.1:1"],
        ["backfill pause"] = [],
        ["backfill resume"] = [],
        ["worker"] = ["--nats", "nats://127.0.0.1:1"],
        ["bank list"] = [],
        ["bank enable"] = ["demo"],
        ["bank disable"] = ["demo"],
        ["bank import"] = ["demo", Csv],
        ["bank export"] = ["demo"],
        ["scan"] = [Image],
        ["serve"] = ["--urls", "http://127.0.0.1:1"],
        ["key create"] = ["--role", "admin"],
        ["key list"] = [],
        ["key revoke"] = ["1"],
        ["provenance"] = [Image],
        ["model add"] = ["--bank", "demo", Image],
        ["model scan"] = [Image],
        ["user create"] = ["alice", "--role", "reviewer", "--password", "a long enough passphrase"],
        ["user list"] = [],
        ["user disable"] = ["alice"],
        ["user enable"] = ["alice"],
        ["user reset-password"] = ["alice", "--password", "a long enough passphrase"],
        ["review migrate"] = [],
        ["exchange add"] = ["feed", "--type", "ncmec", "--bank", "demo", "--url", "http://127.0.0.1:1", "--environment", "Industry", "--credentials-env", "WARDEN_TEST_NO_SUCH_VAR"],
        ["exchange fetch"] = ["feed"],
        ["exchange status"] = [],
        ["exchange list"] = [],
        ["exchange remove"] = ["feed"],
        ["exchange enable"] = ["feed"],
        ["exchange disable"] = ["feed"],
        ["exchange feedback"] = ["feed", "--entry", "1-1", "--signal-type", "md5", "--opinion", "true-positive"],
    };

    /// <summary>The commands that create a missing database when asked to (documented in docs/operations.md).</summary>
    private static readonly HashSet<string> Creating = new(StringComparer.Ordinal) { "bank create", "key create", "user create", "exchange add" };

    private static List<string> CommandsTakingDb()
    {
        var found = new List<string>();
        void Walk(Command c, string prefix)
        {
            var path = prefix.Length == 0 ? c.Name : prefix + " " + c.Name;
            if (c.Options.Any(o => o.Name == "--db"))
            {
                found.Add(path);
            }

            foreach (var sub in c.Subcommands)
            {
                Walk(sub, path);
            }
        }

        foreach (var c in WardenCli.Root(TextWriter.Null, TextWriter.Null).Subcommands)
        {
            Walk(c, string.Empty);
        }

        return found;
    }

    [Fact]
    public void Every_command_taking_db_is_covered_here()
    {
        var commands = CommandsTakingDb().ToList();
        Assert.NotEmpty(commands);
        Assert.Equal(commands.Order(StringComparer.Ordinal), Arguments().Keys.Order(StringComparer.Ordinal));
    }

    /// <summary>Ways a --db can name no Warden database: each is refused by every non-creating command.</summary>
    public static TheoryData<string> Mistakes => new() { "missing-file", "missing-folder", "empty-file", "not-sqlite", "foreign-sqlite", "a-folder" };

    private string MakeMistake(string kind)
    {
        switch (kind)
        {
            case "missing-file":
                return Path.Combine(_dir, "wardne.db");
            case "missing-folder":
                return Path.Combine(_dir, "no", "such", "warden.db");
            case "empty-file":
                File.WriteAllBytes(Path.Combine(_dir, "empty.db"), []);
                return Path.Combine(_dir, "empty.db");
            case "not-sqlite":
                File.WriteAllText(Path.Combine(_dir, "notes.db"), "these are notes, not a database\n");
                return Path.Combine(_dir, "notes.db");
            case "foreign-sqlite":
                var foreign = Path.Combine(_dir, "other-app.db");
                using (var c = new SqliteConnection($"Data Source={foreign};Pooling=false"))
                {
                    c.Open();
                    using var cmd = c.CreateCommand();
                    cmd.CommandText = "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)";
                    cmd.ExecuteNonQuery();
                }

                return foreign;
            case "a-folder":
                return Directory.CreateDirectory(Path.Combine(_dir, "folder.db")).FullName;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    private static string Snapshot(string dir) =>
        string.Join('\n', Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => f + (File.Exists(f) ? ":" + new FileInfo(f).Length : "/")));

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void Every_reading_command_refuses_a_database_that_is_not_there_and_creates_nothing(string kind)
    {
        var db = MakeMistake(kind);
        var args = Arguments();
        foreach (var command in CommandsTakingDb().Where(c => !Creating.Contains(c)))
        {
            var before = Snapshot(_dir);
            var (exit, output, error) = Run([.. command.Split(' '), .. args[command], "--db", db]);

            // The review tables live in the configured database: user list and review migrate refuse like the rest.
            Assert.True(exit == WardenCli.NoDatabase, $"{command} on {kind}: exit {exit}: {error}");
            Assert.Contains("warden bank create", error, StringComparison.Ordinal);

            Assert.Empty(output);
            Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal(before, Snapshot(_dir));
        }
    }

    [Theory]
    [InlineData("bank create")]
    [InlineData("key create")]
    [InlineData("user create")]
    [InlineData("exchange add")]
    public void The_creating_commands_create_a_missing_database(string command)
    {
        var db = Path.Combine(_dir, "sub", "new.db");
        var (exit, _, error) = Run([.. command.Split(' '), .. Arguments()[command], "--db", db]);
        Assert.True(exit == 0, error);
        Assert.True(File.Exists(db)); // the review tables live in the configured database too
        if (command != "user create")
        {
            // And from then on the reading commands accept it.
            Assert.Equal(0, Run("bank", "list", "--db", db).Exit);
            Assert.Equal(0, Run("key", "list", "--db", db).Exit);
        }
        else
        {
            Assert.Equal(0, Run("user", "list", "--db", db).Exit);
        }
    }

    [Fact]
    public void The_environment_default_is_guarded_as_well()
    {
        var missing = Path.Combine(_dir, "typo.db");
        var old = Environment.GetEnvironmentVariable(CommonOptions.DbEnvironmentVariable);
        Environment.SetEnvironmentVariable(CommonOptions.DbEnvironmentVariable, missing);
        try
        {
            var (exit, _, error) = Run("scan", "--fail-on-match", Image);
            Assert.Equal(WardenCli.NoDatabase, exit);
            Assert.Contains(missing, error, StringComparison.Ordinal);
            Assert.False(File.Exists(missing));
        }
        finally
        {
            Environment.SetEnvironmentVariable(CommonOptions.DbEnvironmentVariable, old);
        }
    }

    /// <summary>Bank set-ups with nothing to match against: each makes --fail-on-match exit 4 before hashing.</summary>
    public static TheoryData<string> EmptyBankSets => new() { "no-banks", "empty-block-bank", "disabled-block-bank", "allow-list-only", "all-disabled" };

    [Theory]
    [MemberData(nameof(EmptyBankSets))]
    public void Fail_on_match_refuses_when_there_is_nothing_to_match(string setup)
    {
        var db = Path.Combine(_dir, "w.db");
        Assert.Equal(0, Run("bank", "create", "seed", "--kind", "allow", "--db", db).Exit);
        Assert.Equal(0, Run("bank", "disable", "seed", "--db", db).Exit);
        var csv = Csv;
        switch (setup)
        {
            case "empty-block-bank":
                Run("bank", "create", "b", "--db", db);
                break;
            case "disabled-block-bank":
                Run("bank", "create", "b", "--db", db);
                Run("bank", "import", "b", csv, "--db", db);
                Run("bank", "disable", "b", "--db", db);
                break;
            case "allow-list-only":
                Run("bank", "create", "a", "--kind", "allow", "--db", db);
                Run("bank", "import", "a", csv, "--db", db);
                break;
            case "all-disabled":
                Run("bank", "create", "b", "--db", db);
                Run("bank", "import", "b", csv, "--db", db);
                Run("bank", "create", "a", "--kind", "allow", "--db", db);
                Run("bank", "import", "a", csv, "--db", db);
                Run("bank", "disable", "b", "--db", db);
                Run("bank", "disable", "a", "--db", db);
                break;
        }

        var gate = Run("scan", "--fail-on-match", Image, "--db", db);
        Assert.Equal(ScanCommand.NothingToMatch, gate.Exit);
        Assert.Contains("--fail-on-match could not fail", gate.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("scanned", gate.Err, StringComparison.Ordinal);
        Assert.Equal(ScanCommand.NothingToMatch, Run("model", "scan", "--fail-on-match", Image, "--db", db).Exit);

        // Without the gate it is a warning, not an error.
        var plain = Run("scan", Image, "--db", db);
        Assert.Equal(0, plain.Exit);
        Assert.Contains("no enabled", plain.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Fail_on_match_with_a_filled_bank_passes_clean_files_and_fails_unreadable_ones()
    {
        var db = Path.Combine(_dir, "w.db");
        Run("bank", "create", "b", "--db", db);
        Assert.Equal(0, Run("bank", "import", "b", Csv, "--db", db).Exit);
        Assert.Equal(0, Run("scan", "--fail-on-match", Image, "--db", db).Exit);

        var truncated = Path.Combine(_dir, "cut.jpg");
        File.WriteAllBytes(truncated, File.ReadAllBytes(Image)[..200]);
        foreach (var bad in new[] { Path.Combine(_dir, "missing.jpg"), truncated })
        {
            var (exit, _, error) = Run("scan", "--fail-on-match", Image, bad, "--db", db);
            Assert.True(exit == WardenCli.SomeFailed, $"{bad}: exit {exit}: {error}");
        }
    }

    [Fact]
    public void Serve_refuses_a_missing_database_and_creates_it_with_create()
    {
        var db = Path.Combine(_dir, "srv.db");
        var (exit, _, error) = Run("serve", "--db", db, "--urls", "http://127.0.0.1:1");
        Assert.Equal(WardenCli.NoDatabase, exit);
        Assert.Contains("serve --create", error, StringComparison.Ordinal);
        Assert.False(File.Exists(db));
    }

    [Fact]
    public async Task The_real_executable_exits_2_on_a_missing_database_and_serve_create_makes_one()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "warden.dll");
        var db = Path.Combine(_dir, "p.db");
        var scan = await RunProcess(dll, ["scan", "--fail-on-match", "--db", db, Image]);
        Assert.Equal(WardenCli.NoDatabase, scan.Exit);
        Assert.StartsWith("warden: no database at " + db, scan.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(db));

        // serve --create: the database appears and the server comes up; then it is stopped.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var psi = new ProcessStartInfo("dotnet", [dll, "serve", "--create", "--db", db, "--urls", $"http://127.0.0.1:{port}"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var server = Process.Start(psi)!;
        try
        {
            using var http = new HttpClient();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            var ready = false;
            while (!ready && DateTime.UtcNow < deadline && !server.HasExited)
            {
                try
                {
                    ready = (await http.GetAsync(new Uri($"http://127.0.0.1:{port}/readyz"))).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                }

                await Task.Delay(200);
            }

            Assert.True(ready, "serve --create did not become ready");
            Assert.True(File.Exists(db));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static async Task<(int Exit, string Out, string Err)> RunProcess(string dll, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [dll, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdout = p.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = p.StandardError.ReadToEndAsync(timeout.Token);
        await p.WaitForExitAsync(timeout.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    [SkippableFact]
    public async Task Postgres_without_warden_schema_or_without_the_database_is_refused()
    {
        await using var db = await TestDatabases.CreatePostgresAsync();
        var empty = Run("bank", "list", "--db", db.Target);
        Assert.Equal(WardenCli.NoDatabase, empty.Exit);
        Assert.Contains("holds no Warden schema", empty.Err, StringComparison.Ordinal);

        var missing = new Npgsql.NpgsqlConnectionStringBuilder(db.Target) { Database = "warden_no_such_db_" + Guid.NewGuid().ToString("N")[..8] }.ConnectionString;
        var gone = Run("scan", "--fail-on-match", Image, "--db", missing);
        Assert.Equal(WardenCli.NoDatabase, gone.Exit);
        Assert.Contains("does not exist", gone.Err, StringComparison.Ordinal);

        Assert.Equal(0, Run("bank", "create", "demo", "--db", db.Target).Exit);
        Assert.Equal(0, Run("bank", "list", "--db", db.Target).Exit);
    }
}
