using System.Net;
using System.Text.Json;
using Warden.FakeCyberTipline;
using Warden.Server.Auth;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Reporting never halts, end to end over HTTP: uploader fields with control characters are filed and
/// delivered to the fake CyberTipline beside other reports; a report that keeps failing ends dead-lettered
/// after the configured attempts, with an alarm on the admin console and in the metrics; admins requeue or
/// cancel it through the API and the console; every step is in the audit log.
/// </summary>
public sealed class ReportOutboxApiTests
{
    private const int MaxAttempts = 3;

    [Fact]
    public async Task Control_characters_are_delivered_beside_other_reports_and_dead_letters_are_requeued_or_cancelled_by_admins()
    {
        await using var h = await ReviewHarness.StartAsync(configure: r =>
        {
            r.CyberTipline.RetryBaseMilliseconds = 20;
            r.CyberTipline.RetryMaxSeconds = 1;
            r.CyberTipline.MaxAttempts = MaxAttempts;
        });
        using var admin = h.Server.Client(Role.Admin);
        await ReviewHarness.SeedBankAsync(admin);
        using var submitter = h.Server.Client(Role.Submitter);
        using var alice = await h.LoginAsync();
        using var root = await h.LoginAsync("root");

        // Three uploaders, one with control characters in its id and file name (%01, %1B, %7F), filed together.
        await UploadAsync(submitter, "bad%01user%1B", "evil%01name%7F.jpg");
        await UploadAsync(submitter, "good-1", "a.jpg");
        await UploadAsync(submitter, "good-2", "b.jpg");
        var cases = await FileAllAsync(alice);
        Assert.Equal(3, cases.Count);
        foreach (var id in cases)
        {
            Assert.Equal("finished", (await ConsoleApiTests.WaitReportAsync(alice, id)).GetProperty("status").GetString());
        }

        var bad = Assert.Single(h.Fake.Reports, r => r.Xml.Contains("bad\uFFFDuser\uFFFD", StringComparison.Ordinal));
        Assert.Equal(FakeReportState.Finished, bad.State);
        Assert.Contains("evil\uFFFDname\uFFFD.jpg", Assert.Single(Assert.Single(bad.Files).FileInfos), StringComparison.Ordinal);
        Assert.Equal(3, h.Fake.Reports.Count(r => r.State == FakeReportState.Finished));

        // A report whose file details never get a readable answer: retracted and filed again, then dead-lettered.
        h.Fake.Inject(new InjectedFailure("fileinfo", FailureMode.Malformed, Times: 100_000));
        await UploadAsync(submitter, "stuck-1", "c.jpg");
        var stuck = Assert.Single(await FileAllAsync(alice));
        var stuckId = await DeliveryIdAsync(alice, stuck);
        var parked = await WaitStatusAsync(admin, stuckId, "dead_lettered");
        Assert.True(parked.GetProperty("needs_attention").GetBoolean());
        Assert.Equal("fileinfo:0", parked.GetProperty("failing_step").GetString());
        Assert.Equal(MaxAttempts - 1, parked.GetProperty("generation").GetInt32());
        Assert.Contains("dead-lettered after 3", parked.GetProperty("last_error").GetString(), StringComparison.Ordinal);

        // The alarm: console notice data for admins only, the gauge, the audit record.
        var listing = await root.GetAsync("deliveries?status=dead_lettered");
        Assert.Equal(1, listing.GetProperty("attention").GetInt32());
        Assert.Equal(stuckId, Assert.Single(listing.GetProperty("deliveries").EnumerateArray()).GetProperty("id").GetInt64());
        using (var forbidden = await alice.Http.GetAsync("review/api/deliveries"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        // The gauge is process-wide (other test servers share it), so only its presence is checked here.
        Assert.Contains("warden_report_deliveries_attention", await admin.GetStringAsync("metrics"), StringComparison.Ordinal);
        Assert.Single((await admin.GetFromJsonAsync<JsonElement>("v1/audit?action=report.dead_letter")).EnumerateArray());

        // Only admins act; unknown ids are 404; a bad reason is 400; a running or finished delivery is not requeued.
        using (var reviewerKey = h.Server.Client(Role.Reviewer))
        {
            using var r = await reviewerKey.PostAsJsonAsync($"v1/reports/{stuckId}/requeue", new { reason = "x" });
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        using (var r = await admin.PostAsJsonAsync("v1/reports/987654/requeue", new { reason = "x" }))
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType!.MediaType);
        }

        using (var r = await admin.PostAsJsonAsync($"v1/reports/{stuckId}/requeue", new { reason = new string('x', 501) }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        }

        var finishedId = await DeliveryIdAsync(alice, cases[0]);
        using (var r = await admin.PostAsJsonAsync($"v1/reports/{finishedId}/requeue", new { reason = "again" }))
        {
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
        }

        using (var r = await admin.PostAsJsonAsync($"v1/reports/{finishedId}/cancel", new { reason = "too late" }))
        {
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
        }

        // The destination recovers; an admin key requeues: the open report is retracted and a fresh one finishes.
        h.Fake.ClearFailures();
        using (var r = await admin.PostAsJsonAsync($"v1/reports/{stuckId}/requeue", new { reason = "NCMEC answered again" }))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("retracting", (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        }

        await WaitStatusAsync(admin, stuckId, "finished");
        Assert.Equal(MaxAttempts, h.Fake.Reports.Count(r => r.Xml.Contains(stuck, StringComparison.Ordinal) && r.State == FakeReportState.Retracted));

        // Another one dead-letters; an admin cancels it from the console (session + CSRF): its report is retracted.
        h.Fake.Inject(new InjectedFailure("fileinfo", FailureMode.Malformed, Times: 100_000));
        await UploadAsync(submitter, "stuck-2", "d.jpg");
        var second = Assert.Single(await FileAllAsync(alice));
        var secondId = await DeliveryIdAsync(alice, second);
        await WaitStatusAsync(admin, secondId, "dead_lettered");
        using (var r = await alice.PostAsync($"deliveries/{secondId}/cancel", new { reason = "reviewer tries" }))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        using (var r = await root.PostAsync($"deliveries/{secondId}/cancel", new { reason = "duplicate of another report" }))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("cancelled", (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        }

        Assert.All(h.Fake.Reports.Where(r => r.Xml.Contains(second, StringComparison.Ordinal)), r => Assert.Equal(FakeReportState.Retracted, r.State));
        Assert.Equal(0, (await root.GetAsync("deliveries")).GetProperty("attention").GetInt32());

        // Every step of a report is audited, with the admin as the actor of requeue and cancel.
        var audit = (await admin.GetFromJsonAsync<JsonElement>("v1/audit?limit=10000")).EnumerateArray().ToList();
        var actions = audit.Select(a => a.GetProperty("action").GetString()).ToHashSet();
        foreach (var step in new[] { "report.file", "report.submit", "report.upload", "report.fileinfo", "report.finish", "report.retract", "report.retry", "report.restart", "report.dead_letter", "report.requeue", "report.cancel" })
        {
            Assert.Contains(step, actions);
        }

        Assert.StartsWith("key:", audit.Single(a => a.GetProperty("action").GetString() == "report.requeue").GetProperty("actor").GetString(), StringComparison.Ordinal);
        Assert.Equal("root", audit.Single(a => a.GetProperty("action").GetString() == "report.cancel").GetProperty("actor").GetString());
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("v1/audit/verify")).GetProperty("ok").GetBoolean());
    }

    private static async Task UploadAsync(HttpClient submitter, string uploader, string fileName)
    {
        using var r = await submitter.PostAsync($"v1/match?uploader_id={uploader}&uploader_ip=192.0.2.44&content_url=https://example.org/p/1&uploaded_at=2026-01-02T03:04:05Z&file_name={fileName}", new ByteArrayContent(Media.Jpeg(1)));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.True((await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("matched").GetBoolean());
    }

    /// <summary>Confirms every cluster of every queued case and files each; returns the case ids.</summary>
    private static async Task<List<string>> FileAllAsync(ConsoleClient reviewer)
    {
        var ids = new List<string>();
        foreach (var row in (await reviewer.GetAsync("queue")).EnumerateArray())
        {
            var id = row.GetProperty("id").GetString()!;
            foreach (var cluster in (await reviewer.GetAsync("cases/" + id)).GetProperty("clusters").EnumerateArray())
            {
                using var d = await reviewer.PostAsync($"cases/{id}/clusters/{cluster.GetProperty("id").GetString()}/decision", new { verdict = "confirmed", classification = "A1" });
                Assert.Equal(HttpStatusCode.OK, d.StatusCode);
            }

            using var file = await reviewer.PostAsync($"cases/{id}/report");
            Assert.Equal(HttpStatusCode.OK, file.StatusCode);
            ids.Add(id);
        }

        return ids;
    }

    private static async Task<long> DeliveryIdAsync(ConsoleClient reviewer, string caseId) =>
        (await reviewer.GetAsync($"cases/{caseId}/report")).GetProperty("delivery_id").GetInt64();

    private static async Task<JsonElement> WaitStatusAsync(HttpClient admin, long id, string status)
    {
        JsonElement last = default;
        await WaitAsync(async () =>
        {
            last = (await admin.GetFromJsonAsync<JsonElement>($"v1/reports/{id}")).GetProperty("delivery");
            return last.GetProperty("status").GetString() == status;
        });
        return last;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 600; i++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the condition never held");
    }
}
