using System.Text.Json;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>SwarmUI: the <c>parameters</c> text as JSON with <c>sui_image_params</c>.</summary>
internal sealed class SwarmUiParser : IGeneratorParser
{
    public string Name => "SwarmUI";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options) => Guard(report, "generation parameters", () =>
    {
        if (texts.ParametersObject is { } root && root.TryGetProperty("sui_image_params", out _))
        {
            SwarmUi(root, texts.Parameters!, report, options);
        }
    });

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
}
