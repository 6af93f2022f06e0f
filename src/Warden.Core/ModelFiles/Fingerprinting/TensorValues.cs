using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first chunk of a one-off CLI scan: no tier-0 vector code
    public static void Widen(ReadOnlySpan<byte> src, TensorDType t, Span<float> dst)
    {
        switch (t)
        {
            case TensorDType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                // Widened and canonicalised in one integer pass: the fp16 → fp32 step was most of a scan's tensor
                // work (TensorPrimitives has no F16C path), and a second pass over the fp32 values cost more.
                WidenF16(MemoryMarshal.Cast<byte, ushort>(src), MemoryMarshal.Cast<float, uint>(dst));
                return;
            case TensorDType.BF16:
                WidenBF16(MemoryMarshal.Cast<byte, ushort>(src), MemoryMarshal.Cast<float, uint>(dst));
                return;

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

    // The bits Canonicalize gives every NaN (float.NaN as the runtime defines it): the fused paths must agree.
    private static readonly uint CanonicalNaN = BitConverter.SingleToUInt32Bits(float.NaN);

    // 2^112: moves an fp16 exponent (bias 15) to fp32's (bias 127).
    private static readonly float Pow2To112 = BitConverter.UInt32BitsToSingle(0x7780_0000u);

    /// <summary>
    /// fp16 → fp32 bits, canonical (−0 → +0, every NaN → <see cref="CanonicalNaN"/>), exactly as
    /// <see cref="TensorPrimitives.ConvertToSingle(ReadOnlySpan{Half}, Span{float})"/> then <see cref="Canonicalize"/>:
    /// the magnitude bits shifted into place and scaled by 2^112 (exact for normals and subnormals alike), the
    /// exponent forced to all ones for ±Inf, the sign put back.
    /// </summary>
    internal static void WidenF16(ReadOnlySpan<ushort> src, Span<uint> dst) => WidenHalves<F16Widener>(src, dst);

    /// <summary>bf16 → fp32 bits, canonical (the upper half of an fp32; −0 → +0, NaN → <see cref="CanonicalNaN"/>).</summary>
    internal static void WidenBF16(ReadOnlySpan<ushort> src, Span<uint> dst) => WidenHalves<BF16Widener>(src, dst);

    /// <summary>
    /// The one loop for both 16-bit float formats: 16 values a step through <typeparamref name="TWidener"/>'s lanes,
    /// the tail one by one. A struct type argument gets its own compiled copy with the lane maths inlined, so this
    /// costs what the two hand-written loops did.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first chunk of a one-off CLI scan: no tier-0 vector code
    private static void WidenHalves<TWidener>(ReadOnlySpan<ushort> src, Span<uint> dst)
        where TWidener : struct, IHalfWidener
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated && src.Length >= Vector256<ushort>.Count)
        {
            ref var s0 = ref MemoryMarshal.GetReference(src);
            ref var d0 = ref MemoryMarshal.GetReference(dst[..src.Length]);
            for (; i + Vector256<ushort>.Count <= src.Length; i += Vector256<ushort>.Count)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s0, (nuint)i));
                TWidener.Lanes(lo).StoreUnsafe(ref d0, (nuint)i);
                TWidener.Lanes(hi).StoreUnsafe(ref d0, (nuint)(i + Vector256<uint>.Count));
            }
        }

        for (; i < src.Length; i++)
        {
            dst[i] = TWidener.Bits(src[i]);
        }
    }

    /// <summary>One 16-bit float format's widening to canonical fp32 bits, per lane and per value.</summary>
    private interface IHalfWidener
    {
        /// <summary>Eight values, each zero-extended to 32 bits.</summary>
        static abstract Vector256<uint> Lanes(Vector256<uint> h);

        static abstract uint Bits(ushort h);
    }

    private readonly struct F16Widener : IHalfWidener
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Lanes(Vector256<uint> h)
        {
            var abs = h & Vector256.Create(0x7FFFu);
            var scaled = (Vector256.AsSingle(abs << 13) * Vector256.Create(Pow2To112)).AsUInt32();
            var magnitude = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(0x7C00u)), Vector256.Create(0x7F80_0000u), scaled);
            var bits = magnitude | ((h & Vector256.Create(0x8000u)) << 16);
            bits = Vector256.ConditionalSelect(Vector256.Equals(abs, Vector256<uint>.Zero), Vector256<uint>.Zero, bits);
            return Vector256.ConditionalSelect(Vector256.GreaterThan(abs, Vector256.Create(0x7C00u)), Vector256.Create(CanonicalNaN), bits);
        }

        public static uint Bits(ushort h)
        {
            uint abs = h & 0x7FFFu;
            if (abs == 0)
            {
                return 0;
            }

            if (abs > 0x7C00)
            {
                return CanonicalNaN;
            }

            var magnitude = abs == 0x7C00 ? 0x7F80_0000u : BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(abs << 13) * Pow2To112);
            return magnitude | ((uint)(h & 0x8000) << 16);
        }
    }

    private readonly struct BF16Widener : IHalfWidener
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Lanes(Vector256<uint> h)
        {
            var u = h << 16;
            var m = u & Vector256.Create(0x7FFF_FFFFu);
            u = Vector256.ConditionalSelect(Vector256.Equals(m, Vector256<uint>.Zero), Vector256<uint>.Zero, u);
            return Vector256.ConditionalSelect(Vector256.GreaterThan(m, Vector256.Create(0x7F80_0000u)), Vector256.Create(CanonicalNaN), u);
        }

        public static uint Bits(ushort h)
        {
            var u = (uint)h << 16;
            var m = u & 0x7FFF_FFFFu;
            return m == 0 ? 0 : m > 0x7F80_0000u ? CanonicalNaN : u;
        }
    }

    /// <summary>-0 → +0 and every NaN → 0x7FC00000, so equal values hash equally.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first chunk of a one-off CLI scan: no tier-0 vector code
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
