using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Banks;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Undo through the console, on SQLite and PostgreSQL: the decision's exchange opinion still in the outbox is
/// cancelled and the answer says so; a crash-recovery pass (the reconciler) does not queue it again; a decision
/// queues no webhook and no report, so nothing else is left behind; the report filed after an undo and a new
/// decision carries the new decision only.
/// </summary>
public sealed class UndoConsoleTests
{
    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Undo_recalls_queued_feedback_leaves_nothing_pending_and_the_report_uses_the_new_decision(SqlDialect dialect)
    {
        await using var h = await ReviewHarness.StartAsync(configure: r => r.CyberTipline.IndustryClassificationMou = true, dialect: dialect);
        var services = h.Server.App.Services;
        var exchanges = services.GetRequiredService<ExchangeStore>();
        var banks = services.GetRequiredService<BankStore>();
        var server = services.GetRequiredService<ServerStore>();
        server.CreateWebhook("http://127.0.0.1:9/hook", "a-webhook-secret-of-some-length");
        using var admin = h.Server.Client(Role.Admin);
        await ReviewHarness.SeedBankAsync(admin);

        // An NCMEC exchange with feedback on fills bank "ncmec-fb"; its entry for image 1 names (member, entry).
        // Its base URL refuses connections: a send attempt fails and the opinion stays queued.
        var bank = banks.CreateBank("ncmec-fb");
        var x = exchanges.Create("ncmec-fb", "ncmec", bank.Id, """{"environment":"test_Industry","base_url":"http://127.0.0.1:9/hashsharing","credentials_env":"UNUSED"}""", intervalSeconds: 86_400, feedbackEnabled: true);
        var pdq = await ReviewHarness.PdqAsync(admin, Media.Jpeg(1));
        banks.Import(bank.Id, [new BankEntryRecord("pdq", pdq, new Dictionary<string, string> { ["ncmec_member"] = "9001", ["ncmec_entry_id"] = "img-1", ["classification"] = "A1" }, null)], "test");
        for (var i = 0; i < 100 && !(await admin.GetFromJsonAsync<JsonElement>("v1/match?signal_type=pdq&signal=" + pdq)).GetProperty("hits").EnumerateArray().Any(e => e.GetProperty("bank").GetString() == "ncmec-fb"); i++)
        {
            await Task.Delay(100);
        }

        using (var submitter = h.Server.Client(Role.Submitter))
        {
            Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(1), "u1", 1));
            Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(2), "u1", 2));
        }

        var webhooksBefore = server.ListDeliveries(null, 10_000).Count;
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString()!;
        var clusters = k.GetProperty("clusters").EnumerateArray().ToList();
        var c1 = clusters.Single(c => c.GetProperty("representative").GetProperty("pdq").GetString() == pdq).GetProperty("id").GetString()!;
        var c2 = clusters.Single(c => c.GetProperty("id").GetString() != c1).GetProperty("id").GetString()!;

        // Several rounds of decide → undo on the exchange-linked cluster, with either verdict.
        foreach (var verdict in new[] { "confirmed", "false_positive", "confirmed" })
        {
            using (var d = await alice.PostAsync($"cases/{id}/clusters/{c1}/decision", new { verdict, classification = verdict == "confirmed" ? "A1" : null }))
            {
                Assert.Equal(HttpStatusCode.OK, d.StatusCode);
            }

            var queued = exchanges.ListFeedback(x.Id, 1000).Where(f => f.Status == "pending").ToList();
            var opinion = Assert.Single(queued);
            Assert.Equal(verdict == "confirmed" ? "true_positive" : "false_positive", opinion.Opinion);

            using var undo = await alice.PostAsync($"cases/{id}/clusters/{c1}/undo");
            Assert.Equal(HttpStatusCode.OK, undo.StatusCode);
            var body = await undo.Content.ReadFromJsonAsync<JsonElement>();
            var fb = body.GetProperty("feedback");
            var row = Assert.Single(fb.GetProperty("opinions").EnumerateArray());
            Assert.Equal("ncmec-fb", row.GetProperty("exchange").GetString());
            Assert.Equal("9001-img-1", row.GetProperty("entry").GetString());

            // The scheduler may have been trying to send it at that very moment: then it is reported as such.
            var outcome = row.GetProperty("outcome").GetString();
            Assert.True(outcome is "cancelled" or "in_flight", outcome);
            Assert.Equal(ExchangeStore.RecalledStatus, exchanges.ListFeedback(x.Id, 1000).Single(f => f.Id == opinion.Id).Status);
            Assert.Contains(outcome == "cancelled" ? "cancelled before they went out" : "cannot take one back", body.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Contains(h.Review.Audit.Query(new(Action: "review.undo")), a => a.Details["verdict"] == verdict && a.Details["feedback_cancelled"] == (outcome == "cancelled" ? "1" : "0"));

            // Crash recovery replays decision events: an undone decision is not queued again.
            Assert.Equal(0, h.Review.ReconcileDecisionFeedback());
            Assert.DoesNotContain(exchanges.ListFeedback(x.Id, 1000), f => f.Status == "pending");
        }

        // Decisions queued no webhook, and no report exists before filing.
        Assert.Equal(webhooksBefore, server.ListDeliveries(null, 10_000).Count);
        Assert.Equal(JsonValueKind.Null, (await alice.GetAsync("cases/" + id)).GetProperty("report").ValueKind);

        // The final decisions: the report is built from them (B2, not the undone A1).
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c1}/decision", new { verdict = "confirmed", classification = "B2" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c2}/decision", new { verdict = "confirmed", classification = "B1" })).StatusCode);
        Assert.Single(exchanges.ListFeedback(x.Id, 1000), f => f.Status == "pending" && f.Opinion == "true_positive");
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/report")).StatusCode);
        var report = await ConsoleApiTests.WaitReportAsync(alice, id);
        Assert.Equal("finished", report.GetProperty("status").GetString());
        // What the CyberTipline received: the file details of the finished report.
        var received = Assert.Single(h.Fake.Reports, r => r.ReportId.ToString(System.Globalization.CultureInfo.InvariantCulture) == report.GetProperty("report_id").GetString());
        var xml = string.Join('\n', received.Files.SelectMany(f => f.FileInfos));
        Assert.Contains("<industryClassification>B2</industryClassification>", xml, StringComparison.Ordinal);
        Assert.Contains("<industryClassification>B1</industryClassification>", xml, StringComparison.Ordinal);
        Assert.DoesNotContain("<industryClassification>A1</industryClassification>", xml, StringComparison.Ordinal);
        Assert.Equal(webhooksBefore, server.ListDeliveries(null, 10_000).Count);
    }
}
