using System.Collections.Concurrent;
using Warden.Core.Banks;

namespace Warden.Storage.Tests;

public sealed class SqliteChangeFeedTests : ChangeFeedTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;
}

public sealed class PostgresChangeFeedTests : ChangeFeedTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>
/// The change feed a live index tails: every write shows up after the high-water mark, paging never splits or
/// skips, and under many concurrent writers a tailer ends with exactly the database's state.
/// </summary>
public abstract class ChangeFeedTests
{
    protected abstract SqlDialect Dialect { get; }

    private static BankEntryRecord Md5(int i, string? ext = null) => new("md5", $"{i:x32}", new Dictionary<string, string>(), ExternalId: ext);

    [SkippableFact]
    public async Task Every_kind_of_write_appears_in_the_feed_once_in_its_latest_state()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(target.Target);
        var start = store.ChangeSequence();
        Assert.Equal(start, store.ChangesSince(start).HighWater);
        Assert.Empty(store.ChangesSince(start).Entries);

        var bank = store.CreateBank("feed");
        store.Import(bank.Id, [Md5(1), Md5(2), Md5(3)], "a");
        var afterImport = store.ChangesSince(start);
        Assert.Equal(["feed"], afterImport.Banks.Select(b => b.Name));
        Assert.Equal([Md5(1).Signal, Md5(2).Signal, Md5(3).Signal], afterImport.Entries.Select(e => e.Signal));
        Assert.All(afterImport.Entries, e => Assert.True(e.Live));
        Assert.Equal(store.ChangeSequence(), afterImport.HighWater);
        Assert.False(afterImport.HasMore);
        var ids = afterImport.Entries.ToDictionary(e => e.Signal, e => e.Id);

        // Re-importing the same records is no change at all.
        store.Import(bank.Id, [Md5(1), Md5(2), Md5(3)], "a");
        Assert.Equal(afterImport.HighWater, store.ChangeSequence());

        var mark = afterImport.HighWater;
        Assert.True(store.SetEntryEnabled(ids[Md5(1).Signal], false));
        Assert.False(store.SetEntryEnabled(ids[Md5(1).Signal], false));
        Assert.True(store.DeleteEntry(ids[Md5(2).Signal]));
        store.UpdateBank("feed", pdqThreshold: 12, kind: BankKind.AllowList);
        var changes = store.ChangesSince(mark);
        Assert.Equal([(ids[Md5(1).Signal], false, false), (ids[Md5(2).Signal], true, true)], changes.Entries.Select(e => (e.Id, e.Enabled, e.Deleted)));
        Assert.All(changes.Entries, e => Assert.False(e.Live));
        var changedBank = Assert.Single(changes.Banks);
        Assert.Equal((12, BankKind.AllowList), (changedBank.PdqThreshold, changedBank.Kind));

        // Disabling a bank is a bank change only; its entries keep their state.
        mark = changes.HighWater;
        store.UpdateBank("feed", enabled: false);
        changes = store.ChangesSince(mark);
        Assert.False(Assert.Single(changes.Banks).Enabled);
        Assert.Empty(changes.Entries);

        // A tombstone record and a label change both move the entry forward.
        mark = changes.HighWater;
        store.Import(bank.Id, [Md5(3) with { Deleted = true }, Md5(1) with { Labels = new Dictionary<string, string> { ["category"] = "x" } }], "b");
        changes = store.ChangesSince(mark);
        Assert.Equal([(ids[Md5(3).Signal], true), (ids[Md5(1).Signal], false)], changes.Entries.Select(e => (e.Id, e.Deleted)));
        Assert.True(changes.Entries[0].Seq < changes.Entries[1].Seq);
    }

    [SkippableFact]
    public async Task The_index_snapshot_says_where_the_feed_starts()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(target.Target);
        var on = store.CreateBank("on");
        var off = store.CreateBank("off");
        store.Import(on.Id, [Md5(1), Md5(2)], "a");
        store.Import(off.Id, [Md5(3)], "a");
        store.UpdateBank("off", enabled: false);
        var two = store.ExportEntries(on.Id).Single(e => e.Signal == Md5(2).Signal).Id;
        store.SetEntryEnabled(two, false);

        var enabledOnly = new List<string>();
        var seq = store.ReadIndex(e => enabledOnly.Add(e.Signal));
        Assert.Equal([Md5(1).Signal], enabledOnly);
        Assert.Equal(store.ChangeSequence(), seq);

        var all = new List<string>();
        var banks = new List<Bank>();
        Assert.Equal(seq, store.ReadIndex(e => all.Add(e.Signal), includeDisabledBanks: true, bank: banks.Add));
        Assert.Equal([Md5(1).Signal, Md5(3).Signal], all.Order());
        Assert.Equal([("on", true), ("off", false)], banks.Select(b => (b.Name, b.Enabled)));

        Assert.Empty(store.ChangesSince(seq).Entries);
        store.UpdateBank("off", enabled: true);
        Assert.True(Assert.Single(store.ChangesSince(seq).Banks).Enabled);
    }

    [SkippableFact]
    public async Task An_import_that_fails_half_way_keeps_its_committed_batches_and_the_feed_consistent()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(target.Target);
        var bank = store.CreateBank("broken");
        var mark = store.ChangeSequence();

        // 110,000 records: whole batches up to 100,000 on either database (20,000 / 50,000 per batch), then the
        // list reader fails in the middle of the next batch.
        static IEnumerable<BankEntryRecord> FailingAfter(int n)
        {
            for (var i = 0; i < n; i++)
            {
                yield return Md5(i);
            }

            throw new InvalidDataException("the list file is truncated");
        }

        Assert.Throws<InvalidDataException>(() => store.Import(bank.Id, FailingAfter(110_000), "a"));
        var kept = store.CountEntries()[bank.Id];
        Assert.Equal(100_000, kept);

        // The rolled-back batch's numbers are reused by the next writer; the feed shows each row once.
        store.Import(bank.Id, [Md5(1_000_000)], "b");
        var seen = new HashSet<long>();
        ChangeBatch page;
        do
        {
            page = store.ChangesSince(mark, 25_000);
            Assert.All(page.Entries, e => Assert.True(seen.Add(e.Id)));
            mark = page.HighWater;
        }
        while (page.HasMore);
        Assert.Equal(kept + 1, seen.Count);
        Assert.Equal(store.ChangeSequence(), mark);
    }

    [SkippableFact]
    public async Task A_slow_import_source_does_not_block_other_writers()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(target.Target);
        var bank = store.CreateBank("slow");
        using var otherWriterDone = new ManualResetEventSlim();

        // An upload that stalls half-way through its first batch until another writer got through (or 20 s).
        IEnumerable<BankEntryRecord> Stalling()
        {
            for (var i = 0; i < 10; i++)
            {
                yield return Md5(i);
            }

            otherWriterDone.Wait(TimeSpan.FromSeconds(20));
            yield return Md5(10);
        }

        var import = Task.Run(() => store.Import(bank.Id, Stalling(), "upload"));
        var writer = Task.Run(() =>
        {
            Thread.Sleep(200); // let the import start reading
            store.CreateBank("meanwhile");
            otherWriterDone.Set();
        });
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await writer;
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(8), $"a bank write waited {sw.Elapsed} behind a stalled import");
        Assert.Equal(11, (await import).Added);
    }

    [SkippableFact]
    public async Task Pages_follow_each_other_without_gaps_or_split_changes()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(target.Target);
        var bank = store.CreateBank("paged");
        var from = store.ChangeSequence();
        store.Import(bank.Id, Enumerable.Range(0, 1000).Select(i => Md5(i, $"rec-{i / 10}-md5")), "a");

        // Each tombstone deletes ten entries ("rec-50-md5", ...) under one change number; pages must not split it.
        store.Import(bank.Id, [new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: "rec-50", Deleted: true)], "b");
        store.Import(bank.Id, [new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: "rec-5", Deleted: true)], "b");

        var seen = new Dictionary<long, EntryChange>();
        var pages = 0;
        var mark = from;
        ChangeBatch page;
        do
        {
            page = store.ChangesSince(mark, limit: 7);
            Assert.All(page.Entries, e => Assert.True(e.Seq > mark && e.Seq <= page.HighWater));
            foreach (var e in page.Entries)
            {
                Assert.True(seen.TryAdd(e.Id, e), "an entry appeared twice although it changed once since");
            }

            mark = page.HighWater;
            pages++;
        }
        while (page.HasMore);

        Assert.Equal(1000, seen.Count);
        Assert.Equal(20, seen.Values.Count(e => e.Deleted));
        Assert.Equal(store.ChangeSequence(), mark);
        Assert.InRange(pages, 1000 / 10, 1000 / 7 + 2);
    }

    [SkippableFact]
    public async Task A_tailer_beside_many_concurrent_writers_misses_nothing()
    {
        await using var target = await TestDatabases.CreateAsync(Dialect);
        using var store = BankStore.Open(target.Target);
        var banks = Enumerable.Range(0, 4).Select(i => store.CreateBank($"bank{i}")).ToArray();
        using var snapshotStore = BankStore.Open(target.Target);
        var index = new Dictionary<long, EntryChange>();
        var startSeq = snapshotStore.ReadIndex(e => index[e.Id] = new EntryChange(e.Id, e.BankId, e.SignalType, e.Signal, true, false, 0));

        const int Writers = 8;
        const int RoundsPerWriter = 25;
        var written = new ConcurrentBag<long>();
        using var done = new CancellationTokenSource();

        // The tailer: its own store (own connections), polling as fast as it can while the writers run.
        var observed = new Dictionary<(long Id, long Seq), bool>();
        var tailer = Task.Run(async () =>
        {
            using var tail = BankStore.Open(target.Target);
            var mark = startSeq;
            var last = false;
            while (true)
            {
                var page = tail.ChangesSince(mark, limit: 50);
                Assert.True(page.HighWater >= mark, "the high-water mark went back");
                foreach (var e in page.Entries)
                {
                    Assert.True(e.Seq > mark && e.Seq <= page.HighWater);
                    index[e.Id] = e;
                    observed[(e.Id, e.Seq)] = true;
                }

                mark = page.HighWater;
                if (page.HasMore)
                {
                    continue;
                }

                if (last)
                {
                    return mark;
                }

                last = done.IsCancellationRequested; // one more full pass after the writers are finished
                await Task.Delay(1);
            }
        });

        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            using var own = BankStore.Open(target.Target);
            var rng = new Random(w);
            for (var round = 0; round < RoundsPerWriter; round++)
            {
                var bank = banks[rng.Next(banks.Length)];
                var first = ((w * RoundsPerWriter) + round) * 10;
                own.Import(bank.Id, Enumerable.Range(first, 1 + rng.Next(10)).Select(i => Md5(i)), $"w{w}");
                var mine = own.ExportEntries(bank.Id).Where(e => e.Source == $"w{w}").Select(e => e.Id).ToList();
                switch (rng.Next(4))
                {
                    case 0:
                        own.DeleteEntry(mine[rng.Next(mine.Count)]);
                        break;
                    case 1:
                        own.SetEntryEnabled(mine[rng.Next(mine.Count)], rng.Next(2) == 0);
                        break;
                    case 2:
                        own.UpdateBank(bank.Name, pdqThreshold: rng.Next(0, 64));
                        break;
                }

                written.Add(round);
            }
        })).ToList();
        try
        {
            await Task.WhenAll(writers);
        }
        finally
        {
            await done.CancelAsync(); // the tailer stops even when a writer failed
        }

        var final = await tailer;

        Assert.Equal(Writers * RoundsPerWriter, written.Count);
        Assert.Equal(store.ChangeSequence(), final);

        // Every row's latest change was seen by the tailer, and its view equals the database.
        var truth = store.ChangesSince(0, int.MaxValue).Entries;
        Assert.NotEmpty(truth);
        Assert.All(truth, e => Assert.True(observed.ContainsKey((e.Id, e.Seq)), $"change {e.Seq} of entry {e.Id} was skipped"));
        Assert.Equal(
            truth.Where(e => e.Live).Select(e => e.Id).Order(),
            index.Values.Where(e => e.Live).Select(e => e.Id).Order());
        Assert.Equal(
            store.EnabledEntries().Select(e => e.Id).Order(),
            index.Values.Where(e => e.Live).Select(e => e.Id).Order());
    }
}
