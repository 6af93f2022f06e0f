using Warden.Core.Imaging;

namespace Warden.Core.Hashing.Pdq;

/// <summary>The PDQ hash of an encoded image with what was learned decoding it.</summary>
/// <param name="Pdq">Hash, quality and optional dihedral variants.</param>
/// <param name="Format">The sniffed container format.</param>
/// <param name="Width">The image's stored width (before any shrink-on-load).</param>
/// <param name="Height">The image's stored height.</param>
/// <param name="Trimmed">
/// When the image has uniform borders (frame, letterbox, pillarbox, padding; see <see cref="BorderDetector"/>):
/// the PDQ of the content inside them, hashed as if it were the whole image, with the same resize policy and
/// dihedral choice as <paramref name="Pdq"/>. Null otherwise. A query side matches with the smaller distance
/// of <paramref name="Pdq"/> and this; stored hashes stay <paramref name="Pdq"/>, as the reference computes them.
/// </param>
/// <param name="TrimRect">The content rectangle <paramref name="Trimmed"/> hashes, in stored-image coordinates; null when not trimmed.</param>
public sealed record PdqImageResult(PdqResult Pdq, ImageFormat Format, int Width, int Height, PdqResult? Trimmed = null, ImageRect? TrimRect = null);

/// <summary>
/// Decode + PDQ in one call, choosing how much of the image to decode from <see cref="PdqResize"/>:
/// the fast path asks the JPEG decoder for a DCT-scaled image no smaller than the block reduction
/// would keep, so decode and hash both touch a fraction of the pixels. One instance per thread.
/// </summary>
public sealed class PdqImageHasher(PdqResize resize = PdqResize.Fast, ImageLimits? limits = null)
{
    private readonly PdqHasher _hasher = new();
    private readonly ImageLimits _limits = limits ?? ImageLimits.Default;
    private Func<int, int, int>? _fastReduction;

    /// <summary>The pre-resize policy in use.</summary>
    public PdqResize Resize { get; } = resize;

    /// <summary>Short-side unit of the fast path's reduction (<see cref="PdqHasher.FastScale"/>).</summary>
    public int FastMinSide { get; init; } = PdqHasher.FastMinSide;

    /// <summary>
    /// Look for uniform borders and, when found, also hash the content inside them
    /// (<see cref="PdqImageResult.Trimmed"/>). On by default: detection reads a few lines per side of a
    /// photo, and the second hash is only computed for bordered images.
    /// </summary>
    public bool TrimBorders { get; init; } = true;

    /// <summary>Decodes and hashes. Throws <see cref="ImageDecodeException"/> on bad input.</summary>
    public PdqImageResult Hash(byte[] encoded, bool dihedral = false)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        return Hash(new ArraySegment<byte>(encoded), dihedral);
    }

    /// <summary>Decodes and hashes part of a buffer. Throws <see cref="ImageDecodeException"/> on bad input.</summary>
    public PdqImageResult Hash(ArraySegment<byte> encoded, bool dihedral = false)
    {
        using var image = ImageDecoder.Decode(encoded, _limits, Resize == PdqResize.Fast ? _fastReduction ??= FastReduction : null);
        var result = _hasher.Hash(image.Pixels, image.PixelWidth, image.PixelHeight, image.Stride, image.BytesPerPixel, Resize, dihedral, FastMinSide, image.Width, image.Height);
        if (!TrimBorders || !BorderDetector.TryDetect(image, out var pixelRect, out var storedRect))
        {
            return new PdqImageResult(result, image.Format, image.Width, image.Height);
        }

        // The crop's decoded pixels are whole blocks of the stored image (the detector puts its edges on
        // multiples of the decode scale), so passing the stored crop size lets the fast path emulate the
        // reference on the crop at full resolution exactly as it does for a whole image.
        var stride = image.Stride;
        var bpp = image.BytesPerPixel;
        var crop = image.Pixels[((pixelRect.Y * stride) + (pixelRect.X * bpp))..];
        var trimmed = _hasher.Hash(crop, pixelRect.Width, pixelRect.Height, stride, bpp, Resize, dihedral, FastMinSide, storedRect.Width, storedRect.Height);
        return new PdqImageResult(result, image.Format, image.Width, image.Height, trimmed, storedRect);
    }

    // The decoder may reduce by up to the fast path's overall scale; block averaging makes up the rest.
    private int FastReduction(int width, int height) => PdqHasher.FastScale(width, height, FastMinSide);
}
