using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

public class DerivationTests
{
    private static ModelFingerprint Print(TempDir dir, string name, byte[] bytes) =>
        Fingerprinter.Compute(ModelReader.Read(dir.File(name, bytes)));

    private static ModelRecord Record(ModelFingerprint fp, string name, string bank) => ModelRecord.From(fp, name, name, bank, "sd1 checkpoint");

    [Fact]
    public void Lora_identity_is_the_weight_change_not_its_spelling()
    {
        using var dir = new TempDir();
        var kohya = ModelFixtures.Lora(5);
        var a = Print(dir, "kohya.safetensors", ModelWriters.Safetensors(kohya));
        Assert.Equal(3, a.Lora.Count);
        Assert.All(a.Lora, m => Assert.Equal(0.5, m.Scale));

        // PEFT folder: lora_A/lora_B, alpha from adapter_config.json.
        var peft = Path.Combine(dir.Path, "peft");
        Directory.CreateDirectory(peft);
        File.WriteAllText(Path.Combine(peft, "adapter_config.json"), """{"r":4,"lora_alpha":2}""");
        File.WriteAllBytes(Path.Combine(peft, "adapter_model.safetensors"), ModelWriters.Safetensors(ModelFixtures.LoraAsPeft(kohya)));
        var b = Fingerprinter.Compute(ModelReader.Read(peft));

        // Alpha folded into up (scale 0.5 is exact), alpha = rank.
        var folded = kohya.Select(t => t.Name.EndsWith(".lora_up.weight", StringComparison.Ordinal) ? t with { Values = [.. t.Values.Select(v => v * 0.5f)] }
            : t.Name.EndsWith(".alpha", StringComparison.Ordinal) ? t with { Values = [4] } : t).ToList();
        var c = Print(dir, "folded.safetensors", ModelWriters.Safetensors(folded));

        // Rank zero-padded from 4 to 6 (alpha scaled so alpha/r stays 0.5).
        var padded = new List<FixtureTensor>();
        foreach (var t in kohya)
        {
            if (t.Name.EndsWith(".lora_down.weight", StringComparison.Ordinal))
            {
                padded.Add(t with { Shape = [6, t.Shape[1]], Values = [.. t.Values, .. new float[2 * t.Shape[1]]] });
            }
            else if (t.Name.EndsWith(".lora_up.weight", StringComparison.Ordinal))
            {
                var o = (int)t.Shape[0];
                var v = new float[o * 6];
                for (var i = 0; i < o; i++)
                {
                    Array.Copy(t.Values, i * 4, v, i * 6, 4);
                }

                padded.Add(t with { Shape = [o, 6], Values = v });
            }
            else
            {
                padded.Add(t with { Values = [3] });
            }
        }

        var d = Print(dir, "padded.pt", ModelWriters.TorchZip(padded));
        foreach (var other in new[] { b, c, d })
        {
            Assert.Equal(a.ModelIdHex, other.ModelIdHex);
            Assert.Equal(a.Components.Select(x => x.IdHex), other.Components.Select(x => x.IdHex));
        }

        var different = Print(dir, "other.safetensors", ModelWriters.Safetensors(ModelFixtures.Lora(6)));
        Assert.NotEqual(a.ModelIdHex, different.ModelIdHex);

        // Same adapter at another strength: not the same ID, but a T4 near match by direction.
        var stronger = Print(dir, "stronger.safetensors", ModelWriters.Safetensors(kohya.Select(t => t.Name.EndsWith(".alpha", StringComparison.Ordinal) ? t with { Values = [3] } : t)));
        Assert.NotEqual(a.ModelIdHex, stronger.ModelIdHex);
        Assert.Single(NearMatcher.Similar(stronger, [Record(a, "lora", "bad")]));
    }

    [Fact]
    public void Loha_and_lokr_modules_are_evaluated()
    {
        using var dir = new TempDir();
        var loha = new List<FixtureTensor>
        {
            new("lora_unet_x.hada_w1_a", [8, 2], ModelFixtures.Gaussian(1, 16, 0.1)),
            new("lora_unet_x.hada_w1_b", [2, 6], ModelFixtures.Gaussian(2, 12, 0.1)),
            new("lora_unet_x.hada_w2_a", [8, 2], ModelFixtures.Gaussian(3, 16, 0.1)),
            new("lora_unet_x.hada_w2_b", [2, 6], ModelFixtures.Gaussian(4, 12, 0.1)),
            new("lora_unet_x.alpha", [], [1]),
        };
        var fp = Print(dir, "loha", ModelWriters.Safetensors(loha));
        var m = Assert.Single(fp.Lora);
        Assert.Equal("loha", m.Kind);
        Assert.Equal([8L, 6], m.TargetShape);
        double expect = 0, e1 = 0, e2 = 0;
        for (var q = 0; q < 2; q++)
        {
            e1 += loha[0].Values[q] * loha[1].Values[q * 6];
            e2 += loha[2].Values[q] * loha[3].Values[q * 6];
        }

        expect = e1 * e2 * 0.5;
        Assert.Equal(expect, m.Delta[0], 6);
        Assert.Equal("loha", ModelArchitecture.Classify(fp.Document).Kind);

        var lokr = new List<FixtureTensor>
        {
            new("lora_unet_y.lokr_w1", [2, 3], [1, 2, 3, 4, 5, 6]),
            new("lora_unet_y.lokr_w2", [4, 2], ModelFixtures.Gaussian(5, 8, 1)),
        };
        var k = Assert.Single(Print(dir, "lokr", ModelWriters.Safetensors(lokr)).Lora);
        Assert.Equal([8L, 6], k.TargetShape);
        Assert.Equal(lokr[0].Values[0] * lokr[1].Values[0], k.Delta[0], 5);
    }

    [Fact]
    public void Merges_and_bake_ins_are_explained_with_their_coefficients()
    {
        using var dir = new TempDir();
        var b = ModelFixtures.Base(1);
        var r = ModelFixtures.FineTune(b, 2);
        var u = ModelFixtures.FineTune(b, 3);
        var lora = ModelFixtures.Lora(4);
        var records = new List<ModelRecord>
        {
            Record(Print(dir, "b", ModelWriters.Safetensors(b)), "base", "bases"),
            Record(Print(dir, "r", ModelWriters.Safetensors(r)), "bad", "bad"),
            Record(Print(dir, "l", ModelWriters.Safetensors(lora)), "bad-lora", "bad"),
        };
        bool Allowed(ModelRecord x) => x.Bank == "bases";

        var merge = Print(dir, "merge", ModelWriters.Safetensors(ModelFixtures.Cast(ModelFixtures.Merge(r, 0.6, u, 0.4), TensorDType.F16)));
        var m = NearMatcher.Derive(merge, records, Allowed);
        Assert.NotNull(m);
        Assert.Equal("merge", m.Kind);
        Assert.Equal(0.6, m.Terms.Single(t => t.Record.Name == "bad").Coefficient, 1);
        Assert.Equal(0.4, m.Terms.Single(t => t.Record.Name == "base").Coefficient, 1);

        var baked = Print(dir, "baked", ModelWriters.Safetensors(ModelFixtures.BakeIn(b, lora, 0.8)));
        var k = NearMatcher.Derive(baked, records, Allowed);
        Assert.NotNull(k);
        Assert.Equal("lora-bake-in", k.Kind);
        Assert.Equal(0.8, k.Terms.Single(t => t.Record.Name == "bad-lora").Coefficient, 2);
        Assert.Equal(1.0, k.Terms.Single(t => t.Record.Name == "base").Coefficient, 2);
        Assert.True(k.Explained > 0.99);

        // An unrelated fine-tune of the same base is not attributed to the bad model.
        Assert.Null(NearMatcher.Derive(Print(dir, "u", ModelWriters.Safetensors(u)), records, Allowed));
        Assert.Empty(NearMatcher.Similar(Print(dir, "u2", ModelWriters.Safetensors(u)), records.Where(x => x.Name == "bad").ToList()));

        // A noised / quantised copy is a T4 near copy.
        var noised = r.Select(t => ModelFixtures.IsBuffer(t.Name) ? t : t with { Values = [.. t.Values.Zip(ModelFixtures.Gaussian(t.Values.Length, t.Values.Length, 1e-4), (x, n) => x + n)] }).ToList();
        var near = NearMatcher.Similar(Print(dir, "noised", ModelWriters.Safetensors(noised)), records);
        Assert.Equal("bad", near.First().Record.Name);
        Assert.True(near.First().Score > 0.999);
        var q8 = Print(dir, "q8.gguf", ModelWriters.Gguf([.. r.Where(t => t.Values.Length % 32 == 0 && !ModelFixtures.IsBuffer(t.Name)).Select(t => t.As(TensorDType.Q8_0))], []));
        Assert.Equal("bad", NearMatcher.Similar(q8, records).First().Record.Name);
    }

    [Fact]
    public void Block_copies_and_fused_layouts_are_contained_rows()
    {
        using var dir = new TempDir();
        var b = ModelFixtures.Base(1);
        var r = ModelFixtures.FineTune(b, 2);
        var u = ModelFixtures.FineTune(b, 3);
        var bad = Record(Print(dir, "r", ModelWriters.Safetensors(r)), "bad", "bad");
        Assert.True(bad.Rows["denoiser"].Length > 100, "tensors with ≤ 64 rows keep every row");

        // Block merge: attention blocks from R, the rest from U.
        var block = r.Zip(u).Select(p => p.First.Name.Contains("transformer_blocks", StringComparison.Ordinal) ? p.First : p.Second).ToList();
        var hit = Assert.Single(NearMatcher.Contained(Print(dir, "block", ModelWriters.Safetensors(block)), [bad]));
        Assert.Equal("T3", hit.Tier);
        Assert.Equal("denoiser", hit.Component);
        Assert.InRange(hit.Score, 0.5, 0.9);

        // q, k, v fused into one qkv tensor: every tensor hash changes, the rows do not.
        var q = r.Single(t => t.Name.EndsWith("attn1.to_q.weight", StringComparison.Ordinal));
        var k = r.Single(t => t.Name.EndsWith("attn1.to_k.weight", StringComparison.Ordinal));
        var v = r.Single(t => t.Name.EndsWith("attn1.to_v.weight", StringComparison.Ordinal));
        var fused = r.Where(t => t != q && t != k && t != v).Append(new FixtureTensor("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.qkv.weight", [96, 32], [.. q.Values, .. k.Values, .. v.Values])).ToList();
        var f = Print(dir, "fused", ModelWriters.Safetensors(fused));
        Assert.NotEqual(bad.ModelId, f.ModelIdHex);
        var all = NearMatcher.Contained(f, [bad]);
        Assert.Contains(all, h => h.Component == "denoiser" && h.Score == 1.0);

        // An unrelated fine-tune shares no rows.
        Assert.Empty(NearMatcher.Contained(Print(dir, "u", ModelWriters.Safetensors(u)), [bad]));
    }

    [Fact]
    public void Records_round_trip_through_the_store()
    {
        using var dir = new TempDir();
        var fp = Print(dir, "l", ModelWriters.Safetensors(ModelFixtures.Lora(4)));
        var store = new ModelRecordStore(Path.Combine(dir.Path, "records"));
        store.Save(Record(fp, "x", "bank1"));
        var back = Assert.Single(store.Load(["bank1", "missing"]));
        Assert.Equal(3, back.Modules.Count);
        Assert.Equal(fp.Lora[1].Delta, back.Modules[1].Sketch);
        Assert.True(back.IsAdapter);

        var full = Print(dir, "m", ModelWriters.Safetensors(ModelFixtures.Base()));
        store.Save(Record(full, "y", "bank1"));
        var m = store.Load(["bank1"]).Single(x => x.Id == "y");
        Assert.Equal(ModelRecord.RowsOf(full)["vae"], m.Rows["vae"]);
        Assert.Equal(full.Tensors.Count(t => t.Hash is not null), m.Tensors.Count);
    }

    [Fact]
    public void Nnls_recovers_non_negative_coefficients()
    {
        var rng = new Random(1);
        var cols = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 50).Select(_ => rng.NextDouble() - 0.5).ToArray()).ToArray();
        var b = Enumerable.Range(0, 50).Select(i => (0.3 * cols[0][i]) + (0.7 * cols[2][i]) - (0.2 * cols[1][i])).ToArray();
        var x = NearMatcher.Nnls(cols, b, [0, 1, 2]);
        Assert.Equal(0.0, x[1]);
        Assert.All(x, v => Assert.True(v >= 0));
        var exact = Enumerable.Range(0, 50).Select(i => (0.3 * cols[0][i]) + (0.7 * cols[2][i])).ToArray();
        var y = NearMatcher.Nnls(cols, exact, [0, 1, 2]);
        Assert.Equal(0.3, y[0], 6);
        Assert.Equal(0.7, y[2], 6);
    }
}
