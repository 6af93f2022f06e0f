namespace Warden.Core.Imaging;

/// <summary>Image container formats Warden decodes, sniffed from content, never from the file name.</summary>
public enum ImageFormat
{
    /// <summary>Not a supported image.</summary>
    Unknown = 0,

    /// <summary>JPEG/JFIF/EXIF (baseline, progressive, grey, CMYK).</summary>
    Jpeg,

    /// <summary>PNG (1-16 bit, palette, alpha, interlaced).</summary>
    Png,

    /// <summary>WebP (lossy or lossless; first frame).</summary>
    WebP,

    /// <summary>GIF (first frame).</summary>
    Gif,

    /// <summary>Windows bitmap.</summary>
    Bmp,

    /// <summary>TIFF (first page).</summary>
    Tiff,
}

/// <summary>
/// Content sniffing by magic bytes: the one place that knows the image signatures (decoding, provenance's
/// container walk and the review console's content type all ask here).
/// </summary>
public static class ImageFormatSniffer
{
    /// <summary>The 8-byte PNG signature (also what a PNG writer starts with).</summary>
    public static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>True when <paramref name="head"/> is a BigTIFF (64-bit offsets) rather than a classic TIFF.</summary>
    public static bool IsBigTiff(ReadOnlySpan<byte> head) => head.StartsWith("II+\0"u8) || head.StartsWith("MM\0+"u8);

    /// <summary>The lowercase name of a format (<c>jpeg</c>, <c>png</c>, …; <c>unknown</c>).</summary>
    public static string Name(ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => "jpeg",
        ImageFormat.Png => "png",
        ImageFormat.WebP => "webp",
        ImageFormat.Gif => "gif",
        ImageFormat.Bmp => "bmp",
        ImageFormat.Tiff => "tiff",
        _ => "unknown",
    };

    /// <summary>The MIME type of a format; <c>application/octet-stream</c> for <see cref="ImageFormat.Unknown"/>.</summary>
    public static string MimeType(ImageFormat format) => format == ImageFormat.Unknown ? "application/octet-stream" : "image/" + Name(format);

    /// <summary>The format the leading bytes announce, or <see cref="ImageFormat.Unknown"/>.</summary>
    public static ImageFormat Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
        {
            return ImageFormat.Jpeg;
        }

        if (head.StartsWith(PngSignature))
        {
            return ImageFormat.Png;
        }

        if (head.Length >= 12 && head.StartsWith("RIFF"u8) && head[8..12].SequenceEqual("WEBP"u8))
        {
            return ImageFormat.WebP;
        }

        if (head.StartsWith("GIF87a"u8) || head.StartsWith("GIF89a"u8))
        {
            return ImageFormat.Gif;
        }

        // Classic TIFF and BigTIFF (libtiff reads both).
        if (head.StartsWith("II*\0"u8) || head.StartsWith("MM\0*"u8) || IsBigTiff(head))
        {
            return ImageFormat.Tiff;
        }

        if (head.Length >= 18 && head.StartsWith("BM"u8))
        {
            return ImageFormat.Bmp;
        }

        return ImageFormat.Unknown;
    }
}
