using System.Buffers.Binary;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

public sealed class BmpDecoderTests
{
    /// <summary>Builds a BMP by hand: BITMAPINFOHEADER, given bit depth, bottom-up unless topDown.</summary>
    private static byte[] Bmp(int w, int h, int bpp, Func<int, int, (byte R, byte G, byte B)> pixel, bool topDown = false)
    {
        var rowBytes = ((w * bpp) + 31) / 32 * 4;
        var paletteSize = bpp == 8 ? 256 * 4 : 0;
        var offset = 14 + 40 + paletteSize;
        var data = new byte[offset + (rowBytes * h)];
        data[0] = (byte)'B';
        data[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(2), data.Length);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(10), offset);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(22), topDown ? -h : h);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(28), (short)bpp);
        if (bpp == 8)
        {
            for (var i = 0; i < 256; i++)
            {
                data[54 + (i * 4)] = (byte)i; // B
                data[54 + (i * 4) + 1] = (byte)(255 - i); // G
                data[54 + (i * 4) + 2] = (byte)(i / 2); // R
            }
        }

        for (var y = 0; y < h; y++)
        {
            var fileRow = topDown ? y : h - 1 - y;
            for (var x = 0; x < w; x++)
            {
                var p = offset + (fileRow * rowBytes) + (x * bpp / 8);
                var (r, g, b) = pixel(x, y);
                switch (bpp)
                {
                    case 24:
                        (data[p], data[p + 1], data[p + 2]) = (b, g, r);
                        break;
                    case 32:
                        (data[p], data[p + 1], data[p + 2], data[p + 3]) = (b, g, r, 255);
                        break;
                    default:
                        data[p] = b; // palette index
                        break;
                }
            }
        }

        return data;
    }

    [Theory]
    [InlineData(24, false)]
    [InlineData(24, true)]
    [InlineData(32, false)]
    public void Decodes_true_colour(int bpp, bool topDown)
    {
        var bmp = Bmp(7, 5, bpp, (x, y) => ((byte)(x * 30), (byte)(y * 40), (byte)(x + y)), topDown);
        using var img = ImageDecoder.Decode(bmp);
        Assert.Equal((ImageFormat.Bmp, 7, 5, 3), (img.Format, img.Width, img.Height, img.BytesPerPixel));
        var px = img.Pixels;
        for (var y = 0; y < 5; y++)
        {
            for (var x = 0; x < 7; x++)
            {
                var o = ((y * 7) + x) * 3;
                Assert.Equal(((byte)(x * 30), (byte)(y * 40), (byte)(x + y)), (px[o], px[o + 1], px[o + 2]));
            }
        }
    }

    [Fact]
    public void Decodes_palette()
    {
        var bmp = Bmp(3, 2, 8, (x, y) => (0, 0, (byte)((y * 3) + x)));
        using var img = ImageDecoder.Decode(bmp);
        var px = img.Pixels;
        Assert.Equal((byte)(4 / 2), px[4 * 3]); // index 4 → R = 2
        Assert.Equal((byte)(255 - 4), px[(4 * 3) + 1]);
        Assert.Equal((byte)4, px[(4 * 3) + 2]);
    }

    [Fact]
    public void Truncated_pixels_and_headers_are_typed_errors()
    {
        var bmp = Bmp(16, 16, 24, (x, y) => (1, 2, 3));
        for (var len = 2; len < bmp.Length; len += 37)
        {
            var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(bmp[..len]));
            Assert.True(ex.Error is ImageDecodeError.Truncated or ImageDecodeError.Corrupt or ImageDecodeError.UnsupportedFormat, $"{len}: {ex.Error}");
        }
    }

    [Fact]
    public void Huge_declared_size_is_refused()
    {
        var bmp = Bmp(4, 4, 24, (x, y) => (1, 2, 3));
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), 1_000_000);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), 1_000_000);
        Assert.Equal(ImageDecodeError.TooManyPixels, Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(bmp)).Error);
    }
}
