using System.Globalization;
using System.Text.RegularExpressions;

namespace Warden.Core.ModelFiles;

/// <summary>
/// Layout-independent tensor identities. Every layout a model host sees (LDM/CompVis and SGM single files,
/// OpenCLIP text encoders, BFL Flux and SAI SD3 originals, diffusers folders, kohya/PEFT/diffusers LoRA module
/// names) is mapped onto one canonical naming, the diffusers/transformers one, which needs no context (the LDM
/// naming needs the block layout to be known). Facts follow diffusers <c>single_file_utils.py</c>
/// (<c>convert_ldm_unet_checkpoint</c>, <c>convert_ldm_vae_checkpoint</c>, <c>convert_open_clip_checkpoint</c>,
/// <c>convert_sd3_transformer_checkpoint_to_diffusers</c>, <c>convert_flux_transformer_checkpoint_to_diffusers</c>).
/// Fused projections (qkv, OpenCLIP in_proj, Flux single-block linear1) are split into the rows diffusers keeps
/// (<see cref="RowPieces"/>), the scale/shift halves that diffusers swaps are named by meaning, and OpenCLIP's
/// <c>text_projection</c> (stored transposed) is read transposed, so both sides hash the same tensors.
/// Assumed block geometry (all SD1.x/SD2.x/SDXL UNets and every SD/SDXL/SD3/Flux VAE): two resnets per UNet
/// level, four VAE levels.
/// </summary>
public static class TensorLayouts
{
    private static readonly Dictionary<string, string> Resnet = new(StringComparer.Ordinal)
    {
        ["in_layers_0"] = "norm1",
        ["in_layers_2"] = "conv1",
        ["emb_layers_1"] = "time_emb_proj",
        ["out_layers_0"] = "norm2",
        ["out_layers_3"] = "conv2",
        ["skip_connection"] = "conv_shortcut",
    };

    private const string ResnetParts = @"(?<r>in_layers\.0|in_layers\.2|emb_layers\.1|out_layers\.0|out_layers\.3|skip_connection)";

    private static readonly Rule[] Denoiser =
    [
        // SD1.x / SD2.x / SDXL UNet (LDM and SGM names).
        new(@"input_blocks\.0\.0", _ => "conv_in"),
        new(@"input_blocks\.(?<k>\d+)\.0\.op", m => $"down_blocks.{(K(m) / 3) - 1}.downsamplers.0.conv"),
        new(@"input_blocks\.(?<k>\d+)\.0\." + ResnetParts, m => $"down_blocks.{(K(m) - 1) / 3}.resnets.{(K(m) - 1) % 3}.{Res(m)}"),
        new(@"input_blocks\.(?<k>\d+)\.1", m => $"down_blocks.{(K(m) - 1) / 3}.attentions.{(K(m) - 1) % 3}"),
        new(@"middle_block\.(?<k>[02])\." + ResnetParts, m => $"mid_block.resnets.{K(m) / 2}.{Res(m)}"),
        new(@"middle_block\.1", _ => "mid_block.attentions.0"),
        new(@"output_blocks\.(?<k>\d+)\.0\." + ResnetParts, m => $"up_blocks.{K(m) / 3}.resnets.{K(m) % 3}.{Res(m)}"),
        new(@"output_blocks\.(?<k>\d+)\.[12]\.conv", m => $"up_blocks.{K(m) / 3}.upsamplers.0.conv"),
        new(@"output_blocks\.(?<k>\d+)\.1", m => $"up_blocks.{K(m) / 3}.attentions.{K(m) % 3}"),
        new(@"time_embed\.0", _ => "time_embedding.linear_1"),
        new(@"time_embed\.2", _ => "time_embedding.linear_2"),
        new(@"label_emb\.0\.0", _ => "add_embedding.linear_1"),
        new(@"label_emb\.0\.2", _ => "add_embedding.linear_2"),
        new(@"out\.0", _ => "conv_norm_out"),
        new(@"out\.2", _ => "conv_out"),

        // Flux (BFL original / ComfyUI names).
        new(@"double_blocks\.(?<k>\d+)\.img_attn\.qkv", m => $"transformer_blocks.{K(m)}.attn.to_qkv"),
        new(@"double_blocks\.(?<k>\d+)\.txt_attn\.qkv", m => $"transformer_blocks.{K(m)}.attn.to_added_qkv"),
        new(@"double_blocks\.(?<k>\d+)\.img_attn\.proj", m => $"transformer_blocks.{K(m)}.attn.to_out.0"),
        new(@"double_blocks\.(?<k>\d+)\.txt_attn\.proj", m => $"transformer_blocks.{K(m)}.attn.to_add_out"),
        new(@"double_blocks\.(?<k>\d+)\.img_attn\.norm\.query_norm\.scale", m => $"transformer_blocks.{K(m)}.attn.norm_q.weight"),
        new(@"double_blocks\.(?<k>\d+)\.img_attn\.norm\.key_norm\.scale", m => $"transformer_blocks.{K(m)}.attn.norm_k.weight"),
        new(@"double_blocks\.(?<k>\d+)\.txt_attn\.norm\.query_norm\.scale", m => $"transformer_blocks.{K(m)}.attn.norm_added_q.weight"),
        new(@"double_blocks\.(?<k>\d+)\.txt_attn\.norm\.key_norm\.scale", m => $"transformer_blocks.{K(m)}.attn.norm_added_k.weight"),
        new(@"double_blocks\.(?<k>\d+)\.img_mlp\.0", m => $"transformer_blocks.{K(m)}.ff.net.0.proj"),
        new(@"double_blocks\.(?<k>\d+)\.img_mlp\.2", m => $"transformer_blocks.{K(m)}.ff.net.2"),
        new(@"double_blocks\.(?<k>\d+)\.txt_mlp\.0", m => $"transformer_blocks.{K(m)}.ff_context.net.0.proj"),
        new(@"double_blocks\.(?<k>\d+)\.txt_mlp\.2", m => $"transformer_blocks.{K(m)}.ff_context.net.2"),
        new(@"double_blocks\.(?<k>\d+)\.img_mod\.lin", m => $"transformer_blocks.{K(m)}.norm1.linear"),
        new(@"double_blocks\.(?<k>\d+)\.txt_mod\.lin", m => $"transformer_blocks.{K(m)}.norm1_context.linear"),
        new(@"single_blocks\.(?<k>\d+)\.linear1", m => $"single_transformer_blocks.{K(m)}.to_qkv_mlp"),
        new(@"single_blocks\.(?<k>\d+)\.linear2", m => $"single_transformer_blocks.{K(m)}.proj_out"),
        new(@"single_blocks\.(?<k>\d+)\.norm\.query_norm\.scale", m => $"single_transformer_blocks.{K(m)}.attn.norm_q.weight"),
        new(@"single_blocks\.(?<k>\d+)\.norm\.key_norm\.scale", m => $"single_transformer_blocks.{K(m)}.attn.norm_k.weight"),
        new(@"single_blocks\.(?<k>\d+)\.modulation\.lin", m => $"single_transformer_blocks.{K(m)}.norm.linear"),
        new(@"img_in", _ => "x_embedder"),
        new(@"txt_in", _ => "context_embedder"),
        new(@"time_in\.in_layer", _ => "time_text_embed.timestep_embedder.linear_1"),
        new(@"time_in\.out_layer", _ => "time_text_embed.timestep_embedder.linear_2"),
        new(@"vector_in\.in_layer", _ => "time_text_embed.text_embedder.linear_1"),
        new(@"vector_in\.out_layer", _ => "time_text_embed.text_embedder.linear_2"),
        new(@"guidance_in\.in_layer", _ => "time_text_embed.guidance_embedder.linear_1"),
        new(@"guidance_in\.out_layer", _ => "time_text_embed.guidance_embedder.linear_2"),

        // Flux and SD3 share the final layer; the original stores (shift, scale), diffusers (scale, shift).
        new(@"final_layer\.linear", _ => "proj_out"),
        new(@"final_layer\.adaLN_modulation\.1", _ => "norm_out.linear_shift_scale"),

        // SD3 / SD3.5 (SAI MMDiT names).
        new(@"pos_embed", _ => "pos_embed.pos_embed", exact: true),
        new(@"x_embedder\.proj", _ => "pos_embed.proj"),
        new(@"t_embedder\.mlp\.0", _ => "time_text_embed.timestep_embedder.linear_1"),
        new(@"t_embedder\.mlp\.2", _ => "time_text_embed.timestep_embedder.linear_2"),
        new(@"y_embedder\.mlp\.0", _ => "time_text_embed.text_embedder.linear_1"),
        new(@"y_embedder\.mlp\.2", _ => "time_text_embed.text_embedder.linear_2"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn\.qkv", m => $"transformer_blocks.{K(m)}.attn.to_qkv"),
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.attn\.qkv", m => $"transformer_blocks.{K(m)}.attn.to_added_qkv"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn\.proj", m => $"transformer_blocks.{K(m)}.attn.to_out.0"),
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.attn\.proj", m => $"transformer_blocks.{K(m)}.attn.to_add_out"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn\.ln_q", m => $"transformer_blocks.{K(m)}.attn.norm_q"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn\.ln_k", m => $"transformer_blocks.{K(m)}.attn.norm_k"),
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.attn\.ln_q", m => $"transformer_blocks.{K(m)}.attn.norm_added_q"),
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.attn\.ln_k", m => $"transformer_blocks.{K(m)}.attn.norm_added_k"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn2\.qkv", m => $"transformer_blocks.{K(m)}.attn2.to_qkv"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn2\.proj", m => $"transformer_blocks.{K(m)}.attn2.to_out.0"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn2\.ln_q", m => $"transformer_blocks.{K(m)}.attn2.norm_q"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.attn2\.ln_k", m => $"transformer_blocks.{K(m)}.attn2.norm_k"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.mlp\.fc1", m => $"transformer_blocks.{K(m)}.ff.net.0.proj"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.mlp\.fc2", m => $"transformer_blocks.{K(m)}.ff.net.2"),
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.mlp\.fc1", m => $"transformer_blocks.{K(m)}.ff_context.net.0.proj"),
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.mlp\.fc2", m => $"transformer_blocks.{K(m)}.ff_context.net.2"),
        new(@"joint_blocks\.(?<k>\d+)\.x_block\.adaLN_modulation\.1", m => $"transformer_blocks.{K(m)}.norm1.linear"),

        // The last (context-pre-only) block's context modulation is swapped like the final layer; RowPieces decides by shape.
        new(@"joint_blocks\.(?<k>\d+)\.context_block\.adaLN_modulation\.1", m => $"transformer_blocks.{K(m)}.norm1_context.linear_shift_scale"),
    ];

    private static readonly Rule[] Vae =
    [
        new(@"(?<s>encoder|decoder)\.norm_out", m => $"{m.Groups["s"].Value}.conv_norm_out"),
        new(@"encoder\.down\.(?<k>\d+)\.block\.(?<j>\d+)\.nin_shortcut", m => $"encoder.down_blocks.{K(m)}.resnets.{J(m)}.conv_shortcut"),
        new(@"encoder\.down\.(?<k>\d+)\.block\.(?<j>\d+)", m => $"encoder.down_blocks.{K(m)}.resnets.{J(m)}"),
        new(@"encoder\.down\.(?<k>\d+)\.downsample\.conv", m => $"encoder.down_blocks.{K(m)}.downsamplers.0.conv"),

        // LDM numbers decoder levels from the lowest resolution up, diffusers from the top down.
        new(@"decoder\.up\.(?<k>\d+)\.block\.(?<j>\d+)\.nin_shortcut", m => $"decoder.up_blocks.{3 - K(m)}.resnets.{J(m)}.conv_shortcut"),
        new(@"decoder\.up\.(?<k>\d+)\.block\.(?<j>\d+)", m => $"decoder.up_blocks.{3 - K(m)}.resnets.{J(m)}"),
        new(@"decoder\.up\.(?<k>\d+)\.upsample\.conv", m => $"decoder.up_blocks.{3 - K(m)}.upsamplers.0.conv"),
        new(@"(?<s>encoder|decoder)\.mid\.block_1", m => $"{m.Groups["s"].Value}.mid_block.resnets.0"),
        new(@"(?<s>encoder|decoder)\.mid\.block_2", m => $"{m.Groups["s"].Value}.mid_block.resnets.1"),
        new(@"(?<s>encoder|decoder)\.mid\.attn_1\.norm", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.group_norm"),
        new(@"(?<s>encoder|decoder)\.mid\.attn_1\.q", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_q"),
        new(@"(?<s>encoder|decoder)\.mid\.attn_1\.k", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_k"),
        new(@"(?<s>encoder|decoder)\.mid\.attn_1\.v", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_v"),
        new(@"(?<s>encoder|decoder)\.mid\.attn_1\.proj_out", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_out.0"),

        // diffusers before 0.14 named the VAE attention query/key/value/proj_attn.
        new(@"(?<s>encoder|decoder)\.mid_block\.attentions\.0\.query", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_q"),
        new(@"(?<s>encoder|decoder)\.mid_block\.attentions\.0\.key", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_k"),
        new(@"(?<s>encoder|decoder)\.mid_block\.attentions\.0\.value", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_v"),
        new(@"(?<s>encoder|decoder)\.mid_block\.attentions\.0\.proj_attn", m => $"{m.Groups["s"].Value}.mid_block.attentions.0.to_out.0"),
    ];

    private static readonly Rule[] TextEncoder =
    [
        // OpenCLIP (SD2.x text encoder, SDXL second encoder) → transformers CLIPTextModel(WithProjection).
        new(@"transformer\.resblocks\.(?<k>\d+)\.ln_1", m => $"text_model.encoder.layers.{K(m)}.layer_norm1"),
        new(@"transformer\.resblocks\.(?<k>\d+)\.ln_2", m => $"text_model.encoder.layers.{K(m)}.layer_norm2"),
        new(@"transformer\.resblocks\.(?<k>\d+)\.attn\.in_proj_weight", m => $"text_model.encoder.layers.{K(m)}.self_attn.in_proj.weight"),
        new(@"transformer\.resblocks\.(?<k>\d+)\.attn\.in_proj_bias", m => $"text_model.encoder.layers.{K(m)}.self_attn.in_proj.bias"),
        new(@"transformer\.resblocks\.(?<k>\d+)\.attn\.out_proj", m => $"text_model.encoder.layers.{K(m)}.self_attn.out_proj"),
        new(@"transformer\.resblocks\.(?<k>\d+)\.mlp\.c_fc", m => $"text_model.encoder.layers.{K(m)}.mlp.fc1"),
        new(@"transformer\.resblocks\.(?<k>\d+)\.mlp\.c_proj", m => $"text_model.encoder.layers.{K(m)}.mlp.fc2"),
        new(@"token_embedding", _ => "text_model.embeddings.token_embedding"),
        new(@"positional_embedding", _ => "text_model.embeddings.position_embedding.weight", exact: true),
        new(@"ln_final", _ => "text_model.final_layer_norm"),
        new(@"text_projection", _ => "text_projection.weight", exact: true),

        // Contrastive temperature: not part of the text encoder transformers loads.
        new(@"logit_scale", _ => null, exact: true),
    ];

    private static readonly Split[] Splits =
    [
        new(@"(?<p>.*[._]attn2?[._])to_qkv(?<s>[._](weight|bias))?", [("to_q", 1), ("to_k", 1), ("to_v", 1)], SplitKind.Equal),
        new(@"(?<p>.*[._]attn[._])to_added_qkv(?<s>[._](weight|bias))?", [("add_q_proj", 1), ("add_k_proj", 1), ("add_v_proj", 1)], SplitKind.Equal),
        new(@"(?<p>.*[._]self_attn[._])in_proj(?<s>[._](weight|bias))?", [("q_proj", 1), ("k_proj", 1), ("v_proj", 1)], SplitKind.Equal),
        new(@"(?<p>single_transformer_blocks[._]\d+[._])to_qkv_mlp(?<s>[._](weight|bias))?", [("attn.to_q", 1), ("attn.to_k", 1), ("attn.to_v", 1), ("proj_mlp", 4)], SplitKind.Hidden),
        new(@"(?<p>(.*[._])?)norm_out[._]linear(?<s>[._](weight|bias))?", [("norm_out.linear[scale]", 1), ("norm_out.linear[shift]", 1)], SplitKind.Equal),
        new(@"(?<p>(.*[._])?)norm_out[._]linear_shift_scale(?<s>[._](weight|bias))?", [("norm_out.linear[shift]", 1), ("norm_out.linear[scale]", 1)], SplitKind.Equal),
        new(@"(?<p>transformer_blocks[._]\d+[._])norm1_context[._]linear(?<s>[._](weight|bias))?", [("norm1_context.linear[scale]", 1), ("norm1_context.linear[shift]", 1)], SplitKind.Pair),
        new(@"(?<p>transformer_blocks[._]\d+[._])norm1_context[._]linear_shift_scale(?<s>[._](weight|bias))?", [("norm1_context.linear[shift]", 1), ("norm1_context.linear[scale]", 1)], SplitKind.Pair),
    ];

    private enum SplitKind
    {
        /// <summary>Equal parts (by weight).</summary>
        Equal,

        /// <summary>Parts of the hidden width (Flux linear1: q, k, v of width H, then the MLP's rest).</summary>
        Hidden,

        /// <summary>Two halves only when the tensor has exactly 2·H rows (SD3's last context block), else one piece.</summary>
        Pair,
    }

    /// <summary>The canonical (diffusers) name of a component-relative tensor name; null for tensors no other layout keeps.</summary>
    /// <param name="component">denoiser, te1–te3, vae, …</param>
    /// <param name="name">Name inside the component, dotted (a tensor) or underscored (a kohya LoRA module path).</param>
    public static string? Rename(string component, string name)
    {
        ArgumentNullException.ThrowIfNull(component);
        ArgumentNullException.ThrowIfNull(name);
        var rules = component switch
        {
            "denoiser" or "ema" => Denoiser,
            "vae" => Vae,
            "te1" or "te2" or "te3" => TextEncoder,
            _ => null,
        };
        if (rules is null)
        {
            return name;
        }

        foreach (var rule in rules)
        {
            foreach (var underscore in (ReadOnlySpan<bool>)[false, true])
            {
                var m = (underscore ? rule.Underscore : rule.Dotted).Match(name);
                if (!m.Success)
                {
                    continue;
                }

                var replaced = rule.Replace(m);
                if (replaced is null)
                {
                    return null;
                }

                return (underscore ? replaced.Replace('.', '_') : replaced) + name[m.Length..];
            }
        }

        return name;
    }

    /// <summary>
    /// True when the stored tensor is the transpose of the canonical one: OpenCLIP keeps <c>text_projection</c> as
    /// [width, embed] for <c>x @ P</c>, transformers as the Linear weight Pᵀ.
    /// </summary>
    public static bool StoredTransposed(string rawName, CanonicalName canonical, long[] shape)
    {
        ArgumentNullException.ThrowIfNull(rawName);
        ArgumentNullException.ThrowIfNull(shape);
        return shape.Length == 2 && canonical.Name == "text_projection.weight" && rawName.EndsWith("text_projection", StringComparison.Ordinal);
    }

    /// <summary>
    /// How a fused tensor splits along dim 0 into the tensors the canonical layout keeps: (name, first row, rows)
    /// per piece, or null when the name is not a fused one (or the rows do not divide). Names keep the input's
    /// separator (dotted tensor names or underscored LoRA module keys).
    /// </summary>
    /// <param name="name">Canonical name (after <see cref="Rename"/>).</param>
    /// <param name="rows">Size of dim 0.</param>
    /// <param name="hidden">Input width of the weight (its dim 1; for a bias, its weight's); 0 when unknown.</param>
    public static IReadOnlyList<(string Name, long Start, long Rows)>? RowPieces(string name, long rows, long hidden)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var split in Splits)
        {
            var m = split.Pattern.Match(name);
            if (!m.Success)
            {
                continue;
            }

            var prefix = m.Groups["p"].Value;
            var suffix = m.Groups["s"].Value;
            var underscore = suffix.Length == 0 && !name.Contains('.', StringComparison.Ordinal);
            var parts = split.Parts;
            long unit;
            switch (split.Kind)
            {
                case SplitKind.Equal:
                    unit = rows % parts.Length == 0 ? rows / parts.Length : 0;
                    break;
                case SplitKind.Hidden:
                    unit = hidden > 0 && rows > 3 * hidden ? hidden : rows % 7 == 0 ? rows / 7 : 0;
                    break;
                default:
                    if (hidden <= 0 || rows != 2 * hidden)
                    {
                        // Not the pre-only block: one piece under the plain name.
                        var plain = prefix + (underscore ? "norm1_context_linear" : "norm1_context.linear") + suffix;
                        return plain == name ? null : [(plain, 0, rows)];
                    }

                    unit = hidden;
                    break;
            }

            if (unit <= 0)
            {
                return null;
            }

            var result = new List<(string, long, long)>(parts.Length);
            long start = 0;
            for (var i = 0; i < parts.Length; i++)
            {
                var n = i == parts.Length - 1 && split.Kind == SplitKind.Hidden ? rows - start : unit * parts[i].Units;
                if (n <= 0)
                {
                    return null;
                }

                var piece = underscore ? parts[i].Name.Replace('.', '_') : parts[i].Name;
                result.Add((prefix + piece + suffix, start, n));
                start += n;
            }

            return start == rows ? result : null;
        }

        return null;
    }

    private static int K(Match m) => int.Parse(m.Groups["k"].Value, CultureInfo.InvariantCulture);

    private static int J(Match m) => int.Parse(m.Groups["j"].Value, CultureInfo.InvariantCulture);

    private static string Res(Match m) => Resnet[m.Groups["r"].Value.Replace('.', '_')];

    // A prefix rule: the dotted form for tensor names and the underscored form for kohya module keys; the
    // match must end at a separator (or the end, for exact rules) so "out.0" never matches "out.01".
    private sealed class Rule(string pattern, Func<Match, string?> replace, bool exact = false)
    {
        public Regex Dotted { get; } = new("^" + pattern + (exact ? "$" : @"(?=\.|$)"), RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture);

        public Regex Underscore { get; } = new("^" + pattern.Replace(@"\.", "_", StringComparison.Ordinal) + (exact ? "$" : "(?=_|$)"), RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture);

        public Func<Match, string?> Replace { get; } = replace;
    }

    private sealed class Split(string pattern, (string Name, int Units)[] parts, SplitKind kind)
    {
        public Regex Pattern { get; } = new("^" + pattern + "$", RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture);

        public (string Name, int Units)[] Parts { get; } = parts;

        public SplitKind Kind { get; } = kind;
    }
}
