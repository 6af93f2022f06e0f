using System.Globalization;
using System.Text.Json;

namespace Warden.Core.Hashing.Video;

/// <summary>What ffprobe says about a file's video stream.</summary>
/// <param name="StreamIndex">The stream's index in the container (for `-map 0:N`).</param>
/// <param name="StreamCount">Streams in the container.</param>
/// <param name="Codec">Codec name (h264, vp9, …).</param>
/// <param name="Width">Coded picture width.</param>
/// <param name="Height">Coded picture height.</param>
/// <param name="FrameRateNum">avg_frame_rate numerator (r_frame_rate when the average is 0/0).</param>
/// <param name="FrameRateDen">Its denominator.</param>
/// <param name="DeclaredDuration">The container's or stream's declared duration in seconds (may lie), or null.</param>
/// <param name="DeclaredFrames">The stream's declared frame count (may lie), or null.</param>
/// <param name="DecoderDelay">Frames the decoder holds back for reordering (has_b_frames).</param>
/// <param name="FormatName">The demuxer ffprobe chose (mov,mp4,… / matroska,webm / …).</param>
public sealed record VideoInfo(
    int StreamIndex,
    int StreamCount,
    string Codec,
    int Width,
    int Height,
    int FrameRateNum,
    int FrameRateDen,
    double? DeclaredDuration,
    long? DeclaredFrames,
    int DecoderDelay,
    string FormatName)
{
    /// <summary>The frame rate as the reference computes it (av_q2d: num / den in double).</summary>
    public double FrameRate => (double)FrameRateNum / FrameRateDen;
}

/// <summary>Runs ffprobe (JSON output) and picks the video stream.</summary>
public static class VideoProbe
{
    private const int MaxJsonBytes = 4 << 20;

    /// <summary>
    /// Probes <paramref name="path"/>. The video stream is the first stream of type video that is not an
    /// attached picture (cover art), wherever it sits among the streams.
    /// </summary>
    /// <exception cref="VideoDecodeException">Not a video, audio only, truncated, corrupt, too large, timeout.</exception>
    public static VideoInfo Probe(string path, VideoLimits? limits = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        limits ??= VideoLimits.Default;
        using var p = FfmpegProcess.Start(
            FfmpegTools.Ffprobe,
            ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-i", LiteralPath(path)],
            limits.Timeout,
            cancel);
        var json = Runtime.BoundedRead.ReadAll(p.Output, MaxJsonBytes);
        if (json is null)
        {
            // Stop it: it would block writing the rest.
            p.Kill();
        }

        var exit = p.WaitForExit();
        cancel.ThrowIfCancellationRequested();
        if (p.TimedOut)
        {
            throw new VideoDecodeException(VideoDecodeError.Timeout, $"ffprobe did not finish within {limits.Timeout.TotalSeconds:0.###} s.");
        }

        if (exit != 0 || json is null)
        {
            throw Classify(p.Stderr, json is null ? "ffprobe output too large" : $"ffprobe exit code {exit}");
        }

        return Parse(json, limits);
    }

    /// <summary>Reads ffprobe's JSON (separate for tests).</summary>
    internal static VideoInfo Parse(byte[] json, VideoLimits limits)
    {
        // ffprobe copies container tags byte for byte, so its JSON can carry invalid UTF-8, which JsonDocument only
        // notices when a string is read (InvalidOperationException). Replacing it keeps such a video hashable.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            json = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(json));
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new VideoDecodeException(VideoDecodeError.Corrupt, "ffprobe gave unreadable output.", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new VideoDecodeException(VideoDecodeError.Corrupt, "ffprobe gave unreadable output.");
            }

            var streams = root.TryGetProperty("streams", out var s) && s.ValueKind == JsonValueKind.Array ? s : default;
            var count = streams.ValueKind == JsonValueKind.Array ? streams.GetArrayLength() : 0;
            var format = root.TryGetProperty("format", out var f) ? f : default;
            var formatName = Str(format, "format_name") ?? "unknown";
            var hasAudio = false;
            for (var i = 0; i < count; i++)
            {
                var st = streams[i];
                var type = Str(st, "codec_type");
                hasAudio |= type == "audio";
                if (type != "video" || IsAttachedPicture(st))
                {
                    continue;
                }

                var width = Int(st, "width");
                var height = Int(st, "height");
                if (width < 5 || height < 5)
                {
                    throw new VideoDecodeException(VideoDecodeError.BadDimensions, $"The video is {width}x{height}; hashing needs at least 5x5 pixels.");
                }

                if ((long)width * height > limits.MaxPixels)
                {
                    throw new VideoDecodeException(VideoDecodeError.BadDimensions, $"The video is {width}x{height}, over the limit of {limits.MaxPixels} pixels per frame.");
                }

                var (num, den) = Rational(Str(st, "avg_frame_rate"));
                if (num <= 0 || den <= 0)
                {
                    (num, den) = Rational(Str(st, "r_frame_rate"));
                }

                if (num <= 0 || den <= 0)
                {
                    throw new VideoDecodeException(VideoDecodeError.Corrupt, "The video stream declares no frame rate.");
                }

                var duration = Double(st, "duration") ?? Double(format, "duration");
                var frames = Str(st, "nb_frames") is { } nb && long.TryParse(nb, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : (long?)null;
                return new VideoInfo(
                    Int(st, "index"), count, Str(st, "codec_name") ?? "unknown", width, height, num, den, duration, frames, Math.Max(0, Int(st, "has_b_frames")), formatName);
            }

            if (hasAudio)
            {
                throw new VideoDecodeException(VideoDecodeError.AudioOnly, "The file has audio but no video stream.");
            }

            throw new VideoDecodeException(VideoDecodeError.NotVideo, count == 0 ? $"The file ({formatName}) has no streams." : "The file has no video stream.");
        }
    }

    /// <summary>Maps ffmpeg's error text to a typed error.</summary>
    internal static VideoDecodeException Classify(string stderr, string fallback)
    {
        var text = stderr.Length > 0 ? LastLines(stderr, 3) : fallback;
        if (stderr.Contains("moov atom not found", StringComparison.Ordinal) ||
            stderr.Contains("partial file", StringComparison.OrdinalIgnoreCase) ||
            stderr.Contains("End of file", StringComparison.Ordinal))
        {
            return new VideoDecodeException(VideoDecodeError.Truncated, $"The file is truncated: {text}");
        }

        if (stderr.Contains("Invalid data found when processing input", StringComparison.Ordinal) ||
            stderr.Contains("could not find codec parameters", StringComparison.OrdinalIgnoreCase))
        {
            return new VideoDecodeException(VideoDecodeError.NotVideo, $"Not a video ffmpeg can read: {text}");
        }

        return new VideoDecodeException(VideoDecodeError.Corrupt, $"ffmpeg failed: {text}");
    }

    /// <summary>A path ffmpeg cannot mistake for an option, a URL or a protocol (file: prefix).</summary>
    internal static string LiteralPath(string path) => "file:" + Path.GetFullPath(path);

    internal static string LastLines(string text, int lines)
    {
        var all = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join(" / ", all.TakeLast(lines));
    }

    private static bool IsAttachedPicture(JsonElement st) =>
        st.TryGetProperty("disposition", out var d) && d.ValueKind == JsonValueKind.Object &&
        d.TryGetProperty("attached_pic", out var a) && a.ValueKind == JsonValueKind.Number && a.TryGetInt32(out var pic) && pic == 1; // 1.0 or 1e400 is not 1: GetInt32 throws FormatException

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int Int(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : 0;

    private static double? Double(JsonElement e, string name) =>
        Str(e, name) is { } s && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d : null;

    private static (int Num, int Den) Rational(string? text)
    {
        if (text is null)
        {
            return (0, 0);
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 &&
            int.TryParse(text.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var num) &&
            int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var den)
            ? (num, den)
            : (0, 0);
    }
}
