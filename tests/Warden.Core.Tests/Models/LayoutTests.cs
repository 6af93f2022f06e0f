using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// One model, every layout: original single files (LDM/SGM/OpenCLIP/BFL/SAI names, fused qkv, swapped
/// modulation halves, transposed projections) and diffusers folders must give the same canonical tensors —
/// name and value — for SD1.x, SD2.x, SDXL base and refiner, SD3 and Flux.
/// </summary>
public class LayoutTests
{
    private static ModelFingerprint Print(string path, bool casts = false) =>
        Fingerprinter.Compute(ModelReader.Read(path), new FingerprintOptions { FileHashes = false, CastPaths = casts });

    // (component:name, tensor hash) of every canonical tensor: equal multisets mean the same tensors under the same names.
    private static List<string> Identity(ModelFingerprint fp) =>
        [.. fp.Tensors.Select(t => t.Canonical.Key + "=" + (t.Hash is null ? "-" : Convert.ToHexStringLower(t.Hash))).Order(StringComparer.Ordinal)];

    public static TheoryData<string> Architectures() => [.. LayoutFixtures.Architectures];

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Original_single_file_and_diffusers_folder_are_the_same_model(string arch)
    {
        using var dir = new TempDir();
        var entries = LayoutFixtures.Entries(arch);
        var values = LayoutFixtures.Values(entries, seed: 3);
        var single = Print(dir.File("model.safetensors", ModelWriters.Safetensors(LayoutFixtures.Original(arch, entries, values))), casts: true);
        var folder = Path.Combine(dir.Path, "diffusers");
        LayoutFixtures.WriteFolder(folder, arch, LayoutFixtures.Diffusers(entries, values));
        var diffusers = Print(folder);

        Assert.Equal(Identity(single), Identity(diffusers));
        Assert.Equal(single.ModelIdHex, diffusers.ModelIdHex);
        Assert.Equal(single.Components.Select(c => c.Name + c.IdHex), diffusers.Components.Select(c => c.Name + c.IdHex));

        // Nothing stays under an original-only name: every canonical name is a diffusers one.
        Assert.DoesNotContain(single.Tensors, t => t.Canonical.Name.Contains("input_blocks", StringComparison.Ordinal) || t.Canonical.Name.Contains("qkv", StringComparison.Ordinal)
            || t.Canonical.Name.Contains("resblocks", StringComparison.Ordinal) || t.Canonical.Name.Contains(".mid.", StringComparison.Ordinal) || t.Canonical.Name.Contains("shift_scale", StringComparison.Ordinal));

        // fp16 diffusers files match the original's registered fp16 cast path exactly.
        var half = Path.Combine(dir.Path, "half");
        LayoutFixtures.WriteFolder(half, arch, LayoutFixtures.Diffusers(entries, values), TensorDType.F16);
        Assert.Equal(Convert.ToHexStringLower(single.CastModelIds["fp16"]), Print(half).ModelIdHex);

        // Another model of the same architecture matches nothing.
        var other = Print(dir.File("other.safetensors", ModelWriters.Safetensors(LayoutFixtures.Original(arch, entries, LayoutFixtures.Values(entries, seed: 4)))));
        Assert.NotEqual(single.ModelIdHex, other.ModelIdHex);
        Assert.Empty(single.Components.Select(c => c.IdHex).Intersect(other.Components.Select(c => c.IdHex)));
    }

    [Theory]
    [InlineData("flux", "model.diffusion_model.")]
    [InlineData("flux", "")]
    [InlineData("sd3", "model.diffusion_model.")]
    public void Bfl_and_ComfyUI_prefixes_and_gguf_copies_are_the_same_transformer(string arch, string prefix)
    {
        using var dir = new TempDir();
        var entries = LayoutFixtures.Entries(arch).Where(e => e.Component == "denoiser").ToList();
        var values = LayoutFixtures.Values(entries, seed: 5);
        var original = LayoutFixtures.Original(arch, entries, values, prefix);
        var st = Print(dir.File("a.safetensors", ModelWriters.Safetensors(original)));
        var gguf = Print(dir.File("a.gguf", ModelWriters.Gguf(original, [new("general.architecture", 8, arch)])));
        var folder = Path.Combine(dir.Path, "d");
        LayoutFixtures.WriteFolder(folder, arch, LayoutFixtures.Diffusers(entries, values));
        Assert.Equal(Identity(st), Identity(Print(folder)));
        Assert.Equal(Identity(st), Identity(gguf));
    }

    [Fact]
    public void Fused_rows_split_inside_quantised_blocks()
    {
        // Q8_0 blocks lie within rows, so a fused qkv splits on block boundaries: each piece dequantises to the
        // same values as the matching rows of the whole tensor.
        using var dir = new TempDir();
        var qkv = new FixtureTensor("double_blocks.0.img_attn.qkv.weight", [96, 32], ModelFixtures.Gaussian(1, 96 * 32, 0.05), TensorDType.Q8_0);
        var fp = Print(dir.File("q.gguf", ModelWriters.Gguf([qkv], [new("general.architecture", 8, "flux")])));
        Assert.Equal(["transformer_blocks.0.attn.to_q.weight", "transformer_blocks.0.attn.to_k.weight", "transformer_blocks.0.attn.to_v.weight"], fp.Tensors.Select(t => t.Canonical.Name));
        Assert.All(fp.Tensors, t => Assert.Equal([32L, 32], t.Shape));

        var whole = Print(dir.File("w.gguf", ModelWriters.Gguf([qkv.Renamed("whole.weight")], [new("general.architecture", 8, "flux")])));
        var rows = whole.Tensors.Single().Rows!;
        Assert.Equal(rows, fp.Tensors.SelectMany(t => t.Rows!));
    }

    [Fact]
    public void Openclip_projection_is_read_transposed()
    {
        using var dir = new TempDir();
        var p = ModelFixtures.Gaussian(2, 16 * 8, 0.1);
        var fp = Print(dir.File("te.safetensors", ModelWriters.Safetensors([new FixtureTensor("conditioner.embedders.1.model.text_projection", [16, 8], p)])));
        var t = fp.Tensors.Single();
        Assert.Equal("te2:text_projection.weight", t.Canonical.Key);
        Assert.Equal([8L, 16], t.Shape);
        var positions = Fingerprinter.SketchPositions([8, 16], 256);
        Assert.Equal(positions.Select(k => p[((k % 16) * 8) + (k / 16)]), t.Sketch);
    }

    public static TheoryData<string, string, string> LoraSpellings() => new()
    {
        // SDXL kohya (SGM block names) ↔ diffusers training scripts ↔ PEFT.
        { "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora", "base_model.model.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q" },
        { "lora_unet_output_blocks_3_1_proj_in", "unet.up_blocks.1.attentions.0.proj_in.lora", "base_model.model.up_blocks.1.attentions.0.proj_in" },
        { "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k", "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora", "base_model.model.mid_block.attentions.0.transformer_blocks.0.attn2.to_k" },
        { "lora_unet_input_blocks_7_0_emb_layers_1", "unet.down_blocks.2.resnets.0.time_emb_proj.lora", "base_model.model.down_blocks.2.resnets.0.time_emb_proj" },
        { "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer", "base_model.model.text_encoder.text_model.encoder.layers.0.self_attn.q_proj" },
        { "lora_te2_text_model_encoder_layers_1_mlp_fc1", "text_encoder_2.text_model.encoder.layers.1.mlp.fc1.lora_linear_layer", "base_model.model.text_encoder_2.text_model.encoder.layers.1.mlp.fc1" },

        // Flux: kohya and diffusers names of unfused layers.
        { "lora_unet_double_blocks_0_img_mlp_0", "transformer.transformer_blocks.0.ff.net.0.proj.lora", "base_model.model.transformer.transformer_blocks.0.ff.net.0.proj" },
        { "lora_unet_single_blocks_3_linear2", "transformer.single_transformer_blocks.3.proj_out.lora", "base_model.model.transformer.single_transformer_blocks.3.proj_out" },
    };

    [Theory]
    [MemberData(nameof(LoraSpellings))]
    public void Lora_spellings_of_one_module_are_one_adapter(string kohya, string diffusers, string peft)
    {
        using var dir = new TempDir();
        var down = ModelFixtures.Gaussian(11, 4 * 24, 0.1);
        var up = ModelFixtures.Gaussian(12, 16 * 4, 0.1);
        var k = Print(dir.File("k.safetensors", ModelWriters.Safetensors([
            new FixtureTensor(kohya + ".lora_down.weight", [4, 24], down), new FixtureTensor(kohya + ".lora_up.weight", [16, 4], up), new FixtureTensor(kohya + ".alpha", [], [4])])));
        var dPath = dir.File("d.safetensors", ModelWriters.Safetensors([
            new FixtureTensor(diffusers + ".down.weight", [4, 24], down), new FixtureTensor(diffusers + ".up.weight", [16, 4], up)]));
        var d = Print(dPath);
        var p = Print(dir.File("p.safetensors", ModelWriters.Safetensors([
            new FixtureTensor(peft + ".lora_A.weight", [4, 24], down), new FixtureTensor(peft + ".lora_B.weight", [16, 4], up)])));

        Assert.Equal(k.Lora.Single().Key, d.Lora.Single().Key);
        Assert.Equal(k.Lora.Single().Key, p.Lora.Single().Key);
        Assert.Equal(k.ModelIdHex, d.ModelIdHex);
        Assert.Equal(k.ModelIdHex, p.ModelIdHex);
        Assert.Equal("lora", ModelArchitecture.Classify(ModelReader.Read(dPath)).Kind);
    }

    [Theory]
    [InlineData("lora_unet_double_blocks_1_img_attn_qkv", "transformer.transformer_blocks.1.attn.to_{0}", "q,k,v", 3)]
    [InlineData("lora_unet_double_blocks_0_txt_attn_qkv", "transformer.transformer_blocks.0.attn.add_{0}_proj", "q,k,v", 3)]
    [InlineData("lora_unet_single_blocks_2_linear1", "transformer.single_transformer_blocks.2.{0}", "attn.to_q,attn.to_k,attn.to_v,proj_mlp", 7)]
    public void Fused_kohya_lora_equals_split_diffusers_lora(string kohya, string pattern, string pieces, int parts)
    {
        // diffusers converts a kohya Flux LoRA by copying the down factor to every piece and splitting the up rows.
        using var dir = new TempDir();
        const int H = 8;
        var down = ModelFixtures.Gaussian(21, 4 * H, 0.1);
        var up = ModelFixtures.Gaussian(22, parts * H * 4, 0.1);
        var k = Print(dir.File("k.safetensors", ModelWriters.Safetensors([
            new FixtureTensor(kohya + ".lora_down.weight", [4, H], down), new FixtureTensor(kohya + ".lora_up.weight", [parts * H, 4], up), new FixtureTensor(kohya + ".alpha", [], [4])])));
        var split = new List<FixtureTensor>();
        var row = 0;
        foreach (var piece in pieces.Split(','))
        {
            var rows = piece == "proj_mlp" ? 4 * H : H;
            var name = string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, piece);
            split.Add(new FixtureTensor(name + ".lora_A.weight", [4, H], down));
            split.Add(new FixtureTensor(name + ".lora_B.weight", [rows, 4], up[(row * 4)..((row + rows) * 4)]));
            row += rows;
        }

        var d = Print(dir.File("d.safetensors", ModelWriters.Safetensors(split)));
        Assert.Equal(pieces.Split(',').Length, k.Lora.Count);
        Assert.Equal(d.Lora.Select(m => m.Key).Order(StringComparer.Ordinal), k.Lora.Select(m => m.Key).Order(StringComparer.Ordinal));
        Assert.Equal(d.ModelIdHex, k.ModelIdHex);
    }

    [Property(MaxTest = 25)]
    public Property Conversion_and_its_inverse_keep_the_canonical_identity() =>
        Prop.ForAll(
            Gen.Elements(LayoutFixtures.Architectures).Zip(Gen.Choose(1, 3)).Zip(Gen.Choose(1, 100_000)).Zip(Gen.Elements(TensorDType.F32, TensorDType.F16, TensorDType.BF16)).ToArbitrary(),
            t =>
            {
                var (((arch, blocks), seed), dtype) = t;
                using var dir = new TempDir();
                var entries = LayoutFixtures.Entries(arch, blocks);
                var values = LayoutFixtures.Values(entries, seed);
                var shuffled = LayoutFixtures.Original(arch, entries, values).OrderBy(x => HashCode.Combine(seed, x.Name)).ToList();
                var single = Print(dir.File("m.safetensors", ModelWriters.Safetensors(ModelFixtures.Cast(shuffled, dtype))));
                var folder = Path.Combine(dir.Path, "d");
                LayoutFixtures.WriteFolder(folder, arch, LayoutFixtures.Diffusers(entries, values), dtype);
                var diffusers = Print(folder);

                // The inverse: a torch checkpoint written back in the original layout from the diffusers tensors.
                var back = LayoutFixtures.Original(arch, entries, LayoutFixtures.Inverse(entries, LayoutFixtures.Diffusers(entries, values), values));
                var torch = Print(dir.File("m.ckpt", ModelWriters.TorchZip(ModelFixtures.Cast(back, dtype))));
                return Identity(single).SequenceEqual(Identity(diffusers)) && Identity(torch).SequenceEqual(Identity(single)) && single.ModelIdHex == diffusers.ModelIdHex;
            });

    private static readonly string[] FusedNames =
    [
        "model.diffusion_model.double_blocks.0.img_attn.qkv.weight", "double_blocks.3.txt_attn.qkv.bias", "single_blocks.1.linear1.weight", "single_blocks.1.linear1.bias",
        "model.diffusion_model.joint_blocks.2.context_block.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", "conditioner.embedders.1.model.text_projection",
    ];

    [Property(MaxTest = 300)]
    public Property Split_views_stay_inside_the_stored_bytes_for_any_shape_and_type() =>
        Prop.ForAll(
            Gen.Elements(FusedNames).Zip(Gen.Choose(0, 1000)).Zip(Gen.Choose(0, 600)).Zip(Gen.Elements(TensorDType.F32, TensorDType.F16, TensorDType.Q8_0, TensorDType.Q4_K, TensorDType.Q6_K)).Zip(Gen.Elements(true, false)).ToArbitrary(),
            p =>
            {
                // Hostile or odd shapes (0 rows, rows not divisible, rows of part of a block, strided views) must
                // give views inside the stored extent that together cover the tensor exactly, or no split.
                var ((((name, rows), cols), type), strided) = p;
                long[] shape = name.EndsWith("bias", StringComparison.Ordinal) ? [rows] : [rows, cols];
                var count = shape.Aggregate(1L, (a, b) => a * b);
                var unitValues = TensorValues.UnitValues(type);
                var length = count % unitValues == 0 ? count / unitValues * TensorValues.UnitBytes(type) : 0;
                var t = new TensorInfo(name, type, shape, "f", 4096, length, strided && type is TensorDType.F32 or TensorDType.F16 ? (shape.Length == 2 ? [cols, 1] : [1]) : null);
                var doc = new ModelDocument { Path = "f", Format = ModelFormat.Safetensors };
                doc.Files.Add("f");
                doc.Tensors.Add(t);
                var views = Fingerprinter.Expand(doc);
                var inside = views.All(v => v.Tensor.Offset >= t.Offset && v.Tensor.Offset + v.Tensor.Length <= t.Offset + t.Length);
                var covered = views.Sum(v => v.Tensor.Count) == count;
                var contiguous = t.Strides is not null || views.Count == 1 || views.Zip(views.Skip(1)).All(q => q.First.Tensor.Offset + q.First.Tensor.Length == q.Second.Tensor.Offset);
                return (inside && covered && contiguous).Label($"{name} {type} [{string.Join(',', shape)}] -> {string.Join(' ', views.Select(v => $"{v.Name.Name}@{v.Tensor.Offset}+{v.Tensor.Length}"))}");
            });
}
