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
            if (p.TimedOut)
            {
                throw new VideoDecodeException(VideoDecodeError.Timeout, $"Decoding did not finish within {limits.Timeout.TotalSeconds:F0} s.");
            }

            var stderr = p.Stderr;
            if (stopped)
            {
                return new FrameRun(frames, null);
            }

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
}
