using NetVips;
using Warden.Core.Imaging.Jpeg;
using NetVipsImage = NetVips.Image;

namespace Warden.Core.Imaging;

/// <summary>
/// Decodes images in process with libvips (NetVips): libjpeg-turbo, libspng, libwebp, libtiff, cgif.
/// Only the loaders for <see cref="ImageFormat"/> are reachable: the format is sniffed first and the
/// matching loader called by name, and libvips' untrusted loaders are blocked.
/// </summary>
public static class ImageDecoder
{
    private static readonly object InitLock = new();
    private static bool _initialised;

    /// <summary>
    /// Decodes <paramref name="data"/>. <paramref name="maxReduction"/>, given the stored width and height,
    /// says by how much the caller lets the image be reduced while decoding (1 = full size): JPEGs are then
    /// DCT-scaled by the largest of 2, 4 or 8 not above it, each decoded pixel the mean of a block. At 1/8 a
    /// progressive JPEG is read by Warden's DC-only decoder, which skips every AC scan; at 1/8 and 1/4 baseline
    /// JPEGs are decoded by Warden's own decoder, pixels identical to libvips'.
    /// </summary>
    /// <exception cref="ImageDecodeException">Empty, unsupported, truncated, corrupt or over-limit input.</exception>
    public static DecodedImage Decode(byte[] data, ImageLimits? limits = null, Func<int, int, int>? maxReduction = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Decode(new ArraySegment<byte>(data), limits, maxReduction);
    }

    /// <summary>
    /// As <see cref="Decode(byte[], ImageLimits?, Func{int, int, int}?)"/> for part of a (reused) buffer: Warden's own
    /// decoders read it in place; libvips, which takes whole arrays, gets a copy unless the part is the whole array.
    /// </summary>
    /// <exception cref="ImageDecodeException">Empty, unsupported, truncated, corrupt or over-limit input.</exception>
    public static DecodedImage Decode(ArraySegment<byte> segment, ImageLimits? limits = null, Func<int, int, int>? maxReduction = null)
    {
        ArgumentNullException.ThrowIfNull(segment.Array);
        var data = segment.AsSpan();
        limits ??= ImageLimits.Default;
        if (data.Length == 0)
        {
            throw new ImageDecodeException(ImageDecodeError.Empty, "The file is empty.");
        }

        if (data.Length > limits.MaxBytes)
        {
            throw new ImageDecodeException(ImageDecodeError.TooManyBytes, $"The file has {data.Length} bytes; the limit is {limits.MaxBytes}.");
        }

        var format = ImageFormatSniffer.Sniff(data);
        if (format == ImageFormat.Unknown)
        {
            throw new ImageDecodeException(ImageDecodeError.UnsupportedFormat, "Not a supported image format (JPEG, PNG, WebP, GIF, BMP, TIFF).");
        }

        if (format == ImageFormat.Bmp)
        {
            return BmpDecoder.Decode(WholeArray(segment), limits);
        }

        var shrink = 1;
        JpegHeaderInfo? jpeg = null;
        if (format == ImageFormat.Jpeg && JpegDcDecoder.TryReadHeader(data, out jpeg) && jpeg.Height > 0)
        {
            CheckPixels(jpeg.Width, jpeg.Height, limits);
            shrink = ShrinkFactor(maxReduction?.Invoke(jpeg.Width, jpeg.Height) ?? 1);

            // At 1/8 Warden's own decoder serves: libjpeg decodes every scan of a progressive file even at 1/8
            // (150-190 ms for a 15 MP photo) where the DC scans alone hold the 1/8 image; a baseline file must be
            // entropy-decoded in full either way, but skipping AC values without storing them, in process, is
            // ~15 % cheaper than libvips' pipeline, and a batch of JPEGs never loads libvips at all.
            if (shrink == 8 && jpeg.Supported && JpegDcDecoder.TryDecode(data, limits, out var dc) && dc is not null)
            {
                if (jpeg.Progressive)
                {
                    return new DecodedImage(format, jpeg.Width, jpeg.Height, dc.Width, dc.Height, dc.BytesPerPixel, dc.Pixels);
                }

                // Baseline files were decoded by libvips before, which keeps whole blocks only (floor(size / 8));
                // cropping the same way keeps their pixels, and so their hashes, exactly as they were.
                var (w, h) = (Math.Max(1, jpeg.Width / 8), Math.Max(1, jpeg.Height / 8));
                var length = Crop(dc.Pixels, dc.Width, w, h, dc.BytesPerPixel);
                return new DecodedImage(format, jpeg.Width, jpeg.Height, w, h, dc.BytesPerPixel, dc.Pixels, length);
            }

            // At 1/4 (the server's PDQ fast path for photos) a baseline file goes through the same decoder with
            // libjpeg-turbo's 2x2/4x4 reduced IDCTs, fancy upsampling and colour tables: libvips' pixels, without
            // libvips' pipeline, native heap or copies. Progressive files and anything else it declines go to libvips.
            if (shrink == 4 && jpeg.Supported && !jpeg.Progressive && JpegDcDecoder.TryDecode(data, limits, 4, out var quarter) && quarter is not null)
            {
                var (w, h) = (Math.Max(1, jpeg.Width / 4), Math.Max(1, jpeg.Height / 4));
                var length = Crop(quarter.Pixels, quarter.Width, w, h, quarter.BytesPerPixel);
                return new DecodedImage(format, jpeg.Width, jpeg.Height, w, h, quarter.BytesPerPixel, quarter.Pixels, length);
            }
        }

        EnsureInitialised();
        try
        {
            // Opening reads the header only; pixels are decoded by WriteToMemory below. A scaled JPEG is
            // opened at its scale straight away: its stored size is already known from our header read.
            // The source pins the upload for libvips; pixels are read lazily (sequential access) until ToPixels
            // returns, so it must outlive the image (disposed after it, in reverse order): disposing it earlier
            // unpins an array the GC may then move while libvips still reads it.
            using var source = Source.NewFromMemory(WholeArray(segment));
            using var image = Load(format, source, shrink);
            var (width, height) = shrink > 1 ? (jpeg!.Width, jpeg.Height) : (image.Width, image.Height);
            CheckPixels(width, height, limits);
            return ToPixels(image, format, width, height);
        }
        catch (VipsException ex)
        {
            throw Classify(ex);
        }
    }

    private static byte[] WholeArray(ArraySegment<byte> segment) =>
        segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : segment.ToArray();

    /// <summary>Keeps the top-left <paramref name="width"/> × <paramref name="height"/> of tightly packed rows, in place; returns the bytes kept.</summary>
    private static int Crop(byte[] pixels, int stride, int width, int height, int bytesPerPixel)
    {
        if (width != stride)
        {
            // Forward copy: each row moves to a lower offset than it comes from.
            for (var y = 1; y < height; y++)
            {
                pixels.AsSpan(y * stride * bytesPerPixel, width * bytesPerPixel).CopyTo(pixels.AsSpan(y * width * bytesPerPixel));
            }
        }

        return width * height * bytesPerPixel;
    }

    /// <summary>The JPEG scale-on-load factor: the largest of 1, 2, 4, 8 not above <paramref name="maxReduction"/>.</summary>
    public static int ShrinkFactor(int maxReduction) => maxReduction >= 8 ? 8 : maxReduction >= 4 ? 4 : maxReduction >= 2 ? 2 : 1;

    private static void CheckPixels(int width, int height, ImageLimits limits)
    {
        if (width > limits.MaxSide || height > limits.MaxSide)
        {
            throw new ImageDecodeException(
                ImageDecodeError.TooManyPixels,
                $"The image declares {width}x{height} pixels; the limit is {limits.MaxSide} pixels a side.");
        }

        if ((long)width * height > limits.MaxPixels)
        {
            throw new ImageDecodeException(
                ImageDecodeError.TooManyPixels,
                $"The image declares {width}x{height} pixels; the limit is {limits.MaxPixels} pixels.");
        }
    }

    private static NetVipsImage Load(ImageFormat format, Source source, int shrink)
    {
        // fail_on=truncated: a cut-off file is an error, not a grey-filled image. autorotate stays off:
        // the reference ignores EXIF orientation, and dihedral variants cover it.
        const Enums.FailOn failOn = Enums.FailOn.Truncated;

        // From a Source, not the byte[]: NetVips reports a byte[] argument's copy to the GC as memory pressure,
        // which at a few hundred uploads a second forced ~300 gen2 GCs a minute (docs/operations.md, GC).
        return format switch
        {
            ImageFormat.Jpeg => NetVipsImage.JpegloadSource(source, shrink: shrink, autorotate: false, access: Enums.Access.Sequential, failOn: failOn),
            ImageFormat.Png => NetVipsImage.PngloadSource(source, access: Enums.Access.Sequential, failOn: failOn),
            ImageFormat.WebP => NetVipsImage.WebploadSource(source, access: Enums.Access.Sequential, failOn: failOn),
            ImageFormat.Gif => NetVipsImage.GifloadSource(source, access: Enums.Access.Sequential, failOn: failOn),
            ImageFormat.Tiff => NetVipsImage.TiffloadSource(source, access: Enums.Access.Sequential, failOn: failOn),
            _ => throw new ImageDecodeException(ImageDecodeError.UnsupportedFormat, $"No decoder for {format}."),
        };
    }

    private static unsafe DecodedImage ToPixels(NetVipsImage image, ImageFormat format, int width, int height)
    {
        var converted = image;
        try
        {
            if (converted.Interpretation == Enums.Interpretation.Cmyk && converted.Format == Enums.BandFormat.Uchar && converted.Bands == 4)
            {
                return CmykToRgb(converted, format, width, height);
            }

            // Bring any colour space or depth (16-bit, float, LAB, palette) to 8-bit sRGB or grey,
            // keeping alpha as the last band (the hasher ignores it, as the reference drops it).
            var grey = converted.Bands <= 2 && converted.Interpretation is Enums.Interpretation.Bw or Enums.Interpretation.Grey16 or Enums.Interpretation.Multiband;
            if (converted.Format != Enums.BandFormat.Uchar || !(grey || converted.Interpretation == Enums.Interpretation.Srgb))
            {
                converted = converted.Colourspace(grey ? Enums.Interpretation.Bw : Enums.Interpretation.Srgb);
                if (converted.Format != Enums.BandFormat.Uchar)
                {
                    converted = converted.Cast(Enums.BandFormat.Uchar);
                }
            }

            if (converted.Bands > 4)
            {
                converted = converted.ExtractBand(0, 3);
            }

            var pixelWidth = converted.Width;
            var pixelHeight = converted.Height;
            var bands = converted.Bands;
            var ptr = converted.WriteToMemory(out var size);
            return new DecodedImage(format, width, height, pixelWidth, pixelHeight, bands, ptr, (long)size, NetVips.NetVips.Free);
        }
        finally
        {
            if (!ReferenceEquals(converted, image))
            {
                converted.Dispose();
            }
        }
    }

    /// <summary>
    /// CMYK without colour management, as ImageMagick converts it for the reference CLI:
    /// R = (255 − C)(255 − K) / 255, rounded. (libvips would go through an ICC profile, which moves
    /// the hash further from Meta's outputs.) libvips has already undone Adobe's inverted storage.
    /// </summary>
    private static unsafe DecodedImage CmykToRgb(NetVipsImage image, ImageFormat format, int width, int height)
    {
        var w = image.Width;
        var h = image.Height;
        var ptr = image.WriteToMemory(out var size);
        var cmyk = new Span<byte>((void*)ptr, checked((int)size));
        var pixels = (long)w * h;
        for (long i = 0; i < pixels; i++)
        {
            var c = cmyk[(int)(i * 4)];
            var m = cmyk[(int)(i * 4) + 1];
            var y = cmyk[(int)(i * 4) + 2];
            var k = 255 - cmyk[(int)(i * 4) + 3];
            cmyk[(int)(i * 3)] = (byte)((((255 - c) * k) + 127) / 255);
            cmyk[(int)(i * 3) + 1] = (byte)((((255 - m) * k) + 127) / 255);
            cmyk[(int)(i * 3) + 2] = (byte)((((255 - y) * k) + 127) / 255);
        }

        return new DecodedImage(format, width, height, w, h, 3, ptr, pixels * 3, NetVips.NetVips.Free);
    }

    private static ImageDecodeException Classify(VipsException ex)
    {
        var message = ex.Message;
        var truncated = message.Contains("truncat", StringComparison.OrdinalIgnoreCase) ||
                        message.Contains("premature end", StringComparison.OrdinalIgnoreCase) ||
                        message.Contains("unexpected end", StringComparison.OrdinalIgnoreCase) ||
                        message.Contains("not enough data", StringComparison.OrdinalIgnoreCase);
        var firstLine = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "decode failed";
        return truncated
            ? new ImageDecodeException(ImageDecodeError.Truncated, $"The image data is truncated ({firstLine}).", ex)
            : new ImageDecodeException(ImageDecodeError.Corrupt, $"The image data is corrupt ({firstLine}).", ex);
    }

    private static void EnsureInitialised()
    {
        if (Volatile.Read(ref _initialised))
        {
            return;
        }

        lock (InitLock)
        {
            if (_initialised)
            {
                return;
            }

            // One thread per decode: callers parallelise across files. No operation cache: every
            // upload is different, and the cache would hold decoded pixels of submitted media.
            NetVips.NetVips.Concurrency = 1;
            Cache.Max = 0;
            Cache.MaxFiles = 0;
            Cache.MaxMem = 0;
            NetVips.NetVips.BlockUntrusted = true;

            // libvips reports recoverable oddities of submitted files ("unknown EXIF resolution unit") as GLib
            // warnings on stderr. They are not ours to print: failures surface as ImageDecodeException.
            Log.SetLogHandler("VIPS", Enums.LogLevelFlags.Warning | Enums.LogLevelFlags.Message | Enums.LogLevelFlags.Info, static (_, _, _) => { });
            Volatile.Write(ref _initialised, true);
        }
    }
}
