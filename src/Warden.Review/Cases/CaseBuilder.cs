using Warden.Core.Hashing.Pdq;
using Warden.Review.Reporting;

namespace Warden.Review.Cases;

/// <summary>ReviewCase grouping settings.</summary>
public sealed record CaseBuilderOptions
{
    /// <summary>
    /// PDQ distance at or below which two images are near-duplicates of one cluster. Tight on purpose (10 of
    /// 256 bits, against the match threshold of 31): a cluster decision covers items nobody looked at, so
    /// they must be the same picture re-encoded, resized or lightly edited.
    /// </summary>
    public int ClusterThreshold { get; init; } = 10;
}

/// <summary>
/// Groups matched submissions into one open case per uploader and, inside a case, near-duplicates into
/// clusters. A new image joins the cluster whose representative is nearest within the threshold, else it
/// starts a new cluster; files without a PDQ (video, models, undecodable) cluster by exact digest. Adding
/// an item compares it with the case's cluster representatives only (a flat array of PDQs, popcount
/// distance), so a flood of N near-identical items costs O(N), not O(N²), and N distinct ones O(N·C) with
/// C clusters. Thread-safe.
/// </summary>
public sealed class CaseBuilder
{
    private readonly CaseBuilderOptions _options;
    private readonly Func<string, UploaderHistory> _history;
    private readonly Func<string> _newId;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ReviewCase> _cases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CaseIndex> _openByUploader = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ReviewCase> _caseBySubmission = new(StringComparer.Ordinal);

    /// <summary>Creates a builder.</summary>
    /// <param name="options">Thresholds.</param>
    /// <param name="history">Looks up an uploader's history for priority (default: none).</param>
    /// <param name="newId">Id generator for cases and clusters (default: time-ordered GUIDs).</param>
    public CaseBuilder(CaseBuilderOptions? options = null, Func<string, UploaderHistory>? history = null, Func<string>? newId = null)
    {
        _options = options ?? new CaseBuilderOptions();
        if (_options.ClusterThreshold is < 0 or > PdqHash.Bits)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "The cluster threshold is 0..256 bits.");
        }

        _history = history ?? (_ => UploaderHistory.None);
        _newId = newId ?? (() => Guid.CreateVersion7().ToString("N"));
    }

    /// <summary>Every case, open or not.</summary>
    public IReadOnlyCollection<ReviewCase> Cases
    {
        get
        {
            lock (_lock)
            {
                return [.. _cases.Values];
            }
        }
    }

    /// <summary>Open and decided (not yet reported or closed) cases, highest priority first, then oldest.</summary>
    public IReadOnlyList<ReviewCase> Queue()
    {
        lock (_lock)
        {
            return [.. _cases.Values.Where(c => c.Status is CaseStatus.Open or CaseStatus.Decided).OrderByDescending(c => c.Priority).ThenBy(c => c.OpenedAt)];
        }
    }

    /// <summary>A case by id, or null.</summary>
    public ReviewCase? Find(string caseId)
    {
        lock (_lock)
        {
            return _cases.GetValueOrDefault(caseId);
        }
    }

    /// <summary>Adds a submission (idempotent by submission id) and returns its case.</summary>
    public ReviewCase Add(MatchedSubmission submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        ArgumentException.ThrowIfNullOrWhiteSpace(submission.SubmissionId);
        ArgumentException.ThrowIfNullOrWhiteSpace(submission.UploaderId);
        var key = submission.Raw?.UploaderId ?? submission.UploaderId;
        submission = SubmissionText.Normalise(submission);
        lock (_lock)
        {
            if (_caseBySubmission.TryGetValue(submission.SubmissionId, out var existing))
            {
                return existing;
            }

            if (!_openByUploader.TryGetValue(key, out var index))
            {
                var c = new ReviewCase(_newId(), submission.UploaderId, submission.ReceivedAt, key);
                index = new CaseIndex(c);
                _cases[c.Id] = c;
                _openByUploader[key] = index;
            }

            var @case = index.ReviewCase;
            var cluster = index.FindCluster(submission, _options.ClusterThreshold);
            if (cluster is null)
            {
                cluster = new Cluster(_newId(), submission);
                @case.AddCluster(cluster);
                index.Register(cluster);
                @case.Status = CaseStatus.Open; // a new cluster awaits a decision
            }
            else
            {
                // Joining a cluster inherits its decision, so the case's status does not change.
                @case.AddMember(cluster, submission);
            }

            _caseBySubmission[submission.SubmissionId] = @case;
            if (submission.ReceivedAt > @case.UpdatedAt)
            {
                @case.UpdatedAt = submission.ReceivedAt;
            }

            @case.Priority = CasePriority.Score(@case, _history(@case.RawUploaderId));
            return @case;
        }
    }

    /// <summary>Records a decision on a cluster; it covers all its members (present and future).</summary>
    public void Decide(string caseId, string clusterId, ClusterDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        Validate(decision);
        if (decision.Note is { } note && XmlSafeText.Field(note, SubmissionText.MaxNote) != note)
        {
            // Reviewer text reaches reports and exports: it is made XML-safe where it enters.
            decision = decision with { Note = XmlSafeText.Field(note, SubmissionText.MaxNote) };
        }

        lock (_lock)
        {
            var @case = _cases.GetValueOrDefault(caseId) ?? throw new KeyNotFoundException($"No case {caseId}.");
            if (@case.Status is CaseStatus.Reported or CaseStatus.Closed)
            {
                throw new InvalidOperationException($"Case {caseId} is {@case.Status}; decisions are final once reported or closed.");
            }

            var cluster = @case.Clusters.FirstOrDefault(c => c.Id == clusterId) ?? throw new KeyNotFoundException($"No cluster {clusterId} in case {caseId}.");
            cluster.Decision = decision;
            cluster.MembersAtDecision = cluster.Members.Count;
            if (decision.At > @case.UpdatedAt)
            {
                @case.UpdatedAt = decision.At;
            }

            @case.Status = @case.IsFullyDecided ? CaseStatus.Decided : CaseStatus.Open;
        }
    }

    /// <summary>
    /// Takes back a cluster's decision while the case is neither reported nor closed: the cluster awaits a
    /// decision again. Returns the decision that was undone.
    /// </summary>
    public ClusterDecision Undo(string caseId, string clusterId)
    {
        lock (_lock)
        {
            var @case = _cases.GetValueOrDefault(caseId) ?? throw new KeyNotFoundException($"No case {caseId}.");
            if (@case.Status is CaseStatus.Reported or CaseStatus.Closed)
            {
                throw new InvalidOperationException($"Case {caseId} is {@case.Status}; decisions are final once reported or closed.");
            }

            var cluster = @case.Clusters.FirstOrDefault(c => c.Id == clusterId) ?? throw new KeyNotFoundException($"No cluster {clusterId} in case {caseId}.");
            var was = cluster.Decision ?? throw new InvalidOperationException("The cluster has no decision to undo.");
            cluster.Decision = null;
            cluster.MembersAtDecision = 0;
            @case.Status = CaseStatus.Open;
            return was;
        }
    }

    /// <summary>Marks a case reported (or closed): later matches from the uploader open a new case.</summary>
    public void Close(string caseId, bool reported)
    {
        lock (_lock)
        {
            var @case = _cases.GetValueOrDefault(caseId) ?? throw new KeyNotFoundException($"No case {caseId}.");
            @case.Status = reported ? CaseStatus.Reported : CaseStatus.Closed;
            if (_openByUploader.TryGetValue(@case.RawUploaderId, out var index) && index.ReviewCase == @case)
            {
                _openByUploader.Remove(@case.RawUploaderId);
            }
        }
    }

    /// <summary>Refuses a decision outside NCMEC's vocabulary (shared with <see cref="DbCaseStore"/>).</summary>
    internal static void Validate(ClusterDecision d)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(d.Reviewer);
        if (d.Classification is not null && !CyberTipVocabulary.IndustryClassifications.Contains(d.Classification))
        {
            throw new ArgumentException($"Industry classification '{d.Classification}' is not one of A1, A2, B1, B2.", nameof(d));
        }

        if (d.IncidentType is not null && !CyberTipVocabulary.IncidentTypes.Contains(d.IncidentType))
        {
            throw new ArgumentException($"'{d.IncidentType}' is not an NCMEC incident type.", nameof(d));
        }

        foreach (var a in d.FileAnnotations ?? new HashSet<string>())
        {
            if (!CyberTipVocabulary.FileAnnotations.Contains(a))
            {
                throw new ArgumentException($"'{a}' is not an NCMEC file annotation.", nameof(d));
            }
        }

        if (d.Verdict == Verdict.FalsePositive && (d.Classification is not null || d.FileAnnotations is { Count: > 0 }))
        {
            throw new ArgumentException("A false positive carries no classification or annotations.", nameof(d));
        }
    }

    /// <summary>Per-case lookup structures: representatives' PDQs in a flat list, exact digests in a map.</summary>
    private sealed class CaseIndex(ReviewCase c)
    {
        private readonly List<PdqHash> _repHashes = [];
        private readonly List<Cluster> _repClusters = [];
        private readonly Dictionary<string, Cluster> _byDigest = new(StringComparer.Ordinal);

        public ReviewCase ReviewCase { get; } = c;

        public Cluster? FindCluster(MatchedSubmission s, int threshold)
        {
            if (s.Pdq is { } pdq)
            {
                var best = -1;
                var bestDistance = int.MaxValue;
                var reps = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_repHashes);
                for (var i = 0; i < reps.Length; i++)
                {
                    var d = reps[i].DistanceTo(pdq);
                    if (d < bestDistance)
                    {
                        bestDistance = d;
                        best = i;
                        if (d == 0)
                        {
                            break;
                        }
                    }
                }

                if (best >= 0 && bestDistance <= threshold)
                {
                    return _repClusters[best];
                }
            }

            // Identical files cluster whatever their PDQ (and files without one can only cluster this way).
            var key = DigestKey(s);
            return key is not null ? _byDigest.GetValueOrDefault(key) : null;
        }

        public void Register(Cluster cluster)
        {
            var s = cluster.Representative;
            if (s.Pdq is { } pdq)
            {
                _repHashes.Add(pdq);
                _repClusters.Add(cluster);
            }

            if (DigestKey(s) is { } key)
            {
                _byDigest.TryAdd(key, cluster);
            }
        }

        private static string? DigestKey(MatchedSubmission s)
        {
            foreach (var name in (string[])["sha256", "sha1", "md5"])
            {
                if (s.Hashes.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v))
                {
                    return name + ":" + v.ToLowerInvariant();
                }
            }

            return null;
        }
    }
}
