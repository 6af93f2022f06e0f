using System.Text.Json;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>
/// Draw Things. Its JSON comes from XMP (<c>exif:UserComment</c>), not from the text chunks the
/// <see cref="IGeneratorParser"/>s read, so the XMP reader calls <see cref="Read"/> directly.
/// </summary>
internal static class DrawThingsMetadata
{
    private static readonly string[] DrawThingsKeys = ["seed", "steps", "scale", "sampler", "size", "strength"];

    /// <summary>Draw Things: JSON in XMP exif:UserComment (c = prompt, uc, model, lora[{file, weight}], seed, steps, size).</summary>
    internal static void Read(string json, SignalLocation location, ProvenanceReport report, ProvenanceOptions options)
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
}
