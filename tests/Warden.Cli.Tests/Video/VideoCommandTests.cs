using System.Diagnostics;
using System.Text.Json;
using Warden.Core.Hashing.Video;

namespace Warden.Cli.Tests.Video;

/// <summary>`warden hash` and `warden scan` on videos the test makes with ffmpeg's synthetic sources.</summary>
public sealed class VideoCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-video-cli-").FullName;

    private string Db => Path.Combine(_dir, "warden.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    [SkippableFact]
    public void HashThenBankThenScanFindsTheReEncodedCopyWithItsTimeRange()
    {
        Skip.IfNot(FfmpegTools.Available, "ffmpeg/ffprobe are not installed (scripts/test installs Debian's ffmpeg package).");
        Directory.CreateDirectory(Path.Combine(_dir, "originals"));
        Directory.CreateDirectory(Path.Combine(_dir, "uploads"));
        var original = Path.Combine(_dir, "originals", "clip.mp4");
        Ffmpeg("-f", "lavfi", "-i", "testsrc2=size=192x144:rate=15:duration=4", "-c:v", "libx264", "-pix_fmt", "yuv420p", original);

        // Uploads: a smaller re-encode saved under a misleading name, and an unrelated clip.
        Ffmpeg("-i", original, "-vf", "scale=128:96", "-c:v", "libx264", "-crf", "30", "-pix_fmt", "yuv420p", "-f", "matroska", Path.Combine(_dir, "uploads", "copy.dat"));
        Ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=192x144:rate=15", "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", Path.Combine(_dir, "uploads", "other.mp4"));

        var (exit, hashes, err) = Run("hash", "-f", "jsonl", "--tmk", "--no-progress", original);
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(hashes.Trim());
        var row = doc.RootElement;
        Assert.Equal("video", row.GetProperty("format").GetString());
        Assert.Equal(4, row.GetProperty("vpdq_frames").GetInt32());
        Assert.Equal(60, row.GetProperty("tmk_frames").GetInt32());

        // The video signals go in through both list formats: vpdq and tmk_pdqf (350 KB of base64) in CSV, video_md5 in JSONL.
        var csv = Path.Combine(_dir, "bank.csv");
        File.WriteAllLines(csv,
        [
            "signal_type,signal,name",
            $"vpdq,\"{row.GetProperty("vpdq").GetString()}\",clip",
            $"tmk_pdqf,{row.GetProperty("tmk_pdqf").GetString()},clip",
        ]);
        var jsonl = Path.Combine(_dir, "bank.jsonl");
        File.WriteAllLines(jsonl, [JsonSerializer.Serialize(new { signal_type = "video_md5", signal = row.GetProperty("md5").GetString(), labels = new { name = "clip" } })]);
        Assert.Equal(0, Run("bank", "create", "videos").Exit);
        foreach (var bank in new[] { csv, jsonl })
        {
            var import = Run("bank", "import", "videos", bank);
            Assert.True(import.Exit == 0, import.Err);
        }

        var scan = Run("scan", "-f", "jsonl", "--no-progress", Path.Combine(_dir, "uploads"), original);
        Assert.True(scan.Exit == 0, scan.Err);
        var hits = scan.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.DoesNotContain(hits, h => h.GetProperty("path").GetString()!.EndsWith("other.mp4", StringComparison.Ordinal));
        var copy = hits.Where(h => h.GetProperty("path").GetString()!.EndsWith("copy.dat", StringComparison.Ordinal)).ToList();
        var vpdq = Assert.Single(copy, h => h.GetProperty("signal_type").GetString() == "vpdq");
        var video = vpdq.GetProperty("video");
        Assert.Equal(100, video.GetProperty("query_match_percent").GetDouble());
        var range = Assert.Single(video.GetProperty("matched_ranges").EnumerateArray());
        Assert.Equal(0, range.GetProperty("start").GetDouble());
        Assert.Equal(4, range.GetProperty("end").GetDouble());
        Assert.Contains(copy, h => h.GetProperty("signal_type").GetString() == "tmk_pdqf");

        // The original itself also matches by its file MD5.
        Assert.Contains(hits, h => h.GetProperty("signal_type").GetString() == "video_md5");
    }

    [SkippableFact]
    public void BrokenVideoIsReportedWithItsReason()
    {
        Skip.IfNot(FfmpegTools.Available, "ffmpeg/ffprobe are not installed.");
        var path = Path.Combine(_dir, "broken.mp4");

        // An MP4 header (ftyp) followed by garbage.
        File.WriteAllBytes(path, [0, 0, 0, 0x18, (byte)'f', (byte)'t', (byte)'y', (byte)'p', (byte)'i', (byte)'s', (byte)'o', (byte)'m', .. new byte[4000]]);
        var (exit, _, err) = Run("hash", "--no-progress", path);
        Assert.Equal(1, exit);
        Assert.Contains("video", err, StringComparison.Ordinal);
    }

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var withDb = args[0] is "hash" ? args : [.. args, "--db", Db];
        var exit = WardenCli.Run(withDb, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    private static void Ffmpeg(params string[] args)
    {
        var info = new ProcessStartInfo(FfmpegTools.Ffmpeg) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["-hide_banner", "-loglevel", "error", "-y", .. args])
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var err = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "ffmpeg did not finish");
        Assert.True(p.ExitCode == 0, err);
    }
}
