using System.Formats.Cbor;
using System.Globalization;

namespace Warden.Core.Provenance.C2pa;

/// <summary>
/// CBOR to plain .NET values (string, long, double, bool, null, byte[], List, Dictionary with string keys), in
/// lax mode (C2PA producers write non-canonical integers), with depth and item limits.
/// </summary>
internal static class Cbor
{
    private const int MaxItems = 1_000_000;

    public static object? Decode(ReadOnlyMemory<byte> data, int maxDepth = 64)
    {
        try
        {
            var reader = new CborReader(data, CborConformanceMode.Lax, allowMultipleRootLevelValues: false);
            var items = 0;
            return Read(reader, 0, maxDepth, ref items);
        }
        catch (CborContentException ex)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, $"bad CBOR: {ex.Message}");
        }
        catch (InvalidOperationException ex)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, $"bad CBOR: {ex.Message}");
        }
        catch (OverflowException ex)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, $"bad CBOR: {ex.Message}");
        }
    }

    private static object? Read(CborReader r, int depth, int maxDepth, ref int items)
    {
        if (depth > maxDepth || ++items > MaxItems)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, "CBOR nested too deep or too many items");
        }

        switch (r.PeekState())
        {
            case CborReaderState.UnsignedInteger:
                var u = r.ReadUInt64();
                return u <= long.MaxValue ? (object)(long)u : (double)u;
            case CborReaderState.NegativeInteger:
                return r.ReadInt64();
            case CborReaderState.ByteString:
            case CborReaderState.StartIndefiniteLengthByteString:
                return r.ReadByteString();
            case CborReaderState.TextString:
            case CborReaderState.StartIndefiniteLengthTextString:
                return r.ReadTextString();
            case CborReaderState.StartArray:
                {
                    var n = r.ReadStartArray();
                    var list = new List<object?>(Math.Min(n ?? 4, 1024));
                    while (r.PeekState() != CborReaderState.EndArray)
                    {
                        list.Add(Read(r, depth + 1, maxDepth, ref items));
                    }

                    r.ReadEndArray();
                    return list;
                }

            case CborReaderState.StartMap:
                {
                    var n = r.ReadStartMap();
                    var map = new Dictionary<string, object?>(Math.Min(n ?? 4, 1024), StringComparer.Ordinal);
                    while (r.PeekState() != CborReaderState.EndMap)
                    {
                        var key = Read(r, depth + 1, maxDepth, ref items);
                        var value = Read(r, depth + 1, maxDepth, ref items);
                        map[Convert.ToString(key, CultureInfo.InvariantCulture) ?? string.Empty] = value;
                    }

                    r.ReadEndMap();
                    return map;
                }

            case CborReaderState.Tag:
                r.ReadTag();
                return Read(r, depth + 1, maxDepth, ref items);
            case CborReaderState.Boolean:
                return r.ReadBoolean();
            case CborReaderState.Null:
                r.ReadNull();
                return null;
            case CborReaderState.SimpleValue:
                return (long)r.ReadSimpleValue();
            case CborReaderState.HalfPrecisionFloat:
            case CborReaderState.SinglePrecisionFloat:
            case CborReaderState.DoublePrecisionFloat:
                return r.ReadDouble();
            default:
                throw new ProvenanceException(ProvenanceError.Malformed, $"unexpected CBOR item {r.PeekState()}");
        }
    }

    /// <summary>A map's text value.</summary>
    public static string? Str(this Dictionary<string, object?>? map, string key) =>
        map is not null && map.TryGetValue(key, out var v) && v is string s ? s : null;

    /// <summary>A map's map value.</summary>
    public static Dictionary<string, object?>? Map(this Dictionary<string, object?>? map, string key) =>
        map is not null && map.TryGetValue(key, out var v) ? v as Dictionary<string, object?> : null;

    /// <summary>A map's array value.</summary>
    public static List<object?>? List(this Dictionary<string, object?>? map, string key) =>
        map is not null && map.TryGetValue(key, out var v) ? v as List<object?> : null;

    /// <summary>A map's byte-string value.</summary>
    public static byte[]? Bytes(this Dictionary<string, object?>? map, string key) =>
        map is not null && map.TryGetValue(key, out var v) ? v as byte[] : null;

    /// <summary>A map's integer value.</summary>
    public static long? Long(this Dictionary<string, object?>? map, string key) =>
        map is not null && map.TryGetValue(key, out var v) && v is long l ? l : null;

    /// <summary>A short display of a value (for parameters).</summary>
    public static string Display(object? v) => v switch
    {
        null => "null",
        string s => s,
        byte[] b => Convert.ToHexStringLower(b.AsSpan(0, Math.Min(b.Length, 64))),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        List<object?> l => "[" + string.Join(", ", l.Take(16).Select(Display)) + "]",
        Dictionary<string, object?> m => "{" + string.Join(", ", m.Take(16).Select(kv => kv.Key + ": " + Display(kv.Value))) + "}",
        _ => v.ToString() ?? string.Empty,
    };
}
