using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace Warden.Core.Imaging;

/// <summary>How an obscured derivative looks.</summary>
/// <param name="MaxSide">Longest side of the derivative in pixels (never enlarged): <see cref="Obscure.MinSide"/>–<see cref="Obscure.MaxSideLimit"/>.</param>
/// <param name="BlurPercent">Gaussian sigma as a percentage of the derivative's longest side (so the blur looks the same at every size): <see cref="Obscure.MinBlurPercent"/>–<see cref="Obscure.MaxBlurPercent"/>.</param>
/// <param name="Greyscale">Drop colour (Rec. 601 luma).</param>
public sealed record ObscureOptions(int MaxSide = 256, double BlurPercent = 6, bool Greyscale = true);

/// <summary>A derivative: PNG bytes made on the server, never the original's bytes.</summary>
/// <param name="Png">The encoded PNG.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="IsPlaceholder">True when the media could not be decoded as an image (video, model, unknown, corrupt).</param>
/// <param name="Reason">Why a placeholder was served, else null.</param>
public sealed record ObscuredImage(byte[] Png, int Width, int Height, bool IsPlaceholder, string? Reason);

/// <summary>
/// Obscured derivatives for human review: decode, reduce (area average), optionally greyscale, then a strong
/// gaussian blur (three box passes), re-encoded as PNG in memory. What a reviewer sees before a logged reveal is
/// made here, on the server, so no client setting or CSS can turn it into the original. Media that does not
/// decode as an image gets a neutral placeholder, never its own bytes.
/// </summary>
public static class Obscure
{
    /// <summary>Smallest allowed <see cref="ObscureOptions.MaxSide"/>.</summary>
    public const int MinSide = 32;

    /// <summary>Largest allowed <see cref="ObscureOptions.MaxSide"/>.</summary>
    public const int MaxSideLimit = 512;

    /// <summary>Lightest blur allowed: below 1 % of the side the picture is recognisable, which is a reveal.</summary>
    public const double MinBlurPercent = 1;

    /// <summary>Strongest blur allowed (beyond it the image is one flat tone).</summary>
    public const double MaxBlurPercent = 25;

    /// <summary>
    /// Makes the derivative of <paramref name="media"/>. Never throws for bad media: anything that does not
    /// decode (or is over <paramref name="limits"/>) becomes a placeholder with the reason.
    /// </summary>
    public static ObscuredImage Make(byte[] media, ObscureOptions options, ImageLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(media);
        var side = Math.Clamp(options.MaxSide, MinSide, MaxSideLimit);
        var percent = double.IsFinite(options.BlurPercent) ? Math.Clamp(options.BlurPercent, MinBlurPercent, MaxBlurPercent) : MaxBlurPercent;
        DecodedImage decoded;
        try
        {
            // JPEGs decode straight at 1/2..1/8 when that still leaves at least the target size.
            decoded = ImageDecoder.Decode(media, limits, (w, h) => Math.Max(1, Math.Max(w, h) / side));
        }
        catch (ImageDecodeException ex)
        {
            return Placeholder(side, ex.Error == ImageDecodeError.UnsupportedFormat ? "not an image" : "image could not be decoded");
        }

        using (decoded)
        {
            var channels = options.Greyscale ? 1 : 3;
            var (w, h) = Fit(decoded.PixelWidth, decoded.PixelHeight, side);
            var pixels = Reduce(decoded.Pixels, decoded.PixelWidth, decoded.PixelHeight, decoded.BytesPerPixel, w, h, channels);
            var sigma = Math.Max(0.5, percent / 100.0 * Math.Max(w, h));
            Blur(pixels, w, h, channels, sigma);
            var png = EncodePng(pixels, w, h, channels);

            // A flat picture can be a fixed point of this pipeline; the original's bytes are never served.
            return png.AsSpan().SequenceEqual(media) ? Placeholder(side, "derivative equals the original") : new ObscuredImage(png, w, h, false, null);
        }
    }

    /// <summary>A neutral grey square with diagonal stripes: "nothing to preview".</summary>
    public static ObscuredImage Placeholder(int side, string reason)
    {
        side = Math.Clamp(side, MinSide, MaxSideLimit);
        var pixels = new byte[side * side];
        for (var y = 0; y < side; y++)
        {
            for (var x = 0; x < side; x++)
            {
                pixels[(y * side) + x] = ((x + y) / 12 % 2) == 0 ? (byte)0xB0 : (byte)0xA0;
            }
        }

        return new ObscuredImage(EncodePng(pixels, side, side, 1), side, side, true, reason);
    }

    /// <summary>The size that fits <paramref name="side"/> keeping the aspect ratio; never enlarged, never 0.</summary>
    internal static (int Width, int Height) Fit(int width, int height, int side)
    {
        var longest = Math.Max(width, height);
        if (longest <= side)
        {
            return (width, height);
        }

        var w = (int)Math.Clamp(Math.Round((double)width * side / longest), 1, side);
        var h = (int)Math.Clamp(Math.Round((double)height * side / longest), 1, side);
        return (w, h);
    }

    /// <summary>
    /// Area-average reduction from interleaved 1–4 channel pixels to <paramref name="channels"/> (1: luma, 3: RGB)
    /// in one pass over the source. Alpha is composited over mid-grey, so transparency hides nothing.
    /// Output column x takes source columns [x·sw/dw, (x+1)·sw/dw): a partition, so every pixel counts once.
    /// </summary>
    internal static byte[] Reduce(ReadOnlySpan<byte> src, int sw, int sh, int bpp, int dw, int dh, int channels)
    {
        if (bpp is < 1 or > 4 || src.Length < (long)sw * sh * bpp || dw > sw || dh > sh || dw < 1 || dh < 1)
        {
            throw new ArgumentException("Pixel buffer and sizes do not agree.");
        }

        var sums = new long[dw * dh * channels];
        var column = new int[sw];
        for (var x = 0; x < dw; x++)
        {
            var x1 = (int)((long)(x + 1) * sw / dw);
            for (var sx = (int)((long)x * sw / dw); sx < x1; sx++)
            {
                column[sx] = x;
            }
        }

        var stride = sw * bpp;
        var oy = 0;
        var nextRow = (int)((long)1 * sh / dh);
        for (var y = 0; y < sh; y++)
        {
            while (y >= nextRow)
            {
                oy++;
                nextRow = (int)((long)(oy + 1) * sh / dh);
            }

            var row = src.Slice(y * stride, stride);
            var outRow = oy * dw * channels;
            for (var x = 0; x < sw; x++)
            {
                var p = row.Slice(x * bpp, bpp);
                int r, g, b;
                if (bpp <= 2)
                {
                    r = g = b = p[0];
                }
                else
                {
                    (r, g, b) = (p[0], p[1], p[2]);
                }

                if (bpp is 2 or 4)
                {
                    var a = p[bpp - 1];
                    r = ((r * a) + (128 * (255 - a)) + 127) / 255;
                    g = ((g * a) + (128 * (255 - a)) + 127) / 255;
                    b = ((b * a) + (128 * (255 - a)) + 127) / 255;
                }

                var o = outRow + (column[x] * channels);
                if (channels == 1)
                {
                    sums[o] += ((299 * r) + (587 * g) + (114 * b) + 500) / 1000;
                }
                else
                {
                    sums[o] += r;
                    sums[o + 1] += g;
                    sums[o + 2] += b;
                }
            }
        }

        var result = new byte[sums.Length];
        for (var y = 0; y < dh; y++)
        {
            var rows = (int)((long)(y + 1) * sh / dh) - (int)((long)y * sh / dh);
            for (var x = 0; x < dw; x++)
            {
                var n = (long)rows * ((int)((long)(x + 1) * sw / dw) - (int)((long)x * sw / dw));
                var o = ((y * dw) + x) * channels;
                for (var c = 0; c < channels; c++)
                {
                    result[o + c] = (byte)((sums[o + c] + (n / 2)) / n);
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Gaussian blur approximated by three box blurs (Kovesi's box sizes for <paramref name="sigma"/>), each a
    /// horizontal and a vertical running sum with edges clamped: O(1) per pixel whatever the radius.
    /// </summary>
    internal static void Blur(byte[] pixels, int w, int h, int channels, double sigma)
    {
        const int passes = 3;
        var ideal = Math.Sqrt((12 * sigma * sigma / passes) + 1);
        var lower = (int)Math.Floor(ideal);
        if (lower % 2 == 0)
        {
            lower--;
        }

        var upper = lower + 2;
        var m = (int)Math.Round(((12 * sigma * sigma) - (passes * lower * lower) - (4 * passes * lower) - (3 * passes)) / ((-4.0 * lower) - 4));
        var line = new int[Math.Max(w, h)];
        var scratch = new int[Math.Max(w, h)];
        for (var i = 0; i < passes; i++)
        {
            var radius = ((i < m ? lower : upper) - 1) / 2;
            if (radius <= 0)
            {
                continue;
            }

            for (var c = 0; c < channels; c++)
            {
                for (var y = 0; y < h; y++)
                {
                    BoxLine(pixels, (y * w * channels) + c, channels, w, radius, line, scratch);
                }

                for (var x = 0; x < w; x++)
                {
                    BoxLine(pixels, (x * channels) + c, w * channels, h, radius, line, scratch);
                }
            }
        }
    }

    private static void BoxLine(byte[] data, int start, int step, int n, int radius, int[] line, int[] result)
    {
        for (var i = 0; i < n; i++)
        {
            line[i] = data[start + (i * step)];
        }

        var width = (2 * radius) + 1;
        long sum = 0;
        for (var k = -radius; k <= radius; k++)
        {
            sum += line[Math.Clamp(k, 0, n - 1)];
        }

        for (var i = 0; i < n; i++)
        {
            result[i] = (int)((sum + (width / 2)) / width);
            sum += line[Math.Min(i + radius + 1, n - 1)] - line[Math.Max(i - radius, 0)];
        }

        for (var i = 0; i < n; i++)
        {
            data[start + (i * step)] = (byte)result[i];
        }
    }

    /// <summary>8-bit greyscale (1 channel) or RGB (3) PNG, each row filtered with Sub, zlib-compressed.</summary>
    internal static byte[] EncodePng(byte[] pixels, int w, int h, int channels)
    {
        var rowBytes = w * channels;
        using var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
        {
            var filtered = new byte[rowBytes + 1];
            filtered[0] = 1; // Sub: blurred rows are smooth, so differences compress well
            for (var y = 0; y < h; y++)
            {
                var row = pixels.AsSpan(y * rowBytes, rowBytes);
                for (var i = 0; i < rowBytes; i++)
                {
                    filtered[i + 1] = (byte)(row[i] - (i >= channels ? row[i - channels] : 0));
                }

                z.Write(filtered);
            }
        }

        using var png = new MemoryStream((int)idat.Length + 64);
        png.Write(ImageFormatSniffer.PngSignature);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, w);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], h);
        header[8] = 8;
        header[9] = channels == 1 ? (byte)0 : (byte)2;
        header[10] = header[11] = header[12] = 0;
        Chunk(png, "IHDR"u8, header);
        Chunk(png, "IDAT"u8, idat.GetBuffer().AsSpan(0, (int)idat.Length));
        Chunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    private static void Chunk(MemoryStream png, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(four, data.Length);
        png.Write(four);
        png.Write(type);
        png.Write(data);
        var crc = new Crc32();
        crc.Append(type);
        crc.Append(data);
        BinaryPrimitives.WriteUInt32BigEndian(four, crc.GetCurrentHashAsUInt32());
        png.Write(four);
    }
}
