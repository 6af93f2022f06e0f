using System.Globalization;

namespace Warden.Core.ModelFiles;

/// <summary>An architecture guess from tensor names and shapes alone.</summary>
/// <param name="Family">sd1, sd2, sdxl, sdxl-refiner, sd3, flux, unknown.</param>
/// <param name="Variant">dev/schnell, inpaint, pix2pix, depth, medium/large, or null.</param>
/// <param name="Kind">checkpoint, unet, text-encoder, vae, lora, locon, loha, lokr, dora, embedding.</param>
/// <param name="Components">Components present (denoiser, te1, te2, te3, vae).</param>
/// <param name="Evidence">The keys (with shapes) and metadata that decided it.</param>
public sealed record ArchitectureGuess(string Family, string? Variant, string Kind, IReadOnlyList<string> Components, IReadOnlyList<string> Evidence)
{
    /// <summary>"sdxl checkpoint", "flux/dev lora", …</summary>
    public string Summary => $"{Family}{(Variant is null ? string.Empty : "/" + Variant)} {Kind}";
}

/// <summary>
/// Classifies SD1.x, SD2.x, SDXL base/refiner, SD3, Flux dev/schnell checkpoints (LDM, SGM, ComfyUI and
/// diffusers layouts) and LoRA/LyCORIS adapters from decisive keys and shapes (reference/models.md §5).
/// Fine-tunes of one architecture (Pony, Illustrious on SDXL) are not told apart by keys: that is the
/// fingerprint's job.
/// </summary>
public static class ModelArchitecture
{
    /// <summary>Guesses the architecture of a document.</summary>
    public static ArchitectureGuess Classify(ModelDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        var evidence = new List<string>();
        var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var components = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var t in doc.Tensors)
        {
            var c = TensorNames.Canonicalize(t.Name, doc.FileComponents.GetValueOrDefault(t.Source, string.Empty), layouts: false);
            if (c is { } cn)
            {
                byName.TryAdd(cn.Name, t);
                if (TensorNames.Primary.Contains(cn.Component))
                {
                    components.Add(cn.Component);
                }
            }
        }

        foreach (var key in new[] { "modelspec.architecture", "ss_base_model_version", "general.architecture", "ss_network_module" })
        {
            if (doc.Metadata.TryGetValue(key, out var v))
            {
                evidence.Add($"{key}={v}");
            }
        }

        if (LoraAnalyzer.IsAdapter(doc))
        {
            return ClassifyAdapter(doc, evidence);
        }

        TensorInfo? Find(string name)
        {
            if (byName.TryGetValue(name, out var t))
            {
                evidence.Add($"{t.Name} {t.ShapeText}");
                return t;
            }

            return null;
        }

        string family = "unknown";
        string? variant = null;
        if (Find("double_blocks.0.img_attn.qkv.weight") is not null || Find("double_blocks.0.img_attn.norm.key_norm.scale") is not null
            || (Find("x_embedder.weight") is { Shape: [3072, _] } && byName.Keys.Any(k => k.StartsWith("single_transformer_blocks.", StringComparison.Ordinal))))
        {
            family = "flux";
            variant = Find("guidance_in.in_layer.weight") is not null || Find("time_text_embed.guidance_embedder.linear_1.weight") is not null ? "dev" : "schnell";
            evidence.Add(variant == "dev" ? "guidance embedder present" : "no guidance embedder");
        }
        else if (Find("joint_blocks.0.context_block.attn.qkv.weight") is not null || Find("transformer_blocks.0.attn.add_q_proj.weight") is not null)
        {
            family = "sd3";
            var depth = Find("x_embedder.proj.weight") is { } x ? x.Shape[0] / 64 : 0;
            variant = depth switch
            {
                24 => "medium",
                38 => "large",
                0 => null,
                _ => "depth" + depth.ToString(CultureInfo.InvariantCulture),
            };
        }
        else if ((Find("label_emb.0.0.weight") ?? Find("add_embedding.linear_1.weight")) is { } label)
        {
            family = label.Shape is [1536, 2560] ? "sdxl-refiner" : "sdxl";
        }
        else if ((Find("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight") ?? Find("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight")) is { } toK && toK.Shape.Length >= 2)
        {
            family = toK.Shape[1] switch
            {
                768 => "sd1",
                1024 => "sd2",
                _ => "unknown",
            };
        }
        else if (Find("transformer.text_model.embeddings.token_embedding.weight") is { Shape: [49408, 768] } || Find("text_model.embeddings.token_embedding.weight") is { Shape: [49408, 768] })
        {
            family = "sd1";
        }

        if (family is "sd1" or "sd2" or "sdxl" && (Find("input_blocks.0.0.weight") ?? Find("conv_in.weight")) is { Shape: [_, var inCh, ..] } && inCh != 4)
        {
            variant = inCh switch
            {
                9 => "inpaint",
                8 => "pix2pix",
                5 => "depth",
                _ => "in" + inCh.ToString(CultureInfo.InvariantCulture),
            };
        }

        var kind = components.Count switch
        {
            0 => "unknown",
            _ when components.SetEquals(["denoiser"]) => "unet",
            _ when components.SetEquals(["vae"]) => "vae",
            _ when components.All(c => c.StartsWith("te", StringComparison.Ordinal)) => "text-encoder",
            _ => "checkpoint",
        };
        if (family == "sdxl" && kind == "checkpoint" && !components.Contains("te2"))
        {
            evidence.Add("second text encoder missing (ambiguous checkpoint)");
        }

        if (doc.Tensors.Any(t => t.Name is "string_to_param.*" or "emb_params" or "clip_l" or "clip_g"))
        {
            kind = "embedding";
        }

        return new ArchitectureGuess(family, variant, kind, [.. components], evidence);
    }

    private static ArchitectureGuess ClassifyAdapter(ModelDocument doc, List<string> evidence)
    {
        var names = doc.Tensors.Select(t => t.Name).ToList();
        var kind = names.Any(n => n.Contains("hada_w1_a", StringComparison.Ordinal)) ? "loha"
            : names.Any(n => n.Contains("lokr_w", StringComparison.Ordinal)) ? "lokr"
            : names.Any(n => n.Contains("dora_scale", StringComparison.Ordinal) || n.Contains("lora_magnitude_vector", StringComparison.Ordinal)) ? "dora"
            : doc.Tensors.Any(t => (t.Name.EndsWith(".lora_down.weight", StringComparison.Ordinal) || t.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal)) && t.Shape.Length == 4 && t.Shape[2] > 1) ? "locon"
            : "lora";
        string family = "unknown";
        string? variant = null;
        string? Ev(Func<string, bool> p)
        {
            var n = names.FirstOrDefault(p);
            if (n is not null)
            {
                evidence.Add(n);
            }

            return n;
        }

        if (Ev(n => n.Contains("double_blocks", StringComparison.Ordinal) || n.Contains("single_transformer_blocks", StringComparison.Ordinal)) is not null)
        {
            family = "flux";
        }
        else if (Ev(n => n.Contains("joint_blocks", StringComparison.Ordinal)) is not null)
        {
            family = "sd3";
        }
        else if (Ev(n => n.StartsWith("lora_te2_", StringComparison.Ordinal) || n.StartsWith("lora_te1_", StringComparison.Ordinal) || n.StartsWith("text_encoder_2.", StringComparison.Ordinal)) is not null
            || Ev(n => n.StartsWith("lora_unet_input_blocks_", StringComparison.Ordinal) || n.StartsWith("lora_unet_label_emb", StringComparison.Ordinal)) is not null)
        {
            family = "sdxl";
        }
        else
        {
            // SD1 vs SD2 vs SDXL from the cross-attention context width (lora_down of attn2.to_k: [r, context]).
            var toK = doc.Tensors.FirstOrDefault(t => t.Name.Contains("attn2", StringComparison.Ordinal) && t.Name.Contains("to_k", StringComparison.Ordinal)
                && (t.Name.EndsWith("lora_down.weight", StringComparison.Ordinal) || t.Name.EndsWith("lora_A.weight", StringComparison.Ordinal)));
            if (toK is { Shape: [_, var ctx, ..] })
            {
                evidence.Add($"{toK.Name} {toK.ShapeText}");
                family = ctx switch
                {
                    768 => "sd1",
                    1024 => "sd2",
                    2048 => "sdxl",
                    4096 => "flux",
                    _ => "unknown",
                };
            }
            else if (names.Any(n => n.StartsWith("lora_te_", StringComparison.Ordinal)))
            {
                family = "sd1";
                evidence.Add("lora_te_ prefix (single text encoder)");
            }
        }

        if (doc.Metadata.TryGetValue("modelspec.architecture", out var arch))
        {
            if (arch.Contains("flux-1-dev", StringComparison.Ordinal))
            {
                (family, variant) = ("flux", "dev");
            }
            else if (arch.Contains("flux-1-schnell", StringComparison.Ordinal))
            {
                (family, variant) = ("flux", "schnell");
            }
            else if (family == "unknown" && arch.Contains("stable-diffusion-xl", StringComparison.Ordinal))
            {
                family = "sdxl";
            }
        }

        var comps = doc.Tensors.Select(t => t.Name.StartsWith("lora_te", StringComparison.Ordinal) || t.Name.StartsWith("text_encoder", StringComparison.Ordinal) ? "te" : "denoiser")
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return new ArchitectureGuess(family, variant, kind, comps, evidence);
    }
}
