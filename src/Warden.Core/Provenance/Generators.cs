using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Warden.Core.Provenance;

/// <summary>A keyed text found in the file (PNG text chunk, or an EXIF tag mapped to the PNG key the same tool uses).</summary>
/// <param name="Key">parameters, prompt, workflow, invokeai_metadata, Software, Source, Comment, Description...</param>
/// <param name="Text">The text.</param>
/// <param name="Location">Where it was.</param>
internal sealed record TextSource(string Key, string Text, SignalLocation Location);

/// <summary>
/// Parsers for the generation metadata of local AI image tools: AUTOMATIC1111/Forge/SD.Next infotext,
/// ComfyUI graphs, InvokeAI, NovelAI, Fooocus, SwarmUI and Midjourney descriptions. Each adds a signal,
/// the generator and the model references (with every hash and its scheme) to the report.
/// </summary>
internal static partial class Generators
{
    private const double ToolConfidence = 0.9;

    private static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = 64, AllowTrailingCommas = true };

    private static readonly string[] DrawThingsKeys = ["seed", "steps", "scale", "sampler", "size", "strength"];

    private static readonly string[] ModelExtensions = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft"];

    // The A1111 parameter regex (modules/infotext_utils.py re_param), with a timeout against pathological input.
    [GeneratedRegex("""\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex ParamRegex();

    [GeneratedRegex("""<(lora|lyco|hypernet):([^:>]+)(?::([-0-9.]+))?[^>]*>""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex PromptNetworkRegex();

    [GeneratedRegex("""embedding:([^\s,()\[\]{}"']+)""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex EmbeddingRegex();

    [GeneratedRegex("""^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex NameWithHashRegex();

    [GeneratedRegex("""^(.*)\s([0-9A-Fa-f]{8})$""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex NaiSourceRegex();

    /// <summary>Runs every parser over the texts of one file.</summary>
    public static void Extract(IReadOnlyList<TextSource> texts, ProvenanceReport report, ProvenanceOptions options)
    {
        TextSource? Get(string key) => texts.FirstOrDefault(t => string.Equals(t.Key, key, StringComparison.Ordinal));
        var software = Get("Software")?.Text.Trim();
        var parameters = Get("parameters");
        var scheme = Get("fooocus_scheme")?.Text.Trim();

        Guard(report, "generation parameters", () =>
        {
            if (parameters is null)
            {
                return;
            }

            var t = parameters.Text.TrimStart();
            if (t.StartsWith('{'))
            {
                using var doc = JsonDocument.Parse(parameters.Text, JsonOptions);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    return;
                }

                if (doc.RootElement.TryGetProperty("sui_image_params", out _))
                {
                    SwarmUi(doc.RootElement, parameters, report, options);
                }
                else if (scheme == "fooocus" || doc.RootElement.TryGetProperty("base_model", out _) || (software?.StartsWith("Fooocus", StringComparison.Ordinal) ?? false))
                {
                    Fooocus(doc.RootElement, parameters, report, options);
                }
            }
            else if (!string.Equals(software, "NovelAI", StringComparison.Ordinal))
            {
                Infotext(parameters, report, options, scheme == "a1111" || (software?.StartsWith("Fooocus", StringComparison.Ordinal) ?? false) ? "Fooocus" : null);
            }
        });

        // ComfyUI's graphs are JSON; Easy Diffusion writes a plain-text "prompt" key of its own.
        var prompt = Get("prompt") is { } p && p.Text.TrimStart().StartsWith('{') ? p : null;
        var workflow = Get("workflow") is { } w && w.Text.TrimStart().StartsWith('{') ? w : null;
        if (prompt is not null || workflow is not null)
        {
            Guard(report, "ComfyUI graph", () => ComfyUi(prompt, workflow, report, options));
        }

        if (Get("use_stable_diffusion_model") is { } easyModel)
        {
            var s = report.AddSignal(Strong("gen.easydiffusion", easyModel.Location));
            AddPrompt(s, "prompt", Get("prompt")?.Text, options);
            AddPrompt(s, "negative_prompt", Get("negative_prompt")?.Text, options);
            s.Add("seed", Get("seed")?.Text);
            s.Add("num_inference_steps", Get("num_inference_steps")?.Text);
            SetGenerator(report, "Easy Diffusion", null, s);
            report.AddModel(new ModelReference { Role = "checkpoint", Name = easyModel.Text }, s);
            if (Get("use_vae_model") is { Text.Length: > 0 } vae)
            {
                report.AddModel(new ModelReference { Role = "vae", Name = vae.Text }, s);
            }

            if (Get("use_lora_model") is { Text.Length: > 0 } lora)
            {
                report.AddModel(new ModelReference { Role = "lora", Name = lora.Text }, s);
            }
        }

        if (Get("invokeai_metadata") is { } invoke)
        {
            Guard(report, "InvokeAI metadata", () => InvokeAi(invoke, report, options));
        }
        else if (Get("sd-metadata") is { } legacy)
        {
            Guard(report, "InvokeAI legacy metadata", () => InvokeAiLegacy(legacy, report, options));
        }
        else if (Get("Dream") is { } dream)
        {
            var s = report.AddSignal(Strong("gen.invokeai", dream.Location));
            s.Add("format", "Dream (InvokeAI 2.x)");
            AddPrompt(s, "prompt", dream.Text, options);
            SetGenerator(report, "InvokeAI", null, s);
        }

        if (string.Equals(software, "NovelAI", StringComparison.Ordinal) || (Get("Source")?.Text.Contains("Diffusion", StringComparison.Ordinal) ?? false) && Get("Comment") is not null)
        {
            Guard(report, "NovelAI metadata", () => NovelAi(texts, report, options, "gen.novelai"));
        }

        if (Get("Description") is { } description && description.Text.Contains("Job ID:", StringComparison.Ordinal))
        {
            var s = report.AddSignal(Strong("gen.midjourney", description.Location));
            var version = Regex.Match(description.Text, @"--v(?:ersion)?\s+([0-9.]+)", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            s.Add("version", version.Success ? version.Groups[1].Value : null);
            var job = Regex.Match(description.Text, @"Job ID:\s*([0-9a-fA-F-]{36})", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            s.Add("job_id", job.Success ? job.Groups[1].Value : null);
            AddPrompt(s, "prompt", description.Text[..description.Text.IndexOf("Job ID:", StringComparison.Ordinal)], options);
            SetGenerator(report, "Midjourney", version.Success ? version.Groups[1].Value : null, s);
        }
    }

    private static void Guard(ProvenanceReport report, string what, Action parse)
    {
        try
        {
            parse();
        }
        catch (JsonException ex)
        {
            report.Warnings.Add($"{what}: not valid JSON ({ex.Message})");
        }
        catch (RegexMatchTimeoutException)
        {
            report.Warnings.Add($"{what}: parsing took too long; skipped");
        }
        catch (ProvenanceException ex)
        {
            report.Warnings.Add($"{what}: {ex.Message}");
        }
        catch (InvalidOperationException ex)
        {
            // JsonElement accessors on an unexpected value kind.
            report.Warnings.Add($"{what}: unexpected structure ({ex.Message})");
        }
        catch (FormatException ex)
        {
            report.Warnings.Add($"{what}: unexpected value ({ex.Message})");
        }
    }

    internal static ProvenanceSignal Strong(string type, SignalLocation? location) =>
        new() { Type = type, Location = location, AiIndication = AiIndication.Strong, Confidence = ToolConfidence };

    private static void SetGenerator(ProvenanceReport report, string tool, string? version, ProvenanceSignal signal)
    {
        report.Generator = report.Generator is null
            ? new GeneratorInfo(tool, version, [signal.Id])
            : report.Generator with { SignalIds = [.. report.Generator.SignalIds, signal.Id], Version = report.Generator.Version ?? version };
    }

    /// <summary>Adds a prompt as its SHA-256, and as text only when asked.</summary>
    internal static void AddPrompt(ProvenanceSignal signal, string name, string? text, ProvenanceOptions options)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        signal.Add(name + "_sha256", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))));
        if (options.IncludePrompts)
        {
            signal.Add(name, text);
        }
    }

    // ---------------------------------------------------------------- A1111 / Forge / SD.Next

    /// <summary>Splits infotext as A1111's parse_generation_parameters does: prompt, negative prompt, key/values.</summary>
    internal static (string Prompt, string Negative, List<KeyValuePair<string, string>> Parameters) ParseInfotext(string text)
    {
        var lines = text.Trim().Split('\n').ToList();
        var last = lines[^1];
        lines.RemoveAt(lines.Count - 1);
        if (ParamRegex().Count(last) < 3)
        {
            lines.Add(last);
            last = string.Empty;
        }

        var prompt = new StringBuilder();
        var negative = new StringBuilder();
        var inNegative = false;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith("Negative prompt:", StringComparison.Ordinal))
            {
                inNegative = true;
                line = line[16..].Trim();
            }

            var target = inNegative ? negative : prompt;
            if (target.Length > 0)
            {
                target.Append('\n');
            }

            target.Append(line);
        }

        var parameters = new List<KeyValuePair<string, string>>();
        foreach (Match m in ParamRegex().Matches(last))
        {
            var key = m.Groups[1].Value;
            var value = m.Groups[2].Value;
            if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
            {
                try
                {
                    value = JsonSerializer.Deserialize<string>(value) ?? value;
                }
                catch (JsonException)
                {
                    value = value[1..^1];
                }
            }

            parameters.Add(new(key, value));
        }

        return (prompt.ToString(), negative.ToString(), parameters);
    }

    private static void Infotext(TextSource source, ProvenanceReport report, ProvenanceOptions options, string? toolHint)
    {
        var (prompt, negative, parameters) = ParseInfotext(source.Text);
        if (parameters.Count < 3)
        {
            // Free text under the key "parameters" that is not infotext: not claimed as a tool's output.
            return;
        }

        string? P(string key) => parameters.FirstOrDefault(p => p.Key == key).Value;
        var version = P("Version");
        var tool = toolHint
            ?? (P("App") == "SD.Next" ? "SD.Next"
            : version is not null && version.StartsWith('f') && version.Contains('v', StringComparison.Ordinal) ? "Forge"
            : version is not null && version.Contains("Fooocus", StringComparison.Ordinal) ? "Fooocus"
            : version is not null ? "AUTOMATIC1111"
            : "A1111-compatible");
        var s = report.AddSignal(Strong(tool == "Fooocus" ? "gen.fooocus" : "gen.a1111", source.Location));
        s.Add("format", "infotext");
        AddPrompt(s, "prompt", prompt, options);
        AddPrompt(s, "negative_prompt", negative, options);
        foreach (var key in new[] { "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Denoising strength", "Clip skip", "Version", "App", "Distilled CFG Scale" })
        {
            s.Add(key.ToLowerInvariant().Replace(' ', '_'), P(key));
        }

        if (P("Denoising strength") is not null)
        {
            s.Notes.Add("img2img, hires fix or an upscale can also write these parameters: the tool processed the image, it did not necessarily create it");
        }

        SetGenerator(report, tool, version, s);

        var models = new List<ModelReference>();
        ModelReference Ref(string role, string? name)
        {
            var existing = models.FirstOrDefault(m => m.Role == role && name is not null && string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
            if (existing is not null)
            {
                return existing;
            }

            var m = new ModelReference { Role = role, Name = name };
            models.Add(m);
            return m;
        }

        if (P("Model") is not null || P("Model hash") is not null)
        {
            AddHash(Ref("checkpoint", P("Model")), P("Model hash"), "checkpoint");
        }

        if (P("VAE") is not null || P("VAE hash") is not null)
        {
            AddHash(Ref("vae", P("VAE")), P("VAE hash"), "vae");
        }

        foreach (var key in new[] { "Refiner", "Hires checkpoint" })
        {
            if (P(key) is { } named)
            {
                var m = NameWithHashRegex().Match(named);
                AddHash(Ref("refiner", m.Success ? m.Groups[1].Value : named), m.Success ? m.Groups[2].Value : null, "checkpoint");
            }
        }

        foreach (var (key, role) in new[] { ("Lora hashes", "lora"), ("TI hashes", "embedding") })
        {
            if (P(key) is { } list)
            {
                foreach (var item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var colon = item.LastIndexOf(':');
                    if (colon > 0)
                    {
                        AddHash(Ref(role, item[..colon].Trim()), item[(colon + 1)..].Trim(), role);
                    }
                }
            }
        }

        foreach (var (key, value) in parameters.Where(p => p.Key.StartsWith("Module ", StringComparison.Ordinal)))
        {
            Ref("module", value);
        }

        if (P("Hashes") is { } hashesJson && hashesJson.TrimStart().StartsWith('{'))
        {
            using var doc = JsonDocument.Parse(hashesJson, JsonOptions);
            foreach (var h in doc.RootElement.EnumerateObject())
            {
                if (h.Value.ValueKind != JsonValueKind.String)
                {
                    continue;
                }

                var (role, name) = h.Name switch
                {
                    "model" => ("checkpoint", P("Model")),
                    "vae" => ("vae", P("VAE")),
                    var n when n.StartsWith("lora:", StringComparison.Ordinal) => ("lora", n[5..]),
                    var n when n.StartsWith("embed:", StringComparison.Ordinal) => ("embedding", n[6..]),
                    var n => ("other", n),
                };
                AddHash(Ref(role, name), h.Value.GetString(), role);
            }
        }

        foreach (Match m in PromptNetworkRegex().Matches(prompt))
        {
            var r = Ref(m.Groups[1].Value == "hypernet" ? "hypernetwork" : "lora", m.Groups[2].Value);
            if (m.Groups[3].Success && double.TryParse(m.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
            {
                r.Weight = w;
            }
        }

        foreach (var m in models)
        {
            report.AddModel(m, s);
        }
    }

    /// <summary>Adds <paramref name="hex"/> with the scheme its length and the role imply.</summary>
    internal static void AddHash(ModelReference model, string? hex, string role)
    {
        hex = hex?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(hex))
        {
            return;
        }

        if (hex.StartsWith("0x", StringComparison.Ordinal))
        {
            hex = hex[2..];
        }

        if (!hex.All(Uri.IsHexDigit))
        {
            return;
        }

        var scheme = hex.Length switch
        {
            // Very old A1111 "old hash" of checkpoints; old LoRA hashes were the first 8 of the addnet hash.
            8 => role == "lora" ? "addnet8" : "autov1",
            10 => "autov2",
            12 => "autov3",
            64 => "sha256",
            _ => null,
        };
        if (scheme is not null && !model.Hashes.Any(h => h.Value == hex))
        {
            model.Hashes.Add(new ModelHash(scheme, hex));
        }
    }

    // ---------------------------------------------------------------- ComfyUI

    private static void ComfyUi(TextSource? prompt, TextSource? workflow, ProvenanceReport report, ProvenanceOptions options)
    {
        var s = report.AddSignal(Strong("gen.comfyui", (prompt ?? workflow)!.Location));
        var models = new List<ModelReference>();
        if (prompt is not null)
        {
            using var doc = JsonDocument.Parse(prompt.Text, JsonOptions);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ProvenanceException(ProvenanceError.Malformed, "the prompt graph is not a JSON object");
            }

            var nodes = 0;
            var texts = 0;
            foreach (var node in doc.RootElement.EnumerateObject())
            {
                if (++nodes > 10_000)
                {
                    throw new ProvenanceException(ProvenanceError.LimitExceeded, "more than 10000 nodes");
                }

                if (node.Value.ValueKind != JsonValueKind.Object || !node.Value.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                var type = node.Value.TryGetProperty("class_type", out var ct) && ct.ValueKind == JsonValueKind.String ? ct.GetString()! : string.Empty;
                double? strength = inputs.TryGetProperty("strength_model", out var sm) && sm.ValueKind == JsonValueKind.Number ? sm.GetDouble()
                    : inputs.TryGetProperty("strength", out var st) && st.ValueKind == JsonValueKind.Number ? st.GetDouble() : null;
                foreach (var input in inputs.EnumerateObject())
                {
                    if (input.Value.ValueKind != JsonValueKind.String)
                    {
                        continue;
                    }

                    var value = input.Value.GetString()!;
                    if (input.Name == "text" && type.StartsWith("CLIPTextEncode", StringComparison.Ordinal))
                    {
                        AddPrompt(s, "text" + (++texts).ToString(CultureInfo.InvariantCulture), value, options);
                        foreach (Match m in EmbeddingRegex().Matches(value))
                        {
                            models.Add(new ModelReference { Role = "embedding", Name = m.Groups[1].Value });
                        }

                        continue;
                    }

                    var role = ComfyRole(type, input.Name, value);
                    if (role is not null)
                    {
                        models.Add(new ModelReference { Role = role, Name = value, Weight = role == "lora" ? strength : null });
                    }
                }
            }

            s.Add("nodes", nodes.ToString(CultureInfo.InvariantCulture));
            s.Add("source", "prompt");
        }
        else
        {
            using var doc = JsonDocument.Parse(workflow!.Text, JsonOptions);
            if (doc.RootElement.TryGetProperty("nodes", out var nodes) && nodes.ValueKind == JsonValueKind.Array)
            {
                foreach (var node in nodes.EnumerateArray().Take(10_000))
                {
                    if (node.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }

                    var type = node.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : string.Empty;
                    if (!node.TryGetProperty("widgets_values", out var widgets) || widgets.ValueKind != JsonValueKind.Array)
                    {
                        continue;
                    }

                    var values = widgets.EnumerateArray().ToList();
                    for (var i = 0; i < values.Count; i++)
                    {
                        if (values[i].ValueKind == JsonValueKind.String && ComfyRole(type, string.Empty, values[i].GetString()!) is { } role)
                        {
                            double? weight = role == "lora" && i + 1 < values.Count && values[i + 1].ValueKind == JsonValueKind.Number ? values[i + 1].GetDouble() : null;
                            models.Add(new ModelReference { Role = role, Name = values[i].GetString(), Weight = weight });
                        }
                    }
                }
            }

            s.Add("source", "workflow");
        }

        s.Notes.Add("ComfyUI stores model file names, not hashes: names link to model files only by name");
        SetGenerator(report, "ComfyUI", null, s);
        foreach (var m in models.DistinctBy(m => (m.Role, m.Name, m.Weight)))
        {
            report.AddModel(m, s);
        }
    }

    private static string? ComfyRole(string classType, string input, string value)
    {
        var role = input switch
        {
            "ckpt_name" => "checkpoint",
            "unet_name" => "unet",
            "lora_name" => "lora",
            "vae_name" => "vae",
            "control_net_name" => "controlnet",
            _ when input.StartsWith("clip_name", StringComparison.Ordinal) => "text_encoder",
            "model_name" when classType.Contains("Upscale", StringComparison.Ordinal) => "upscaler",
            _ => null,
        };
        if (role is not null)
        {
            return role;
        }

        if (!ModelExtensions.Any(e => value.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        return classType switch
        {
            _ when classType.Contains("Lora", StringComparison.OrdinalIgnoreCase) => "lora",
            _ when classType.Contains("Checkpoint", StringComparison.OrdinalIgnoreCase) => "checkpoint",
            _ when classType.Contains("VAE", StringComparison.Ordinal) => "vae",
            _ when classType.Contains("UNET", StringComparison.OrdinalIgnoreCase) => "unet",
            _ when classType.Contains("CLIP", StringComparison.Ordinal) => "text_encoder",
            _ when classType.Contains("ControlNet", StringComparison.OrdinalIgnoreCase) => "controlnet",
            _ when classType.Contains("Upscale", StringComparison.OrdinalIgnoreCase) => "upscaler",
            _ => "other",
        };
    }

    // ---------------------------------------------------------------- InvokeAI

    private static void InvokeAi(TextSource source, ProvenanceReport report, ProvenanceOptions options)
    {
        using var doc = JsonDocument.Parse(source.Text, JsonOptions);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "metadata is not a JSON object");
        }

        var s = report.AddSignal(Strong("gen.invokeai", source.Location));
        var version = Str(root, "app_version");
        s.Add("app_version", version);
        foreach (var key in new[] { "generation_mode", "seed", "steps", "cfg_scale", "scheduler", "width", "height" })
        {
            s.Add(key, Scalar(root, key));
        }

        AddPrompt(s, "prompt", Str(root, "positive_prompt"), options);
        AddPrompt(s, "negative_prompt", Str(root, "negative_prompt"), options);
        SetGenerator(report, "InvokeAI", version, s);

        void Model(JsonElement m, string role, double? weight)
        {
            if (m.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            var r = new ModelReference { Role = role, Name = Str(m, "name") ?? Str(m, "model_name"), Weight = weight };
            if (Str(m, "hash") is { } hash)
            {
                var colon = hash.IndexOf(':', StringComparison.Ordinal);
                var (algo, hex) = colon > 0 ? (hash[..colon], hash[(colon + 1)..]) : ("sha256", hash);
                if (algo != "random" && hex.Length > 0 && hex.All(Uri.IsHexDigit))
                {
                    r.Hashes.Add(new ModelHash(algo == "blake3_single" ? "blake3" : algo, hex.ToLowerInvariant()));
                }
            }

            report.AddModel(r, s);
        }

        if (root.TryGetProperty("model", out var model))
        {
            Model(model, "checkpoint", null);
        }

        if (root.TryGetProperty("vae", out var vae))
        {
            Model(vae, "vae", null);
        }

        if (root.TryGetProperty("loras", out var loras) && loras.ValueKind == JsonValueKind.Array)
        {
            foreach (var lora in loras.EnumerateArray().Take(1000))
            {
                if (lora.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                double? weight = lora.TryGetProperty("weight", out var w) && w.ValueKind == JsonValueKind.Number ? w.GetDouble() : null;
                if (lora.TryGetProperty("model", out var lm) || lora.TryGetProperty("lora", out lm))
                {
                    Model(lm, "lora", weight);
                }
            }
        }
    }

    private static void InvokeAiLegacy(TextSource source, ProvenanceReport report, ProvenanceOptions options)
    {
        using var doc = JsonDocument.Parse(source.Text, JsonOptions);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "metadata is not a JSON object");
        }

        var s = report.AddSignal(Strong("gen.invokeai", source.Location));
        s.Add("format", "sd-metadata (InvokeAI 2.x)");
        s.Add("app_id", Str(root, "app_id"));
        var version = Str(root, "app_version");
        s.Add("app_version", version);
        if (root.TryGetProperty("image", out var image) && image.ValueKind == JsonValueKind.Object)
        {
            foreach (var key in new[] { "seed", "steps", "cfg_scale", "sampler", "width", "height" })
            {
                s.Add(key, Scalar(image, key));
            }

            if (image.TryGetProperty("prompt", out var p))
            {
                AddPrompt(s, "prompt", p.ValueKind == JsonValueKind.String ? p.GetString() : p.GetRawText(), options);
            }
        }

        SetGenerator(report, "InvokeAI", version, s);
        var r = new ModelReference { Role = "checkpoint", Name = Str(root, "model_weights") };
        AddHash(r, Str(root, "model_hash"), "checkpoint");
        if (r.Name is not null || r.Hashes.Count > 0)
        {
            report.AddModel(r, s);
        }
    }

    // ---------------------------------------------------------------- NovelAI

    /// <summary>NovelAI text fields (PNG text, WebP EXIF, or the JSON found in alpha-channel LSBs).</summary>
    internal static void NovelAi(IReadOnlyList<TextSource> texts, ProvenanceReport report, ProvenanceOptions options, string type)
    {
        TextSource? Get(string key) => texts.FirstOrDefault(t => t.Key == key);
        var where = Get("Comment") ?? Get("Source") ?? Get("Software") ?? texts[0];
        var s = report.AddSignal(Strong(type, where.Location));
        s.Add("software", Get("Software")?.Text);
        s.Add("source", Get("Source")?.Text);
        s.Add("title", Get("Title")?.Text);
        s.Add("generation_time", Get("Generation time")?.Text);
        AddPrompt(s, "prompt", Get("Description")?.Text, options);
        if (Get("Comment") is { } comment && comment.Text.TrimStart().StartsWith('{'))
        {
            using var doc = JsonDocument.Parse(comment.Text, JsonOptions);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                foreach (var key in new[] { "steps", "scale", "seed", "sampler", "width", "height", "strength", "noise" })
                {
                    s.Add(key, Scalar(root, key));
                }

                AddPrompt(s, "comment_prompt", Str(root, "prompt"), options);
                AddPrompt(s, "negative_prompt", Str(root, "uc"), options);
                if (Str(root, "signed_hash") is not null)
                {
                    s.Add("signed_hash", "present");
                    s.Notes.Add("signed_hash (Ed25519 over the RGB pixels and the comment JSON) not verified: needs Ed25519 and a byte-exact re-serialisation of Python's json.dumps");
                }
            }
        }

        SetGenerator(report, "NovelAI", null, s);
        if (Get("Source")?.Text is { } source)
        {
            var m = NaiSourceRegex().Match(source.Trim());
            var r = new ModelReference { Role = "checkpoint", Name = source.Trim() };
            if (m.Success)
            {
                r.Hashes.Add(new ModelHash("nai-source-id", m.Groups[2].Value.ToLowerInvariant()));
            }

            report.AddModel(r, s);
        }
    }

    // ---------------------------------------------------------------- Draw Things

    /// <summary>Draw Things: JSON in XMP exif:UserComment (c = prompt, uc, model, lora[{file, weight}], seed, steps, size).</summary>
    internal static void DrawThings(string json, SignalLocation location, ProvenanceReport report, ProvenanceOptions options)
    {
        Guard(report, "Draw Things metadata", () =>
        {
            using var doc = JsonDocument.Parse(json, JsonOptions);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || Str(root, "model") is not { } model)
            {
                return;
            }

            var s = report.AddSignal(Strong("gen.drawthings", location));
            foreach (var key in DrawThingsKeys)
            {
                s.Add(key, Scalar(root, key));
            }

            AddPrompt(s, "prompt", Str(root, "c"), options);
            AddPrompt(s, "negative_prompt", Str(root, "uc"), options);
            SetGenerator(report, "Draw Things", null, s);
            report.AddModel(new ModelReference { Role = "checkpoint", Name = model }, s);
            if (root.TryGetProperty("lora", out var loras) && loras.ValueKind == JsonValueKind.Array)
            {
                foreach (var l in loras.EnumerateArray().Take(1000))
                {
                    if (Str(l, "file") is { } file)
                    {
                        report.AddModel(new ModelReference { Role = "lora", Name = file, Weight = l.TryGetProperty("weight", out var wt) && wt.ValueKind == JsonValueKind.Number ? wt.GetDouble() : null }, s);
                    }
                }
            }
        });
    }

    // ---------------------------------------------------------------- Fooocus, SwarmUI

    private static void Fooocus(JsonElement root, TextSource source, ProvenanceReport report, ProvenanceOptions options)
    {
        var s = report.AddSignal(Strong("gen.fooocus", source.Location));
        s.Add("format", "fooocus json");
        var version = Str(root, "version");
        s.Add("version", version);
        foreach (var key in new[] { "performance", "resolution", "guidance_scale", "sampler", "scheduler", "seed", "steps" })
        {
            s.Add(key, Scalar(root, key));
        }

        AddPrompt(s, "prompt", Str(root, "prompt"), options);
        AddPrompt(s, "negative_prompt", Str(root, "negative_prompt"), options);
        SetGenerator(report, "Fooocus", version, s);
        foreach (var (name, hash, role) in new[] { ("base_model", "base_model_hash", "checkpoint"), ("refiner_model", "refiner_model_hash", "refiner") })
        {
            if (Str(root, name) is { } n && n != "None")
            {
                var r = new ModelReference { Role = role, Name = n };

                // Fooocus hashes every file (models and LoRAs) as sha256(file)[:10] = AutoV2.
                AddHash(r, Str(root, hash), "checkpoint");
                report.AddModel(r, s);
            }
        }

        if (Str(root, "vae") is { } vae && vae != "Default (model)")
        {
            report.AddModel(new ModelReference { Role = "vae", Name = vae }, s);
        }

        if (root.TryGetProperty("loras", out var loras) && loras.ValueKind == JsonValueKind.Array)
        {
            foreach (var l in loras.EnumerateArray().Take(1000))
            {
                if (l.ValueKind != JsonValueKind.Array)
                {
                    continue;
                }

                var items = l.EnumerateArray().ToList();
                var r = new ModelReference
                {
                    Role = "lora",
                    Name = items.Count > 0 && items[0].ValueKind == JsonValueKind.String ? items[0].GetString() : null,
                    Weight = items.Count > 1 && items[1].ValueKind == JsonValueKind.Number ? items[1].GetDouble() : null,
                };
                AddHash(r, items.Count > 2 && items[2].ValueKind == JsonValueKind.String ? items[2].GetString() : null, "checkpoint");
                report.AddModel(r, s);
            }
        }
    }

    private static void SwarmUi(JsonElement root, TextSource source, ProvenanceReport report, ProvenanceOptions options)
    {
        var p = root.GetProperty("sui_image_params");
        var s = report.AddSignal(Strong("gen.swarmui", source.Location));
        var version = p.ValueKind == JsonValueKind.Object ? Str(p, "swarm_version") : null;
        s.Add("swarm_version", version);
        if (p.ValueKind == JsonValueKind.Object)
        {
            foreach (var key in new[] { "seed", "steps", "cfgscale", "width", "height", "sampler", "scheduler" })
            {
                s.Add(key, Scalar(p, key));
            }

            AddPrompt(s, "prompt", Str(p, "prompt"), options);
            AddPrompt(s, "negative_prompt", Str(p, "negativeprompt"), options);
        }

        SetGenerator(report, "SwarmUI", version, s);
        var listed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (root.TryGetProperty("sui_models", out var models) && models.ValueKind == JsonValueKind.Array)
        {
            foreach (var m in models.EnumerateArray().Take(1000))
            {
                if (m.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                var role = Str(m, "param") switch
                {
                    "model" => "checkpoint",
                    "loras" => "lora",
                    "vae" => "vae",
                    "refinermodel" => "refiner",
                    "controlnetmodel" => "controlnet",
                    _ => "other",
                };
                var r = new ModelReference { Role = role, Name = Str(m, "name") };
                AddHash(r, Str(m, "hash"), role);
                listed.Add(r.Name ?? string.Empty);
                report.AddModel(r, s);
            }
        }

        if (p.ValueKind == JsonValueKind.Object && Str(p, "model") is { } model && !listed.Contains(model) && !listed.Contains(model + ".safetensors"))
        {
            report.AddModel(new ModelReference { Role = "checkpoint", Name = model }, s);
        }
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string? Scalar(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v)
            ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
                _ => null,
            }
            : null;
}
