using System.Net;
using System.Text.Json;
using Warden.Review.Evidence;
using Warden.Review.Users;
using Warden.Server.Auth;

namespace Warden.Server.Tests.Review;

/// <summary>The review console's JSON API end to end over HTTP (the browser flow is in ConsoleBrowserTests).</summary>
public sealed class ConsoleApiTests
{
    [Fact]
    public async Task Matches_become_a_clustered_case_that_is_reviewed_decided_and_reported()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();

        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        Assert.Equal("u1", k.GetProperty("uploader_id").GetString());
        Assert.Equal(3, k.GetProperty("items").GetInt32());
        var clusters = k.GetProperty("clusters");
        Assert.Equal(2, clusters.GetArrayLength()); // image 1 and its re-encode cluster together (PDQ ≤ 10)
        Assert.Equal(2, clusters[0].GetProperty("count").GetInt32());
        Assert.Contains("192.0.2.1", k.GetProperty("ips").EnumerateArray().Select(x => x.GetString()));
        var rep = clusters[0].GetProperty("representative");
        Assert.Equal("known", rep.GetProperty("matches")[0].GetProperty("bank").GetString());
        var item = rep.GetProperty("item").GetString()!;

        // By default the media is a server-made obscured derivative (a PNG, never the upload's bytes), and each
        // fetch is an 'obscured' view by the person. RevealTests covers this in depth.
        using var media = await alice.Http.GetAsync($"review/api/cases/{caseId}/items/{item}/media");
        Assert.Equal("image/png", media.Content.Headers.ContentType!.MediaType);
        Assert.NotEqual(Media.Jpeg(1), await media.Content.ReadAsByteArrayAsync());
        Assert.Contains(h.Review.Vault!.Views(item), v => v.Actor == "alice" && v.What == "obscured");
        Assert.False(h.Review.Vault.ViewedByEsp(item));

        using (var reveal = await alice.PostAsync($"cases/{caseId}/items/{item}/reveal"))
        {
            Assert.Equal(HttpStatusCode.OK, reveal.StatusCode);
            var url = (await reveal.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("original_url").GetString()!;
            Assert.Equal(Media.Jpeg(1), await alice.Http.GetByteArrayAsync(url.TrimStart('/'))); // the original, once
        }

        Assert.Contains(h.Review.Vault.Views(item), v => v.Actor == "alice" && v.What == "revealed" && v.ActorKind == ActorKind.Human);

        var c0 = clusters[0].GetProperty("id").GetString();
        var c1 = clusters[1].GetProperty("id").GetString();
        using (var d = await alice.PostAsync($"cases/{caseId}/clusters/{c0}/decision", new { verdict = "confirmed", classification = "A1", annotations = new[] { "generativeAi" }, incident_type = "Child Pornography (possession, manufacture, and distribution)" }))
        {
            Assert.Equal(HttpStatusCode.OK, d.StatusCode);
            Assert.False((await d.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("decided_without_viewing").GetBoolean());
        }

        using (var early = await alice.PostAsync($"cases/{caseId}/report"))
        {
            Assert.Equal(HttpStatusCode.Conflict, early.StatusCode); // a cluster is undecided
        }

        using (var d = await alice.PostAsync($"cases/{caseId}/clusters/{c1}/decision", new { verdict = "confirmed", classification = "B1" }))
        {
            Assert.True((await d.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("decided_without_viewing").GetBoolean()); // policy allows; the record says so
        }

        using (var bad = await alice.PostAsync($"cases/{caseId}/clusters/{c1}/decision", new { verdict = "confirmed", classification = "Z9" }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        using (var file = await alice.PostAsync($"cases/{caseId}/report"))
        {
            Assert.Equal(HttpStatusCode.OK, file.StatusCode);
        }

        var report = await WaitReportAsync(alice, caseId);
        Assert.Equal("finished", report.GetProperty("status").GetString());
        var fake = Assert.Single(h.Fake.Reports);
        Assert.Equal(fake.ReportId.ToString(System.Globalization.CultureInfo.InvariantCulture), report.GetProperty("report_id").GetString());
        Assert.Equal(3, fake.Files.Count);
        Assert.Contains("<reportingPerson>", report.GetProperty("document").GetString() ?? "", StringComparison.Ordinal); // the XML is shown
        Assert.NotEqual(0, report.GetProperty("receipts").GetArrayLength());
        // fileViewedByEsp comes from the view log: only the revealed representative was viewed.
        var viewed = fake.Files.SelectMany(f => f.FileInfos).Count(x => x.Contains("<fileViewedByEsp>true</fileViewedByEsp>", StringComparison.Ordinal));
        Assert.Equal(1, viewed);
        Assert.Equal(0, (await alice.GetAsync("queue")).GetArrayLength()); // reported cases leave the queue
        Assert.NotNull(h.Review.Vault.Get(item)!.ReportedAt); // the post-report retention clock started

        // Audit: every view, decision and the report, hash-chained, readable by admin keys only.
        using var admin = h.Server.Client(Role.Admin);
        var audit = await admin.GetFromJsonAsync<JsonElement>("v1/audit");
        var actions = audit.EnumerateArray().Select(a => a.GetProperty("action").GetString()).ToList();
        Assert.Contains("evidence.view", actions);
        Assert.Contains("review.decide", actions);
        Assert.Contains("report.file", actions);
        Assert.Contains("user.login", actions);
        var decisions = await admin.GetFromJsonAsync<JsonElement>("v1/audit?action=review.decide&actor=alice");
        Assert.Equal(2, decisions.GetArrayLength());
        var csv = await admin.GetStringAsync("v1/audit?format=csv&action=report.file");
        Assert.StartsWith("seq,at,actor,action,subject,details,prev_hash,hash", csv, StringComparison.Ordinal);
        Assert.Contains("report.file", csv, StringComparison.Ordinal);
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("v1/audit/verify")).GetProperty("ok").GetBoolean());
        using var reviewerKey = h.Server.Client(Role.Reviewer);
        Assert.Equal(HttpStatusCode.Forbidden, (await reviewerKey.GetAsync("v1/audit")).StatusCode);
    }

    [Fact]
    public async Task State_changes_need_the_csrf_token()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var path = $"cases/{k.GetProperty("id").GetString()}/clusters/{k.GetProperty("clusters")[0].GetProperty("id").GetString()}/decision";

        using var none = new HttpRequestMessage(HttpMethod.Post, "review/api/" + path) { Content = JsonContent.Create(new { verdict = "confirmed" }) };
        using var noneResponse = await alice.Http.SendAsync(none);
        Assert.Equal(HttpStatusCode.Forbidden, noneResponse.StatusCode);
        using var wrong = await alice.PostAsync(path, new { verdict = "confirmed" }, csrf: "not-the-token");
        Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        Assert.Equal(JsonValueKind.Null, (await alice.FirstCaseAsync()).GetProperty("clusters")[0].GetProperty("decision").ValueKind);
        using var right = await alice.PostAsync(path, new { verdict = "confirmed" });
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
    }

    [Fact]
    public async Task Only_logged_in_reviewers_and_admins_reach_the_console()
    {
        await using var h = await ReviewHarness.StartAsync();
        h.Review.Store.CreateUser("sub", "submitter", PasswordHashing.Hash(ReviewHarness.Password));

        // API keys, even admin ones, do not open the console; nor does no session.
        foreach (var role in new Role?[] { null, Role.Submitter, Role.Curator, Role.Admin })
        {
            using var c = h.Server.Client(role);
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("review/api/queue")).StatusCode);
        }

        using var anon = ConsoleClient.Anonymous(h.Server.BaseAddress);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.PostAsJsonAsync("review/api/login", new { username = "sub", password = ReviewHarness.Password })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.PostAsJsonAsync("review/api/login", new { username = "alice", password = "wrong password!" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.PostAsJsonAsync("review/api/login", new { username = "nobody", password = "whatever12345" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("review/api/queue")).StatusCode);
        Assert.Contains(h.Review.Audit.Query(new(Action: "user.login_failed")), a => a.Actor == "alice");

        using var root = await h.LoginAsync("root");
        Assert.Equal(JsonValueKind.Array, (await root.GetAsync("queue")).ValueKind);
        using (var logout = await root.PostAsync("logout"))
        {
            Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await root.Http.GetAsync("review/api/queue")).StatusCode);

        // The page itself is static and carries a strict CSP; it holds no data.
        using var page = await anon.GetAsync("review");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reveals_stop_at_the_daily_exposure_cap()
    {
        await using var h = await ReviewHarness.StartAsync(configure: r => r.DailyExposureCap = 1);
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString();
        var items = k.GetProperty("clusters").EnumerateArray().Select(c => c.GetProperty("representative").GetProperty("item").GetString()).ToList();
        using var first = await alice.PostAsync($"cases/{id}/items/{items[0]}/reveal");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await alice.PostAsync($"cases/{id}/items/{items[1]}/reveal");
        Assert.Equal((HttpStatusCode)429, second.StatusCode);
        Assert.Equal("exposure_cap", (await second.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("code").GetString());
        Assert.False(h.Review.Vault!.ViewedByEsp(items[1]!));

        // Another reviewer has their own counter.
        using var root = await h.LoginAsync("root");
        using var other = await root.PostAsync($"cases/{id}/items/{items[1]}/reveal");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task Without_preservation_cases_hold_signals_only_and_decisions_say_no_one_viewed()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        await h.SeedCaseAsync();
        Assert.Null(h.Review.Vault);
        Assert.False(System.IO.Directory.Exists(Path.Combine(h.Directory, "evidence")));
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var c = k.GetProperty("clusters")[0];
        Assert.Equal(JsonValueKind.Null, c.GetProperty("representative").GetProperty("item").ValueKind);
        Assert.Equal(64, c.GetProperty("representative").GetProperty("hashes").GetProperty("sha256").GetString()!.Length);
        using var d = await alice.PostAsync($"cases/{k.GetProperty("id").GetString()}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "confirmed", classification = "A2" });
        Assert.True((await d.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("decided_without_viewing").GetBoolean());
    }

    [Fact]
    public async Task With_case_intake_off_matches_open_no_case_and_keep_no_media()
    {
        await using var h = await ReviewHarness.StartAsync(configure: r => r.CaseIntake = false);
        await h.SeedCaseAsync(); // the uploads still match
        using var alice = await h.LoginAsync();
        Assert.Equal(0, (await alice.GetAsync("queue")).GetArrayLength());
        Assert.Empty(new DbEvidenceCatalog(h.Review.Database).Live());
    }

    [Fact]
    public async Task Decisions_can_require_viewing_by_policy()
    {
        await using var h = await ReviewHarness.StartAsync(configure: r => r.AllowDecisionWithoutViewing = false);
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString();
        var c = k.GetProperty("clusters")[0];
        using var refused = await alice.PostAsync($"cases/{id}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "confirmed" });
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        (await alice.PostAsync($"cases/{id}/items/{c.GetProperty("representative").GetProperty("item").GetString()}/reveal")).Dispose();
        using var ok = await alice.PostAsync($"cases/{id}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "confirmed" });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A_false_positive_goes_to_the_allow_list_and_stops_matching()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString();
        foreach (var c in k.GetProperty("clusters").EnumerateArray())
        {
            using var d = await alice.PostAsync($"cases/{id}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "false_positive" });
            Assert.Equal(HttpStatusCode.OK, d.StatusCode);
        }

        using var admin = h.Server.Client(Role.Admin);
        var banks = await admin.GetFromJsonAsync<JsonElement>("v1/banks");
        Assert.Contains(banks.EnumerateArray(), b => b.GetProperty("name").GetString() == "review-false-positives" && b.GetProperty("kind").GetString() == "allow");
        using var submitter = h.Server.Client(Role.Submitter);
        var matched = true;
        for (var i = 0; i < 100 && matched; i++)
        {
            matched = await ReviewHarness.UploadAsync(submitter, Media.Jpeg(1), "u2", 9);
            await Task.Delay(100);
        }

        Assert.False(matched);
        using var close = await alice.PostAsync($"cases/{id}/close");
        Assert.Equal(HttpStatusCode.NoContent, close.StatusCode);
    }

    [Fact]
    public async Task Cases_and_decisions_survive_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "warden-review-" + Guid.NewGuid().ToString("N"));
        string caseId, clusterId;
        await using (var h = await ReviewHarness.StartAsync(dir: dir))
        {
            await h.SeedCaseAsync();
            using var alice = await h.LoginAsync();
            var k = await alice.FirstCaseAsync();
            caseId = k.GetProperty("id").GetString()!;
            clusterId = k.GetProperty("clusters")[0].GetProperty("id").GetString()!;
            (await alice.PostAsync($"cases/{caseId}/clusters/{clusterId}/decision", new { verdict = "confirmed", classification = "B2" })).Dispose();
            await h.Server.App.StopAsync();
            System.IO.Directory.Move(dir, dir + ".keep"); // dispose deletes the folder
        }

        System.IO.Directory.Move(dir + ".keep", dir);
        await using var again = await ReviewHarness.StartAsync(dir: dir);
        using var root = await again.LoginAsync("root");
        var same = await root.GetAsync("cases/" + caseId);
        Assert.Equal(3, same.GetProperty("items").GetInt32());
        Assert.Equal(clusterId, same.GetProperty("clusters")[0].GetProperty("id").GetString());
        Assert.Equal("B2", same.GetProperty("clusters")[0].GetProperty("decision").GetProperty("classification").GetString());

        // New uploads of the same uploader join the replayed case and its clusters.
        using var submitter = again.Server.Client(Role.Submitter);
        Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(1, quality: 75), "u1", 4));
        var grown = await root.GetAsync("cases/" + caseId);
        Assert.Equal(3, grown.GetProperty("clusters")[0].GetProperty("count").GetInt32());
    }

    [Theory]
    [InlineData("uploader_ip=not-an-ip")]
    [InlineData("content_url=relative/path")]
    [InlineData("uploaded_at=yesterday")]
    public async Task Malformed_uploader_context_is_a_400(string query)
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        using var submitter = h.Server.Client(Role.Submitter);
        using var r = await submitter.PostAsync("v1/match?uploader_id=u&" + query, new ByteArrayContent(Media.Jpeg(5)));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
    }

    internal static async Task<JsonElement> WaitReportAsync(ConsoleClient client, string caseId)
    {
        for (var i = 0; i < 300; i++)
        {
            var r = await client.GetAsync($"cases/{caseId}/report");
            if (r.GetProperty("status").GetString() is "finished" or "failed")
            {
                return r;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the report was not delivered");
    }
}
