using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>Exact widening of stored tensor values to fp32 (MFv1 canonical values), and the cast paths.</summary>
public static class TensorValues
{
    private static readonly float[] E4M3 = BuildF8(4, 3, fn: true);
    private static readonly float[] E5M2 = BuildF8(5, 2, fn: false);

    /// <summary>Bytes per widening unit (one element, or one ggml block for GGUF quants: block_q8_0, block_q4_K, …).</summary>
    public static int UnitBytes(TensorDType t) => t switch
    {
        TensorDType.Q8_0 => 34,
        TensorDType.Q4_0 => 18,
        TensorDType.Q4_1 => 20,
        TensorDType.Q5_0 => 22,
        TensorDType.Q5_1 => 24,
        TensorDType.Q4_K => 144,
        TensorDType.Q5_K => 176,
        TensorDType.Q6_K => 210,
        TensorDType.Q2_K => 84,
        TensorDType.Q3_K => 110,
        TensorDType.IQ4_NL => 18,
        TensorDType.IQ4_XS => 136,
        _ => TensorDTypes.Size(t),
    };

    /// <summary>Values per widening unit (32 per block, 256 per k-quant super-block).</summary>
    public static int UnitValues(TensorDType t) => t switch
    {
        TensorDType.Q8_0 or TensorDType.Q4_0 or TensorDType.Q4_1 or TensorDType.Q5_0 or TensorDType.Q5_1 or TensorDType.IQ4_NL => 32,
        TensorDType.Q4_K or TensorDType.Q5_K or TensorDType.Q6_K or TensorDType.Q2_K or TensorDType.Q3_K or TensorDType.IQ4_XS => 256,
        _ => 1,
    };

    /// <summary>GGUF block types this reader dequantises (others are structure only).</summary>
    public static bool IsDequantised(TensorDType t) => UnitValues(t) > 1;

    /// <summary>Widens whole units of <paramref name="src"/> into <paramref name="dst"/> and canonicalises (-0 → +0, one NaN).</summary>
    public static void Widen(ReadOnlySpan<byte> src, TensorDType t, Span<float> dst)
    {
        switch (t)
        {
            case TensorDType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst);
                break;
            case TensorDType.BF16:
                {
                    var s = MemoryMarshal.Cast<byte, ushort>(src);
                    var d = MemoryMarshal.Cast<float, uint>(dst);
                    var i = 0;
                    if (Vector.IsHardwareAccelerated)
                    {
                        for (; i + Vector<ushort>.Count <= s.Length; i += Vector<ushort>.Count)
                        {
                            Vector.Widen(new Vector<ushort>(s[i..]), out var lo, out var hi);
                            (lo << 16).CopyTo(d[i..]);
                            (hi << 16).CopyTo(d[(i + Vector<uint>.Count)..]);
                        }
                    }

                    for (; i < s.Length; i++)
                    {
                        d[i] = (uint)s[i] << 16;
                    }

                    break;
                }

            case TensorDType.F64:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]);
                }

                break;
            case TensorDType.Bool:
            case TensorDType.U8:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = src[i];
                }

                break;
            case TensorDType.I8:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = (sbyte)src[i];
                }

                break;
            case TensorDType.I16:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadInt16LittleEndian(src[(i * 2)..]);
                }

                break;
            case TensorDType.U16:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadUInt16LittleEndian(src[(i * 2)..]);
                }

                break;
            case TensorDType.I32:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(i * 4)..]);
                }

                break;
            case TensorDType.U32:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadUInt32LittleEndian(src[(i * 4)..]);
                }

                break;
            case TensorDType.I64:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(i * 8)..]);
                }

                break;
            case TensorDType.U64:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadUInt64LittleEndian(src[(i * 8)..]);
                }

                break;
            case TensorDType.F8E4M3:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = E4M3[src[i]];
                }

                break;
            case TensorDType.F8E5M2:
                for (var i = 0; i < dst.Length; i++)
                {
                    dst[i] = E5M2[src[i]];
                }

                break;
            case TensorDType.Q8_0:
                for (int b = 0, o = 0; o < dst.Length; b += 34, o += 32)
                {
                    var scale = (float)BinaryPrimitives.ReadHalfLittleEndian(src[b..]);
                    for (var j = 0; j < 32; j++)
                    {
                        dst[o + j] = (sbyte)src[b + 2 + j] * scale;
                    }
                }

                break;
            case TensorDType.Q4_0:
                for (int b = 0, o = 0; o < dst.Length; b += 18, o += 32)
                {
                    var scale = (float)BinaryPrimitives.ReadHalfLittleEndian(src[b..]);
                    for (var j = 0; j < 16; j++)
                    {
                        var q = src[b + 2 + j];
                        dst[o + j] = ((q & 0x0F) - 8) * scale;
                        dst[o + j + 16] = ((q >> 4) - 8) * scale;
                    }
                }

                break;
            case TensorDType.Q4_1:
            case TensorDType.Q5_0:
            case TensorDType.Q5_1:
            case TensorDType.Q4_K:
            case TensorDType.Q5_K:
            case TensorDType.Q6_K:
            case TensorDType.Q2_K:
            case TensorDType.Q3_K:
            case TensorDType.IQ4_NL:
            case TensorDType.IQ4_XS:
                GgmlQuants.Dequantise(src, t, dst);
                break;
            default:
                throw new NotSupportedException($"cannot widen {t}");
        }

        Canonicalize(dst);
    }

    /// <summary>-0 → +0 and every NaN → 0x7FC00000, so equal values hash equally.</summary>
    public static void Canonicalize(Span<float> v)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var nan = new Vector<float>(float.NaN);
            for (; i + Vector<float>.Count <= v.Length; i += Vector<float>.Count)
            {
                var x = new Vector<float>(v[i..]) + Vector<float>.Zero;
                Vector.ConditionalSelect(Vector.Equals(x, x), x, nan).CopyTo(v[i..]);
            }
        }

        for (; i < v.Length; i++)
        {
            var x = v[i] + 0f;
            v[i] = float.IsNaN(x) ? float.NaN : x;
        }
    }

    /// <summary>fp32 → fp16 (round to nearest even) → fp32, in place.</summary>
    public static void CastF16(ReadOnlySpan<float> src, Span<float> dst, Span<Half> scratch)
    {
        TensorPrimitives.ConvertToHalf(src, scratch[..src.Length]);
        TensorPrimitives.ConvertToSingle(scratch[..src.Length], dst);
        Canonicalize(dst[..src.Length]);
    }

    /// <summary>fp32 → bf16 (round to nearest even) → fp32.</summary>
    public static void CastBF16(ReadOnlySpan<float> src, Span<float> dst)
    {
        var s = MemoryMarshal.Cast<float, uint>(src);
        var d = MemoryMarshal.Cast<float, uint>(dst);
        for (var i = 0; i < s.Length; i++)
        {
            var u = s[i];
            if ((u & 0x7FFFFFFF) > 0x7F800000)
            {
                d[i] = 0x7FC00000;
                continue;
            }

            u += 0x7FFF + ((u >> 16) & 1);
            d[i] = u & 0xFFFF0000;
        }

        Canonicalize(dst[..src.Length]);
    }

    /// <summary>Reads all values of a (small) tensor, contiguous or strided, widened; null when unreadable or over <paramref name="maxBytes"/>.</summary>
    public static float[]? ReadAll(SafeFileHandle handle, TensorInfo t, long maxBytes = 256L << 20)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (!t.Readable || t.Length > maxBytes || t.Count > int.MaxValue / 2)
        {
            return null;
        }

        var bytes = new byte[t.Length];
        ZipDirectory.ReadExactly(handle, bytes, t.Offset);
        var values = new float[t.Count];
        if (t.Strides is null)
        {
            var units = (int)(t.Count / UnitValues(t.DType));
            Widen(bytes.AsSpan(0, units * UnitBytes(t.DType)), t.DType, values);
            return values;
        }

        var elem = TensorDTypes.Size(t.DType);
        var gathered = new byte[t.Count * elem];
        var index = new long[t.Shape.Length];
        for (long n = 0; n < t.Count; n++)
        {
            long at = 0;
            for (var d = 0; d < index.Length; d++)
            {
                at += index[d] * t.Strides[d];
            }

            bytes.AsSpan((int)(at * elem), elem).CopyTo(gathered.AsSpan((int)(n * elem)));
            for (var d = index.Length - 1; d >= 0; d--)
            {
                if (++index[d] < t.Shape[d])
                {
                    break;
                }

                index[d] = 0;
            }
        }

        Widen(gathered, t.DType, values);
        return values;
    }

    private static float[] BuildF8(int expBits, int manBits, bool fn)
    {
        var table = new float[256];
        var bias = (1 << (expBits - 1)) - 1;
        for (var b = 0; b < 256; b++)
        {
            var sign = (b & 0x80) != 0 ? -1f : 1f;
            var e = (b >> manBits) & ((1 << expBits) - 1);
            var m = b & ((1 << manBits) - 1);
            float v;
            if (fn && e == (1 << expBits) - 1 && m == (1 << manBits) - 1)
            {
                v = float.NaN;
            }
            else if (!fn && e == (1 << expBits) - 1)
            {
                v = m == 0 ? float.PositiveInfinity : float.NaN;
            }
            else if (e == 0)
            {
                v = m / (float)(1 << manBits) * MathF.Pow(2, 1 - bias);
            }
            else
            {
                v = (1 + (m / (float)(1 << manBits))) * MathF.Pow(2, e - bias);
            }

            table[b] = sign * v;
        }

        return table;
    }
}
