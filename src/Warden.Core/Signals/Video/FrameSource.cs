using System.Buffers;

namespace Warden.Core.Hashing.Video;

/// <summary>How a decode run ended.</summary>
/// <param name="Frames">Whole frames delivered.</param>
/// <param name="Problems">ffmpeg's error output when it reported decode errors or exited non-zero after some frames (a damaged or truncated file); null when clean.</param>
public sealed record FrameRun(long Frames, string? Problems);

/// <summary>
/// Decodes a video with the ffmpeg CLI and hands over raw frames of a fixed size, read from its stdout pipe
/// into one pooled buffer (no per-frame allocation). The child process is killed when the callback stops
/// the run, on cancellation, on the time limit and on any error.
/// </summary>
public static class FrameSource
{
    /// <summary>Called per frame with its pixels and 0-based index in the output; return false to stop.</summary>
    public delegate bool FrameHandler(ReadOnlySpan<byte> frame, long index);

    /// <summary>
    /// Runs `ffmpeg -nostdin -hide_banner -loglevel error [input options] -i file:PATH [output options] pipe:1`
    /// and reads frames of <paramref name="frameBytes"/> bytes.
    /// </summary>
    /// <exception cref="VideoDecodeException">ffmpeg missing, time limit, or no frame and an error.</exception>
    public static FrameRun Run(
        string path,
        IEnumerable<string> inputOptions,
        IEnumerable<string> outputOptions,
        int frameBytes,
        VideoLimits limits,
        FrameHandler onFrame,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(onFrame);
        ArgumentOutOfRangeException.ThrowIfLessThan(frameBytes, 1);
        string[] args = ["-nostdin", "-hide_banner", "-loglevel", "error", .. inputOptions, "-i", VideoProbe.LiteralPath(path), .. outputOptions, "pipe:1"];
        var buffer = ArrayPool<byte>.Shared.Rent(frameBytes);
        try
        {
            using var p = FfmpegProcess.Start(FfmpegTools.Ffmpeg, args, limits.Timeout, cancel);
            long frames = 0;
            var stopped = false;
            var output = p.Output;
            while (true)
            {
                var n = output.ReadAtLeast(buffer.AsSpan(0, frameBytes), frameBytes, throwOnEndOfStream: false);
                if (n < frameBytes)
                {
                    break;
                }

                if (!onFrame(buffer.AsSpan(0, frameBytes), frames++))
                {
                    stopped = true;
                    p.Kill();
                    break;
                }
            }

            var exit = p.WaitForExit();
            cancel.ThrowIfCancellationRequested();
            if (stopped)
            {
                return new FrameRun(frames, null);
            }

            if (p.TimedOut)
            {
                throw new VideoDecodeException(VideoDecodeError.Timeout, $"Decoding did not finish within {limits.Timeout.TotalSeconds:0.###} s.");
            }

            var stderr = p.Stderr;

            if (frames == 0)
            {
                throw exit != 0 || stderr.Length > 0
                    ? VideoProbe.Classify(stderr, $"ffmpeg exit code {exit}")
                    : new VideoDecodeException(VideoDecodeError.NoFrames, "The video has no frames.");
            }

            return new FrameRun(frames, exit != 0 || stderr.Length > 0 ? (stderr.Length > 0 ? stderr : $"ffmpeg exit code {exit}") : null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Called per PAM frame with its pixels (RGB24), size and 0-based index; return false to stop.</summary>
    public delegate bool SizedFrameHandler(ReadOnlySpan<byte> frame, int width, int height, long index);

    /// <summary>
    /// Runs ffmpeg at log level info with the output options given (which must end in `-f image2pipe -c:v pam`
    /// with rgb24 frames) and reads one PAM image per frame, so each frame carries its own size. Standard error
    /// lines go to <paramref name="onStderrLine"/> (showinfo output, stream dump).
    /// </summary>
    /// <exception cref="VideoDecodeException">ffmpeg missing, time limit, bad frame header, or no frame and an error.</exception>
    public static FrameRun RunPam(
        string path,
        IEnumerable<string> inputOptions,
        IEnumerable<string> outputOptions,
        VideoLimits limits,
        SizedFrameHandler onFrame,
        Action<string> onStderrLine,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(onFrame);
        string[] args = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", .. inputOptions, "-i", VideoProbe.LiteralPath(path), .. outputOptions, "pipe:1"];
        byte[] buffer = [];
        try
        {
            using var p = FfmpegProcess.Start(FfmpegTools.Ffmpeg, args, limits.Timeout, cancel, onStderrLine);
            using var output = new BufferedStream(p.Output, 1 << 16);
            long frames = 0;
            var stopped = false;
            while (ReadPamHeader(output, out var width, out var height))
            {
                if ((long)width * height > limits.MaxPixels)
                {
                    throw new VideoDecodeException(VideoDecodeError.BadDimensions, $"A frame is {width}x{height}, over the limit of {limits.MaxPixels} pixels.");
                }

                var bytes = width * height * 3;
                if (buffer.Length < bytes)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(bytes);
                }

                if (output.ReadAtLeast(buffer.AsSpan(0, bytes), bytes, throwOnEndOfStream: false) < bytes)
                {
                    break;
                }

                if (!onFrame(buffer.AsSpan(0, bytes), width, height, frames++))
                {
                    stopped = true;
                    p.Kill();
                    break;
                }
            }

            var exit = p.WaitForExit();
            cancel.ThrowIfCancellationRequested();
            if (stopped)
            {
                return new FrameRun(frames, null);
            }

            if (p.TimedOut)
            {
                throw new VideoDecodeException(VideoDecodeError.Timeout, $"Decoding did not finish within {limits.Timeout.TotalSeconds:0.###} s.");
            }

            var stderr = p.Stderr;
            if (frames == 0)
            {
                if (stderr.Contains("matches no streams", StringComparison.Ordinal))
                {
                    throw stderr.Contains("Audio:", StringComparison.Ordinal)
                        ? new VideoDecodeException(VideoDecodeError.AudioOnly, "The file has audio but no video stream.")
                        : new VideoDecodeException(VideoDecodeError.NotVideo, "The file has no video stream.");
                }

                throw exit != 0 ? VideoProbe.Classify(stderr, $"ffmpeg exit code {exit}") : new VideoDecodeException(VideoDecodeError.NoFrames, "The video has no frames.");
            }

            return new FrameRun(frames, exit != 0 ? VideoProbe.LastLines(stderr, 3) : null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads a PAM header (P7 … ENDHDR, at most 512 bytes); false at a clean end of stream.</summary>
    private static bool ReadPamHeader(Stream s, out int width, out int height)
    {
        width = height = 0;
        Span<byte> header = stackalloc byte[512];
        var n = 0;
        while (true)
        {
            var b = s.ReadByte();
            if (b < 0)
            {
                return false;
            }

            if (n == header.Length)
            {
                throw new VideoDecodeException(VideoDecodeError.Corrupt, "ffmpeg sent a frame header that is too long.");
            }

            header[n++] = (byte)b;
            if (b == '\n' && header[..n].EndsWith("ENDHDR\n"u8))
            {
                break;
            }
        }

        var text = System.Text.Encoding.ASCII.GetString(header[..n]);
        var depth = 0;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', 2);
            if (parts.Length != 2 || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v))
            {
                continue;
            }

            switch (parts[0])
            {
                case "WIDTH": width = v; break;
                case "HEIGHT": height = v; break;
                case "DEPTH": depth = v; break;
            }
        }

        if (!text.StartsWith("P7\n", StringComparison.Ordinal) || depth != 3 || width < 1 || height < 1 || width > 65535 || height > 65535)
        {
            throw new VideoDecodeException(VideoDecodeError.Corrupt, "ffmpeg sent an unexpected frame header.");
        }

        return true;
    }
}
