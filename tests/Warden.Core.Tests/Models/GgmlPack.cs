using System.Buffers.Binary;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Test-side ggml block packing (the bit layouts of ggml's quantize_row_*_ref: nibble pairing, high-bit planes,
/// the twelve-byte 6-bit scale/min packing of the k-quants), a simple quantiser for each type, an fp8 encoder,
/// and a per-value reference decode written from the layout (value index → bits), independent of the
/// production block loops.
/// </summary>
public static class GgmlPack
{
    public static readonly TensorDType[] Types = [TensorDType.Q8_0, TensorDType.Q4_0, TensorDType.Q4_1, TensorDType.Q5_0, TensorDType.Q5_1, TensorDType.Q4_K, TensorDType.Q5_K, TensorDType.Q6_K, TensorDType.Q2_K, TensorDType.Q3_K, TensorDType.IQ4_NL, TensorDType.IQ4_XS];

    public static int BlockValues(TensorDType t) => t is TensorDType.Q4_K or TensorDType.Q5_K or TensorDType.Q6_K or TensorDType.Q2_K or TensorDType.Q3_K or TensorDType.IQ4_XS ? 256 : 32;

    public static int BlockBytes(TensorDType t) => t switch
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
        _ => throw new ArgumentException(t.ToString()),
    };

    private static float H(ReadOnlySpan<byte> b) => (float)BinaryPrimitives.ReadHalfLittleEndian(b);

    private static (int Scale, int Min) K4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    /// <summary>Value <paramref name="i"/> of one block, decoded from the layout with ggml's arithmetic.</summary>
    public static float Reference(TensorDType t, ReadOnlySpan<byte> x, int i)
    {
        switch (t)
        {
            case TensorDType.Q8_0:
                return (sbyte)x[2 + i] * H(x);
            case TensorDType.Q4_0:
                return ((i < 16 ? x[2 + i] & 0xF : x[2 + i - 16] >> 4) - 8) * H(x);
            case TensorDType.Q4_1:
                return ((i < 16 ? x[4 + i] & 0xF : x[4 + i - 16] >> 4) * H(x)) + H(x[2..]);
            case TensorDType.Q5_0:
            case TensorDType.Q5_1:
                {
                    var min = t == TensorDType.Q5_1;
                    var at = min ? 4 : 2;
                    var qh = BinaryPrimitives.ReadUInt32LittleEndian(x[at..]);
                    var low = i < 16 ? x[at + 4 + i] & 0xF : x[at + 4 + i - 16] >> 4;
                    var q = low | (int)(((qh >> i) & 1) << 4); // bit i of qh is value i's fifth bit
                    return min ? (q * H(x)) + H(x[2..]) : (q - 16) * H(x);
                }

            case TensorDType.Q4_K:
            case TensorDType.Q5_K:
                {
                    var five = t == TensorDType.Q5_K;
                    var j = i / 64;
                    var half = i % 64 / 32;
                    var l = i % 32;
                    var qs = x[(five ? 48 : 16)..];
                    var b = qs[(32 * j) + l];
                    var q = half == 0 ? b & 0xF : b >> 4;
                    if (five && ((x[16 + l] >> ((2 * j) + half)) & 1) != 0)
                    {
                        q += 16;
                    }

                    var (sc, m) = K4((2 * j) + half, x.Slice(4, 12));
                    return (H(x) * sc * q) - (H(x[2..]) * m);
                }

            case TensorDType.Q6_K:
                {
                    var n = i / 128;
                    var r = i % 128;
                    var quarter = r / 32;
                    var l = r % 32;
                    var b = x[(n * 64) + l + ((quarter & 1) * 32)];
                    var low = quarter < 2 ? b & 0xF : b >> 4;
                    var high = (x[128 + (n * 32) + l] >> (2 * quarter)) & 3;
                    var sc = (sbyte)x[192 + (i / 16)];
                    return H(x[208..]) * sc * ((low | (high << 4)) - 32);
                }

            case TensorDType.Q2_K:
            case TensorDType.Q3_K:
                {
                    // 16 groups of 16; value i sits in qs[32n + 16·half + l] at bits 2j (n: 128-value half,
                    // j: which 2-bit plane, half: first or second 16 of the plane's 32 bytes).
                    var n = i / 128;
                    var r = i % 128;
                    var j = r / 32;
                    var half = r % 32 / 16;
                    var l = r % 16;
                    var s = (n * 8) + (2 * j) + half;
                    if (t == TensorDType.Q2_K)
                    {
                        var q = (x[16 + (n * 32) + (half * 16) + l] >> (2 * j)) & 3;
                        var sc = x[s];
                        return (H(x[80..]) * (sc & 0xF) * q) - (H(x[82..]) * (sc >> 4));
                    }

                    var low = s < 8 ? x[96 + s] & 0xF : x[96 + s - 8] >> 4;
                    var high = (x[96 + 8 + (s % 4)] >> (2 * (s / 4))) & 3;
                    var scale = (low | (high << 4)) - 32;
                    var q3 = (x[32 + (n * 32) + (half * 16) + l] >> (2 * j)) & 3;
                    var hm = (x[(half * 16) + l] >> ((n * 4) + j)) & 1;
                    return H(x[108..]) * scale * (q3 - (hm != 0 ? 0 : 4));
                }

            case TensorDType.IQ4_NL:
                return H(x) * Iq4[i < 16 ? x[2 + i] & 0xF : x[2 + i - 16] >> 4];
            case TensorDType.IQ4_XS:
                {
                    var ib = i / 32;
                    var r = i % 32;
                    var ls = ((x[4 + (ib / 2)] >> (4 * (ib % 2))) & 0xF) | (((BinaryPrimitives.ReadUInt16LittleEndian(x[2..]) >> (2 * ib)) & 3) << 4);
                    var b = x[8 + (16 * ib) + (r % 16)];
                    return H(x) * (ls - 32) * Iq4[r < 16 ? b & 0xF : b >> 4];
                }

            default:
                throw new ArgumentException(t.ToString());
        }
    }

    // ggml's kvalues_iq4nl codebook.
    private static readonly int[] Iq4 = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary>Random but valid blocks: random quant bits, finite random fp16 scales.</summary>
    public static byte[] RandomBlocks(TensorDType t, int blocks, Random rng)
    {
        var size = BlockBytes(t);
        var b = new byte[size * blocks];
        rng.NextBytes(b);
        for (var k = 0; k < blocks; k++)
        {
            var x = b.AsSpan(k * size, size);
            var halves = t switch
            {
                TensorDType.Q6_K => new[] { 208 },
                TensorDType.Q8_0 or TensorDType.Q4_0 or TensorDType.Q5_0 or TensorDType.IQ4_NL or TensorDType.IQ4_XS => [0],
                TensorDType.Q2_K => [80, 82],
                TensorDType.Q3_K => [108],
                _ => [0, 2],
            };
            foreach (var at in halves)
            {
                BinaryPrimitives.WriteHalfLittleEndian(x[at..], (Half)((rng.NextDouble() - 0.5) * 0.01));
            }
        }

        return b;
    }

    /// <summary>A simple quantiser (not ggml's error search, but the same layout): values → blocks.</summary>
    public static byte[] Quantise(TensorDType t, float[] v)
    {
        var n = BlockValues(t);
        var size = BlockBytes(t);
        var result = new byte[v.Length / n * size];
        for (var k = 0; k < v.Length / n; k++)
        {
            var x = v.AsSpan(k * n, n);
            var y = result.AsSpan(k * size, size);
            switch (t)
            {
                case TensorDType.Q8_0:
                    {
                        var d = MaxAbs(x) / 127f;
                        var dh = (float)(Half)d;
                        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
                        for (var i = 0; i < 32; i++)
                        {
                            y[2 + i] = (byte)(sbyte)Math.Clamp(Math.Round(dh == 0 ? 0 : x[i] / dh), -127, 127);
                        }

                        break;
                    }

                case TensorDType.Q4_0:
                case TensorDType.Q5_0:
                    {
                        var bits = t == TensorDType.Q4_0 ? 4 : 5;
                        var offset = 1 << (bits - 1);
                        var d = MaxAbs(x) / (offset - 1);
                        var dh = (float)(Half)d;
                        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
                        var q = x.ToArray().Select(a => Math.Clamp((int)Math.Round(dh == 0 ? 0 : a / dh) + offset, 0, (2 * offset) - 1)).ToArray();
                        Pack32(y[(bits == 4 ? 2 : 6)..], q, bits == 5 ? y.Slice(2, 4) : default);
                        break;
                    }

                case TensorDType.Q4_1:
                case TensorDType.Q5_1:
                    {
                        var bits = t == TensorDType.Q4_1 ? 4 : 5;
                        var (min, max) = (x.ToArray().Min(), x.ToArray().Max());
                        var d = (max - min) / ((1 << bits) - 1);
                        var dh = (float)(Half)d;
                        var mh = (float)(Half)min;
                        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
                        BinaryPrimitives.WriteHalfLittleEndian(y[2..], (Half)min);
                        var q = x.ToArray().Select(a => Math.Clamp((int)Math.Round(dh == 0 ? 0 : (a - mh) / dh), 0, (1 << bits) - 1)).ToArray();
                        Pack32(y[(bits == 4 ? 4 : 8)..], q, bits == 5 ? y.Slice(4, 4) : default);
                        break;
                    }

                case TensorDType.Q4_K:
                case TensorDType.Q5_K:
                    QuantiseK(t, x, y);
                    break;
                case TensorDType.Q6_K:
                    Quantise6K(x, y);
                    break;
                case TensorDType.Q2_K:
                    Quantise2K(x, y);
                    break;
                case TensorDType.Q3_K:
                    Quantise3K(x, y);
                    break;
                case TensorDType.IQ4_NL:
                    {
                        var d = MaxAbs(x) / 127f;
                        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
                        var dh = (float)(Half)d;
                        var q = x.ToArray().Select(a => Nearest(dh == 0 ? 0 : a / dh)).ToArray();
                        Pack32(y[2..], q, default);
                        break;
                    }

                case TensorDType.IQ4_XS:
                    QuantiseXs(x, y);
                    break;
                default:
                    throw new ArgumentException(t.ToString());
            }
        }

        return result;
    }

    private static float MaxAbs(ReadOnlySpan<float> x)
    {
        var m = 0f;
        foreach (var a in x)
        {
            m = Math.Max(m, Math.Abs(a));
        }

        return m;
    }

    // qs[j] = q[j] | q[j+16] << 4 (low nibbles), fifth bits of value i in bit i of qh.
    private static void Pack32(Span<byte> qs, int[] q, Span<byte> qh)
    {
        uint h = 0;
        for (var j = 0; j < 16; j++)
        {
            qs[j] = (byte)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        }

        for (var i = 0; i < 32; i++)
        {
            h |= (uint)((q[i] >> 4) & 1) << i;
        }

        if (!qh.IsEmpty)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(qh, h);
        }
    }

    private static void QuantiseK(TensorDType t, ReadOnlySpan<float> x, Span<byte> y)
    {
        var five = t == TensorDType.Q5_K;
        var levels = five ? 31 : 15;
        var scales = new float[8];
        var mins = new float[8];
        for (var s = 0; s < 8; s++)
        {
            var sub = x.Slice(s * 32, 32).ToArray();
            var min = Math.Min(0, sub.Min());
            mins[s] = -min;
            scales[s] = (sub.Max() - min) / levels;
        }

        var d = scales.Max() / 63f;
        var dmin = mins.Max() / 63f;
        var dh = (float)(Half)d;
        var mh = (float)(Half)dmin;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        BinaryPrimitives.WriteHalfLittleEndian(y[2..], (Half)dmin);
        var sc = scales.Select(v => dh == 0 ? 0 : Math.Clamp((int)Math.Round(v / dh), 0, 63)).ToArray();
        var mq = mins.Select(v => mh == 0 ? 0 : Math.Clamp((int)Math.Round(v / mh), 0, 63)).ToArray();
        var packed = y.Slice(4, 12);
        for (var j = 0; j < 4; j++)
        {
            packed[j] = (byte)(sc[j] | ((sc[j + 4] >> 4) << 6));
            packed[j + 4] = (byte)(mq[j] | ((mq[j + 4] >> 4) << 6));
            packed[j + 8] = (byte)((sc[j + 4] & 0xF) | ((mq[j + 4] & 0xF) << 4));
        }

        var q = new int[256];
        for (var i = 0; i < 256; i++)
        {
            var s = i / 32;
            var step = dh * sc[s];
            q[i] = step == 0 ? 0 : Math.Clamp((int)Math.Round((x[i] + (mh * mq[s])) / step), 0, levels);
        }

        var qs = y[(five ? 48 : 16)..];
        for (var j = 0; j < 4; j++)
        {
            for (var l = 0; l < 32; l++)
            {
                var a = q[(64 * j) + l];
                var b = q[(64 * j) + 32 + l];
                qs[(32 * j) + l] = (byte)((a & 0xF) | ((b & 0xF) << 4));
                if (five)
                {
                    y[16 + l] |= (byte)((((a >> 4) & 1) << (2 * j)) | (((b >> 4) & 1) << ((2 * j) + 1)));
                }
            }
        }
    }

    private static int Nearest(float v)
    {
        var best = 0;
        for (var k = 1; k < 16; k++)
        {
            if (Math.Abs(Iq4[k] - v) < Math.Abs(Iq4[best] - v))
            {
                best = k;
            }
        }

        return best;
    }

    // Byte and bit plane of value i in the 2-bit k-quant layout (see Reference).
    private static (int Byte, int Shift, int Group) Plane(int i) => ((i / 128 * 32) + (i % 32 / 16 * 16) + (i % 16), 2 * (i % 128 / 32), (i / 128 * 8) + (2 * (i % 128 / 32)) + (i % 32 / 16));

    private static void Quantise2K(ReadOnlySpan<float> x, Span<byte> y)
    {
        // Groups are in value order: group g holds values 16g..16g+15 (Plane maps them to their bytes).
        var scales = new float[16];
        var mins = new float[16];
        for (var g = 0; g < 16; g++)
        {
            var sub = x.Slice(g * 16, 16).ToArray();
            var min = Math.Min(0, sub.Min());
            mins[g] = -min;
            scales[g] = (sub.Max() - min) / 3;
        }

        var d = scales.Max() / 15f;
        var dmin = mins.Max() / 15f;
        BinaryPrimitives.WriteHalfLittleEndian(y[80..], (Half)d);
        BinaryPrimitives.WriteHalfLittleEndian(y[82..], (Half)dmin);
        var dh = (float)(Half)d;
        var mh = (float)(Half)dmin;
        var sc = new int[16];
        var mq = new int[16];
        for (var i = 0; i < 256; i++)
        {
            var (b, shift, s) = Plane(i);
            var g = i / 16;
            if (g != s)
            {
                throw new InvalidOperationException("group order");
            }

            sc[s] = dh == 0 ? 0 : Math.Clamp((int)Math.Round(scales[g] / dh), 0, 15);
            mq[s] = mh == 0 ? 0 : Math.Clamp((int)Math.Round(mins[g] / mh), 0, 15);
            var step = dh * sc[s];
            var q = step == 0 ? 0 : Math.Clamp((int)Math.Round((x[i] + (mh * mq[s])) / step), 0, 3);
            y[16 + b] |= (byte)(q << shift);
            y[s] = (byte)(sc[s] | (mq[s] << 4));
        }
    }

    private static void Quantise3K(ReadOnlySpan<float> x, Span<byte> y)
    {
        var scales = new float[16];
        for (var g = 0; g < 16; g++)
        {
            scales[g] = MaxAbs(x.Slice(g * 16, 16)) / 4f;
        }

        var d = scales.Max() / 31f;
        BinaryPrimitives.WriteHalfLittleEndian(y[108..], (Half)d);
        var dh = (float)(Half)d;
        for (var s = 0; s < 16; s++)
        {
            var sc = (dh == 0 ? 0 : Math.Clamp((int)Math.Round(scales[s] / dh), -32, 31)) + 32;
            y[96 + (s < 8 ? s : s - 8)] |= (byte)(s < 8 ? sc & 0xF : (sc & 0xF) << 4);
            y[96 + 8 + (s % 4)] |= (byte)((sc >> 4) << (2 * (s / 4)));
        }

        for (var i = 0; i < 256; i++)
        {
            var (b, shift, s) = Plane(i);
            var step = dh * (scales[s] == 0 || dh == 0 ? 0 : Math.Clamp((int)Math.Round(scales[s] / dh), -32, 31));
            var level = (step == 0 ? 0 : Math.Clamp((int)Math.Round(x[i] / step), -4, 3)) + 4;
            y[32 + b] |= (byte)((level & 3) << shift);
            if (level > 3)
            {
                // hmask: value i's third bit at bit (4n + j) of hmask[16·half + l].
                y[(i % 32 / 16 * 16) + (i % 16)] |= (byte)(1 << ((i / 128 * 4) + (i % 128 / 32)));
            }
        }
    }

    private static void QuantiseXs(ReadOnlySpan<float> x, Span<byte> y)
    {
        var scales = new float[8];
        for (var g = 0; g < 8; g++)
        {
            scales[g] = MaxAbs(x.Slice(g * 32, 32)) / 127f;
        }

        var d = scales.Max() / 31f;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        var dh = (float)(Half)d;
        ushort high = 0;
        for (var ib = 0; ib < 8; ib++)
        {
            var ls = (dh == 0 ? 0 : Math.Clamp((int)Math.Round(scales[ib] / dh), -32, 31)) + 32;
            y[4 + (ib / 2)] |= (byte)((ls & 0xF) << (4 * (ib % 2)));
            high |= (ushort)((ls >> 4) << (2 * ib));
            var step = dh * (ls - 32);
            var q = x.Slice(ib * 32, 32).ToArray().Select(a => Nearest(step == 0 ? 0 : a / step)).ToArray();
            Pack32(y[(8 + (16 * ib))..], q, default);
        }

        BinaryPrimitives.WriteUInt16LittleEndian(y[2..], high);
    }

    private static void Quantise6K(ReadOnlySpan<float> x, Span<byte> y)
    {
        var scales = new float[16];
        for (var s = 0; s < 16; s++)
        {
            scales[s] = MaxAbs(x.Slice(s * 16, 16)) / 31f;
        }

        var d = scales.Max() / 127f;
        var dh = (float)(Half)d;
        BinaryPrimitives.WriteHalfLittleEndian(y[208..], (Half)d);
        var sc = scales.Select(v => dh == 0 ? 0 : Math.Clamp((int)Math.Round(v / dh), -128, 127)).ToArray();
        for (var s = 0; s < 16; s++)
        {
            y[192 + s] = (byte)(sbyte)sc[s];
        }

        var level = new int[256];
        for (var i = 0; i < 256; i++)
        {
            var step = dh * sc[i / 16];
            level[i] = (step == 0 ? 0 : Math.Clamp((int)Math.Round(x[i] / step), -32, 31)) + 32;
        }

        for (var n = 0; n < 2; n++)
        {
            var ql = y[(n * 64)..];
            var qh = y[(128 + (n * 32))..];
            var at = n * 128;
            for (var l = 0; l < 32; l++)
            {
                ql[l] = (byte)((level[at + l] & 0xF) | ((level[at + l + 64] & 0xF) << 4));
                ql[l + 32] = (byte)((level[at + l + 32] & 0xF) | ((level[at + l + 96] & 0xF) << 4));
                qh[l] = (byte)((level[at + l] >> 4) | ((level[at + l + 32] >> 4) << 2) | ((level[at + l + 64] >> 4) << 4) | ((level[at + l + 96] >> 4) << 6));
            }
        }
    }

    /// <summary>fp8 code of a value (round to nearest, ties to even code; saturating to the largest finite).</summary>
    public static byte[] Fp8(float[] v, TensorDType t)
    {
        var table = Enumerable.Range(0, 256).Select(b => (Code: (byte)b, Value: Fp8Value((byte)b, t))).Where(p => float.IsFinite(p.Value)).ToArray();
        return [.. v.Select(x => table.OrderBy(p => Math.Abs(p.Value - x)).ThenBy(p => p.Code & 1).First().Code)];
    }

    /// <summary>Value of an fp8 code from the OCP definitions (e4m3fn: no infinities, S.1111.111 NaN; e5m2: IEEE-like).</summary>
    public static float Fp8Value(byte b, TensorDType t)
    {
        var (e, m) = t == TensorDType.F8E4M3 ? (4, 3) : (5, 2);
        var bias = (1 << (e - 1)) - 1;
        var exp = (b >> m) & ((1 << e) - 1);
        var man = b & ((1 << m) - 1);
        var sign = (b & 0x80) != 0 ? -1.0 : 1.0;
        if (t == TensorDType.F8E4M3 && exp == 15 && man == 7)
        {
            return float.NaN;
        }

        if (t == TensorDType.F8E5M2 && exp == 31)
        {
            return man == 0 ? (float)(sign * double.PositiveInfinity) : float.NaN;
        }

        return (float)(sign * (exp == 0 ? man / (double)(1 << m) * Math.Pow(2, 1 - bias) : (1 + (man / (double)(1 << m))) * Math.Pow(2, exp - bias)));
    }
}
