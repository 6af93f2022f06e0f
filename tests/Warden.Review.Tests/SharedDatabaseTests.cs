using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Dapper;
using Warden.Review.Audit;
using Warden.Review.Evidence;
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

    [SkippableFact]
    public async Task Every_evidence_catalogue_query_round_trips()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var catalog = new DbEvidenceCatalog(db);
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_765_000_000_000);
        for (var i = 0; i < 12; i++)
        {
            catalog.Insert(new EvidenceItem($"ev-{i:D2}", i % 3 == 0 ? null : "case-" + (i % 4).ToString(CultureInfo.InvariantCulture), "k1", 100 + i, t0, null, t0.AddDays(i), false, null, null));
        }

        catalog.SetHold("ev-01", true, "court order 'x'");
        catalog.SetReported("ev-02", t0.AddHours(1), t0.AddYears(1));
        catalog.SetRetention("ev-03", t0.AddDays(-1));
        catalog.SetKey("ev-04", "k2");
        catalog.MarkDestroyed(new EvidenceDestruction("ev-05", t0.AddDays(6), "system:retention", "expired"));
        catalog.MarkDestroyed(new EvidenceDestruction("ev-05", t0.AddDays(7), "someone", "again")); // once only
        catalog.AddView(new EvidenceView("ev-06", "alice", ActorKind.Human, t0, "revealed", "review"));
        catalog.AddView(new EvidenceView("ev-07", "system:report", ActorKind.System, t0, "revealed", "report"));

        var item = catalog.Find("ev-01")!;
        Assert.Equal((true, "court order 'x'", (string?)"case-1", 101L), (item.LegalHold, item.HoldReason, item.CaseId, item.Size));
        Assert.Equal((t0.AddHours(1), t0.AddYears(1)), (catalog.Find("ev-02")!.ReportedAt!.Value, catalog.Find("ev-02")!.RetainUntil));
        Assert.Equal("k2", catalog.Find("ev-04")!.KeyId);
        Assert.Null(catalog.Find("ev-99"));
        Assert.Equal(("system:retention", "expired", t0.AddDays(6)), (catalog.GetDestruction("ev-05")!.Actor, catalog.GetDestruction("ev-05")!.Reason, catalog.GetDestruction("ev-05")!.At));
        Assert.Equal(["ev-03", "ev-00", "ev-04"], catalog.Due(t0.AddDays(4), 10).Select(e => e.Id)); // oldest first; held, reported-later and destroyed ones not
        Assert.Single(catalog.Due(t0.AddDays(4), 1));
        Assert.Equal(11, catalog.Live().Count);
        Assert.True(catalog.ViewedByHuman("ev-06"));
        Assert.False(catalog.ViewedByHuman("ev-07"));
        Assert.Equal(ActorKind.System, Assert.Single(catalog.Views("ev-07")).ActorKind);
    }

    [SkippableFact]
    public async Task Every_outbox_query_round_trips()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var store = new DbDeliveryStore(db);
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_765_000_000_000);
        var d = store.Enqueue("case-1", "cybertipline", "test", "<report>ü</report>", [new DeliveryFile(0, "ev-1", "a b.jpg", "{\"k\":1}")], t0);
        store.Enqueue("case-2", "cybertipline", "test", "<r/>", [], t0.AddMinutes(5));
        Assert.Equal(["case-1"], store.Due(t0.AddMinutes(1), 10).Select(x => x.CaseId));

        var opened = store.Save(
            d with { Status = DeliveryStatus.Open, ReportId = "r-1", OpenedAt = t0, Generation = 1, Failures = 2, LastError = "timeout", FailureKey = "upload:0", NextAttemptAt = t0.AddMinutes(2) },
            [new DeliveryFile(0, "ev-1", "a b.jpg", "{}", "md5hex", "file-1", true)],
            new DeliveryReceipt(d.Id, t0, 1, "open", "ok", 200, 0, "req-1", "<req/>", "<resp/>"));
        Assert.Equal(d.Version + 1, opened.Version);
        Assert.Equal(("r-1", 1, 2, "upload:0"), (opened.ReportId, opened.Generation, opened.Failures, opened.FailureKey));
        Assert.Equal(new DeliveryFile(0, "ev-1", "a b.jpg", "{\"k\":1}", "md5hex", "file-1", true), Assert.Single(store.Files(d.Id)));
        var receipt = Assert.Single(store.Receipts(d.Id));
        Assert.Equal(((int?)200, (int?)0, "req-1", "<resp/>"), (receipt.HttpStatus, receipt.ResponseCode, receipt.RequestId, receipt.Body));
        Assert.Equal([d.Id], store.OpenSince(t0).Select(x => x.Id));
        Assert.Empty(store.OpenSince(t0.AddMilliseconds(-1)));
        Assert.Equal((1, 1, 0), (store.Count(DeliveryStatus.Open), store.Count(DeliveryStatus.Queued), store.Count(DeliveryStatus.Finished)));
        Assert.Equal(["case-2", "case-1"], store.List(null, 10).Select(x => x.CaseId)); // newest first
        Assert.Equal(["case-1"], store.List(DeliveryStatus.Open, 10).Select(x => x.CaseId));
        Assert.Equal("<report>ü</report>", store.FindByCase("case-1", "cybertipline")!.Document);
        Assert.Null(store.FindByCase("case-1", "elsewhere"));
    }

    /// <summary>Someone with write access to the database edits record <paramref name="from"/> and re-hashes the whole tail.</summary>
    private void RewriteTail(ReviewDatabase db, long from)
    {
        using var c = db.Database.OpenConnection();
        c.Execute(Dialect == SqlDialect.Sqlite
            ? "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
            : "DROP TRIGGER audit_log_no_change ON audit_log; DROP TRIGGER audit_log_no_truncate ON audit_log;");
        var records = new AuditLog(new DbAuditStore(db)).Query().ToList();
        var prev = from == 1 ? AuditLog.GenesisHash.ToArray() : records[(int)from - 2].Hash;
        foreach (var r in records.Where(r => r.Seq >= from))
        {
            var actor = r.Seq == from ? "user:someone-else" : r.Actor;
            var hash = AuditLog.ComputeHash(prev, r.Seq, r.At, actor, r.Action, r.Subject, r.Details);
            c.Execute("UPDATE audit_log SET actor = @actor, prev_hash = @prev, hash = @hash WHERE seq = @seq", new { actor, prev, hash, seq = r.Seq });
            prev = hash;
        }
    }

    private static void Fill(AuditLog log, int n)
    {
        for (var i = 0; i < n; i++)
        {
            log.Append(new AuditEntry("user:u" + (i % 3).ToString(CultureInfo.InvariantCulture), "evidence.view", "case:" + i.ToString(CultureInfo.InvariantCulture)));
        }
    }

    [SkippableFact]
    public async Task Checkpoints_outside_the_database_catch_a_rewritten_tail_that_the_chain_alone_does_not()
    {
        var random = new Random(3);
        for (var round = 0; round < 4; round++)
        {
            await using var t = await TestDatabases.CreateAsync(Dialect);
            using var db = ReviewDatabase.Open(t.Target);
            using var dir = new TempDir();
            var log = new AuditLog(new DbAuditStore(db));
            var checkpoints = new AuditCheckpoints(log, new FileSystemBlobStore(dir.Path), AuditCheckpoints.DeriveKey(new byte[32]));
            Fill(log, 20);
            Assert.Equal(1, (await checkpoints.WriteAsync())!.Number);
            Assert.Null(await checkpoints.WriteAsync()); // unchanged head: nothing new to anchor
            Fill(log, 10);
            Assert.Equal((2L, 30L), ((await checkpoints.WriteAsync())!.Number, log.Head()!.Seq));
            Fill(log, 5); // not yet anchored
            Assert.True((await checkpoints.VerifyAsync()).Ok);

            var from = random.Next(1, 31);
            RewriteTail(db, from);
            Assert.True(log.Verify().Ok); // the chain alone is fooled
            var v = await checkpoints.VerifyAsync();
            Assert.False(v.Ok);
            Assert.Equal(from <= 20 ? 20 : 30, v.FirstBrokenSeq);
            Assert.Contains("checkpoint", v.Reason, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public async Task Checkpoints_catch_a_cut_tail_and_refuse_forged_or_damaged_checkpoints()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        using var dir = new TempDir();
        var blobs = new FileSystemBlobStore(dir.Path);
        var log = new AuditLog(new DbAuditStore(db));
        var nodeA = new AuditCheckpoints(log, blobs, AuditCheckpoints.DeriveKey(new byte[32]));
        var nodeB = new AuditCheckpoints(new AuditLog(new DbAuditStore(db)), blobs, AuditCheckpoints.DeriveKey(new byte[32]));
        for (var i = 0; i < 6; i++)
        {
            Fill(log, 3);
            await (i % 2 == 0 ? nodeA : nodeB).WriteAsync();
        }

        Assert.Equal(Enumerable.Range(1, 6).Select(n => (long)n), (await nodeB.ReadAllAsync()).Select(c => c.Number));
        Assert.True((await nodeA.VerifyAsync()).Ok);

        // A checkpoint signed with another key, a damaged one, or one that is not JSON: refused, fail closed.
        var other = new AuditCheckpoints(log, new FileSystemBlobStore(Path.Combine(dir.Path, "other")), AuditCheckpoints.DeriveKey(Enumerable.Repeat((byte)7, 32).ToArray()));
        Fill(log, 1);
        await other.WriteAsync();
        var forged = await new FileSystemBlobStore(Path.Combine(dir.Path, "other")).ReadAsync(AuditCheckpoints.BlobId(1));
        var good = (await blobs.ReadAsync(AuditCheckpoints.BlobId(6)))!;
        foreach (var bad in new[] { forged!, good[..(good.Length / 2)], "not json"u8.ToArray(), [], good.Select(b => b == (byte)'1' ? (byte)'2' : b).ToArray() })
        {
            await blobs.WriteAsync(AuditCheckpoints.BlobId(6), bad);
            var v = await nodeA.VerifyAsync();
            Assert.False(v.Ok);
            Assert.Contains("checkpoint 6", v.Reason, StringComparison.Ordinal);
        }

        await blobs.WriteAsync(AuditCheckpoints.BlobId(6), good);
        Assert.True((await nodeA.VerifyAsync()).Ok);

        // Cutting anchored records off the end is caught too.
        using (var c = db.Database.OpenConnection())
        {
            c.Execute(Dialect == SqlDialect.Sqlite ? "DROP TRIGGER audit_log_no_delete" : "DROP TRIGGER audit_log_no_change ON audit_log");
            c.Execute("DELETE FROM audit_log WHERE seq > 15");
        }

        var cut = await nodeA.VerifyAsync();
        Assert.False(cut.Ok);
        Assert.Contains("missing", cut.Reason, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_delivery_lease_has_one_owner_and_passes_on_only_after_it_expires()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var nodeA = ReviewDatabase.Open(t.Target);
        using var nodeB = ReviewDatabase.Open(t.Target);
        IDeliveryStore a = new DbDeliveryStore(nodeA), b = new DbDeliveryStore(nodeB);
        var d = a.Enqueue("case-1", "cybertipline", "test", "<r/>", [], DateTimeOffset.UtcNow);
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_765_000_000_000);
        var lease = TimeSpan.FromMinutes(5);

        // Many nodes racing for a free lease: exactly one wins.
        var winners = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).TryLease(d.Id, "node-" + i.ToString(CultureInfo.InvariantCulture), now, lease))));
        Assert.Single(winners, w => w);
        var owner = "node-" + Array.IndexOf(winners, true).ToString(CultureInfo.InvariantCulture);

        Assert.True(a.TryLease(d.Id, owner, now.AddMinutes(4), lease)); // renewed by its owner
        Assert.False(b.TryLease(d.Id, "other", now.AddMinutes(8), lease)); // still live after the renewal
        b.ReleaseLease(d.Id, "other"); // not the owner's: no effect
        Assert.False(b.TryLease(d.Id, "other", now.AddMinutes(8), lease));
        Assert.True(b.TryLease(d.Id, "other", now.AddMinutes(9), lease)); // the owner died: taken over at expiry
        Assert.False(a.TryLease(d.Id, owner, now.AddMinutes(9).AddSeconds(1), lease)); // and the old owner cannot renew
        b.ReleaseLease(d.Id, "other");
        Assert.True(a.TryLease(d.Id, owner, now.AddMinutes(9).AddSeconds(2), lease)); // released: free at once

        // The lease does not move the version: the outbox's optimistic writes are unaffected.
        Assert.Equal(d.Version, a.Find(d.Id)!.Version);
    }
}
