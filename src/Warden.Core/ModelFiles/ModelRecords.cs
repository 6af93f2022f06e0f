using System.Runtime.InteropServices;
using System.Text.Json;

namespace Warden.Core.ModelFiles;

/// <summary>A registered tensor's sketch.</summary>
/// <param name="Key">"component:name".</param>
/// <param name="LoraKey">Kohya-style module key of the weight, or null.</param>
/// <param name="Shape">Canonical shape.</param>
/// <param name="Sketch">Values at <see cref="Fingerprinter.SketchPositions"/>.</param>
public sealed record RecordTensor(string Key, string? LoraKey, long[] Shape, float[] Sketch);

/// <summary>
/// What near matching needs of a registered model or adapter: its sketches (full models) or sampled ΔW
/// (adapters). Kept beside the bank entries (which hold the exact signals) in a <see cref="ModelRecordStore"/>.
/// </summary>
public sealed class ModelRecord
{
    /// <summary>File SHA-256 (hex) or model ID for folders: the record's identity.</summary>
    public required string Id { get; init; }

    /// <summary>Display name.</summary>
    public required string Name { get; init; }

    /// <summary>Bank it was added to.</summary>
    public required string Bank { get; init; }

    /// <summary>Architecture summary.</summary>
    public string Architecture { get; init; } = "unknown";

    /// <summary>MFv1 model ID (hex).</summary>
    public string? ModelId { get; init; }

    /// <summary>Sketches of a full model.</summary>
    public List<RecordTensor> Tensors { get; init; } = [];

    /// <summary>ΔW samples of an adapter, as (module key, target shape, values) tensors.</summary>
    public List<RecordTensor> Modules { get; init; } = [];

    /// <summary>Sampled row hashes per component (T3 containment).</summary>
    public Dictionary<string, ulong[]> Rows { get; init; } = new(StringComparer.Ordinal);

    /// <summary>True for adapters.</summary>
    public bool IsAdapter => Modules.Count > 0;

    /// <summary>Builds a record from a fingerprint.</summary>
    public static ModelRecord From(ModelFingerprint fp, string id, string name, string bank, string architecture)
    {
        ArgumentNullException.ThrowIfNull(fp);
        return new ModelRecord
        {
            Id = id,
            Name = name,
            Bank = bank,
            Architecture = architecture,
            ModelId = fp.ModelIdHex,
            Tensors = fp.Lora.Count > 0 ? [] : [.. fp.Tensors.Where(t => t.Hash is not null && t.Sketch.Length > 0 && t.Canonical.Component != "ema").Select(t => new RecordTensor(t.Canonical.Key, t.Canonical.LoraKey, t.Shape, t.Sketch))],
            Modules = [.. fp.Lora.Select(m => new RecordTensor(m.Key, m.Key, m.TargetShape, m.Delta))],
            Rows = fp.Lora.Count > 0 ? new(StringComparer.Ordinal) : RowsOf(fp),
        };
    }

    /// <summary>
    /// Distinct sampled row hashes of each component (EMA excluded): rows with h % <see cref="Fingerprinter.RowSampling"/>
    /// == 0, and every row of tensors with at most 64 rows (few rows would otherwise leave a component unsampled).
    /// </summary>
    public static Dictionary<string, ulong[]> RowsOf(ModelFingerprint fp)
    {
        ArgumentNullException.ThrowIfNull(fp);
        return fp.Tensors.Where(t => t.Rows is { Length: > 0 } && t.Canonical.Component != "ema")
            .GroupBy(t => t.Canonical.Component, StringComparer.Ordinal)
            .ToDictionary(
                g => g.Key,
                g => g.SelectMany(t => t.Rows!.Where(h => t.Rows!.Length <= 64 || h % Fingerprinter.RowSampling == 0)).Distinct().Order().ToArray(),
                StringComparer.Ordinal);
    }

    /// <summary>Writes the record as JSON (float arrays as base64 little-endian).</summary>
    public void Write(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteNumber("v", 1);
        w.WriteString("id", Id);
        w.WriteString("name", Name);
        w.WriteString("bank", Bank);
        w.WriteString("architecture", Architecture);
        w.WriteString("model_id", ModelId);
        foreach (var (prop, list) in new[] { ("tensors", Tensors), ("modules", Modules) })
        {
            w.WriteStartArray(prop);
            foreach (var t in list)
            {
                w.WriteStartObject();
                w.WriteString("k", t.Key);
                if (t.LoraKey is not null)
                {
                    w.WriteString("l", t.LoraKey);
                }

                w.WriteStartArray("s");
                foreach (var d in t.Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteBase64String("v", MemoryMarshal.AsBytes(t.Sketch.AsSpan()));
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteStartObject("rows");
        foreach (var (component, rows) in Rows)
        {
            w.WriteBase64String(component, MemoryMarshal.AsBytes(rows.AsSpan()));
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Reads a record written by <see cref="Write"/>.</summary>
    public static ModelRecord Read(ReadOnlyMemory<byte> json)
    {
        using var d = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        var r = d.RootElement;
        List<RecordTensor> List(string prop) => r.TryGetProperty(prop, out var a)
            ? [.. a.EnumerateArray().Select(t => new RecordTensor(
                t.GetProperty("k").GetString()!,
                t.TryGetProperty("l", out var l) ? l.GetString() : null,
                [.. t.GetProperty("s").EnumerateArray().Select(x => x.GetInt64())],
                MemoryMarshal.Cast<byte, float>(t.GetProperty("v").GetBytesFromBase64()).ToArray()))]
            : [];
        return new ModelRecord
        {
            Id = r.GetProperty("id").GetString()!,
            Name = r.GetProperty("name").GetString()!,
            Bank = r.GetProperty("bank").GetString()!,
            Architecture = r.TryGetProperty("architecture", out var a) ? a.GetString() ?? "unknown" : "unknown",
            ModelId = r.TryGetProperty("model_id", out var m) ? m.GetString() : null,
            Tensors = List("tensors"),
            Modules = List("modules"),
            Rows = r.TryGetProperty("rows", out var rows)
                ? rows.EnumerateObject().ToDictionary(p => p.Name, p => MemoryMarshal.Cast<byte, ulong>(p.Value.GetBytesFromBase64()).ToArray(), StringComparer.Ordinal)
                : new(StringComparer.Ordinal),
        };
    }
}

/// <summary>
/// Model sketches in a folder of their own (one JSON file per bank and model, <c>BANK/ID.json</c>), so the
/// bank database only holds the exact signals and any storage backend can sit beside it.
/// </summary>
public sealed class ModelRecordStore(string directory)
{
    /// <summary>The folder.</summary>
    public string Directory { get; } = directory;

    /// <summary>Saves (replaces) a record.</summary>
    public void Save(ModelRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var dir = Path.Combine(Directory, record.Bank);
        System.IO.Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, record.Id + ".json");
        var tmp = path + ".tmp";
        using (var f = File.Create(tmp))
        {
            record.Write(f);
        }

        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Loads the records of the given banks (unreadable files are skipped and reported).</summary>
    public List<ModelRecord> Load(IEnumerable<string> banks, Action<string>? warn = null)
    {
        ArgumentNullException.ThrowIfNull(banks);
        var result = new List<ModelRecord>();
        foreach (var bank in banks)
        {
            var dir = Path.Combine(Directory, bank);
            if (!System.IO.Directory.Exists(dir))
            {
                continue;
            }

            foreach (var file in System.IO.Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
            {
                try
                {
                    result.Add(ModelRecord.Read(File.ReadAllBytes(file)));
                }
                catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IOException)
                {
                    warn?.Invoke($"{file}: {ex.Message}");
                }
            }
        }

        return result;
    }
}
