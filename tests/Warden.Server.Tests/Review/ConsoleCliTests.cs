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
