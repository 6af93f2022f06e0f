using Warden.Review.Tests;

namespace Warden.Cli.Tests;

/// <summary>
/// <c>warden review migrate</c>: an older Warden's NAME.review.db moves into the configured database; until
/// it has, the commands that would write review state there refuse and say how to move it.
/// </summary>
public sealed class ReviewMigrateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-migrate-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void The_legacy_file_is_moved_once_and_commands_wait_for_it()
    {
        var db = Path.Combine(_dir, "warden.db");
        Assert.Equal(0, Run("bank", "create", "demo", "--db", db).Exit);
        var legacy = Path.Combine(_dir, "warden.review.db");
        LegacyFixture.Create(legacy);
        using (var c = LegacyFixture.Open(legacy))
        {
            LegacyFixture.Exec(c, "INSERT INTO console_users(username, role, password_hash, created_at) VALUES ('alice', 'reviewer', 'x', 1)");
        }

        // Writing review state now would split it over two places (and an audit record would block the move).
        foreach (var args in new[] { new[] { "user", "list" }, ["user", "create", "bob", "--role", "admin", "--password", "a long enough passphrase"], ["key", "create", "--role", "admin"], ["key", "revoke", "1"] })
        {
            var (exit, _, error) = Run([.. args, "--db", db]);
            Assert.True(exit == WardenCli.NoDatabase, $"{string.Join(' ', args)}: {exit} {error}");
            Assert.Contains("warden review migrate", error, StringComparison.Ordinal);
        }

        // The server refuses to start beside it: one line, the way out, no stack trace.
        var (served, _, serveErr) = Run("serve", "--db", db, "--urls", "http://127.0.0.1:0");
        Assert.Equal(WardenCli.SomeFailed, served);
        Assert.Contains("warden review migrate", serveErr, StringComparison.Ordinal);
        Assert.Single(serveErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var (moved, output, err) = Run("review", "migrate", "--db", db);
        Assert.True(moved == 0, err);
        Assert.Contains("console_users\t1", output, StringComparison.Ordinal);
        Assert.Contains("audit chain verified", err, StringComparison.Ordinal);
        Assert.False(File.Exists(legacy));
        Assert.True(File.Exists(legacy + ".migrated"));

        var (listed, users, _) = Run("user", "list", "--db", db);
        Assert.Equal(0, listed);
        Assert.StartsWith("alice\treviewer", users, StringComparison.Ordinal);
        Assert.Equal(0, Run("key", "create", "--role", "admin", "--db", db).Exit);

        var (again, _, againErr) = Run("review", "migrate", "--db", db);
        Assert.Equal(WardenCli.NoDatabase, again);
        Assert.Contains("no legacy review file", againErr, StringComparison.Ordinal);

        // An explicit --from that is not a review file: refused, one line, nothing renamed.
        var notes = Path.Combine(_dir, "notes.db");
        File.WriteAllText(notes, "not a database");
        var (bad, _, badErr) = Run("review", "migrate", "--db", db, "--from", notes);
        Assert.Equal(WardenCli.SomeFailed, bad);
        Assert.Single(badErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(File.Exists(notes));
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
