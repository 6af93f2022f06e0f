using System.Text.Json;
using Warden.Core.Exchanges;

namespace Warden.Storage;

/// <summary>
/// Delivers the feedback outbox: claims due opinions (a claim is a lease, so two nodes never send one twice at
/// once), sends each through its exchange's feedback writer, marks it sent, or schedules a retry with back-off.
/// An idempotency key is queued once, so a decision is sent once; a crash between the send and the mark resends
/// it after the claim expires, which NCMEC's feedback PUT (the member's one opinion on the entry) absorbs.
/// </summary>
public static class ExchangeFeedbackSender
{
    /// <summary>Attempts before an opinion is given up (status "failed").</summary>
    public const int MaxAttempts = 12;

    /// <summary>Sends every due opinion once; returns how many were sent now.</summary>
    public static async Task<int> SendDueAsync(ExchangeStore store, ExchangeRuntime runtime, string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(runtime);
        var sent = 0;
        var exchanges = store.List().ToDictionary(x => x.Id);
        foreach (var f in store.ClaimFeedback(owner, TimeSpan.FromMinutes(2)))
        {
            if (!exchanges.TryGetValue(f.ExchangeId, out var x))
            {
                store.MarkFeedbackFailed(f.Id, owner, "the exchange was removed", null);
                continue;
            }

            try
            {
                var type = ExchangeTypes.Get(x.Type);
                using var config = JsonDocument.Parse(x.Config);
                var writer = type.CreateFeedbackWriter(config.RootElement, runtime)
                    ?? throw new ExchangeException($"Exchange type {x.Type} takes no feedback.");
                var kind = f.Opinion switch
                {
                    "true_positive" => OpinionKind.TruePositive,
                    "false_positive" => OpinionKind.FalsePositive,
                    _ => OpinionKind.Seen,
                };
                await writer.SendAsync(new ExchangeOpinion(f.ExternalId, f.SignalType, kind, f.ReasonId), cancellationToken);
                if (store.MarkFeedbackSent(f.Id, owner))
                {
                    sent++;
                }
            }
            catch (Exception ex) when (ex is ExchangeException or ExchangeConfigException or HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                var permanent = ex is ExchangeConfigException or ExchangeException { Permanent: true } || (ex is ExchangeException { StatusCode: { } s } && s is >= 400 and < 500 and not 408 and not 429);
                DateTimeOffset? retry = permanent || f.Attempts >= MaxAttempts
                    ? null
                    : DateTimeOffset.UtcNow + ((ex as ExchangeException)?.RetryAfter ?? TimeSpan.FromSeconds(Math.Min(3600, 15 * Math.Pow(2, f.Attempts - 1))));
                store.MarkFeedbackFailed(f.Id, owner, ex.Message, retry);
                runtime.Log($"feedback {f.IdempotencyKey}: {ex.Message}{(retry is null ? "; giving up" : "; will retry")}");
            }
        }

        return sent;
    }
}
