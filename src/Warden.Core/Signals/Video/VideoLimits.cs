namespace Warden.Core.Hashing.Video;

/// <summary>Bounds on what a video may cost to hash; exceeding one gives a <see cref="VideoDecodeException"/>.</summary>
/// <param name="MaxDurationSeconds">Longest video (decoded frames / frame rate, not the declared duration, which can lie).</param>
/// <param name="MaxFrames">Most frames the decoder may return.</param>
/// <param name="MaxPixels">Most pixels in one frame.</param>
/// <param name="Timeout">Wall-clock limit for probing plus decoding one video.</param>
public sealed record VideoLimits(double MaxDurationSeconds, long MaxFrames, long MaxPixels, TimeSpan Timeout)
{
    /// <summary>4 hours, 1M frames, 8K (7680x4320 = 33.2M pixels), 30 minutes.</summary>
    public static VideoLimits Default { get; } = new(4 * 3600, 1_000_000, 7680L * 4320, TimeSpan.FromMinutes(30));
}
