using Warden.Core.Banks;

namespace Warden.Storage.Tests;

/// <summary>
/// Signals far longer than a PostgreSQL btree row (a TMK+PDQF file is 351 KB of text) are stored, kept unique,
/// updated, tombstoned and found by value on both databases (banks migration 4 keys PostgreSQL's index on the MD5).
/// </summary>
public sealed class LongSignalTests
{
    public static TheoryData<SqlDialect> Dialects => TestDatabases.Dialects;

    private static readonly Dictionary<string, string> NoLabels = new(StringComparer.Ordinal);

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task Long_signals_are_stored_unique_updated_and_tombstoned(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        using var store = BankStore.Open(db.Target);
        var bank = store.CreateBank("videos");
        var rng = new Random(4242);

        // Lengths around and far past the btree limit (about 2.7 KB), the largest at TMK's size; two signals share
        // a long prefix so only their tails tell them apart.
        var signals = new List<string>();
        foreach (var length in new[] { 100, 2_600, 2_800, 9_000, 120_000, 351_132 })
        {
            signals.Add("tmk1:" + RandomText(rng, length));
        }

        var prefix = RandomText(rng, 50_000);
        signals.Add("tmk1:" + prefix + "A");
        signals.Add("tmk1:" + prefix + "B");
        var records = signals.Select((s, i) => new BankEntryRecord("tmk_pdqf", s, NoLabels, ExternalId: $"m-{i}")).ToList();

        var first = store.Import(bank.Id, records, "test");
        Assert.Equal(signals.Count, first.Added);

        // Re-importing changes nothing; a changed label updates in place; nothing is duplicated.
        var again = store.Import(bank.Id, records, "test");
        Assert.Equal((0L, 0L, (long)signals.Count), (again.Added, again.Updated, again.Unchanged));
        var labelled = new Dictionary<string, string>(StringComparer.Ordinal) { ["classification"] = "A1" };
        var update = store.Import(bank.Id, [records[^1] with { Labels = labelled }], "test");
        Assert.Equal((0L, 1L), (update.Added, update.Updated));

        var live = store.ExportEntries(bank.Id).ToList();
        Assert.Equal(signals.Count, live.Count);
        Assert.Equal(signals.Order(StringComparer.Ordinal), live.Select(e => e.Signal).Order(StringComparer.Ordinal));
        Assert.Equal("A1", live.Single(e => e.Signal == signals[^1]).Labels["classification"]);

        // Found by value, exactly (the shared-prefix pair is told apart).
        foreach (var s in signals)
        {
            Assert.Equal(s, Assert.Single(store.EntriesWithSignal("videos", "tmk_pdqf", s)).Signal);
        }

        // A tombstone by signal (no external id) and one by external id.
        var bare = "tmk1:" + RandomText(rng, 200_000);
        store.Import(bank.Id, [new BankEntryRecord("tmk_pdqf", bare, NoLabels)], "test");
        var gone = store.Import(bank.Id, [new BankEntryRecord("tmk_pdqf", bare, NoLabels, Deleted: true), records[3] with { Deleted = true }], "test");
        Assert.Equal(2, gone.Deleted);
        Assert.Empty(store.EntriesWithSignal("videos", "tmk_pdqf", bare));
        Assert.Empty(store.EntriesWithSignal("videos", "tmk_pdqf", signals[3]));
        Assert.Equal(signals.Count - 1, store.ExportEntries(bank.Id).Count());
    }

    private static string RandomText(Random rng, int length)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        return string.Create(length, rng, (span, r) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[r.Next(alphabet.Length)];
            }
        });
    }
}
