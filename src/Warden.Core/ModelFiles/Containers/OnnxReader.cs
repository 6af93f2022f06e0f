using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>
/// ONNX (onnx.proto ModelProto), parsed by hand: no protobuf library, no code, no recursion driven by the input.
/// Only ModelProto → graph → initializer (TensorProto) is descended into; every other field (nodes, their
/// subgraphs, value infos) is skipped by its length, so nesting in the file costs nothing. Each length is checked
/// against the bytes of its enclosing message before it is used, groups (deprecated wire types 3/4, whose skipping
/// needs recursion) are refused, and counts are capped. Tensor bytes are never read here: raw_data and the packed
/// fixed-width typed fields (float_data, double_data) are little-endian arrays, so the tensor points at them in
/// place; external data must be a relative path inside the model's own folder (no "..", no absolute path, no link).
/// </summary>
internal static class OnnxReader
{
    private const int MaxNameBytes = 1 << 16;
    private const int MaxDims = 16;

    /// <summary>True when <paramref name="head"/> opens like a serialised ModelProto (ir_version first, then a known field).</summary>
    public static bool LooksLikeOnnx(ReadOnlySpan<byte> head)
    {
        // Every protobuf writer emits fields in number order, so a ModelProto opens with ir_version (field 1, varint)
        // holding a small version, then producer_name (2), producer_version (3), domain (4), model_version (5),
        // doc_string (6), graph (7) or opset_import (8).
        if (head.Length < 3 || head[0] != 0x08 || head[1] is 0 or > 32)
        {
            return false;
        }

        return head[2] is 0x12 or 0x1a or 0x22 or 0x28 or 0x32 or 0x3a or 0x42;
    }

    public static void Read(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        var r = new ProtoCursor(handle, length, "onnx");
        var opsets = new List<string>();
        var graphs = 0;
        while (r.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 0):
                    doc.Metadata["onnx.ir_version"] = r.Varint().ToString(CultureInfo.InvariantCulture);
                    break;
                case (2, 2):
                    doc.Metadata["onnx.producer_name"] = r.String(MaxNameBytes);
                    break;
                case (3, 2):
                    doc.Metadata["onnx.producer_version"] = r.String(MaxNameBytes);
                    break;
                case (4, 2):
                    doc.Metadata["onnx.domain"] = r.String(MaxNameBytes);
                    break;
                case (7, 2):
                    if (++graphs > 1)
                    {
                        // Protobuf merges a repeated singular message; loaders differ on what that means for a graph.
                        doc.Flag(AnomalySeverity.Error, "onnx.multiple-graphs", "the model holds more than one graph field");
                    }

                    var end = r.Enter();
                    ReadGraph(r, end, doc, limits);
                    r.Leave(end);
                    break;
                case (8, 2):
                    {
                        var e = r.Enter();
                        string domain = string.Empty;
                        ulong version = 0;
                        while (r.Next(out var f, out var w))
                        {
                            if (f == 1 && w == 2)
                            {
                                domain = r.String(MaxNameBytes);
                            }
                            else if (f == 2 && w == 0)
                            {
                                version = r.Varint();
                            }
                            else
                            {
                                r.Skip(w);
                            }
                        }

                        r.Leave(e);
                        if (opsets.Count < 64)
                        {
                            opsets.Add((domain.Length == 0 ? "ai.onnx" : domain) + ":" + version.ToString(CultureInfo.InvariantCulture));
                        }

                        break;
                    }

                case (14, 2):
                    {
                        var e = r.Enter();
                        var (k, v) = ReadEntry(r);
                        r.Leave(e);
                        if (k.Length > 0)
                        {
                            doc.Metadata.TryAdd("onnx.meta." + k, v);
                        }

                        break;
                    }

                default:
                    r.Skip(wire);
                    break;
            }
        }

        if (graphs == 0)
        {
            throw new ModelFormatException("onnx: the model has no graph");
        }

        if (opsets.Count > 0)
        {
            doc.Metadata["onnx.opset_import"] = string.Join(',', opsets);
        }

        var anonymous = doc.Tensors.Count(t => IsAnonymous(t.Name));
        if (anonymous > 0)
        {
            doc.Flag(AnomalySeverity.Info, "onnx.anonymous-initializers", $"{anonymous} of {doc.Tensors.Count} initializers have exporter-generated names (onnx::…); they are matched by content (tensor and row hashes), not by name");
        }
    }

    /// <summary>Exporter-generated initializer names (torch.onnx: "onnx::MatMul_123", "/down_blocks.0/…/Constant_output_0", bare numbers).</summary>
    public static bool IsAnonymous(string name) =>
        name.StartsWith("onnx::", StringComparison.Ordinal) || name.StartsWith('/') || (name.Length > 0 && name.All(char.IsAsciiDigit));

    private static void ReadGraph(ProtoCursor r, long end, ModelDocument doc, ModelLimits limits)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var externals = new Dictionary<string, long>(StringComparer.Ordinal);
        var sparse = 0;
        while (r.Next(out var field, out var wire))
        {
            if (field == 5 && wire == 2)
            {
                if (doc.Tensors.Count >= limits.MaxTensors)
                {
                    throw new ModelFormatException($"onnx: more than {limits.MaxTensors} initializers");
                }

                var e = r.Enter();
                var t = ReadTensor(r, doc, externals, limits);
                r.Leave(e);
                if (!names.Add(t.Name))
                {
                    doc.Flag(AnomalySeverity.Error, "onnx.duplicate-initializer", $"initializer '{t.Name}' occurs more than once");
                    continue;
                }

                doc.Tensors.Add(t);
            }
            else if (field == 15 && wire == 2)
            {
                sparse++;
                r.Skip(wire);
            }
            else
            {
                r.Skip(wire);
            }
        }

        if (sparse > 0)
        {
            doc.Flag(AnomalySeverity.Warning, "onnx.sparse-initializer", $"{sparse} sparse initializers: not read");
        }
    }

    private static TensorInfo ReadTensor(ProtoCursor r, ModelDocument doc, Dictionary<string, long> externals, ModelLimits limits)
    {
        var dims = new List<long>();
        var dataType = 0UL;
        var name = string.Empty;
        long rawAt = -1, rawLen = 0;
        long floatAt = -1, floatLen = 0, doubleAt = -1, doubleLen = 0;
        var varintData = false;
        var external = new Dictionary<string, string>(StringComparer.Ordinal);
        var location = 0UL;
        var segmented = false;
        while (r.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 0):
                    AddDim(dims, r.Varint());
                    break;
                case (1, 2):
                    {
                        var e = r.Enter();
                        while (r.Remaining > 0)
                        {
                            AddDim(dims, r.Varint());
                        }

                        r.Leave(e);
                        break;
                    }

                case (2, 0):
                    dataType = r.Varint();
                    break;
                case (3, 2):
                    segmented = true;
                    r.Skip(wire);
                    break;
                case (4, 2):
                    (floatAt, floatLen) = r.Payload();
                    break;
                case (10, 2):
                    (doubleAt, doubleLen) = r.Payload();
                    break;
                case (5, _) or (7, _) or (11, _) or (4, _) or (10, _):
                    // Varint-packed (int32_data holds fp16/bf16/int8 bit patterns one per varint) or unpacked
                    // typed values: not an array in place.
                    varintData = true;
                    r.Skip(wire);
                    break;
                case (8, 2):
                    name = r.String(MaxNameBytes);
                    break;
                case (9, 2):
                    (rawAt, rawLen) = r.Payload();
                    break;
                case (13, 2):
                    {
                        var e = r.Enter();
                        var (k, v) = ReadEntry(r);
                        r.Leave(e);
                        if (external.Count < 16)
                        {
                            external[k] = v;
                        }

                        break;
                    }

                case (14, 0):
                    location = r.Varint();
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        var shape = dims.ToArray();
        var dtype = DType(dataType);
        var count = TensorShapes.Count(shape);
        var label = name.Length == 0 ? "(unnamed)" : name;
        if (count < 0 || count > TensorShapes.MaxElements)
        {
            throw new ModelFormatException($"onnx: initializer '{label}' has an absurd shape [{string.Join(',', shape)}]");
        }

        var t = new TensorInfo(name, dtype, shape, doc.Path, -1, 0);
        var elem = TensorDTypes.Size(dtype);
        var need = elem > 0 ? TensorShapes.Bytes(count, elem) : -1;
        if (segmented)
        {
            doc.Flag(AnomalySeverity.Warning, "onnx.segment", $"initializer '{label}' is segmented: structure only");
            return t;
        }

        if (dtype == TensorDType.Unknown)
        {
            doc.Flag(AnomalySeverity.Warning, "onnx.unknown-dtype", $"initializer '{label}' has data_type {dataType}: structure only");
            return t;
        }

        if (location == 1)
        {
            if (!limits.ExternalData)
            {
                doc.Flag(AnomalySeverity.Warning, "onnx.external-not-read", $"initializer '{label}' is in external data '{external.GetValueOrDefault("location")}': not read for an upload (scan the folder by path)");
                return t;
            }

            return External(t, label, external, need, doc, externals);
        }

        if (rawAt >= 0)
        {
            if (rawLen != need)
            {
                doc.Flag(AnomalySeverity.Error, "onnx.size-mismatch", $"initializer '{label}' raw_data holds {rawLen} bytes, its type and shape need {need}");
                return t;
            }

            return t with { Offset = rawAt, Length = rawLen };
        }

        if (floatAt >= 0 && dtype == TensorDType.F32 && floatLen == need)
        {
            return t with { Offset = floatAt, Length = floatLen };
        }

        if (doubleAt >= 0 && dtype == TensorDType.F64 && doubleLen == need)
        {
            return t with { Offset = doubleAt, Length = doubleLen };
        }

        if (floatAt >= 0 || doubleAt >= 0)
        {
            doc.Flag(AnomalySeverity.Error, "onnx.size-mismatch", $"initializer '{label}' typed data does not match its type and shape");
        }
        else if (varintData)
        {
            doc.Flag(AnomalySeverity.Info, "onnx.varint-data", $"initializer '{label}' stores its values as varints: structure only");
        }
        else if (count > 0)
        {
            doc.Flag(AnomalySeverity.Error, "onnx.no-data", $"initializer '{label}' has no data");
        }

        return t;
    }

    // external_data: location (relative to the model file's folder), offset, length. Anything that leaves the folder
    // (absolute, "..", a link) is refused: a scanned upload must not make Warden read other files of the host.
    private static TensorInfo External(TensorInfo t, string label, Dictionary<string, string> keys, long need, ModelDocument doc, Dictionary<string, long> lengths)
    {
        if (!keys.TryGetValue("location", out var location) || location.Length == 0)
        {
            doc.Flag(AnomalySeverity.Error, "onnx.external-location", $"initializer '{label}' is external but names no location");
            return t;
        }

        var folder = Path.GetDirectoryName(Path.GetFullPath(doc.Path)) ?? "/";
        var normal = location.Replace('\\', '/');
        var full = Path.GetFullPath(Path.Combine(folder, normal));
        if (Path.IsPathRooted(normal) || normal.Split('/').Contains("..") || normal.Contains('\0', StringComparison.Ordinal)
            || !full.StartsWith(folder.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            doc.Flag(AnomalySeverity.Error, "onnx.external-path-escape", $"initializer '{label}' names external data '{location}' outside the model's folder; not read");
            return t;
        }

        if (!lengths.TryGetValue(full, out var fileLength))
        {
            var info = new FileInfo(full);
            if (!info.Exists || info.LinkTarget is not null)
            {
                doc.Flag(AnomalySeverity.Error, "onnx.external-missing", $"initializer '{label}': external data '{location}' is {(info.Exists ? "a symbolic link; not followed" : "missing")}");
                return t;
            }

            fileLength = info.Length;
            lengths[full] = fileLength;
        }

        long offset = 0, length = need;
        if ((keys.TryGetValue("offset", out var o) && !long.TryParse(o, NumberStyles.None, CultureInfo.InvariantCulture, out offset))
            || (keys.TryGetValue("length", out var l) && !long.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out length)))
        {
            doc.Flag(AnomalySeverity.Error, "onnx.external-bad-offset", $"initializer '{label}' has a non-numeric external offset or length");
            return t;
        }

        if (length != need)
        {
            doc.Flag(AnomalySeverity.Error, "onnx.size-mismatch", $"initializer '{label}' external length {length}, its type and shape need {need}");
            return t;
        }

        if (offset > fileLength || length > fileLength - offset)
        {
            doc.Flag(AnomalySeverity.Error, "onnx.out-of-bounds", $"initializer '{label}' runs past the end of external data '{location}'");
            return t;
        }

        if (!doc.Files.Contains(full))
        {
            doc.Files.Add(full);
        }

        return t with { Source = full, Offset = offset, Length = length };
    }

    private static void AddDim(List<long> dims, ulong d)
    {
        if (dims.Count >= MaxDims)
        {
            throw new ModelFormatException($"onnx: initializer has more than {MaxDims} dimensions");
        }

        if (d > (ulong)long.MaxValue)
        {
            throw new ModelFormatException("onnx: negative dimension");
        }

        dims.Add((long)d);
    }

    private static (string Key, string Value) ReadEntry(ProtoCursor r)
    {
        string k = string.Empty, v = string.Empty;
        while (r.Next(out var f, out var w))
        {
            if (f == 1 && w == 2)
            {
                k = r.String(MaxNameBytes);
            }
            else if (f == 2 && w == 2)
            {
                v = r.String(MaxNameBytes);
            }
            else
            {
                r.Skip(w);
            }
        }

        return (k, v);
    }

    /// <summary>onnx.TensorProto.DataType → type (FNUZ float8 variants, strings and 4-bit types are structure only).</summary>
    internal static TensorDType DType(ulong t) => t switch
    {
        1 => TensorDType.F32,
        2 => TensorDType.U8,
        3 => TensorDType.I8,
        4 => TensorDType.U16,
        5 => TensorDType.I16,
        6 => TensorDType.I32,
        7 => TensorDType.I64,
        9 => TensorDType.Bool,
        10 => TensorDType.F16,
        11 => TensorDType.F64,
        12 => TensorDType.U32,
        13 => TensorDType.U64,
        14 => TensorDType.C64,
        15 => TensorDType.C128,
        16 => TensorDType.BF16,
        17 => TensorDType.F8E4M3,
        19 => TensorDType.F8E5M2,
        _ => TensorDType.Unknown,
    };

    /// <summary>
    /// A bounded protobuf cursor over a file: one message level at a time (<see cref="Enter"/>/<see cref="Leave"/>),
    /// each length checked against the enclosing limit, payloads skipped by seeking.
    /// </summary>
    private sealed class ProtoCursor(SafeFileHandle handle, long length, string format)
    {
        private readonly byte[] _buf = new byte[1 << 16];
        private long _bufAt;
        private int _bufLen;
        private long _limit = length;
        private int _depth;

        public long Position { get; private set; }

        public long Remaining => _limit - Position;

        public bool Next(out int field, out int wire)
        {
            field = 0;
            wire = 0;
            if (Position >= _limit)
            {
                return false;
            }

            var tag = Varint();
            wire = (int)(tag & 7);
            var f = tag >> 3;
            if (f == 0 || f > 536_870_911)
            {
                throw new ModelFormatException($"{format}: invalid field number {f} at offset {Position}");
            }

            if (wire is 3 or 4 or 6 or 7)
            {
                throw new ModelFormatException($"{format}: wire type {wire} at offset {Position} (groups and unknown types are refused)");
            }

            field = (int)f;
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 70; shift += 7)
            {
                var b = Byte();
                if (shift == 63 && b > 1)
                {
                    throw new ModelFormatException($"{format}: varint overflows 64 bits at offset {Position}");
                }

                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return v;
                }
            }

            throw new ModelFormatException($"{format}: varint longer than 10 bytes at offset {Position}");
        }

        /// <summary>Reads a length prefix, checks it against the enclosing message, and narrows the limit to it; returns the outer limit.</summary>
        public long Enter()
        {
            if (++_depth > 8)
            {
                throw new ModelFormatException($"{format}: messages nested deeper than 8");
            }

            var (at, len) = Payload(skip: false);
            var outer = _limit;
            _limit = at + len;
            return outer;
        }

        public void Leave(long outer)
        {
            Position = _limit;
            _limit = outer;
            _depth--;
        }

        /// <summary>A length-delimited payload's offset and length, skipped.</summary>
        public (long At, long Length) Payload() => Payload(skip: true);

        public string String(int max)
        {
            var (at, len) = Payload(skip: false);
            if (len > max)
            {
                throw new ModelFormatException($"{format}: string of {len} bytes at offset {at} (limit {max})");
            }

            var b = new byte[len];
            for (var i = 0; i < b.Length; i++)
            {
                b[i] = Byte();
            }

            return Encoding.UTF8.GetString(b);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0:
                    Varint();
                    break;
                case 1:
                    Seek(Position + 8);
                    break;
                case 5:
                    Seek(Position + 4);
                    break;
                case 2:
                    Payload(skip: true);
                    break;
                default:
                    throw new ModelFormatException($"{format}: wire type {wire} at offset {Position}");
            }
        }

        private (long At, long Length) Payload(bool skip)
        {
            var n = Varint();
            if (n > (ulong)Remaining)
            {
                throw new ModelFormatException($"{format}: field of {n} bytes at offset {Position} runs past its message ({Remaining} bytes left)");
            }

            var at = Position;
            if (skip)
            {
                Seek(at + (long)n);
            }

            return (at, (long)n);
        }

        private void Seek(long to)
        {
            if (to > _limit)
            {
                throw new ModelFormatException($"{format}: truncated at offset {Position}");
            }

            Position = to;
        }

        private byte Byte()
        {
            if (Position >= _limit)
            {
                throw new ModelFormatException($"{format}: truncated at offset {Position}");
            }

            if (Position < _bufAt || Position >= _bufAt + _bufLen)
            {
                _bufAt = Position;
                _bufLen = RandomAccess.Read(handle, _buf, Position);
                if (_bufLen <= 0)
                {
                    throw new ModelFormatException($"{format}: truncated at offset {Position}");
                }
            }

            return _buf[Position++ - _bufAt];
        }
    }
}
