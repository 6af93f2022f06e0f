using System.Globalization;
using System.Text.Json;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Reporting;
using Warden.Review.Users;
using Warden.Storage;

namespace Warden.Review;

/// <summary>The console's working features: claims on cases, undo of decisions, re-obscure audit.</summary>
public sealed partial class ReviewService
{
    private ConsoleStore? _console;

    /// <summary>Claims, user administration and report-id lookups (console tables in the review database).</summary>
    public ConsoleStore ConsoleState => LazyInitializer.EnsureInitialized(ref _console, () => new ConsoleStore(Database));

    /// <summary>How long a claim lasts unless renewed (the console renews it while the case is open on screen).</summary>
    public TimeSpan ClaimLease => TimeSpan.FromMinutes(Math.Clamp(_options.ClaimMinutes, 1, 240));

    /// <summary>
    /// Takes (or renews) this person's claim on a case; 409 when another reviewer holds a live claim. A new claim
    /// is audited (<c>review.claim</c>); renewals are not, so a heartbeat does not flood the log.
    /// </summary>
    public CaseClaim Claim(ConsoleUser user, string caseId)
    {
        ArgumentNullException.ThrowIfNull(user);
        var @case = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        if (@case.Status is CaseStatus.Reported or CaseStatus.Closed)
        {
            throw new ReviewException(409, "case_closed", "The case is closed; there is nothing to claim.");
        }

        return TakeClaim(user, caseId);
    }

    /// <summary>Drops a claim: one's own, or (admins) anyone's. Audited as <c>review.release</c>.</summary>
    public bool ReleaseClaim(ConsoleUser user, string caseId)
    {
        ArgumentNullException.ThrowIfNull(user);
        _ = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        var now = DateTimeOffset.UtcNow;
        var holder = ConsoleState.Holder(caseId, now);
        if (holder is null)
        {
            return false;
        }

        var admin = user.Role == "admin";
        if (holder.UserId != user.Id && !admin)
        {
            throw new ReviewException(409, "claimed", ClaimedBy(holder));
        }

        var released = ConsoleState.Release(caseId, holder.UserId == user.Id ? user.Id : null);
        if (released)
        {
            Audit.Append(new AuditEntry(user.Username, "review.release", "case:" + caseId, new Dictionary<string, string>
            {
                ["holder"] = holder.Username,
                ["forced"] = holder.UserId == user.Id ? "false" : "true",
            }));
        }

        return released;
    }

    /// <summary>
    /// Takes back a cluster's decision until the report is filed (the case is reported or closed: refused, 409).
    /// Needs the claim. What the decision queued and has not gone out is recalled: its exchange opinions still in the
    /// feedback outbox are cancelled, and for those already sent a withdrawal is queued where the exchange can take
    /// one back (else the result says they were sent); a false positive's allow-list entries from this case are
    /// removed again. A decision queues no webhook and no report (the report is built from the decisions in force
    /// when it is filed), so nothing else is pending. Audited as <c>review.undo</c>.
    /// </summary>
    public UndoResult Undo(ConsoleUser user, string caseId, string clusterId)
    {
        ArgumentNullException.ThrowIfNull(user);
        var @case = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        var cluster = @case.Clusters.FirstOrDefault(c => c.Id == clusterId) ?? throw new ReviewException(404, "not_found", "No such cluster.");
        if (Deliveries.FindByCase(caseId, NcmecDestination.DestinationName) is { } filed)
        {
            var report = filed.ReportId is { } id ? $", CyberTipline report {id}" : "";
            throw new ReviewException(409, "report_filed", $"The report on this case was already filed (delivery {filed.Id}, {filed.Status.WireName()}{report}); its decisions can no longer be undone. An admin can cancel or retract the delivery under Deliveries.");
        }

        if (@case.Status == CaseStatus.Closed)
        {
            throw new ReviewException(409, "case_closed", "The case was closed without a report; its decisions are final.");
        }

        if (cluster.Decision is null)
        {
            throw new ReviewException(409, "not_decided", "This cluster has no decision to undo.");
        }

        TakeClaim(user, caseId);
        ClusterDecision was;
        try
        {
            was = Cases.Undo(caseId, clusterId, JsonSerializer.Serialize(new UndoRecord(user.Username, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), Json));
        }
        catch (InvalidOperationException ex)
        {
            throw new ReviewException(409, "conflict", ex.Message);
        }

        var removed = was.Verdict == Verdict.FalsePositive ? RemoveAllowListed(caseId, cluster) : 0;
        var recall = RecallFeedback(caseId, clusterId, was.At);
        Audit.Append(new AuditEntry(user.Username, "review.undo", "case:" + caseId, new Dictionary<string, string>
        {
            ["cluster"] = clusterId,
            ["verdict"] = was.Verdict == Verdict.Confirmed ? "confirmed" : "false_positive",
            ["decided_by"] = was.Reviewer,
            ["classification"] = was.Classification ?? "",
            ["allow_list_removed"] = removed.ToString(CultureInfo.InvariantCulture),
            ["feedback_cancelled"] = recall.Cancelled.ToString(CultureInfo.InvariantCulture),
            ["feedback_withdrawn"] = recall.Withdrawn.ToString(CultureInfo.InvariantCulture),
            ["feedback_sent_kept"] = recall.SentAndKept.ToString(CultureInfo.InvariantCulture),
        }));
        return new UndoResult(was, recall, removed);
    }

    /// <summary>Recalls an undone decision's exchange feedback; a failure is logged, never fails the undo (it is already stored).</summary>
    private FeedbackRecall RecallFeedback(string caseId, string clusterId, DateTimeOffset decidedAt)
    {
        try
        {
            return _decisionFeedback?.Undone(caseId, clusterId, decidedAt) ?? FeedbackRecall.Nothing;
        }
        catch (StorageException ex)
        {
            LogFeedbackFailed(_log, caseId, ex.Message);
            return FeedbackRecall.Nothing;
        }
    }

    /// <summary>
    /// Whether <paramref name="decidedAt"/> is still the decision in force on the cluster (not undone, not replaced).
    /// Feedback is queued only for decisions in force: an undo on another node between a decision and its queueing,
    /// or a reconciler replaying an old decision event, must not send an opinion nobody holds any more.
    /// </summary>
    private bool InForce(string caseId, string clusterId, DateTimeOffset decidedAt) =>
        Cases.Find(caseId)?.Clusters.FirstOrDefault(c => c.Id == clusterId)?.Decision is { } d && d.At.ToUnixTimeMilliseconds() == decidedAt.ToUnixTimeMilliseconds();

    /// <summary>Re-obscure: drops this person's unredeemed grant (the reveal stays counted and logged) and audits it.</summary>
    public bool Reobscure(ConsoleUser user, string? caseId, string? itemId)
    {
        var dropped = Reobscure(user);
        var details = new Dictionary<string, string> { ["grant_dropped"] = dropped ? "true" : "false" };
        if (!string.IsNullOrEmpty(itemId) && itemId.Length <= 200)
        {
            details["item"] = itemId;
        }

        Audit.Append(new AuditEntry(user.Username, "review.reobscure", caseId is { Length: > 0 and <= 200 } ? "case:" + caseId : "user:" + user.Username, details));
        return dropped;
    }

    /// <summary>The claim for a state change: taken on the spot when free, renewed when one's own, else 409.</summary>
    internal CaseClaim TakeClaim(ConsoleUser user, string caseId)
    {
        var now = DateTimeOffset.UtcNow;
        var claim = ConsoleState.TryClaim(caseId, user, ClaimLease, now);
        if (claim is null)
        {
            var holder = ConsoleState.Holder(caseId, now);
            throw new ReviewException(409, "claimed", holder is null ? "Another reviewer just claimed this case; reload." : ClaimedBy(holder));
        }

        if (claim.ClaimedAt == DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds()))
        {
            Audit.Append(new AuditEntry(user.Username, "review.claim", "case:" + caseId, new Dictionary<string, string>
            {
                ["until"] = claim.ExpiresAt.ToString("O", CultureInfo.InvariantCulture),
            }));
        }

        return claim;
    }

    private static string ClaimedBy(CaseClaim holder) =>
        $"Claimed by {holder.Username} since {holder.ClaimedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC " +
        $"(until {holder.ExpiresAt.UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture)} UTC unless renewed): only they can act on it until they release it or the claim lapses.";

    private int RemoveAllowListed(string caseId, Cluster cluster)
    {
        if (_banks.GetBank(_options.FalsePositiveBank) is null)
        {
            return 0;
        }

        var removed = 0;
        foreach (var pdq in cluster.Members.Where(m => m.Pdq is not null).Select(m => m.Pdq!.Value.ToString()).Distinct(StringComparer.Ordinal))
        {
            // Only the entries this case put there: the same PDQ may be allow-listed for other reasons too.
            foreach (var entry in _banks.EntriesWithSignal(_options.FalsePositiveBank, "pdq", pdq).Where(e => e.Labels.TryGetValue("case", out var c) && c == caseId))
            {
                removed += _banks.DeleteEntry(entry.Id) ? 1 : 0;
            }
        }

        return removed;
    }
}

internal sealed record UndoRecord(string Reviewer, long At);

/// <summary>An undone decision and what was taken back with it.</summary>
/// <param name="Was">The decision that was undone.</param>
/// <param name="Feedback">Its exchange opinions: cancelled, withdrawn, or sent and kept.</param>
/// <param name="AllowListRemoved">Allow-list entries of this case removed (a false positive's).</param>
public sealed record UndoResult(ClusterDecision Was, FeedbackRecall Feedback, int AllowListRemoved);
