namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// The 1/8-scale image of a JPEG (one pixel per 8x8 block of the largest-sampled component, <c>ceil(width / 8)</c>
/// by <c>ceil(height / 8)</c>) or its 1/4-scale image (<c>ceil(width / 4)</c> by <c>ceil(height / 4)</c>), row-major
/// and tightly packed.
/// </summary>
internal sealed class DcImage
{
    /// <summary>Creates the image; <paramref name="pixels"/> is owned by it from now on.</summary>
    public DcImage(int width, int height, int bytesPerPixel, byte[] pixels)
    {
        Width = width;
        Height = height;
        BytesPerPixel = bytesPerPixel;
        Pixels = pixels;
    }

    /// <summary>Width in pixels: ceil(JPEG width / scale).</summary>
    public int Width { get; }

    /// <summary>Height in pixels: ceil(JPEG height / scale).</summary>
    public int Height { get; }

    /// <summary>1 (grey) or 3 (RGB).</summary>
    public int BytesPerPixel { get; }

    /// <summary>Width × Height × BytesPerPixel bytes.</summary>
    public byte[] Pixels { get; }
}

/// <summary>What a JPEG's frame header says, read without decoding.</summary>
/// <param name="Width">Image width from the SOF.</param>
/// <param name="Height">Image height from the SOF (0 when a DNL marker defines it).</param>
/// <param name="Components">Number of frame components.</param>
/// <param name="Progressive">True for a progressive (SOF2/6/10/14) frame.</param>
/// <param name="Supported">Whether <see cref="JpegDcDecoder.TryDecode(ReadOnlySpan{byte}, ImageLimits, out DcImage?)"/> handles this frame rather than returning false.</param>
internal sealed record JpegHeaderInfo(int Width, int Height, int Components, bool Progressive, bool Supported);
