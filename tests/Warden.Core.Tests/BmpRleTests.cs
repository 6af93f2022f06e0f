using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;
using Warden.Core.Signals;

namespace Warden.Core.Tests;

/// <summary>Every BMP layout decodes to the pixels it encodes; RLE8/RLE4 equal their uncompressed twins; damage is typed.</summary>
public sealed class BmpRleTests
{
    private static byte[] Decode(byte[] bmp)
    {
        using var img = ImageDecoder.Decode(bmp);
        Assert.Equal(ImageFormat.Bmp, img.Format);
        return img.Pixels.ToArray();
    }

    /// <summary>Random images of random sizes (odd widths included): runs, literals and padding all occur.</summary>
    [Property(MaxTest = 150)]
    public void Rle8_and_rle4_decode_exactly_as_their_uncompressed_twins(PositiveInt w, PositiveInt h, int seed, bool noisy)
    {
        var width = 1 + (w.Get % 70);
        var height = 1 + (h.Get % 40);
        var rgb = noisy ? Noise(width, height, seed) : SyntheticImages.Smooth(width, height, seed);
        Assert.Equal(Decode(BmpWriter.Encode(rgb, width, height, BmpKind.Bpp8)), Decode(BmpWriter.Encode(rgb, width, height, BmpKind.Rle8)));
        Assert.Equal(Decode(BmpWriter.Encode(rgb, width, height, BmpKind.Bpp4)), Decode(BmpWriter.Encode(rgb, width, height, BmpKind.Rle4)));
    }

    [Theory]
    [InlineData(BmpKind.Bpp1)]
    [InlineData(BmpKind.Bpp4)]
    [InlineData(BmpKind.Bpp8)]
    [InlineData(BmpKind.Rle4)]
    [InlineData(BmpKind.Rle8)]
    public void Palette_layouts_give_the_palette_colour_of_every_pixel(BmpKind kind)
    {
        const int width = 37, height = 23;
        var rgb = SyntheticImages.Smooth(width, height, 7);
        var px = Decode(BmpWriter.Encode(rgb, width, height, kind));
        var palette = BmpWriter.Palette(kind);
        for (var i = 0; i < width * height; i++)
        {
            var (r, g, b) = palette[BmpWriter.Index(kind, rgb[i * 3], rgb[(i * 3) + 1], rgb[(i * 3) + 2])];
            Assert.Equal((r, g, b), (px[i * 3], px[(i * 3) + 1], px[(i * 3) + 2]));
        }
    }

    [Theory]
    [InlineData(BmpKind.Bpp24)]
    [InlineData(BmpKind.Bpp24TopDown)]
    [InlineData(BmpKind.Bpp24Core)]
    [InlineData(BmpKind.Bpp32)]
    [InlineData(BmpKind.Bpp32V5)]
    public void True_colour_layouts_are_lossless(BmpKind kind)
    {
        const int width = 41, height = 19;
        var rgb = SyntheticImages.Smooth(width, height, 3);
        Assert.Equal(rgb, Decode(BmpWriter.Encode(rgb, width, height, kind)));
    }

    [Theory]
    [InlineData(BmpKind.Bpp16)]
    [InlineData(BmpKind.Bpp16Bitfields565)]
    public void Sixteen_bit_layouts_keep_the_top_bits(BmpKind kind)
    {
        const int width = 29, height = 17;
        var rgb = SyntheticImages.Smooth(width, height, 5);
        var px = Decode(BmpWriter.Encode(rgb, width, height, kind));
        for (var i = 0; i < rgb.Length; i++)
        {
            Assert.True(Math.Abs(rgb[i] - px[i]) <= 8, $"{kind} byte {i}: {rgb[i]} vs {px[i]}");
        }
    }

    /// <summary>Every BMP layout of one photo-like image hashes within the match threshold of the original.</summary>
    [Fact]
    public void Every_layout_hashes_near_the_original()
    {
        const int width = 256, height = 192;
        var rgb = SyntheticImages.Blobs(width, height, 11);
        var hasher = new PdqImageHasher();
        var original = hasher.Hash(BmpWriter.Encode(rgb, width, height, BmpKind.Bpp24), false).Pdq.Hash;
        foreach (var kind in Enum.GetValues<BmpKind>().Where(k => k is not BmpKind.Bpp1))
        {
            var hash = hasher.Hash(BmpWriter.Encode(rgb, width, height, kind), false).Pdq.Hash;
            Assert.True(original.DistanceTo(hash) <= PdqSignalType.DefaultMatchThreshold, $"{kind}: distance {original.DistanceTo(hash)}");
        }
    }

    [Fact]
    public void Rle8_delta_and_end_of_line_escapes_leave_index_zero()
    {
        // 4×3, bottom-up: row 0 = run of 2×idx5, delta (+1, +1) → (3, 1), run of 1×idx7, EOL, 0/1 end.
        byte[] rle = [2, 5, 0, 2, 1, 1, 1, 7, 0, 0, 0, 1];
        var bmp = WithPixels(BmpWriter.Encode(new byte[4 * 3 * 3], 4, 3, BmpKind.Rle8), rle);
        var px = Decode(bmp);
        var palette = BmpWriter.Palette(BmpKind.Rle8);
        byte At(int x, int fileRow, int c) => px[((((2 - fileRow) * 4) + x) * 3) + c];
        Assert.Equal(palette[5].R, At(0, 0, 0));
        Assert.Equal(palette[5].B, At(1, 0, 2));
        Assert.Equal(palette[7].B, At(3, 1, 2));
        Assert.Equal(palette[0].R, At(2, 0, 0));
        Assert.Equal(palette[0].G, At(0, 2, 1));
    }

    [Fact]
    public void Runs_past_the_row_end_are_clipped_and_a_missing_end_marker_is_truncation()
    {
        var bmp = WithPixels(BmpWriter.Encode(new byte[4 * 2 * 3], 4, 2, BmpKind.Rle8), [200, 9, 0, 0, 255, 3, 0, 1]);
        Assert.Equal(4 * 2 * 3, Decode(bmp).Length);
        var cut = WithPixels(BmpWriter.Encode(new byte[4 * 2 * 3], 4, 2, BmpKind.Rle8), [4, 9, 0, 0]);
        Assert.Equal(ImageDecodeError.Truncated, Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(cut)).Error);
    }

    /// <summary>Cut at every offset or with bytes flipped, an RLE BMP decodes or fails with a typed error, never anything else.</summary>
    [Property(MaxTest = 300)]
    public void Damaged_rle_bmps_fail_typed(int seed, PositiveInt at, byte value, bool four)
    {
        var rgb = Noise(23, 11, seed);
        var bmp = BmpWriter.Encode(rgb, 23, 11, four ? BmpKind.Rle4 : BmpKind.Rle8);
        var damaged = (byte[])bmp.Clone();
        damaged[14 + (at.Get % (bmp.Length - 14))] = value;
        foreach (var data in new[] { damaged, bmp[..(at.Get % bmp.Length)] })
        {
            try
            {
                using var img = ImageDecoder.Decode(data);
                Assert.Equal(img.PixelWidth * img.PixelHeight * img.BytesPerPixel, img.Pixels.Length);
            }
            catch (ImageDecodeException)
            {
                // typed: fine
            }
        }
    }

    [Fact]
    public void Embedded_png_bitmaps_decode_as_their_png()
    {
        const int width = 30, height = 20;
        var rgb = SyntheticImages.Smooth(width, height, 9);
        using var vips = NetVips.Image.NewFromMemory(rgb, width, height, 3, NetVips.Enums.BandFormat.Uchar);
        var png = vips.PngsaveBuffer();
        var bmp = BmpWriter.Encode(rgb, width, height, BmpKind.Bpp24);
        var offset = BinaryPrimitives.ReadInt32LittleEndian(bmp.AsSpan(10));
        var wrapped = bmp[..offset].Concat(png).ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(wrapped.AsSpan(30), 5); // BI_PNG
        Assert.Equal(rgb, Decode(wrapped));
        BinaryPrimitives.WriteInt32LittleEndian(wrapped.AsSpan(30), 4); // BI_JPEG, but the data is a PNG
        Assert.Equal(ImageDecodeError.Corrupt, Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(wrapped)).Error);
    }

    private static byte[] WithPixels(byte[] bmp, byte[] pixels)
    {
        var offset = BinaryPrimitives.ReadInt32LittleEndian(bmp.AsSpan(10));
        return [.. bmp[..offset], .. pixels];
    }

    private static byte[] Noise(int width, int height, int seed)
    {
        var rng = new Random(seed);
        var px = new byte[width * height * 3];
        rng.NextBytes(px);

        // Stretches of equal pixels too, so encoded runs and literals alternate.
        for (var i = 0; i + 30 < px.Length; i += 60)
        {
            px.AsSpan(i + 3, 24).Fill(px[i]);
        }

        return px;
    }
}
