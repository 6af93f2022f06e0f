using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;
using static Warden.Core.Tests.Matching.MatchingData;

namespace Warden.Core.Tests.Matching;

/// <summary>
/// The batched variant search (all dihedral variants in one pass per segment, the tail and scanned segments read
/// once for every variant) and loaded snapshots (searched in the mapping) must answer exactly what the brute-force
/// scan answers per variant.
/// </summary>
public sealed class PdqIndexBatchedSearchTests
{
    private static readonly PdqIndex.SearchPath[] Paths = [PdqIndex.SearchPath.Auto, PdqIndex.SearchPath.MultiIndex, PdqIndex.SearchPath.Scan];

    /// <summary>Per id: the minimum distance over its live hashes and the variants, and the first variant reaching it.</summary>
    private static Dictionary<long, (int Distance, int Variant)> Expected(PdqHash[] hashes, long[] ids, HashSet<long> removed, PdqHash[] variants, int radius)
    {
        var expected = new Dictionary<long, (int Distance, int Variant)>();
        for (var v = 0; v < variants.Length; v++)
        {
            var found = new List<PdqMatch>();
            BruteForce.Search(hashes, ids, variants[v], radius, found);
            foreach (var m in found)
            {
                if (!removed.Contains(m.Id) && (!expected.TryGetValue(m.Id, out var best) || m.Distance < best.Distance))
                {
                    expected[m.Id] = (m.Distance, v);
                }
            }
        }

        return expected;
    }

    private static bool Same(PdqIndex index, PdqHash[] variants, int radius, Dictionary<long, (int Distance, int Variant)> expected)
    {
        // A match already in the list must survive: the search appends and de-duplicates only its own range.
        var got = new List<PdqMatch> { new(-7, 3, 1) };
        index.SearchDihedral(variants, radius, got);
        return got[0] == new PdqMatch(-7, 3, 1) && got.Count - 1 == expected.Count && got.Skip(1).Select(m => m.Id).Distinct().Count() == expected.Count &&
               got.Skip(1).All(m => expected.TryGetValue(m.Id, out var e) && e == (m.Distance, m.Variant));
    }

    [Property(MaxTest = 20)]
    public Property Batched_variant_search_equals_brute_force_per_variant_on_every_path_and_after_reload(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var n = rng.Next(0, 14_000);
        var (hashes, ids, centres) = Clustered(n, rng.Next(1, 300), rng);

        // Some ids hold several hashes (an id's best hash over every variant is what counts).
        for (var i = 0; i < n; i++)
        {
            if (rng.Next(8) == 0)
            {
                ids[i] = rng.Next(1, 50);
            }
        }

        var path = Paths[rng.Next(Paths.Length)];
        var tables = new[] { 0, 0, 8, 11, 13, 16 }[rng.Next(6)];
        using var index = new PdqIndex(tables, path);

        // Bulk segments, then single adds: sealed and merged segments plus a partly full tail.
        var bulk = rng.Next(0, n + 1);
        index.AddRange(hashes.AsSpan(0, bulk), ids.AsSpan(0, bulk));
        for (var i = bulk; i < n; i++)
        {
            index.Add(hashes[i], ids[i]);
        }

        var removed = ids.Where(_ => rng.Next(6) == 0).ToHashSet();
        foreach (var id in removed)
        {
            index.Remove(id);
        }

        // 1..12 variants: noisy copies of centres and stored hashes, random ones, and repeats of earlier variants.
        var variants = new PdqHash[rng.Next(1, 13)];
        for (var v = 0; v < variants.Length; v++)
        {
            variants[v] = v > 0 && rng.Next(5) == 0 ? variants[rng.Next(v)]
                : rng.Next(3) == 0 || n == 0 ? RandomHash(rng)
                : Flip(rng.Next(2) == 0 ? centres[rng.Next(centres.Length)] : hashes[rng.Next(n)], rng.Next(41), rng);
        }

        var radius = new[] { 0, 1, 8, 16, 24, 31, 31, 32, 40, 48, 64, 300 }[rng.Next(12)];
        var expected = Expected(hashes, ids, removed, variants, Math.Min(radius, PdqHash.Bits));
        var ok = Same(index, variants, radius, expected);

        using (var file = Save(index, "batched"))
        {
            // Segments searched in the mapping.
            using var mapped = PdqIndex.Load(file.Path, tables, path);
            ok &= Same(mapped, variants, radius, expected);

            // Removals after loading write tombstones into the private mapping, never the file.
            var more = ids.Where(_ => rng.Next(4) == 0).ToHashSet();
            foreach (var id in more)
            {
                mapped.Remove(id);
            }

            var after = Expected(hashes, ids, [.. removed, .. more], variants, Math.Min(radius, PdqHash.Bits));
            ok &= Same(mapped, variants, radius, after);
            using var reloaded = PdqIndex.Load(file.Path, tables, path);
            ok &= Same(reloaded, variants, radius, expected);
        }

        return ok.Label($"n={n} bulk={bulk} path={path} tables={tables} variants={variants.Length} radius={radius} expected={expected.Count}");
    }

    [Property(MaxTest = 40)]
    public Property Many_query_scan_reports_every_pair_a_scan_per_query_reports(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var n = rng.Next(0, 3000);
        var (hashes, ids, centres) = Clustered(n, rng.Next(1, 40), rng);
        var tombstoned = rng.Next(2) == 0;
        if (tombstoned)
        {
            for (var i = 0; i < n; i += rng.Next(1, 9))
            {
                ids[i] = PdqIndex.Tombstone;
            }
        }

        // Up to 20 queries: past the 16 the scan keeps on the stack.
        var queries = Queries(rng.Next(1, 21), centres, rng);
        var radius = rng.Next(0, 257);
        var got = new List<PdqMatch>();
        BruteForce.ScanMany(hashes, ids, queries, radius, got, tombstoned);
        var expected = new List<PdqMatch>();
        for (var v = 0; v < queries.Length; v++)
        {
            BruteForce.Scan(hashes, ids, queries[v], radius, v, expected, tombstoned);
        }

        var ok = Sorted(got).SequenceEqual(Sorted(expected)) && !got.Any(m => m.Id == PdqIndex.Tombstone && tombstoned);
        return ok.Label($"n={n} queries={queries.Length} radius={radius} expected={expected.Count} got={got.Count}");

        static List<PdqMatch> Sorted(List<PdqMatch> m) => [.. m.OrderBy(x => x.Id).ThenBy(x => x.Variant).ThenBy(x => x.Distance)];
    }

    [Fact]
    public void A_corrupt_snapshot_fails_closed_when_loaded()
    {
        var rng = new Random(5);
        var (hashes, ids) = Uniform(9000, rng);
        using var index = new PdqIndex();
        index.AddRange(hashes, ids);
        using var file = Save(index, "batched");
        var bytes = File.ReadAllBytes(file.Path);
        for (var i = 0; i < 24; i++)
        {
            var damaged = (byte[])bytes.Clone();
            var at = 64 + rng.Next(damaged.Length - 64);
            damaged[at] ^= (byte)(1 << rng.Next(8));
            File.WriteAllBytes(file.Path, damaged);
            Assert.Throws<InvalidDataException>(() => PdqIndex.Load(file.Path));
        }

        File.WriteAllBytes(file.Path, bytes.AsSpan(0, bytes.Length - 1 - rng.Next(bytes.Length / 2)).ToArray());
        Assert.Throws<InvalidDataException>(() => PdqIndex.Load(file.Path));
    }
}
