using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// A folder's verdict is the worst of every weight file in its tree (loaders pick variants and .bin files beside
/// .safetensors), and one file's failure is that file's error, never "safe" and never the end of the scan.
/// </summary>
public sealed class FolderScanTests
{
    // Hostile weight files of every kind a loader reads; each only names a non-allowlisted global.
    public static IEnumerable<(string Name, byte[] Bytes)> HostileWeights(string module, string name)
    {
        var payload = ContainerWriters.Payload2(module, name);
        var tensor = new FixtureTensor("w", [2], [1, 2]);
        yield return ("diffusion_pytorch_model.fp16.bin", ModelWriters.TorchZip([tensor], new ModelWriters.TorchOptions
        {
            Tamper = e => [.. e.Select(x => x.Name.EndsWith("data.pkl", StringComparison.Ordinal) ? x with { Data = payload } : x)],
        }));
        yield return ("diffusion_pytorch_model.bin", payload);
        yield return ("model.ckpt", ContainerWriters.Payload(module, name));
        yield return ("weights.pt", [.. ModelWriters.LegacyTorch([tensor]), .. payload]);
        yield return ("old.pth", ContainerWriters.LegacyTar(1, ContainerWriters.TarSlot.PickleMember, payload));
        yield return ("renamed.safetensors", payload);
        yield return ("quant.gguf", payload);
        yield return ("diffusion_pytorch_model.non_ema.bin", ModelWriters.Zip([new("archive/data.pkl", payload) { Deflate = true }]));
    }

    public static TheoryData<int> HostileKinds() => [.. Enumerable.Range(0, HostileWeights("os", "system").Count())];

    [Theory]
    [MemberData(nameof(HostileKinds))]
    public void A_hostile_weight_file_anywhere_in_a_diffusers_folder_is_found(int kind)
    {
        var positions = new[] { "unet", "vae", "text_encoder", ".", "unet/nested" };
        var i = 0;
        foreach (var position in positions)
        {
            var (module, name) = ContainerWriters.HostileGlobals[i++ % ContainerWriters.HostileGlobals.Length];
            var (file, bytes) = HostileWeights(module, name).ElementAt(kind);
            using var dir = new TempDir();
            ModelFixtures.WriteDiffusers(dir.Path, ModelFixtures.Base(seed: 5));
            var rel = Path.Combine(position, file);
            dir.File(rel, bytes);

            var doc = ModelReader.Read(dir.Path);
            Assert.Equal(ModelFormat.DiffusersFolder, doc.Format);
            Assert.True(doc.Verdict == PickleVerdict.Dangerous, $"{rel}: {doc.Verdict}");
            Assert.Contains(doc.Pickles, p => p.Member.StartsWith(Path.GetRelativePath(".", rel), StringComparison.Ordinal) && p.Verdict == PickleVerdict.Dangerous
                && (p.Globals.Contains($"{module}.{name}") || p.Findings.Any(f => f.Module == module)));

            // The fingerprint still comes from the benign safetensors, as before.
            Assert.NotEmpty(doc.Tensors);
        }
    }

    [Fact]
    public void A_benign_diffusers_folder_with_variants_stays_safe()
    {
        using var dir = new TempDir();
        var model = ModelFixtures.Base(seed: 6);
        ModelFixtures.WriteDiffusers(dir.Path, model);
        var unet = model.Where(t => t.Name.StartsWith("model.diffusion_model.", StringComparison.Ordinal)).Take(3).ToList();
        dir.File("unet/diffusion_pytorch_model.fp16.safetensors", ModelWriters.Safetensors(ModelFixtures.Cast(unet, TensorDType.F16)));
        dir.File("unet/diffusion_pytorch_model.bin", ModelWriters.TorchZip(unet));
        dir.File("tokenizer/vocab.json", "{\"a\":1}"u8.ToArray());
        dir.File("tokenizer/merges.txt", "#version: 0.2\nh e\n"u8.ToArray());
        dir.File("README.md", "Note: a benign model"u8.ToArray());
        var doc = ModelReader.Read(dir.Path);
        Assert.True(doc.Verdict == PickleVerdict.Safe, string.Join("; ", doc.Pickles.SelectMany(p => p.Findings.Select(f => p.Member + " " + f.Detail))));
        Assert.DoesNotContain(doc.Anomalies, a => a.Code == "folder.unreadable");
    }

    [Fact]
    public void A_crashing_file_before_a_dangerous_one_is_that_files_error()
    {
        using var dir = new TempDir();
        ModelFixtures.WriteDiffusers(dir.Path, ModelFixtures.Base(seed: 7));

        // The 128-byte GGUF with dims 2^31 x 2^31 sorts first; the dangerous pickle after it is still found.
        dir.File("unet/a.gguf", ContainerWriters.GgufDims([1L << 31, 1L << 31]));
        dir.File("unet/b.safetensors", ModelWriters.RawSafetensors("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}""", 4));
        dir.File("vae/z.bin", ContainerWriters.Payload("builtins", "eval"));
        var doc = ModelReader.Read(dir.Path);
        Assert.Equal(PickleVerdict.Dangerous, doc.Verdict);
        Assert.Contains(doc.Pickles, p => p.Globals.Contains("builtins.eval"));
        Assert.Contains(doc.Anomalies, a => a.Code == "folder.unreadable" && a.Message.Contains("a.gguf", StringComparison.Ordinal));
        Assert.Contains(doc.Anomalies, a => a.Code == "folder.unreadable" && a.Message.Contains("b.safetensors", StringComparison.Ordinal));

        // An unreadable weight file alone is never safe.
        using var lone = new TempDir();
        ModelFixtures.WriteDiffusers(lone.Path, ModelFixtures.Base(seed: 7));
        lone.File("unet/a.gguf", ContainerWriters.GgufDims([1L << 31, 1L << 31]));
        Assert.Equal(PickleVerdict.Dangerous, ModelReader.Read(lone.Path).Verdict);
    }

    [Fact]
    public void Sharded_and_peft_folders_scan_every_file_too()
    {
        using var dir = new TempDir();
        var model = ModelFixtures.Base(seed: 8);
        ModelFixtures.WriteSharded(dir.Path, model);
        Assert.Equal(PickleVerdict.Safe, ModelReader.Read(dir.Path).Verdict);
        dir.File("pytorch_model.bin", ContainerWriters.Payload2("posix", "system"));
        var doc = ModelReader.Read(dir.Path);
        Assert.Equal(ModelFormat.ShardedFolder, doc.Format);
        Assert.Equal(PickleVerdict.Dangerous, doc.Verdict);
    }
}
