using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Review.Tests;

/// <summary>
/// Case claims and user administration in the review database, on SQLite and PostgreSQL: one live claim per
/// case whatever the number of nodes and reviewers racing for it, leases that lapse, sessions that end.
/// </summary>
public abstract class ConsoleStoreTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 9, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(15);

    protected abstract SqlDialect Dialect { get; }

    [SkippableFact]
    public async Task A_claim_is_one_reviewers_until_released_or_lapsed_and_renewal_keeps_its_start()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var store = new ConsoleStore(db);
        var (alice, bob) = (User(db, "alice"), User(db, "bob"));

        var a = store.TryClaim("case-1", alice, Lease, T0);
        Assert.NotNull(a);
        Assert.Equal(("alice", T0, T0 + Lease), (a.Username, a.ClaimedAt, a.ExpiresAt));
        Assert.Null(store.TryClaim("case-1", bob, Lease, T0.AddMinutes(14))); // live: refused, nothing changed
        Assert.Equal("alice", store.Holder("case-1", T0.AddMinutes(14))!.Username);

        var renewed = store.TryClaim("case-1", alice, Lease, T0.AddMinutes(10));
        Assert.Equal((T0, T0.AddMinutes(25)), (renewed!.ClaimedAt, renewed.ExpiresAt)); // same claim, longer lease
        Assert.Null(store.TryClaim("case-1", bob, Lease, T0.AddMinutes(24)));

        // Lapsed: anyone may take it, and it is a new claim (new start).
        var b = store.TryClaim("case-1", bob, Lease, T0.AddMinutes(25));
        Assert.Equal(("bob", T0.AddMinutes(25)), (b!.Username, b.ClaimedAt));
        Assert.Null(store.Holder("case-1", T0.AddMinutes(41)));
        Assert.Empty(store.Live(T0.AddMinutes(41)));
        Assert.Single(store.Live(T0.AddMinutes(26)));

        // Release: only one's own, unless forced (admin).
        Assert.False(store.Release("case-1", alice.Id));
        Assert.Equal("bob", store.Holder("case-1", T0.AddMinutes(26))!.Username);
        Assert.True(store.Release("case-1", bob.Id));
        Assert.NotNull(store.TryClaim("case-1", alice, Lease, T0.AddMinutes(26)));
        Assert.True(store.Release("case-1", null));
        Assert.Null(store.Holder("case-1", T0.AddMinutes(26)));
    }

    /// <summary>Reviewers on two nodes (two connections pools on one database) race for the same cases: exactly one wins each.</summary>
    [SkippableFact]
    public async Task Concurrent_claims_from_two_nodes_give_exactly_one_holder_per_case()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var nodeA = ReviewDatabase.Open(t.Target);
        using var nodeB = ReviewDatabase.Open(t.Target);
        var stores = new[] { new ConsoleStore(nodeA), new ConsoleStore(nodeB) };
        var users = Enumerable.Range(0, 8).Select(i => User(nodeA, "r" + i)).ToArray();
        for (var round = 0; round < 12; round++)
        {
            var caseId = "case-" + round;
            var now = T0.AddSeconds(round);
            using var go = new ManualResetEventSlim();
            var tasks = users.Select((u, i) => Task.Run(() =>
            {
                go.Wait();
                return stores[i % 2].TryClaim(caseId, u, Lease, now);
            })).ToArray();
            go.Set();
            var results = await Task.WhenAll(tasks);
            var winner = Assert.Single(results, r => r is not null);
            Assert.Equal(winner!.Username, stores[round % 2].Holder(caseId, now)!.Username);
        }
    }

    [SkippableFact]
    public async Task Disabling_or_resetting_a_password_ends_the_users_sessions()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var users = new ReviewStore(db);
        var store = new ConsoleStore(db);
        var alice = User(db, "alice");
        var bob = User(db, "bob");
        var later = DateTimeOffset.UtcNow.AddHours(1);
        users.CreateSession("s-alice-1", alice.Id, "c", later);
        users.CreateSession("s-alice-2", alice.Id, "c", later);
        users.CreateSession("s-bob", bob.Id, "c", later);
        Assert.Equal(2, store.SessionCounts(DateTimeOffset.UtcNow)[alice.Id]);

        Assert.True(store.SetDisabled("alice", true));
        Assert.Null(users.FindSession("s-alice-1", DateTimeOffset.UtcNow));
        Assert.Null(users.FindSession("s-alice-2", DateTimeOffset.UtcNow));
        Assert.NotNull(users.FindSession("s-bob", DateTimeOffset.UtcNow)); // only hers
        Assert.True(users.FindUser("alice")!.Value.User.Disabled);
        Assert.True(store.SetDisabled("alice", false));
        Assert.False(users.FindUser("alice")!.Value.User.Disabled);
        Assert.False(store.SetDisabled("nobody", true));

        var before = users.FindUser("bob")!.Value.PasswordHash;
        Assert.True(store.SetPassword("bob", PasswordHashing.Hash("a new long passphrase")));
        Assert.Null(users.FindSession("s-bob", DateTimeOffset.UtcNow));
        var after = users.FindUser("bob")!.Value.PasswordHash;
        Assert.NotEqual(before, after);
        Assert.True(PasswordHashing.Verify("a new long passphrase", after));
        Assert.False(store.SetPassword("nobody", after));

        var generated = Enumerable.Range(0, 50).Select(_ => ConsoleStore.GeneratePassword()).ToList();
        Assert.All(generated, p => Assert.Equal(20, p.Length));
        Assert.Equal(50, generated.Distinct().Count());
    }

    [SkippableFact]
    public async Task User_names_follow_one_rule_and_never_differ_only_in_case()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var users = new ReviewStore(db);
        var hash = PasswordHashing.Hash("a long enough passphrase");
        string[] refused = ["", " alice", "alice ", "al ice", "alice\n", "alice\nroot", "a\u0000b", "\u0430lice", "ali\u200Bce", "-alice", ".alice", "@alice", new string('a', 65), "a/b", "a;b", "a'b", "a\"b", "a\u2028b"];
        foreach (var name in refused)
        {
            var ex = Assert.Throws<ArgumentException>(() => users.CreateUser(name, "reviewer", hash));
            Assert.Contains("Invalid user name", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("\n", ex.Message, StringComparison.Ordinal); // shown escaped, never a second line
        }

        foreach (var name in new[] { "alice", "bob.smith", "r2-d2", "x_y", "jane+review@example.org", new string('a', 64), "7" })
        {
            Assert.True(users.CreateUser(name, "reviewer", hash), name);
        }

        Assert.False(users.CreateUser("ALICE", "admin", hash)); // taken: differs only in case
        Assert.False(users.CreateUser("Bob.Smith", "admin", hash));
        Assert.Equal(7, users.Users().Count);
        Assert.Equal("reviewer", users.FindUser("alice")!.Value.User.Role);
    }

    private static ConsoleUser User(ReviewDatabase db, string name)
    {
        var users = new ReviewStore(db);
        users.CreateUser(name, "reviewer", PasswordHashing.Hash("a long enough passphrase"));
        return users.FindUser(name)!.Value.User;
    }
}

/// <summary>On SQLite.</summary>
public sealed class ConsoleStoreSqliteTests : ConsoleStoreTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;
}

/// <summary>On PostgreSQL (skipped without WARDEN_TEST_POSTGRES).</summary>
public sealed class ConsoleStorePostgresTests : ConsoleStoreTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}
