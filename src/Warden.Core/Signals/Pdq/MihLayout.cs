using System.Runtime.CompilerServices;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Matching;

/// <summary>
/// One multi-index table: the substring of bits [<see cref="Start"/>, Start + <see cref="Width"/>) of the hash.
/// The top <see cref="PrefixBits"/> bits of the substring address a directory of runs; the remaining
/// <see cref="LowBits"/> (0..8) are kept beside each posting and filtered with SIMD inside a run.
/// </summary>
internal readonly record struct MihTable(int Start, int Width, int PrefixBits)
{
    public int LowBits => Width - PrefixBits;

    public uint LowMask => (1u << LowBits) - 1;

    /// <summary>Extracts the substring (at most 32 bits) from the hash.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Key(in PdqHash h) => Extract(h, Start, Width);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Extract(in PdqHash h, int start, int width)
    {
        ref var w = ref Unsafe.As<PdqHash, ulong>(ref Unsafe.AsRef(in h));
        var word = start >> 6;
        var shift = start & 63;
        var v = Unsafe.Add(ref w, word) >> shift;
        if (shift + width > 64)
        {
            v |= Unsafe.Add(ref w, word + 1) << (64 - shift);
        }

        return (uint)(v & ((1UL << width) - 1));
    }
}

/// <summary>
/// Chooses the multi-index layout for a segment of N hashes and estimates query costs.
/// </summary>
/// <remarks>
/// Norouzi et al.: with m substrings, optimal width is about log2(N) so that each bucket holds about one entry.
/// Here m = clamp(round(256 / log2 N), 8, 16) (widths 16..32 bits); the directory addresses the top
/// floor(log2 N) bits (about one posting per entry; a ushort each, see PdqSegment) and any last 0..8 bits ride
/// inside a 4-byte posting; where it addresses the whole key, postings are 3-byte slots.
/// </remarks>
internal static class MihLayout
{
    /// <summary>Segments smaller than this are scanned, never indexed (measured crossover, docs/performance.md).</summary>
    public const int MinIndexed = 2048;

    /// <summary>
    /// Postings keep the low 24 bits of the slot (above the low key bits); the directory also splits each run by
    /// the slot's 25th bit (<see cref="SlotHighBits"/>), so a segment holds at most 2^25 hashes.
    /// </summary>
    public const int MaxSegment = 1 << 25;

    /// <summary>Slot bits a posting stores; any above are implied by the directory entry (see PdqSegment).</summary>
    public const int PostingSlotBits = 24;

    public const int MaxTables = 32;

    // Per-query cost model in nanoseconds (one core, dev machine). The three probe costs were first set from
    // micro-measurements and then scaled x4 so the predicted crossover matches `bench index sweep` at 1M
    // (multi-index loses from r ~ 44-48); at 20k this errs towards the scan, which costs microseconds there.
    private const double CostScan = 1.1;       // brute force, per hash
    private const double CostRun = 48.0;       // a directory lookup + first cache miss of a run
    private const double CostPosting = 0.6;    // SIMD low-bit filter, per posting
    private const double CostCandidate = 36.0; // random fetch of a 32-byte hash + verification

    public static MihTable[] For(int count, int tablesOverride = 0)
    {
        if (count < MinIndexed && tablesOverride == 0)
        {
            return [];
        }

        // Above 2^24 the tables stay those of 2^24 (11 x 23 bits): a 2^25 segment then costs half the runs of two
        // 2^24 ones for the same candidates, and 3-byte postings plus a 1-bit directory split keep its memory.
        var lg = Math.Min(Math.Log2(Math.Max(count, 2)), 24);
        var m = tablesOverride > 0 ? tablesOverride : Math.Clamp((int)Math.Round(256 / lg), 8, 16);
        m = Math.Clamp(m, 8, MaxTables);
        // Equal widths of floor(256 / m) bits; the 256 mod m leftover bits are covered by no table. That is still
        // exact (a hash within r of the query is within r on the covered bits, so the pigeonhole split holds) and
        // keeps every directory at 2^width entries instead of doubling it for the wider tables.
        var width = 256 / m;
        var prefix = Math.Min(width, Math.Max(PrefixFor(count), width - 8));
        var tables = new MihTable[m];
        for (var j = 0; j < m; j++)
        {
            tables[j] = new MihTable(j * width, width, prefix);
        }

        return tables;
    }

    /// <summary>Slot bits above <see cref="PostingSlotBits"/> (0 or 1): the directory addresses them beside the key.</summary>
    public static int SlotHighBits(int count) => count > 1 << PostingSlotBits ? 1 : 0;

    /// <summary>
    /// Directory bits: floor(log2 N), about one posting per directory entry. Measured at 10M (huge pages): p = 19
    /// (runs of ~16 filtered with SIMD) 5.5k q/s, 21 → 7.5k, 22 → 8.5k, 23 → 10.7k; short runs avoid the
    /// unpredictable branches of filtering, and a directory entry and a posting are then the same two cache misses.
    /// </summary>
    private static int PrefixFor(int count) =>
        Math.Max(1, (int)Math.Floor(Math.Log2(Math.Max(count, 2))));

    /// <summary>
    /// Per-table search radius from the generalised pigeonhole principle: with r = q*m + a, a hash within r has a
    /// substring among the last a + 1 tables within q, or among the first m - a - 1 within q - 1
    /// (if none did, the distance would be at least (a+1)(q+1) + (m-a-1)q = r + 1). -1 means skip the table.
    /// </summary>
    public static int RadiusFor(int table, int tableCount, int radius)
    {
        var q = radius / tableCount;
        var a = radius % tableCount;
        return table >= tableCount - (a + 1) ? q : q - 1;
    }

    /// <summary>Estimated nanoseconds for one multi-index query at <paramref name="radius"/> on uniform data.</summary>
    public static double MihCost(ReadOnlySpan<MihTable> tables, int count, int radius)
    {
        double total = 0;
        for (var j = 0; j < tables.Length; j++)
        {
            var rj = RadiusFor(j, tables.Length, radius);
            if (rj < 0)
            {
                continue;
            }

            var t = tables[j];
            var runs = BinomialSum(t.PrefixBits, rj);
            var perRun = count / Math.Pow(2, t.PrefixBits);
            var candidates = count * BinomialSum(t.Width, rj) / Math.Pow(2, t.Width);
            total += (runs * CostRun) + (runs * perRun * CostPosting) + (candidates * CostCandidate);
        }

        return total;
    }

    /// <summary>Estimated nanoseconds for a linear scan.</summary>
    public static double ScanCost(int count) => count * CostScan;

    /// <summary>Sum of C(n, k) for k = 0..r.</summary>
    public static double BinomialSum(int n, int r)
    {
        double c = 1, sum = 0;
        for (var k = 0; k <= Math.Min(n, r); k++)
        {
            sum += c;
            c = c * (n - k) / (k + 1);
        }

        return sum;
    }
}
