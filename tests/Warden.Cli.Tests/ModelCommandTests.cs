using System.Text.Json;
using Warden.Core.ModelFiles;
using Warden.Core.Tests.Models;

namespace Warden.Cli.Tests;

/// <summary>
/// `warden model …` end to end on synthetic models the test writes: a bad fine-tune R of a base B is
/// registered with a bad LoRA; the scanned folder holds re-packaged copies of R, a merge, a bake-in, an
/// unrelated fine-tune and hostile pickles.
/// </summary>
public sealed class ModelCommandTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    private string Db => Path.Combine(_dir.Path, "warden.db");

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Scan_groups_repackaged_copies_flags_merges_bake_ins_and_hostile_pickles()
    {
        var b = ModelFixtures.Base(1);
        var r = ModelFixtures.FineTune(b, 2);
        var u = ModelFixtures.FineTune(b, 3);
        var lora = ModelFixtures.Lora(4);
        var registered = Path.Combine(_dir.Path, "registered");
        var up = Path.Combine(_dir.Path, "uploads");
        _dir.File("registered/base.safetensors", ModelWriters.Safetensors(b));
        _dir.File("registered/bad.safetensors", ModelWriters.Safetensors(r, new Dictionary<string, string> { ["ss_output_name"] = "bad" }));
        _dir.File("registered/bad-lora.safetensors", ModelWriters.Safetensors(lora));

        _dir.File("uploads/r-original.safetensors", File.ReadAllBytes(Path.Combine(registered, "bad.safetensors")));
        _dir.File("uploads/r-metadata-edited.safetensors", ModelWriters.Safetensors(r, new Dictionary<string, string> { ["ss_output_name"] = "renamed" }));
        _dir.File("uploads/r-renamed.ckpt", ModelWriters.TorchZip([.. r.Select(t => t.Renamed("module." + t.Name))], new ModelWriters.TorchOptions { Wrapper = "state_dict" }));
        _dir.File("uploads/r-fp16.safetensors", ModelWriters.Safetensors(ModelFixtures.Cast(r, TensorDType.F16)));
        _dir.File("uploads/r-bf16.safetensors", ModelWriters.Safetensors(ModelFixtures.Cast(r, TensorDType.BF16)));
        _dir.File("uploads/r-ema.ckpt", ModelWriters.TorchZip(ModelFixtures.WithEma(r)));
        _dir.File("uploads/r-legacy.pt", ModelWriters.LegacyTorch(r));
        ModelFixtures.WriteDiffusers(Path.Combine(up, "r-diffusers"), r);
        ModelFixtures.WriteSharded(Path.Combine(up, "r-sharded"), r);
        _dir.File("uploads/merge-r-u.safetensors", ModelWriters.Safetensors(ModelFixtures.Merge(r, 0.6, u, 0.4)));
        _dir.File("uploads/baked-lora.safetensors", ModelWriters.Safetensors(ModelFixtures.BakeIn(b, lora, 0.8)));
        _dir.File("uploads/lora-peft/adapter_config.json", """{"r":4,"lora_alpha":2}"""u8.ToArray());
        _dir.File("uploads/lora-peft/adapter_model.safetensors", ModelWriters.Safetensors(ModelFixtures.LoraAsPeft(lora)));
        _dir.File("uploads/u-unrelated.safetensors", ModelWriters.Safetensors(u));
        _dir.File("uploads/block-merge.safetensors", ModelWriters.Safetensors([.. r.Zip(u).Select(p => p.First.Name.Contains("transformer_blocks", StringComparison.Ordinal) ? p.First : p.Second)]));
        _dir.File("uploads/readme.txt", "not a model"u8.ToArray());
        var marker = Path.Combine(_dir.Path, "MARKER");
        foreach (var (name, bytes) in ModelFixtures.HostilePickles(marker))
        {
            _dir.File($"uploads/hostile/{name}.pkl", bytes);
        }

        _dir.File("uploads/hostile/evil.ckpt", ModelWriters.TorchZip(r[..2], new ModelWriters.TorchOptions
        {
            Tamper = e => [.. e, new ModelWriters.ZipEntry("archive/x/evil.pkl", ModelFixtures.HostilePickles(marker)[0].Bytes)],
        }));

        Assert.Equal(0, Run("bank", "create", "bases", "--kind", "allow", "--db", Db).Exit);
        Assert.Equal(0, Run("bank", "create", "bad", "--db", Db).Exit);
        var add = Run("model", "add", "--bank", "bases", "--db", Db, "--no-progress", Path.Combine(registered, "base.safetensors"));
        Assert.True(add.Exit == 0, add.Err);
        add = Run("model", "add", "--bank", "bad", "--label", "category=test", "--db", Db, "--no-progress", Path.Combine(registered, "bad.safetensors"), Path.Combine(registered, "bad-lora.safetensors"));
        Assert.True(add.Exit == 0, add.Err);
        Assert.Contains("added bad.safetensors (sd1 checkpoint, safetensors) to bad", add.Out, StringComparison.Ordinal);

        var (exit, output, err) = Run("model", "scan", "--format", "jsonl", "--db", Db, "--no-progress", up);
        Assert.Equal(ModelCommand.Dangerous, exit);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => Path.GetRelativePath(up, e.GetProperty("path").GetString()!), e => e);

        // Exact tier: every re-packaged copy of R names the registered model.
        string[] copies = ["r-original.safetensors", "r-metadata-edited.safetensors", "r-renamed.ckpt", "r-fp16.safetensors", "r-bf16.safetensors", "r-ema.ckpt", "r-legacy.pt", "r-diffusers", "r-sharded"];
        foreach (var c in copies)
        {
            var hits = rows[c].GetProperty("hits").EnumerateArray().ToList();
            Assert.True(hits.Any(h => h.GetProperty("model").GetString() == "bad.safetensors" && h.GetProperty("signal_type").GetString() == "mfv1_model" && h.GetProperty("bank").GetString() == "bad"), $"{c}: {rows[c]}");
        }

        Assert.Contains(rows["r-original.safetensors"].GetProperty("hits").EnumerateArray(), h => h.GetProperty("signal_type").GetString() == "sha256");
        Assert.Contains(rows["r-metadata-edited.safetensors"].GetProperty("hits").EnumerateArray(), h => h.GetProperty("tier").GetString() == "T1");
        Assert.Contains(rows["r-fp16.safetensors"].GetProperty("hits").EnumerateArray(), h => h.GetProperty("matched_part").GetString() == "model@fp16");
        Assert.Contains(rows["r-bf16.safetensors"].GetProperty("hits").EnumerateArray(), h => h.GetProperty("matched_part").GetString() == "model@bf16");
        Assert.Contains(rows["lora-peft"].GetProperty("hits").EnumerateArray(), h => h.GetProperty("model").GetString() == "bad-lora.safetensors" && h.GetProperty("signal_type").GetString() == "mfv1_model");
        Assert.Contains("same model (mfv1_model", err, StringComparison.Ordinal);
        Assert.Contains("r-original.safetensors", err, StringComparison.Ordinal);

        // Merge and bake-in: T5 with estimated coefficients.
        var merge = rows["merge-r-u.safetensors"].GetProperty("derivation");
        Assert.Equal("merge", merge.GetProperty("kind").GetString());
        var mTerms = merge.GetProperty("terms").EnumerateArray().ToDictionary(t => t.GetProperty("model").GetString()!, t => t.GetProperty("coefficient").GetDouble());
        Assert.Equal(0.6, mTerms["bad.safetensors"], 1);
        Assert.Equal(0.4, mTerms["base.safetensors"], 1);
        var baked = rows["baked-lora.safetensors"].GetProperty("derivation");
        Assert.Equal("lora-bake-in", baked.GetProperty("kind").GetString());
        Assert.Equal(0.8, baked.GetProperty("terms").EnumerateArray().Single(t => t.GetProperty("adapter").GetBoolean()).GetProperty("coefficient").GetDouble(), 2);

        // Block merge: half the attention blocks copied from R (row containment).
        Assert.Contains(rows["block-merge.safetensors"].GetProperty("hits").EnumerateArray(), h => h.GetProperty("tier").GetString() == "T3"
            && h.GetProperty("model").GetString() == "bad.safetensors" && h.GetProperty("component").GetString() == "denoiser");

        // The unrelated fine-tune of the same base is not flagged.
        var unrelated = rows["u-unrelated.safetensors"];
        Assert.DoesNotContain(unrelated.GetProperty("hits").EnumerateArray(), h => h.GetProperty("bank").GetString() == "bad");
        Assert.False(unrelated.TryGetProperty("derivation", out _));

        // Every hostile pickle is flagged, nothing ran.
        foreach (var (name, _) in ModelFixtures.HostilePickles(marker))
        {
            Assert.Equal("dangerous", rows[$"hostile/{name}.pkl"].GetProperty("pickle_verdict").GetString());
        }

        Assert.Equal("dangerous", rows["hostile/evil.ckpt"].GetProperty("pickle_verdict").GetString());
        Assert.False(File.Exists(marker));
        Assert.False(rows.ContainsKey("readme.txt"));
        Assert.Contains("readme.txt: skipped", err, StringComparison.Ordinal);

        // The table names the tiers too.
        var table = Run("model", "scan", "--db", Db, "--no-progress", Path.Combine(up, "baked-lora.safetensors"), Path.Combine(up, "r-fp16.safetensors"));
        Assert.Equal(0, table.Exit);
        Assert.Contains("T5 lora-bake-in", table.Out, StringComparison.Ordinal);
        Assert.Contains("T2 mfv1_model (model) = bad.safetensors [model@fp16] in bad (block)", table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_and_hash_report_format_architecture_and_civitai_hashes()
    {
        var path = _dir.File("m.ckpt", ModelWriters.TorchZip(ModelFixtures.Base(), new ModelWriters.TorchOptions { Wrapper = "state_dict" }));
        var (exit, output, _) = Run("model", "inspect", "--format", "jsonl", path);
        Assert.Equal(0, exit);
        var doc = JsonDocument.Parse(output).RootElement;
        Assert.Equal("torch-zip", doc.GetProperty("format").GetString());
        Assert.Equal("sd1", doc.GetProperty("architecture").GetString());
        Assert.Equal("safe", doc.GetProperty("pickle_verdict").GetString());
        Assert.True(doc.GetProperty("parameters").GetProperty("denoiser").GetInt64() > 0);

        var hello = _dir.File("hello.bin", "hello world"u8.ToArray());
        var hash = Run("model", "hash", "--format", "jsonl", "--no-progress", path);
        Assert.Equal(0, hash.Exit);
        var h = JsonDocument.Parse(hash.Out).RootElement;
        Assert.Equal(64, h.GetProperty("sha256").GetString()!.Length);
        Assert.Equal(32, h.GetProperty("mfv1_model").GetString()!.Length);
        Assert.Equal(3, h.GetProperty("components").GetArrayLength());
        var bad = Run("model", "hash", hello);
        Assert.Equal(WardenCli.SomeFailed, bad.Exit);
        Assert.Contains("not a model format", bad.Err, StringComparison.Ordinal);

        var evil = _dir.File("evil.pt", ModelFixtures.HostilePickles("x")[0].Bytes);
        var i = Run("model", "inspect", evil);
        Assert.Equal(ModelCommand.Dangerous, i.Exit);
        Assert.Contains("DANGEROUS", i.Out, StringComparison.Ordinal);
        Assert.Contains("os.system", i.Out, StringComparison.Ordinal);
    }
}
