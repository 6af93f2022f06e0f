using System.Text.Json;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>Fooocus: the <c>parameters</c> text as JSON (its <c>fooocus_scheme</c>, a <c>base_model</c> member or its Software name).</summary>
internal sealed class FooocusParser : IGeneratorParser
{
    public string Name => "Fooocus";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options) => Guard(report, "generation parameters", () =>
    {
        if (texts.ParametersObject is { } root && !root.TryGetProperty("sui_image_params", out _)
            && (texts.Scheme == "fooocus" || root.TryGetProperty("base_model", out _) || texts.SoftwareStartsWith("Fooocus")))
        {
            Fooocus(root, texts.Parameters!, report, options);
        }
    });

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
}
