using System.Text.Json;
using Warden.Storage.Tests;

namespace Warden.Cli.Tests;

/// <summary>`warden bank …` and `warden scan` with --db a PostgreSQL connection string (skipped without a test server).</summary>
public sealed class PostgresCliTests
{
    private static readonly string RepoRoot = Warden.Core.Tests.TestData.RepoRoot;

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        return (WardenCli.Run(args, output, error), output.ToString(), error.ToString());
    }

    [SkippableFact]
    public async Task Quick_start_and_index_snapshot_work_on_postgres()
    {
        await using var db = await TestDatabases.CreatePostgresAsync();
        var cache = Directory.CreateTempSubdirectory("warden-xdg-").FullName;
        var oldCache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", cache);
        try
        {
            var created = Run("bank", "create", "demo", "--db", db.Target);
            Assert.Equal(0, created.Exit);
            Assert.Contains("in postgres://", created.Out, StringComparison.Ordinal);
            Assert.Equal(0, Run("bank", "import", "demo", Path.Combine(RepoRoot, "samples", "demo-bank.csv"), "--db", db.Target).Exit);
            Assert.Contains("demo", Run("bank", "list", "--db", db.Target).Out, StringComparison.Ordinal);

            MatcherCache.MinEntriesToSave = 0;
            var uploads = Path.Combine(RepoRoot, "samples", "uploads");
            var first = Run("scan", "-f", "jsonl", "--fail-on-match", uploads, "--db", db.Target);
            var second = Run("scan", "-f", "jsonl", "--fail-on-match", uploads, "--db", db.Target);
            Assert.Equal((3, 3), (first.Exit, second.Exit));
            Assert.Contains("from the database", first.Err, StringComparison.Ordinal);
            Assert.Contains("from the index snapshot", second.Err, StringComparison.Ordinal);
            Assert.Equal(first.Out, second.Out);
            Assert.Single(Directory.GetDirectories(Path.Combine(cache, "warden"), "index-*"));

            var matched = first.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => Path.GetFileName(JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()!))
                .ToHashSet();
            Assert.DoesNotContain("unrelated-plasma.jpg", matched);
            Assert.NotEmpty(matched);

            // A change through any client invalidates the snapshot.
            Assert.Equal(0, Run("bank", "disable", "demo", "--db", db.Target).Exit);
            var none = Run("scan", "-f", "jsonl", uploads, "--db", db.Target);
            Assert.Equal(0, none.Exit);
            Assert.Empty(none.Out);
            Assert.Contains("from the database", none.Err, StringComparison.Ordinal);

            // With every bank disabled a --fail-on-match gate has nothing to match: refused, not passed.
            Assert.Equal(ScanCommand.NothingToMatch, Run("scan", "--fail-on-match", uploads, "--db", db.Target).Exit);
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", oldCache);
            Directory.Delete(cache, recursive: true);
        }
    }

    [Theory]
    [InlineData("postgres://warden:hunter2@127.0.0.1:1/warden", "Cannot reach PostgreSQL at postgres://warden@127.0.0.1:1/warden")]
    [InlineData("Host=127.0.0.1;Password=hunter2;Bogus=1", "Not a valid PostgreSQL connection string")]
    public void Unusable_postgres_targets_fail_with_one_clear_line(string target, string reason)
    {
        var (exit, output, error) = Run("bank", "list", "--db", target);
        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.StartsWith("warden: " + reason, error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("hunter2", error, StringComparison.Ordinal);
    }
}
