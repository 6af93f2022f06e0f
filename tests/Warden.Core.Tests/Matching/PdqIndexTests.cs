using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;
using static Warden.Core.Tests.Matching.MatchingData;

namespace Warden.Core.Tests.Matching;

public sealed class PdqIndexTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-index-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<(long, int)> Query(PdqIndex index, PdqHash q, int r)
    {
        var got = new List<PdqMatch>();
        index.Search(q, r, got);
        return Canon(got);
    }

    [Fact]
    public void Empty_index_finds_nothing_and_rejects_bad_arguments()
    {
        using var index = new PdqIndex();
        Assert.Equal(0, index.Count);
        Assert.Empty(Query(index, default, 256));
        Assert.False(index.Remove(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(default, -1, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Add(default, PdqIndex.Tombstone));
        Assert.Throws<ArgumentException>(() => index.AddRange(new PdqHash[2], new long[1]));
    }

    [Fact]
    public void Adds_are_visible_and_removed_ids_are_never_returned()
    {
        var rng = new Random(7);
        var (hashes, ids) = Uniform(50_000, rng);
        using var index = new PdqIndex();
        index.AddRange(hashes, ids);
        var extra = Flip(hashes[123], 3, rng);
        index.Add(extra, 42);
        Assert.Equal(50_001, index.Count);
        Assert.Contains((42L, 0), Query(index, extra, 0));
        Assert.Contains((ids[123], 0), Query(index, hashes[123], 0));

        Assert.True(index.Remove(ids[123]));
        Assert.True(index.Remove(42));
        Assert.False(index.Remove(42));
        Assert.Equal(49_999, index.Count);
        Assert.DoesNotContain(Query(index, hashes[123], 64), m => m.Item1 == ids[123] || m.Item1 == 42);
    }

    [Fact]
    public void Snapshot_round_trips_and_loaded_index_accepts_changes_without_touching_the_file()
    {
        var rng = new Random(11);
        var (hashes, ids, centres) = Clustered(30_000, 1000, rng);
        using var index = new PdqIndex();
        index.AddRange(hashes, ids);
        for (var i = 0; i < 100; i++)
        {
            index.Add(Flip(centres[i], 2, rng), 1_000_000 + i); // some in the tail
        }

        index.Remove(ids[5]);
        var path = Path.Combine(_dir, "a.pdqx");
        index.Save(path);
        var bytes = File.ReadAllBytes(path);

        using var loaded = PdqIndex.Load(path);
        Assert.Equal(index.Count, loaded.Count);
        foreach (var q in Queries(40, centres, rng))
        {
            Assert.Equal(Query(index, q, 31), Query(loaded, q, 31));
        }

        loaded.Remove(ids[7]);
        loaded.Add(centres[0], 77);
        Assert.Contains((77L, 0), Query(loaded, centres[0], 0));
        Assert.DoesNotContain(Query(loaded, hashes[7], 0), m => m.Item1 == ids[7]);
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void Heavy_duplicates_use_the_directory_overflow_and_stay_exact_after_a_reload()
    {
        // 600 copies of each of 20 hashes: their directory blocks span more than 255 postings in every table.
        var rng = new Random(13);
        var (uniform, _) = Uniform(20_000, rng);
        var hashes = new List<PdqHash>(uniform);
        for (var c = 0; c < 20; c++)
        {
            hashes.AddRange(Enumerable.Repeat(uniform[c], 600));
        }

        var ids = Enumerable.Range(1, hashes.Count).Select(i => (long)i).ToArray();
        using var index = new PdqIndex();
        index.AddRange(hashes.ToArray(), ids);
        index.Remove(ids[3]);
        var path = Path.Combine(_dir, "dup.pdqx");
        index.Save(path);
        using var loaded = PdqIndex.Load(path);
        foreach (var q in new[] { uniform[0], Flip(uniform[1], 20, rng), Flip(uniform[2], 31, rng), uniform[3] })
        {
            List<(long, int)> expected = [.. hashes.Select((h, i) => (ids[i], q.DistanceTo(h))).Where(m => m.Item2 <= 31 && m.Item1 != ids[3]).Order()];
            Assert.Equal(expected, Query(index, q, 31));
            Assert.Equal(expected, Query(loaded, q, 31));
        }
    }

    [Fact]
    public void Truncated_or_corrupt_snapshots_throw_InvalidDataException()
    {
        var rng = new Random(3);
        var (hashes, ids) = Uniform(10_000, rng);
        using (var index = new PdqIndex())
        {
            index.AddRange(hashes, ids);
            index.Save(Path.Combine(_dir, "good.pdqx"));
        }

        var good = File.ReadAllBytes(Path.Combine(_dir, "good.pdqx"));
        var path = Path.Combine(_dir, "bad.pdqx");
        foreach (var len in new[] { 0, 1, 63, 64, 100, 300, good.Length / 2, good.Length - 1 })
        {
            File.WriteAllBytes(path, good[..len]);
            Assert.Throws<InvalidDataException>(() => PdqIndex.Load(path));
        }

        File.WriteAllBytes(path, [.. good, 0, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Throws<InvalidDataException>(() => PdqIndex.Load(path));

        for (var k = 0; k < 200; k++)
        {
            var bad = (byte[])good.Clone();
            bad[rng.Next(bad.Length)] ^= (byte)(1 << rng.Next(8));
            File.WriteAllBytes(path, bad);
            Assert.Throws<InvalidDataException>(() => PdqIndex.Load(path));
        }
    }

    [Fact]
    public void Structurally_invalid_snapshot_with_a_valid_checksum_is_rejected()
    {
        var rng = new Random(5);
        var (hashes, ids) = Uniform(5_000, rng);
        var path = Path.Combine(_dir, "s.pdqx");
        using (var index = new PdqIndex())
        {
            index.AddRange(hashes, ids);
            index.Save(path);
        }

        // Point the first posting of the last table outside the segment, then fix the checksum.
        var bytes = File.ReadAllBytes(path);
        var blobLength = BitConverter.ToInt64(bytes, 64 + 16);
        var postingsStart = 64 + blobLength - (((5_000 * 4) + 63) & ~63);
        BitConverter.GetBytes(uint.MaxValue).CopyTo(bytes, postingsStart);
        var sum = default(Checksum);
        sum.Add(bytes.AsSpan(64));
        BitConverter.GetBytes(sum.Value).CopyTo(bytes, 32);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => PdqIndex.Load(path));
        Assert.Contains("outside", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Many_readers_and_a_writer_run_concurrently()
    {
        var rng = new Random(9);
        var (hashes, ids, centres) = Clustered(20_000, 500, rng);
        using var index = new PdqIndex();
        index.AddRange(hashes, ids);
        var writer = Task.Run(() =>
        {
            var r = new Random(1);
            for (var i = 0; i < 20_000; i++)
            {
                index.Add(Flip(centres[r.Next(centres.Length)], r.Next(20), r), 10_000_000 + i);
                if (i % 3 == 0)
                {
                    index.Remove(r.Next(1, 20_001));
                }
            }
        });
        var readers = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            var r = new Random(t);
            var got = new List<PdqMatch>();
            while (!writer.IsCompleted)
            {
                got.Clear();
                index.Search(centres[r.Next(centres.Length)], 31, got);
                Assert.All(got, m => Assert.InRange(m.Distance, 0, 31));
            }
        })).ToArray();
        await Task.WhenAll([writer, .. readers]);
        var live = index.Count;
        Assert.InRange(live, 20_000, 40_000);
    }
}
