using System.Buffers.Binary;
using System.Diagnostics;
using Warden.Core.Hashing.Video;

namespace Warden.Core.Tests.Video;

/// <summary>Hostile and broken inputs: every one ends in a typed error or a bounded partial result, never a hang.</summary>
public sealed class VideoMalformedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-video-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [SkippableFact]
    public void ZeroLengthFileIsNotAVideo()
    {
        VideoTestData.RequireFfmpeg();
        var path = Write("empty.mp4", []);
        var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path));
        Assert.Contains(e.Error, new[] { VideoDecodeError.NotVideo, VideoDecodeError.Truncated, VideoDecodeError.Corrupt });
    }

    [SkippableFact]
    public void RandomBytesAreNotAVideo()
    {
        VideoTestData.RequireFfmpeg();
        var bytes = new byte[20000];
        new Random(7).NextBytes(bytes);
        var path = Write("noise.bin", bytes);
        var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path));
        Assert.Contains(e.Error, new[] { VideoDecodeError.NotVideo, VideoDecodeError.Corrupt });
        Assert.Throws<VideoDecodeException>(() => TmkHasher.Hash(path));
    }

    [SkippableFact]
    public void AudioOnlyFileSaysSo()
    {
        VideoTestData.RequireFfmpeg();
        var path = Path.Combine(_dir, "tone.mka");
        Ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1", "-c:a", "pcm_s16le", path);
        var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path));
        Assert.Equal(VideoDecodeError.AudioOnly, e.Error);
    }

    [SkippableFact]
    public void VideoStreamIsFoundWhateverItsPosition()
    {
        var info = VideoProbe.Probe(VideoTestData.Path("videos", "smptebars-audiofirst.mkv"));
        Assert.Equal(1, info.StreamIndex);
        Assert.Equal(2, info.StreamCount);
        Assert.Equal(25, info.FrameRate);
        Assert.Equal(2, info.DecoderDelay);
    }

    [SkippableFact]
    public void TruncatedMp4WithoutItsIndexIsTruncated()
    {
        var bytes = File.ReadAllBytes(VideoTestData.Path("videos", "testsrc2.mp4"));
        foreach (var keep in new[] { 8, 100, bytes.Length / 2 })
        {
            var path = Write($"cut{keep}.mp4", bytes[..keep]);
            var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path));
            Assert.Contains(e.Error, new[] { VideoDecodeError.Truncated, VideoDecodeError.NotVideo, VideoDecodeError.Corrupt });
        }
    }

    [SkippableFact]
    public void TruncatedStreamableFileHashesWhatDecodes()
    {
        // Matroska keeps its index up front, so a cut file still decodes up to the cut.
        var full = File.ReadAllBytes(VideoTestData.Path("videos", "gradients.mkv"));
        var path = Write("cut.mkv", full[..(full.Length / 2)]);
        var result = VpdqHasher.Hash(path);
        Assert.InRange(result.Hash.Frames.Count, 1, 127);
        var whole = VpdqHasher.Hash(VideoTestData.Path("videos", "gradients.mkv"));
        Assert.Equal(
            whole.Hash.Frames.Take(result.Hash.Frames.Count - 5).Select(f => f.ToString()),
            result.Hash.Frames.Take(result.Hash.Frames.Count - 5).Select(f => f.ToString()));
    }

    [SkippableFact]
    public void DeclaredDurationThatLiesIsNotTrusted()
    {
        VideoTestData.RequireFfmpeg();
        var path = Path.Combine(_dir, "clip.mkv");
        Ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", path);
        var bytes = File.ReadAllBytes(path);

        // Rewrite the Segment Info Duration (EBML id 0x4489, 8-byte float, milliseconds) to claim 10 hours.
        var at = bytes.AsSpan().IndexOf((ReadOnlySpan<byte>)[0x44, 0x89, 0x88]);
        Assert.True(at > 0, "no 8-byte Duration element");
        BinaryPrimitives.WriteDoubleBigEndian(bytes.AsSpan(at + 3), 36_000_000);
        File.WriteAllBytes(path, bytes);
        var info = VideoProbe.Probe(path);
        Assert.True(info.DeclaredDuration > 30_000);

        // The limit is applied to what decodes, so the 3 s file is hashed in full under a 60 s limit …
        var limits = VideoLimits.Default with { MaxDurationSeconds = 60 };
        Assert.Equal(30, VpdqHasher.Hash(path, new VpdqOptions(), limits).Hash.Frames.Count);

        // … and a claim of 0.1 s does not let a longer video past a 1 s limit.
        BinaryPrimitives.WriteDoubleBigEndian(bytes.AsSpan(at + 3), 100);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path, new VpdqOptions(), limits with { MaxDurationSeconds = 1 }));
        Assert.Equal(VideoDecodeError.TooLong, e.Error);
        e = Assert.Throws<VideoDecodeException>(() => TmkHasher.Hash(path, limits with { MaxDurationSeconds = 1 }));
        Assert.Equal(VideoDecodeError.TooLong, e.Error);
    }

    [SkippableFact]
    public void RotationMetadataIsIgnoredAsTheReferenceDoes()
    {
        VideoTestData.RequireFfmpeg();
        var plain = Path.Combine(_dir, "plain.mp4");
        var rotated = Path.Combine(_dir, "rotated.mp4");
        Ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", plain);
        Ffmpeg("-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated);
        var a = VpdqHasher.Hash(plain).Hash.ToReferenceText();
        Assert.Equal(a, VpdqHasher.Hash(rotated).Hash.ToReferenceText());
        Assert.Equal(
            VpdqHasher.Hash(plain, new VpdqOptions(Mode: VideoHashMode.Fast)).Hash.ToReferenceText(),
            VpdqHasher.Hash(rotated, new VpdqOptions(Mode: VideoHashMode.Fast)).Hash.ToReferenceText());
    }

    [SkippableFact]
    public void TimeLimitKillsTheDecoder()
    {
        var path = VideoTestData.Path("videos", "life-resized-480x360.mp4");
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path, new VpdqOptions(), VideoLimits.Default with { Timeout = TimeSpan.FromMilliseconds(1) }));
        Assert.Equal(VideoDecodeError.Timeout, e.Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20));
    }

    [SkippableFact]
    public void CancellationStopsTheDecoder()
    {
        var path = VideoTestData.Path("videos", "life-resized-480x360.mp4");
        using var cts = new CancellationTokenSource();
        var frames = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => FrameSource.Run(path, [], ["-f", "rawvideo", "-pix_fmt", "rgb24"], 480 * 360 * 3, VideoLimits.Default, (_, _) =>
        {
            if (++frames == 3)
            {
                cts.Cancel();
            }

            return true;
        }, cts.Token));
        Assert.InRange(frames, 3, 288);
    }

    [SkippableFact]
    public void FramesOverThePixelLimitAreRefused()
    {
        var path = VideoTestData.Path("videos", "testsrc2.mp4");
        var e = Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(path, new VpdqOptions(), VideoLimits.Default with { MaxPixels = 320 * 239 }));
        Assert.Equal(VideoDecodeError.BadDimensions, e.Error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0,100,zz,0.000")]
    [InlineData("0,101,b19a9b9b9a66734c71994c76ccb3b99b3259c7364864b4d3699e4b64b42ca498,0.000")]
    [InlineData("0,100,b19a9b9b9a66734c71994c76ccb3b99b3259c7364864b4d3699e4b64b42ca498")]
    [InlineData("-1,100,b19a9b9b9a66734c71994c76ccb3b99b3259c7364864b4d3699e4b64b42ca498,0.000")]
    [InlineData("[\"b19a9b9b9a66734c71994c76ccb3b99b3259c7364864b4d3699e4b64b42ca498,100\"]")]
    [InlineData("[1,2]")]
    [InlineData("[")]
    public void MalformedVpdqTextIsRejectedWithAReason(string text)
    {
        Assert.False(VpdqHash.TryParse(text, out _, out var reason));
        Assert.False(string.IsNullOrEmpty(reason));
    }

    [Fact]
    public void HmaJsonFormIsRead()
    {
        Assert.True(VpdqHash.TryParse("[\"b19a9b9b9a66734c71994c76ccb3b99b3259c7364864b4d3699e4b64b42ca498,100,0.0\",\"b39a9b999a66630c61994cf2cc33b99b3259c7364864b4db659e4b64b4acb499,90,1.0\"]", out var h, out var reason), reason);
        Assert.Equal(2, h.Frames.Count);
        Assert.Equal(90, h.Frames[1].Quality);
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void Ffmpeg(params string[] args)
    {
        var info = new ProcessStartInfo(FfmpegTools.Ffmpeg) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["-hide_banner", "-loglevel", "error", "-y", "-fflags", "+bitexact", .. args])
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var err = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "ffmpeg did not finish");
        Assert.True(p.ExitCode == 0, err);
    }
}
