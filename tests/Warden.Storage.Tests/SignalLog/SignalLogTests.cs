using System.Data.Common;
using Warden.Core.Banks;

namespace Warden.Storage.Tests.SignalLog;

/// <summary>The signal log on both databases: partitions by day, retention by dropping them, retroactive passes.</summary>
public sealed class SignalLogTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 10, 8, 0, 0, TimeSpan.Zero);

    public static TheoryData<SqlDialect> Dialects => TestDatabases.Dialects;

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task Retention_drops_whole_old_partitions_and_their_snapshots(SqlDialect dialect)
    {
        await using var tdb = await TestDatabases.CreateAsync(dialect);
        using var dir = new TempDir();
        using var db = WardenDatabase.Open(tdb.Target);
        var clock = new ManualClock(Start);
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), retentionDays: 30, time: clock);
        var rng = new Random(3);
        var offsets = new[] { 0, 1, 15, 29, 31, 40 }; // days after Start at which uploads are logged
        foreach (var d in offsets)
        {
            clock.Now = Start.AddDays(d);
            for (var i = 0; i < 3; i++)
            {
                log.Append(new LoggedSignals([Hashes.Random(rng)], 90, null, [("md5", new string('a', 31) + i)]), new UploadRecord("u", "c", null, clock.Now, "api", 0));
            }
        }

        // Snapshot every partition (each is a closed day by the time of the search).
        clock.Now = Start.AddDays(41);
        using (var search = new RetroactiveSearch(log))
        {
            search.Search([new NewEntry(1, 1, "pdq", Hashes.Random(rng).ToString(), 31, long.MaxValue)]);
        }

        var all = log.Partitions();
        Assert.Equal(offsets.Select(d => Storage.SignalLog.DayOf(Start.AddDays(d))), all);
        Assert.All(all.Take(all.Count - 1), d => Assert.Single(RetroactiveSearch.Snapshots(log.SnapshotDirectory, d)));

        // 41 days on with 30 days' retention: the partitions of day 0, 1 and 1+... older than day 11 go.
        var dropped = log.DropExpired();
        var cutoff = Storage.SignalLog.DayOf(clock.Now.AddDays(-30));
        Assert.Equal(all.Where(d => d < cutoff), dropped);
        Assert.Equal(all.Where(d => d >= cutoff), log.Partitions());
        foreach (var d in dropped)
        {
            Assert.Empty(RetroactiveSearch.Snapshots(log.SnapshotDirectory, d));
            using var c = db.OpenConnection();
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT COUNT(*) FROM signal_log_{d}";
            Assert.ThrowsAny<DbException>(() => cmd.ExecuteScalar()); // the table itself is gone
        }

        foreach (var d in log.Partitions())
        {
            Assert.Equal(3, log.Count(d));
        }

        Assert.Empty(log.DropExpired()); // nothing more to drop the same day
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task Retroactive_pass_records_each_hit_once_and_only_for_uploads_matched_before_the_entry(SqlDialect dialect)
    {
        await using var tdb = await TestDatabases.CreateAsync(dialect);
        using var dir = new TempDir();
        using var store = BankStore.Open(tdb.Target);
        var clock = new ManualClock(Start);
        var log = new Storage.SignalLog(store.Database, Path.Combine(dir.Path, "snap"), time: clock);
        var rng = new Random(5);
        var bank = store.CreateBank("new-list");
        var allow = store.CreateBank("allow", BankKind.AllowList);
        var target = Hashes.Random(rng);
        var before = store.ChangeSequence();

        // Three earlier uploads: one near the future entry, one exact by SHA-256, one unrelated.
        var near = log.Append(new LoggedSignals([Hashes.Random(rng), Hashes.Flip(target, rng, 12)], 90, null, [("sha256", new string('1', 64))]), new UploadRecord("alice", "img-1", "https://x.test/1", Start.AddDays(-3), "api", before));
        var bySha = log.Append(new LoggedSignals(null, 0, null, [("sha256", new string('2', 64))]), new UploadRecord("bob", "img-2", null, Start.AddDays(-2), "api", before));
        log.Append(new LoggedSignals([Hashes.Random(rng)], 90, null, [("sha256", new string('3', 64))]), new UploadRecord("carol", "img-3", null, Start, "api", before));

        using var search = new RetroactiveSearch(log);
        Assert.Empty(RetroactivePass.Run(store, log, search)); // nothing new in the banks that matches

        store.Import(bank.Id, [new BankEntryRecord("pdq", target.ToString(), new Dictionary<string, string>()), new BankEntryRecord("sha256", new string('2', 64), new Dictionary<string, string>())], "test");
        store.Import(allow.Id, [new BankEntryRecord("sha256", new string('3', 64), new Dictionary<string, string>())], "test");

        // An upload logged after the import was matched live against the new entries: not retroactive.
        log.Append(new LoggedSignals([target], 90, null, [("sha256", new string('2', 64))]), new UploadRecord("dave", "img-4", null, Start, "api", store.ChangeSequence()));

        var first = RetroactivePass.Run(store, log, search);
        Assert.Equal(
            new[] { ("alice", "pdq", near.Day, near.Id), ("bob", "sha256", bySha.Day, bySha.Id) }.OrderBy(x => x.Item1),
            first.Select(m => (m.Uploader!, m.SignalType, m.Day, m.LogId)).OrderBy(x => x.Item1));
        Assert.Equal(Start.AddDays(-3), first.Single(m => m.Uploader == "alice").UploadedAt); // the original upload time
        Assert.InRange(first.Single(m => m.Uploader == "alice").Distance, 0, 12);

        // Running again (or from the start: a second node) records nothing more.
        Assert.Empty(RetroactivePass.Run(store, log, search));
        log.SetCheckpoint(RetroactivePass.Checkpoint, 0);
        using (var other = new RetroactiveSearch(log))
        {
            Assert.Empty(RetroactivePass.Run(store, log, other));
        }

        Assert.Equal(2, log.Matches("retroactive").Count);

        // Claims hand each match out once.
        var claimed = log.ClaimUnacted(10);
        Assert.Equal(2, claimed.Count);
        Assert.Empty(log.ClaimUnacted(10));
        Assert.All(log.Matches(), m => Assert.True(m.Acted));
    }
}
