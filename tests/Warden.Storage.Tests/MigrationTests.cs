using Dapper;
using Microsoft.Data.Sqlite;

namespace Warden.Storage.Tests;

public sealed class SqliteMigrationTests : MigrationTests
{
    private static int BanksVersion => Schema.Banks.Migrations.Count;

    protected override SqlDialect Dialect => SqlDialect.Sqlite;

    [Fact]
    public void A_new_database_fences_off_the_first_release()
    {
        using var db = TestDatabases.CreateSqlite();
        using (BankStore.Open(db.Target))
        {
        }

        using var check = new SqliteConnection($"Data Source={db.Target};Pooling=false");
        check.Open();
        Assert.Equal(1_000_000, check.ExecuteScalar<long>("SELECT MAX(version) FROM schema_version"));
    }

    [Fact]
    public void A_database_from_before_migration_sets_is_upgraded_in_place()
    {
        using var db = TestDatabases.CreateSqlite();

        // The schema and version table exactly as the first release wrote them, with a bank and an entry.
        using (var c = new SqliteConnection($"Data Source={db.Target};Pooling=false"))
        {
            c.Open();
            c.Execute("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);");
            c.Execute(Schema.Banks.Migrations[0].Sqlite);
            c.Execute("INSERT INTO banks(name, kind, enabled, created_at, updated_at) VALUES ('old', 0, 1, 0, 0)");
            c.Execute("INSERT INTO bank_entries(bank_id, signal_type, signal, updated_at, seq) VALUES (1, 'md5', 'd41d8cd98f00b204e9800998ecf8427e', 0, 1)");
            c.Execute("UPDATE counters SET value = 1 WHERE name = 'entry_seq'");
        }

        using (var store = BankStore.Open(db.Target))
        {
            Assert.Equal("old", store.RequireBank("old").Name);
            var changes = store.ChangesSince(0);
            Assert.Equal(["old"], changes.Banks.Select(b => b.Name));
            Assert.Single(changes.Entries);
            Assert.Equal(2, changes.HighWater);
            Assert.NotEqual(0, store.DatabaseId());
        }

        using var check = new SqliteConnection($"Data Source={db.Target};Pooling=false");
        check.Open();
        Assert.Equal(BanksVersion, check.ExecuteScalar<long>("SELECT version FROM schema_versions WHERE name = 'banks'"));
        // What the first release checks on start: a version above its own makes it refuse the file cleanly.
        Assert.Equal(1_000_000, check.ExecuteScalar<long>("SELECT MAX(version) FROM schema_version"));
        Assert.Equal(1, check.ExecuteScalar<long>("SELECT COUNT(*) FROM schema_version"));
    }
}

public sealed class PostgresMigrationTests : MigrationTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>The migration runner on both backends: idempotent, one run under concurrent starts, refuses newer schemas.</summary>
public abstract class MigrationTests
{
    protected abstract SqlDialect Dialect { get; }

    // The bank set's latest version (the assertions below mean "migrated to the latest").
    private static int BanksVersion => Schema.Banks.Migrations.Count;

    [SkippableFact]
    public async Task Pdq_thresholds_move_into_the_per_type_map()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var db = WardenDatabase.Open(target.Target);

        // A database as version 2 left it: the PDQ-only column.
        Assert.Equal(2, db.Migrate(new MigrationSet("banks", [.. Schema.Banks.Migrations.Take(2)])));
        using (var c = db.OpenConnection())
        {
            c.Execute("INSERT INTO banks(name, kind, enabled, pdq_threshold, created_at, updated_at, seq) VALUES ('strict', 0, 1, 12, 0, 0, 1), ('plain', 0, 1, NULL, 0, 0, 2)");
        }

        using var store = BankStore.Open(db);
        Assert.Equal(12, store.RequireBank("strict").PdqThreshold);
        Assert.Equal(new Dictionary<string, int> { ["pdq"] = 12 }, store.RequireBank("strict").Thresholds);
        Assert.Null(store.RequireBank("plain").PdqThreshold);
        Assert.Empty(store.RequireBank("plain").Thresholds!);
        Assert.Equal(BanksVersion, Count(db, "SELECT version FROM schema_versions WHERE name = 'banks'"));
    }

    // Not idempotent on purpose: run twice, step 1 fails (table exists) and step 2 would add a second row.
    private static readonly MigrationSet Probe = new("probe",
    [
        new Migration(1, "CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL)", "CREATE TABLE probe (id BIGINT PRIMARY KEY, note TEXT NOT NULL)"),
        new Migration(2, "INSERT INTO probe(id, note) VALUES (1, 'applied once')"),
    ]);

    private static long Count(WardenDatabase db, string sql)
    {
        using var c = db.OpenConnection();
        return c.ExecuteScalar<long>(sql);
    }

    [SkippableFact]
    public async Task Migrating_again_changes_nothing_and_sets_are_versioned_apart()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var db = WardenDatabase.Open(target.Target);
        Assert.Equal(Dialect, db.Dialect);
        Assert.Equal(2, db.Migrate(Probe));
        Assert.Equal(0, db.Migrate(Probe));
        Assert.Equal(BanksVersion, db.Migrate(BankStore.MigrationSet));
        Assert.Equal(0, db.Migrate(BankStore.MigrationSet));

        // A later release adds step 3: only that one runs.
        var grown = new MigrationSet("probe", [.. Probe.Migrations, new Migration(3, "INSERT INTO probe(id, note) VALUES (3, 'step three')")]);
        Assert.Equal(1, db.Migrate(grown));
        Assert.Equal(2, Count(db, "SELECT COUNT(*) FROM probe"));
        Assert.Equal(3, Count(db, "SELECT version FROM schema_versions WHERE name = 'probe'"));
        Assert.Equal(BanksVersion, Count(db, "SELECT version FROM schema_versions WHERE name = 'banks'"));
    }

    [SkippableFact]
    public async Task Concurrent_starts_apply_each_migration_once()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);

        // Separate database objects, as separate processes would have: no shared pool or lock in this process.
        using var start = new ManualResetEventSlim();
        var runs = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            using var db = WardenDatabase.Open(target.Target);
            start.Wait();
            var applied = db.Migrate(Probe);
            using var store = BankStore.Open(db);
            return applied;
        })).ToList();
        start.Set();
        var applied = await Task.WhenAll(runs);

        Assert.Equal(2, applied.Sum());
        using var check = WardenDatabase.Open(target.Target);
        Assert.Equal(1, Count(check, "SELECT COUNT(*) FROM probe"));
        using var store = BankStore.Open(check);
        Assert.Empty(store.ListBanks());
        Assert.Equal(BanksVersion, Count(check, "SELECT version FROM schema_versions WHERE name = 'banks'"));
    }

    [SkippableFact]
    public async Task A_schema_newer_than_the_program_is_refused()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var db = WardenDatabase.Open(target.Target);
        db.Migrate(Probe);
        using (var c = db.OpenConnection())
        {
            c.Execute("UPDATE schema_versions SET version = 9 WHERE name = 'probe'");
        }

        var ex = Assert.Throws<StorageException>(() => db.Migrate(Probe));
        Assert.Equal(StorageError.Incompatible, ex.Error);
        Assert.Contains("schema version 9 of 'probe'", ex.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_failing_migration_leaves_the_set_at_its_old_version()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var db = WardenDatabase.Open(target.Target);
        db.Migrate(Probe);
        var broken = new MigrationSet("probe", [.. Probe.Migrations, new Migration(3, "INSERT INTO probe(id, note) VALUES (3, 'ok')"), new Migration(4, "INSERT INTO no_such_table VALUES (1)")]);
        var ex = Assert.Throws<StorageException>(() => db.Migrate(broken));
        Assert.Contains("no_such_table", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, Count(db, "SELECT version FROM schema_versions WHERE name = 'probe'"));
        Assert.Equal(1, Count(db, "SELECT COUNT(*) FROM probe"));
    }

    [Fact]
    public void Misnumbered_sets_are_a_programming_error()
    {
        using var target = TestDatabases.CreateSqlite();
        using var db = WardenDatabase.Open(target.Target);
        Assert.Throws<ArgumentException>(() => db.Migrate(new MigrationSet("bad", [new Migration(2, "SELECT 1")])));
    }
}
