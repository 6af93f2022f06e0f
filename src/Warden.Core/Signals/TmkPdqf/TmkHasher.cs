using System.Buffers.Binary;
using System.Globalization;

namespace Warden.Core.Hashing.Video;

/// <summary>
/// TMK+PDQF hashing, ported from Meta's BSD-licensed reference (facebook/ThreatExchange, tmk/cpp;
/// Copyright (c) 2017- Facebook). Frames come from the same ffmpeg command the reference runs
/// (`-s 64:64 -an -f rawvideo -c:v rawvideo -pix_fmt rgb24 -r 15`: bicubic scaling to 64x64, aspect not
/// kept, resampled to 15 fps); each frame's PDQF feature is PDQ's luma and 16x16 DCT before thresholding.
/// </summary>
public static class TmkHasher
{
    private const int Side = 64;

    /// <summary>The ffmpeg output options of the reference (after `-i file`).</summary>
    public static IReadOnlyList<string> ReferenceOutputOptions { get; } =
        ["-s", "64:64", "-an", "-f", "rawvideo", "-c:v", "rawvideo", "-pix_fmt", "rgb24", "-r", "15"];

    /// <summary>Hashes the video at <paramref name="path"/>; optionally hands each frame's PDQF feature to <paramref name="onFeature"/>.</summary>
    /// <exception cref="VideoDecodeException">Not a video, corrupt, over a limit, timeout.</exception>
    public static TmkFeatures Hash(string path, VideoLimits? limits = null, int decoderThreads = 0, Action<ReadOnlySpan<float>>? onFeature = null, CancellationToken cancel = default) =>
        Hash(path, null, limits, decoderThreads, onFeature, cancel);

    /// <summary>As <see cref="Hash(string, VideoLimits?, int, Action{ReadOnlySpan{float}}?, CancellationToken)"/>, with the probe already done (<paramref name="info"/>; null to probe).</summary>
    public static TmkFeatures Hash(string path, VideoInfo? info, VideoLimits? limits = null, int decoderThreads = 0, Action<ReadOnlySpan<float>>? onFeature = null, CancellationToken cancel = default)
    {
        limits ??= VideoLimits.Default;
        info ??= VideoProbe.Probe(path, limits, cancel);
        var features = TmkFeatures.CreatePoullot();
        var hasher = new VideoFrameHasher();
        var feature = new float[TmkFeatures.PdqfDimension];
        var scratch = new float[TmkFeatures.PdqfDimension];
        var maxFrames = (long)Math.Min(limits.MaxFrames, limits.MaxDurationSeconds * TmkFeatures.DefaultFramesPerSecond);
        string[] input = decoderThreads > 0 ? ["-threads", decoderThreads.ToString(CultureInfo.InvariantCulture)] : [];

        // The reference lets ffmpeg choose the video stream; Warden names the probed one (the same for
        // ordinary files, and independent of stream order).
        string[] output = ["-map", "0:" + info.StreamIndex.ToString(CultureInfo.InvariantCulture), .. ReferenceOutputOptions];
        FrameSource.Run(path, input, output, Side * Side * 3, limits, (frame, index) =>
        {
            if (index >= maxFrames)
            {
                throw new VideoDecodeException(VideoDecodeError.TooLong, $"The video is longer than the limit ({limits.MaxDurationSeconds:F0} s).");
            }

            hasher.Features(frame, Side, Side, feature);
            onFeature?.Invoke(feature);
            features.Ingest(feature, scratch);
            return true;
        }, cancel);
        features.Finish();
        return features;
    }

    /// <summary>Reads a reference `.feat` file (per-frame PDQF features): 32-byte header, then float32[dimension] per frame.</summary>
    /// <exception cref="InvalidDataException">Not a PDQF feature file, or damaged.</exception>
    public static List<float[]> ReadFeatFile(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 32 || !bytes[..12].SequenceEqual("TMK1FEATPDQF"u8))
        {
            throw new InvalidDataException("Not a TMK PDQF frame-feature file (magic TMK1 FEAT PDQF).");
        }

        var d = BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]);
        if (d is < 1 or > 4096 || (bytes.Length - 32) % (4 * d) != 0)
        {
            throw new InvalidDataException($"Feature dimension {d} does not fit the file length {bytes.Length}.");
        }

        var frames = new List<float[]>();
        for (var o = 32; o < bytes.Length; o += 4 * d)
        {
            var f = new float[d];
            for (var k = 0; k < d; k++)
            {
                f[k] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(o + (4 * k))..]);
            }

            frames.Add(f);
        }

        return frames;
    }

    /// <summary>A one-line text form of TMK features for banks: `tmk1:` + base64 of the `.tmk` bytes.</summary>
    public static string ToSignal(TmkFeatures features)
    {
        ArgumentNullException.ThrowIfNull(features);
        return Prefix + Convert.ToBase64String(features.ToBytes());
    }

    /// <summary>Parses <see cref="ToSignal"/>'s form (the prefix is optional).</summary>
    public static bool TryParseSignal(ReadOnlySpan<char> text, out TmkFeatures? features, out string? reason)
    {
        features = null;
        text = text.Trim();
        if (text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            text = text[Prefix.Length..];
        }

        if (text.Length > 4 * 1024 * 1024)
        {
            reason = "The TMK signal is too long.";
            return false;
        }

        var bytes = new byte[(text.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64Chars(text, bytes, out var n))
        {
            reason = "A tmk_pdqf signal is 'tmk1:' followed by the base64 of a .tmk file.";
            return false;
        }

        try
        {
            features = TmkFeatures.FromBytes(bytes.AsSpan(0, n));
            reason = null;
            return true;
        }
        catch (InvalidDataException e)
        {
            reason = e.Message;
            return false;
        }
    }

    private const string Prefix = "tmk1:";
}
