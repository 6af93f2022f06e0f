using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// T5 through the index: a base with a registered LoRA baked in (any strength, any of many LoRAs) makes that LoRA an
/// adapter candidate of the index (probed with the residual over the base), other LoRAs stay out, and the derivation
/// over the index's candidates is the one a scan of every record gives.
/// </summary>
public class NearIndexAdapterTests
{
    private static ModelFingerprint Print(TempDir dir, string name, byte[] bytes) =>
        Fingerprinter.Compute(ModelReader.Read(dir.File(name, bytes)));

    // One bank for every case: a base, two fine-tunes of it and 12 LoRAs of the base (the fingerprints take a while).
    private static readonly Lazy<(List<ModelRecord> Records, List<FixtureTensor> Base, List<List<FixtureTensor>> Loras)> Bank = new(() =>
    {
        using var dir = new TempDir();
        var b = ModelFixtures.Base(1);
        var records = new List<ModelRecord>
        {
            ModelRecord.From(Print(dir, "b", ModelWriters.Safetensors(b)), "base", "base", "bases", "sd1"),
            ModelRecord.From(Print(dir, "r", ModelWriters.Safetensors(ModelFixtures.FineTune(b, 2))), "ft2", "ft2", "bad", "sd1"),
            ModelRecord.From(Print(dir, "u", ModelWriters.Safetensors(ModelFixtures.FineTune(b, 3))), "ft3", "ft3", "bad", "sd1"),
        };
        var loras = Enumerable.Range(10, 12).Select(s => ModelFixtures.Lora(s)).ToList();
        for (var i = 0; i < loras.Count; i++)
        {
            records.Add(ModelRecord.From(Print(dir, "l" + i, ModelWriters.Safetensors(loras[i])), "lora" + i, "lora" + i, "bad", "sd1 lora"));
        }

        return (records, b, loras);
    });

    [Property(MaxTest = 12)]
    public Property A_baked_in_lora_is_an_adapter_candidate_and_others_are_not() =>
        Prop.ForAll(Gen.Choose(0, 11).Zip(Gen.Choose(5, 150)).ToArbitrary(), p =>
        {
            var (which, percent) = p;
            var (records, b, loras) = Bank.Value;
            var index = NearIndex.Build(records);
            using var dir = new TempDir();
            var strength = percent / 100.0;
            var baked = Print(dir, "baked", ModelWriters.Safetensors(ModelFixtures.BakeIn(b, loras[which], strength)));
            var bases = records.Where(r => r.Bank == "bases").ToList();
            var adapters = index.AdapterCandidates(baked, bases).Select(i => records[i].Name).ToList();
            bool Allowed(ModelRecord r) => r.Bank == "bases";
            var found = index.SketchCandidates(baked).Concat(index.RowCandidates(baked)).Select(i => records[i]).Concat(index.AdapterCandidates(baked, bases).Select(i => records[i])).Distinct().ToList();
            var viaIndex = NearMatcher.Derive(baked, found, Allowed);
            var viaScan = NearMatcher.Derive(baked, records, Allowed);
            var lora = viaIndex?.Terms.SingleOrDefault(t => t.Record.Name == "lora" + which);
            static string Terms(Derivation? d) => d is null ? "none" : d.Kind + ":" + string.Join(",", d.Terms.Select(t => $"{t.Record.Name}={t.Coefficient:F6}").Order(StringComparer.Ordinal));
            return (adapters.Contains("lora" + which) && adapters.Count <= 2 && Terms(viaIndex) == Terms(viaScan)
                    && (strength < 0.25 || (lora is not null && Math.Abs(lora.Coefficient - strength) < 0.05)))
                .Label($"lora{which} at {strength}: adapter candidates [{string.Join(",", adapters)}], index {Terms(viaIndex)}, scan {Terms(viaScan)}");
        });

    [Fact]
    public void A_fine_tune_without_a_lora_draws_no_adapter_candidates()
    {
        var (records, b, _) = Bank.Value;
        var index = NearIndex.Build(records);
        using var dir = new TempDir();
        foreach (var seed in new[] { 4, 5, 6 })
        {
            var ft = Print(dir, "ft" + seed, ModelWriters.Safetensors(ModelFixtures.FineTune(b, seed)));
            Assert.Empty(index.AdapterCandidates(ft, records.Where(r => r.Bank == "bases")));
        }
    }
}
