using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Warden.Core.Hashing.Video;
using Warden.Server.Api;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>Videos through the API: hashed from memory (ffmpeg reads an in-memory file), banked by vPDQ, matched with time ranges.</summary>
public sealed class VideoApiTests
{
    private static byte[] Clip(string filter, string crf)
    {
        var path = Path.Combine(Path.GetTempPath(), $"warden-clip-{Guid.NewGuid():N}.mp4");
        try
        {
            var info = new ProcessStartInfo(FfmpegTools.Ffmpeg) { RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-v", "error", "-f", "lavfi", "-i", filter, "-t", "4", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", crf, "-g", "30", "-y", path })
            {
                info.ArgumentList.Add(a);
            }

            using var p = Process.Start(info)!;
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, err);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task<JsonElement> PostAsync(HttpClient client, string url, byte[] data)
    {
        using var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("video/mp4");
        var response = await client.PostAsync(url, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_reencoded_video_matches_its_banked_vpdq_with_time_ranges(SqlDialect dialect)
    {
        Skip.IfNot(FfmpegTools.Available, "ffmpeg/ffprobe are not installed (scripts/test installs Debian's ffmpeg)");
        Skip.IfNot(MemoryFile.Supported, "in-memory files need Linux");
        var original = Clip("testsrc2=size=320x240:rate=25", "18");
        var copy = Clip("testsrc2=size=320x240:rate=25", "35");
        var unrelated = Clip("mandelbrot=size=320x240:rate=25", "23");

        await using var server = await TestServer.StartAsync(dialect);
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);

        var hashed = await PostAsync(submitter, "v1/hash", original);
        Assert.Equal("video", hashed.GetProperty("content_kind").GetString());
        var video = hashed.GetProperty("video");
        Assert.Equal(320, video.GetProperty("width").GetInt32());
        Assert.True(video.GetProperty("frames").GetInt32() >= 3);
        var vpdq = video.GetProperty("vpdq").GetString()!;

        Assert.Equal(HttpStatusCode.Created, (await curator.PostAsJsonAsync("v1/banks", new { name = "videos" })).StatusCode);
        var added = await curator.PostAsJsonAsync("v1/banks/videos/entries", new { signal_type = "vpdq", signal = vpdq });
        Assert.True(added.StatusCode == HttpStatusCode.Created, await added.Content.ReadAsStringAsync());

        JsonElement match = default;
        for (var i = 0; i < 50; i++)
        {
            match = await PostAsync(submitter, "v1/match", copy);
            if (match.GetProperty("matched").GetBoolean())
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.True(match.GetProperty("matched").GetBoolean(), match.GetRawText());
        var hit = match.GetProperty("hits").EnumerateArray().Single(h => h.GetProperty("signal_type").GetString() == "vpdq");
        Assert.True(hit.GetProperty("query_match_percent").GetDouble() >= 80);
        Assert.NotEmpty(hit.GetProperty("time_ranges").EnumerateArray());

        var other = await PostAsync(submitter, "v1/match", unrelated);
        Assert.DoesNotContain(other.GetProperty("hits").EnumerateArray(), h => h.GetProperty("signal_type").GetString() == "vpdq");

        // A truncated video is a clear 4xx, not a 500.
        using var truncated = new ByteArrayContent(original[..(original.Length / 3)]);
        var bad = await submitter.PostAsync("v1/match", truncated);
        Assert.True((int)bad.StatusCode is >= 400 and < 500 || bad.StatusCode == HttpStatusCode.OK, $"{(int)bad.StatusCode}: {await bad.Content.ReadAsStringAsync()}");
    }
}
