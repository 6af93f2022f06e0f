using System.Globalization;
using FsCheck;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;

namespace Warden.Storage.Tests.SignalLog;

/// <summary>
/// Retroactive search equals a brute-force scan of the whole log: every (entry, upload) pair with the best
/// variant's distance within the entry's threshold and the upload matched before the entry went live, and
/// nothing else; on random and clustered data, over several partitions, from fresh and snapshotted indexes.
/// </summary>
public sealed class RetroactiveSearchTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Property(MaxTest = 25)]
    public void Equals_brute_force_on_random_and_clustered_logs(int seed, bool clustered, byte daysRaw)
    {
        var rng = new Random(seed);
        var days = 1 + (daysRaw % 3);
        Check(rng, uploads: rng.Next(1, 100), entries: rng.Next(1, 30), days, clustered, radiusMax: 64);
    }

    [Fact]
    public void Equals_brute_force_where_partitions_are_large_enough_for_multi_index_segments()
    {
        // Over 4,096 variants a partition's index seals multi-index segments (the tail alone is a scan).
        Check(new Random(17), uploads: 1500, entries: 200, days: 2, clustered: true, radiusMax: 40);
    }

    private static void Check(Random rng, int uploads, int entries, int days, bool clustered, int radiusMax)
    {
        using var dir = new TempDir();
        var clock = new ManualClock(Start);
        using var db = WardenDatabase.Open(Path.Combine(dir.Path, "w.db"));
        var log = new Storage.SignalLog(db, Path.Combine(dir.Path, "snap"), time: clock);
        var centres = Enumerable.Range(0, Math.Max(1, uploads / 10)).Select(_ => Hashes.Random(rng)).ToArray();
        PdqHash Next() => clustered ? Hashes.Flip(centres[rng.Next(centres.Length)], rng, rng.Next(0, 48)) : Hashes.Random(rng);

        var rows = new List<(int Day, long Id, PdqHash[] All, long Seq)>();
        for (var d = 0; d < days; d++)
        {
            clock.Now = Start.AddDays(d);
            for (var i = 0; i < uploads; i++)
            {
                var variants = Enumerable.Range(0, rng.Next(2) == 0 ? 1 : 8).Select(_ => Next()).ToArray();
                var trimmed = rng.Next(4) == 0 ? new[] { Next() } : null;
                var seq = rng.Next(0, 100);
                var (day, id) = log.Append(new LoggedSignals(variants, 80, trimmed, [("sha256", i.ToString("x64", CultureInfo.InvariantCulture))]), new UploadRecord("u" + i, "c" + i, null, clock.Now, "api", seq));
                rows.Add((day, id, [.. variants, .. trimmed ?? []], seq));
            }
        }

        var news = Enumerable.Range(0, entries).Select(e =>
        {
            // Half the entries are near a logged upload, so hits exist even on random data.
            var h = rng.Next(2) == 0 && rows.Count > 0 ? Hashes.Flip(rows[rng.Next(rows.Count)].All[0], rng, rng.Next(0, 40)) : Next();
            return new NewEntry(e + 1, 1, "pdq", h.ToString(), rng.Next(0, radiusMax + 1), rng.Next(0, 100));
        }).ToList();

        var expected = new HashSet<(long, int, long, int)>();
        foreach (var e in news)
        {
            var q = PdqHash.Parse(e.Signal);
            foreach (var r in rows)
            {
                var best = r.All.Min(h => h.DistanceTo(q));
                if (best <= e.Threshold && r.Seq < e.Seq)
                {
                    expected.Add((e.EntryId, r.Day, r.Id, best));
                }
            }
        }

        clock.Now = Start.AddDays(days); // every partition written is now closed: its index is snapshotted
        using (var search = new RetroactiveSearch(log))
        {
            Assert.Equal(expected, search.Search(news).Select(h => (h.Entry.EntryId, h.Day, h.LogId, h.Distance)).ToHashSet());
        }

        // A new process loads the snapshots (memory-mapped) and must find exactly the same.
        using (var again = new RetroactiveSearch(log))
        {
            Assert.Equal(expected, again.Search(news).Select(h => (h.Entry.EntryId, h.Day, h.LogId, h.Distance)).ToHashSet());
        }
    }
}

/// <summary>A temporary folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("warden-log-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
