using System.Diagnostics;

namespace Warden.Core.Hashing.Video;

/// <summary>Which video signals to compute.</summary>
/// <param name="Vpdq">vPDQ options, or null for none.</param>
/// <param name="Tmk">Compute TMK+PDQF too.</param>
/// <param name="Limits">Duration, frame, pixel and time limits.</param>
/// <param name="DecoderThreads">ffmpeg -threads (0 = its choice).</param>
public sealed record VideoHashOptions(VpdqOptions? Vpdq, bool Tmk, VideoLimits Limits, int DecoderThreads = 0)
{
    /// <summary>vPDQ at one hash per second (HMA's default), exact, plus TMK.</summary>
    public static VideoHashOptions Default { get; } = new(VpdqOptions.OnePerSecond, true, VideoLimits.Default);
}

/// <summary>The video signals of one file.</summary>
/// <param name="Info">The probed video stream.</param>
/// <param name="Vpdq">vPDQ, if asked for.</param>
/// <param name="Tmk">TMK+PDQF, if asked for.</param>
/// <param name="Problems">Decode errors ffmpeg reported on a damaged file (what decoded was hashed), or null.</param>
/// <param name="Elapsed">Wall time spent.</param>
public sealed record VideoHashes(VideoInfo Info, VpdqHash? Vpdq, TmkFeatures? Tmk, string? Problems, TimeSpan Elapsed);

/// <summary>Computes a video file's vPDQ and TMK+PDQF (one ffmpeg run each).</summary>
public static class VideoHasher
{
    /// <summary>Hashes <paramref name="path"/>.</summary>
    /// <exception cref="VideoDecodeException">Not a video, audio only, corrupt, over a limit, timeout.</exception>
    /// <param name="path">The video file.</param>
    /// <param name="options">What to compute.</param>
    /// <param name="progress">Told (what, seconds of video done) as decoding goes on: "vpdq", then "tmk".</param>
    /// <param name="cancel">Stops the decoders.</param>
    public static VideoHashes Hash(string path, VideoHashOptions options, Action<string, double>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        VpdqResult? vpdq = null;
        var info = options.Vpdq is null ? VideoProbe.Probe(path, options.Limits, cancel) : null;
        if (options.Vpdq is not null)
        {
            vpdq = VpdqHasher.Hash(path, options.Vpdq with { DecoderThreads = options.DecoderThreads }, options.Limits, progress is null ? null : new Reporter(s => progress("vpdq", s)), cancel);
            info = vpdq.Info;
        }

        var tmkFrames = 0;
        var tmk = options.Tmk
            ? TmkHasher.Hash(path, options.Vpdq?.Mode == VideoHashMode.Fast ? null : info, options.Limits, options.DecoderThreads, progress is null ? null : _ =>
            {
                if (++tmkFrames % 75 == 0)
                {
                    progress("tmk", tmkFrames / (double)TmkFeatures.DefaultFramesPerSecond);
                }
            }, cancel)
            : null;
        return new VideoHashes(info!, vpdq?.Hash, tmk, vpdq?.Problems, clock.Elapsed);
    }
}

/// <summary>An IProgress that calls back synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class Reporter(Action<double> report) : IProgress<double>
{
    public void Report(double value) => report(value);
}

/// <summary>Recognises video containers by their first bytes (not by file name).</summary>
public static class VideoSniffer
{
    /// <summary>Bytes <see cref="IsVideo(ReadOnlySpan{byte})"/> looks at.</summary>
    public const int HeaderBytes = 200;

    /// <summary>True for ISO BMFF (MP4/MOV/3GP, not HEIF/AVIF images), Matroska/WebM, AVI, FLV, ASF/WMV, MPEG-PS/TS, Ogg.</summary>
    public static bool IsVideo(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 12 && head.Slice(4, 4).SequenceEqual("ftyp"u8))
        {
            var brand = head.Slice(8, 4);
            return !(brand.SequenceEqual("heic"u8) || brand.SequenceEqual("heix"u8) || brand.SequenceEqual("mif1"u8) ||
                     brand.SequenceEqual("msf1"u8) || brand.SequenceEqual("avif"u8) || brand.SequenceEqual("avis"u8) || brand.SequenceEqual("hevc"u8));
        }

        return head.StartsWith((ReadOnlySpan<byte>)[0x1A, 0x45, 0xDF, 0xA3]) ||
            (head.Length >= 12 && head.StartsWith("RIFF"u8) && head.Slice(8, 4).SequenceEqual("AVI "u8)) ||
            head.StartsWith("FLV\x01"u8) ||
            head.StartsWith((ReadOnlySpan<byte>)[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) ||
            head.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0x01, 0xBA]) ||
            head.StartsWith("OggS"u8) ||
            (head.Length >= 189 && head[0] == 0x47 && head[188] == 0x47);
    }

    /// <summary>Reads the start of <paramref name="path"/> and sniffs it.</summary>
    public static bool IsVideoFile(string path)
    {
        Span<byte> head = stackalloc byte[HeaderBytes];
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        var n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return IsVideo(head[..n]);
    }
}
