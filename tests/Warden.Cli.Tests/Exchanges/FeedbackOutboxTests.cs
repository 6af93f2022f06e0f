using Warden.Core.Exchanges;
using Warden.Core.Tests.Exchanges;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Cli.Tests.Exchanges;

/// <summary>The feedback outbox on both databases: once per idempotency key, claims that expire, delivery after a crash.</summary>
public sealed class FeedbackOutboxTests
{
    public static TheoryData<Storage.SqlDialect> Dialects => TestDatabases.Dialects;

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task An_opinion_is_queued_once_and_delivered_once_after_its_sender_crashed(Storage.SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeNcmecServer();
        using var banks = BankStore.Open(db.Target);
        var store = ExchangeStore.Open(banks.Database);
        var bank = banks.CreateBank("ncmec");
        var x = store.Create("fb", "ncmec", bank.Id, NcmecFixtures.Config(server).GetRawText(), feedbackEnabled: true);

        Assert.True(store.EnqueueFeedback(x.Id, "review:case-1:hit-7", "9002-img-0001", "md5", "true_positive", null));
        Assert.False(store.EnqueueFeedback(x.Id, "review:case-1:hit-7", "9002-img-0001", "md5", "true_positive", null));

        // Sender A claims it and dies before sending; nobody else may take it until the claim expires.
        var claimed = store.ClaimFeedback("node-a", TimeSpan.FromSeconds(1));
        Assert.Single(claimed);
        Assert.Empty(store.ClaimFeedback("node-b", TimeSpan.FromSeconds(1)));
        await Task.Delay(1200);

        using var http = new HttpClient();
        var runtime = new ExchangeRuntime(http, () => DateTimeOffset.UtcNow, _ => { }, _ => server.User + ":" + server.Password);
        Assert.Equal(1, await ExchangeFeedbackSender.SendDueAsync(store, runtime, "node-b", CancellationToken.None));
        Assert.Equal(0, await ExchangeFeedbackSender.SendDueAsync(store, runtime, "node-b", CancellationToken.None));
        Assert.False(store.MarkFeedbackSent(claimed[0].Id, "node-a")); // the dead sender's late mark changes nothing

        Assert.Single(server.Feedback);
        Assert.Equal("/v2/entries/9002/img-0001/MD5/feedback", server.Feedback.Single().Path);
        var row = Assert.Single(store.ListFeedback(x.Id));
        Assert.Equal(("sent", 2), (row.Status, row.Attempts));

        // A refusal the exchange will not change its mind on is given up; a 503 is retried later.
        Assert.True(store.EnqueueFeedback(x.Id, "k2", "9002-img-0001", "sha1", "false_positive", "0d1e2f30-4152-4637-8899-aabbccddeeff"));
        server.Fail(503);
        await ExchangeFeedbackSender.SendDueAsync(store, runtime, "node-b", CancellationToken.None);
        var retry = store.ListFeedback(x.Id).Single(f => f.IdempotencyKey == "k2");
        Assert.Equal("pending", retry.Status);
        Assert.Contains("503", retry.LastError, StringComparison.Ordinal);
        Assert.True(store.EnqueueFeedback(x.Id, "k3", "not-an-id", "md5", "true_positive", null));
        await ExchangeFeedbackSender.SendDueAsync(store, runtime, "node-b", CancellationToken.None);
        Assert.Equal("failed", store.ListFeedback(x.Id).Single(f => f.IdempotencyKey == "k3").Status);
    }
}
