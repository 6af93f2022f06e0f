using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;

namespace Warden.Core.Tests.Matching;

/// <summary>Random and clustered hash sets, and the brute-force oracle in a comparable form.</summary>
internal static class MatchingData
{
    public static PdqHash RandomHash(Random rng) =>
        new((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63),
            (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63));

    /// <summary>Flips exactly <paramref name="bits"/> distinct random bits.</summary>
    public static PdqHash Flip(PdqHash h, int bits, Random rng)
    {
        Span<ulong> w = [h.W0, h.W1, h.W2, h.W3];
        Span<bool> done = stackalloc bool[256];
        done.Clear();
        for (var k = 0; k < bits;)
        {
            var b = rng.Next(256);
            if (!done[b])
            {
                done[b] = true;
                w[b >> 6] ^= 1UL << (b & 63);
                k++;
            }
        }

        return new PdqHash(w[0], w[1], w[2], w[3]);
    }

    public static (PdqHash[] Hashes, long[] Ids) Uniform(int n, Random rng)
    {
        var hashes = new PdqHash[n];
        var ids = new long[n];
        for (var i = 0; i < n; i++)
        {
            hashes[i] = RandomHash(rng);
            ids[i] = rng.NextInt64(-1_000_000_000_000, 1_000_000_000_000);
        }

        return (hashes, ids);
    }

    /// <summary>
    /// <paramref name="centres"/> random centres, each followed by near-duplicates at distances 0..40; some entries
    /// are exact copies of the same hash under a different id.
    /// </summary>
    public static (PdqHash[] Hashes, long[] Ids, PdqHash[] Centres) Clustered(int n, int centres, Random rng)
    {
        var c = new PdqHash[centres];
        for (var i = 0; i < centres; i++)
        {
            c[i] = RandomHash(rng);
        }

        var hashes = new PdqHash[n];
        var ids = new long[n];
        for (var i = 0; i < n; i++)
        {
            var centre = c[rng.Next(centres)];
            hashes[i] = i > 0 && rng.Next(10) == 0 ? hashes[rng.Next(i)] : Flip(centre, rng.Next(41), rng);
            ids[i] = i + 1;
        }

        return (hashes, ids, c);
    }

    /// <summary>Queries: half misses (random), half noisy copies (0..40 bits) of stored hashes or centres.</summary>
    public static PdqHash[] Queries(int n, PdqHash[] near, Random rng)
    {
        var q = new PdqHash[n];
        for (var i = 0; i < n; i++)
        {
            q[i] = near.Length == 0 || i % 2 == 0 ? RandomHash(rng) : Flip(near[rng.Next(near.Length)], rng.Next(41), rng);
        }

        return q;
    }

    public static List<(long, int)> Oracle(PdqHash[] hashes, long[] ids, PdqHash q, int radius)
    {
        var r = new List<PdqMatch>();
        BruteForce.Search(hashes, ids, q, radius, r);
        return Canon(r);
    }

    public static List<(long, int)> Canon(List<PdqMatch> matches) =>
        [.. matches.Select(m => (m.Id, m.Distance)).Order()];

    /// <summary>Saves <paramref name="index"/> to a temporary snapshot file, deleted when the result is disposed.</summary>
    public static SavedSnapshot Save(PdqIndex index, string tag)
    {
        var path = Path.Combine(Path.GetTempPath(), $"warden-{tag}-{Guid.NewGuid():N}.pdq");
        index.Save(path);
        return new SavedSnapshot(path);
    }

    /// <summary>A snapshot file of a test, deleted on dispose.</summary>
    public sealed class SavedSnapshot(string path) : IDisposable
    {
        public string Path { get; } = path;

        public void Dispose() => File.Delete(Path);
    }
}
