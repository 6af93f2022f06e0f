namespace Warden.Core.ModelFiles;

/// <summary>A tensor name reduced to its component and container-independent name.</summary>
/// <param name="Component">denoiser, te1, te2, te3, vae, ema, other.</param>
/// <param name="Name">Name inside the component (wrapper and component prefixes stripped).</param>
public readonly record struct CanonicalName(string Component, string Name)
{
    /// <summary>"component:name", the key near-matching pairs tensors by.</summary>
    public string Key => Component + ":" + Name;

    /// <summary>The kohya-style module key a LoRA targeting this weight uses ("component:a_b_c"), or null for non-weights.</summary>
    public string? LoraKey => Name.EndsWith(".weight", StringComparison.Ordinal)
        ? Component + ":" + Name[..^".weight".Length].Replace('.', '_')
        : null;
}

/// <summary>
/// Canonicalisation (MFv1 §8.3): strips container wrappers (<c>state_dict.</c>, <c>module.</c>), assigns the
/// component from LDM/SGM/ComfyUI prefixes or the diffusers folder, and drops non-learned buffers that every
/// model of a family shares (noise schedules, position ids) so they cannot make unrelated models look alike.
/// </summary>
public static class TensorNames
{
    /// <summary>Components that make up a model's identity (EMA copies and "other" do not).</summary>
    public static IReadOnlySet<string> Primary { get; } = new HashSet<string>(StringComparer.Ordinal) { "denoiser", "te1", "te2", "te3", "vae" };

    private static readonly (string Prefix, string Component)[] Prefixes =
    [
        ("model.diffusion_model.", "denoiser"),
        ("first_stage_model.", "vae"),
        ("cond_stage_model.transformer.", "te1"),
        ("cond_stage_model.model.", "te1"),
        ("cond_stage_model.", "te1"),
        ("conditioner.embedders.0.transformer.", "te1"),
        ("conditioner.embedders.0.model.", "te2"), // the refiner's only encoder is OpenCLIP bigG (diffusers text_encoder_2)
        ("conditioner.embedders.1.model.", "te2"),
        ("conditioner.embedders.1.transformer.", "te2"),
        ("text_encoders.clip_l.transformer.", "te1"),
        ("text_encoders.clip_l.", "te1"),
        ("text_encoders.clip_g.transformer.", "te2"),
        ("text_encoders.clip_g.", "te2"),
        ("text_encoders.t5xxl.transformer.", "te3"),
        ("text_encoders.t5xxl.", "te3"),
        ("vae.", "vae"),
        ("model_ema.", "ema"),
    ];

    private static readonly string[] DenoiserRoots =
    [
        "input_blocks.", "middle_block.", "output_blocks.", "time_embed.", "label_emb.", "out.", "double_blocks.", "single_blocks.",
        "joint_blocks.", "img_in.", "txt_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer.", "x_embedder.", "context_embedder.",
        "t_embedder.", "y_embedder.", "pos_embed", "down_blocks.", "up_blocks.", "mid_block.", "conv_in.", "conv_out.", "conv_norm_out.",
        "time_embedding.", "add_embedding.", "transformer_blocks.", "single_transformer_blocks.", "time_text_embed.", "norm_out.", "proj_out.",
    ];

    private static readonly string[] Buffers =
    [
        "alphas_cumprod", "alphas_cumprod_prev", "betas", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
        "posterior_mean_coef1", "posterior_mean_coef2", "logvar", "model_ema.decay", "model_ema.num_updates", "scaled_fp8",
    ];

    /// <summary>Canonical name of a raw tensor name, or null for buffers that are not part of the fingerprint.</summary>
    /// <param name="raw">Name as stored.</param>
    /// <param name="folderComponent">The diffusers component folder the file came from ("" for single files).</param>
    /// <param name="layouts">Map onto the layout-independent (diffusers) names; false keeps the stored naming (architecture evidence).</param>
    public static CanonicalName? Canonicalize(string raw, string? folderComponent = null, bool layouts = true)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var name = raw;
        while (true)
        {
            if (name.StartsWith("state_dict.", StringComparison.Ordinal))
            {
                name = name["state_dict.".Length..];
            }
            else if (name.StartsWith("module.", StringComparison.Ordinal))
            {
                name = name["module.".Length..];
            }
            else
            {
                break;
            }
        }

        if (Buffers.Contains(name) || name.EndsWith("position_ids", StringComparison.Ordinal) || Buffers.Any(b => name.EndsWith("." + b, StringComparison.Ordinal) && !name.StartsWith("model_ema.", StringComparison.Ordinal)))
        {
            return null;
        }

        if (!string.IsNullOrEmpty(folderComponent))
        {
            return Make(FolderComponent(folderComponent), name, layouts);
        }

        foreach (var (prefix, component) in Prefixes)
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                return Make(component, name[prefix.Length..], layouts);
            }
        }

        foreach (var root in DenoiserRoots)
        {
            if (name.StartsWith(root, StringComparison.Ordinal))
            {
                return Make("denoiser", name, layouts);
            }
        }

        if (name.StartsWith("encoder.", StringComparison.Ordinal) || name.StartsWith("decoder.", StringComparison.Ordinal) || name.StartsWith("quant_conv", StringComparison.Ordinal) || name.StartsWith("post_quant_conv", StringComparison.Ordinal))
        {
            return Make("vae", name, layouts);
        }

        if (name.StartsWith("text_model.", StringComparison.Ordinal))
        {
            return Make("te1", name, layouts);
        }

        return new CanonicalName("other", name);
    }

    // The layout-independent (diffusers) name; null for tensors other layouts do not keep.
    private static CanonicalName? Make(string component, string name, bool layouts) =>
        !layouts ? new CanonicalName(component, name)
        : TensorLayouts.Rename(component, name) is { } renamed ? new CanonicalName(component, renamed) : null;

    /// <summary>Component of a diffusers folder name.</summary>
    public static string FolderComponent(string folder) => folder switch
    {
        "unet" or "transformer" or "prior" or "decoder" => "denoiser",
        "text_encoder" => "te1",
        "text_encoder_2" => "te2",
        "text_encoder_3" => "te3",
        "vae" => "vae",
        _ => folder,
    };

    /// <summary>Shape with trailing 1s removed (a 1×1 conv and a linear layer hold the same matrix).</summary>
    public static long[] CanonicalShape(long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var n = shape.Length;
        while (n > 1 && shape[n - 1] == 1)
        {
            n--;
        }

        return n == shape.Length ? shape : shape[..n];
    }
}
