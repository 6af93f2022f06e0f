using System.Text.Json;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>InvokeAI: <c>invokeai_metadata</c> (3.x+), else legacy <c>sd-metadata</c>, else <c>Dream</c> (2.x).</summary>
internal sealed class InvokeAiParser : IGeneratorParser
{
    public string Name => "InvokeAI";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options)
    {
        if (texts.Get("invokeai_metadata") is { } invoke)
        {
            Guard(report, "InvokeAI metadata", () => InvokeAi(invoke, report, options));
        }
        else if (texts.Get("sd-metadata") is { } legacy)
        {
            Guard(report, "InvokeAI legacy metadata", () => InvokeAiLegacy(legacy, report, options));
        }
        else if (texts.Get("Dream") is { } dream)
        {
            var s = report.AddSignal(Strong("gen.invokeai", dream.Location));
            s.Add("format", "Dream (InvokeAI 2.x)");
            AddPrompt(s, "prompt", dream.Text, options);
            SetGenerator(report, "InvokeAI", null, s);
        }
    }

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
}
