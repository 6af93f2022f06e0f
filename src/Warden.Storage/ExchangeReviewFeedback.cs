using Warden.Core.Exchanges;

namespace Warden.Storage;

/// <summary>One hit a reviewer decided on: the bank it came from, the signal type that matched, the entry's labels.</summary>
/// <param name="Bank">Bank name.</param>
/// <param name="SignalType">The matched signal type (md5, sha1, pdq, ...).</param>
/// <param name="Labels">The bank entry's labels as the match returned them.</param>
public sealed record ReviewedHit(string Bank, string SignalType, IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// What the review side calls once a decision on a cluster is recorded, so the decision can travel on (today:
/// as exchange feedback). Kept to one call so the review code needs a few lines only.
/// </summary>
public interface IReviewDecisionFeedback
{
    /// <summary>
    /// A decision on cluster <paramref name="clusterId"/> of case <paramref name="caseId"/> made at
    /// <paramref name="decidedAt"/> (which tells a changed decision from a repeat of the same one): confirmed or
    /// false positive, over these hits. Returns how many opinions were queued now. Never throws for a hit it cannot use.
    /// </summary>
    int Decided(string caseId, string clusterId, DateTimeOffset decidedAt, bool confirmed, IEnumerable<ReviewedHit> hits);

    /// <summary>
    /// The decision on cluster <paramref name="clusterId"/> made at <paramref name="decidedAt"/> was undone: takes back
    /// what it queued that has not gone out, and says what had (and whether a withdrawal was queued for it).
    /// </summary>
    FeedbackRecall Undone(string caseId, string clusterId, DateTimeOffset decidedAt) => FeedbackRecall.Nothing;
}

/// <summary>What an undo did to one opinion of the undone decision.</summary>
/// <param name="Exchange">Exchange name.</param>
/// <param name="ExternalId">The exchange's entry id.</param>
/// <param name="SignalType">Signal type.</param>
/// <param name="Opinion">The opinion the decision queued (<c>true_positive</c>, <c>false_positive</c>).</param>
/// <param name="Outcome">
/// <c>cancelled</c> (never sent), <c>sent</c> / <c>in_flight</c> (went out, or may have: the exchange keeps it until
/// the next decision's opinion replaces it), <c>withdrawal_queued</c> (went out or may have; the exchange's "not
/// decided" value is queued after it), <c>failed</c> (was never delivered), <c>already_recalled</c>.
/// </param>
/// <param name="SentAt">When it was delivered, if it was.</param>
public sealed record RecalledOpinion(string Exchange, string ExternalId, string SignalType, string Opinion, string Outcome, DateTimeOffset? SentAt);

/// <summary>What an undo recalled from the feedback outbox.</summary>
/// <param name="Opinions">One row per opinion the undone decision queued.</param>
public sealed record FeedbackRecall(IReadOnlyList<RecalledOpinion> Opinions)
{
    /// <summary>Nothing was queued.</summary>
    public static FeedbackRecall Nothing { get; } = new([]);

    /// <summary>Opinions cancelled before they went out.</summary>
    public int Cancelled => Opinions.Count(o => o.Outcome == "cancelled");

    /// <summary>Opinions that went out (or may have) and stay with the exchange.</summary>
    public int SentAndKept => Opinions.Count(o => o.Outcome is "sent" or "in_flight");

    /// <summary>Opinions that went out (or may have) and are being withdrawn.</summary>
    public int Withdrawn => Opinions.Count(o => o.Outcome == "withdrawal_queued");
}

/// <summary>
/// Turns a reviewer's decision into exchange opinions: for every hit whose bank is filled by an exchange that
/// opted in to feedback, and whose labels name that exchange's entry, queues "true positive" (confirmed) or
/// "false positive" (with the exchange's configured reason) in the durable outbox under the idempotency key
/// <c>review:{case}:{cluster}@{decided at, ms}/{exchange}/{entry}/{signal type}</c>. The key makes a replayed or
/// repeated call queue nothing new, so each (decision, entry, fingerprint) is sent once; a reviewer who changes a
/// decision makes a new one, whose opinion is sent after the first (NCMEC keeps a member's latest opinion).
/// </summary>
public sealed class ExchangeReviewFeedback(ExchangeStore store) : IReviewDecisionFeedback
{
    /// <summary>The idempotency key of one hit's opinion (the <c>review:{case}:{hit}</c> scheme).</summary>
    public static string Key(string caseId, string clusterId, DateTimeOffset decidedAt, string exchange, string entryId, string signalType) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"review:{caseId}:{clusterId}@{decidedAt.ToUnixTimeMilliseconds()}/{exchange}/{entryId}/{signalType}");

    /// <summary>The key prefix shared by every opinion of one decision.</summary>
    public static string DecisionPrefix(string caseId, string clusterId, DateTimeOffset decidedAt) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"review:{caseId}:{clusterId}@{decidedAt.ToUnixTimeMilliseconds()}/");

    /// <summary>
    /// Recalls the undone decision's opinions: pending ones are cancelled; for each one that went out (or was being
    /// sent at that moment), a withdrawal (<c>withdrawn</c>, sent as the exchange's "not decided" value) is queued
    /// when the exchange type can take an opinion back, not before an in-flight send's lease ends, so it arrives
    /// after it. Where the type cannot (NCMEC), the sent opinion stays until the next decision's replaces it, and the
    /// outcome says so. Idempotent: a repeated call cancels nothing and queues nothing new.
    /// </summary>
    public FeedbackRecall Undone(string caseId, string clusterId, DateTimeOffset decidedAt)
    {
        ArgumentException.ThrowIfNullOrEmpty(caseId);
        ArgumentException.ThrowIfNullOrEmpty(clusterId);
        var prefix = DecisionPrefix(caseId, clusterId, decidedAt);
        var rows = store.RecallFeedback(prefix, "recalled: the reviewer undid the decision");
        if (rows.Count == 0)
        {
            return FeedbackRecall.Nothing;
        }

        var exchanges = store.List().ToDictionary(x => x.Id);
        var result = new List<RecalledOpinion>(rows.Count);
        foreach (var r in rows)
        {
            exchanges.TryGetValue(r.ExchangeId, out var x);
            var outcome = r.State switch
            {
                FeedbackRecallState.Cancelled => "cancelled",
                FeedbackRecallState.Failed => "failed",
                FeedbackRecallState.AlreadyRecalled => "already_recalled",
                FeedbackRecallState.InFlight => "in_flight",
                _ => "sent",
            };
            // One withdrawal per recalled opinion; its key is derived from the decision, so a repeat queues nothing.
            var withdrawal = x is null ? null : WithdrawalKey(prefix, x.Name, r.ExternalId, r.SignalType);
            if (r.State is FeedbackRecallState.Sent or FeedbackRecallState.InFlight && x is not null && ExchangeTypes.Find(x.Type) is { CanWithdrawOpinion: true })
            {
                store.EnqueueFeedbackAfter(x.Id, withdrawal!, r.ExternalId, r.SignalType, "withdrawn", r.LeaseUntil ?? DateTimeOffset.UnixEpoch);
                outcome = "withdrawal_queued";
            }
            else if (r.State == FeedbackRecallState.AlreadyRecalled && withdrawal is not null && store.HasFeedback(withdrawal))
            {
                outcome = "withdrawal_queued";
            }

            result.Add(new RecalledOpinion(x?.Name ?? "(removed)", r.ExternalId, r.SignalType, r.Opinion, outcome, r.SentAt));
        }

        return new FeedbackRecall(result);
    }

    /// <summary>The key of the withdrawal an undo queues for one opinion of the decision with <paramref name="decisionPrefix"/>.</summary>
    public static string WithdrawalKey(string decisionPrefix, string exchange, string entryId, string signalType)
    {
        ArgumentNullException.ThrowIfNull(decisionPrefix);
        return "undo:" + decisionPrefix["review:".Length..] + exchange + "/" + entryId + "/" + signalType;
    }

    /// <inheritdoc />
    public int Decided(string caseId, string clusterId, DateTimeOffset decidedAt, bool confirmed, IEnumerable<ReviewedHit> hits)
    {
        ArgumentException.ThrowIfNullOrEmpty(caseId);
        ArgumentException.ThrowIfNullOrEmpty(clusterId);
        ArgumentNullException.ThrowIfNull(hits);
        var byBank = store.List().Where(x => x.FeedbackEnabled).ToLookup(x => x.BankName, StringComparer.Ordinal);
        if (byBank.Count == 0)
        {
            return 0;
        }

        var queued = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var hit in hits)
        {
            foreach (var x in byBank[hit.Bank])
            {
                if (decidedAt < x.CreatedAt)
                {
                    continue; // a decision older than the exchange is not an opinion on its entries (the reconciler replays old ones)
                }

                var type = ExchangeTypes.Find(x.Type);
                var entry = type?.FeedbackEntryId(hit.Labels);
                if (entry is null)
                {
                    continue; // An entry of that bank that did not come from this exchange (or a type without feedback).
                }

                var key = Key(caseId, clusterId, decidedAt, x.Name, entry, hit.SignalType);
                if (seen.Add(key) && store.EnqueueFeedback(x.Id, key, entry, hit.SignalType, confirmed ? "true_positive" : "false_positive", null))
                {
                    queued++;
                }
            }
        }

        return queued;
    }
}
