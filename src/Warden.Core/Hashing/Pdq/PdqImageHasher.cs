using Warden.Core.Imaging;

namespace Warden.Core.Hashing.Pdq;

/// <summary>The PDQ hash of an encoded image with what was learned decoding it.</summary>
/// <param name="Pdq">Hash, quality and optional dihedral variants.</param>
/// <param name="Format">The sniffed container format.</param>
/// <param name="Width">The image's stored width (before any shrink-on-load).</param>
/// <param name="Height">The image's stored height.</param>
public sealed record PdqImageResult(PdqResult Pdq, ImageFormat Format, int Width, int Height);

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

    /// <summary>Decodes and hashes. Throws <see cref="ImageDecodeException"/> on bad input.</summary>
    public PdqImageResult Hash(byte[] encoded, bool dihedral = false)
    {
        using var image = ImageDecoder.Decode(encoded, _limits, Resize == PdqResize.Fast ? _fastReduction ??= FastReduction : null);
        var result = _hasher.Hash(image.Pixels, image.PixelWidth, image.PixelHeight, image.Stride, image.BytesPerPixel, Resize, dihedral, FastMinSide, image.Width, image.Height);
        return new PdqImageResult(result, image.Format, image.Width, image.Height);
    }

    // The decoder may reduce by up to the fast path's overall scale; block averaging makes up the rest.
    private int FastReduction(int width, int height) => PdqHasher.FastScale(width, height, FastMinSide);
}
