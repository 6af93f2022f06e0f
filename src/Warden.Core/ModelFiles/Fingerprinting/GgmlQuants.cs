using System.Buffers.Binary;

namespace Warden.Core.ModelFiles;

/// <summary>
/// Dequantisation of ggml block types exactly as ggml's reference <c>dequantize_row_*</c> (ggml-quants.c) and
/// gguf-py compute it: fp16 scales widened to fp32, then one fp32 multiply (and one add/subtract, unfused) per
/// value, in ggml's order of operations, so a dequantised tensor hashes the same as the one ggml would produce.
/// Block layouts: block_q4_1 {d, m, qs[16]}, block_q5_0 {d, qh[4], qs[16]}, block_q5_1 {d, m, qh[4], qs[16]},
/// block_q4_K {d, dmin, scales[12], qs[128]}, block_q5_K {d, dmin, scales[12], qh[32], qs[128]},
/// block_q6_K {ql[128], qh[64], scales[16] (int8), d}, block_q2_K {scales[16], qs[64], d, dmin},
/// block_q3_K {hmask[32], qs[64], scales[12], d}, block_iq4_nl {d, qs[16]}, block_iq4_xs {d, scales_h, scales_l[4], qs[128]}.
/// </summary>
internal static class GgmlQuants
{
    /// <summary>Dequantises whole blocks of <paramref name="src"/> into <paramref name="dst"/> (which holds exactly their values).</summary>
    public static void Dequantise(ReadOnlySpan<byte> src, TensorDType t, Span<float> dst)
    {
        var bytes = TensorValues.UnitBytes(t);
        var values = TensorValues.UnitValues(t);
        for (int b = 0, o = 0; o < dst.Length; b += bytes, o += values)
        {
            var block = src.Slice(b, bytes);
            var y = dst.Slice(o, values);
            switch (t)
            {
                case TensorDType.Q4_1:
                    Q4_1(block, y);
                    break;
                case TensorDType.Q5_0:
                    Q5(block, y, hasMin: false);
                    break;
                case TensorDType.Q5_1:
                    Q5(block, y, hasMin: true);
                    break;
                case TensorDType.Q4_K:
                    Q4_K(block, y);
                    break;
                case TensorDType.Q5_K:
                    Q5_K(block, y);
                    break;
                case TensorDType.Q6_K:
                    Q6_K(block, y);
                    break;
                case TensorDType.Q2_K:
                    Q2_K(block, y);
                    break;
                case TensorDType.Q3_K:
                    Q3_K(block, y);
                    break;
                case TensorDType.IQ4_NL:
                    IQ4_NL(block, y);
                    break;
                case TensorDType.IQ4_XS:
                    IQ4_XS(block, y);
                    break;
                default:
                    throw new NotSupportedException($"cannot dequantise {t}");
            }
        }
    }

    private static float Half(ReadOnlySpan<byte> b) => (float)BinaryPrimitives.ReadHalfLittleEndian(b);

    private static void Q4_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x);
        var m = Half(x[2..]);
        var qs = x[4..];
        for (var j = 0; j < 16; j++)
        {
            y[j] = ((qs[j] & 0x0F) * d) + m;
            y[j + 16] = ((qs[j] >> 4) * d) + m;
        }
    }

    private static void Q5(ReadOnlySpan<byte> x, Span<float> y, bool hasMin)
    {
        var d = Half(x);
        var m = hasMin ? Half(x[2..]) : 0f;
        var at = hasMin ? 4 : 2;
        var qh = BinaryPrimitives.ReadUInt32LittleEndian(x[at..]);
        var qs = x[(at + 4)..];
        for (var j = 0; j < 16; j++)
        {
            var xh0 = (int)(((qh >> j) << 4) & 0x10);
            var xh1 = (int)((qh >> (j + 12)) & 0x10);
            var x0 = (qs[j] & 0x0F) | xh0;
            var x1 = (qs[j] >> 4) | xh1;
            if (hasMin)
            {
                y[j] = (x0 * d) + m;
                y[j + 16] = (x1 * d) + m;
            }
            else
            {
                y[j] = (x0 - 16) * d;
                y[j + 16] = (x1 - 16) * d;
            }
        }
    }

    // get_scale_min_k4: six-bit scale and min j of the twelve packed bytes.
    private static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    private static void Q4_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x);
        var min = Half(x[2..]);
        var scales = x.Slice(4, 12);
        var q = x[16..];
        var o = 0;
        for (int j = 0, s = 0; j < 256; j += 64, s += 2)
        {
            var (sc1, m1) = ScaleMin(s, scales);
            var (sc2, m2) = ScaleMin(s + 1, scales);
            float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
            for (var l = 0; l < 32; l++)
            {
                y[o++] = (d1 * (q[l] & 0xF)) - min1;
            }

            for (var l = 0; l < 32; l++)
            {
                y[o++] = (d2 * (q[l] >> 4)) - min2;
            }

            q = q[32..];
        }
    }

    private static void Q5_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x);
        var min = Half(x[2..]);
        var scales = x.Slice(4, 12);
        var qh = x.Slice(16, 32);
        var ql = x[48..];
        var o = 0;
        int u1 = 1, u2 = 2;
        for (int j = 0, s = 0; j < 256; j += 64, s += 2)
        {
            var (sc1, m1) = ScaleMin(s, scales);
            var (sc2, m2) = ScaleMin(s + 1, scales);
            float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
            for (var l = 0; l < 32; l++)
            {
                y[o++] = (d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0))) - min1;
            }

            for (var l = 0; l < 32; l++)
            {
                y[o++] = (d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0))) - min2;
            }

            ql = ql[32..];
            u1 <<= 2;
            u2 <<= 2;
        }
    }

    private static void Q6_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var ql = x[..128];
        var qh = x.Slice(128, 64);
        var sc = x.Slice(192, 16);
        var d = Half(x[208..]);
        for (var n = 0; n < 256; n += 128)
        {
            for (var l = 0; l < 32; l++)
            {
                var s = l / 16;
                var q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                var q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                var q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                var q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[n + l] = d * (sbyte)sc[s] * q1;
                y[n + l + 32] = d * (sbyte)sc[s + 2] * q2;
                y[n + l + 64] = d * (sbyte)sc[s + 4] * q3;
                y[n + l + 96] = d * (sbyte)sc[s + 6] * q4;
            }

            ql = ql[64..];
            qh = qh[32..];
            sc = sc[8..];
        }
    }

    private static void Q2_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var scales = x[..16];
        var q = x.Slice(16, 64);
        var d = Half(x[80..]);
        var min = Half(x[82..]);
        int o = 0, s = 0;
        for (var n = 0; n < 256; n += 128)
        {
            for (var shift = 0; shift < 8; shift += 2)
            {
                for (var half = 0; half < 32; half += 16)
                {
                    var sc = scales[s++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (var l = 0; l < 16; l++)
                    {
                        y[o++] = (dl * ((q[l + half] >> shift) & 3)) - ml;
                    }
                }
            }

            q = q[32..];
        }
    }

    private static void Q3_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var hm = x[..32];
        var q = x.Slice(32, 64);
        var packed = x.Slice(96, 12);
        var d = Half(x[108..]);

        // The twelve packed bytes hold sixteen 6-bit scales: low nibbles in bytes 0-7, high 2-bit pairs in 8-11
        // (ggml's kmask1/kmask2 shuffle on four u32 words).
        Span<uint> aux = stackalloc uint[4];
        aux[0] = BinaryPrimitives.ReadUInt32LittleEndian(packed);
        aux[1] = BinaryPrimitives.ReadUInt32LittleEndian(packed[4..]);
        var tmp = BinaryPrimitives.ReadUInt32LittleEndian(packed[8..]);
        const uint k1 = 0x03030303, k2 = 0x0f0f0f0f;
        aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
        aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
        aux[0] = (aux[0] & k2) | ((tmp & k1) << 4);
        aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
        Span<sbyte> scales = stackalloc sbyte[16];
        for (var i = 0; i < 16; i++)
        {
            scales[i] = (sbyte)(aux[i >> 2] >> (8 * (i & 3)));
        }

        int o = 0, s = 0, m = 1;
        for (var n = 0; n < 256; n += 128)
        {
            for (var shift = 0; shift < 8; shift += 2)
            {
                for (var half = 0; half < 32; half += 16)
                {
                    var dl = d * (scales[s++] - 32);
                    for (var l = 0; l < 16; l++)
                    {
                        y[o++] = dl * (((q[l + half] >> shift) & 3) - ((hm[l + half] & m) != 0 ? 0 : 4));
                    }
                }

                m <<= 1;
            }

            q = q[32..];
        }
    }

    // kvalues_iq4nl: the non-linear 4-bit codebook of IQ4_NL and IQ4_XS.
    private static ReadOnlySpan<sbyte> Iq4Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    private static void IQ4_NL(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x);
        var qs = x.Slice(2, 16);
        for (var j = 0; j < 16; j++)
        {
            y[j] = d * Iq4Values[qs[j] & 0xF];
            y[j + 16] = d * Iq4Values[qs[j] >> 4];
        }
    }

    private static void IQ4_XS(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x);
        var scalesH = BinaryPrimitives.ReadUInt16LittleEndian(x[2..]);
        var scalesL = x.Slice(4, 4);
        var qs = x.Slice(8, 128);
        for (var ib = 0; ib < 8; ib++)
        {
            var ls = ((scalesL[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scalesH >> (2 * ib)) & 3) << 4);
            var dl = d * (ls - 32);
            var q = qs.Slice(16 * ib, 16);
            var o = 32 * ib;
            for (var j = 0; j < 16; j++)
            {
                y[o + j] = dl * Iq4Values[q[j] & 0xF];
                y[o + j + 16] = dl * Iq4Values[q[j] >> 4];
            }
        }
    }
}
