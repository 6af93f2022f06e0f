using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Xunit;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Tests.Exchanges;
using Warden.Server.Auth;
using Warden.Server.Tests.Review;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Exchanges;

/// <summary>
/// A reviewer's decision on a hit from an exchange-sourced entry travels back to that exchange as its opinion:
/// through the console, the durable outbox and the scheduler, to the fake NCMEC server, once, and only for
/// exchanges that opted in.
/// </summary>
public sealed class ReviewFeedbackTests
{
    private const string NotCsam = "5a6b7c8d-0000-4000-8000-00000000000b";

    private static string Reasons(string type) => $"""
        <availableFeedbackReasons xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
          <reason guid="5a6b7c8d-0000-4000-8000-00000000000a" name="Unrelated content" type="{type}"/>
          <reason guid="{NotCsam}" name="Not CSAM" type="{type}"/>
        </availableFeedbackReasons>
        """;

    // NCMEC's lists carry MD5; it identifies content here, it protects nothing.
#pragma warning disable CA5351
    private static string Md5(byte[] data) => Convert.ToHexStringLower(MD5.HashData(data));
#pragma warning restore CA5351

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task WaitForAsync(Func<Task<bool>> done, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await done())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException(what);
            }

            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Decisions_in_the_console_become_NCMEC_feedback_once_for_opted_in_exchanges_only()
    {
        Environment.SetEnvironmentVariable("Warden__Exchanges__PollSeconds", "0.2");
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        await using var ncmec = new FakeNcmecServer();
        var variable = "WARDEN_TEST_NCMEC_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, ncmec.User + ":" + ncmec.Password);
        foreach (var type in new[] { "MD5", "SHA1", "PDQ" })
        {
            ncmec.Fixed[$"/v2/feedback/{type}/reasons"] = Reasons(type);
        }

        using var admin = h.Server.Client(Role.Admin);
        await ReviewHarness.SeedBankAsync(admin); // a bank no exchange fills: its hits send nothing

        // Two members' entries share the entry id "img-7": the decision must name each by (member, entry).
        var t = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeSeconds();
        var images = new[] { Media.Jpeg(1), Media.Jpeg(2) };
        var members = new[] { 9101L, 9102L };
        for (var i = 0; i < 2; i++)
        {
            ncmec.Put(new FakeEntry(members[i], "img-7", false, t + i, "A1", new Dictionary<string, string?>
            {
                ["md5"] = Md5(images[i]),
                ["pdq"] = await ReviewHarness.PdqAsync(admin, images[i]),
            }));
        }

        var start = DateTimeOffset.FromUnixTimeSeconds(t - 60).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        using var curator = h.Server.Client(Role.Curator);
        foreach (var (name, feedback) in new[] { ("ncmec-on", true), ("ncmec-off", false) })
        {
            var created = await curator.PostAsync("v1/exchanges", Json($$$"""
                {"name":"{{{name}}}","type":"ncmec","bank":"{{{name}}}-bank","interval_seconds":3600,"feedback":{{{(feedback ? "true" : "false")}}},
                 "config":{"environment":"test_Industry","base_url":"{{{ncmec.BaseUrl}}}","credentials_env":"{{{variable}}}","start_time":"{{{start}}}","feedback_reason":"not csam"}}
                """));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        // Both banks synced and in the live index: each upload hits md5 and pdq in both, and PDQ in "known".
        using var submitter = h.Server.Client(Role.Submitter);
        await WaitForAsync(
            async () =>
            {
                var r = await admin.GetFromJsonAsync<JsonElement>("v1/match?signal_type=md5&signal=" + Md5(images[1]));
                return r.GetProperty("hits").EnumerateArray().Select(x => x.GetProperty("bank").GetString()).Distinct().Count() == 2;
            },
            "the exchange banks never matched");
        Assert.True(await ReviewHarness.UploadAsync(submitter, images[0], "u1", 1));
        Assert.True(await ReviewHarness.UploadAsync(submitter, images[1], "u1", 2));

        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var clusters = k.GetProperty("clusters").EnumerateArray().ToList();
        Assert.Equal(2, clusters.Count);
        string ClusterOf(byte[] image) => clusters.Single(c => c.GetProperty("representative").GetProperty("hashes").GetProperty("md5").GetString() == Md5(image)).GetProperty("id").GetString()!;
        var confirmed = ClusterOf(images[0]);
        var falsePositive = ClusterOf(images[1]);
        using (var d = await alice.PostAsync($"cases/{caseId}/clusters/{confirmed}/decision", new { verdict = "confirmed", classification = "A1" }))
        {
            Assert.Equal(HttpStatusCode.OK, d.StatusCode);
        }

        using (var d = await alice.PostAsync($"cases/{caseId}/clusters/{falsePositive}/decision", new { verdict = "false_positive" }))
        {
            Assert.Equal(HttpStatusCode.OK, d.StatusCode);
        }

        await WaitForAsync(() => Task.FromResult(ncmec.Feedback.Count >= 4), "feedback never reached NCMEC");
        await Task.Delay(1500); // several more scheduler ticks: nothing is sent twice
        var sent = ncmec.Feedback.ToList();
        Assert.Equal(
            ["/v2/entries/9101/img-7/MD5/feedback", "/v2/entries/9101/img-7/PDQ/feedback", "/v2/entries/9102/img-7/MD5/feedback", "/v2/entries/9102/img-7/PDQ/feedback"],
            sent.Select(s => s.Path).Order(StringComparer.Ordinal));
        Assert.All(sent.Where(s => s.Path.Contains("/9101/", StringComparison.Ordinal)), s => Assert.Contains("affirmative", s.Body, StringComparison.Ordinal));
        Assert.All(sent.Where(s => s.Path.Contains("/9102/", StringComparison.Ordinal)), s =>
        {
            Assert.Contains("negative", s.Body, StringComparison.Ordinal);
            Assert.Contains(NotCsam, s.Body, StringComparison.Ordinal); // the configured reason, found by its name
        });

        // The outbox shows every opinion sent once, under the review key scheme; the opted-out exchange has none.
        var outbox = await curator.GetFromJsonAsync<JsonElement>("v1/exchanges/ncmec-on/feedback");
        Assert.Equal(4, outbox.GetArrayLength());
        Assert.All(outbox.EnumerateArray(), o =>
        {
            Assert.Equal("sent", o.GetProperty("status").GetString());
            Assert.Equal(1, o.GetProperty("attempts").GetInt32());
            Assert.StartsWith($"review:{caseId}:", o.GetProperty("idempotency_key").GetString(), StringComparison.Ordinal);
        });
        Assert.Equal(0, (await curator.GetFromJsonAsync<JsonElement>("v1/exchanges/ncmec-off/feedback")).GetArrayLength());

        // A reviewer who changes a decision changes the opinion: the new one is sent (once) after the first.
        using (var again = await alice.PostAsync($"cases/{caseId}/clusters/{confirmed}/decision", new { verdict = "false_positive" }))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        await WaitForAsync(() => Task.FromResult(ncmec.Feedback.Count >= 6), "the changed decision never reached NCMEC");
        await Task.Delay(1000);
        var changed = ncmec.Feedback.Skip(4).ToList();
        Assert.Equal(["/v2/entries/9101/img-7/MD5/feedback", "/v2/entries/9101/img-7/PDQ/feedback"], changed.Select(s => s.Path).Order(StringComparer.Ordinal));
        Assert.All(changed, s => Assert.Contains(NotCsam, s.Body, StringComparison.Ordinal));

        // Replaying the same decision into the hook (a retry, a second node) queues nothing new.
        var hook = h.Server.App.Services.GetRequiredService<IReviewDecisionFeedback>();
        var labels = new Dictionary<string, string> { ["ncmec_member"] = "9101", ["ncmec_entry_id"] = "img-7" };
        var first = (await curator.GetFromJsonAsync<JsonElement>("v1/exchanges/ncmec-on/feedback")).EnumerateArray().Count(o => o.GetProperty("status").GetString() == "sent");
        Assert.Equal(6, first);
        var decidedAt = h.Review.Cases.Find(caseId)!.Clusters.Single(c => c.Id == confirmed).Decision!.At;
        Assert.Equal(0, hook.Decided(caseId, confirmed, decidedAt, false, [new ReviewedHit("ncmec-on-bank", "md5", labels), new ReviewedHit("ncmec-on-bank", "pdq", labels)]));
        Environment.SetEnvironmentVariable(variable, null);
    }

    /// <summary>
    /// A process that stored a decision and died before queueing its feedback (decisions and the outbox may live in two
    /// databases, so no transaction holds both): the decision event is in the log, the outbox has nothing. The
    /// scheduler's reconciler finds the event and queues its opinions, which reach NCMEC once; scanning again, or
    /// the normal path replaying the same decision, queues nothing more.
    /// </summary>
    [Fact]
    public async Task A_decision_whose_feedback_was_lost_in_a_crash_is_reconciled_and_sent_once()
    {
        Environment.SetEnvironmentVariable("Warden__Exchanges__PollSeconds", "0.2");
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        await using var ncmec = new FakeNcmecServer();
        var variable = "WARDEN_TEST_NCMEC_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, ncmec.User + ":" + ncmec.Password);
        try
        {
            using var admin = h.Server.Client(Role.Admin);
            await ReviewHarness.SeedBankAsync(admin);
            var image = Media.Jpeg(3);
            var t = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeSeconds();
            ncmec.Put(new FakeEntry(9201, "img-9", false, t, "A1", new Dictionary<string, string?> { ["md5"] = Md5(image) }));
            var start = DateTimeOffset.FromUnixTimeSeconds(t - 60).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            using var curator = h.Server.Client(Role.Curator);
            var created = await curator.PostAsync("v1/exchanges", Json($$$"""
                {"name":"ncmec-crash","type":"ncmec","bank":"ncmec-crash-bank","interval_seconds":3600,"feedback":true,
                 "config":{"environment":"test_Industry","base_url":"{{{ncmec.BaseUrl}}}","credentials_env":"{{{variable}}}","start_time":"{{{start}}}"}}
                """));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            await WaitForAsync(
                async () => (await admin.GetFromJsonAsync<JsonElement>("v1/match?signal_type=md5&signal=" + Md5(image))).GetProperty("hits").EnumerateArray().Any(x => x.GetProperty("bank").GetString() == "ncmec-crash-bank"),
                "the exchange bank never matched");
            using var submitter = h.Server.Client(Role.Submitter);
            Assert.True(await ReviewHarness.UploadAsync(submitter, image, "u9", 1));
            using var alice = await h.LoginAsync();
            var k = await alice.FirstCaseAsync();
            var caseId = k.GetProperty("id").GetString()!;
            var cluster = k.GetProperty("clusters")[0].GetProperty("id").GetString()!;

            // The durable write of the decision, as Decide makes it, and then the crash: nothing reached the outbox.
            var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            h.Review.Store.AppendEvent("decision", caseId, cluster, $$"""{"verdict":"Confirmed","reviewer":"alice","at":{{at}},"withoutViewing":false}""");

            await WaitForAsync(() => Task.FromResult(!ncmec.Feedback.IsEmpty), "the reconciled feedback never reached NCMEC");
            await Task.Delay(1500); // more ticks: nothing is sent twice
            var sent = Assert.Single(ncmec.Feedback);
            Assert.Equal("/v2/entries/9201/img-9/MD5/feedback", sent.Path);
            Assert.Contains("affirmative", sent.Body, StringComparison.Ordinal);
            var outbox = (await curator.GetFromJsonAsync<JsonElement>("v1/exchanges/ncmec-crash/feedback")).EnumerateArray().ToList();
            var row = Assert.Single(outbox);
            Assert.Equal("sent", row.GetProperty("status").GetString());
            Assert.Equal(ExchangeReviewFeedback.Key(caseId, cluster, DateTimeOffset.FromUnixTimeMilliseconds(at), "ncmec-crash", "9201-img-9", "md5"), row.GetProperty("idempotency_key").GetString());

            // The live path replaying the same decision, and another scan, queue nothing more.
            var hook = h.Server.App.Services.GetRequiredService<IReviewDecisionFeedback>();
            var labels = new Dictionary<string, string> { ["ncmec_member"] = "9201", ["ncmec_entry_id"] = "img-9" };
            Assert.Equal(0, hook.Decided(caseId, cluster, DateTimeOffset.FromUnixTimeMilliseconds(at), true, [new ReviewedHit("ncmec-crash-bank", "md5", labels)]));
            Assert.Equal(0, h.Review.ReconcileDecisionFeedback());
            Assert.Single((await curator.GetFromJsonAsync<JsonElement>("v1/exchanges/ncmec-crash/feedback")).EnumerateArray());
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    /// <summary>
    /// Any mix of hits: only hits on a bank whose exchange opted in, with labels that name a (numeric member, entry)
    /// pair, queue an opinion, one per (exchange, entry, signal type), with the decision's verdict; a second call
    /// with the same decision queues nothing.
    /// </summary>
    [Property(MaxTest = 150)]
    public void Only_opted_in_exchange_entries_are_queued_once_per_entry_and_signal_type(bool confirmed, NonEmptyArray<Tuple<byte, byte, byte, byte>> picks)
    {
        var (store, on) = PropertyStore.Value;
        var banks = new[] { "prop-on", "prop-off", "prop-plain" };
        var signals = new[] { "md5", "pdq", "sha1" };
        var membersPool = new[] { "9001", "42", "x9", "", null, "12345678901234567890123" };
        var entriesPool = new[] { "img-1", "img-2", "a/b", "", null, "e?1" };
        var hits = picks.Get.Select(p =>
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["classification"] = "A1" };
            if (membersPool[p.Item3 % membersPool.Length] is { } m)
            {
                labels["ncmec_member"] = m;
            }

            if (entriesPool[p.Item4 % entriesPool.Length] is { } e)
            {
                labels["ncmec_entry_id"] = e;
            }

            return new ReviewedHit(banks[p.Item1 % banks.Length], signals[p.Item2 % signals.Length], labels);
        }).ToList();
        var expected = hits
            .Where(x => x.Bank == "prop-on" && x.Labels.TryGetValue("ncmec_member", out var m) && m.Length is > 0 and <= 20 && m.All(char.IsAsciiDigit)
                && x.Labels.TryGetValue("ncmec_entry_id", out var e) && e.Length > 0 && e.IndexOfAny(['/', '?', '#']) < 0)
            .Select(x => (Entry: x.Labels["ncmec_member"] + "-" + x.Labels["ncmec_entry_id"], x.SignalType))
            .ToHashSet();
        var caseId = Guid.NewGuid().ToString("N");
        var hook = new ExchangeReviewFeedback(store);

        Assert.Equal(expected.Count, hook.Decided(caseId, "c1", At, confirmed, hits));
        Assert.Equal(0, hook.Decided(caseId, "c1", At, confirmed, hits));
        var queued = store.ListFeedback(on, 10_000).Where(f => f.IdempotencyKey.StartsWith($"review:{caseId}:", StringComparison.Ordinal)).ToList();
        Assert.Equal(expected.OrderBy(x => x.Entry + "/" + x.SignalType, StringComparer.Ordinal), queued.Select(f => (Entry: f.ExternalId, f.SignalType)).OrderBy(x => x.Entry + "/" + x.SignalType, StringComparer.Ordinal));
        Assert.All(queued, f => Assert.Equal(confirmed ? "true_positive" : "false_positive", f.Opinion));
    }

    private static readonly DateTimeOffset At = DateTimeOffset.FromUnixTimeMilliseconds(4_102_444_800_123); // after the exchanges are made

    private static readonly Lazy<(ExchangeStore Store, long On)> PropertyStore = new(() =>
    {
        var db = TestDatabases.CreateSqlite(); // lives for the test run: one file for every generated case
        var banks = BankStore.Open(db.Target);
        var store = ExchangeStore.Open(banks.Database);
        const string Config = """{"environment":"test_Industry","base_url":"http://127.0.0.1:9/hashsharing","credentials_env":"UNUSED"}""";
        var on = store.Create("prop-on", "ncmec", banks.CreateBank("prop-on").Id, Config, feedbackEnabled: true);
        store.Create("prop-off", "ncmec", banks.CreateBank("prop-off").Id, Config, feedbackEnabled: false);
        banks.CreateBank("prop-plain");
        return (store, on.Id);
    });
}
