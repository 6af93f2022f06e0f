using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Banks.Formats;

namespace Warden.Storage.Tests;

/// <summary>NCMEC XML imports replace an updated entry, on SQLite.</summary>
public sealed class SqliteNcmecReplaceTests : NcmecReplaceTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;

    /// <summary>
    /// Any sequence of imports of entry versions (updates with other fingerprint sets, deletions, the same entry
    /// twice in one page) leaves live exactly the last version of each entry.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property Live_set_is_the_last_version_of_each_entry() => Prop.ForAll(Imports().ToArbitrary(), imports =>
    {
        using var db = TestDatabases.CreateSqlite();
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("ncmec");
        var last = new Dictionary<(int Member, int Id), EntryVersion>();
        foreach (var page in imports)
        {
            Import(store, bank.Id, page);
            foreach (var v in page)
            {
                last[(v.Member, v.Id)] = v;
            }
        }

        var expected = last.Values.Where(v => !v.Deleted).SelectMany(Expected).Order().ToList();
        Assert.Equal(expected, Live(store, bank.Id));
    });

    private static Gen<EntryVersion[][]> Imports()
    {
        var fingerprint = Gen.Elements("md5", "sha1", "pdq").SelectMany(t => Gen.Choose(0, 3).Select(i => (t, i)));
        var version =
            from member in Gen.Choose(1, 2)
            from id in Gen.Choose(1, 3)
            from deleted in Gen.Frequency((1, Gen.Constant(true)), (4, Gen.Constant(false)))
            from classification in Gen.Elements<string?>(null, "A1", "B2")
            from fps in fingerprint.NonEmptyListOf()
            select new EntryVersion(member, id, deleted, classification, fps.DistinctBy(f => f.t).ToArray());
        return version.ArrayOf().Resize(6).ArrayOf().Resize(4);
    }
}

/// <summary>NCMEC XML imports replace an updated entry, on PostgreSQL.</summary>
public sealed class PostgresNcmecReplaceTests : NcmecReplaceTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>
/// NCMEC re-sends an updated entry whole: <c>warden bank import --format ncmec</c> and the API import (both
/// <see cref="BankFileReader"/> into <see cref="BankStore.Import"/>) must leave only the update's fingerprints.
/// </summary>
public abstract class NcmecReplaceTests
{
    protected abstract SqlDialect Dialect { get; }

    /// <summary>One version of an entry: its fingerprint types and a value index into a small pool, or a deletion.</summary>
    public sealed record EntryVersion(int Member, int Id, bool Deleted, string? Classification, (string Type, int Value)[] Fingerprints);

    [SkippableTheory]
    [InlineData("md5,sha1,pdq", "pdq")]
    [InlineData("md5,sha1,pdq", "md5,sha1")]
    [InlineData("md5", "sha1")]
    [InlineData("md5,pdq", "md5,sha1,pdq")]
    [InlineData("sha1", "sha1")]
    public async Task Reimported_entry_leaves_exactly_its_new_fingerprints(string before, string after)
    {
        await using var db = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("ncmec");
        var other = new EntryVersion(2, 1, false, null, [("md5", 3), ("pdq", 3)]);
        var first = new EntryVersion(1, 1, false, "A1", Parse(before, 0));
        Import(store, bank.Id, [first, other]);
        Assert.Equal(Expected(first).Concat(Expected(other)).Order(), Live(store, bank.Id));

        // The update carries other values too, so a stale fingerprint cannot hide behind an equal new one.
        var second = new EntryVersion(1, 1, false, "B2", Parse(after, 1));
        Import(store, bank.Id, [second]);
        Assert.Equal(Expected(second).Concat(Expected(other)).Order(), Live(store, bank.Id));

        // The same update again changes nothing; a deletion then leaves only the other entry.
        Import(store, bank.Id, [second]);
        Assert.Equal(Expected(second).Concat(Expected(other)).Order(), Live(store, bank.Id));
        Import(store, bank.Id, [second with { Deleted = true }]);
        Assert.Equal(Expected(other).Order(), Live(store, bank.Id));
    }

    private static (string, int)[] Parse(string types, int value) => [.. types.Split(',').Select(t => (t, value))];

    protected static void Import(BankStore store, long bankId, IReadOnlyList<EntryVersion> page)
    {
        var report = new ImportReport();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(Xml(page)));
        var records = BankFileReader.Read(stream, new ImportOptions(BankFileFormat.NcmecXml, SourceName: "page.xml"), report).ToList();
        store.Import(bankId, records, "ncmec-file");
        Assert.Empty(report.Errors);
        Assert.Equal(page.Count(v => !v.Deleted), report.ReplacementTombstones);
    }

    protected static List<string> Live(BankStore store, long bankId) =>
        [.. store.ExportEntries(bankId).Select(e => Key(e.ExternalId!, e.SignalType, e.Signal, e.Labels.GetValueOrDefault("classification"))).Order()];

    protected static IEnumerable<string> Expected(EntryVersion v) =>
        v.Fingerprints.Select(f => Key($"{9000 + v.Member}-img-{v.Id}-{f.Type}", f.Type, Value(f.Type, f.Value), v.Classification));

    private static string Key(string externalId, string type, string signal, string? classification) =>
        $"{externalId} {type} {signal} {classification}";

    /// <summary>A distinct lowercase hex value per (type, index), of the type's length.</summary>
    private static string Value(string type, int index)
    {
        var length = type switch { "md5" => 32, "sha1" => 40, _ => 64 };
        var seed = $"{index + 1:x}{type.Length:x}9c3e57a1b";
        var sb = new StringBuilder(length);
        while (sb.Length < length)
        {
            sb.Append(seed);
        }

        return sb.ToString(0, length);
    }

    private static string Xml(IEnumerable<EntryVersion> page)
    {
        var sb = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\">\n<images>\n");
        foreach (var v in page)
        {
            var member = string.Create(CultureInfo.InvariantCulture, $"<member id=\"{9000 + v.Member}\">Member {v.Member}</member><timestamp>2025-01-10T18:00:00Z</timestamp><id>img-{v.Id}</id>");
            if (v.Deleted)
            {
                sb.Append("<deletedImage>").Append(member).Append("</deletedImage>\n");
                continue;
            }

            sb.Append("<image>").Append(member);
            if (v.Classification is not null)
            {
                sb.Append("<classification>").Append(v.Classification).Append("</classification>");
            }

            sb.Append("<fingerprints>");
            foreach (var (type, value) in v.Fingerprints)
            {
                sb.Append('<').Append(type).Append('>').Append(Value(type, value)).Append("</").Append(type).Append('>');
            }

            sb.Append("</fingerprints></image>\n");
        }

        return sb.Append("</images>\n</queryResult>\n").ToString();
    }
}
