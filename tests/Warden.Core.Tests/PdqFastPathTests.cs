using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

/// <summary>
/// The fast path's emulation of the reference's full-resolution Jarosz filter + decimation from a reduced
/// image (<see cref="PdqFastResample.ReducedResampleWeights"/>, <see cref="PdqFastResample.ResampleReduced"/>).
/// </summary>
public sealed class PdqFastPathTests
{
    [Theory]
    [InlineData(200, 150)]
    [InlineData(640, 480)]
    [InlineData(1001, 333)]
    [InlineData(1600, 1004)]
    public void Scale_one_reproduces_the_reference_filter_and_decimation(int width, int height)
    {
        // At s = 1 every kernel point sits on a pixel, so the weights are the reference kernel itself
        // (edges and even-window shift included) and only the float summation order differs.
        var luma = RandomLuma(width, height, seed: width ^ height);
        var expected = ReferenceBuffer64(luma, height, width);
        var actual = EmulatedBuffer64(luma, height, width, width, height, 1);
        for (var k = 0; k < 64 * 64; k++)
        {
            Assert.InRange(actual[k], expected[k] - 0.01f, expected[k] + 0.01f);
        }
    }

    [Theory]
    [InlineData(1004, 2)]
    [InlineData(1600, 8)]
    [InlineData(3024, 24)]
    [InlineData(999, 3)]
    public void Weights_sum_to_one_and_stay_near_the_sample(int fullDim, int scale)
    {
        var reduced = (fullDim + scale - 1) / scale;
        var taps = PdqFastResample.ReducedTaps(fullDim, scale);
        var start = new int[64];
        var weights = new float[64 * taps];
        PdqFastResample.ReducedResampleWeights(fullDim, scale, reduced, start, weights);
        for (var i = 0; i < 64; i++)
        {
            var row = weights.AsSpan(i * taps, taps);
            var sum = 0.0;
            var mean = 0.0;
            for (var t = 0; t < taps; t++)
            {
                sum += row[t];
                mean += row[t] * (start[i] + t);
            }

            Assert.InRange(sum, 0.9999, 1.0001);
            var sample = (((int)((i + 0.5) * fullDim / 64)) + 0.5) / scale;
            Assert.InRange(mean, sample - 1.5, sample + 1.5);
            Assert.InRange(start[i], 0, reduced - taps);
        }
    }

    [Theory]
    [InlineData(1600, 1000, 8)]
    [InlineData(1600, 1000, 4)]
    [InlineData(1200, 900, 2)]
    public void Block_mean_reduction_hashes_near_the_full_resolution_core(int width, int height, int scale)
    {
        var full = SmoothImage(width, height);
        var reference = new PdqHasher().Hash(full, width, height, width, 1, PdqResize.FullResolution);
        var (reduced, rw, rh) = BlockMean(full, width, height, scale);
        var fast = new PdqHasher().Hash(reduced, rw, rh, rw, 1, PdqResize.Fast, originalWidth: width, originalHeight: height);

        Assert.True(reference.Quality >= 50, $"synthetic image quality {reference.Quality}");
        Assert.InRange(fast.Hash.DistanceTo(reference.Hash), 0, 8);
        Assert.InRange(fast.Quality, reference.Quality - 10, reference.Quality + 10);
    }

    [Fact]
    public void Fast_path_on_full_size_pixels_block_averages_then_emulates()
    {
        const int width = 1600, height = 1000;
        var full = SmoothImage(width, height);
        var reference = new PdqHasher().Hash(full, width, height, width, 1, PdqResize.FullResolution);
        var fast = new PdqHasher().Hash(full, width, height, width, 1, PdqResize.Fast);
        Assert.InRange(fast.Hash.DistanceTo(reference.Hash), 0, 8);
    }

    [Fact]
    public void Constant_image_has_quality_zero()
    {
        var pixels = new byte[200 * 125 * 3];
        Array.Fill(pixels, (byte)117);
        var result = new PdqHasher().Hash(pixels, 200, 125, 600, 3, PdqResize.Fast, originalWidth: 1600, originalHeight: 1000);
        Assert.Equal(0, result.Quality);
    }

    [Fact]
    public void Dihedral_variants_come_from_the_emulated_buffer()
    {
        const int width = 1600, height = 1000;
        var (reduced, rw, rh) = BlockMean(SmoothImage(width, height), width, height, 8);
        var result = new PdqHasher().Hash(reduced, rw, rh, rw, 1, PdqResize.Fast, dihedral: true, originalWidth: width, originalHeight: height);
        Assert.NotNull(result.Dihedral);
        Assert.Equal(8, result.Dihedral!.Count);
        Assert.Equal(result.Hash, result.Dihedral[0]);
    }

    [Theory]
    [InlineData(256, 256, 1)]
    [InlineData(384, 5000, 1)]
    [InlineData(1600, 1004, 8)]
    [InlineData(1152, 723, 6)]
    [InlineData(4032, 3024, 24)]
    public void Fast_scale_is_the_short_side_window_above_the_exact_floor(int width, int height, int expected) =>
        Assert.Equal(expected, PdqHasher.FastScale(width, height));

    [SkippableFact]
    public void Jpeg_is_decoded_at_the_largest_dct_scale_the_fast_path_allows()
    {
        var bytes = File.ReadAllBytes(TestData.SharedPath("pdq", "reg-test-input", "dih", "bridge-1-original.jpg"));
        using var image = ImageDecoder.Decode(bytes, maxReduction: (w, h) => PdqHasher.FastScale(w, h));
        Assert.Equal((1600, 1004), (image.Width, image.Height));
        Assert.Equal((200, 125), (image.PixelWidth, image.PixelHeight));
        using var full = ImageDecoder.Decode(bytes);
        Assert.Equal((1600, 1004), (full.PixelWidth, full.PixelHeight));
    }

    private static float[] ReferenceBuffer64(float[] luma, int rows, int cols)
    {
        var b1 = (float[])luma.Clone();
        var b2 = new float[rows * cols];
        PdqStages.JaroszFilter(b1, b2, rows, cols, PdqStages.JaroszWindowSize(cols, 64), PdqStages.JaroszWindowSize(rows, 64));
        var out64 = new float[64 * 64];
        PdqStages.Decimate(b1, rows, cols, out64);
        return out64;
    }

    private static float[] EmulatedBuffer64(float[] reduced, int rows, int cols, int fullWidth, int fullHeight, int scale)
    {
        var tx = PdqFastResample.ReducedTaps(fullWidth, scale);
        var ty = PdqFastResample.ReducedTaps(fullHeight, scale);
        var sx = new int[64];
        var sy = new int[64];
        var wx = new float[64 * tx];
        var wy = new float[64 * ty];
        PdqFastResample.ReducedResampleWeights(fullWidth, scale, cols, sx, wx);
        PdqFastResample.ReducedResampleWeights(fullHeight, scale, rows, sy, wy);
        var out64 = new float[64 * 64];
        PdqFastResample.ResampleReduced(reduced, rows, cols, sy, wy, ty, sx, wx, tx, new float[cols], out64);
        return out64;
    }

    private static float[] RandomLuma(int width, int height, int seed)
    {
        var random = new Random(seed);
        var luma = new float[width * height];
        for (var k = 0; k < luma.Length; k++)
        {
            luma[k] = random.Next(256);
        }

        return luma;
    }

    /// <summary>A smooth grey image: a few low-frequency waves and blobs, as a photo's coarse structure.</summary>
    private static byte[] SmoothImage(int width, int height)
    {
        var pixels = new byte[width * height];
        for (var y = 0; y < height; y++)
        {
            var v = (double)y / height;
            for (var x = 0; x < width; x++)
            {
                var u = (double)x / width;
                var value = 128
                    + (50 * Math.Sin((2 * Math.PI * 3.3 * u) + (1.7 * v)))
                    + (35 * Math.Cos(2 * Math.PI * ((4.1 * v) - (1.3 * u))))
                    + (30 * Math.Exp(-(((u - 0.3) * (u - 0.3)) + ((v - 0.6) * (v - 0.6))) * 40))
                    + (20 * Math.Sin(2 * Math.PI * 9.7 * u * v));
                pixels[(y * width) + x] = (byte)Math.Clamp(Math.Round(value), 0, 255);
            }
        }

        return pixels;
    }

    private static (byte[] Pixels, int Width, int Height) BlockMean(byte[] full, int width, int height, int s)
    {
        var rw = (width + s - 1) / s;
        var rh = (height + s - 1) / s;
        var reduced = new byte[rw * rh];
        for (var by = 0; by < rh; by++)
        {
            for (var bx = 0; bx < rw; bx++)
            {
                int sum = 0, count = 0;
                for (var y = by * s; y < Math.Min(height, (by + 1) * s); y++)
                {
                    for (var x = bx * s; x < Math.Min(width, (bx + 1) * s); x++)
                    {
                        sum += full[(y * width) + x];
                        count++;
                    }
                }

                reduced[(by * rw) + bx] = (byte)((sum + (count / 2)) / count);
            }
        }

        return (reduced, rw, rh);
    }
}
