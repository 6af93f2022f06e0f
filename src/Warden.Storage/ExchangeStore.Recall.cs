using Dapper;
using Npgsql;

namespace Warden.Storage;

/// <summary>What a recall found for one queued opinion.</summary>
public enum FeedbackRecallState
{
    /// <summary>Still waiting in the outbox: cancelled now, it never goes out.</summary>
    Cancelled,

    /// <summary>A sender held it at the moment of the recall: it may have gone out (cancelled, so it is not retried).</summary>
    InFlight,

    /// <summary>Already delivered to the exchange.</summary>
    Sent,

    /// <summary>Given up earlier (never delivered); nothing to do.</summary>
    Failed,

    /// <summary>Recalled before (a repeated recall).</summary>
    AlreadyRecalled,
}

/// <summary>One opinion a recall looked at.</summary>
/// <param name="Id">Outbox row.</param>
/// <param name="ExchangeId">Exchange.</param>
/// <param name="ExternalId">The exchange's entry id.</param>
/// <param name="SignalType">Signal type.</param>
/// <param name="Opinion">The queued opinion.</param>
/// <param name="State">What it was when recalled.</param>
/// <param name="SentAt">When it was delivered, if it was.</param>
/// <param name="LeaseUntil">For one in flight: when its sender's lease ends (after that it has finished or given up).</param>
public sealed record RecalledFeedback(long Id, long ExchangeId, string ExternalId, string SignalType, string Opinion, FeedbackRecallState State, DateTimeOffset? SentAt, DateTimeOffset? LeaseUntil);

/// <summary>The feedback outbox's recall: taking back opinions of a decision that was undone.</summary>
public sealed partial class ExchangeStore
{
    /// <summary>The status of a recalled row: never claimed, never marked sent or failed again.</summary>
    public const string RecalledStatus = "cancelled";

    /// <summary>
    /// Recalls every opinion whose idempotency key starts with <paramref name="keyPrefix"/> (one decision's), in one
    /// transaction: rows still pending become <see cref="RecalledStatus"/> (a sender that holds one at this moment
    /// can no longer mark it sent or put it back: <c>MarkFeedbackSent</c> and <c>MarkFeedbackFailed</c> only touch
    /// pending rows), and each row is returned with what it was, so the caller can say what went out already.
    /// </summary>
    public IReadOnlyList<RecalledFeedback> RecallFeedback(string keyPrefix, string reason) => Run(c =>
    {
        ArgumentException.ThrowIfNullOrEmpty(keyPrefix);
        var now = Now();
        using var tx = BeginWrite(c);

        // substr, not LIKE: keys hold '_' and '%' would be wildcards. Row locks on PostgreSQL keep a claim from
        // slipping in between the read and the update.
        var rows = c.Query<RecallRow>(
            "SELECT id AS Id, exchange_id AS ExchangeId, external_id AS ExternalId, signal_type AS SignalType, opinion AS Opinion, status AS Status, sent_at AS SentAt, lease_until AS LeaseUntil " +
            "FROM exchange_feedback WHERE substr(idempotency_key, 1, @n) = @keyPrefix ORDER BY id" + (c is NpgsqlConnection ? " FOR UPDATE" : string.Empty),
            new { keyPrefix, n = keyPrefix.Length }, // int: PostgreSQL has substr(text, int, int) only
            tx).ToList();
        var result = new List<RecalledFeedback>(rows.Count);
        foreach (var r in rows)
        {
            var state = r.Status switch
            {
                "pending" => r.LeaseUntil is { } until && until >= now ? FeedbackRecallState.InFlight : FeedbackRecallState.Cancelled,
                "sent" => FeedbackRecallState.Sent,
                RecalledStatus => FeedbackRecallState.AlreadyRecalled,
                _ => FeedbackRecallState.Failed,
            };
            if (r.Status == "pending")
            {
                c.Execute($"UPDATE exchange_feedback SET status = '{RecalledStatus}', last_error = @reason WHERE id = @Id AND status = 'pending'", new { r.Id, reason }, tx);
            }

            result.Add(new RecalledFeedback(r.Id, r.ExchangeId, r.ExternalId, r.SignalType, r.Opinion, state, Time(r.SentAt), state == FeedbackRecallState.InFlight ? Time(r.LeaseUntil) : null));
        }

        tx.Commit();
        return (IReadOnlyList<RecalledFeedback>)result;
    });

    /// <summary>
    /// Queues an opinion that may not be sent before <paramref name="notBefore"/> (a withdrawal waits until an opinion
    /// in flight has finished, so it arrives after it); false when the key was queued before.
    /// </summary>
    public bool EnqueueFeedbackAfter(long exchangeId, string idempotencyKey, string externalId, string signalType, string opinion, DateTimeOffset notBefore) => Run(c =>
        c.Execute(
            "INSERT INTO exchange_feedback(exchange_id, idempotency_key, external_id, signal_type, opinion, reason_id, status, attempts, next_attempt_at, created_at) VALUES (@exchangeId, @idempotencyKey, @externalId, @signalType, @opinion, NULL, 'pending', 0, @next, @now) ON CONFLICT(idempotency_key) DO NOTHING",
            new { exchangeId, idempotencyKey, externalId, signalType, opinion, next = notBefore.ToUnixTimeMilliseconds(), now = Now() }) == 1);

    /// <summary>Whether an opinion with this idempotency key was ever queued.</summary>
    public bool HasFeedback(string idempotencyKey) => Run(c =>
        c.ExecuteScalar<long>("SELECT COUNT(*) FROM exchange_feedback WHERE idempotency_key = @idempotencyKey", new { idempotencyKey }) > 0);

    private sealed class RecallRow
    {
        public long Id { get; set; }

        public long ExchangeId { get; set; }

        public string ExternalId { get; set; } = string.Empty;

        public string SignalType { get; set; } = string.Empty;

        public string Opinion { get; set; } = string.Empty;

        public string Status { get; set; } = string.Empty;

        public long? SentAt { get; set; }

        public long? LeaseUntil { get; set; }
    }
}
