using System.CommandLine;
using System.Globalization;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Video;

namespace Warden.Cli;

/// <summary>The CLI's video handling: options shared by hash and scan, and hashing a file found to be a video.</summary>
internal static class VideoFiles
{
    public static Option<string> ModeOption() => new Option<string>("--video-mode")
    {
        Description = "Videos: 'exact' (default: Meta's vPDQ frame sampling on full-size frames, bit-exact with the reference) or " +
                      "'fast' (keyframes only, reduced by ffmpeg: many times faster, matches copies of the same video).",
        DefaultValueFactory = _ => "exact",
    }.AcceptOnlyFromAmong("exact", "fast");

    public static Option<double> SecondsOption() => new("--vpdq-seconds")
    {
        Description = "Videos: seconds of video per vPDQ hash (1 = HMA's default; 0 = every frame, the reference CLI's default).",
        DefaultValueFactory = _ => 1.0,
    };

    public static Option<int> MaxSecondsOption() => new("--video-max-seconds")
    {
        Description = "Videos: refuse videos longer than this (counted from decoded frames, not the declared duration).",
        DefaultValueFactory = _ => (int)VideoLimits.Default.MaxDurationSeconds,
    };

    public static VideoHashOptions Options(string mode, double seconds, bool tmk, int maxSeconds, int workers) => new(
        new VpdqOptions(seconds, mode == "fast" ? VideoHashMode.Fast : VideoHashMode.Exact, Workers: workers),
        tmk,
        VideoLimits.Default with { MaxDurationSeconds = maxSeconds });

    /// <summary>
    /// When <paramref name="path"/> is a video (by content), hashes it and returns true; <paramref name="error"/> is set
    /// when it could not be hashed. Files that turn out to be audio only or no video at all return false when
    /// non-images are accepted (their digests still count).
    /// </summary>
    public static bool TryHash(string path, ContentHashes hashes, BatchOptions options, Action<string, double> progress, out VideoHashes? video, out string? error)
    {
        video = null;
        error = null;
        if (path == FileWalker.StandardInput || hashes.Length == 0 || !VideoSniffer.IsVideoFile(path))
        {
            return false;
        }

        try
        {
            video = VideoHasher.Hash(path, options.Video!, progress);
            return true;
        }
        catch (VideoDecodeException e) when (options.AcceptNonImages && e.Error is VideoDecodeError.AudioOnly or VideoDecodeError.NotVideo)
        {
            return false;
        }
        catch (VideoDecodeException e)
        {
            error = $"video {Describe(e.Error)}: {e.Message}";
            return true;
        }
    }

    public static string Describe(VideoDecodeError e) => e switch
    {
        VideoDecodeError.FfmpegMissing => "ffmpeg missing",
        VideoDecodeError.NotVideo => "not a video",
        VideoDecodeError.AudioOnly => "audio only",
        VideoDecodeError.Truncated => "truncated",
        VideoDecodeError.NoFrames => "no frames",
        VideoDecodeError.Timeout => "timeout",
        VideoDecodeError.TooLong => "too long",
        VideoDecodeError.BadDimensions => "bad dimensions",
        _ => "corrupt",
    };

    public static string Fps(VideoInfo info) => info.FrameRate.ToString("0.###", CultureInfo.InvariantCulture);
}
