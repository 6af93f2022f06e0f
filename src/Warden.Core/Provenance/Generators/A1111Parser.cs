using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static Warden.Core.Provenance.Generators;

namespace Warden.Core.Provenance;

/// <summary>AUTOMATIC1111 / Forge / SD.Next infotext (the <c>parameters</c> text, when it is not JSON and not NovelAI's).</summary>
internal sealed partial class A1111Parser : IGeneratorParser
{
    // The A1111 parameter regex (modules/infotext_utils.py re_param), with a timeout against pathological input.
    [GeneratedRegex("""\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex ParamRegex();

    [GeneratedRegex("""<(lora|lyco|hypernet):([^:>]+)(?::([-0-9.]+))?[^>]*>""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex PromptNetworkRegex();

    [GeneratedRegex("""^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$""", RegexOptions.CultureInvariant, 1000)]
    private static partial Regex NameWithHashRegex();

    public string Name => "A1111";

    public void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options) => Guard(report, "generation parameters", () =>
    {
        if (texts.Parameters is { } parameters && !parameters.Text.TrimStart().StartsWith('{') && !string.Equals(texts.Software, "NovelAI", StringComparison.Ordinal))
        {
            Infotext(parameters, report, options, texts.Scheme == "a1111" || texts.SoftwareStartsWith("Fooocus") ? "Fooocus" : null);
        }
    });

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
}
