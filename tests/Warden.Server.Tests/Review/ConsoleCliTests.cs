using System.Net;
using Warden.Cli;
using Warden.Review;
using Warden.Review.Users;
using Warden.Server.Auth;

namespace Warden.Server.Tests.Review;

/// <summary><c>warden user create</c> and <c>warden review seed-demo</c> (the walkthrough of docs/review.md).</summary>
public sealed class ConsoleCliTests
{
    [Fact]
    public async Task User_create_then_seed_demo_gives_a_case_the_new_user_can_open()
    {
        await using var h = await ReviewHarness.StartAsync();
        var db = Path.Combine(h.Directory, "warden.db"); // the review tables live in the server's database
        var (exit, _, err) = Run("user", "create", "bob", "--role", "reviewer", "--password", "a long enough passphrase", "--db", db);
        Assert.Equal(0, exit);
        Assert.Contains("created reviewer 'bob'", err, StringComparison.Ordinal);
        Assert.Equal(1, Run("user", "create", "bob", "--role", "reviewer", "--password", "a long enough passphrase", "--db", db).Exit); // taken
        Assert.Equal(1, Run("user", "create", "BOB", "--role", "admin", "--password", "a long enough passphrase", "--db", db).Exit); // taken, whatever the case
        foreach (var bad in new[] { "bob\nroot", " bob", "b\u043Eb", "" })
        {
            var refused = Run("user", "create", bad, "--role", "admin", "--password", "a long enough passphrase", "--db", db);
            Assert.Equal(2, refused.Exit);
            Assert.Single(refused.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("Invalid user name", refused.Err, StringComparison.Ordinal);
        }

        Assert.Equal(2, Run("user", "create", "carol", "--role", "reviewer", "--password", "short", "--db", db).Exit);
        Assert.Equal(2, Run("user", "create", "carol", "--role", "submitter", "--password", "a long enough passphrase", "--db", db).Exit);
        Assert.Contains(h.Review.Audit.Query(new(Action: "user.create")), a => a.Subject == "user:bob");

        var (seeded, output, seedErr) = Run("review", "seed-demo", "--url", h.Server.BaseAddress.ToString(), "--key", h.Server.Key(Role.Admin));
        Assert.True(seeded == 0, seedErr);
        Assert.True(4 == output.Split('\n').Count(l => l.EndsWith(": matched", StringComparison.Ordinal)), output + seedErr);

        using var bob = await ConsoleClient.LoginAsync(h.Server.BaseAddress, "bob", "a long enough passphrase");
        var k = await bob.FirstCaseAsync();
        Assert.Equal("demo-user", k.GetProperty("uploader_id").GetString());
        Assert.Equal(4, k.GetProperty("items").GetInt32());
        Assert.Equal(3, k.GetProperty("clusters").GetArrayLength()); // the re-encoded copy joined its original
        using var anon = ConsoleClient.Anonymous(h.Server.BaseAddress);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.PostAsJsonAsync("review/api/login", new { username = "bob", password = "wrong wrong wrong" })).StatusCode);
    }

    [Fact]
    public async Task User_disable_enable_and_reset_password_end_sessions_and_are_audited()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false, configure: r => r.Login.AccountBaseDelayMilliseconds = 1);
        var db = Path.Combine(h.Directory, "warden.db");
        using var alice = await h.LoginAsync();

        Assert.Equal(0, Run("user", "disable", "alice", "--db", db).Exit);
        Assert.Equal(HttpStatusCode.Unauthorized, (await alice.Http.GetAsync("review/api/me")).StatusCode); // session ended
        var (listed, list, _) = Run("user", "list", "--db", db);
        Assert.Equal(0, listed);
        Assert.Contains("alice\treviewer\tdisabled", list, StringComparison.Ordinal);
        Assert.Equal(0, Run("user", "enable", "alice", "--db", db).Exit);

        // Generated: printed once on stdout; the old password stops working.
        var (reset, generated, resetErr) = Run("user", "reset-password", "alice", "--db", db);
        Assert.True(reset == 0, resetErr);
        Assert.Equal(20, generated.Trim().Length);
        using (var again = await ConsoleClient.LoginAsync(h.Server.BaseAddress, "alice", generated.Trim()))
        {
            Assert.Equal("alice", (await again.GetAsync("me")).GetProperty("username").GetString());
        }

        Assert.Equal(0, Run("user", "reset-password", "alice", "--password", "a chosen long passphrase", "--db", db).Exit);
        using (var chosen = await ConsoleClient.LoginAsync(h.Server.BaseAddress, "alice", "a chosen long passphrase"))
        {
            Assert.Equal(HttpStatusCode.OK, (await chosen.Http.GetAsync("review/api/me")).StatusCode);
        }

        // Mistakes: a short password (usage, 2), no such user (1), a database that does not exist (2, nothing created).
        Assert.Equal(2, Run("user", "reset-password", "alice", "--password", "short", "--db", db).Exit);
        Assert.Equal(1, Run("user", "disable", "nobody", "--db", db).Exit);
        Assert.Equal(1, Run("user", "reset-password", "nobody", "--db", db).Exit);
        var missing = Path.Combine(h.Directory, "typo.db");
        Assert.Equal(2, Run("user", "disable", "alice", "--db", missing).Exit);
        Assert.False(File.Exists(missing));

        var actions = h.Review.Audit.Query(new(Actor: "cli")).Select(a => a.Action).ToList();
        Assert.Contains("user.disable", actions);
        Assert.Contains("user.enable", actions);
        Assert.Equal(2, actions.Count(a => a == "user.password_reset"));
    }

    [Fact]
    public void Password_hashes_verify_only_the_password()
    {
        var hash = PasswordHashing.Hash("a long enough passphrase");
        Assert.StartsWith("pbkdf2-sha256$600000$", hash, StringComparison.Ordinal);
        Assert.True(PasswordHashing.Verify("a long enough passphrase", hash));
        Assert.False(PasswordHashing.Verify("a long enough passphrasE", hash));
        Assert.NotEqual(hash, PasswordHashing.Hash("a long enough passphrase")); // salted
        foreach (var bad in new[] { "", "x", "pbkdf2-sha256$1$AA==$AA==", "pbkdf2-sha256$600000$!!$AA==", "md5$1$a$b", "pbkdf2-sha256$99999999999$AA==$AA==" })
        {
            Assert.False(PasswordHashing.Verify("anything", bad));
        }
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}

/// <summary>Where an older Warden kept the review state (what 'warden review migrate' looks for).</summary>
public sealed class ReviewPathTests
{
    [Theory]
    [InlineData("warden.db", "warden.review.db")]
    [InlineData("/srv/data/main.db", "/srv/data/main.review.db")]
    [InlineData("Host=db;Database=prod_1;Username=w", "prod_1.review.db")]
    [InlineData("postgres://w@db:5432/prod", "prod.review.db")]
    [InlineData("Host=db;Username=w", "warden.review.db")]
    [InlineData("postgresql://w@db/../../etc", "etc.review.db")]
    public void Legacy_review_file_path(string database, string expected) =>
        Assert.Equal(expected, LegacyReviewFile.PathFor(database));
}
