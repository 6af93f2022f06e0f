using Warden.Review.Storage;

namespace Warden.Cli.Tests;

/// <summary><c>warden key</c>: keys printed once, revocable, and both changes in the audit log.</summary>
public sealed class KeyCommandTests
{
    [Fact]
    public void Create_prints_the_key_once_and_create_and_revoke_are_audited()
    {
        var dir = Directory.CreateTempSubdirectory("warden-key-").FullName;
        try
        {
            var db = Path.Combine(dir, "w.db");
            using var output = new StringWriter();
            using var error = new StringWriter();
            Assert.Equal(0, WardenCli.Run(["key", "create", "--role", "curator", "--name", "ops", "--db", db], output, error));
            var key = output.ToString().Trim();
            Assert.StartsWith("wdn_", key, StringComparison.Ordinal);

            using var list = new StringWriter();
            Assert.Equal(0, WardenCli.Run(["key", "list", "--db", db], list, error));
            Assert.Contains("curator", list.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(key, list.ToString(), StringComparison.Ordinal);

            Assert.Equal(0, WardenCli.Run(["key", "revoke", "1", "--db", db], output, error));
            Assert.Equal(1, WardenCli.Run(["key", "revoke", "1", "--db", db], output, error));
            Assert.Equal(2, WardenCli.Run(["key", "create", "--role", "root", "--db", db], output, error));

            using var review = ReviewDatabase.Open(db);
            var audit = UserCommand.Audit(review);
            var actions = audit.Query().Select(r => r.Action).ToList();
            Assert.Equal(["key.create", "key.revoke"], actions);
            Assert.True(audit.Verify().Ok);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }
}
