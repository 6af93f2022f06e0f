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
/// One local AI image tool's metadata parser (one file each in this folder): AUTOMATIC1111/Forge/SD.Next infotext,
/// ComfyUI graphs, Easy Diffusion, InvokeAI, NovelAI, Fooocus, SwarmUI, Midjourney descriptions. A parser that
/// finds its tool's texts adds a signal, the generator and the model references (with every hash and its
/// scheme) to the report; malformed input becomes a warning, never an exception.
/// </summary>
internal interface IGeneratorParser
{
    /// <summary>The tool's name.</summary>
    string Name { get; }

    /// <summary>Reads the tool's metadata from <paramref name="texts"/>, when they hold it.</summary>
    void Parse(GeneratorTexts texts, ProvenanceReport report, ProvenanceOptions options);
}

/// <summary>The keyed texts of one file, as the parsers look them up; <c>parameters</c> is parsed as JSON once.</summary>
internal sealed class GeneratorTexts(IReadOnlyList<TextSource> texts) : IDisposable
{
    private bool _parsed;
    private JsonDocument? _json;

    /// <summary>Every text, in file order.</summary>
    public IReadOnlyList<TextSource> All => texts;

    /// <summary>The <c>Software</c> text, trimmed.</summary>
    public string? Software { get; } = texts.FirstOrDefault(t => string.Equals(t.Key, "Software", StringComparison.Ordinal))?.Text.Trim();

    /// <summary>The <c>fooocus_scheme</c> text, trimmed.</summary>
    public string? Scheme { get; } = texts.FirstOrDefault(t => string.Equals(t.Key, "fooocus_scheme", StringComparison.Ordinal))?.Text.Trim();

    /// <summary>The <c>parameters</c> text (A1111 infotext, or Fooocus/SwarmUI JSON).</summary>
    public TextSource? Parameters => Get("parameters");

    /// <summary>
    /// <c>parameters</c> as a JSON object, or null (absent, not JSON, not an object). Invalid JSON throws
    /// <see cref="JsonException"/> on the first call only (inside that parser's guard, which warns once) and
    /// gives null after.
    /// </summary>
    public JsonElement? ParametersObject
    {
        get
        {
            if (!_parsed)
            {
                _parsed = true;
                if (Parameters is { } p && p.Text.TrimStart().StartsWith('{'))
                {
                    _json = JsonDocument.Parse(p.Text, Generators.JsonOptions);
                }
            }

            return _json is { RootElement.ValueKind: JsonValueKind.Object } doc ? doc.RootElement : null;
        }
    }

    /// <summary>The first text with this key, or null.</summary>
    public TextSource? Get(string key) => texts.FirstOrDefault(t => string.Equals(t.Key, key, StringComparison.Ordinal));

    /// <summary>True when <see cref="Software"/> starts with <paramref name="prefix"/>.</summary>
    public bool SoftwareStartsWith(string prefix) => Software?.StartsWith(prefix, StringComparison.Ordinal) ?? false;

    /// <inheritdoc />
    public void Dispose() => _json?.Dispose();
}

/// <summary>What the <see cref="IGeneratorParser"/>s share: the parser list, the guard that turns bad input into warnings, and the report helpers.</summary>
internal static class Generators
{
    private const double ToolConfidence = 0.9;

    internal static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = 64, AllowTrailingCommas = true };

    /// <summary>Every text parser, in the order they run over a file's texts.</summary>
    internal static IReadOnlyList<IGeneratorParser> Parsers { get; } =
        [new SwarmUiParser(), new FooocusParser(), new A1111Parser(), new ComfyUiParser(), new EasyDiffusionParser(), new InvokeAiParser(), new NovelAiParser(), new MidjourneyParser()];

    /// <summary>Runs every parser over the texts of one file.</summary>
    public static void Extract(IReadOnlyList<TextSource> texts, ProvenanceReport report, ProvenanceOptions options)
    {
        using var context = new GeneratorTexts(texts);
        foreach (var parser in Parsers)
        {
            parser.Parse(context, report, options);
        }
    }

    internal static void Guard(ProvenanceReport report, string what, Action parse)
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

    internal static void SetGenerator(ProvenanceReport report, string tool, string? version, ProvenanceSignal signal)
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

    internal static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static string? Scalar(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v)
            ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
                _ => null,
            }
            : null;
}
