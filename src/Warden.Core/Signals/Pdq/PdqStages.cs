using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Warden.Core.Hashing.Pdq;

/// <summary>
/// The stages of Meta's PDQ reference (pdq/cpp/hashing/pdqhashing.cpp, pdq/cpp/downscaling/downscaling.cpp),
/// one method each, in float32 with the reference's operation order so results are bit-exact.
/// </summary>
/// <remarks>
/// Vectorised loops run <em>across</em> independent rows or columns, never across a running sum,
/// so each element still sees the reference's exact sequence of float operations. .NET does not
/// contract a*b+c into FMA, which the reference's x86-64 baseline build does not use either.
/// </remarks>
public static class PdqStages
{
    /// <summary>Images with a side under this many pixels hash to all zeros with quality 0.</summary>
    public const int MinHashableDim = 5;

    /// <summary>Number of row+column passes of the Jarosz tent filter.</summary>
    public const int JaroszPasses = 2;

    /// <summary>The CLI's pre-resize target (pdq/cpp/io/pdqio.cpp DOWNSAMPLE_DIMS).</summary>
    public const int CliResizeDims = 512;

    private const float LumaR = 0.299f;
    private const float LumaG = 0.587f;
    private const float LumaB = 0.114f;

    /// <summary>The 16x64 DCT matrix, row-major: D[i][j] = sqrt(2/64) cos(pi/128 (i+1)(2j+1)).</summary>
    internal static readonly float[] DctMatrix = BuildDctMatrix();

    /// <summary>Transpose of <see cref="DctMatrix"/> (64x16), for the vectorised second product.</summary>
    internal static readonly float[] DctMatrixTransposed = Transpose(DctMatrix, 16, 64);

    private static float[] BuildDctMatrix()
    {
        // As the reference: the scale factor is rounded to float, the product is taken in double
        // (float * double promotes) and the result is stored as float.
        var scale = (float)Math.Sqrt(2.0 / 64);
        var d = new float[16 * 64];
        for (var i = 0; i < 16; i++)
        {
            for (var j = 0; j < 64; j++)
            {
                d[(i * 64) + j] = (float)(scale * Math.Cos(Math.PI / 2.0 / 64.0 * (i + 1) * ((2 * j) + 1)));
            }
        }

        return d;
    }

    private static float[] Transpose(float[] m, int rows, int cols)
    {
        var t = new float[rows * cols];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                t[(j * rows) + i] = m[(i * cols) + j];
            }
        }

        return t;
    }

    /// <summary>Luma of one pixel exactly as fillFloatLumaFromRGB computes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Luma(byte r, byte g, byte b) => (LumaR * r) + (LumaG * g) + (LumaB * b);

    /// <summary>
    /// True when the image has one channel, or every pixel has R = G = B. The reference decodes through
    /// ImageMagick, which hands such an image over as single-channel grey, so its luma is the grey value
    /// itself rather than 0.299v + 0.587v + 0.114v (which differs in the last float bits and moves the
    /// hashes of smooth images). Colour photos exit at their first coloured pixel.
    /// </summary>
    public static bool IsGrey(ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel)
    {
        if (bytesPerPixel < 3)
        {
            return true;
        }

        for (var y = 0; y < height; y++)
        {
            var row = pixels.Slice(y * stride, width * bytesPerPixel);
            for (var p = 0; p < row.Length; p += bytesPerPixel)
            {
                if (row[p] != row[p + 1] || row[p] != row[p + 2])
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// Stage 1: float luma from interleaved 8-bit pixels. <paramref name="bytesPerPixel"/> 1 or 2 means
    /// grey (+alpha), taken as Y; 3 or 4 means RGB(+alpha), or grey when <paramref name="grey"/> says the
    /// image has R = G = B throughout (see <see cref="IsGrey"/>). Alpha is ignored, as in the reference.
    /// </summary>
    public static void FillLuma(ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel, Span<float> luma, bool grey = false)
    {
        CheckPixels(pixels, width, height, stride, bytesPerPixel);
        if (luma.Length < width * height)
        {
            throw new ArgumentException("Luma buffer too small.", nameof(luma));
        }

        for (var y = 0; y < height; y++)
        {
            var row = pixels.Slice(y * stride, width * bytesPerPixel);
            var outRow = luma.Slice(y * width, width);
            if (bytesPerPixel >= 3 && !grey)
            {
                for (int x = 0, p = 0; x < width; x++, p += bytesPerPixel)
                {
                    outRow[x] = Luma(row[p], row[p + 1], row[p + 2]);
                }
            }
            else
            {
                for (int x = 0, p = 0; x < width; x++, p += bytesPerPixel)
                {
                    outRow[x] = row[p];
                }
            }
        }
    }

    /// <summary>
    /// The CLI's pre-resize fused with stage 1: nearest-neighbour sampling to
    /// <paramref name="outWidth"/> x <paramref name="outHeight"/> (CImg interpolation 1: source index
    /// floor(x * W / outW)), then luma. Luma is per pixel, so sampling first gives the same floats.
    /// </summary>
    public static void FillLumaNearest(
        ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel, int outWidth, int outHeight, Span<float> luma, bool grey = false)
    {
        CheckPixels(pixels, width, height, stride, bytesPerPixel);
        if (luma.Length < outWidth * outHeight)
        {
            throw new ArgumentException("Luma buffer too small.", nameof(luma));
        }

        Span<int> sx = outWidth <= 4096 ? stackalloc int[outWidth] : new int[outWidth];
        for (var x = 0; x < outWidth; x++)
        {
            sx[x] = (int)Math.Floor((double)x * width / outWidth) * bytesPerPixel;
        }

        for (var y = 0; y < outHeight; y++)
        {
            var syRow = (int)Math.Floor((double)y * height / outHeight);
            var row = pixels.Slice(syRow * stride, width * bytesPerPixel);
            var outRow = luma.Slice(y * outWidth, outWidth);
            if (bytesPerPixel >= 3 && !grey)
            {
                for (var x = 0; x < outWidth; x++)
                {
                    var p = sx[x];
                    outRow[x] = Luma(row[p], row[p + 1], row[p + 2]);
                }
            }
            else
            {
                for (var x = 0; x < outWidth; x++)
                {
                    outRow[x] = row[sx[x]];
                }
            }
        }
    }

    internal static void CheckPixels(ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bytesPerPixel, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytesPerPixel, 4);
        if (stride < width * bytesPerPixel || pixels.Length < ((long)stride * (height - 1)) + (width * bytesPerPixel))
        {
            throw new ArgumentException("Pixel buffer too small for the given size and stride.", nameof(pixels));
        }
    }

    /// <summary>computeJaroszFilterWindowSize: ceil(oldDim / (2 newDim)).</summary>
    public static int JaroszWindowSize(int oldDimension, int newDimension) =>
        (oldDimension + (2 * newDimension) - 1) / (2 * newDimension);

    /// <summary>
    /// Stage 2: the Jarosz tent filter, <see cref="JaroszPasses"/> times box along rows (buffer1 → buffer2)
    /// then box along columns (buffer2 → buffer1). The result is in <paramref name="buffer1"/>.
    /// </summary>
    public static void JaroszFilter(Span<float> buffer1, Span<float> buffer2, int rows, int cols, int windowAlongRows, int windowAlongCols, int passes = JaroszPasses)
    {
        for (var i = 0; i < passes; i++)
        {
            BoxAlongRows(buffer1, buffer2, rows, cols, windowAlongRows);
            BoxAlongCols(buffer2, buffer1, rows, cols, windowAlongCols);
        }
    }

    /// <summary>box1DFloat on each row.</summary>
    public static void BoxAlongRows(ReadOnlySpan<float> input, Span<float> output, int rows, int cols, int window)
    {
        for (var i = 0; i < rows; i++)
        {
            Box1D(input.Slice(i * cols, cols), output.Slice(i * cols, cols), window);
        }
    }

    /// <summary>
    /// box1DFloat along one contiguous vector: a running sum with shrinking windows at both ends,
    /// in the reference's four phases.
    /// </summary>
    public static void Box1D(ReadOnlySpan<float> input, Span<float> output, int window)
    {
        var half = (window + 2) / 2;
        var phase1 = half - 1;
        var phase2 = window - half + 1;
        var phase3 = input.Length - window;
        var phase4 = half - 1;
        int li = 0, ri = 0, oi = 0;
        var sum = 0.0f;
        var size = 0;
        ref var inRef = ref MemoryMarshal.GetReference(input);
        ref var outRef = ref MemoryMarshal.GetReference(output);
        if (output.Length < input.Length || ri + phase1 + phase2 + Math.Max(phase3, 0) > input.Length)
        {
            throw new ArgumentException("Box window larger than the vector.", nameof(window));
        }

        for (var i = 0; i < phase1; i++)
        {
            sum += Unsafe.Add(ref inRef, ri++);
            size++;
        }

        for (var i = 0; i < phase2; i++)
        {
            sum += Unsafe.Add(ref inRef, ri++);
            size++;
            Unsafe.Add(ref outRef, oi++) = sum / size;
        }

        for (var i = 0; i < phase3; i++)
        {
            sum += Unsafe.Add(ref inRef, ri++);
            sum -= Unsafe.Add(ref inRef, li++);
            Unsafe.Add(ref outRef, oi++) = sum / size;
        }

        for (var i = 0; i < phase4; i++)
        {
            sum -= Unsafe.Add(ref inRef, li++);
            size--;
            Unsafe.Add(ref outRef, oi++) = sum / size;
        }
    }

    /// <summary>
    /// box1DFloat down every column, all columns at once: each column keeps its own running sum in a
    /// lane, so the per-column float sequence is the reference's while memory is read row by row.
    /// </summary>
    public static void BoxAlongCols(ReadOnlySpan<float> input, Span<float> output, int rows, int cols, int window)
    {
        var half = (window + 2) / 2;
        var phase1 = half - 1;
        var phase2 = window - half + 1;
        var phase3 = rows - window;
        var phase4 = half - 1;
        if (phase1 + phase2 + Math.Max(phase3, 0) > rows)
        {
            throw new ArgumentException("Box window larger than the vector.", nameof(window));
        }

        float[]? rented = null;
        var sums = cols <= 2048 ? stackalloc float[cols] : (rented = System.Buffers.ArrayPool<float>.Shared.Rent(cols)).AsSpan(0, cols);
        sums.Clear();
        int li = 0, ri = 0, oi = 0;
        var size = 0;
        for (var i = 0; i < phase1; i++, ri++)
        {
            AddRow(sums, input.Slice(ri * cols, cols));
            size++;
        }

        for (var i = 0; i < phase2; i++, ri++, oi++)
        {
            AddRow(sums, input.Slice(ri * cols, cols));
            size++;
            DivideRow(sums, output.Slice(oi * cols, cols), size);
        }

        for (var i = 0; i < phase3; i++, ri++, li++, oi++)
        {
            AddRow(sums, input.Slice(ri * cols, cols));
            SubtractRow(sums, input.Slice(li * cols, cols));
            DivideRow(sums, output.Slice(oi * cols, cols), size);
        }

        for (var i = 0; i < phase4; i++, li++, oi++)
        {
            SubtractRow(sums, input.Slice(li * cols, cols));
            size--;
            DivideRow(sums, output.Slice(oi * cols, cols), size);
        }

        if (rented is not null)
        {
            System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    private static void AddRow(Span<float> sums, ReadOnlySpan<float> row)
    {
        var vs = MemoryMarshal.Cast<float, Vector<float>>(sums);
        var vr = MemoryMarshal.Cast<float, Vector<float>>(row);
        for (var i = 0; i < vs.Length; i++)
        {
            vs[i] += vr[i];
        }

        for (var i = vs.Length * Vector<float>.Count; i < sums.Length; i++)
        {
            sums[i] += row[i];
        }
    }

    private static void SubtractRow(Span<float> sums, ReadOnlySpan<float> row)
    {
        var vs = MemoryMarshal.Cast<float, Vector<float>>(sums);
        var vr = MemoryMarshal.Cast<float, Vector<float>>(row);
        for (var i = 0; i < vs.Length; i++)
        {
            vs[i] -= vr[i];
        }

        for (var i = vs.Length * Vector<float>.Count; i < sums.Length; i++)
        {
            sums[i] -= row[i];
        }
    }

    private static void DivideRow(ReadOnlySpan<float> sums, Span<float> output, int size)
    {
        float divisor = size;
        var vdiv = new Vector<float>(divisor);
        var vs = MemoryMarshal.Cast<float, Vector<float>>(sums);
        var vo = MemoryMarshal.Cast<float, Vector<float>>(output);
        for (var i = 0; i < vs.Length; i++)
        {
            vo[i] = vs[i] / vdiv;
        }

        for (var i = vs.Length * Vector<float>.Count; i < sums.Length; i++)
        {
            output[i] = sums[i] / divisor;
        }
    }

    /// <summary>Stage 3: decimateFloat to 64x64, sampling at cell centres.</summary>
    public static void Decimate(ReadOnlySpan<float> input, int rows, int cols, Span<float> output64x64)
    {
        for (var i = 0; i < 64; i++)
        {
            var ini = (int)((i + 0.5) * rows / 64);
            var inRow = input.Slice(ini * cols, cols);
            for (var j = 0; j < 64; j++)
            {
                var inj = (int)((j + 0.5) * cols / 64);
                output64x64[(i * 64) + j] = inRow[inj];
            }
        }
    }

    /// <summary>pdqImageDomainQualityMetric: quantised gradient sum over the 64x64 image, 0..100.</summary>
    public static int Quality(ReadOnlySpan<float> buffer64x64)
    {
        var gradientSum = 0;
        for (var i = 0; i < 63; i++)
        {
            for (var j = 0; j < 64; j++)
            {
                var u = buffer64x64[(i * 64) + j];
                var v = buffer64x64[((i + 1) * 64) + j];
                var d = (int)((u - v) * 100 / 255);
                gradientSum += Math.Abs(d);
            }
        }

        for (var i = 0; i < 64; i++)
        {
            for (var j = 0; j < 63; j++)
            {
                var u = buffer64x64[(i * 64) + j];
                var v = buffer64x64[(i * 64) + j + 1];
                var d = (int)((u - v) * 100 / 255);
                gradientSum += Math.Abs(d);
            }
        }

        return Math.Min(100, gradientSum / 90);
    }

    /// <summary>
    /// Stage 4: dct64To16, B = D A Dᵀ keeping coefficients 1..16 in each direction. Each output element is
    /// accumulated over k = 0..63 in order, as the reference's sequential float sums.
    /// </summary>
    public static void Dct64To16(ReadOnlySpan<float> a64x64, Span<float> t16x64, Span<float> b16x16)
    {
        var d = DctMatrix;
        var vn = Vector<float>.Count;

        // T = D A: T[i][j..j+n] += D[i][k] * A[k][j..j+n], k ascending.
        for (var i = 0; i < 16; i++)
        {
            var tRow = MemoryMarshal.Cast<float, Vector<float>>(t16x64.Slice(i * 64, 64));
            tRow.Clear();
            for (var k = 0; k < 64; k++)
            {
                var dik = new Vector<float>(d[(i * 64) + k]);
                var aRow = MemoryMarshal.Cast<float, Vector<float>>(a64x64.Slice(k * 64, 64));
                for (var v = 0; v < tRow.Length; v++)
                {
                    tRow[v] += dik * aRow[v];
                }
            }
        }

        // B = T Dᵀ: B[i][j] = sum_k T[i][k] * D[j][k], k ascending, vectorised across j via Dᵀ.
        var dt = DctMatrixTransposed;
        if (vn is 8 or 16 or 4)
        {
            for (var i = 0; i < 16; i++)
            {
                var bRow = MemoryMarshal.Cast<float, Vector<float>>(b16x16.Slice(i * 16, 16));
                bRow.Clear();
                var tRow = t16x64.Slice(i * 64, 64);
                for (var k = 0; k < 64; k++)
                {
                    var tik = new Vector<float>(tRow[k]);
                    var dtRow = MemoryMarshal.Cast<float, Vector<float>>(dt.AsSpan(k * 16, 16));
                    for (var v = 0; v < bRow.Length; v++)
                    {
                        bRow[v] += tik * dtRow[v];
                    }
                }
            }
        }
        else
        {
            for (var i = 0; i < 16; i++)
            {
                for (var j = 0; j < 16; j++)
                {
                    var sum = 0.0f;
                    for (var k = 0; k < 64; k++)
                    {
                        sum += t16x64[(i * 64) + k] * d[(j * 64) + k];
                    }

                    b16x16[(i * 16) + j] = sum;
                }
            }
        }
    }

    /// <summary>Torben's median (Mogensen/Devillard), as the reference: the (n+1)/2-th smallest value.</summary>
    public static float Torben(ReadOnlySpan<float> m)
    {
        var n = m.Length;
        float min = m[0], max = m[0];
        for (var i = 1; i < n; i++)
        {
            if (m[i] < min)
            {
                min = m[i];
            }

            if (m[i] > max)
            {
                max = m[i];
            }
        }

        int less, greater, equal;
        float guess, maxLtGuess, minGtGuess;
        var half = (n + 1) / 2;
        while (true)
        {
            // The midpoint in double: (min + max) / 2 in float overflows to ±infinity when both are near
            // ±float.MaxValue, and the search then never moves (a CI hang, found through the radix-median property).
            // The answer is always one of the values, so how the guess is rounded cannot change it.
            guess = (float)(((double)min + max) / 2);
            less = 0;
            greater = 0;
            equal = 0;
            maxLtGuess = min;
            minGtGuess = max;
            for (var i = 0; i < n; i++)
            {
                if (m[i] < guess)
                {
                    less++;
                    if (m[i] > maxLtGuess)
                    {
                        maxLtGuess = m[i];
                    }
                }
                else if (m[i] > guess)
                {
                    greater++;
                    if (m[i] < minGtGuess)
                    {
                        minGtGuess = m[i];
                    }
                }
                else
                {
                    equal++;
                }
            }

            if (less <= half && greater <= half)
            {
                break;
            }

            if (less > greater)
            {
                max = maxLtGuess;
            }
            else
            {
                min = minGtGuess;
            }
        }

        return less >= half ? maxLtGuess : less + equal >= half ? guess : minGtGuess;
    }

    /// <summary>
    /// The same order statistic as <see cref="Torben"/> (the (n+1)/2-th smallest value), by radix selection on the
    /// floats' order-preserving bit patterns: one histogram and one compaction pass over the values, then a few over
    /// the handful left, instead of Torben's ~30 passes of unpredictable branches. Equal to Torben's result as a
    /// number for every input without NaN (a zero may come back as -0 where Torben gives +0, which no "strictly
    /// above" comparison can tell apart); at most 1,024 values (it works on the stack).
    /// </summary>
    public static float Median(ReadOnlySpan<float> m)
    {
        var n = m.Length;
        if (n is 0 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(m), n, "Median takes 1 to 1,024 values.");
        }

        // Flip the sign bit of positives and every bit of negatives: unsigned order is then float order (-0 < +0).
        Span<uint> keys = stackalloc uint[n];
        var bits = MemoryMarshal.Cast<float, uint>(m);
        for (var i = 0; i < n; i++)
        {
            var b = bits[i];
            keys[i] = b ^ (uint)((int)b >> 31 | int.MinValue);
        }

        Span<int> counts = stackalloc int[256];
        var rank = ((n + 1) / 2) - 1;
        var live = n;
        for (var shift = 24; shift >= 0 && live > 1; shift -= 8)
        {
            counts.Clear();
            for (var i = 0; i < live; i++)
            {
                counts[(int)(keys[i] >> shift) & 0xFF]++;
            }

            var digit = 0;
            while (rank >= counts[digit])
            {
                rank -= counts[digit];
                digit++;
            }

            var kept = 0;
            for (var i = 0; i < live; i++)
            {
                var k = keys[i];
                keys[kept] = k;
                kept += ((int)(k >> shift) & 0xFF) == digit ? 1 : 0;
            }

            live = kept;
        }

        var key = keys[0];
        return BitConverter.UInt32BitsToSingle(key ^ ((key & 0x8000_0000u) != 0 ? 0x8000_0000u : 0xFFFF_FFFFu));
    }

    /// <summary>Stage 5: pdqBuffer16x16ToBits, bit i*16+j set where B[i][j] is strictly above the median.</summary>
    public static PdqHash ToHash(ReadOnlySpan<float> b16x16) => ToHash(b16x16, Median(b16x16[..256]));

    /// <summary>Stage 5 with the median already known: bit i*16+j set where B[i][j] is strictly above it.</summary>
    public static PdqHash ToHash(ReadOnlySpan<float> b16x16, float median)
    {
        if (b16x16.Length < 256)
        {
            throw new ArgumentException("A 16x16 buffer has 256 values.", nameof(b16x16));
        }

        Span<ulong> w = stackalloc ulong[4];
        if (Vector256.IsHardwareAccelerated)
        {
            // Eight comparisons a step; lane i's mask bit is element k + i, so the bits land where the scalar loop puts them.
            var m = Vector256.Create(median);
            ref var b = ref MemoryMarshal.GetReference(b16x16);
            for (var k = 0; k < 256; k += 8)
            {
                var bits = Vector256.GreaterThan(Vector256.LoadUnsafe(ref b, (nuint)k), m).ExtractMostSignificantBits();
                w[k >> 6] |= (ulong)bits << (k & 63);
            }
        }
        else
        {
            for (var k = 0; k < 256; k++)
            {
                if (b16x16[k] > median)
                {
                    w[k >> 6] |= 1UL << (k & 63);
                }
            }
        }

        return new PdqHash(w[0], w[1], w[2], w[3]);
    }

    /// <summary>
    /// The 8 dihedral hashes of a 16x16 DCT whose median is <paramref name="median"/>, in the reference's order,
    /// with four medians instead of eight: variants that differ by a transpose hold the same values
    /// (<see cref="SameValuesAs"/>), so the later one reuses the earlier one's median.
    /// </summary>
    internal static void DihedralHashes(ReadOnlySpan<float> b16x16, float median, Span<float> aux16x16, Span<PdqHash> variants)
    {
        Span<float> medians = stackalloc float[8];
        medians[0] = median;
        variants[0] = ToHash(b16x16, median);
        for (var v = 1; v < 8; v++)
        {
            DihedralDct((Dihedral)v, b16x16, aux16x16);
            var same = (int)SameValuesAs((Dihedral)v);
            medians[v] = same < v ? medians[same] : Median(aux16x16[..256]);
            variants[v] = ToHash(aux16x16, medians[v]);
        }
    }

    /// <summary>
    /// The first variant, in the reference's order, whose DCT holds the same values as <paramref name="variant"/>'s
    /// (so the same median): Rotate90 and FlipY negate the same coefficients and differ by a transpose, as do
    /// Rotate270 and FlipX, Rotate180 and FlipMinus1, Original and FlipPlus1; a transpose only moves values.
    /// </summary>
    public static Dihedral SameValuesAs(Dihedral variant) => variant switch
    {
        Dihedral.FlipY => Dihedral.Rotate90,
        Dihedral.FlipX => Dihedral.Rotate270,
        Dihedral.FlipMinus1 => Dihedral.Rotate180,
        Dihedral.FlipPlus1 => Dihedral.Original,
        _ => variant,
    };

    /// <summary>
    /// The dihedral variant of a 16x16 DCT, by sign flips and transposition (dct16OriginalTo*):
    /// the DCT of a rotated or flipped image, without re-hashing pixels.
    /// </summary>
    public static void DihedralDct(Dihedral variant, ReadOnlySpan<float> a, Span<float> b)
    {
        if ((uint)variant > (uint)Dihedral.FlipMinus1)
        {
            throw new ArgumentOutOfRangeException(nameof(variant));
        }

        if (a.Length < 256 || b.Length < 256)
        {
            throw new ArgumentException("16x16 buffers have 256 values.");
        }

        // Negation is a flip of the sign bit, so each variant is one XOR mask (built once) and, for the
        // transposing ones, a transposed store: no per-coefficient branch on the variant.
        var mask = MemoryMarshal.Cast<uint, Vector256<uint>>(DihedralSigns[(int)variant]);
        var av = MemoryMarshal.Cast<float, Vector256<uint>>(a[..256]);
        if (!Transposes(variant))
        {
            var bv = MemoryMarshal.Cast<float, Vector256<uint>>(b[..256]);
            for (var k = 0; k < bv.Length; k++)
            {
                bv[k] = av[k] ^ mask[k];
            }

            return;
        }

        var bits = MemoryMarshal.Cast<float, uint>(b[..256]);
        var signs = DihedralSigns[(int)variant];
        var ai = MemoryMarshal.Cast<float, uint>(a[..256]);
        for (var i = 0; i < 16; i++)
        {
            for (var j = 0; j < 16; j++)
            {
                bits[(j * 16) + i] = ai[(i * 16) + j] ^ signs[(i * 16) + j];
            }
        }
    }

    private static bool Transposes(Dihedral variant) => variant is Dihedral.Rotate90 or Dihedral.Rotate270 or Dihedral.FlipPlus1 or Dihedral.FlipMinus1;

    /// <summary>Per variant, the sign bit to flip on each source coefficient a[i][j] (the reference's dct16OriginalTo* signs).</summary>
    private static readonly uint[][] DihedralSigns = BuildDihedralSigns();

    private static uint[][] BuildDihedralSigns()
    {
        var masks = new uint[8][];
        for (var v = 0; v < 8; v++)
        {
            masks[v] = new uint[256];
            for (var i = 0; i < 16; i++)
            {
                for (var j = 0; j < 16; j++)
                {
                    var negate = (Dihedral)v switch
                    {
                        Dihedral.Rotate90 => (j & 1) == 0,
                        Dihedral.Rotate180 => ((i + j) & 1) != 0,
                        Dihedral.Rotate270 => (i & 1) == 0,
                        Dihedral.FlipX => (i & 1) == 0,
                        Dihedral.FlipY => (j & 1) == 0,
                        Dihedral.FlipMinus1 => ((i + j) & 1) != 0,
                        _ => false,
                    };
                    masks[v][(i * 16) + j] = negate ? 0x8000_0000u : 0;
                }
            }
        }

        return masks;
    }
}
