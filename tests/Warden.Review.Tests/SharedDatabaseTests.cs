using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Dapper;
using Warden.Review.Audit;
using Warden.Review.Reporting;
using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Review.Tests;

/// <summary>The review tables on a SQLite file (one node, the default).</summary>
public sealed class SqliteSharedDatabaseTests : SharedDatabaseTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;
}

/// <summary>The review tables on PostgreSQL (several nodes on one database; WARDEN_TEST_POSTGRES).</summary>
public sealed class PostgresSharedDatabaseTests : SharedDatabaseTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>
/// One persistence: the review state lives in the configured database through the common migration runner,
/// and two <see cref="ReviewDatabase"/> instances on one database (two nodes) share one audit chain, one
/// outbox, one set of sessions and one exposure counter per person.
/// </summary>
public abstract class SharedDatabaseTests
{
    protected abstract SqlDialect Dialect { get; }

    [SkippableFact]
    public async Task The_review_tables_use_the_common_runner_beside_the_banks()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using (var banks = BankStore.Open(t.Target))
        {
            using var review = ReviewDatabase.On(banks.Database);
            Assert.Equal(0, banks.Database.Migrate(ReviewSql.Schema)); // already current: one version row, no second runner
            using var c = banks.Database.OpenConnection();
            Assert.Equal(ReviewSql.Schema.Migrations.Count, c.ExecuteScalar<long>("SELECT version FROM schema_versions WHERE name = 'review'"));
            Assert.Equal(0, c.ExecuteScalar<long>("SELECT COUNT(*) FROM audit_log"));
            Assert.Equal(0, c.ExecuteScalar<long>("SELECT COUNT(*) FROM banks")); // the same database as the banks
        }

        // Several processes starting at once migrate exactly once.
        var applied = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            using var db = WardenDatabase.Open(t.Target);
            return db.Migrate(ReviewSql.Schema);
        })));
        Assert.All(applied, a => Assert.Equal(0, a));
    }

    [SkippableFact]
    public async Task Audit_appends_from_several_nodes_build_one_verifiable_chain()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var nodeA = ReviewDatabase.Open(t.Target);
        using var nodeB = ReviewDatabase.Open(t.Target);
        var logs = new[] { new AuditLog(new DbAuditStore(nodeA)), new AuditLog(new DbAuditStore(nodeB)) };
        await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 20; i++)
            {
                logs[w % 2].Append(new AuditEntry($"user:w{w}", "evidence.view", $"case:{i}", new Dictionary<string, string> { ["i"] = i.ToString(CultureInfo.InvariantCulture) }));
            }
        })));

        var v = logs[0].Verify();
        Assert.True(v.Ok, v.Reason);
        Assert.Equal(120, v.RecordsChecked);
        Assert.Equal(Enumerable.Range(1, 120).Select(i => (long)i), logs[1].Query().Select(r => r.Seq));
    }

    [SkippableFact]
    public async Task The_database_refuses_edits_to_the_audit_log()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var log = new AuditLog(new DbAuditStore(db));
        log.Append(new AuditEntry("cli", "user.create", "user:a"));
        using var c = db.Database.OpenConnection();
        var edits = new List<string> { "UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log" };
        if (Dialect == SqlDialect.Postgres)
        {
            edits.Add("TRUNCATE audit_log");
        }

        foreach (var edit in edits)
        {
            var ex = Assert.ThrowsAny<DbException>(() => c.Execute(edit));
            Assert.Contains("append-only", ex.Message, StringComparison.Ordinal);
        }

        Assert.True(log.Verify().Ok);
    }

    [SkippableFact]
    public async Task The_daily_exposure_cap_holds_across_nodes()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var nodeA = ReviewDatabase.Open(t.Target);
        using var nodeB = ReviewDatabase.Open(t.Target);
        var stores = new[] { new ReviewStore(nodeA), new ReviewStore(nodeB) };
        foreach (var cap in new[] { 0, 1, 3, 17 })
        {
            var user = 100 + cap;
            var granted = new ConcurrentBag<int>();
            await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(() =>
            {
                for (var i = 0; i < 6; i++)
                {
                    if (stores[w % 2].TryExpose(user, "2026-12-07", cap) is { } n)
                    {
                        granted.Add(n);
                    }
                }
            })));

            // Exactly the cap, each count handed out once, whichever node counted.
            Assert.Equal(Enumerable.Range(1, cap), granted.Order());
            Assert.Equal(cap, stores[0].Exposure(user, "2026-12-07"));
            Assert.Equal(0, stores[1].Exposure(user, "2026-12-08"));
        }
    }

    [SkippableFact]
    public async Task A_session_made_on_one_node_works_on_another_until_it_ends()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var nodeA = ReviewDatabase.Open(t.Target);
        using var nodeB = ReviewDatabase.Open(t.Target);
        var a = new ReviewStore(nodeA);
        var b = new ReviewStore(nodeB);
        Assert.True(a.CreateUser("alice", "reviewer", PasswordHashing.Hash("a long enough passphrase")));
        Assert.False(b.CreateUser("alice", "admin", "x")); // the name is taken on every node
        var alice = b.FindUser("alice")!.Value.User;
        var now = DateTimeOffset.UtcNow;
        a.CreateSession("token-live", alice.Id, "csrf-1", now.AddHours(1));
        a.CreateSession("token-old", alice.Id, "csrf-2", now.AddSeconds(-1));
        b.SetPreferences(alice.Id, blur: false, greyscale: true);
        b.SetDisplay(alice.Id, 40, null);

        var seen = b.FindSession("token-live", now);
        Assert.NotNull(seen);
        Assert.Equal(("alice", "csrf-1", (bool?)false, (bool?)true), (seen.User.Username, seen.Csrf, seen.User.Blur, seen.User.Greyscale));
        Assert.Equal((40, (int?)null), a.Display(alice.Id));
        Assert.Null(b.FindSession("token-old", now));
        Assert.Null(b.FindSession("token-unknown", now));
        b.DeleteSession("token-live"); // log out through node B ...
        Assert.Null(a.FindSession("token-live", now)); // ... ends it on node A
    }

    [SkippableFact]
    public async Task Two_nodes_enqueueing_one_case_make_one_delivery_and_one_wins_each_step()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var nodeA = ReviewDatabase.Open(t.Target);
        using var nodeB = ReviewDatabase.Open(t.Target);
        var stores = new[] { new DbDeliveryStore(nodeA), new DbDeliveryStore(nodeB) };
        var files = new[] { new DeliveryFile(0, "ev-1", "a.jpg", "{}"), new DeliveryFile(1, "ev-2", "b.jpg", "{}") };
        for (var round = 0; round < 5; round++)
        {
            var caseId = "case-" + round.ToString(CultureInfo.InvariantCulture);
            var made = await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(() => stores[w % 2].Enqueue(caseId, "cybertipline", "test", "<report/>", files, DateTimeOffset.UtcNow))));
            Assert.Single(made.Select(d => d.Id).Distinct());
            Assert.Equal(2, stores[1].Files(made[0].Id).Count);

            // Both nodes read the same version; only the first write lands, the other is told it lost.
            var onA = stores[0].Find(made[0].Id)!;
            var onB = stores[1].Find(made[0].Id)!;
            stores[0].Save(onA with { Status = DeliveryStatus.Open, ReportId = "r-a" });
            Assert.Throws<DeliveryConflictException>(() => stores[1].Save(onB with { Status = DeliveryStatus.Open, ReportId = "r-b" }));
        }

        Assert.Equal(5, stores[0].List(null, 100).Count);
    }
}
