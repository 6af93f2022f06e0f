using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>How one original (LDM/SGM/OpenCLIP/BFL/SAI) tensor appears in the diffusers layout.</summary>
public enum LayoutOp
{
    /// <summary>Same values under the diffusers name (a 1×1 conv may become a linear: shape given).</summary>
    Same,

    /// <summary>Rows split into the diffusers tensors (fused qkv, Flux linear1), sizes in <see cref="LayoutEntry.Rows"/>.</summary>
    Split,

    /// <summary>The two row halves swapped (shift, scale → scale, shift).</summary>
    Swap,

    /// <summary>Stored transposed (OpenCLIP text_projection).</summary>
    Transpose,

    /// <summary>Kept only in the original layout (OpenCLIP logit_scale).</summary>
    Drop,
}

/// <summary>One tensor in both layouts.</summary>
public sealed record LayoutEntry(string Component, string Original, long[] Shape, LayoutOp Op, string[] Diffusers, long[]? Rows = null, long[]? DiffusersShape = null);

/// <summary>
/// Tiny stand-ins of SD1.x, SD2.x, SDXL (base, refiner), SD3 and Flux with the real key names of both the
/// original single-file layout and the diffusers folder layout, derived from the block structure the way
/// diffusers' converters walk it (two resnets per UNet level, attention per level, four VAE levels), with fused
/// qkv, the Flux single-block linear1, swapped final modulation halves, OpenCLIP in_proj and the transposed
/// text projection. Values are Gaussian from a seed; nothing is downloaded.
/// </summary>
public static class LayoutFixtures
{
    public static readonly string[] Architectures = ["sd1", "sd2", "sdxl", "sdxl-refiner", "sd3", "flux"];

    /// <summary>LDM prefix of each component in an original single file.</summary>
    public static string Prefix(string arch, string component) => (arch, component) switch
    {
        ("sd1" or "sd2", "denoiser") or ("sdxl" or "sdxl-refiner", "denoiser") or ("sd3", "denoiser") => "model.diffusion_model.",
        ("flux", "denoiser") => string.Empty, // BFL files carry bare names
        ("sd1", "te1") => "cond_stage_model.transformer.",
        ("sd2", "te1") => "cond_stage_model.model.",
        ("sdxl", "te1") => "conditioner.embedders.0.transformer.",
        ("sdxl", "te2") => "conditioner.embedders.1.model.",
        ("sdxl-refiner", "te2") => "conditioner.embedders.0.model.",
        (_, "vae") => "first_stage_model.",
        _ => throw new ArgumentException($"{arch}/{component}"),
    };

    /// <summary>The diffusers folder of a component.</summary>
    public static string Folder(string arch, string component) => component switch
    {
        "denoiser" => arch is "sd3" or "flux" ? "transformer" : "unet",
        "te1" => "text_encoder",
        "te2" => "text_encoder_2",
        "vae" => "vae",
        _ => throw new ArgumentException(component),
    };

    /// <summary>Every tensor of the architecture in both layouts.</summary>
    public static List<LayoutEntry> Entries(string arch, int blocks = 2)
    {
        var list = new List<LayoutEntry>();
        switch (arch)
        {
            case "sd1":
                Unet(list, [true, true, true, false], conv1x1: true, labelEmb: false);
                HfClip(list, "te1");
                break;
            case "sd2":
                Unet(list, [true, true, true, false], conv1x1: false, labelEmb: false);
                OpenClip(list, "te1", projection: false);
                break;
            case "sdxl":
                Unet(list, [false, true, true], conv1x1: false, labelEmb: true);
                HfClip(list, "te1");
                OpenClip(list, "te2", projection: true);
                break;
            case "sdxl-refiner":
                Unet(list, [false, true, true, false], conv1x1: false, labelEmb: true);
                OpenClip(list, "te2", projection: true);
                break;
            case "sd3":
                Sd3(list, blocks);
                break;
            case "flux":
                Flux(list, blocks);
                break;
            default:
                throw new ArgumentException(arch);
        }

        Vae(list);
        return list;
    }

    private static void Same(List<LayoutEntry> l, string c, string o, long[] shape, string d, long[]? dShape = null) => l.Add(new(c, o, shape, LayoutOp.Same, [d], null, dShape));

    private static void Unet(List<LayoutEntry> l, bool[] attn, bool conv1x1, bool labelEmb)
    {
        const long C = 8;
        const string D = "denoiser";
        var levels = attn.Length;
        long[] proj = conv1x1 ? [C, C, 1, 1] : [C, C];
        Same(l, D, "input_blocks.0.0.weight", [C, 4, 3, 3], "conv_in.weight");
        Same(l, D, "input_blocks.0.0.bias", [C], "conv_in.bias");
        void Resnet(string o, string d, bool shortcut)
        {
            Same(l, D, o + "in_layers.0.weight", [C], d + "norm1.weight");
            Same(l, D, o + "in_layers.2.weight", [C, C, 3, 3], d + "conv1.weight");
            Same(l, D, o + "emb_layers.1.weight", [C, 4 * C], d + "time_emb_proj.weight");
            Same(l, D, o + "out_layers.0.weight", [C], d + "norm2.weight");
            Same(l, D, o + "out_layers.3.weight", [C, C, 3, 3], d + "conv2.weight");
            if (shortcut)
            {
                Same(l, D, o + "skip_connection.weight", [C, C, 1, 1], d + "conv_shortcut.weight");
            }
        }

        void Attention(string o, string d)
        {
            Same(l, D, o + "norm.weight", [C], d + "norm.weight");
            Same(l, D, o + "proj_in.weight", proj, d + "proj_in.weight");
            Same(l, D, o + "transformer_blocks.0.attn1.to_q.weight", [C, C], d + "transformer_blocks.0.attn1.to_q.weight");
            Same(l, D, o + "transformer_blocks.0.attn2.to_k.weight", [C, 12], d + "transformer_blocks.0.attn2.to_k.weight");
            Same(l, D, o + "transformer_blocks.0.ff.net.0.proj.weight", [4 * C, C], d + "transformer_blocks.0.ff.net.0.proj.weight");
            Same(l, D, o + "proj_out.weight", proj, d + "proj_out.weight");
        }

        for (var i = 0; i < levels; i++)
        {
            for (var j = 0; j < 2; j++)
            {
                var k = 1 + (3 * i) + j;
                Resnet($"input_blocks.{k}.0.", $"down_blocks.{i}.resnets.{j}.", shortcut: i > 0 && j == 0);
                if (attn[i])
                {
                    Attention($"input_blocks.{k}.1.", $"down_blocks.{i}.attentions.{j}.");
                }
            }

            if (i < levels - 1)
            {
                Same(l, D, $"input_blocks.{3 * (i + 1)}.0.op.weight", [C, C, 3, 3], $"down_blocks.{i}.downsamplers.0.conv.weight");
            }
        }

        Resnet("middle_block.0.", "mid_block.resnets.0.", false);
        Attention("middle_block.1.", "mid_block.attentions.0.");
        Resnet("middle_block.2.", "mid_block.resnets.1.", false);
        for (var u = 0; u < levels; u++)
        {
            var hasAttn = attn[levels - 1 - u];
            for (var j = 0; j < 3; j++)
            {
                var k = (3 * u) + j;
                Resnet($"output_blocks.{k}.0.", $"up_blocks.{u}.resnets.{j}.", shortcut: true);
                if (hasAttn)
                {
                    Attention($"output_blocks.{k}.1.", $"up_blocks.{u}.attentions.{j}.");
                }
            }

            if (u < levels - 1)
            {
                Same(l, D, $"output_blocks.{(3 * u) + 2}.{(hasAttn ? 2 : 1)}.conv.weight", [C, C, 3, 3], $"up_blocks.{u}.upsamplers.0.conv.weight");
            }
        }

        Same(l, D, "time_embed.0.weight", [4 * C, C], "time_embedding.linear_1.weight");
        Same(l, D, "time_embed.2.weight", [4 * C, 4 * C], "time_embedding.linear_2.weight");
        if (labelEmb)
        {
            Same(l, D, "label_emb.0.0.weight", [4 * C, 20], "add_embedding.linear_1.weight");
            Same(l, D, "label_emb.0.2.weight", [4 * C, 4 * C], "add_embedding.linear_2.weight");
        }

        Same(l, D, "out.0.weight", [C], "conv_norm_out.weight");
        Same(l, D, "out.2.weight", [4, C, 3, 3], "conv_out.weight");
    }

    private static void HfClip(List<LayoutEntry> l, string c)
    {
        const long W = 12;
        foreach (var n in new[] { "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight" })
        {
            Same(l, c, n, [20, W], n);
        }

        foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
        {
            Same(l, c, $"text_model.encoder.layers.0.self_attn.{p}.weight", [W, W], $"text_model.encoder.layers.0.self_attn.{p}.weight");
        }

        Same(l, c, "text_model.encoder.layers.0.mlp.fc1.weight", [4 * W, W], "text_model.encoder.layers.0.mlp.fc1.weight");
        Same(l, c, "text_model.final_layer_norm.weight", [W], "text_model.final_layer_norm.weight");
    }

    private static void OpenClip(List<LayoutEntry> l, string c, bool projection)
    {
        const long W = 16;
        Same(l, c, "token_embedding.weight", [20, W], "text_model.embeddings.token_embedding.weight");
        Same(l, c, "positional_embedding", [10, W], "text_model.embeddings.position_embedding.weight");
        for (var k = 0; k < 2; k++)
        {
            var o = $"transformer.resblocks.{k}.";
            var d = $"text_model.encoder.layers.{k}.";
            l.Add(new(c, o + "attn.in_proj_weight", [3 * W, W], LayoutOp.Split, [d + "self_attn.q_proj.weight", d + "self_attn.k_proj.weight", d + "self_attn.v_proj.weight"], [W, W, W]));
            l.Add(new(c, o + "attn.in_proj_bias", [3 * W], LayoutOp.Split, [d + "self_attn.q_proj.bias", d + "self_attn.k_proj.bias", d + "self_attn.v_proj.bias"], [W, W, W]));
            Same(l, c, o + "attn.out_proj.weight", [W, W], d + "self_attn.out_proj.weight");
            Same(l, c, o + "ln_1.weight", [W], d + "layer_norm1.weight");
            Same(l, c, o + "ln_2.bias", [W], d + "layer_norm2.bias");
            Same(l, c, o + "mlp.c_fc.weight", [4 * W, W], d + "mlp.fc1.weight");
            Same(l, c, o + "mlp.c_proj.weight", [W, 4 * W], d + "mlp.fc2.weight");
        }

        Same(l, c, "ln_final.weight", [W], "text_model.final_layer_norm.weight");
        if (projection)
        {
            // [width, embed] in OpenCLIP, the Linear weight [embed, width] in transformers.
            l.Add(new(c, "text_projection", [W, 8], LayoutOp.Transpose, ["text_projection.weight"], null, [8, W]));
        }

        l.Add(new(c, "logit_scale", [], LayoutOp.Drop, []));
    }

    private static void Vae(List<LayoutEntry> l)
    {
        const long C = 4;
        const string V = "vae";
        Same(l, V, "encoder.conv_in.weight", [C, 3, 3, 3], "encoder.conv_in.weight");
        for (var i = 0; i < 4; i++)
        {
            for (var j = 0; j < 2; j++)
            {
                Same(l, V, $"encoder.down.{i}.block.{j}.conv1.weight", [C, C, 3, 3], $"encoder.down_blocks.{i}.resnets.{j}.conv1.weight");
                Same(l, V, $"encoder.down.{i}.block.{j}.norm2.weight", [C], $"encoder.down_blocks.{i}.resnets.{j}.norm2.weight");
            }

            if (i > 0)
            {
                Same(l, V, $"encoder.down.{i}.block.0.nin_shortcut.weight", [C, C, 1, 1], $"encoder.down_blocks.{i}.resnets.0.conv_shortcut.weight");
            }

            if (i < 3)
            {
                Same(l, V, $"encoder.down.{i}.downsample.conv.weight", [C, C, 3, 3], $"encoder.down_blocks.{i}.downsamplers.0.conv.weight");
            }

            for (var j = 0; j < 3; j++)
            {
                Same(l, V, $"decoder.up.{i}.block.{j}.conv2.weight", [C, C, 3, 3], $"decoder.up_blocks.{3 - i}.resnets.{j}.conv2.weight");
            }

            if (i > 0)
            {
                Same(l, V, $"decoder.up.{i}.upsample.conv.weight", [C, C, 3, 3], $"decoder.up_blocks.{3 - i}.upsamplers.0.conv.weight");
            }
        }

        foreach (var s in new[] { "encoder", "decoder" })
        {
            Same(l, V, $"{s}.mid.block_1.conv1.weight", [C, C, 3, 3], $"{s}.mid_block.resnets.0.conv1.weight");
            Same(l, V, $"{s}.mid.block_2.norm1.weight", [C], $"{s}.mid_block.resnets.1.norm1.weight");
            Same(l, V, $"{s}.mid.attn_1.norm.weight", [C], $"{s}.mid_block.attentions.0.group_norm.weight");
            foreach (var (o, d) in new[] { ("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("proj_out", "to_out.0") })
            {
                // 1×1 convs in LDM, linears in diffusers.
                Same(l, V, $"{s}.mid.attn_1.{o}.weight", [C, C, 1, 1], $"{s}.mid_block.attentions.0.{d}.weight", [C, C]);
            }

            Same(l, V, $"{s}.norm_out.weight", [C], $"{s}.conv_norm_out.weight");
        }

        Same(l, V, "quant_conv.weight", [2 * C, 2 * C, 1, 1], "quant_conv.weight");
    }

    private static void Final(List<LayoutEntry> l, long h)
    {
        Same(l, "denoiser", "final_layer.linear.weight", [16, h], "proj_out.weight");
        l.Add(new("denoiser", "final_layer.adaLN_modulation.1.weight", [2 * h, h], LayoutOp.Swap, ["norm_out.linear.weight"]));
        l.Add(new("denoiser", "final_layer.adaLN_modulation.1.bias", [2 * h], LayoutOp.Swap, ["norm_out.linear.bias"]));
    }

    private static void Flux(List<LayoutEntry> l, int blocks)
    {
        const long H = 8;
        const string D = "denoiser";
        Same(l, D, "img_in.weight", [H, 16], "x_embedder.weight");
        Same(l, D, "txt_in.weight", [H, 12], "context_embedder.weight");
        foreach (var (o, d) in new[] { ("time_in", "timestep_embedder"), ("vector_in", "text_embedder"), ("guidance_in", "guidance_embedder") })
        {
            Same(l, D, $"{o}.in_layer.weight", [H, 6], $"time_text_embed.{d}.linear_1.weight");
            Same(l, D, $"{o}.out_layer.weight", [H, H], $"time_text_embed.{d}.linear_2.weight");
        }

        for (var k = 0; k < blocks; k++)
        {
            var o = $"double_blocks.{k}.";
            var d = $"transformer_blocks.{k}.";
            foreach (var s in new[] { "weight", "bias" })
            {
                long[] shape = s == "weight" ? [3 * H, H] : [3 * H];
                l.Add(new(D, o + "img_attn.qkv." + s, shape, LayoutOp.Split, [d + "attn.to_q." + s, d + "attn.to_k." + s, d + "attn.to_v." + s], [H, H, H]));
                l.Add(new(D, o + "txt_attn.qkv." + s, shape, LayoutOp.Split, [d + "attn.add_q_proj." + s, d + "attn.add_k_proj." + s, d + "attn.add_v_proj." + s], [H, H, H]));
            }

            Same(l, D, o + "img_attn.proj.weight", [H, H], d + "attn.to_out.0.weight");
            Same(l, D, o + "txt_attn.proj.weight", [H, H], d + "attn.to_add_out.weight");
            Same(l, D, o + "img_attn.norm.query_norm.scale", [4], d + "attn.norm_q.weight");
            Same(l, D, o + "img_attn.norm.key_norm.scale", [4], d + "attn.norm_k.weight");
            Same(l, D, o + "txt_attn.norm.query_norm.scale", [4], d + "attn.norm_added_q.weight");
            Same(l, D, o + "txt_attn.norm.key_norm.scale", [4], d + "attn.norm_added_k.weight");
            Same(l, D, o + "img_mlp.0.weight", [4 * H, H], d + "ff.net.0.proj.weight");
            Same(l, D, o + "img_mlp.2.weight", [H, 4 * H], d + "ff.net.2.weight");
            Same(l, D, o + "txt_mlp.0.weight", [4 * H, H], d + "ff_context.net.0.proj.weight");
            Same(l, D, o + "txt_mlp.2.weight", [H, 4 * H], d + "ff_context.net.2.weight");
            Same(l, D, o + "img_mod.lin.weight", [6 * H, H], d + "norm1.linear.weight");
            Same(l, D, o + "txt_mod.lin.weight", [6 * H, H], d + "norm1_context.linear.weight");
        }

        for (var k = 0; k < blocks + 1; k++)
        {
            var o = $"single_blocks.{k}.";
            var d = $"single_transformer_blocks.{k}.";
            foreach (var s in new[] { "weight", "bias" })
            {
                long[] shape = s == "weight" ? [7 * H, H] : [7 * H];
                l.Add(new(D, o + "linear1." + s, shape, LayoutOp.Split, [d + "attn.to_q." + s, d + "attn.to_k." + s, d + "attn.to_v." + s, d + "proj_mlp." + s], [H, H, H, 4 * H]));
            }

            Same(l, D, o + "linear2.weight", [H, 5 * H], d + "proj_out.weight");
            Same(l, D, o + "norm.query_norm.scale", [4], d + "attn.norm_q.weight");
            Same(l, D, o + "norm.key_norm.scale", [4], d + "attn.norm_k.weight");
            Same(l, D, o + "modulation.lin.weight", [3 * H, H], d + "norm.linear.weight");
        }

        Final(l, H);
    }

    private static void Sd3(List<LayoutEntry> l, int blocks)
    {
        const long H = 8;
        const string D = "denoiser";
        Same(l, D, "pos_embed", [1, 16, H], "pos_embed.pos_embed");
        Same(l, D, "x_embedder.proj.weight", [H, 16, 2, 2], "pos_embed.proj.weight");
        Same(l, D, "context_embedder.weight", [H, 12], "context_embedder.weight");
        Same(l, D, "t_embedder.mlp.0.weight", [H, 6], "time_text_embed.timestep_embedder.linear_1.weight");
        Same(l, D, "t_embedder.mlp.2.weight", [H, H], "time_text_embed.timestep_embedder.linear_2.weight");
        Same(l, D, "y_embedder.mlp.0.weight", [H, 10], "time_text_embed.text_embedder.linear_1.weight");
        Same(l, D, "y_embedder.mlp.2.weight", [H, H], "time_text_embed.text_embedder.linear_2.weight");
        for (var k = 0; k < blocks; k++)
        {
            var last = k == blocks - 1;
            var o = $"joint_blocks.{k}.";
            var d = $"transformer_blocks.{k}.";
            foreach (var s in new[] { "weight", "bias" })
            {
                long[] shape = s == "weight" ? [3 * H, H] : [3 * H];
                l.Add(new(D, o + "x_block.attn.qkv." + s, shape, LayoutOp.Split, [d + "attn.to_q." + s, d + "attn.to_k." + s, d + "attn.to_v." + s], [H, H, H]));
                l.Add(new(D, o + "context_block.attn.qkv." + s, shape, LayoutOp.Split, [d + "attn.add_q_proj." + s, d + "attn.add_k_proj." + s, d + "attn.add_v_proj." + s], [H, H, H]));
                if (last)
                {
                    l.Add(new(D, o + "context_block.adaLN_modulation.1." + s, s == "weight" ? [2 * H, H] : [2 * H], LayoutOp.Swap, [d + "norm1_context.linear." + s]));
                }
                else
                {
                    Same(l, D, o + "context_block.adaLN_modulation.1." + s, s == "weight" ? [6 * H, H] : [6 * H], d + "norm1_context.linear." + s);
                }
            }

            Same(l, D, o + "x_block.attn.proj.weight", [H, H], d + "attn.to_out.0.weight");
            Same(l, D, o + "x_block.attn.ln_q.weight", [4], d + "attn.norm_q.weight");
            Same(l, D, o + "context_block.attn.ln_k.weight", [4], d + "attn.norm_added_k.weight");
            Same(l, D, o + "x_block.mlp.fc1.weight", [4 * H, H], d + "ff.net.0.proj.weight");
            Same(l, D, o + "x_block.mlp.fc2.weight", [H, 4 * H], d + "ff.net.2.weight");
            Same(l, D, o + "x_block.adaLN_modulation.1.weight", [6 * H, H], d + "norm1.linear.weight");
            if (!last)
            {
                Same(l, D, o + "context_block.attn.proj.weight", [H, H], d + "attn.to_add_out.weight");
                Same(l, D, o + "context_block.mlp.fc1.weight", [4 * H, H], d + "ff_context.net.0.proj.weight");
                Same(l, D, o + "context_block.mlp.fc2.weight", [H, 4 * H], d + "ff_context.net.2.weight");
            }
        }

        Final(l, H);
    }

    /// <summary>Original-layout values (Gaussian, norm-like 1-D tensors around 1) for every entry.</summary>
    public static Dictionary<string, float[]> Values(List<LayoutEntry> entries, int seed) =>
        entries.Select((e, i) => (e, v: ModelFixtures.Gaussian(seed * 7919 + i, e.Shape.Aggregate(1L, (a, b) => a * b), 0.02)))
            .ToDictionary(p => p.e.Component + "/" + p.e.Original, p => p.v, StringComparer.Ordinal);

    /// <summary>The original single file's tensors (component prefixes applied).</summary>
    public static List<FixtureTensor> Original(string arch, List<LayoutEntry> entries, Dictionary<string, float[]> values, string? denoiserPrefix = null) =>
        [.. entries.Select(e => new FixtureTensor((e.Component == "denoiser" && denoiserPrefix is not null ? denoiserPrefix : Prefix(arch, e.Component)) + e.Original, e.Shape, values[e.Component + "/" + e.Original]))];

    /// <summary>The diffusers tensors of each component folder, converted as diffusers' converters do.</summary>
    public static Dictionary<string, List<FixtureTensor>> Diffusers(List<LayoutEntry> entries, Dictionary<string, float[]> values)
    {
        var result = new Dictionary<string, List<FixtureTensor>>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (!result.TryGetValue(e.Component, out var list))
            {
                result[e.Component] = list = [];
            }

            var v = values[e.Component + "/" + e.Original];
            var perRow = e.Shape.Length == 0 ? 1 : v.Length / Math.Max(1, e.Shape[0]);
            switch (e.Op)
            {
                case LayoutOp.Same:
                    list.Add(new FixtureTensor(e.Diffusers[0], e.DiffusersShape ?? e.Shape, v));
                    break;
                case LayoutOp.Split:
                    {
                        long start = 0;
                        for (var i = 0; i < e.Diffusers.Length; i++)
                        {
                            var rows = e.Rows![i];
                            list.Add(new FixtureTensor(e.Diffusers[i], [rows, .. e.Shape[1..]], v[(int)(start * perRow)..(int)((start + rows) * perRow)]));
                            start += rows;
                        }

                        break;
                    }

                case LayoutOp.Swap:
                    {
                        var half = v.Length / 2;
                        list.Add(new FixtureTensor(e.Diffusers[0], e.Shape, [.. v[half..], .. v[..half]]));
                        break;
                    }

                case LayoutOp.Transpose:
                    list.Add(new FixtureTensor(e.Diffusers[0], [e.Shape[1], e.Shape[0]], Transpose(v, e.Shape[0], e.Shape[1])));
                    break;

                case LayoutOp.Drop:
                    break;
            }
        }

        return result;
    }

    /// <summary>
    /// The inverse conversion (diffusers → original, as diffusers' <c>convert_*_to_original</c> scripts and ComfyUI
    /// do): fuse split rows, swap the halves back, transpose back. Dropped tensors come back from <paramref name="dropped"/>.
    /// </summary>
    public static Dictionary<string, float[]> Inverse(List<LayoutEntry> entries, Dictionary<string, List<FixtureTensor>> diffusers, Dictionary<string, float[]> dropped)
    {
        var byName = diffusers.SelectMany(p => p.Value.Select(t => (Key: p.Key + "/" + t.Name, t.Values))).ToDictionary(p => p.Key, p => p.Values, StringComparer.Ordinal);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var key = e.Component + "/" + e.Original;
            float[] D(int i) => byName[e.Component + "/" + e.Diffusers[i]];
            result[key] = e.Op switch
            {
                LayoutOp.Same => D(0),
                LayoutOp.Split => [.. Enumerable.Range(0, e.Diffusers.Length).SelectMany(D)],
                LayoutOp.Swap => [.. D(0)[(D(0).Length / 2)..], .. D(0)[..(D(0).Length / 2)]],
                LayoutOp.Transpose => Transpose(D(0), e.Shape[1], e.Shape[0]),
                _ => dropped[key],
            };
        }

        return result;
    }

    private static float[] Transpose(float[] v, long rows, long cols)
    {
        var t = new float[v.Length];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                t[(j * rows) + i] = v[(i * cols) + j];
            }
        }

        return t;
    }

    /// <summary>Writes a diffusers folder (model_index.json + one folder per component).</summary>
    public static void WriteFolder(string dir, string arch, Dictionary<string, List<FixtureTensor>> components, TensorDType dtype = TensorDType.F32)
    {
        Directory.CreateDirectory(dir);
        var folders = components.Keys.Select(c => Folder(arch, c)).ToList();
        File.WriteAllText(Path.Combine(dir, "model_index.json"), "{\"_class_name\":\"DiffusionPipeline\"," + string.Join(',', folders.Select(f => $"\"{f}\":[\"diffusers\",\"X\"]")) + "}");
        foreach (var (component, tensors) in components)
        {
            var sub = Path.Combine(dir, Folder(arch, component));
            Directory.CreateDirectory(sub);
            File.WriteAllText(Path.Combine(sub, "config.json"), "{}");
            var file = component.StartsWith("te", StringComparison.Ordinal) ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
            File.WriteAllBytes(Path.Combine(sub, file), ModelWriters.Safetensors(ModelFixtures.Cast(tensors, dtype)));
        }
    }
}
