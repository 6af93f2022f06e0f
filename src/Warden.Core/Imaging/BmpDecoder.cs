using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Warden.Core.Imaging;

/// <summary>
/// Windows bitmap reader (libvips has no BMP loader without ImageMagick, which we do not ship):
/// 1/4/8-bit palette, 16-bit 5-5-5 or bit fields, 24-bit, 32-bit with or without bit fields,
/// bottom-up or top-down, RLE8 and RLE4, and BI_JPEG/BI_PNG (an embedded JPEG or PNG, decoded as such).
/// Every offset and size is checked against the data before use.
/// </summary>
internal static class BmpDecoder
{
    private const int FileHeaderSize = 14;

    public static unsafe DecodedImage Decode(byte[] data, ImageLimits limits)
    {
        var d = data.AsSpan();
        if (d.Length < FileHeaderSize + 12)
        {
            throw Truncated("header");
        }

        var pixelOffset = BinaryPrimitives.ReadUInt32LittleEndian(d[10..]);
        var dibSize = BinaryPrimitives.ReadInt32LittleEndian(d[14..]);
        int width, height, bpp;
        uint compression = 0, colours = 0;
        uint rMask = 0, gMask = 0, bMask = 0;
        if (dibSize == 12)
        {
            width = BinaryPrimitives.ReadInt16LittleEndian(d[18..]);
            height = BinaryPrimitives.ReadInt16LittleEndian(d[20..]);
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(d[24..]);
        }
        else if (dibSize is 40 or 52 or 56 or 108 or 124)
        {
            if (d.Length < FileHeaderSize + dibSize)
            {
                throw Truncated("header");
            }

            width = BinaryPrimitives.ReadInt32LittleEndian(d[18..]);
            height = BinaryPrimitives.ReadInt32LittleEndian(d[22..]);
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(d[28..]);
            compression = BinaryPrimitives.ReadUInt32LittleEndian(d[30..]);
            colours = BinaryPrimitives.ReadUInt32LittleEndian(d[46..]);
            if (compression == 3 || compression == 6)
            {
                // BI_BITFIELDS: masks follow a 40-byte header, or sit inside a V2+ header.
                if (d.Length < FileHeaderSize + 40 + 12)
                {
                    throw Truncated("bit fields");
                }

                rMask = BinaryPrimitives.ReadUInt32LittleEndian(d[54..]);
                gMask = BinaryPrimitives.ReadUInt32LittleEndian(d[58..]);
                bMask = BinaryPrimitives.ReadUInt32LittleEndian(d[62..]);
            }
        }
        else
        {
            throw new ImageDecodeException(ImageDecodeError.Corrupt, $"Unknown BMP header size {dibSize}.");
        }

        var topDown = height < 0;
        if (height == int.MinValue)
        {
            throw new ImageDecodeException(ImageDecodeError.Corrupt, "Invalid BMP height.");
        }

        height = Math.Abs(height);
        if (width <= 0 || height <= 0)
        {
            throw new ImageDecodeException(ImageDecodeError.Corrupt, $"Invalid BMP size {width}x{height}.");
        }

        if ((long)width * height > limits.MaxPixels)
        {
            throw new ImageDecodeException(ImageDecodeError.TooManyPixels, $"The image declares {width}x{height} pixels; the limit is {limits.MaxPixels} pixels.");
        }

        if (compression is 4 or 5)
        {
            return DecodeEmbedded(data, pixelOffset, compression, limits);
        }

        if (compression is not (0 or 1 or 2 or 3 or 6))
        {
            throw new ImageDecodeException(ImageDecodeError.UnsupportedFormat, $"BMP compression {compression} is not supported.");
        }

        if (bpp is not (1 or 4 or 8 or 16 or 24 or 32) || (compression == 1 && bpp != 8) || (compression == 2 && bpp != 4))
        {
            throw new ImageDecodeException(ImageDecodeError.Corrupt, $"Invalid BMP bit depth {bpp} for compression {compression}.");
        }

        var rle = compression is 1 or 2;
        var rowBytes = (((long)width * bpp) + 31) / 32 * 4;
        if (pixelOffset > d.Length || (!rle && (rowBytes * height) > d.Length - pixelOffset))
        {
            throw Truncated("pixel data");
        }

        // Palette (BGR0 quads, or BGR triples in the 12-byte core header). Indices past the declared entries are black.
        Span<byte> palette = stackalloc byte[256 * 3];
        palette.Clear();
        if (bpp <= 8)
        {
            var entries = colours == 0 || colours > (1u << bpp) ? 1 << bpp : (int)colours;
            var entrySize = dibSize == 12 ? 3 : 4;
            var paletteStart = FileHeaderSize + dibSize + (compression is 3 or 6 && dibSize == 40 ? 12 : 0);
            if (paletteStart + ((long)entries * entrySize) > d.Length)
            {
                throw Truncated("palette");
            }

            for (var i = 0; i < entries; i++)
            {
                var e = d.Slice(paletteStart + (i * entrySize), 3);
                palette[i * 3] = e[2];
                palette[(i * 3) + 1] = e[1];
                palette[(i * 3) + 2] = e[0];
            }
        }

        if (bpp == 16 && rMask == 0)
        {
            (rMask, gMask, bMask) = (0x7C00, 0x03E0, 0x001F);
        }

        if (bpp == 32 && rMask == 0)
        {
            (rMask, gMask, bMask) = (0x00FF0000, 0x0000FF00, 0x000000FF);
        }

        if (rle)
        {
            return DecodeRle(d[(int)pixelOffset..], width, height, bpp, topDown, palette);
        }

        var length = (long)width * height * 3;
        var native = (byte*)NativeMemory.Alloc((nuint)length);
        try
        {
            var output = new Span<byte>(native, checked((int)length));
            for (var y = 0; y < height; y++)
            {
                var srcRow = d.Slice((int)(pixelOffset + ((topDown ? y : height - 1 - y) * rowBytes)), (int)rowBytes);
                var dst = output.Slice(y * width * 3, width * 3);
                for (var x = 0; x < width; x++)
                {
                    var o = x * 3;
                    switch (bpp)
                    {
                        case 24:
                            dst[o] = srcRow[(x * 3) + 2];
                            dst[o + 1] = srcRow[(x * 3) + 1];
                            dst[o + 2] = srcRow[x * 3];
                            break;
                        case 16:
                        case 32:
                            var v = bpp == 16 ? BinaryPrimitives.ReadUInt16LittleEndian(srcRow[(x * 2)..]) : BinaryPrimitives.ReadUInt32LittleEndian(srcRow[(x * 4)..]);
                            dst[o] = Channel(v, rMask);
                            dst[o + 1] = Channel(v, gMask);
                            dst[o + 2] = Channel(v, bMask);
                            break;
                        default:
                            var perByte = 8 / bpp;
                            var b = srcRow[x / perByte];
                            var shift = 8 - (((x % perByte) + 1) * bpp);
                            var index = (b >> shift) & ((1 << bpp) - 1);
                            palette.Slice(index * 3, 3).CopyTo(dst.Slice(o, 3));
                            break;
                    }
                }
            }

            return new DecodedImage(ImageFormat.Bmp, width, height, width, height, 3, (nint)native, length, static p => NativeMemory.Free((void*)p));
        }
        catch
        {
            NativeMemory.Free(native);
            throw;
        }
    }

    /// <summary>
    /// BI_RLE8 / BI_RLE4: (count, value) runs, with escapes 0/0 end of line, 0/1 end of bitmap, 0/2 delta (dx, dy)
    /// and 0/n ≥ 3 a literal run of n indices padded to 16 bits. Pixels the runs never reach keep index 0, as
    /// ImageMagick (the reference's decoder) leaves them; runs past a row's end are clipped. Data that ends before
    /// the end-of-bitmap marker is truncated.
    /// </summary>
    private static unsafe DecodedImage DecodeRle(ReadOnlySpan<byte> src, int width, int height, int bpp, bool topDown, ReadOnlySpan<byte> palette)
    {
        var indices = new byte[(long)width * height];
        int x = 0, y = 0, p = 0;
        var four = bpp == 4;
        while (true)
        {
            if (p + 2 > src.Length)
            {
                throw Truncated("RLE data");
            }

            int count = src[p], value = src[p + 1];
            p += 2;
            if (count > 0)
            {
                if (y < height)
                {
                    var row = indices.AsSpan(Row(y) * width, width);
                    for (var i = 0; i < count && x < width; i++, x++)
                    {
                        row[x] = (byte)(four ? ((i & 1) == 0 ? value >> 4 : value & 0x0F) : value);
                    }
                }

                continue;
            }

            switch (value)
            {
                case 0:
                    x = 0;
                    y++;
                    break;
                case 1:
                    return ToImage(indices, width, height, palette);
                case 2:
                    if (p + 2 > src.Length)
                    {
                        throw Truncated("RLE delta");
                    }

                    x = Math.Min(width, x + src[p]);
                    y += src[p + 1];
                    p += 2;
                    break;
                default:
                    var bytes = four ? (value + 1) / 2 : value;
                    var padded = bytes + (bytes & 1);
                    if (p + bytes > src.Length)
                    {
                        throw Truncated("RLE literal run");
                    }

                    if (y < height)
                    {
                        var row = indices.AsSpan(Row(y) * width, width);
                        for (var i = 0; i < value && x < width; i++, x++)
                        {
                            var b = src[p + (four ? i / 2 : i)];
                            row[x] = (byte)(four ? ((i & 1) == 0 ? b >> 4 : b & 0x0F) : b);
                        }
                    }

                    p = Math.Min(src.Length, p + padded);
                    break;
            }

            if (y >= height)
            {
                // Past the last row: nothing more can be drawn (an end-of-bitmap marker may or may not follow).
                return ToImage(indices, width, height, palette);
            }
        }

        // File rows run bottom-up unless the height was negative (top-down RLE is off-spec but seen in the wild).
        int Row(int fileRow) => topDown ? fileRow : height - 1 - fileRow;
    }

    private static unsafe DecodedImage ToImage(byte[] indices, int width, int height, ReadOnlySpan<byte> palette)
    {
        var length = (long)width * height * 3;
        var native = (byte*)NativeMemory.Alloc((nuint)length);
        var output = new Span<byte>(native, checked((int)length));
        for (var i = 0; i < indices.Length; i++)
        {
            palette.Slice(indices[i] * 3, 3).CopyTo(output.Slice(i * 3, 3));
        }

        return new DecodedImage(ImageFormat.Bmp, width, height, width, height, 3, (nint)native, length, static p => NativeMemory.Free((void*)p));
    }

    /// <summary>BI_JPEG / BI_PNG: the pixel data is a whole JPEG or PNG file, decoded as one (never a BMP again).</summary>
    private static DecodedImage DecodeEmbedded(byte[] data, uint pixelOffset, uint compression, ImageLimits limits)
    {
        if (pixelOffset >= data.Length)
        {
            throw Truncated("embedded image");
        }

        var inner = data.AsSpan((int)pixelOffset).ToArray();
        var expected = compression == 4 ? ImageFormat.Jpeg : ImageFormat.Png;
        if (ImageFormatSniffer.Sniff(inner) != expected)
        {
            throw new ImageDecodeException(ImageDecodeError.Corrupt, $"The BMP says it holds a {expected} but its data is not one.");
        }

        using var decoded = ImageDecoder.Decode(inner, limits);
        return new DecodedImage(ImageFormat.Bmp, decoded.Width, decoded.Height, decoded.PixelWidth, decoded.PixelHeight, decoded.BytesPerPixel, decoded.Pixels.ToArray());
    }

    private static byte Channel(uint value, uint mask)
    {
        if (mask == 0)
        {
            return 0;
        }

        var shift = System.Numerics.BitOperations.TrailingZeroCount(mask);
        var bits = System.Numerics.BitOperations.PopCount(mask);
        var v = (value & mask) >> shift;
        return bits >= 8 ? (byte)(v >> (bits - 8)) : (byte)((v * 255) / ((1u << bits) - 1));
    }

    private static ImageDecodeException Truncated(string part) =>
        new(ImageDecodeError.Truncated, $"The BMP data ends inside its {part}.");
}
