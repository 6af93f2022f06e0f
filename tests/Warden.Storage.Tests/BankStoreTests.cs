using Warden.Core.Banks;

namespace Warden.Storage.Tests;

/// <summary>The bank store on SQLite (a file in a temp folder).</summary>
public sealed class SqliteBankStoreTests : BankStoreTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;

    [Fact]
    public void A_file_that_is_not_a_database_is_refused_clearly()
    {
        using var db = TestDatabases.CreateSqlite();
        File.WriteAllText(db.Target, new string('x', 4096));
        var ex = Assert.Throws<StorageException>(() => BankStore.Open(db.Target));
        Assert.Equal(StorageError.Incompatible, ex.Error);
        Assert.Contains("not a Warden database", ex.Message, StringComparison.Ordinal);
    }
}

/// <summary>The same suite on PostgreSQL (a fresh database per test on the server of WARDEN_TEST_POSTGRES).</summary>
public sealed class PostgresBankStoreTests : BankStoreTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>The bank store suite, run on both backends by the two classes above.</summary>
public abstract class BankStoreTests
{
    protected abstract SqlDialect Dialect { get; }

    protected Task<TestDatabase> NewDatabaseAsync() => TestDatabases.CreateAsync(Dialect);

    private static BankEntryRecord Pdq(int i, string? classification = null) => new(
        "pdq",
        $"{i:x16}{i:x16}{i:x16}{i:x16}",
        classification is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["classification"] = classification });

    [SkippableFact]
    public async Task Banks_are_created_listed_and_switched()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("ncmec_industry", BankKind.BlockList, pdqThreshold: 20, description: "test");
        store.CreateBank("benign-valve", BankKind.AllowList);
        Assert.Equal(["benign-valve", "ncmec_industry"], store.ListBanks().Select(b => b.Name));
        Assert.Equal(bank, store.GetBank(bank.Id));
        Assert.Null(store.GetBank(bank.Id + 100));
        Assert.Equal((BankKind.BlockList, true, 20), (bank.Kind, bank.Enabled, bank.PdqThreshold));

        var disabled = store.UpdateBank("ncmec_industry", enabled: false);
        Assert.False(disabled.Enabled);
        Assert.Equal(20, disabled.PdqThreshold);
        Assert.Null(store.UpdateBank("ncmec_industry", clearThreshold: true).PdqThreshold);
    }

    [SkippableTheory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("-leading")]
    [InlineData("a/b")]
    public async Task Bad_bank_names_are_refused(string name)
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        Assert.Equal(StorageError.Invalid, Assert.Throws<StorageException>(() => store.CreateBank(name)).Error);
    }

    [SkippableFact]
    public async Task Duplicate_and_missing_banks_are_clear_errors()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        store.CreateBank("a");
        Assert.Equal(StorageError.Conflict, Assert.Throws<StorageException>(() => store.CreateBank("a")).Error);
        var missing = Assert.Throws<StorageException>(() => store.RequireBank("b"));
        Assert.Equal(StorageError.NotFound, missing.Error);
        Assert.Contains("Banks: a", missing.Message, StringComparison.Ordinal);
        Assert.Equal(StorageError.Invalid, Assert.Throws<StorageException>(() => store.CreateBank("c", pdqThreshold: 300)).Error);
    }

    [SkippableFact]
    public async Task Reimporting_the_same_records_adds_nothing_and_label_changes_update()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("list");
        var records = Enumerable.Range(1, 50_000).Select(i => Pdq(i, "A1")).ToList();

        var first = store.Import(bank.Id, records, "list.csv");
        Assert.Equal((50_000L, 50_000L, 0L, 0L), (first.Processed, first.Added, first.Updated, first.Unchanged));

        var again = store.Import(bank.Id, records, "list.csv");
        Assert.Equal((50_000L, 0L, 0L, 50_000L), (again.Processed, again.Added, again.Updated, again.Unchanged));

        var changed = store.Import(bank.Id, [Pdq(7, "B2"), Pdq(50_001)], "more.csv");
        Assert.Equal((1L, 1L, 0L), (changed.Added, changed.Updated, changed.Unchanged));
        Assert.Equal(50_001, store.CountEntries()[bank.Id]);
        var seven = store.ExportEntries(bank.Id).Single(e => e.Signal == Pdq(7).Signal);
        Assert.Equal("B2", seven.Labels["classification"]);
    }

    [SkippableFact]
    public async Task Tombstones_remove_entries_from_matching_but_keep_them()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("feed");
        store.Import(bank.Id, [
            Pdq(1) with { ExternalId = "9002-img-1-pdq" },
            Pdq(2) with { ExternalId = "9002-img-2-pdq" },
            Pdq(3),
        ], "feed");
        var result = store.Import(bank.Id, [
            new BankEntryRecord("pdq", string.Empty, new Dictionary<string, string>(), ExternalId: "9002-img-1", Deleted: true),
            Pdq(3) with { Deleted = true },
        ], "feed");
        Assert.Equal(2, result.Deleted);
        Assert.Equal([Pdq(2).Signal], store.EnabledEntries().Select(e => e.Signal));
        Assert.Equal(3, store.ExportEntries(bank.Id, includeDeleted: true).Count());

        // A re-import of a deleted signal brings it back.
        Assert.Equal(1, store.Import(bank.Id, [Pdq(3)], "feed").Updated);
        Assert.Equal(2, store.EnabledEntries().Count());
    }

    [SkippableFact]
    public async Task Disabled_banks_are_not_indexed_and_data_survives_reopening()
    {
        await using var db = await NewDatabaseAsync();
        using (var store = BankStore.Open(db.Target))
        {
            var a = store.CreateBank("a");
            var b = store.CreateBank("b");
            store.Import(a.Id, [Pdq(1)], null);
            store.Import(b.Id, [Pdq(2)], null);
            store.UpdateBank("b", enabled: false);
        }

        using var reopened = BankStore.Open(db.Target);
        Assert.Equal([Pdq(1).Signal], reopened.EnabledEntries().Select(e => e.Signal));
        var entry = reopened.EnabledEntries().Single();
        Assert.Equal(Pdq(1).Signal, reopened.GetEntries([entry.Id])[entry.Id].Signal);
        Assert.True(reopened.DeleteEntry(entry.Id));
        Assert.False(reopened.DeleteEntry(entry.Id));
        Assert.Empty(reopened.EnabledEntries());
    }

    [SkippableFact]
    public async Task Two_sources_sharing_a_fingerprint_stay_two_entries()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("ncmec");
        var a = Pdq(5, "A2") with { ExternalId = "9002-vid-0001-md5" };
        var b = Pdq(5) with { ExternalId = "9004-vid-0001-md5" };
        Assert.Equal(2, store.Import(bank.Id, [a, b], "feed").Added);
        Assert.Equal(0, store.Import(bank.Id, [a, b], "feed").Added);

        var result = store.Import(bank.Id, [new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: "9004-vid-0001", Deleted: true)], "feed");
        Assert.Equal((1L, 0L, 1L), (result.Processed, result.Unchanged, result.Deleted));
        var live = store.ExportEntries(bank.Id).Single();
        Assert.Equal(("9002-vid-0001-md5", "A2"), (live.ExternalId, live.Labels["classification"]));
    }

    [SkippableFact]
    public async Task Records_repeated_in_one_import_apply_in_order()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("dups");
        var result = store.Import(bank.Id, [Pdq(1, "A1"), Pdq(1, "B1"), Pdq(2), Pdq(2), Pdq(2) with { Deleted = true }, Pdq(2, "A2"), Pdq(1, "B1")], "f");
        Assert.Equal((7L, 2L, 2L, 2L, 1L), (result.Processed, result.Added, result.Updated, result.Unchanged, result.Deleted));
        var entries = store.ExportEntries(bank.Id).ToList();
        Assert.Equal([Pdq(1).Signal, Pdq(2).Signal], entries.Select(e => e.Signal));
        Assert.Equal(["B1", "A2"], entries.Select(e => e.Labels["classification"]));
    }

    [SkippableFact]
    public async Task Text_is_stored_exactly_and_tombstones_match_ids_exactly()
    {
        await using var db = await NewDatabaseAsync();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("text");
        var labels = new Dictionary<string, string> { ["note"] = "quote \" ' 100% _x_ \\ ünïcödé 🙂" };
        store.Import(bank.Id, [
            Pdq(1) with { Labels = labels, Note = "line1\nline2", ExternalId = "A_1-pdq" },
            Pdq(2) with { ExternalId = "A%1-pdq" },
            Pdq(3) with { ExternalId = "a_1-pdq" },
            Pdq(4) with { ExternalId = "A_10-pdq" },
        ], "src");
        var one = store.ExportEntries(bank.Id).First();
        Assert.Equal((labels["note"], "line1\nline2", "A_1-pdq"), (one.Labels["note"], one.Note, one.ExternalId));

        // "A_1" deletes A_1-pdq only: not A%1-pdq (LIKE wildcards), a_1-pdq (case) or A_10-pdq (prefix).
        var result = store.Import(bank.Id, [new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: "A_1", Deleted: true)], "src");
        Assert.Equal(1, result.Deleted);
        Assert.Equal(["A%1-pdq", "a_1-pdq", "A_10-pdq"], store.ExportEntries(bank.Id).Select(e => e.ExternalId));
    }
}
