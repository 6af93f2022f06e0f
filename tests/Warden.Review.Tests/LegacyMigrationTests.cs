using System.Globalization;
using Dapper;
using Warden.Review.Audit;
using Warden.Review.Reporting;
using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Review.Tests;

/// <summary>Moving a legacy review file into a SQLite database.</summary>
public sealed class SqliteLegacyMigrationTests : LegacyMigrationTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;
}

/// <summary>Moving a legacy review file into PostgreSQL.</summary>
public sealed class PostgresLegacyMigrationTests : LegacyMigrationTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>
/// <see cref="LegacyReviewFile.Migrate"/> on files written with the old schema: everything moves with its ids,
/// the chain verifies and continues, and a broken chain, a non-review file or a target that already holds
/// review state are refused with nothing changed.
/// </summary>
public abstract class LegacyMigrationTests : IDisposable
{
    // PBKDF2 at 600 000 iterations costs a third of a second: hash once for every legacy file.
    private static readonly Lazy<string> AliceHash = new(() => PasswordHashing.Hash("a long enough passphrase"));

    private readonly TempDir _dir = new();

    protected abstract SqlDialect Dialect { get; }

    public void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A legacy file with a real audit chain of <paramref name="records"/> records and some of everything else.</summary>
    private string Legacy(int records, bool withV2 = true, int seed = 1)
    {
        var path = Path.Combine(_dir.Path, $"legacy-{seed}.review.db");
        LegacyFixture.Create(path, withV2);
        var chain = new MemoryAuditStore();
        var log = new AuditLog(chain);
        var random = new Random(seed);
        for (var i = 0; i < records; i++)
        {
            // Hostile-looking but benign text: quotes, separators, non-ASCII, newlines.
            log.Append(new AuditEntry($"user:u{random.Next(5)}", i % 2 == 0 ? "evidence.view" : "cluster.decide", $"case:{random.Next(9)}", new Dictionary<string, string> { ["note"] = $"'; DROP TABLE x; -- \"ü\"\n{i}" }));
        }

        using var c = LegacyFixture.Open(path);
        foreach (var r in chain.Records)
        {
            LegacyFixture.Exec(c, "INSERT INTO audit_log(seq, at_ms, actor, action, subject, details, prev_hash, hash) VALUES (@s, @a, @ac, @act, @sub, @d, @p, @h)",
                ("s", r.Seq), ("a", r.At.ToUnixTimeMilliseconds()), ("ac", r.Actor), ("act", r.Action), ("sub", r.Subject), ("d", AuditLog.DetailsJson(r.Details)), ("p", r.PrevHash), ("h", r.Hash));
        }

        LegacyFixture.Exec(c, "INSERT INTO console_users(username, role, password_hash, created_at, blur) VALUES ('alice', 'reviewer', @h, 1, 1)", ("h", AliceHash.Value));
        LegacyFixture.Exec(c, "INSERT INTO console_users(username, role, password_hash, created_at, disabled) VALUES ('bob', 'admin', 'x', 2, 1)");
        LegacyFixture.Exec(c, "INSERT INTO console_sessions VALUES ('tok', 1, 'csrf', 1, @e)", ("e", DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds()));
        LegacyFixture.Exec(c, "INSERT INTO console_exposure VALUES (1, '2026-12-07', 7)");
        LegacyFixture.Exec(c, "INSERT INTO console_display VALUES (1, 35, 512)");
        for (var i = 0; i < 3 + (seed % 4); i++)
        {
            LegacyFixture.Exec(c, "INSERT INTO case_events(kind, case_id, cluster_id, body, at_ms) VALUES ('submission', @c, 'k', '{}', 5)", ("c", "case-" + i.ToString(CultureInfo.InvariantCulture)));
        }

        LegacyFixture.Exec(c, "INSERT INTO evidence_items VALUES ('ev-1', 'case-0', 'k1', 10, 1, NULL, 99, 1, 'court order', NULL)");
        LegacyFixture.Exec(c, "INSERT INTO evidence_views(item_id, actor, actor_kind, at_ms, what, purpose) VALUES ('ev-1', 'alice', 0, 3, 'revealed', 'review')");
        LegacyFixture.Exec(c, "INSERT INTO report_deliveries(case_id, destination, environment, status, document, created_at, next_attempt_at) VALUES ('case-0', 'cybertipline', 'test', 3, '<report/>', 1, 1)");
        LegacyFixture.Exec(c, "INSERT INTO report_delivery_files VALUES (1, 0, 'ev-1', 'a.jpg', '{}', 'md5', 'f1', 1)");
        LegacyFixture.Exec(c, "INSERT INTO report_receipts(delivery_id, at_ms, generation, step, outcome, http_status) VALUES (1, 2, 0, 'finish', 'ok', 200)");
        return path;
    }

    [SkippableFact]
    public async Task Everything_moves_and_the_chain_verifies_and_continues()
    {
        foreach (var (records, withV2, seed) in new[] { (0, true, 1), (1, true, 2), (37, false, 3), (250, true, 4) })
        {
            await using var t = await TestDatabases.CreateAsync(Dialect);
            using var db = ReviewDatabase.Open(t.Target);
            var legacy = Legacy(records, withV2, seed);
            var result = LegacyReviewFile.Migrate(legacy, db);

            Assert.True(result.Audit.Ok, result.Audit.Reason);
            Assert.Equal(records, result.Audit.RecordsChecked);
            Assert.Equal(records, result.Rows["audit_log"]);
            Assert.Equal(3 + (seed % 4), result.Rows["case_events"]);
            Assert.False(File.Exists(legacy));
            Assert.True(File.Exists(legacy + LegacyReviewFile.MovedSuffix)); // kept, never deleted

            var store = new ReviewStore(db);
            var (alice, hash) = store.FindUser("alice")!.Value;
            Assert.True(PasswordHashing.Verify("a long enough passphrase", hash));
            Assert.Equal((true, (bool?)null), (alice.Blur!.Value, alice.Greyscale));
            Assert.True(store.FindUser("bob")!.Value.User.Disabled);
            Assert.NotNull(store.FindSession("tok", DateTimeOffset.UtcNow)); // logged-in reviewers stay logged in
            Assert.Equal(7, store.Exposure(alice.Id, "2026-12-07"));
            Assert.Equal((35, (int?)512), store.Display(alice.Id));

            // New rows continue after the moved ids (PostgreSQL's identities are moved on too).
            var next = store.AppendEvent("decision", "case-0", "k", "{}");
            Assert.Equal(4 + (seed % 4), next);
            Assert.True(store.CreateUser("carol", "reviewer", "x"));
            var delivery = new DbDeliveryStore(db);
            Assert.Equal(DeliveryStatus.Finished, delivery.FindByCase("case-0", "cybertipline")!.Status);
            Assert.Equal(0, delivery.Find(1)!.Restarts); // the column a v1 file lacked gets its default
            Assert.Equal(2, delivery.Enqueue("case-1", "cybertipline", "test", "<r/>", [], DateTimeOffset.UtcNow).Id);
            Assert.Single(delivery.Receipts(1));

            var log = new AuditLog(new DbAuditStore(db));
            Assert.Equal(records + 1, log.Append(new AuditEntry("cli", "review.migrate", "db")).Seq);
            Assert.True(log.Verify().Ok);
        }
    }

    [SkippableFact]
    public async Task A_broken_legacy_chain_is_refused_and_nothing_moves()
    {
        // Each kind of break, at a different record each time: an edit, a deletion, a re-hashed tail is
        // still caught because the copy is compared with the legacy chain verified from genesis.
        var edits = new[]
        {
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = @s",
            "DELETE FROM audit_log WHERE seq = @s",
            "UPDATE audit_log SET details = '{\"note\":\"x\"}' WHERE seq = @s",
            "UPDATE audit_log SET prev_hash = zeroblob(32) WHERE seq = @s",
        };
        var random = new Random(7);
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        for (var i = 0; i < 8; i++)
        {
            var legacy = Legacy(30, seed: 10 + i);
            using (var c = LegacyFixture.Open(legacy))
            {
                LegacyFixture.Exec(c, "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;");
                LegacyFixture.Exec(c, edits[i % edits.Length], ("s", (long)random.Next(1, 30)));
            }

            var ex = Assert.Throws<StorageException>(() => LegacyReviewFile.Migrate(legacy, db));
            Assert.Contains("does not verify", ex.Message, StringComparison.Ordinal);
            Assert.True(File.Exists(legacy));
            using var target = db.Database.OpenConnection();
            Assert.Equal(0, target.ExecuteScalar<long>("SELECT COUNT(*) FROM audit_log"));
            Assert.Equal(0, target.ExecuteScalar<long>("SELECT COUNT(*) FROM console_users"));
        }
    }

    [SkippableFact]
    public async Task A_target_with_review_state_or_a_file_that_is_not_a_review_file_is_refused()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        new AuditLog(new DbAuditStore(db)).Append(new AuditEntry("cli", "key.create", "key:1"));
        var legacy = Legacy(5);
        var ex = Assert.Throws<StorageException>(() => LegacyReviewFile.Migrate(legacy, db));
        Assert.Contains("already holds review state", ex.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(legacy));
        Assert.Single(new AuditLog(new DbAuditStore(db)).Query());

        foreach (var (name, bytes) in new[] { ("empty.db", Array.Empty<byte>()), ("notes.db", "just notes\n"u8.ToArray()), ("half.db", File.ReadAllBytes(legacy)[..1024]) })
        {
            var path = Path.Combine(_dir.Path, name);
            File.WriteAllBytes(path, bytes);
            Assert.Throws<StorageException>(() => LegacyReviewFile.Migrate(path, db));
            Assert.True(File.Exists(path));
        }

        Assert.Throws<StorageException>(() => LegacyReviewFile.Migrate(Path.Combine(_dir.Path, "missing.db"), db));
    }

    /// <summary>A chain built in memory, to write into the legacy file.</summary>
    private sealed class MemoryAuditStore : IAuditStore
    {
        public List<AuditRecord> Records { get; } = [];

        public AuditRecord Append(Func<long, byte[]?, AuditRecord> build)
        {
            var r = build(Records.Count, Records.Count == 0 ? null : Records[^1].Hash);
            Records.Add(r);
            return r;
        }

        public IEnumerable<AuditRecord> Query(AuditFilter filter) => Records;
    }
}
