using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;

namespace Warden.Core.Matching;

/// <summary>A span of the query video, in seconds.</summary>
/// <param name="Start">First matched frame's timestamp.</param>
/// <param name="End">Last matched frame's timestamp plus one sampling interval.</param>
public readonly record struct TimeRange(double Start, double End);

/// <summary>One video of the index that the query matched.</summary>
/// <param name="Id">The id it was added with.</param>
/// <param name="SignalType">`vpdq` or `tmk_pdqf`.</param>
/// <param name="QueryMatchPercent">vPDQ: share of the query's considered frames that matched this video.</param>
/// <param name="ComparedMatchPercent">vPDQ: share of this video's considered frames that some query frame matched.</param>
/// <param name="Level1">TMK: cosine of the pure averages.</param>
/// <param name="Level2">TMK: the temporal-kernel score.</param>
/// <param name="Ranges">vPDQ: the time ranges of the query whose frames matched (for a reviewer to jump to).</param>
public sealed record VideoMatch(long Id, string SignalType, double QueryMatchPercent, double ComparedMatchPercent, float Level1, float Level2, IReadOnlyList<TimeRange> Ranges);

/// <summary>Thresholds for <see cref="VideoIndex.Match"/>; defaults are python-threatexchange's and TMK's.</summary>
/// <param name="FrameDistance">Per-frame PDQ distance (≤).</param>
/// <param name="QueryMatchPercent">Minimum share of query frames matched.</param>
/// <param name="ComparedMatchPercent">Minimum share of the indexed video's frames matched.</param>
/// <param name="Level1">TMK level-1 threshold.</param>
/// <param name="Level2">TMK level-2 threshold.</param>
public sealed record VideoMatchOptions(
    int FrameDistance = VpdqMatcher.DistanceThreshold,
    double QueryMatchPercent = VpdqMatcher.QueryMatchThresholdPercent,
    double ComparedMatchPercent = VpdqMatcher.ComparedMatchThresholdPercent,
    float Level1 = TmkFeatures.DefaultLevel1Threshold,
    float Level2 = TmkFeatures.DefaultLevel2Threshold);

/// <summary>
/// Video matching over many indexed videos. vPDQ: every considered frame (python-threatexchange's rule:
/// de-duplicated, quality ≥ 50) of every video goes into one <see cref="PdqIndex"/>; a query's frames are
/// searched there and the hits aggregated per video into the query and compared match percentages, giving
/// the same numbers as <see cref="VpdqMatcher.Compare"/> against each video in turn. TMK: level-1 cosine over
/// the (normalised) pure averages, then level 2 to confirm the candidates. Build, then query from many threads.
/// </summary>
public sealed class VideoIndex : IDisposable
{
    private readonly PdqIndex _frames = new();
    private readonly List<int> _frameOwner = [];
    private readonly List<(long Id, int Frames)> _videos = [];
    private readonly List<(long Id, TmkFeatures Features, float[] Unit)> _tmk = [];

    /// <summary>Videos with vPDQ frames indexed.</summary>
    public int VpdqCount => _videos.Count;

    /// <summary>TMK entries indexed.</summary>
    public int TmkCount => _tmk.Count;

    /// <summary>Adds a vPDQ hash; returns false when no frame survives the quality filter (such a video can never match).</summary>
    public bool AddVpdq(long id, VpdqHash hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        var kept = VpdqMatcher.Considered(hash.Frames, VpdqMatchRule.PythonThreatExchange);
        if (kept.Length == 0)
        {
            return false;
        }

        var slot = _videos.Count;
        _videos.Add((id, kept.Length));
        foreach (var h in kept)
        {
            _frames.Add(h, _frameOwner.Count);
            _frameOwner.Add(slot);
        }

        return true;
    }

    /// <summary>Adds TMK features.</summary>
    public void AddTmk(long id, TmkFeatures features)
    {
        ArgumentNullException.ThrowIfNull(features);
        var unit = (float[])features.PureAverage.Clone();
        var norm = MathF.Sqrt(unit.Sum(x => x * x));
        if (norm > 0)
        {
            for (var i = 0; i < unit.Length; i++)
            {
                unit[i] /= norm;
            }
        }

        _tmk.Add((id, features, unit));
    }

    /// <summary>Every indexed video the query matches by vPDQ and/or TMK.</summary>
    public List<VideoMatch> Match(VpdqHash? vpdq, TmkFeatures? tmk, VideoMatchOptions? options = null)
    {
        options ??= new VideoMatchOptions();
        var results = new List<VideoMatch>();
        if (vpdq is not null && _videos.Count > 0)
        {
            MatchVpdq(vpdq, options, results);
        }

        if (tmk is not null && _tmk.Count > 0)
        {
            MatchTmk(tmk, options, results);
        }

        return results;
    }

    private void MatchVpdq(VpdqHash query, VideoMatchOptions options, List<VideoMatch> results)
    {
        var kept = VpdqMatcher.Considered(query.Frames, VpdqMatchRule.PythonThreatExchange);
        if (kept.Length == 0)
        {
            return;
        }

        // Per video: which query frames matched (by index in kept) and which of its frames were hit.
        var queryHits = new Dictionary<int, HashSet<int>>();
        var targetHits = new Dictionary<int, HashSet<long>>();
        var found = new List<PdqMatch>();
        for (var q = 0; q < kept.Length; q++)
        {
            found.Clear();
            _frames.Search(kept[q], options.FrameDistance, found);
            foreach (var m in found)
            {
                var video = _frameOwner[(int)m.Id];
                (queryHits.TryGetValue(video, out var qs) ? qs : queryHits[video] = []).Add(q);
                (targetHits.TryGetValue(video, out var ts) ? ts : targetHits[video] = []).Add(m.Id);
            }
        }

        foreach (var (video, qs) in queryHits)
        {
            var (id, frames) = _videos[video];
            var qPercent = qs.Count * 100.0 / kept.Length;
            var cPercent = targetHits[video].Count * 100.0 / frames;
            if (qPercent >= options.QueryMatchPercent && cPercent >= options.ComparedMatchPercent)
            {
                var matchedHashes = qs.Select(i => kept[i]).ToHashSet();
                results.Add(new VideoMatch(id, "vpdq", qPercent, cPercent, 0, 0, Ranges(query, matchedHashes)));
            }
        }
    }

    private void MatchTmk(TmkFeatures query, VideoMatchOptions options, List<VideoMatch> results)
    {
        var unit = (float[])query.PureAverage.Clone();
        var norm = MathF.Sqrt(unit.Sum(x => x * x));
        foreach (var (id, features, u) in _tmk)
        {
            if (!TmkFeatures.Compatible(query, features))
            {
                continue;
            }

            // Level 1 on unit vectors is a dot product (cheap screen); the reference's exact cosine is then recomputed.
            var dot = 0f;
            for (var i = 0; i < u.Length; i++)
            {
                dot += u[i] * unit[i];
            }

            if (norm == 0 || (dot / norm) < options.Level1 - 1e-4f)
            {
                continue;
            }

            var l1 = TmkFeatures.Level1(query, features);
            if (l1 < options.Level1)
            {
                continue;
            }

            var l2 = TmkFeatures.Level2(query, features);
            if (l2 >= options.Level2)
            {
                results.Add(new VideoMatch(id, "tmk_pdqf", 0, 0, l1, l2, []));
            }
        }
    }

    /// <summary>
    /// The query's matched stretches: frames whose hash matched (quality ≥ 50), merged while the gap is at most
    /// two sampling intervals; each range ends one interval after its last frame.
    /// </summary>
    internal static List<TimeRange> Ranges(VpdqHash query, HashSet<PdqHash> matched)
    {
        var times = query.Frames.Select(f => (double)f.Timestamp).ToList();
        var interval = 0.0;
        for (var i = 1; i < times.Count; i++)
        {
            var d = times[i] - times[i - 1];
            if (d > 0 && (interval == 0 || d < interval))
            {
                interval = d;
            }
        }

        var ranges = new List<TimeRange>();
        foreach (var f in query.Frames)
        {
            if (f.Quality < VpdqMatcher.QualityThreshold || !matched.Contains(f.Hash))
            {
                continue;
            }

            var t = (double)f.Timestamp;
            if (ranges.Count > 0 && t - ranges[^1].End <= interval + 1e-6)
            {
                ranges[^1] = ranges[^1] with { End = t + interval };
            }
            else
            {
                ranges.Add(new TimeRange(t, t + interval));
            }
        }

        return ranges;
    }

    /// <inheritdoc />
    public void Dispose() => _frames.Dispose();
}
