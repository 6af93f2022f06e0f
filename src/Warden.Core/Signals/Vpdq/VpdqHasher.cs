using System.Collections.Concurrent;
using System.Globalization;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Hashing.Video;

/// <summary>Which frames vPDQ hashes.</summary>
public enum VideoHashMode
{
    /// <summary>The reference's sampling on every decoded frame, full-size frames: bit-exact with Meta's vPDQ.</summary>
    Exact = 0,

    /// <summary>
    /// Keyframes only (the decoder skips every other frame), reduced by ffmpeg to about PDQ's working size.
    /// Many times faster; frame numbers come from the keyframes' timestamps. Not the reference's hash list,
    /// but its frames are frames of the same video, so it matches reference hashes of copies.
    /// </summary>
    Fast = 1,
}

/// <summary>How to compute a vPDQ hash.</summary>
/// <param name="SecondsPerHash">Hash every (int)(this x fps)-th frame; 0 = every frame (the reference CLI's default), 1 = HMA's default.</param>
/// <param name="Mode">Exact (reference) or fast (keyframes).</param>
/// <param name="Workers">Threads hashing frames while ffmpeg decodes (1 = hash on the reading thread).</param>
/// <param name="DecoderThreads">ffmpeg's -threads for the decoder; 0 = ffmpeg's choice.</param>
/// <param name="EmulateFlushQuirk">
/// Reproduce the reference's flush bug: when the video is not stream #0 the decoder is never drained, so its
/// last has_b_frames frames are not hashed. Off by default (Warden hashes every frame).
/// </param>
public sealed record VpdqOptions(double SecondsPerHash = 0, VideoHashMode Mode = VideoHashMode.Exact, int Workers = 1, int DecoderThreads = 0, bool EmulateFlushQuirk = false)
{
    /// <summary>HMA / python-threatexchange default: one hash per second, exact.</summary>
    public static VpdqOptions OnePerSecond { get; } = new(1);
}

/// <summary>A vPDQ hash with what was learnt about the video.</summary>
/// <param name="Hash">The hashed frames.</param>
/// <param name="Info">ffprobe's view of the video stream.</param>
/// <param name="Problems">Decode errors ffmpeg reported (damaged or truncated file; the frames it could decode were hashed), or null.</param>
public sealed record VpdqResult(VpdqHash Hash, VideoInfo Info, string? Problems);

/// <summary>
/// vPDQ, ported from Meta's BSD-licensed reference (facebook/ThreatExchange, vpdq/; Copyright (c) Meta
/// Platforms, Inc. and affiliates). Frames come from the ffmpeg CLI as full-size RGB24
/// (`-map 0:N -fps_mode passthrough -pix_fmt rgb24`), which reproduces the reference's libav decode +
/// swscale frames; frame i is hashed when i % (int)(secondsPerHash x avg_frame_rate) == 0; timestamps are
/// float32. See docs/video.md.
/// </summary>
public static class VpdqHasher
{
    /// <summary>The reference's frame step: (int)(secondsPerHash x frameRate), at least 1.</summary>
    public static int FrameMod(double secondsPerHash, double frameRate)
    {
        var mod = (int)(secondsPerHash * frameRate);
        return mod < 1 ? 1 : mod;
    }

    /// <summary>Hashes the video at <paramref name="path"/>.</summary>
    /// <exception cref="VideoDecodeException">Not a video, audio only, corrupt, truncated before any frame, over a limit, timeout.</exception>
    public static VpdqResult Hash(string path, VpdqOptions? options = null, VideoLimits? limits = null, IProgress<double>? progress = null, CancellationToken cancel = default)
    {
        options ??= new VpdqOptions();
        limits ??= VideoLimits.Default;
        if (options.SecondsPerHash < 0 || !double.IsFinite(options.SecondsPerHash))
        {
            throw new ArgumentOutOfRangeException(nameof(options), "SecondsPerHash must be 0 or more.");
        }

        if (options.Mode == VideoHashMode.Fast)
        {
            return VpdqKeyframes.Hash(path, options, limits, cancel);
        }

        var info = VideoProbe.Probe(path, limits, cancel);
        return HashExact(path, info, options, limits, progress, cancel);
    }

    private static VpdqResult HashExact(string path, VideoInfo info, VpdqOptions options, VideoLimits limits, IProgress<double>? progress, CancellationToken cancel)
    {
        var fps = info.FrameRate;
        var mod = FrameMod(options.SecondsPerHash, fps);
        var quirk = options.EmulateFlushQuirk && info.StreamIndex != 0;
        var output = new List<string> { "-map", "0:" + info.StreamIndex.ToString(CultureInfo.InvariantCulture), "-an", "-sn", "-dn", "-fps_mode", "passthrough" };
        var step = mod;
        if (mod > 1 && !quirk)
        {
            // Only every mod-th decoded frame is converted and piped: n counts the frames the decoder returns.
            output.AddRange(["-vf", string.Create(CultureInfo.InvariantCulture, $"select=not(mod(n\\,{mod}))")]);
        }
        else
        {
            step = 1;
        }

        output.AddRange(["-f", "rawvideo", "-pix_fmt", "rgb24"]);
        var frames = new List<VpdqFrame>();
        var run = DecodeFrames(path, output, InputOptions(options), info.Width, info.Height, info, step, options.Workers, limits, progress, (index, pdq) =>
        {
            var number = checked((int)(index * step));
            if (number % mod != 0)
            {
                return null;
            }

            return new VpdqFrame(number, pdq.Quality, pdq.Hash, VpdqFrame.TimestampOf(number, fps));
        }, frames, cancel);

        if (quirk)
        {
            // The reference never drains the decoder here: its last has_b_frames frames are lost.
            var decoded = run.Frames;
            frames.RemoveAll(f => f.FrameNumber >= decoded - info.DecoderDelay);
        }

        return new VpdqResult(new VpdqHash(frames), info, run.Problems);
    }

    // -noautorotate: the reference ignores rotation metadata (and the frame size must stay the probed one).
    private static string[] InputOptions(VpdqOptions options) =>
        options.DecoderThreads > 0 ? ["-noautorotate", "-threads", options.DecoderThreads.ToString(CultureInfo.InvariantCulture)] : ["-noautorotate"];

    /// <summary>
    /// Reads frames of <paramref name="width"/> x <paramref name="height"/> and hashes them, on the reading thread
    /// or on <paramref name="workers"/> threads fed through a bounded queue of pooled buffers.
    /// </summary>
    private static FrameRun DecodeFrames(
        string path, List<string> output, string[] input, int width, int height, VideoInfo info, int step, int workers, VideoLimits limits,
        IProgress<double>? progress, Func<long, PdqResult, VpdqFrame?> make, List<VpdqFrame> frames, CancellationToken cancel)
    {
        var frameBytes = checked(width * height * 3);
        var fps = info.FrameRate;
        var maxFrame = Math.Min(limits.MaxFrames, (long)Math.Min(long.MaxValue / 2, limits.MaxDurationSeconds * fps));
        var sinceReport = System.Diagnostics.Stopwatch.StartNew();

        PdqResult HashOne(VideoFrameHasher vh, ReadOnlySpan<byte> frame) => vh.Hash(frame, width, height);

        void Limit(long index)
        {
            if (index > maxFrame)
            {
                throw new VideoDecodeException(VideoDecodeError.TooLong, string.Create(CultureInfo.InvariantCulture,
                    $"The video is longer than the limit ({limits.MaxFrames} frames or {limits.MaxDurationSeconds:F0} s)."));
            }
        }

        void Report(long index)
        {
            // Seconds of video decoded, at most a few times a second.
            if (progress is not null && sinceReport.ElapsedMilliseconds >= 250)
            {
                sinceReport.Restart();
                progress.Report(index * step / fps);
            }
        }

        if (workers <= 1)
        {
            var vh = new VideoFrameHasher();
            var run = FrameSource.Run(path, input, output, frameBytes, limits, (frame, index) =>
            {
                Limit(index * step);
                var result = HashOne(vh, frame);
                if (make(index, result) is { } f)
                {
                    Limit(f.FrameNumber);
                    frames.Add(f);
                }

                Report(index);
                return true;
            }, cancel);
            return run;
        }

        // Parallel: the reader fills pooled buffers, workers hash, results are put back in frame order.
        using var queue = new BlockingCollection<(byte[] Buffer, long Index)>(workers * 2);
        var results = new ConcurrentDictionary<long, PdqResult>();
        var pool = new ConcurrentBag<byte[]>();
        Exception? failure = null;
        var threads = Enumerable.Range(0, workers).Select(_ => new Thread(() =>
        {
            var vh = new VideoFrameHasher();
            try
            {
                foreach (var (buffer, index) in queue.GetConsumingEnumerable())
                {
                    results[index] = HashOne(vh, buffer.AsSpan(0, frameBytes));
                    pool.Add(buffer);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure ??= e;
            }
        })
        { IsBackground = true, Name = "vpdq-hash" }).ToList();
        threads.ForEach(t => t.Start());
        FrameRun run2;
        try
        {
            run2 = FrameSource.Run(path, input, output, frameBytes, limits, (frame, index) =>
            {
                if (failure is not null)
                {
                    return false;
                }

                Limit(index * step);

                if (!pool.TryTake(out var buffer))
                {
                    buffer = GC.AllocateUninitializedArray<byte>(frameBytes);
                }

                frame.CopyTo(buffer);
                queue.Add((buffer, index), cancel);
                Report(index);
                return true;
            }, cancel);
        }
        finally
        {
            queue.CompleteAdding();
            threads.ForEach(t => t.Join());
        }

        if (failure is not null)
        {
            throw new InvalidOperationException("A frame could not be hashed.", failure);
        }

        for (long i = 0; i < run2.Frames; i++)
        {
            if (results.TryGetValue(i, out var r) && make(i, r) is { } f)
            {
                Limit(f.FrameNumber);
                frames.Add(f);
            }
        }

        return run2;
    }
}
