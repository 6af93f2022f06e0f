using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Review.Reporting;

namespace Warden.Review.Cases;

/// <summary>Which cases a query looks at.</summary>
public enum CaseScope
{
    /// <summary>The queue: open and decided (not yet reported or closed).</summary>
    Open,

    /// <summary>History: reported or closed without a report.</summary>
    Closed,

    /// <summary>Both.</summary>
    All,
}

/// <summary>The queue's sort keys.</summary>
public enum CaseSort
{
    /// <summary>Priority score.</summary>
    Priority,

    /// <summary>When the case opened (its age).</summary>
    Opened,

    /// <summary>When it last changed.</summary>
    Updated,

    /// <summary>Number of items.</summary>
    Items,
}

/// <summary>
/// Filters of the queue and the case search; every null member means "any". All given filters must hold.
/// </summary>
public sealed record CaseFilter
{
    /// <summary>Open (default), closed or all cases.</summary>
    public CaseScope Scope { get; init; } = CaseScope.Open;

    /// <summary>Priority at least this.</summary>
    public int? MinPriority { get; init; }

    /// <summary>A match in this bank (case-insensitive name).</summary>
    public string? Bank { get; init; }

    /// <summary>A match whose labels have this key (case-insensitive)…</summary>
    public string? LabelKey { get; init; }

    /// <summary>…with this value (case-insensitive), when given.</summary>
    public string? LabelValue { get; init; }

    /// <summary>Whether the case has an AI-provenance signal.</summary>
    public bool? Ai { get; init; }

    /// <summary>Opened at least this long ago.</summary>
    public TimeSpan? MinAge { get; init; }

    /// <summary>Opened at most this long ago.</summary>
    public TimeSpan? MaxAge { get; init; }

    /// <summary>Uploader id containing this text (case-insensitive).</summary>
    public string? Uploader { get; init; }

    /// <summary>A lower-case hex digest or PDQ (see <see cref="CaseQuery.ParseHash"/>).</summary>
    public HashQuery? Hash { get; init; }

    /// <summary>Only these case ids (e.g. the cases of a report id).</summary>
    public IReadOnlySet<string>? CaseIds { get; init; }
}

/// <summary>A hash to search for: an exact digest by length (MD5 32, SHA-1 40, SHA-256 64 hex) and, at 64 hex, a PDQ too.</summary>
/// <param name="Hex">Lower-case hex.</param>
/// <param name="Pdq">The PDQ it parses as (64 hex only), matched within <see cref="CaseQuery.PdqSearchDistance"/>.</param>
public sealed record HashQuery(string Hex, PdqHash? Pdq);

/// <summary>A page of cases and the number that matched in all.</summary>
/// <param name="Cases">This page.</param>
/// <param name="Total">All that matched.</param>
public sealed record CasePage(IReadOnlyList<ReviewCase> Cases, int Total);

/// <summary>
/// The queue's and history's filters, sort and pagination over cases (server-side; the console gets one page).
/// The order is total (the sort key, then opened time, then id), so offset pages never repeat or skip a case
/// that did not change between requests.
/// </summary>
public static class CaseQuery
{
    /// <summary>Largest page.</summary>
    public const int MaxLimit = 100;

    /// <summary>Largest offset (deeper pages: narrow the filter).</summary>
    public const int MaxOffset = 10_000;

    /// <summary>A PDQ search also finds near-duplicates within this distance (the clustering threshold).</summary>
    public const int PdqSearchDistance = 10;

    /// <summary>Filters, sorts and pages <paramref name="cases"/>.</summary>
    public static CasePage Run(IEnumerable<ReviewCase> cases, CaseFilter filter, CaseSort sort, bool descending, int offset, int limit, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(cases);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var hits = cases.Where(c => Matches(c, filter, now)).ToList();
        hits.Sort((a, b) => Compare(a, b, sort, descending));
        return new CasePage(hits.Count <= offset ? [] : hits.GetRange(offset, Math.Min(limit, hits.Count - offset)), hits.Count);
    }

    /// <summary>The query's total order.</summary>
    public static int Compare(ReviewCase a, ReviewCase b, CaseSort sort, bool descending)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var key = sort switch
        {
            CaseSort.Priority => a.Priority.CompareTo(b.Priority),
            CaseSort.Opened => a.OpenedAt.CompareTo(b.OpenedAt),
            CaseSort.Updated => a.UpdatedAt.CompareTo(b.UpdatedAt),
            _ => a.ItemCount.CompareTo(b.ItemCount),
        };
        if (key != 0)
        {
            return descending ? -key : key;
        }

        // Ties: oldest first, then by id, whatever the direction (a stable, total order for paging).
        var opened = a.OpenedAt.CompareTo(b.OpenedAt);
        return opened != 0 ? opened : string.CompareOrdinal(a.Id, b.Id);
    }

    /// <summary>Whether a case passes every filter.</summary>
    public static bool Matches(ReviewCase c, CaseFilter f, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(f);
        var open = c.Status is CaseStatus.Open or CaseStatus.Decided;
        if ((f.Scope == CaseScope.Open && !open) || (f.Scope == CaseScope.Closed && open))
        {
            return false;
        }

        if ((f.MinPriority is { } p && c.Priority < p)
            || (f.Ai is { } ai && c.HasAiProvenance != ai)
            || (f.MinAge is { } min && now - c.OpenedAt < min)
            || (f.MaxAge is { } max && now - c.OpenedAt > max)
            || (f.CaseIds is { } ids && !ids.Contains(c.Id))
            || (f.Uploader is { } u && !c.UploaderId.Contains(u, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        if (f.Bank is not null || f.LabelKey is not null)
        {
            var any = c.Submissions.SelectMany(s => s.Matches).Any(m =>
                (f.Bank is null || string.Equals(m.BankName, f.Bank, StringComparison.OrdinalIgnoreCase))
                && (f.LabelKey is null || HasLabel(m.Labels, f.LabelKey, f.LabelValue)));
            if (!any)
            {
                return false;
            }
        }

        return f.Hash is not { } h || c.Submissions.Any(s => HashMatches(s, h));
    }

    /// <summary>
    /// Parses a searched hash: hex of 32 (MD5), 40 (SHA-1) or 64 (SHA-256 or PDQ) digits, any case, surrounding
    /// space ignored; null when it is none of these.
    /// </summary>
    public static HashQuery? ParseHash(string? text)
    {
        var t = text?.Trim();
        if (t is null || t.Length is not (32 or 40 or 64) || !t.All(char.IsAsciiHexDigit))
        {
            return null;
        }

        var hex = t.ToLowerInvariant();
        return new HashQuery(hex, hex.Length == 64 ? PdqHash.Parse(hex) : null);
    }

    /// <summary>
    /// The classification the cluster's matches suggest: the most severe industry classification on any of its
    /// matches' bank labels (A1 over A2 over B1 over B2), or null. The reviewer confirms or changes it.
    /// </summary>
    public static string? SuggestedClassification(Cluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        string? best = null;
        foreach (var m in cluster.Members.SelectMany(s => s.Matches))
        {
            if (m.Labels.TryGetValue(WellKnownLabels.Classification, out var v))
            {
                var cls = v.Trim().ToUpperInvariant();
                if (CyberTipVocabulary.IndustryClassifications.Contains(cls) && (best is null || string.CompareOrdinal(cls, best) < 0))
                {
                    best = cls; // "A1" < "A2" < "B1" < "B2": most severe first
                }
            }
        }

        return best;
    }

    /// <summary>File annotations the matches' labels suggest (a <c>generativeAi</c> label).</summary>
    public static IReadOnlyList<string> SuggestedAnnotations(Cluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        return cluster.Members.Any(CasePriority.HasAiProvenance) ? [WellKnownLabels.GenerativeAi] : [];
    }

    /// <summary>Why a member is in its cluster: the signal that joined it to the representative and the distance.</summary>
    /// <returns>("representative", 0), ("pdq", distance) or (the digest name, 0); ("pdq", distance) beyond the threshold can only be a digest-joined member.</returns>
    public static (string Signal, int Distance) Why(Cluster cluster, MatchedSubmission member, int threshold)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(member);
        var rep = cluster.Representative;
        if (ReferenceEquals(rep, member) || rep.SubmissionId == member.SubmissionId)
        {
            return ("representative", 0);
        }

        if (rep.Pdq is { } a && member.Pdq is { } b && a.DistanceTo(b) is var d && d <= threshold)
        {
            return ("pdq", d);
        }

        foreach (var name in (string[])["sha256", "sha1", "md5"])
        {
            if (rep.Hashes.TryGetValue(name, out var x) && member.Hashes.TryGetValue(name, out var y) && !string.IsNullOrEmpty(x) && string.Equals(x, y, StringComparison.OrdinalIgnoreCase))
            {
                return (name, 0);
            }
        }

        // The builder joined it for a reason no longer visible here (e.g. a threshold changed since): say the PDQ distance.
        return ("pdq", rep.Pdq is { } p && member.Pdq is { } q ? p.DistanceTo(q) : -1);
    }

    private static bool HasLabel(IReadOnlyDictionary<string, string> labels, string key, string? value)
    {
        foreach (var (k, v) in labels)
        {
            if (string.Equals(k, key, StringComparison.OrdinalIgnoreCase) && (value is null || string.Equals(v, value, StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HashMatches(MatchedSubmission s, HashQuery h)
    {
        foreach (var v in s.Hashes.Values)
        {
            if (string.Equals(v, h.Hex, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return h.Pdq is { } q && s.Pdq is { } p && p.DistanceTo(q) <= PdqSearchDistance;
    }
}
