using System.Security.Cryptography;
using FsCheck;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

public class FingerprintTests
{
    private static ModelFingerprint Print(TempDir dir, string name, byte[] bytes, bool casts = false) =>
        Fingerprinter.Compute(ModelReader.Read(dir.File(name, bytes)), new FingerprintOptions { Blake3 = true, CastPaths = casts });

    [Fact]
    public void Civitai_golden_values_for_hello_world()
    {
        using var dir = new TempDir();
        var f = Fingerprinter.HashFile(dir.File("hello", "hello world"u8.ToArray()));
        Assert.Equal("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", f.Sha256Hex);
        Assert.Equal("b94d27b993", f.AutoV2Hex);
        Assert.Null(f.AutoV1Hex);
        Assert.Equal("d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24", f.Blake3Hex);
        Assert.Equal("85114a0d", f.Crc32Hex); // Civitai's byte order; zlib prints 0d4a1185
    }

    [Fact]
    public void AutoV1_hashes_64_KiB_at_1_MiB_and_needs_2_MiB()
    {
        using var dir = new TempDir();
        var data = new byte[(2 << 20) + (64 << 10)];
        new Random(7).NextBytes(data);
        var f = Fingerprinter.HashFile(dir.File("big", data));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data.AsSpan(0x100000, 0x10000)))[..8], f.AutoV1Hex);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), f.Sha256Hex);
        Assert.Null(Fingerprinter.HashFile(dir.File("small", data[..((2 << 20) - 1)])).AutoV1Hex);
    }

    [Fact]
    public void AutoV3_skips_a_small_header_and_only_8_bytes_of_a_huge_one()
    {
        using var dir = new TempDir();
        var st = ModelWriters.Safetensors([new FixtureTensor("a", [4], [1, 2, 3, 4])]);
        var n = (int)BitConverter.ToUInt64(st);
        var f = Fingerprinter.HashFile(dir.File("st", st));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(st.AsSpan(8 + n))), f.AutoV3Hex);

        // A 17 MiB header (≥ 16 MiB): AutoV3 hashes everything after the length field.
        var big = ModelWriters.RawSafetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}" + new string(' ', 17 << 20), 4);
        var g = Fingerprinter.HashFile(dir.File("big", big));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(big.AsSpan(8))), g.AutoV3Hex);
        Assert.Equal(g.AutoV3Hex![..12], g.AutoV3Short);
    }

    [Fact]
    public void Metadata_edit_keeps_AutoV3_and_model_id_but_changes_the_file_hash()
    {
        using var dir = new TempDir();
        var m = ModelFixtures.Base();
        var a = Print(dir, "a", ModelWriters.Safetensors(m, new Dictionary<string, string> { ["k"] = "1" }));
        var b = Print(dir, "b", ModelWriters.Safetensors(m, new Dictionary<string, string> { ["k"] = "2" }));
        Assert.NotEqual(a.File!.Sha256Hex, b.File!.Sha256Hex);
        Assert.Equal(a.File.AutoV3Hex, b.File.AutoV3Hex);
        Assert.Equal(a.ModelIdHex, b.ModelIdHex);
    }

    [Fact]
    public void Model_id_survives_every_repackaging()
    {
        using var dir = new TempDir();
        var m = ModelFixtures.Base();
        var reference = Print(dir, "ref.safetensors", ModelWriters.Safetensors(m), casts: true);
        Assert.Equal(["denoiser", "te1", "vae"], reference.Components.Select(c => c.Name));
        var reordered = m.AsEnumerable().Reverse().ToList();
        var renamed = m.Select(t => t.Renamed("module." + t.Name)).ToList();
        var variants = new Dictionary<string, ModelFingerprint>
        {
            ["reordered"] = Print(dir, "r", ModelWriters.Safetensors(reordered)),
            ["module.-prefixed"] = Print(dir, "p", ModelWriters.Safetensors(renamed)),
            ["torch zip, state_dict wrapper"] = Print(dir, "z.ckpt", ModelWriters.TorchZip(m, new ModelWriters.TorchOptions { Wrapper = "state_dict" })),
            ["torch zip protocol 4"] = Print(dir, "z4.pt", ModelWriters.TorchZip(m, new ModelWriters.TorchOptions { Protocol4 = true, Prefix = "other" })),
            ["legacy torch"] = Print(dir, "l.pt", ModelWriters.LegacyTorch(m)),
            ["with EMA"] = Print(dir, "e.ckpt", ModelWriters.TorchZip(ModelFixtures.WithEma(m))),
            ["without buffers"] = Print(dir, "nb", ModelWriters.Safetensors(m.Where(t => !ModelFixtures.IsBuffer(t.Name)))),
            ["gguf f32"] = Print(dir, "g.gguf", ModelWriters.Gguf(m.Where(t => t.DType == TensorDType.F32).ToList(), [new("general.architecture", 8, "sd1")])),
            ["f64 up-cast of nothing lost"] = Print(dir, "u", ModelWriters.Safetensors(m)),
        };
        ModelFixtures.WriteDiffusers(Path.Combine(dir.Path, "diffusers"), m);
        variants["diffusers folder"] = Fingerprinter.Compute(ModelReader.Read(Path.Combine(dir.Path, "diffusers")));
        ModelFixtures.WriteSharded(Path.Combine(dir.Path, "sharded"), m);
        variants["sharded"] = Fingerprinter.Compute(ModelReader.Read(Path.Combine(dir.Path, "sharded")));
        foreach (var (what, fp) in variants)
        {
            Assert.True(reference.ModelIdHex == fp.ModelIdHex, $"{what}: {fp.ModelIdHex} != {reference.ModelIdHex}");
        }

        // Down-casts match the registered cast paths exactly.
        var f16 = Print(dir, "h", ModelWriters.Safetensors(ModelFixtures.Cast(m, TensorDType.F16)));
        var bf16 = Print(dir, "bf", ModelWriters.Safetensors(ModelFixtures.Cast(m, TensorDType.BF16)));
        Assert.NotEqual(reference.ModelIdHex, f16.ModelIdHex);
        Assert.Equal(Convert.ToHexStringLower(reference.CastModelIds["fp16"]), f16.ModelIdHex);
        Assert.Equal(Convert.ToHexStringLower(reference.CastModelIds["bf16"]), bf16.ModelIdHex);

        // An fp16 copy up-cast back to fp32 is the fp16 model.
        var up = m.Select(t => t.DType == TensorDType.F32 ? t with { Values = [.. t.Values.Select(v => (float)(Half)v)] } : t).ToList();
        Assert.Equal(f16.ModelIdHex, Print(dir, "up", ModelWriters.Safetensors(up)).ModelIdHex);

        // UNet extraction keeps the denoiser component.
        var unet = Print(dir, "unet", ModelWriters.Safetensors(m.Where(t => t.Name.StartsWith("model.diffusion_model.", StringComparison.Ordinal))));
        Assert.Equal(reference.Components.Single(c => c.Name == "denoiser").IdHex, unet.Components.Single().IdHex);
        Assert.NotEqual(reference.ModelIdHex, unet.ModelIdHex);
    }

    [Fact]
    public void Different_weights_give_different_ids()
    {
        using var dir = new TempDir();
        var m = ModelFixtures.Base();
        var a = Print(dir, "a", ModelWriters.Safetensors(m));
        var one = m.Select((t, i) => i == 3 ? t with { Values = [.. t.Values.Select((v, k) => k == 0 ? v + 1e-6f : v)] } : t).ToList();
        var b = Print(dir, "b", ModelWriters.Safetensors(one));
        Assert.NotEqual(a.ModelIdHex, b.ModelIdHex);
        Assert.Equal(2, a.Components.Zip(b.Components).Count(p => p.First.IdHex == p.Second.IdHex)); // te1 and vae unchanged
    }

    [Fact]
    public void Negative_zero_and_nan_payloads_hash_canonically()
    {
        using var dir = new TempDir();
        var a = Print(dir, "a", ModelWriters.Safetensors([new FixtureTensor("w", [3], [0f, float.NaN, 1])]));
        var b = Print(dir, "b", ModelWriters.Safetensors([new FixtureTensor("w", [3], [-0f, BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00001)), 1])]));
        Assert.Equal(a.ModelIdHex, b.ModelIdHex);
    }

    [Fact]
    public void Chunk_boundaries_do_not_change_tensor_hashes()
    {
        using var dir = new TempDir();
        // An odd header length puts F16 elements across the 4 MiB read boundaries.
        var big = new FixtureTensor("big", [3, 1 << 20], ModelFixtures.Gaussian(9, 3 << 20, 1), TensorDType.F16);
        var odd = ModelWriters.Safetensors([big], new Dictionary<string, string> { ["pad"] = "x" }, padTo: 1);
        var even = ModelWriters.Safetensors([big], padTo: 8);
        var a = Print(dir, "odd", odd);
        var b = Print(dir, "even", even);
        Assert.NotEqual(0, (odd.Length - (3L << 21)) % 2);
        Assert.Equal(a.ModelIdHex, b.ModelIdHex);
        var values = TensorValues.ReadAll(File.OpenHandle(Path.Combine(dir.Path, "even")), ModelReader.Read(Path.Combine(dir.Path, "even")).Tensors[0])!;
        var positions = Fingerprinter.SketchPositions([3, 1 << 20], 256);
        Assert.Equal(positions.Select(p => values[p]), a.Tensors[0].Sketch);
    }

    [Property(MaxTest = 30)]
    public bool Property_model_id_is_invariant_under_renaming_reordering_and_container(PositiveInt seedArg)
    {
        using var dir = new TempDir();
        var seed = seedArg.Get % 1_000_000;
        var rng = new Random(seed);
        var tensors = Enumerable.Range(0, rng.Next(1, 6)).Select(i =>
        {
            long[] shape = [rng.Next(1, 9), rng.Next(1, 9)];
            return new FixtureTensor($"model.diffusion_model.t{i}.weight", shape, ModelFixtures.Gaussian(seed + i, shape[0] * shape[1], 0.1));
        }).ToList();
        var renamed = tensors.OrderBy(_ => rng.Next()).Select((t, i) => t.Renamed($"model.diffusion_model.x{rng.Next()}_{i}.weight")).ToList();
        var a = Print(dir, "a", ModelWriters.Safetensors(tensors));
        var b = Print(dir, "b.pt", ModelWriters.TorchZip(renamed, new ModelWriters.TorchOptions { Wrapper = "state_dict" }));
        var c = Print(dir, "c", ModelWriters.LegacyTorch(renamed));

        // Up-cast: fp16 values stored as fp16 and as fp32 are the same model.
        var halves = tensors.Select(t => t with { Values = [.. t.Values.Select(v => (float)(Half)v)] }).ToList();
        var d = Print(dir, "d", ModelWriters.Safetensors(halves.Select(t => t.As(TensorDType.F16))));
        var e = Print(dir, "e.pt", ModelWriters.TorchZip(halves));
        return a.ModelIdHex == b.ModelIdHex && b.ModelIdHex == c.ModelIdHex && d.ModelIdHex == e.ModelIdHex && d.ModelIdHex != a.ModelIdHex;
    }
}
