using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>
/// GGUF v1-v3 (little-endian): KVs become metadata text, tensor infos become the directory with dims
/// reversed to PyTorch order. Every count and length is checked against the bytes left before anything is
/// allocated. Big-endian files are refused with a clear reason.
/// </summary>
internal static class GgufReader
{
    private const int MaxKeyBytes = 65535;
    private const int MaxStringBytes = 16 << 20;

    public static void Read(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        // Buffered over a stream that leaves the handle open: the file's other interpretations read it afterwards.
        using var stream = new BufferedStream(new ZipDirectory.HandleStream(handle, 0, length), 1 << 16);
        var r = new Cursor(stream, length);
        if (r.U32() != 0x46554747)
        {
            throw new ModelFormatException("gguf: bad magic");
        }

        var version = r.U32();
        if (version is 0 or > 3)
        {
            throw new ModelFormatException(BinaryPrimitives.ReverseEndianness(version) is >= 1 and <= 3
                ? "gguf: big-endian file (not supported)"
                : $"gguf: unsupported version {version}");
        }

        var v1 = version == 1;
        var tensorCount = v1 ? r.U32() : r.U64();
        var kvCount = v1 ? r.U32() : r.U64();
        if (tensorCount > (ulong)limits.MaxTensors || kvCount > (ulong)(length / 12) || tensorCount > (ulong)(length / 24))
        {
            throw new ModelFormatException($"gguf: implausible counts ({tensorCount} tensors, {kvCount} KVs) for a {length}-byte file");
        }

        doc.Metadata["gguf.version"] = version.ToString(CultureInfo.InvariantCulture);
        long alignment = 32;
        for (ulong i = 0; i < kvCount; i++)
        {
            var key = r.Str(v1, MaxKeyBytes);
            var type = r.U32();
            var value = r.Value(type, v1, 0);
            doc.Metadata[key] = value;
            if (key == "general.alignment")
            {
                if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out alignment) || alignment <= 0 || alignment % 8 != 0 || alignment > 1 << 20)
                {
                    throw new ModelFormatException($"gguf: general.alignment {value} is not a positive multiple of 8");
                }
            }
        }

        var infos = new List<(string Name, long[] Shape, uint Type, ulong Offset)>();
        for (ulong i = 0; i < tensorCount; i++)
        {
            var name = r.Str(v1, MaxKeyBytes);
            var dims = r.U32();
            if (dims > 8)
            {
                throw new ModelFormatException($"gguf: tensor '{name}' has {dims} dimensions");
            }

            var shape = new long[dims];
            for (var d = 0; d < dims; d++)
            {
                var ne = v1 ? r.U32() : r.U64();
                if (ne > long.MaxValue / 2)
                {
                    throw new ModelFormatException($"gguf: tensor '{name}' dimension {ne} too large");
                }

                shape[dims - 1 - d] = (long)ne; // ggml ne[0] is innermost.
            }

            // No ggml type stores more than 8 elements per byte: a larger count is a malformed shape, not a tensor.
            var count = TensorShapes.Count(shape);
            if (count < 0 || count > TensorShapes.MaxElements || count / 8 > length)
            {
                throw new ModelFormatException($"gguf: tensor '{name}' has an absurd shape [{string.Join(',', shape)}] for a {length}-byte file");
            }

            infos.Add((name, shape, r.U32(), r.U64()));
        }

        var dataStart = (r.Position + alignment - 1) / alignment * alignment;
        foreach (var (name, shape, type, offset) in infos)
        {
            var dtype = Type(type);
            var t = new TensorInfo(name, dtype, shape, doc.Path, -1, 0);
            var bytes = Bytes(dtype, t.Count);
            if (offset % (ulong)alignment != 0)
            {
                doc.Flag(AnomalySeverity.Error, "gguf.misaligned", $"tensor '{name}' offset {offset} is not a multiple of {alignment}");
            }

            if (bytes < 0)
            {
                doc.Flag(AnomalySeverity.Info, "gguf.quantised", $"tensor '{name}' has ggml type {type}: structure only");
                doc.Tensors.Add(t with { DType = dtype == TensorDType.Unknown ? TensorDType.OtherQuant : dtype });
            }
            else if (dataStart > length || offset > (ulong)(length - dataStart) || bytes > length - dataStart - (long)offset)
            {
                doc.Flag(AnomalySeverity.Error, "gguf.out-of-bounds", $"tensor '{name}' data runs past the end of the file");
                doc.Tensors.Add(t);
            }
            else
            {
                doc.Tensors.Add(t with { Offset = dataStart + (long)offset, Length = bytes });
            }
        }
    }

    private static TensorDType Type(uint t) => t switch
    {
        0 => TensorDType.F32,
        1 => TensorDType.F16,
        2 => TensorDType.Q4_0,
        3 => TensorDType.Q4_1,
        6 => TensorDType.Q5_0,
        7 => TensorDType.Q5_1,
        8 => TensorDType.Q8_0,
        10 => TensorDType.Q2_K,
        11 => TensorDType.Q3_K,
        12 => TensorDType.Q4_K,
        13 => TensorDType.Q5_K,
        14 => TensorDType.Q6_K,
        20 => TensorDType.IQ4_NL,
        23 => TensorDType.IQ4_XS,
        24 => TensorDType.I8,
        25 => TensorDType.I16,
        26 => TensorDType.I32,
        27 => TensorDType.I64,
        28 => TensorDType.F64,
        30 => TensorDType.BF16,
        _ => TensorDType.OtherQuant,
    };

    // Bytes of a tensor, or -1 when the type is not one we size.
    internal static long Bytes(TensorDType t, long count) => t switch
    {
        _ when TensorValues.IsDequantised(t) => count % TensorValues.UnitValues(t) == 0 ? count / TensorValues.UnitValues(t) * TensorValues.UnitBytes(t) : -1,
        _ when TensorDTypes.Size(t) > 0 => TensorShapes.Bytes(count, TensorDTypes.Size(t)),
        _ => -1,
    };

    private sealed class Cursor(Stream stream, long length)
    {
        private readonly byte[] _b = new byte[8];

        public long Position { get; private set; }

        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

        public string Str(bool v1, int max)
        {
            var n = v1 ? U32() : U64();
            if (n > (ulong)max || (long)n > length - Position)
            {
                throw new ModelFormatException($"gguf: string of {n} bytes at offset {Position} (limit {max}, {length - Position} left)");
            }

            var buf = new byte[n];
            Fill(buf);
            return Encoding.UTF8.GetString(buf);
        }

        public string Value(uint type, bool v1, int depth)
        {
            switch (type)
            {
                case 0: return Take(1)[0].ToString(CultureInfo.InvariantCulture);
                case 1: return ((sbyte)Take(1)[0]).ToString(CultureInfo.InvariantCulture);
                case 2: return BinaryPrimitives.ReadUInt16LittleEndian(Take(2)).ToString(CultureInfo.InvariantCulture);
                case 3: return BinaryPrimitives.ReadInt16LittleEndian(Take(2)).ToString(CultureInfo.InvariantCulture);
                case 4: return U32().ToString(CultureInfo.InvariantCulture);
                case 5: return BinaryPrimitives.ReadInt32LittleEndian(Take(4)).ToString(CultureInfo.InvariantCulture);
                case 6: return BinaryPrimitives.ReadSingleLittleEndian(Take(4)).ToString("R", CultureInfo.InvariantCulture);
                case 7: return Take(1)[0] != 0 ? "true" : "false";
                case 8: return Str(v1, MaxStringBytes);
                case 10: return U64().ToString(CultureInfo.InvariantCulture);
                case 11: return BinaryPrimitives.ReadInt64LittleEndian(Take(8)).ToString(CultureInfo.InvariantCulture);
                case 12: return BinaryPrimitives.ReadDoubleLittleEndian(Take(8)).ToString("R", CultureInfo.InvariantCulture);
                case 9:
                    {
                        if (depth > 8)
                        {
                            throw new ModelFormatException("gguf: arrays nested deeper than 8");
                        }

                        var itemType = U32();
                        var count = v1 ? U32() : U64();
                        if (count > (ulong)(length - Position))
                        {
                            throw new ModelFormatException($"gguf: array of {count} items at offset {Position} runs past the end");
                        }

                        var sb = new StringBuilder("[");
                        for (ulong i = 0; i < count; i++)
                        {
                            var item = Value(itemType, v1, depth + 1);
                            if (i < 16)
                            {
                                sb.Append(i == 0 ? string.Empty : ",").Append(item);
                            }
                        }

                        return sb.Append(count > 16 ? $",… {count} items]" : "]").ToString();
                    }

                default:
                    throw new ModelFormatException($"gguf: unknown value type {type} at offset {Position}");
            }
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            Fill(_b.AsSpan(0, n));
            return _b.AsSpan(0, n);
        }

        private void Fill(Span<byte> buf)
        {
            if (Position + buf.Length > length)
            {
                throw new ModelFormatException($"gguf: truncated at offset {Position}");
            }

            stream.ReadExactly(buf);
            Position += buf.Length;
        }
    }
}
