using System.Text.Json;
using System.Text.RegularExpressions;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>NovelAI: <c>Software</c> = NovelAI, or a <c>Source</c> naming a Diffusion model with a <c>Comment</c> (also the stealth-LSB JSON, through <see cref="Read"/>).</summary>
internal sealed partial class NovelAiParser : IGeneratorParser
{
    [GeneratedRegex("""^(.*)\s([0-9A-Fa-f]{8})$""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex NaiSourceRegex();

    public string Name => "NovelAI";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options)
    {
        if (string.Equals(texts.Software, "NovelAI", StringComparison.Ordinal) || (texts.Get("Source")?.Text.Contains("Diffusion", StringComparison.Ordinal) ?? false) && texts.Get("Comment") is not null)
        {
            Guard(report, "NovelAI metadata", () => Read(texts.All, report, options, "gen.novelai"));
        }
    }

    /// <summary>NovelAI text fields (PNG text, WebP EXIF, or the JSON found in alpha-channel LSBs).</summary>
    internal static void Read(IReadOnlyList<TextSource> texts, ProvenanceReport report, ProvenanceOptions options, string type)
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
}
