using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// The near-tier index must give what a scan of every record gives (same records, tiers and scores) while looking
/// at a small share of the bank: property-tested over generated banks of fine-tune families and every kind of
/// candidate (near copy, reduced-precision copy, drifted sibling, extracted part, stranger).
/// </summary>
public class NearIndexTests
{
    private static List<string> Hits(IEnumerable<NearHit> hits) =>
        [.. hits.Select(h => $"{h.Tier}|{h.Record.Id}|{h.Component}|{h.Score:R}|{h.Coverage:R}|{h.Precision}").Order(StringComparer.Ordinal)];

    private static readonly SyntheticBankOptions Small = new(Families: 3, BasesPerFamily: 8, Tensors: 12, RowsPerComponent: 96);

    [Property(MaxTest = 40)]
    public Property Index_answers_equal_a_full_scan() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue).Zip(Gen.Choose(0, 5)).ToArbitrary(), p =>
        {
            var (seed, kind) = p;
            var rng = new Random(seed);
            var count = rng.Next(50, 400);
            var records = Enumerable.Range(0, count).Select(i => SyntheticModels.Record(i, Small)).ToList();
            var index = kind % 2 == 0 ? NearIndex.Build(records) : NearIndex.Build(count, i => records[i], i => SyntheticModels.Record(i, Small, probesOnly: true));
            var of = records[rng.Next(count)];
            var stranger = SyntheticModels.Record(count + 7, Small with { BasesPerFamily = 1000 });
            var fp = kind switch
            {
                0 => SyntheticModels.Candidate(of, 0.02, TensorDType.F32, 0, 0, 0, seed),                 // near copy: T4
                1 => SyntheticModels.Candidate(of, 0.12, TensorDType.Q4_K, 0, 0, 0, seed),                // quantised copy: R
                2 => SyntheticModels.Candidate(of, 0.35, TensorDType.Q2_K, 3, 50, 0, seed),               // 2-bit copy at the tolerance's edge
                3 => SyntheticModels.Candidate(of, 0.3, TensorDType.F32, 5, 500, 0.7, seed),              // drifted sibling holding 70 % of one model's rows: T3
                4 => SyntheticModels.Candidate(stranger, 0.0, TensorDType.F32, 5, 500, 0, seed),          // unrelated
                _ => SyntheticModels.Candidate(of, 0.3, TensorDType.F32, 0, 200, rng.NextDouble(), seed), // partial containment around the threshold
            };

            var similar = Hits(index.Similar(fp));
            var contained = Hits(index.Contained(fp));
            return (similar.SequenceEqual(Hits(NearMatcher.Similar(fp, records))) && contained.SequenceEqual(Hits(NearMatcher.Contained(fp, records))))
                .Label($"kind {kind}, {count} records: index {string.Join(";", similar.Concat(contained))} vs scan {string.Join(";", Hits(NearMatcher.Similar(fp, records)).Concat(Hits(NearMatcher.Contained(fp, records))))}");
        });

    [Fact]
    public void Copies_are_found_and_strangers_look_at_almost_nothing()
    {
        var options = Small with { BasesPerFamily = 200 };
        const int count = 3000;
        var records = Enumerable.Range(0, count).Select(i => SyntheticModels.Record(i, options)).ToList();
        var index = NearIndex.Build(records);
        Assert.Equal(count, index.Count);
        for (var k = 0; k < 20; k++)
        {
            var of = records[(k * 149) + 11];
            var copy = SyntheticModels.Candidate(of, 0.02, TensorDType.F32, 0, 2000, 0.8, k);
            Assert.Contains(of.Id, index.Similar(copy).Where(h => h.Tier == "T4").Select(h => h.Record.Id));
            Assert.Contains(of.Id, index.Contained(copy).Select(h => h.Record.Id));

            // A model of an architecture nobody registered (same key names, unrelated values) draws a handful of
            // random bucket collisions at most, not the bank.
            var stranger = SyntheticModels.Candidate(Rebase(of, 50_000 + k), 0, TensorDType.F32, 20, 2000, 0, k);
            Assert.True(index.SketchCandidates(stranger).Count <= 10, $"{index.SketchCandidates(stranger).Count} sketch candidates");
            Assert.Empty(index.RowCandidates(stranger));
            Assert.Empty(index.Similar(stranger));
        }
    }

    // The same keys with the sketches of a base no record was derived from.
    private static ModelRecord Rebase(ModelRecord r, int seed)
    {
        var fresh = SyntheticModels.Record(seed * 3, new SyntheticBankOptions(Families: 3, BasesPerFamily: 100_000, Tensors: r.Tensors.Count, RowsPerComponent: 96));
        return new ModelRecord
        {
            Id = "stranger",
            Name = "stranger",
            Bank = "x",
            Tensors = [.. r.Tensors.Zip(fresh.Tensors, (a, b) => a with { Sketch = b.Sketch })],
            Rows = fresh.Rows,
        };
    }

    [Fact]
    public void Signatures_are_stable_and_sign_based()
    {
        var v = Enumerable.Range(0, 256).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        Span<ulong> a = stackalloc ulong[NearIndex.Bands];
        Span<ulong> b = stackalloc ulong[NearIndex.Bands];
        NearIndex.Signature(v, a);
        NearIndex.Signature(v.Select(x => x * 1000f).ToArray(), b);
        Assert.True(a.SequenceEqual(b)); // scale-free, like the cosine it stands for
        NearIndex.Signature(v.Select(x => -x).ToArray(), b);
        for (var k = 0; k < NearIndex.Bands; k++)
        {
            Assert.Equal((1UL << NearIndex.BandBits) - 1, a[k] ^ b[k]); // the opposite vector flips every bit (no zero dot products here)
        }
    }
}
