using System.Numerics;

namespace Warden.Core.Hashing.Pdq;

/// <summary>
/// Warden's fast PDQ resample (not in Meta's reference; <see cref="PdqResize.Fast"/>): a block-mean reduction of
/// the decoded pixels, then a resample that emulates the reference's full-resolution Jarosz filter and 64x64
/// decimation from the reduced pixels. Kept apart from <see cref="PdqStages"/> so that file reads line by line
/// beside pdqhashing.cpp.
/// </summary>
public static class PdqFastResample
{
    /// <summary>
    /// Warden's fast-path reduction (not in the reference): luma averaged over
    /// <paramref name="factor"/> x <paramref name="factor"/> blocks (partial edge blocks averaged over
    /// the pixels they have). The Jarosz filter that follows is itself a box average far wider than
    /// the block, so this moves the hash by a few bits at most while cutting its cost by factor².
    /// </summary>
    public static void FillLumaBoxReduced(
        ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel, int factor, Span<float> luma, out int outWidth, out int outHeight, bool grey = false)
    {
        PdqStages.CheckPixels(pixels, width, height, stride, bytesPerPixel);
        ArgumentOutOfRangeException.ThrowIfLessThan(factor, 1);
        outWidth = (width + factor - 1) / factor;
        outHeight = (height + factor - 1) / factor;
        if (luma.Length < outWidth * outHeight)
        {
            throw new ArgumentException("Luma buffer too small.", nameof(luma));
        }

        var ow = outWidth;
        var acc = luma[..(outWidth * outHeight)];
        acc.Clear();
        for (var y = 0; y < height; y++)
        {
            var row = pixels.Slice(y * stride, width * bytesPerPixel);
            var accRow = acc.Slice(y / factor * ow, ow);
            if (bytesPerPixel >= 3 && !grey)
            {
                for (int x = 0, p = 0; x < width; x++, p += bytesPerPixel)
                {
                    accRow[x / factor] += PdqStages.Luma(row[p], row[p + 1], row[p + 2]);
                }
            }
            else
            {
                for (int x = 0, p = 0; x < width; x++, p += bytesPerPixel)
                {
                    accRow[x / factor] += row[p];
                }
            }
        }

        for (var by = 0; by < outHeight; by++)
        {
            var rows = Math.Min(factor, height - (by * factor));
            var accRow = acc.Slice(by * ow, ow);
            for (var bx = 0; bx < ow; bx++)
            {
                var cols = Math.Min(factor, width - (bx * factor));
                accRow[bx] /= rows * cols;
            }
        }
    }

    /// <summary>
    /// Taps per output sample that <see cref="ReducedResampleWeights"/> uses for an axis of
    /// <paramref name="fullDim"/> pixels reduced by <paramref name="scale"/>: the reference kernel's
    /// reach (2 windows) in reduced pixels plus the interpolation's margin.
    /// </summary>
    public static int ReducedTaps(int fullDim, int scale) => ((2 * PdqStages.JaroszWindowSize(fullDim, 64)) + scale - 1) / scale + 4;

    /// <summary>
    /// Warden's fast-path stage (not in the reference): weights that turn one axis of an image reduced by
    /// <paramref name="scale"/> (each pixel the mean of <paramref name="scale"/> full-resolution pixels, as
    /// JPEG DCT scaling and block averaging give) into the 64 values the reference's two-pass Jarosz filter
    /// and <see cref="PdqStages.Decimate"/> produce along that axis at full resolution.
    /// </summary>
    /// <remarks>
    /// For each sample p = (int)((i + 0.5) dim / 64) the exact reference kernel K(p, x) is built in double:
    /// two passes of <see cref="PdqStages.Box1D"/>, with its shrinking edge windows and the half-pixel shift of even
    /// windows. Its points x map to reduced coordinates r = (x - (s - 1) / 2) / s. The block mean already
    /// applied a box of width s (variance (s² - 1) / 12), and variances add under convolution, so the points
    /// are pulled towards the kernel's mean μ by c = sqrt(max(0, σ² - (s² - 1) / 12) / σ²): the remaining
    /// blur keeps K's shape with the variance still owed. Each point then spreads its weight over the three
    /// nearest reduced pixels by quadratic Lagrange interpolation, which reproduces polynomials up to degree
    /// 2, so the resulting weights have exactly the target's sum, mean and variance. Taps past the edges fold
    /// onto the edge pixel.
    /// </remarks>
    /// <param name="fullDim">The axis length at full resolution (what the reference would filter).</param>
    /// <param name="scale">The integer reduction factor along the axis.</param>
    /// <param name="reducedDim">The axis length of the reduced image; at least <see cref="ReducedTaps"/>.</param>
    /// <param name="start">64 entries: index of each sample's first tap.</param>
    /// <param name="weights">64 rows of <see cref="ReducedTaps"/> weights.</param>
    public static void ReducedResampleWeights(int fullDim, int scale, int reducedDim, Span<int> start, Span<float> weights)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fullDim, PdqStages.MinHashableDim);
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        var taps = ReducedTaps(fullDim, scale);
        ArgumentOutOfRangeException.ThrowIfLessThan(reducedDim, taps);
        if (start.Length < 64 || weights.Length < 64 * taps)
        {
            throw new ArgumentException("Weight buffers too small.");
        }

        var window = PdqStages.JaroszWindowSize(fullDim, 64);
        var half = (window + 2) / 2;
        var reach = 2 * window;
        Span<double> kernel = stackalloc double[(2 * reach) + 1];
        Span<double> acc = stackalloc double[(2 * taps) + 8];
        for (var i = 0; i < 64; i++)
        {
            var p = (int)((i + 0.5) * fullDim / 64);
            var x0 = p - reach;
            BuildKernel(p, fullDim, window, half, x0, kernel);
            double mean = 0, second = 0;
            for (var k = 0; k < kernel.Length; k++)
            {
                var x = x0 + k;
                mean += kernel[k] * x;
                second += kernel[k] * x * x;
            }

            var variance = Math.Max(0, second - (mean * mean));
            var owed = variance - (((scale * scale) - 1) / 12.0);
            var shrink = variance > 0 && owed > 0 ? Math.Sqrt(owed / variance) : 0;
            var mu = (mean - ((scale - 1) / 2.0)) / scale;

            // acc[t] is reduced pixel first + t; the kernel's points stay within ±reach/s of mu.
            var first = (int)Math.Floor(mu) - (acc.Length / 2);
            acc.Clear();
            for (var k = 0; k < kernel.Length; k++)
            {
                if (kernel[k] == 0)
                {
                    continue;
                }

                var r = mu + ((((x0 + k - ((scale - 1) / 2.0)) / scale) - mu) * shrink);
                var node = (int)Math.Round(r);
                var d = r - node;

                // Quadratic Lagrange basis on nodes node-1, node, node+1 evaluated at node + d.
                var t = node - first;
                acc[t - 1] += kernel[k] * d * (d - 1) / 2;
                acc[t] += kernel[k] * (1 - (d * d));
                acc[t + 1] += kernel[k] * d * (d + 1) / 2;
            }

            var used = 0;
            while (acc[used] == 0)
            {
                used++;
            }

            var s0 = Math.Clamp(first + used, 0, reducedDim - taps);
            start[i] = s0;
            var row = weights.Slice(i * taps, taps);
            row.Clear();
            for (var t = used; t < acc.Length; t++)
            {
                if (acc[t] != 0)
                {
                    // Edge pixels absorb taps past the image; the span fits in taps by construction.
                    var idx = Math.Clamp(first + t, 0, reducedDim - 1) - s0;
                    row[Math.Clamp(idx, 0, taps - 1)] += (float)acc[t];
                }
            }
        }
    }

    /// <summary>
    /// The reference's two-pass box kernel for output <paramref name="p"/> of an axis of <paramref name="n"/>
    /// pixels, as weights on pixels x0 .. x0 + kernel.Length - 1.
    /// </summary>
    private static void BuildKernel(int p, int n, int window, int half, int x0, Span<double> kernel)
    {
        // Output o of one pass averages in[lo(o)..hi(o)], lo = max(0, o + half - window), hi = min(n - 1, o + half - 1).
        kernel.Clear();
        var lo = Math.Max(0, p + half - window);
        var hi = Math.Min(n - 1, p + half - 1);
        var outer = 1.0 / (hi - lo + 1);
        for (var o = lo; o <= hi; o++)
        {
            var l = Math.Max(0, o + half - window);
            var h = Math.Min(n - 1, o + half - 1);
            var w = outer / (h - l + 1);
            for (var x = l; x <= h; x++)
            {
                kernel[x - x0] += w;
            }
        }
    }

    /// <summary>
    /// Warden's fast-path replacement for <see cref="PdqStages.JaroszFilter"/> + <see cref="PdqStages.Decimate"/> on a reduced
    /// image: out[i][j] = Σ_a Σ_b wy[i][a] wx[j][b] in[sy[i] + a][sx[j] + b], with the weights of
    /// <see cref="ReducedResampleWeights"/> (<paramref name="tapsY"/> and <paramref name="tapsX"/> per sample).
    /// Only the rows the 64 samples need are read.
    /// </summary>
    public static void ResampleReduced(
        ReadOnlySpan<float> input, int rows, int cols, ReadOnlySpan<int> startY, ReadOnlySpan<float> weightsY, int tapsY,
        ReadOnlySpan<int> startX, ReadOnlySpan<float> weightsX, int tapsX, Span<float> row, Span<float> output64x64)
    {
        if (input.Length < rows * cols || row.Length < cols || output64x64.Length < 64 * 64)
        {
            throw new ArgumentException("Buffer too small.");
        }

        var vn = Vector<float>.Count;
        for (var i = 0; i < 64; i++)
        {
            // Vertical taps over the whole row (vectorised), then the 64 horizontal samples.
            var y0 = startY[i];
            var wy = weightsY.Slice(i * tapsY, tapsY);
            row[..cols].Clear();
            for (var a = 0; a < tapsY; a++)
            {
                var w = wy[a];
                if (w == 0)
                {
                    continue;
                }

                var src = input.Slice((y0 + a) * cols, cols);
                var x = 0;
                var vw = new Vector<float>(w);
                for (; x <= cols - vn; x += vn)
                {
                    (new Vector<float>(row[x..]) + (vw * new Vector<float>(src[x..]))).CopyTo(row[x..]);
                }

                for (; x < cols; x++)
                {
                    row[x] += w * src[x];
                }
            }

            var outRow = output64x64.Slice(i * 64, 64);
            for (var j = 0; j < 64; j++)
            {
                var x0 = startX[j];
                var wx = weightsX.Slice(j * tapsX, tapsX);
                var sum = 0.0f;
                for (var b = 0; b < tapsX; b++)
                {
                    sum += wx[b] * row[x0 + b];
                }

                outRow[j] = sum;
            }
        }
    }
}
