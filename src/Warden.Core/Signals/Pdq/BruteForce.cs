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
