using Warden.Core.Hashing.Video;

namespace Warden.Core.Tests.Video;

/// <summary>The shared video oracle (../shared/testdata/video) and ffmpeg availability.</summary>
internal static class VideoTestData
{
    public const string FfmpegMissing = "ffmpeg/ffprobe are not installed (scripts/test installs Debian's ffmpeg package).";

    /// <summary>Skips unless ffmpeg is installed.</summary>
    public static void RequireFfmpeg() => Skip.IfNot(FfmpegTools.Available, FfmpegMissing);

    /// <summary>A path under the video oracle; skips when it or ffmpeg is absent.</summary>
    public static string Path(params string[] parts)
    {
        RequireFfmpeg();
        return TestData.SharedPath(["video", .. parts]);
    }

    /// <summary>The 18 oracle videos' file names.</summary>
    public static IEnumerable<object[]> Videos() =>
        Directory.Exists(Dir) ? Directory.GetFiles(Dir).Select(f => new object[] { System.IO.Path.GetFileName(f) }).OrderBy(a => (string)a[0], StringComparer.Ordinal) : [["testsrc2.mp4"]];

    private static string Dir => TestData.Shared is null ? string.Empty : System.IO.Path.Combine(TestData.Shared, "video", "videos");
}
