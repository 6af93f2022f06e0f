using System.Globalization;
using System.Text.Json;
using Warden.Core.Exchanges;
using Warden.Core.Tests.Exchanges;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Exchanges;

/// <summary>
/// Undoing a decision recalls its exchange feedback from the outbox: what is still queued is cancelled and never
/// goes out; what went out (or was being sent at that moment) gets a withdrawal where the exchange can take an
/// opinion back (StopNCII: PendingReview, delivered after it), and is reported as sent where it cannot (NCMEC).
/// On both databases, over many decisions whose opinions are in random states of delivery.
/// </summary>
public sealed class UndoRecallTests
{
    private enum Drive
    {
        Pending,
        InFlight,
        Sent,
        Failed,
        Retrying,
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Undo_cancels_queued_opinions_withdraws_sent_ones_where_possible_and_reports_the_rest(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var stopServer = new FakeStopNcii();
        using var banks = BankStore.Open(db.Target);
        var store = ExchangeStore.Open(banks.Database);
        const string ncmecConfig = """{"environment":"test_Industry","base_url":"http://127.0.0.1:9/hashsharing","credentials_env":"UNUSED"}""";
        var stopConfig = ExchangeTypes.StopNcii.Validate(JsonDocument.Parse($$"""{"base_url":"{{stopServer.BaseUrl}}","credentials_env":"SNCII_KEYS","feedback_key_env":"SNCII_FEEDBACK"}""").RootElement).GetRawText();
        var ncmec = store.Create("ncmec-on", "ncmec", banks.CreateBank("ncmec-on").Id, ncmecConfig, feedbackEnabled: true);
        var stop = store.Create("stop-on", "stopncii", banks.CreateBank("stop-on").Id, stopConfig, feedbackEnabled: true);
        var hook = new ExchangeReviewFeedback(store);
        var seed = Environment.TickCount;
        var rng = new Random(seed);
        var at0 = DateTimeOffset.UtcNow.AddMinutes(1);
        var withdrawalsExpected = new HashSet<string>(StringComparer.Ordinal); // hash values StopNCII must hear PendingReview for
        using var http = new HttpClient();
        var env = new Dictionary<string, string> { ["SNCII_KEYS"] = stopServer.FetchKey + "," + stopServer.SubscriptionKey, ["SNCII_FEEDBACK"] = stopServer.FeedbackKey };
        var runtime = ExchangeRuntime.Default(http) with { Environment = v => env.GetValueOrDefault(v), Delay = (_, _) => Task.CompletedTask };

        List<ExchangeFeedback> All() => [.. store.ListFeedback(ncmec.Id, 100_000), .. store.ListFeedback(stop.Id, 100_000)];

        for (var d = 0; d < 24; d++)
        {
            var caseId = Guid.NewGuid().ToString("N");
            var cluster = "c" + d.ToString(CultureInfo.InvariantCulture);
            var at = at0.AddMilliseconds(d * 7);
            var hits = new List<ReviewedHit>();
            for (var n = rng.Next(1, 7); n > 0; n--)
            {
                var signal = rng.Next(2) == 0 ? "md5" : "pdq";
                hits.Add(rng.Next(2) == 0
                    ? new ReviewedHit("ncmec-on", signal, new Dictionary<string, string> { ["ncmec_member"] = "9001", ["ncmec_entry_id"] = "e" + rng.Next(1000) })
                    : new ReviewedHit("stop-on", "pdq", new Dictionary<string, string> { ["stopncii_signal_type"] = "ImagePDQ", ["stopncii_hash"] = "h" + d + "x" + rng.Next(1000) }));
            }

            // Earlier decisions' due withdrawals go out through the real sender first; one that falls due between
            // that and the claim below is put back for the final round.
            await ExchangeFeedbackSender.SendDueAsync(store, runtime, "sender-real", CancellationToken.None);
            hook.Decided(caseId, cluster, at, rng.Next(2) == 0, hits);
            var prefix = ExchangeReviewFeedback.DecisionPrefix(caseId, cluster, at);

            var claimed = store.ClaimFeedback("sender", TimeSpan.FromSeconds(5), 1000);
            var drive = new Dictionary<long, Drive>();
            foreach (var f in claimed)
            {
                if (!f.IdempotencyKey.StartsWith(prefix, StringComparison.Ordinal))
                {
                    Assert.Equal("withdrawn", f.Opinion);
                    store.MarkFeedbackFailed(f.Id, "sender", "later", DateTimeOffset.UtcNow);
                    continue;
                }

                var how = (Drive)rng.Next(5);
                drive[f.Id] = how;
                switch (how)
                {
                    case Drive.Sent: Assert.True(store.MarkFeedbackSent(f.Id, "sender")); break;
                    case Drive.Failed: store.MarkFeedbackFailed(f.Id, "sender", "refused", null); break;
                    case Drive.Retrying: store.MarkFeedbackFailed(f.Id, "sender", "timeout", DateTimeOffset.UtcNow.AddHours(1)); break;
                    case Drive.Pending: store.MarkFeedbackFailed(f.Id, "sender", "not yet", DateTimeOffset.UtcNow.AddHours(1)); break;
                    case Drive.InFlight: break; // the sender still holds it
                }
            }

            var mine = All().Where(f => f.IdempotencyKey.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            Assert.Equal(mine.Count, drive.Count);
            var others = All().Where(f => !f.IdempotencyKey.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(f => f.Id, f => f.Status);

            var recall = hook.Undone(caseId, cluster, at);

            Assert.Equal(mine.Count, recall.Opinions.Count);
            foreach (var f in mine)
            {
                var isStop = f.ExchangeId == stop.Id;
                var o = Assert.Single(recall.Opinions, o => o.ExternalId == f.ExternalId && o.SignalType == f.SignalType && o.Exchange == (isStop ? "stop-on" : "ncmec-on"));
                var expected = drive[f.Id] switch
                {
                    Drive.Pending or Drive.Retrying => "cancelled",
                    Drive.Failed => "failed",
                    Drive.Sent => isStop ? "withdrawal_queued" : "sent",
                    _ => isStop ? "withdrawal_queued" : "in_flight",
                };
                Assert.True(expected == o.Outcome, $"seed {seed}: {drive[f.Id]} opinion on {o.Exchange} came out {o.Outcome}, expected {expected}");
                if (expected == "withdrawal_queued")
                {
                    withdrawalsExpected.Add(f.ExternalId["stopncii:ImagePDQ:".Length..]);
                }
            }

            // Nothing of the decision is left to go out; a sender holding one can neither mark it sent nor revive it.
            var after = All().Where(f => f.IdempotencyKey.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(f => f.Id);
            foreach (var (id, how) in drive)
            {
                var status = after[id].Status;
                Assert.Equal(how switch { Drive.Sent => "sent", Drive.Failed => "failed", _ => ExchangeStore.RecalledStatus }, status);
                if (how == Drive.InFlight)
                {
                    Assert.False(store.MarkFeedbackSent(id, "sender"));
                    store.MarkFeedbackFailed(id, "sender", "timeout", DateTimeOffset.UtcNow);
                    Assert.Equal(ExchangeStore.RecalledStatus, All().Single(f => f.Id == id).Status);
                }
            }

            // Withdrawals: one per stop opinion that went out or was in flight, none for NCMEC.
            var withdrawals = All().Where(f => f.IdempotencyKey.StartsWith("undo:" + prefix["review:".Length..], StringComparison.Ordinal)).ToList();
            Assert.Equal(recall.Withdrawn, withdrawals.Count);
            Assert.All(withdrawals, w => Assert.True(w.ExchangeId == stop.Id && w.Opinion == "withdrawn" && w.Status == "pending"));

            // Other decisions' rows are untouched.
            foreach (var (id, status) in others)
            {
                Assert.Equal(status, All().Single(f => f.Id == id).Status);
            }

            // A repeated undo queues and cancels nothing new.
            var count = All().Count;
            var again = hook.Undone(caseId, cluster, at);
            Assert.Equal(count, All().Count);
            Assert.Equal(0, again.Cancelled);
            Assert.Equal(recall.Withdrawn, again.Withdrawn);
        }

        // Once every in-flight lease is over, the real sender has delivered each withdrawal to StopNCII as
        // PendingReview, and nothing else went anywhere.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (All().Any(f => f.Opinion == "withdrawn" && f.Status == "pending") && DateTime.UtcNow < deadline)
        {
            await ExchangeFeedbackSender.SendDueAsync(store, runtime, "final", CancellationToken.None);
            await Task.Delay(250);
        }

        Assert.DoesNotContain(All(), f => f.Status == "pending");
        var heard = stopServer.Feedback.SelectMany(b => b["hashFeedbacks"]!.AsArray()).Where(x => (string)x!["feedbackValue"]! == "PendingReview").Select(x => (string)x!["hashValue"]!).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(withdrawalsExpected.Order(StringComparer.Ordinal), heard.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(stopServer.Feedback.SelectMany(b => b["hashFeedbacks"]!.AsArray()), x => (string)x!["feedbackValue"]! != "PendingReview");
    }
}
