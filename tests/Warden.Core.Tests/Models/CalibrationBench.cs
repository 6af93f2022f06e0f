using System.Globalization;
using System.Text;
using Warden.Core.ModelFiles;
using Xunit.Abstractions;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Bench (not a unit test; runs only with WARDEN_BENCH=1): true and false positive rates of the near tiers on
/// generated families — copies in every reduced precision, noised copies, merges at several ratios, LoRA
/// bake-ins at several strengths, block merges — against unrelated fine-tunes of the same base with controlled
/// drift. Writes the markdown table of docs/models.md to the output and to $WARDEN_BENCH_OUT when set.
/// </summary>
public class CalibrationBench(ITestOutputHelper output)
{
    private static readonly TensorDType[] Precisions = [TensorDType.F16, TensorDType.BF16, TensorDType.F8E4M3, TensorDType.F8E5M2, TensorDType.Q8_0, TensorDType.Q6_K, TensorDType.Q5_K, TensorDType.Q5_0, TensorDType.Q4_K, TensorDType.Q4_0];

    private static ModelFingerprint Print(string path) => Fingerprinter.Compute(ModelReader.Read(path), new FingerprintOptions { FileHashes = false });

    private static ModelRecord Record(string path, string name, string bank) => ModelRecord.From(Print(path), name, name, bank, "sd1 checkpoint");

    private static string Write(TempDir dir, string name, List<FixtureTensor> m, TensorDType type)
    {
        var n = GgmlPack.Types.Contains(type) ? GgmlPack.BlockValues(type) : 1;
        var kept = m.Where(t => !ModelFixtures.IsBuffer(t.Name) && t.Values.Length % n == 0).ToList();
        return type switch
        {
            TensorDType.F32 or TensorDType.F16 or TensorDType.BF16 => dir.File(name + ".safetensors", ModelWriters.Safetensors(ModelFixtures.Cast(kept, type))),
            TensorDType.F8E4M3 or TensorDType.F8E5M2 => dir.File(name + ".safetensors", Fp8File(kept, type)),
            _ => dir.File(name + ".gguf", ModelWriters.Gguf([.. kept.Select(t => t with { DType = type, Raw = GgmlPack.Quantise(type, t.Values) })], [])),
        };
    }

    private static byte[] Fp8File(List<FixtureTensor> m, TensorDType type)
    {
        var json = new StringBuilder("{");
        long at = 0;
        foreach (var t in m)
        {
            json.Append(CultureInfo.InvariantCulture, $"\"{t.Name}\":{{\"dtype\":\"{(type == TensorDType.F8E4M3 ? "F8_E4M3" : "F8_E5M2")}\",\"shape\":[{string.Join(',', t.Shape)}],\"data_offsets\":[{at},{at + t.Values.Length}]}},");
            at += t.Values.Length;
        }

        json.Length--;
        json.Append('}');
        return ModelWriters.RawSafetensors(Encoding.UTF8.GetBytes(json.ToString()), [.. m.SelectMany(t => GgmlPack.Fp8(t.Values, type))]);
    }

    [SkippableFact]
    public void Near_tier_rates_on_generated_families()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("WARDEN_BENCH") == "1", "bench: set WARDEN_BENCH=1");
        const int Families = 12;
        using var dir = new TempDir();
        var counts = new Dictionary<string, (int Hits, int Total)>(StringComparer.Ordinal);
        void Count(string key, bool hit)
        {
            var (h, t) = counts.GetValueOrDefault(key);
            counts[key] = (h + (hit ? 1 : 0), t + 1);
        }

        for (var f = 0; f < Families; f++)
        {
            var b = ModelFixtures.Base(1000 + f);
            var bad = ModelFixtures.FineTune(b, 2000 + f);
            var lora = ModelFixtures.Lora(3000 + f);
            var records = new List<ModelRecord>
            {
                Record(dir.File($"b{f}.safetensors", ModelWriters.Safetensors(b)), "base", "bases"),
                Record(dir.File($"r{f}.safetensors", ModelWriters.Safetensors(bad)), "bad", "bad"),
                Record(dir.File($"l{f}.safetensors", ModelWriters.Safetensors(lora)), "lora", "bad"),
            };
            bool Allowed(ModelRecord r) => r.Bank == "bases";
            bool NamesBad(IEnumerable<NearHit> hits, string tier) => hits.Any(h => h.Tier == tier && h.Record.Bank == "bad");

            // Positives.
            foreach (var p in Precisions)
            {
                Count($"R+|copy in {NearMatcher.PrecisionName(p)}", NamesBad(NearMatcher.Similar(Print(Write(dir, $"c{f}{p}", bad, p)), records), "R"));
            }

            var noised = bad.Select(t => ModelFixtures.IsBuffer(t.Name) ? t : t with { Values = [.. t.Values.Zip(ModelFixtures.Gaussian(t.Values.Length + f, t.Values.Length, 1e-4), (x, n) => x + n)] }).ToList();
            Count("T4+|noised copy (σ 0.5 % of the weights)", NamesBad(NearMatcher.Similar(Print(Write(dir, $"n{f}", noised, TensorDType.F32)), records), "T4"));
            var unrelated = ModelFixtures.FineTune(b, 4000 + f);
            foreach (var ratio in new[] { 0.2, 0.4, 0.6, 0.8 })
            {
                var d = NearMatcher.Derive(Print(Write(dir, $"m{f}{ratio}", ModelFixtures.Merge(bad, ratio, unrelated, 1 - ratio), TensorDType.F32)), records, Allowed);
                var term = d?.Terms.FirstOrDefault(t => t.Record.Name == "bad");
                Count($"T5+|merge {ratio:0.0}·bad + {1 - ratio:0.0}·other (coefficient ± 0.05)", term is not null && Math.Abs(term.Coefficient - ratio) <= 0.05);
            }

            foreach (var strength in new[] { 0.25, 0.5, 1.0 })
            {
                var d = NearMatcher.Derive(Print(Write(dir, $"k{f}{strength}", ModelFixtures.BakeIn(b, lora, strength), TensorDType.F32)), records, Allowed);
                var term = d?.Terms.FirstOrDefault(t => t.Record.Name == "lora");
                Count($"T5+|base + {strength:0.00}·LoRA (strength ± 0.05)", term is not null && Math.Abs(term.Coefficient - strength) <= 0.05);
            }

            var block = bad.Zip(unrelated).Select(p => p.First.Name.Contains("transformer_blocks", StringComparison.Ordinal) ? p.First : p.Second).ToList();
            Count("T3+|block merge (attention from bad)", NamesBad(NearMatcher.Contained(Print(Write(dir, $"x{f}", block, TensorDType.F32)), records), "T3"));

            // Negatives: fine-tunes of the same base that are not the bad model, drifted by 5-30 %.
            foreach (var drift in new[] { 0.001, 0.002, 0.006 })
            {
                var other = ModelFixtures.FineTune(b, 5000 + f + (int)(drift * 1e6), drift);
                foreach (var p in new[] { TensorDType.F32, TensorDType.F8E4M3, TensorDType.Q8_0, TensorDType.Q4_K })
                {
                    var fp = Print(Write(dir, $"u{f}{drift}{p}", other, p));
                    var near = NearMatcher.Similar(fp, records);
                    var label = $"unrelated fine-tune, drift {drift / 0.02:P0}, {NearMatcher.PrecisionName(p)}";
                    Count($"R-|{label}", NamesBad(near, "R"));
                    Count($"T4-|{label}", NamesBad(near, "T4"));
                    Count($"T3-|{label}", NamesBad(NearMatcher.Contained(fp, records), "T3"));
                    if (p == TensorDType.F32)
                    {
                        var d = NearMatcher.Derive(fp, records, Allowed);
                        Count($"T5-|{label}", d is not null && d.Terms.Any(t => t.Record.Bank == "bad"));
                    }
                }
            }

            var stranger = ModelFixtures.Base(9000 + f);
            Count("R-|unrelated base model (other seed), fp32", NamesBad(NearMatcher.Similar(Print(Write(dir, $"s{f}", stranger, TensorDType.F32)), records), "R"));
            Count("T4-|unrelated base model (other seed), fp32", NamesBad(NearMatcher.Similar(Print(Write(dir, $"s2{f}", stranger, TensorDType.F32)), records), "T4"));
        }

        var table = new StringBuilder("| Tier | Case | Rate |\n|---|---|---|\n");
        foreach (var (key, (hits, total)) in counts.OrderBy(k => k.Key[..2], StringComparer.Ordinal))
        {
            var parts = key.Split('|');
            var positive = parts[0].EndsWith('+');
            table.Append(CultureInfo.InvariantCulture, $"| {parts[0][..^1]} | {(positive ? "true positive" : "false positive")}: {parts[1]} | {hits}/{total} |\n");
        }

        output.WriteLine(table.ToString());
        if (Environment.GetEnvironmentVariable("WARDEN_BENCH_OUT") is { Length: > 0 } path)
        {
            File.WriteAllText(path, table.ToString());
        }
    }
}
