using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Banks;

namespace Warden.Storage.Tests;

/// <summary>
/// PostgreSQL's batched import (upserts staged by COPY and applied per run) must leave the same bank as SQLite's
/// row-by-row import, record for record, for any order of upserts and tombstones and any transaction size: the class
/// of inputs an exchange sync writes (an NCMEC entry's replacement tombstone before its fingerprints, deletions,
/// updates, the same entry twice in a batch), now in transactions as large as an exchange commit.
/// </summary>
public sealed class ImportOrderEquivalenceTests
{
    /// <summary>One record: an upsert (type, signal index, external id, label) or a tombstone by external id or by signal.</summary>
    public sealed record Op(int Kind, string Type, int Signal, string External, int Label);

    private static readonly string[] Externals = ["", "1-a", "1-a-md5", "1-a-sha1", "1-ab-md5", "1-b-md5", "1-a-md5-x", "2-a-md5", "1"];

    private static Gen<Op[]> Ops()
    {
        var op =
            from kind in Gen.Frequency((5, Gen.Constant(0)), (3, Gen.Constant(1)), (1, Gen.Constant(2)))
            from type in Gen.Elements("md5", "sha1")
            from signal in Gen.Choose(0, 3)
            from external in Gen.Elements(Externals)
            from label in Gen.Choose(0, 2)
            select new Op(kind, type, signal, external, label);
        return op.ArrayOf().Resize(40);
    }

    private static BankEntryRecord Record(Op o)
    {
        var signal = new string((char)('a' + o.Signal), o.Type == "md5" ? 32 : 40);
        return o.Kind switch
        {
            0 => new BankEntryRecord(o.Type, signal, new Dictionary<string, string> { ["v"] = o.Label.ToString(System.Globalization.CultureInfo.InvariantCulture) }, ExternalId: o.External),
            1 => new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: o.External.Length > 0 ? o.External : "1-a", Deleted: true),
            _ => new BankEntryRecord(o.Type, signal, new Dictionary<string, string>(), Deleted: true),
        };
    }

    private static List<string> State(BankStore store, long bankId) =>
        [.. store.ExportEntries(bankId, includeDeleted: true)
            .Select(e => $"{e.SignalType}:{e.Signal[0]}:{e.ExternalId}:{(e.Deleted ? "deleted" : "live")}:{string.Join(",", e.Labels.Select(l => l.Key + "=" + l.Value))}")
            .Order(StringComparer.Ordinal)];

    [SkippableFact]
    public async Task Postgres_batched_import_equals_the_row_by_row_import_for_any_order_of_upserts_and_tombstones()
    {
        await using var pg = await TestDatabases.CreateAsync(SqlDialect.Postgres);
        using var sqlite = TestDatabases.CreateSqlite();
        using var pgStore = BankStore.Open(pg.Target);
        using var liteStore = BankStore.Open(sqlite.Target);
        var n = 0;
        var prop = Prop.ForAll(Ops().ArrayOf().Resize(3).ToArbitrary(), Gen.Choose(1, 9).ToArbitrary(), (imports, transaction) =>
        {
            // Several imports (passes), each in transactions of 1..9 records; tombstones may hit rows of earlier passes.
            var name = "eq" + (++n).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var a = pgStore.CreateBank(name);
            var b = liteStore.CreateBank(name);
            long pgDeleted = 0, liteDeleted = 0;
            foreach (var ops in imports)
            {
                var records = ops.Select(Record).ToList();
                pgDeleted += pgStore.Import(a.Id, records, "test", transactionRecords: transaction).Deleted;
                liteDeleted += liteStore.Import(b.Id, records, "test", transactionRecords: transaction).Deleted;
            }

            return State(pgStore, a.Id).SequenceEqual(State(liteStore, b.Id)) && pgDeleted == liteDeleted;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(40), prop);
    }
}
