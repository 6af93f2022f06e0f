using System.Buffers.Binary;

namespace Warden.Core.Tests;

/// <summary>The BMP variants <see cref="BmpWriter"/> writes.</summary>
public enum BmpKind
{
    /// <summary>1-bit palette (black/white by luma).</summary>
    Bpp1,

    /// <summary>4-bit palette of 16 greys.</summary>
    Bpp4,

    /// <summary>8-bit palette, 3-3-2 RGB.</summary>
    Bpp8,

    /// <summary>BI_RLE4 of the 16-grey palette.</summary>
    Rle4,

    /// <summary>BI_RLE8 of the 3-3-2 palette.</summary>
    Rle8,

    /// <summary>16-bit 5-5-5.</summary>
    Bpp16,

    /// <summary>16-bit 5-6-5 (BI_BITFIELDS).</summary>
    Bpp16Bitfields565,

    /// <summary>24-bit, bottom-up.</summary>
    Bpp24,

    /// <summary>24-bit, top-down (negative height).</summary>
    Bpp24TopDown,

    /// <summary>24-bit with the 12-byte OS/2 core header.</summary>
    Bpp24Core,

    /// <summary>32-bit BGRX.</summary>
    Bpp32,

    /// <summary>32-bit with a 124-byte V5 header and BI_BITFIELDS masks.</summary>
    Bpp32V5,
}

/// <summary>
/// Writes BMP files from RGB pixels, by hand, in every layout the decoder reads (palette depths, RLE8/RLE4 with
/// encoded and literal runs, bit fields, top-down, core and V5 headers): benign synthetic test images only.
/// </summary>
public static class BmpWriter
{
    /// <summary>The palette index <paramref name="kind"/> gives a pixel (palette kinds only).</summary>
    public static byte Index(BmpKind kind, byte r, byte g, byte b) => kind switch
    {
        BmpKind.Bpp1 => (byte)((r * 299) + (g * 587) + (b * 114) >= 128_000 ? 1 : 0),
        BmpKind.Bpp4 or BmpKind.Rle4 => (byte)((((r * 299) + (g * 587) + (b * 114)) / 1000 * 15 + 127) / 255),
        _ => (byte)((r & 0xE0) | ((g & 0xE0) >> 3) | (b >> 6)),
    };

    /// <summary>The palette of a palette kind, as (R, G, B) entries.</summary>
    public static (byte R, byte G, byte B)[] Palette(BmpKind kind) => kind switch
    {
        BmpKind.Bpp1 => [(0, 0, 0), (255, 255, 255)],
        BmpKind.Bpp4 or BmpKind.Rle4 => [.. Enumerable.Range(0, 16).Select(i => ((byte)(i * 17), (byte)(i * 17), (byte)(i * 17)))],
        _ => [.. Enumerable.Range(0, 256).Select(i => ((byte)(i & 0xE0), (byte)((i << 3) & 0xE0), (byte)((i & 3) * 85)))],
    };

    /// <summary>Encodes <paramref name="rgb"/> (width × height × 3, top row first).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> rgb, int width, int height, BmpKind kind)
    {
        var palette = kind is BmpKind.Bpp1 or BmpKind.Bpp4 or BmpKind.Rle4 or BmpKind.Bpp8 or BmpKind.Rle8 ? Palette(kind) : [];
        var bpp = kind switch
        {
            BmpKind.Bpp1 => 1,
            BmpKind.Bpp4 or BmpKind.Rle4 => 4,
            BmpKind.Bpp8 or BmpKind.Rle8 => 8,
            BmpKind.Bpp16 or BmpKind.Bpp16Bitfields565 => 16,
            BmpKind.Bpp32 or BmpKind.Bpp32V5 => 32,
            _ => 24,
        };
        var compression = kind switch
        {
            BmpKind.Rle8 => 1,
            BmpKind.Rle4 => 2,
            BmpKind.Bpp16Bitfields565 or BmpKind.Bpp32V5 => 3,
            _ => 0,
        };
        var dib = kind == BmpKind.Bpp24Core ? 12 : kind == BmpKind.Bpp32V5 ? 124 : 40;
        var masks = kind == BmpKind.Bpp16Bitfields565 ? 12 : 0;
        var offset = 14 + dib + masks + (palette.Length * 4);

        byte[] pixels;
        if (compression is 1 or 2)
        {
            pixels = EncodeRle(rgb, width, height, kind);
        }
        else
        {
            var rowBytes = ((width * bpp) + 31) / 32 * 4;
            pixels = new byte[rowBytes * height];
            for (var y = 0; y < height; y++)
            {
                var fileRow = kind == BmpKind.Bpp24TopDown ? y : height - 1 - y;
                var row = pixels.AsSpan(fileRow * rowBytes, rowBytes);
                for (var x = 0; x < width; x++)
                {
                    var o = ((y * width) + x) * 3;
                    byte r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
                    switch (bpp)
                    {
                        case 1:
                            row[x / 8] |= (byte)(Index(kind, r, g, b) << (7 - (x % 8)));
                            break;
                        case 4:
                            row[x / 2] |= (byte)(Index(kind, r, g, b) << ((x % 2) == 0 ? 4 : 0));
                            break;
                        case 8:
                            row[x] = Index(kind, r, g, b);
                            break;
                        case 16:
                            var v = kind == BmpKind.Bpp16 ? ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3) : ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3);
                            BinaryPrimitives.WriteUInt16LittleEndian(row[(x * 2)..], (ushort)v);
                            break;
                        case 24:
                            (row[x * 3], row[(x * 3) + 1], row[(x * 3) + 2]) = (b, g, r);
                            break;
                        default:
                            (row[x * 4], row[(x * 4) + 1], row[(x * 4) + 2], row[(x * 4) + 3]) = (b, g, r, 255);
                            break;
                    }
                }
            }
        }

        var data = new byte[offset + pixels.Length];
        data[0] = (byte)'B';
        data[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(2), data.Length);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(10), offset);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(14), dib);
        if (dib == 12)
        {
            BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(18), (short)width);
            BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(20), (short)height);
            BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(22), 1);
            BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(24), (short)bpp);
        }
        else
        {
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(18), width);
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(22), kind == BmpKind.Bpp24TopDown ? -height : height);
            BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(26), 1);
            BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(28), (short)bpp);
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(30), compression);
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(34), pixels.Length);
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(46), palette.Length);
            if (kind == BmpKind.Bpp16Bitfields565)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(54), 0xF800);
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(58), 0x07E0);
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(62), 0x001F);
            }
            else if (kind == BmpKind.Bpp32V5)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(54), 0x00FF0000);
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(58), 0x0000FF00);
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(62), 0x000000FF);
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(66), 0xFF000000);
            }
        }

        var p = 14 + dib + masks;
        foreach (var (r, g, b) in palette)
        {
            (data[p], data[p + 1], data[p + 2]) = (b, g, r);
            p += 4;
        }

        pixels.CopyTo(data, offset);
        return data;
    }

    /// <summary>
    /// RLE rows (bottom-up): runs of equal indices as encoded runs, stretches of 3+ differing indices as literal
    /// (absolute-mode) runs padded to 16 bits, 0/0 at each row's end and 0/1 at the bitmap's end.
    /// </summary>
    private static byte[] EncodeRle(ReadOnlySpan<byte> rgb, int width, int height, BmpKind kind)
    {
        var four = kind == BmpKind.Rle4;
        var output = new List<byte>();
        var row = new byte[width];
        for (var fileRow = 0; fileRow < height; fileRow++)
        {
            var y = height - 1 - fileRow;
            for (var x = 0; x < width; x++)
            {
                var o = ((y * width) + x) * 3;
                row[x] = Index(kind, rgb[o], rgb[o + 1], rgb[o + 2]);
            }

            var i = 0;
            while (i < width)
            {
                var run = 1;
                while (i + run < width && run < 255 && row[i + run] == row[i])
                {
                    run++;
                }

                if (run >= 2 || width - i < 3)
                {
                    output.Add((byte)run);
                    output.Add(four ? (byte)((row[i] << 4) | row[i]) : row[i]);
                    i += run;
                    continue;
                }

                // A literal stretch: until two equal neighbours start a run (at most 255 pixels).
                var n = 1;
                while (i + n < width && n < 255 && !(i + n + 1 < width && row[i + n] == row[i + n + 1]))
                {
                    n++;
                }

                if (n < 3)
                {
                    output.Add((byte)1);
                    output.Add(four ? (byte)((row[i] << 4) | row[i]) : row[i]);
                    i++;
                    continue;
                }

                output.Add(0);
                output.Add((byte)n);
                var bytes = four ? (n + 1) / 2 : n;
                for (var k = 0; k < bytes; k++)
                {
                    output.Add(four ? (byte)((row[i + (2 * k)] << 4) | (i + (2 * k) + 1 < i + n ? row[i + (2 * k) + 1] : 0)) : row[i + k]);
                }

                if ((bytes & 1) == 1)
                {
                    output.Add(0);
                }

                i += n;
            }

            output.Add(0);
            output.Add(0);
        }

        output.Add(0);
        output.Add(1);
        return [.. output];
    }
}
