using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>ComfyUI graphs: the <c>prompt</c> (API graph) and <c>workflow</c> (UI graph) JSON texts.</summary>
internal sealed partial class ComfyUiParser : IGeneratorParser
{
    private static readonly string[] ModelExtensions = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft"];

    [GeneratedRegex("""embedding:([^\s,()\[\]{}"']+)""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex EmbeddingRegex();

    public string Name => "ComfyUI";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options)
    {
        // ComfyUI's graphs are JSON; Easy Diffusion writes a plain-text "prompt" key of its own.
        var prompt = texts.Get("prompt") is { } p && p.Text.TrimStart().StartsWith('{') ? p : null;
        var workflow = texts.Get("workflow") is { } w && w.Text.TrimStart().StartsWith('{') ? w : null;
        if (prompt is not null || workflow is not null)
        {
            Guard(report, "ComfyUI graph", () => ComfyUi(prompt, workflow, report, options));
        }
    }

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
}
