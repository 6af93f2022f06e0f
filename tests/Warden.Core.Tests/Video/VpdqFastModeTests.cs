using Warden.Core.Hashing.Video;

namespace Warden.Core.Tests.Video;

/// <summary>The keyframe-only fast mode: its frames are the video's keyframes, hashed like the reference hashes them.</summary>
public sealed class VpdqFastModeTests
{
    [SkippableTheory]
    [InlineData("testsrc2.mp4")]
    [InlineData("mandelbrot.mp4")]
    [InlineData("smptebars-audiofirst.mkv")]
    [InlineData("cellauto.webm")]
    public void KeyframesOfSmallVideosHashExactlyAsTheReferenceFrames(string video)
    {
        var expected = File.ReadAllLines(VideoTestData.Path("expected", "vpdq", video + ".txt"))
            .Select(l => l.Split(','))
            .ToDictionary(f => int.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture), f => f[2]);
        var fast = VpdqHasher.Hash(VideoTestData.Path("videos", video), new VpdqOptions(1, VideoHashMode.Fast));
        Assert.NotEmpty(fast.Hash.Frames);
        Assert.Equal(0, fast.Hash.Frames[0].FrameNumber);
        foreach (var f in fast.Hash.Frames)
        {
            Assert.Equal(expected[f.FrameNumber], f.Hash.ToString());
        }

        var exact = VpdqHasher.Hash(VideoTestData.Path("videos", video), new VpdqOptions(0));
        Assert.True(fast.Hash.Frames.Count < exact.Hash.Frames.Count || video == "cellauto.webm");
        Assert.Equal(exact.Info.FrameRate, fast.Info.FrameRate);
    }

    [SkippableFact]
    public void LargeFramesAreReducedByFfmpegAndStayCloseToTheExactHash()
    {
        VideoTestData.RequireFfmpeg();
        var dir = Directory.CreateTempSubdirectory("warden-fast-").FullName;
        try
        {
            var path = Path.Combine(dir, "hd.mp4");
            var info = new System.Diagnostics.ProcessStartInfo(FfmpegTools.Ffmpeg) { RedirectStandardError = true };
            foreach (var a in new[] { "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "mandelbrot=size=1280x720:rate=10", "-t", "2", "-g", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", path })
            {
                info.ArgumentList.Add(a);
            }

            using (var p = System.Diagnostics.Process.Start(info)!)
            {
                p.StandardError.ReadToEnd();
                Assert.True(p.WaitForExit(60_000));
            }

            var fast = VpdqHasher.Hash(path, new VpdqOptions(0, VideoHashMode.Fast)).Hash.Frames;
            var exact = VpdqHasher.Hash(path, new VpdqOptions(0)).Hash.Frames.ToDictionary(f => f.FrameNumber);
            Assert.Equal([0, 10], fast.Select(f => f.FrameNumber));
            foreach (var f in fast)
            {
                Assert.InRange(f.Hash.DistanceTo(exact[f.FrameNumber].Hash), 0, 16);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SkippableFact]
    public void FastModeGivesTheSameTypedErrors()
    {
        var path = VideoTestData.Path("videos", "testsrc2.mp4");
        var dir = Directory.CreateTempSubdirectory("warden-fast-").FullName;
        try
        {
            var cut = Path.Combine(dir, "cut.mp4");
            File.WriteAllBytes(cut, File.ReadAllBytes(path)[..5000]);
            Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(cut, new VpdqOptions(1, VideoHashMode.Fast)));
            var empty = Path.Combine(dir, "empty.webm");
            File.WriteAllBytes(empty, []);
            Assert.Throws<VideoDecodeException>(() => VpdqHasher.Hash(empty, new VpdqOptions(1, VideoHashMode.Fast)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
