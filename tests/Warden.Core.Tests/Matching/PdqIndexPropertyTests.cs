using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;
using static Warden.Core.Tests.Matching.MatchingData;

namespace Warden.Core.Tests.Matching;

/// <summary>The index must return exactly what the brute-force scan returns, on every path and layout.</summary>
public sealed class PdqIndexPropertyTests
{
    private static readonly int[] Radii = [0, 1, 2, 3, 5, 7, 8, 10, 15, 16, 20, 24, 31, 32, 40, 47, 48, 52, 63, 64];

    private static bool SameAsBruteForce(PdqIndex index, PdqHash[] hashes, long[] ids, PdqHash[] queries, IEnumerable<int> radii)
    {
        var got = new List<PdqMatch>();
        foreach (var r in radii)
        {
            foreach (var q in queries)
            {
                got.Clear();
                index.Search(q, r, got);
                if (!Oracle(hashes, ids, q, r).SequenceEqual(Canon(got)))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static PdqIndex Build(PdqHash[] hashes, long[] ids, int tables, PdqIndex.SearchPath path)
    {
        var index = new PdqIndex(tables, path);
        index.AddRange(hashes, ids);
        return index;
    }

    [Property(MaxTest = 25)]
    public Property CopyLiveTo_returns_exactly_the_live_pairs_the_filter_keeps(PositiveInt seed)
    {
        // Across segments (sealed, merged, snapshotted) and the tail, after removals: what a merged or filtered
        // copy (a signal log week) is rebuilt from.
        var rng = new Random(seed.Get);
        var n = rng.Next(0, 12_000);
        var (hashes, ids) = Uniform(n, rng);
        using var built = new PdqIndex();
        var split = rng.Next(0, n + 1);
        built.AddRange(hashes.AsSpan(0, split), ids.AsSpan(0, split));
        for (var i = split; i < n; i++)
        {
            built.Add(hashes[i], ids[i]);
        }

        var removed = ids.Where(_ => rng.Next(5) == 0).ToHashSet();
        foreach (var id in removed)
        {
            built.Remove(id);
        }

        using (var file = Save(built, "copylive"))
        {
            using var loaded = PdqIndex.Load(file.Path);
            var modulus = rng.Next(1, 4);
            bool Keep(long id) => id % modulus == 0;
            var expected = Canonical(hashes.Zip(ids).Where(p => !removed.Contains(p.Second) && Keep(p.Second)));
            var ok = true;
            foreach (var index in new[] { built, loaded })
            {
                var gotHashes = new List<PdqHash>();
                var gotIds = new List<long>();
                index.CopyLiveTo(gotHashes, gotIds, Keep);
                ok &= Canonical(gotHashes.Zip(gotIds)).SequenceEqual(expected);
            }

            return ok.Label($"n={n} split={split} removed={removed.Count}");
        }

        static List<(long, string)> Canonical(IEnumerable<(PdqHash Hash, long Id)> pairs) =>
            [.. pairs.Select(p => (p.Id, p.Hash.ToString())).OrderBy(p => p.Item1).ThenBy(p => p.Item2, StringComparer.Ordinal)];
    }

    [Property(MaxTest = 25)]
    public Property Uniform_data_matches_brute_force_on_the_multi_index_path(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var n = rng.Next(4097, 20_000);
        var (hashes, ids) = Uniform(n, rng);
        using var index = Build(hashes, ids, 0, PdqIndex.SearchPath.MultiIndex);
        var queries = Queries(6, hashes, rng);
        return SameAsBruteForce(index, hashes, ids, queries, Radii).Label($"n={n}");
    }

    [Property(MaxTest = 25)]
    public Property Clustered_data_matches_brute_force_on_the_multi_index_path(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var n = rng.Next(4097, 30_000);
        var (hashes, ids, centres) = Clustered(n, 1000, rng);
        using var index = Build(hashes, ids, 0, PdqIndex.SearchPath.MultiIndex);
        var queries = Queries(6, centres, rng).Concat(Queries(4, hashes, rng)).ToArray();
        return SameAsBruteForce(index, hashes, ids, queries, Radii).Label($"n={n}");
    }

    [Property(MaxTest = 40)]
    public Property Every_layout_is_exact_for_every_radius_0_to_64(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var tables = new[] { 8, 9, 10, 11, 12, 13, 15, 16, 20, 32 }[rng.Next(10)];
        var n = rng.Next(1, 6000);
        var (hashes, ids, centres) = Clustered(n, rng.Next(1, 200), rng);
        using var index = Build(hashes, ids, tables, PdqIndex.SearchPath.MultiIndex);
        var queries = Queries(3, centres, rng);
        return SameAsBruteForce(index, hashes, ids, queries, Enumerable.Range(0, 65)).Label($"m={tables} n={n}");
    }

    [Property(MaxTest = 25)]
    public Property Automatic_path_choice_is_exact_including_large_radii(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var n = rng.Next(0, 12_000);
        var (hashes, ids, centres) = Clustered(n, 1000, rng);
        using var index = Build(hashes, ids, 0, PdqIndex.SearchPath.Auto);
        var queries = Queries(4, centres, rng);
        return SameAsBruteForce(index, hashes, ids, queries, [0, 10, 31, 64, 100, 128, 200, 256]).Label($"n={n}");
    }

    [Property(MaxTest = 15)]
    public Property Interleaved_adds_and_removes_match_a_model(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var (_, _, centres) = Clustered(0, 300, rng);
        using var index = new PdqIndex(0, PdqIndex.SearchPath.MultiIndex);
        var model = new List<(PdqHash Hash, long Id)>();
        var removed = new HashSet<long>();
        long nextId = 1;
        var ok = true;
        for (var round = 0; round < 12 && ok; round++)
        {
            // Mix single adds, bulk adds (tail, segment, merges) and removes of live, dead and absent ids.
            var adds = rng.Next(3) == 0 ? rng.Next(3000, 9000) : rng.Next(0, 1500);
            var batch = Enumerable.Range(0, adds).Select(_ => (Hash: Flip(centres[rng.Next(centres.Length)], rng.Next(41), rng), Id: rng.Next(5) == 0 && model.Count > 0 ? model[rng.Next(model.Count)].Id : nextId++)).ToArray();
            if (rng.Next(2) == 0)
            {
                index.AddRange(batch.Select(b => b.Hash).ToArray(), batch.Select(b => b.Id).ToArray());
            }
            else
            {
                foreach (var (h, id) in batch)
                {
                    index.Add(h, id);
                }
            }

            model.AddRange(batch);
            foreach (var (_, id) in batch)
            {
                removed.Remove(id);
            }

            var removes = rng.Next(0, model.Count / 2 + 2);
            for (var k = 0; k < removes; k++)
            {
                var id = rng.Next(4) == 0 ? -rng.Next(1, 1000) : model.Count > 0 ? model[rng.Next(model.Count)].Id : 0;
                var had = model.Any(e => e.Id == id);
                ok &= index.Remove(id) == had;
                model.RemoveAll(e => e.Id == id);
                removed.Add(id);
            }

            ok &= index.Count == model.Count;
            var hashes = model.Select(e => e.Hash).ToArray();
            var ids = model.Select(e => e.Id).ToArray();
            ok &= SameAsBruteForce(index, hashes, ids, Queries(4, centres, rng), [0, 8, 31, 48]);

            var got = new List<PdqMatch>();
            foreach (var c in centres.Take(20))
            {
                index.Search(c, 64, got);
            }

            ok &= !got.Any(m => removed.Contains(m.Id));
        }

        return ok.ToProperty();
    }

    [Property(MaxTest = 20)]
    public Property Dihedral_query_returns_each_id_once_with_its_minimum_distance(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var (hashes, ids, centres) = Clustered(rng.Next(0, 10_000), 200, rng);
        using var index = Build(hashes, ids, 0, PdqIndex.SearchPath.Auto);
        var variants = Enumerable.Range(0, 8).Select(_ => Flip(centres[rng.Next(centres.Length)], rng.Next(30), rng)).ToArray();
        var radius = rng.Next(0, 65);

        var expected = new Dictionary<long, (int Distance, int Variant)>();
        for (var v = 0; v < variants.Length; v++)
        {
            for (var i = 0; i < hashes.Length; i++)
            {
                var d = variants[v].DistanceTo(hashes[i]);
                if (d <= radius && (!expected.TryGetValue(ids[i], out var best) || d < best.Distance))
                {
                    expected[ids[i]] = (d, v);
                }
            }
        }

        var got = new List<PdqMatch> { new(-5, 0, 0) };
        index.SearchDihedral(variants, radius, got);
        var ok = got[0] == new PdqMatch(-5, 0, 0) && got.Count - 1 == expected.Count &&
                 got.Skip(1).All(m => expected.TryGetValue(m.Id, out var e) && e == (m.Distance, m.Variant));
        return ok.Label($"radius={radius} expected={expected.Count} got={got.Count - 1}");
    }
}
