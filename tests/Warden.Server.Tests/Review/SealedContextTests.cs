using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.FakeCyberTipline;
using Warden.Server.Auth;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Upload context that is evidence (uploader IP, content URL, original file name) is stored sealed like the
/// media: none of it is in the database file or its WAL, in any form; the console and the report open it;
/// rows an older version wrote in plaintext are sealed at start and the file is rebuilt.
/// </summary>
public sealed class SealedContextTests
{
    [Fact]
    public async Task Generated_upload_context_is_in_no_byte_of_the_database_but_the_console_and_the_report_show_it()
    {
        var rng = new Random(Environment.TickCount);
        var dir = Path.Combine(Path.GetTempPath(), "warden-review-" + Guid.NewGuid().ToString("N"));
        await using var h = await ReviewHarness.StartAsync(dir: dir);
        using var admin = h.Server.Client(Role.Admin);
        await ReviewHarness.SeedBankAsync(admin);
        using var submitter = h.Server.Client(Role.Submitter);
        var contexts = new List<(string Uploader, string Ip, string Url, string FileName)>();
        for (var i = 0; i < 6; i++)
        {
            // Every member of the class: IPv4 and IPv6, URLs with paths, queries and escapes, file names in other scripts.
            var token = Guid.NewGuid().ToString("N")[..12];
            var ip = i % 2 == 0
                ? string.Join('.', Enumerable.Range(0, 4).Select(_ => rng.Next(100, 255).ToString(CultureInfo.InvariantCulture)))
                : IPAddress.Parse(string.Join(':', Enumerable.Range(0, 8).Select(_ => rng.Next(0x1000, 0xffff).ToString("x4", CultureInfo.InvariantCulture)))).ToString();
            var url = $"https://h{token}.example/p/{token}?q=x{i}&r=%C3%BC";
            var fileName = i % 3 == 0 ? $"ü-名前-{token}.jpg" : $"IMG_{token}.jpeg";
            var uploader = "ctx-" + i;
            contexts.Add((uploader, ip, url, fileName));
            using var r = await submitter.PostAsync($"v1/match?uploader_id={uploader}&uploader_ip={Uri.EscapeDataString(ip)}&content_url={Uri.EscapeDataString(url)}&file_name={Uri.EscapeDataString(fileName)}", new ByteArrayContent(Media.Jpeg(1)));
            r.EnsureSuccessStatusCode();
        }

        // The console opens the context (the case is read for a person).
        using var alice = await h.LoginAsync();
        var queue = await alice.GetAsync("queue");
        Assert.Equal(contexts.Count, queue.GetArrayLength());
        string? reportedCase = null;
        foreach (var row in queue.EnumerateArray())
        {
            var k = await alice.GetAsync("cases/" + row.GetProperty("id").GetString());
            var rep = k.GetProperty("clusters")[0].GetProperty("representative");
            var expected = contexts.Single(c => c.Uploader == k.GetProperty("uploader_id").GetString());
            Assert.Equal(expected.Ip, rep.GetProperty("ip").GetString());
            Assert.Equal(expected.Url, rep.GetProperty("url").GetString());
            Assert.Equal(expected.FileName, rep.GetProperty("file_name").GetString());
            reportedCase ??= k.GetProperty("id").GetString();
        }

        // The report opens it too: the IP reaches the CyberTipline.
        var cluster = (await alice.GetAsync("cases/" + reportedCase)).GetProperty("clusters")[0].GetProperty("id").GetString();
        (await alice.PostAsync($"cases/{reportedCase}/clusters/{cluster}/decision", new { verdict = "confirmed", classification = "A1" })).EnsureSuccessStatusCode();
        (await alice.PostAsync($"cases/{reportedCase}/report")).EnsureSuccessStatusCode();
        var uploaderOfReport = (await alice.GetAsync("cases/" + reportedCase)).GetProperty("uploader_id").GetString();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!h.Fake.Reports.Any(r => r.State == FakeReportState.Finished) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var xml = Assert.Single(h.Fake.Reports).Xml;
        Assert.Contains(contexts.Single(c => c.Uploader == uploaderOfReport).Ip, xml, StringComparison.Ordinal);

        await h.Server.App.StopAsync();
        SqliteConnection.ClearAllPools();
        AssertNotInDatabaseFiles(dir, contexts.SelectMany(c => new[] { c.Ip, c.Url, c.FileName }));
    }

    [Fact]
    public async Task Context_an_older_version_wrote_in_plaintext_is_sealed_at_start_and_leaves_no_trace_in_the_file()
    {
        var dir = Path.Combine(Path.GetTempPath(), "warden-review-" + Guid.NewGuid().ToString("N"));
        const string Ip = "203.0.113.219";
        var url = "https://old.example/" + Guid.NewGuid().ToString("N");
        var fileName = "legacy-" + Guid.NewGuid().ToString("N") + ".png";
        string caseId;
        await using (var h = await ReviewHarness.StartAsync(dir: dir))
        {
            await h.SeedCaseAsync();
            using var alice = await h.LoginAsync();
            var k = await alice.FirstCaseAsync();
            caseId = k.GetProperty("id").GetString()!;
            var clusterId = k.GetProperty("clusters")[0].GetProperty("id").GetString()!;
            await h.Server.App.StopAsync();
            SqliteConnection.ClearAllPools();

            // As an older version wrote it: the context in plaintext in the event body.
            using (var c = new SqliteConnection("Data Source=" + Path.Combine(dir, "warden.db")))
            {
                var body = JsonSerializer.Serialize(new
                {
                    id = "legacy-1",
                    uploader = "u1",
                    receivedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                    pdq = (string?)null,
                    hashes = new Dictionary<string, string> { ["sha256"] = new string('a', 64) },
                    matches = new[] { new { bank = "known", signalType = "sha256", distance = 0, labels = new Dictionary<string, string>() } },
                    ip = Ip,
                    url,
                    uploadedAt = (long?)null,
                    fileName,
                    evidence = (string?)null,
                });
                c.Execute("INSERT INTO case_events(kind, case_id, cluster_id, body, at_ms) VALUES ('submission', @caseId, @clusterId, @body, 0)", new { caseId, clusterId, body });
            }

            SqliteConnection.ClearAllPools();
            System.IO.Directory.Move(dir, dir + ".keep"); // dispose deletes the folder
        }

        System.IO.Directory.Move(dir + ".keep", dir);
        await using (var again = await ReviewHarness.StartAsync(dir: dir))
        {
            using var root = await again.LoginAsync("root");
            var k = await root.GetAsync("cases/" + caseId);
            var legacy = k.GetProperty("clusters").EnumerateArray().SelectMany(c => c.GetProperty("members").EnumerateArray()).Any(m => m.GetProperty("submission_id").GetString() == "legacy-1");
            Assert.True(legacy);
            await again.Server.App.StopAsync();
            SqliteConnection.ClearAllPools();
            AssertNotInDatabaseFiles(dir, [Ip, url, fileName]);
        }
    }

    /// <summary>Neither the text nor its JSON-escaped form in the database file, its WAL or its shared memory.</summary>
    private static void AssertNotInDatabaseFiles(string dir, IEnumerable<string> values)
    {
        var files = System.IO.Directory.GetFiles(dir, "warden.db*");
        Assert.NotEmpty(files);
        var bytes = files.Select(File.ReadAllBytes).ToList();
        foreach (var v in values)
        {
            foreach (var form in new[] { v, JsonSerializer.Serialize(v).Trim('"'), Uri.EscapeDataString(v) }.Distinct())
            {
                var needle = Encoding.UTF8.GetBytes(form);
                Assert.All(bytes, b => Assert.True(b.AsSpan().IndexOf(needle) < 0, $"'{form}' is in the database files"));
            }
        }
    }
}
