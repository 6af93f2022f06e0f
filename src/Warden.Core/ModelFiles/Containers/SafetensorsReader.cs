using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>
/// safetensors: u64 LE header length N (≤ 100 MB), JSON header starting with '{' (space padding allowed), then one
/// byte buffer that tensors must tile exactly. Every rule of the reference reader is checked; violations are
/// anomalies (loaders differ on them), an unparseable header is a <see cref="ModelFormatException"/>.
/// </summary>
internal static class SafetensorsReader
{
    public static void Read(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        if (length < 8)
        {
            throw new ModelFormatException("safetensors: shorter than its 8-byte header length");
        }

        Span<byte> n8 = stackalloc byte[8];
        ZipDirectory.ReadExactly(handle, n8, 0);
        var n = BinaryPrimitives.ReadUInt64LittleEndian(n8);
        if (n > (ulong)limits.MaxHeaderBytes)
        {
            throw new ModelFormatException($"safetensors: header length {n} exceeds the {limits.MaxHeaderBytes}-byte limit");
        }

        if ((long)n > length - 8)
        {
            throw new ModelFormatException($"safetensors: header length {n} runs past the end of the {length}-byte file");
        }

        var header = new byte[n];
        ZipDirectory.ReadExactly(handle, header, 8);
        if (header.Length == 0 || header[0] != (byte)'{')
        {
            throw new ModelFormatException("safetensors: header does not start with '{'");
        }

        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw new ModelFormatException("safetensors: header is not valid UTF-8");
        }

        var dataStart = 8 + (long)n;
        var dataLen = length - dataStart;
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(header.AsMemory().TrimEnd((byte)' '), new JsonDocumentOptions { MaxDepth = limits.MaxDepth });
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"safetensors: header is not valid JSON: {ex.Message}", ex);
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException($"safetensors: header is not valid UTF-8 JSON: {ex.Message}", ex);
        }

        using (json)
        {
            if (json.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelFormatException("safetensors: header is not a JSON object");
            }

            var names = new HashSet<string>(StringComparer.Ordinal);
            var extents = new List<(long Begin, long End, string Name)>();
            foreach (var p in json.RootElement.EnumerateObject())
            {
                if (!names.Add(p.Name))
                {
                    doc.Flag(AnomalySeverity.Error, "safetensors.duplicate-key", $"key '{p.Name}' occurs more than once");
                    continue;
                }

                if (p.Name == "__metadata__")
                {
                    ReadMetadata(p.Value, doc);
                    continue;
                }

                if (doc.Tensors.Count >= limits.MaxTensors)
                {
                    throw new ModelFormatException($"safetensors: more than {limits.MaxTensors} tensors");
                }

                var t = ReadTensor(p.Name, p.Value, dataStart, dataLen, doc);
                if (t is not null)
                {
                    doc.Tensors.Add(t.Value.Info);
                    extents.Add((t.Value.Begin, t.Value.End, p.Name));
                }
            }

            // Tensors must tile the buffer from 0 with no holes or overlaps, and the buffer must end the file.
            extents.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long at = 0;
            foreach (var (begin, end, name) in extents)
            {
                if (begin < at)
                {
                    doc.Flag(AnomalySeverity.Error, "safetensors.overlap", $"tensor '{name}' overlaps the previous tensor");
                }
                else if (begin > at)
                {
                    doc.Flag(AnomalySeverity.Error, "safetensors.hole", $"{begin - at} unused bytes before tensor '{name}'");
                }

                at = Math.Max(at, end);
            }

            if (at < dataLen)
            {
                doc.Flag(AnomalySeverity.Error, "safetensors.trailing-bytes", $"{dataLen - at} bytes after the last tensor (the reference reader rejects the file)");
            }
        }
    }

    private static (TensorInfo Info, long Begin, long End)? ReadTensor(string name, JsonElement v, long dataStart, long dataLen, ModelDocument doc)
    {
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
        {
            doc.Flag(AnomalySeverity.Error, "safetensors.bad-entry", $"tensor '{name}' lacks dtype, shape or data_offsets");
            return null;
        }

        var shape = new long[Math.Min(sh.GetArrayLength(), 64)];
        var i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (i >= shape.Length || d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
            {
                doc.Flag(AnomalySeverity.Error, "safetensors.bad-shape", $"tensor '{name}' has an invalid shape");
                return null;
            }

            shape[i++] = dim;
        }

        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin)
        {
            doc.Flag(AnomalySeverity.Error, "safetensors.bad-offsets", $"tensor '{name}' has invalid data_offsets");
            return null;
        }

        var dtype = TensorDTypes.FromSafetensors(dt.GetString()!);
        var elem = TensorDTypes.Size(dtype);
        // An absurd shape (a product that overflows, or more elements than the file has bits) is malformed.
        var count = TensorShapes.Count(shape);
        if (count < 0 || count > TensorShapes.MaxElements || count / 8 > dataStart + dataLen || TensorShapes.Bytes(count, elem) < 0)
        {
            throw new ModelFormatException($"safetensors: tensor '{name}' has an absurd shape [{string.Join(',', shape)}]");
        }

        var valid = true;
        if (dtype == TensorDType.Unknown)
        {
            doc.Flag(AnomalySeverity.Warning, "safetensors.unknown-dtype", $"tensor '{name}' has dtype '{dt.GetString()}'; structure only");
            valid = false;
        }
        else if (end - begin != count * elem)
        {
            doc.Flag(AnomalySeverity.Error, "safetensors.size-mismatch", $"tensor '{name}' spans {end - begin} bytes, its dtype and shape need {count * elem}");
            valid = false;
        }

        if (end > dataLen)
        {
            doc.Flag(AnomalySeverity.Error, "safetensors.out-of-bounds", $"tensor '{name}' ends at {end}, past the {dataLen}-byte buffer");
            valid = false;
        }

        return (new TensorInfo(name, dtype, shape, doc.Path, valid ? dataStart + begin : -1, valid ? end - begin : 0), begin, Math.Min(end, dataLen));
    }

    private static void ReadMetadata(JsonElement meta, ModelDocument doc)
    {
        if (meta.ValueKind != JsonValueKind.Object)
        {
            doc.Flag(AnomalySeverity.Error, "safetensors.bad-metadata", "__metadata__ is not an object");
            return;
        }

        foreach (var m in meta.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
            {
                doc.Flag(AnomalySeverity.Error, "safetensors.metadata-value", $"metadata '{m.Name}' is not a string (the reference reader rejects the file)");
                doc.Metadata[m.Name] = m.Value.GetRawText();
            }
            else
            {
                doc.Metadata[m.Name] = m.Value.GetString()!;
            }
        }
    }
}
