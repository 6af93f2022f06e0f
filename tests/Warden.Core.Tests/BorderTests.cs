using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

/// <summary>Uniform-border detection (<see cref="BorderDetector"/>) and the trimmed hash of <see cref="PdqImageHasher"/>.</summary>
public sealed class BorderTests
{
    private const int W = 320;
    private const int H = 240;

    public static TheoryData<string, int> ColoursAndSides()
    {
        var data = new TheoryData<string, int>();
        foreach (var colour in new[] { "black", "white", "grey", "teal" })
        {
            // Bit mask of sides: 1 top, 2 bottom, 4 left, 8 right; one to four sides.
            foreach (var sides in new[] { 1, 2, 4, 8, 3, 12, 5, 7, 14, 15 })
            {
                data.Add(colour, sides);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ColoursAndSides))]
    public void Borders_are_found_and_the_trimmed_hash_matches_the_unbordered_image(string colour, int sides)
    {
        var content = SyntheticImages.Blobs(W, H, seed: 7);
        var (px, w, h, truth) = Framed(content, W, H, Colour(colour), Sides(sides, 37, 29));
        var hasher = new PdqImageHasher();
        var plain = hasher.Hash(SyntheticImages.Encode(content, W, H, "png"));

        var png = hasher.Hash(SyntheticImages.Encode(px, w, h, "png"));
        Assert.NotNull(png.TrimRect);
        AssertNear(truth, png.TrimRect!.Value, 2);
        Assert.InRange(png.Trimmed!.Hash.DistanceTo(plain.Pdq.Hash), 0, 4);
        Assert.True(png.Pdq.Hash.DistanceTo(plain.Pdq.Hash) > PdqMatchThreshold, "the border alone should break the match");

        var jpeg = hasher.Hash(SyntheticImages.Encode(px, w, h, "jpg", "[Q=90]"));
        Assert.NotNull(jpeg.TrimRect);
        AssertNear(truth, jpeg.TrimRect!.Value, 8);
        Assert.InRange(jpeg.Trimmed!.Hash.DistanceTo(plain.Pdq.Hash), 0, 24);
    }

    [Theory]
    [InlineData(PdqResize.Fast)]
    [InlineData(PdqResize.FullResolution)]
    [InlineData(PdqResize.Cli512)]
    public void Large_framed_jpeg_is_trimmed_on_the_reduced_decode(PdqResize resize)
    {
        // 1600x1200 content in a 160 px frame: the fast path decodes at 1/8, so the crop is of reduced
        // pixels and must be hashed as a 1600x1200 image.
        const int cw = 1600, ch = 1200, b = 160;
        var content = SyntheticImages.Smooth(cw, ch, seed: 3);
        var (px, w, h, truth) = Framed(content, cw, ch, [0, 0, 0], (b, b, b, b));
        var hasher = new PdqImageHasher(resize);
        var plain = hasher.Hash(SyntheticImages.Encode(content, cw, ch, "jpg", "[Q=90]"));
        var framed = hasher.Hash(SyntheticImages.Encode(px, w, h, "jpg", "[Q=90]"), dihedral: true);

        Assert.NotNull(framed.TrimRect);
        AssertNear(truth, framed.TrimRect!.Value, 8);
        Assert.InRange(framed.Trimmed!.Hash.DistanceTo(plain.Pdq.Hash), 0, 12);
        Assert.Equal(8, framed.Trimmed.Dihedral!.Count);
        Assert.Equal(framed.Trimmed.Hash, framed.Trimmed.Dihedral[0]);
    }

    [Fact]
    public void Unbordered_images_are_not_trimmed()
    {
        var hasher = new PdqImageHasher();
        foreach (var seed in new[] { 1, 2, 3, 4, 5 })
        {
            Assert.Null(hasher.Hash(SyntheticImages.Encode(SyntheticImages.Blobs(W, H, seed), W, H, "jpg")).Trimmed);
            Assert.Null(hasher.Hash(SyntheticImages.EncodedSmooth(W, H, "png", seed)).Trimmed);
        }
    }

    [Theory]
    [InlineData("flat")]
    [InlineData("horizontal")]
    [InlineData("vertical")]
    [InlineData("diagonal")]
    [InlineData("shallow")]
    public void Flat_images_and_gradients_are_not_trimmed(string kind)
    {
        const int w = 400, h = 300;
        var px = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                var v = kind switch
                {
                    "flat" => 90,
                    "horizontal" => x * 255 / (w - 1),
                    "vertical" => y * 255 / (h - 1),
                    "diagonal" => (x + y) * 255 / (w + h - 2),
                    _ => 100 + (x * 30 / (w - 1)),
                };
                px[((y * w) + x) * 3] = (byte)v;
                px[(((y * w) + x) * 3) + 1] = (byte)(255 - v);
                px[(((y * w) + x) * 3) + 2] = 60;
            }
        }

        Assert.False(BorderDetector.TryDetect(px, w, h, w * 3, 3, out _));
        Assert.Null(new PdqImageHasher().Hash(SyntheticImages.Encode(px, w, h, "png")).Trimmed);
        Assert.Null(new PdqImageHasher().Hash(SyntheticImages.Encode(px, w, h, "jpg")).Trimmed);
    }

    [Fact]
    public void Thin_bands_and_bands_leaving_too_little_are_ignored()
    {
        var content = SyntheticImages.Blobs(W, H, seed: 9);

        // 1% of the width: below the 2% floor.
        var (thin, tw, th, _) = Framed(content, W, H, [0, 0, 0], (0, 0, 3, 3));
        Assert.False(BorderDetector.TryDetect(thin, tw, th, tw * 3, 3, out _));

        // A small picture in a huge frame: what is left is under 30% of the side.
        var small = SyntheticImages.Blobs(80, 80, seed: 9);
        var (huge, hw, hh, _) = Framed(small, 80, 80, [255, 255, 255], (200, 200, 200, 200));
        Assert.False(BorderDetector.TryDetect(huge, hw, hh, hw * 3, 3, out _));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 5)]
    [InlineData(2, 300)]
    [InlineData(300, 2)]
    [InlineData(64, 64)]
    public void Tiny_and_degenerate_images_are_not_trimmed(int w, int h)
    {
        foreach (var bpp in new[] { 1, 2, 3, 4 })
        {
            // All one colour (an "all border" image) and random noise.
            var flat = Enumerable.Repeat((byte)200, w * h * bpp).ToArray();
            Assert.False(BorderDetector.TryDetect(flat, w, h, w * bpp, bpp, out var r));
            Assert.Equal(new ImageRect(0, 0, w, h), r);
            var noise = new byte[w * h * bpp];
            new Random(w + h).NextBytes(noise);
            Assert.False(BorderDetector.TryDetect(noise, w, h, w * bpp, bpp, out _));
        }

        var rgb = Enumerable.Repeat((byte)0, w * h * 3).ToArray();
        var result = new PdqImageHasher().Hash(SyntheticImages.Encode(rgb, w, h, "png"), dihedral: true);
        Assert.Null(result.Trimmed);
        Assert.Null(result.TrimRect);
    }

    [Fact]
    public void Bad_buffers_are_refused_without_throwing()
    {
        Assert.False(BorderDetector.TryDetect([], 0, 0, 0, 3, out _));
        Assert.False(BorderDetector.TryDetect(new byte[10], 10, 10, 30, 3, out _));
        Assert.False(BorderDetector.TryDetect(new byte[300], 10, 10, 30, 5, out _));
    }

    [Fact]
    public void Border_in_a_grey_and_alpha_image_is_found_on_the_colour_channel()
    {
        var content = SyntheticImages.Blobs(W, H, seed: 11);
        var (px, w, h, truth) = Framed(content, W, H, [255, 255, 255], (30, 30, 0, 0));
        var ga = new byte[w * h * 2];
        for (var i = 0; i < w * h; i++)
        {
            ga[2 * i] = px[3 * i + 1];
            ga[(2 * i) + 1] = (byte)(i % 251); // alpha is ignored, as the hasher ignores it
        }

        Assert.True(BorderDetector.TryDetect(ga, w, h, w * 2, 2, out var r));
        AssertNear(truth, r, 1);
    }

    [Fact]
    public void Trimming_can_be_turned_off()
    {
        var (px, w, h, _) = Framed(SyntheticImages.Blobs(W, H, seed: 2), W, H, [0, 0, 0], (40, 40, 40, 40));
        var result = new PdqImageHasher { TrimBorders = false }.Hash(SyntheticImages.Encode(px, w, h, "png"));
        Assert.Null(result.Trimmed);
        Assert.Null(result.TrimRect);
    }

    private const int PdqMatchThreshold = 31;

    private static byte[] Colour(string name) => name switch
    {
        "black" => [0, 0, 0],
        "white" => [255, 255, 255],
        "grey" => [128, 128, 128],
        _ => [0, 128, 128],
    };

    private static (int Top, int Bottom, int Left, int Right) Sides(int mask, int vertical, int horizontal) =>
        ((mask & 1) != 0 ? vertical : 0, (mask & 2) != 0 ? vertical : 0, (mask & 4) != 0 ? horizontal : 0, (mask & 8) != 0 ? horizontal : 0);

    /// <summary>Puts RGB <paramref name="content"/> in a border of one colour; returns the pixels and where the content lies.</summary>
    private static (byte[] Pixels, int Width, int Height, ImageRect Content) Framed(
        byte[] content, int cw, int ch, byte[] rgb, (int Top, int Bottom, int Left, int Right) b)
    {
        var w = cw + b.Left + b.Right;
        var h = ch + b.Top + b.Bottom;
        var px = new byte[w * h * 3];
        for (var i = 0; i < w * h; i++)
        {
            rgb.CopyTo(px, i * 3);
        }

        for (var y = 0; y < ch; y++)
        {
            Array.Copy(content, y * cw * 3, px, (((y + b.Top) * w) + b.Left) * 3, cw * 3);
        }

        return (px, w, h, new ImageRect(b.Left, b.Top, cw, ch));
    }

    private static void AssertNear(ImageRect expected, ImageRect actual, int tolerance)
    {
        Assert.InRange(actual.X, expected.X - tolerance, expected.X + tolerance);
        Assert.InRange(actual.Y, expected.Y - tolerance, expected.Y + tolerance);
        Assert.InRange(actual.Right, expected.Right - tolerance, expected.Right + tolerance);
        Assert.InRange(actual.Bottom, expected.Bottom - tolerance, expected.Bottom + tolerance);
    }
}
