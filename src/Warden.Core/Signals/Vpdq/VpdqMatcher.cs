using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Hashing.Video;

/// <summary>Which reference matcher's rules to apply; the two differ (see docs/video.md).</summary>
public enum VpdqMatchRule
{
    /// <summary>
    /// python-threatexchange / HMA (`match_VPDQ_hash_brute`): de-duplicate by hash (first occurrence kept),
    /// keep quality ≥ 50, a frame matches at distance ≤ 31; match when query % ≥ 80 and compared % ≥ 0.
    /// Warden's default, since HMA is what exchanges use.
    /// </summary>
    PythonThreatExchange = 0,

    /// <summary>The C++ `match-hashes-brute q t 31 50`: no de-duplication, quality ≥ 50, distance &lt; 31.</summary>
    ReferenceCpp = 1,
}

/// <summary>Result of comparing two vPDQ hashes.</summary>
/// <param name="QueryMatchPercent">Share of the query's considered frames within the distance of some compared frame.</param>
/// <param name="ComparedMatchPercent">Share of the compared video's considered frames within the distance of some query frame.</param>
/// <param name="QueryFrames">Query frames considered (after de-duplication and the quality filter).</param>
/// <param name="ComparedFrames">Compared frames considered.</param>
/// <param name="IsMatch">Both percentages reach the thresholds (false when either side has no frame to consider).</param>
public sealed record VpdqComparison(double QueryMatchPercent, double ComparedMatchPercent, int QueryFrames, int ComparedFrames, bool IsMatch);

/// <summary>
/// Brute-force vPDQ comparison with either reference's rules (ported from Meta's BSD-licensed
/// python-threatexchange and vpdq/cpp). Videos are bags of frame hashes: order and timestamps do not count.
/// </summary>
public static class VpdqMatcher
{
    /// <summary>Minimum PDQ quality of a frame that takes part.</summary>
    public const int QualityThreshold = 50;

    /// <summary>python-threatexchange's distance threshold (inclusive); the C++ tool is given 31 and compares strictly.</summary>
    public const int DistanceThreshold = 31;

    /// <summary>HMA's query match threshold, percent.</summary>
    public const double QueryMatchThresholdPercent = 80;

    /// <summary>HMA's compared (index) match threshold, percent.</summary>
    public const double ComparedMatchThresholdPercent = 0;

    /// <summary>The frames a rule considers: quality ≥ 50, and de-duplicated by hash for the python rule.</summary>
    public static PdqHash[] Considered(IEnumerable<VpdqFrame> frames, VpdqMatchRule rule)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (rule == VpdqMatchRule.PythonThreatExchange)
        {
            // Dedupe first (by exact hash, first occurrence), then the quality filter, as the reference does.
            var seen = new HashSet<PdqHash>();
            return frames.Where(f => seen.Add(f.Hash)).Where(f => f.Quality >= QualityThreshold).Select(f => f.Hash).ToArray();
        }

        return frames.Where(f => f.Quality >= QualityThreshold).Select(f => f.Hash).ToArray();
    }

    /// <summary>Compares <paramref name="query"/> with <paramref name="compared"/>.</summary>
    public static VpdqComparison Compare(VpdqHash query, VpdqHash compared, VpdqMatchRule rule = VpdqMatchRule.PythonThreatExchange)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(compared);
        var q = Considered(query.Frames, rule);
        var c = Considered(compared.Frames, rule);
        if (q.Length == 0 || c.Length == 0)
        {
            return new VpdqComparison(0, 0, q.Length, c.Length, false);
        }

        // ≤ 31 for python; < 31 (so ≤ 30) for the C++ tool.
        var maxDistance = rule == VpdqMatchRule.PythonThreatExchange ? DistanceThreshold : DistanceThreshold - 1;
        var qMatched = CountMatched(q, c, maxDistance);
        var cMatched = CountMatched(c, q, maxDistance);
        var qPercent = qMatched * 100.0 / q.Length;
        var cPercent = cMatched * 100.0 / c.Length;
        return new VpdqComparison(qPercent, cPercent, q.Length, c.Length,
            qPercent >= QueryMatchThresholdPercent && cPercent >= ComparedMatchThresholdPercent);
    }

    private static int CountMatched(PdqHash[] from, PdqHash[] to, int maxDistance)
    {
        var n = 0;
        foreach (var a in from)
        {
            foreach (var b in to)
            {
                if (a.DistanceTo(b) <= maxDistance)
                {
                    n++;
                    break;
                }
            }
        }

        return n;
    }
}
