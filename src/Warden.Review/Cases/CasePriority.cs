using Warden.Core.Banks;

namespace Warden.Review.Cases;

/// <summary>
/// The review queue's priority score, 0–100, higher first (ties: oldest first). It is the sum of:
/// <list type="bullet">
/// <item><b>Severity</b> (0–40): the most severe known-hash label among the case's matches — industry
/// classification A1 = 40, A2 = 30, B1 = 20, B2 = 10; a match without a classification counts 15.</item>
/// <item><b>AI provenance</b> (+10): any match labelled <c>generativeAi</c>, or any provenance link (C2PA
/// generator, model fingerprint) on a submission: these point at a producer, not only a sharer.</item>
/// <item><b>Volume</b> (0–20): 5 × log2(1 + items), capped: a flood is more urgent than a single file, but a
/// flood of one picture must not bury severe single items.</item>
/// <item><b>Uploader history</b> (0–30): 15 per earlier confirmed case or report, capped.</item>
/// </list>
/// The weights are a starting point, documented in docs/review.md; they only order the queue.
/// </summary>
public static class CasePriority
{
    /// <summary>Computes the score of a case (from its running aggregates: O(1), so a flood stays linear).</summary>
    public static int Score(ReviewCase c, UploaderHistory history)
    {
        ArgumentNullException.ThrowIfNull(c);
        return Score(c.ItemCount, c.MaxSeverity, c.HasAiProvenance, history);
    }

    /// <summary>The same score from the aggregates alone (as the case tables keep them).</summary>
    public static int Score(int items, int maxSeverity, bool aiProvenance, UploaderHistory history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var volume = (int)Math.Min(20, Math.Round(5 * Math.Log2(1 + items)));
        var past = Math.Min(30, 15 * (history.PriorConfirmedCases + history.PriorReports));
        return Math.Min(100, maxSeverity + (aiProvenance ? 10 : 0) + volume + past);
    }

    /// <summary>Whether a submission carries an AI-provenance signal (a generativeAi label or a provenance link).</summary>
    public static bool HasAiProvenance(MatchedSubmission s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.ProvenanceLinks is { Count: > 0 }
            || s.Matches.Any(m => m.Labels.TryGetValue(WellKnownLabels.GenerativeAi, out var g) && IsTrue(g));
    }

    /// <summary>The most severe label among a submission's matches (0 without matches).</summary>
    public static int SeverityOf(MatchedSubmission s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.Matches.Count == 0 ? 0 : s.Matches.Max(m => SeverityOf(m.Labels));
    }

    /// <summary>Severity weight of one match's labels.</summary>
    public static int SeverityOf(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return labels.TryGetValue(WellKnownLabels.Classification, out var cls) ? cls.ToUpperInvariant() switch
        {
            "A1" => 40,
            "A2" => 30,
            "B1" => 20,
            "B2" => 10,
            _ => 15,
        } : 15;
    }

    private static bool IsTrue(string v) => v.Equals("true", StringComparison.OrdinalIgnoreCase) || v == "1" || v.Equals("yes", StringComparison.OrdinalIgnoreCase);
}
