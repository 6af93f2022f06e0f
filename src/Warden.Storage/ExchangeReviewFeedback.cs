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
