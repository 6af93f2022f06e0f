namespace Warden.Core.Imaging;

/// <summary>Hard limits that keep hostile images from exhausting memory or time.</summary>
/// <param name="MaxPixels">Largest width × height accepted, checked from the header before any pixel is decoded.</param>
/// <param name="MaxBytes">Largest encoded file accepted.</param>
public sealed record ImageLimits(long MaxPixels = ImageLimits.DefaultMaxPixels, long MaxBytes = ImageLimits.DefaultMaxBytes)
{
    /// <summary>200 megapixels: above any camera's output (a 200 MP phone sensor), far below a bomb's.</summary>
    public const long DefaultMaxPixels = 200_000_000;

    /// <summary>256 MiB.</summary>
    public const long DefaultMaxBytes = 256L * 1024 * 1024;

    /// <summary>65,535 pixels: the largest side JPEG and GIF can declare, and far above any camera's.</summary>
    public const int DefaultMaxSide = 65_535;

    /// <summary>
    /// Longest side accepted. A short, very wide image (16M x 8) within <see cref="MaxPixels"/> makes libvips hold
    /// every row in its line cache at once: a 600-byte PNG cost 900 MB of memory before this limit (fuzzing).
    /// </summary>
    public int MaxSide { get; init; } = DefaultMaxSide;

    /// <summary>The defaults.</summary>
    public static ImageLimits Default { get; } = new();
}
