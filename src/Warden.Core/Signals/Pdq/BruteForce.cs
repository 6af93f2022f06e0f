using System.Runtime.CompilerServices;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Matching;

/// <summary>
/// Exact linear scan: the oracle for <see cref="PdqIndex"/> and the path it takes for small segments and large
/// radii, where touching every hash once beats multi-index probing.
/// </summary>
public static class BruteForce
{
    /// <summary>
    /// Appends to <paramref name="results"/> every (id, distance) with <c>distance(hashes[i], q) &lt;= radius</c>, in
    /// storage order, with <see cref="PdqMatch.Variant"/> 0.
    /// </summary>
    public static void Search(ReadOnlySpan<PdqHash> hashes, ReadOnlySpan<long> ids, in PdqHash q, int radius, List<PdqMatch> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentOutOfRangeException.ThrowIfNegative(radius);
        if (hashes.Length != ids.Length)
        {
            throw new ArgumentException($"{hashes.Length} hashes but {ids.Length} ids.", nameof(ids));
        }

        Scan(hashes, ids, q, radius, 0, results, skipTombstones: false);
    }

    /// <summary>The scan. <paramref name="skipTombstones"/> drops entries whose id is <see cref="PdqIndex.Tombstone"/>.</summary>
    internal static void Scan(ReadOnlySpan<PdqHash> hashes, ReadOnlySpan<long> ids, in PdqHash q, int radius, int variant, List<PdqMatch> results, bool skipTombstones)
    {
        // A plain loop: the JIT keeps the query in registers and the 4 popcounts of consecutive hashes overlap.
        // Measured on the dev machine, 2- and 4-way manual unrolling were 10-15% slower than this.
        var query = q; // a local copy: `in` aliasing would reload the query every iteration
        for (var i = 0; i < hashes.Length; i++)
        {
            var d = hashes[i].DistanceTo(query);
            if (d <= radius)
            {
                Report(ids, i, d, variant, results, skipTombstones);
            }
        }
    }

    /// <summary>
    /// The scan for several queries at once (the dihedral variants): each stored hash is loaded once and compared
    /// with every query, reporting (id, distance, query index) for each query within the radius. Same matches as
    /// one <see cref="Scan"/> per query, in another order.
    /// </summary>
    internal static void ScanMany(ReadOnlySpan<PdqHash> hashes, ReadOnlySpan<long> ids, ReadOnlySpan<PdqHash> queries, int radius, List<PdqMatch> results, bool skipTombstones)
    {
        if (queries.Length == 1)
        {
            Scan(hashes, ids, queries[0], radius, 0, results, skipTombstones);
            return;
        }

        // Queries as 4 words each in one local array: the inner loop reads them from L1, not through `in` refs.
        var n = queries.Length;
        Span<ulong> q = n <= 16 ? stackalloc ulong[4 * 16] : new ulong[4 * n];
        for (var v = 0; v < n; v++)
        {
            q[4 * v] = queries[v].W0;
            q[(4 * v) + 1] = queries[v].W1;
            q[(4 * v) + 2] = queries[v].W2;
            q[(4 * v) + 3] = queries[v].W3;
        }

        q = q[..(4 * n)];
        for (var i = 0; i < hashes.Length; i++)
        {
            var h = hashes[i];
            for (var v = 0; v < q.Length; v += 4)
            {
                var d = System.Numerics.BitOperations.PopCount(h.W0 ^ q[v]) + System.Numerics.BitOperations.PopCount(h.W1 ^ q[v + 1]) +
                        System.Numerics.BitOperations.PopCount(h.W2 ^ q[v + 2]) + System.Numerics.BitOperations.PopCount(h.W3 ^ q[v + 3]);
                if (d <= radius)
                {
                    Report(ids, i, d, v >> 2, results, skipTombstones);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Report(ReadOnlySpan<long> ids, int i, int d, int variant, List<PdqMatch> results, bool skipTombstones)
    {
        var id = ids[i];
        if (!skipTombstones || id != PdqIndex.Tombstone)
        {
            results.Add(new PdqMatch(id, d, variant));
        }
    }
}
