using System.Buffers.Binary;
using System.Text;

namespace Warden.Core.Hashing.Video;

/// <summary>
/// TMK+PDQF feature vectors of one video (the reference's `.tmk` content): a pure-average frame feature and,
/// per period and Fourier coefficient, cos and sin features. Ported from Meta's BSD-licensed reference
/// (facebook/ThreatExchange, tmk/cpp; Copyright (c) 2017- Facebook), float for float: sums in float32
/// with double-precision angles, in the reference's order.
/// </summary>
public sealed class TmkFeatures
{
    /// <summary>Frames per second the reference resamples to.</summary>
    public const int DefaultFramesPerSecond = 15;

    /// <summary>PDQF frame-feature length (16x16 DCT).</summary>
    public const int PdqfDimension = 256;

    /// <summary>The reference's match thresholds (tmk_default_thresholds.h) for level 1 and level 2.</summary>
    public const float DefaultLevel1Threshold = 0.7f;

    /// <inheritdoc cref="DefaultLevel1Threshold"/>
    public const float DefaultLevel2Threshold = 0.7f;

    /// <summary>Size of a `.tmk` file with the default parameters (263,344 bytes).</summary>
    public static int DefaultFileSize => FileSize(PoullotPeriods.Length, PoullotCoefficients.Length, PdqfDimension);

    private const int HeaderBytes = 32;
    private const int MaxPeriods = 64;
    private const int MaxCoefficients = 256;
    private const int MaxDimension = 4096;

    /// <summary>The Poullot periods, in frames.</summary>
    public static ReadOnlySpan<int> PoullotPeriods => [2731, 4391, 9767, 14653];

    /// <summary>The Poullot Fourier coefficients (β = 32, m = 32), tabulated as in the reference and rounded to float.</summary>
    public static float[] PoullotCoefficients { get; } = new double[]
    {
        0.0708041893112, 0.13937789309, 0.132897260304, 0.122765735552, 0.109878684888, 0.09529606433,
        0.0800986647852, 0.0652590650356, 0.0515478238322, 0.0394851531195, 0.0293374252025, 0.0211492623679,
        0.0147973073245, 0.0100512818746, 0.0066306408014, 0.00424947117334, 0.0026467615764, 0.00160270959695,
        0.000943882629639, 0.000540841638603, 0.000301633183798, 0.000163800158855, 8.66454753015e-05, 4.46626303151e-05,
        2.24429442235e-05, 1.09982139799e-05, 5.25823487999e-06, 2.45358229988e-06, 1.11781474895e-06, 4.97406489221e-07,
        2.16265487234e-07, 9.19087006565e-08,
    }.Select(c => (float)c).ToArray();

    private TmkFeatures(int framesPerSecond, int[] periods, float[] coefficients, int dimension)
    {
        FramesPerSecond = framesPerSecond;
        Periods = periods;
        Coefficients = coefficients;
        Dimension = dimension;
        PureAverage = new float[dimension];
        Cos = new float[periods.Length * coefficients.Length * dimension];
        Sin = new float[periods.Length * coefficients.Length * dimension];
        PairScoreNormalizer = ComputePairScoreNormalizer(coefficients);
    }

    /// <summary>Resampled frames per second (15).</summary>
    public int FramesPerSecond { get; }

    /// <summary>Frames ingested (after resampling).</summary>
    public int FrameCount { get; private set; }

    /// <summary>Periods (frames).</summary>
    public IReadOnlyList<int> Periods { get; }

    /// <summary>Fourier coefficients.</summary>
    public IReadOnlyList<float> Coefficients { get; }

    /// <summary>Frame-feature dimension (256).</summary>
    public int Dimension { get; }

    /// <summary>Mean of the un-normalised frame features (level 1).</summary>
    public float[] PureAverage { get; }

    /// <summary>Cos features, [period][coefficient][dimension] flattened.</summary>
    public float[] Cos { get; }

    /// <summary>Sin features, same layout.</summary>
    public float[] Sin { get; }

    private float PairScoreNormalizer { get; }

    /// <summary>Starts an empty accumulator with the reference's parameters.</summary>
    public static TmkFeatures CreatePoullot() => new(DefaultFramesPerSecond, PoullotPeriods.ToArray(), PoullotCoefficients.ToArray(), PdqfDimension);

    /// <summary>Adds frame <see cref="FrameCount"/>'s feature (tmkfv ingestFrameFeature).</summary>
    public void Ingest(ReadOnlySpan<float> feature, Span<float> scratch)
    {
        var d = Dimension;
        if (feature.Length != d || scratch.Length < d)
        {
            throw new ArgumentException($"A frame feature has {d} floats.", nameof(feature));
        }

        var t = FrameCount;
        for (var k = 0; k < d; k++)
        {
            PureAverage[k] += feature[k];
        }

        var normalized = scratch[..d];
        feature.CopyTo(normalized);
        L2Normalize(normalized);
        var m = Coefficients.Count;
        for (var i = 0; i < Periods.Count; i++)
        {
            var period = Periods[i];
            var c0 = Cos.AsSpan(((i * m) + 0) * d, d);
            for (var k = 0; k < d; k++)
            {
                c0[k] += normalized[k];
            }

            for (var j = 1; j < m; j++)
            {
                var arg = 2.0 * Math.PI * j * t / period;
                var cosArg = Math.Cos(arg);
                var sinArg = Math.Sin(arg);
                var c = Cos.AsSpan(((i * m) + j) * d, d);
                var s = Sin.AsSpan(((i * m) + j) * d, d);
                for (var k = 0; k < d; k++)
                {
                    // float += float * double: the reference widens to double and rounds the sum back to float.
                    c[k] = (float)(c[k] + (normalized[k] * cosArg));
                    s[k] = (float)(s[k] + (normalized[k] * sinArg));
                }
            }
        }

        FrameCount++;
    }

    /// <summary>Finishes ingestion (tmkfv finishFrameFeatureIngest): average, normalise, weight by √coefficient.</summary>
    public void Finish()
    {
        if (FrameCount == 0)
        {
            return;
        }

        var count = (float)FrameCount;
        for (var k = 0; k < Dimension; k++)
        {
            PureAverage[k] /= count;
        }

        var m = Coefficients.Count;
        for (var i = 0; i < Periods.Count; i++)
        {
            for (var j = 0; j < m; j++)
            {
                var w = MathF.Sqrt(Coefficients[j]);
                foreach (var a in new[] { Cos, Sin })
                {
                    var v = a.AsSpan(((i * m) + j) * Dimension, Dimension);
                    L2Normalize(v);
                    for (var k = 0; k < v.Length; k++)
                    {
                        v[k] *= w;
                    }
                }
            }
        }
    }

    /// <summary>Level 1: cosine similarity of the pure averages (−1..1).</summary>
    public static float Level1(TmkFeatures a, TmkFeatures b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return CosSim(a.PureAverage, b.PureAverage);
    }

    /// <summary>Cosine similarity as the reference computes it (float sums in order; 0 when both are zero).</summary>
    public static float CosSim(ReadOnlySpan<float> u, ReadOnlySpan<float> v)
    {
        var nu = Norm(u);
        var nv = Norm(v);
        if (nu == 0 && nv == 0)
        {
            return 0;
        }

        return Dot(u, v) / (nu * nv);
    }

    /// <summary>
    /// Level 2: for each period, the best circular offset's kernel value (every offset 0..T−1, the reference's
    /// incremental cos/sin recurrence in float), the largest over periods, divided by the coefficients' normaliser.
    /// </summary>
    public static float Level2(TmkFeatures a, TmkFeatures b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!Compatible(a, b))
        {
            throw new ArgumentException("The two TMK feature vectors have different parameters.", nameof(b));
        }

        var p = a.Periods.Count;
        var m = a.Coefficients.Count;
        var d = a.Dimension;
        if (p == 0 || m == 0)
        {
            return 0;
        }

        var cc = new float[m];
        var ss = new float[m];
        var sc = new float[m];
        var cs = new float[m];
        var best = float.NegativeInfinity;
        for (var i = 0; i < p; i++)
        {
            for (var j = 0; j < m; j++)
            {
                var o = ((i * m) + j) * d;
                var ac = a.Cos.AsSpan(o, d);
                var asn = a.Sin.AsSpan(o, d);
                var bc = b.Cos.AsSpan(o, d);
                var bs = b.Sin.AsSpan(o, d);
                cc[j] = Dot(ac, bc);
                ss[j] = Dot(asn, bs);
                sc[j] = Dot(asn, bc);
                cs[j] = Dot(ac, bs);
            }

            var period = a.Periods[i];
            var max = 0f;
            for (var offset = 0; offset < period; offset++)
            {
                var delta = (float)(2.0 * Math.PI * (float)offset / (float)period);
                var k = cc[0];
                var cosJd = 1f;
                var sinJd = 0f;
                var beta = (float)Math.Sin(delta);
                var alpha = (float)Math.Sin(delta / 2);
                alpha = 2 * alpha * alpha;
                for (var j = 1; j < m; j++)
                {
                    var nCos = (alpha * cosJd) + (beta * sinJd);
                    var nSin = (alpha * sinJd) - (beta * cosJd);
                    cosJd -= nCos;
                    sinJd -= nSin;
                    k += cosJd * (cc[j] + ss[j]);
                    k += sinJd * (sc[j] - cs[j]);
                }

                if (offset == 0 || k > max)
                {
                    max = k;
                }
            }

            best = i == 0 ? max : Math.Max(best, max);
        }

        return best / a.PairScoreNormalizer;
    }

    /// <summary>True when both were made with the same algorithm parameters.</summary>
    public static bool Compatible(TmkFeatures a, TmkFeatures b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.FramesPerSecond == b.FramesPerSecond && a.Dimension == b.Dimension &&
            a.Periods.SequenceEqual(b.Periods) && a.Coefficients.SequenceEqual(b.Coefficients);
    }

    /// <summary>The `.tmk` file bytes (little-endian; layout in docs/formats.md).</summary>
    public byte[] ToBytes()
    {
        var p = Periods.Count;
        var m = Coefficients.Count;
        var bytes = new byte[FileSize(p, m, Dimension)];
        var span = bytes.AsSpan();
        Encoding.ASCII.GetBytes("TMK1FVECPDQF", span);
        var o = 12;
        foreach (var v in new[] { FramesPerSecond, p, m, Dimension, FrameCount })
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[o..], v);
            o += 4;
        }

        foreach (var v in Periods)
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[o..], v);
            o += 4;
        }

        o = WriteFloats(span, o, Coefficients.ToArray());
        o = WriteFloats(span, o, PureAverage);
        o = WriteFloats(span, o, Cos);
        WriteFloats(span, o, Sin);
        return bytes;
    }

    /// <summary>Reads a `.tmk` file's bytes, checking magic, parameters and exact length.</summary>
    /// <exception cref="InvalidDataException">Not a TMK+PDQF feature-vector file, or damaged.</exception>
    public static TmkFeatures FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderBytes || !bytes[..12].SequenceEqual("TMK1FVECPDQF"u8))
        {
            throw new InvalidDataException("Not a TMK+PDQF feature-vector file (magic TMK1 FVEC PDQF).");
        }

        var fps = BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]);
        var p = BinaryPrimitives.ReadInt32LittleEndian(bytes[16..]);
        var m = BinaryPrimitives.ReadInt32LittleEndian(bytes[20..]);
        var d = BinaryPrimitives.ReadInt32LittleEndian(bytes[24..]);
        var count = BinaryPrimitives.ReadInt32LittleEndian(bytes[28..]);
        if (fps is < 1 or > 1000 || p is < 0 or > MaxPeriods || m is < 0 or > MaxCoefficients || d is < 1 or > MaxDimension || count < 0)
        {
            throw new InvalidDataException($"TMK header out of range: fps {fps}, periods {p}, coefficients {m}, dimension {d}, frames {count}.");
        }

        if (bytes.Length != FileSize(p, m, d))
        {
            throw new InvalidDataException($"A TMK file with these parameters is {FileSize(p, m, d)} bytes; got {bytes.Length}.");
        }

        var o = HeaderBytes;
        var periods = new int[p];
        for (var i = 0; i < p; i++, o += 4)
        {
            periods[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[o..]);
            if (periods[i] is < 1 or > 10_000_000)
            {
                throw new InvalidDataException($"TMK period {periods[i]} out of range.");
            }
        }

        var coefficients = new float[m];
        o = ReadFloats(bytes, o, coefficients);
        var f = new TmkFeatures(fps, periods, coefficients, d) { FrameCount = count };
        o = ReadFloats(bytes, o, f.PureAverage);
        o = ReadFloats(bytes, o, f.Cos);
        ReadFloats(bytes, o, f.Sin);
        return f;
    }

    /// <summary>Bytes of a `.tmk` file with these dimensions.</summary>
    public static int FileSize(int periods, int coefficients, int dimension) =>
        HeaderBytes + (4 * periods) + (4 * coefficients) + (4 * dimension) + (2 * 4 * periods * coefficients * dimension);

    private static float ComputePairScoreNormalizer(float[] c)
    {
        if (c.Length == 0)
        {
            return 1;
        }

        var n = c[0];
        for (var j = 1; j < c.Length; j++)
        {
            n = (float)(n + (2.0 * c[j]));
        }

        return n;
    }

    private static float Norm(ReadOnlySpan<float> u)
    {
        var sum = 0f;
        foreach (var e in u)
        {
            sum += e * e;
        }

        return MathF.Sqrt(sum);
    }

    private static float Dot(ReadOnlySpan<float> u, ReadOnlySpan<float> v)
    {
        var sum = 0f;
        for (var i = 0; i < u.Length; i++)
        {
            sum += u[i] * v[i];
        }

        return sum;
    }

    private static void L2Normalize(Span<float> v)
    {
        var norm = Norm(v);
        if (norm > 0)
        {
            for (var i = 0; i < v.Length; i++)
            {
                v[i] /= norm;
            }
        }
    }

    private static int WriteFloats(Span<byte> span, int o, ReadOnlySpan<float> values)
    {
        foreach (var v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(span[o..], v);
            o += 4;
        }

        return o;
    }

    private static int ReadFloats(ReadOnlySpan<byte> bytes, int o, Span<float> values)
    {
        for (var i = 0; i < values.Length; i++, o += 4)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[o..]);
        }

        return o;
    }
}
