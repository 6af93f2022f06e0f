using Warden.Core.Hashing.Pdq;

namespace Warden.Review.Cases;

/// <summary>Where and how the uploader sent a file (from the submitting API call).</summary>
/// <param name="IpAddress">Upload IP (v4 or v6).</param>
/// <param name="Port">Source port, when known.</param>
/// <param name="UploadedAt">When the platform received it.</param>
/// <param name="Url">Where it was (to be) published.</param>
/// <param name="OriginalFileName">The name the uploader gave it.</param>
/// <param name="DeviceId">A device identifier, when the platform has one.</param>
public sealed record UploadContext(
    string? IpAddress = null,
    int? Port = null,
    DateTimeOffset? UploadedAt = null,
    string? Url = null,
    string? OriginalFileName = null,
    string? DeviceId = null);

/// <summary>One bank match of a submission.</summary>
/// <param name="BankName">The bank.</param>
/// <param name="SignalType">pdq, md5, sha1, sha256…</param>
/// <param name="Distance">0 for exact signals, Hamming distance for PDQ.</param>
/// <param name="Labels">The entry's labels (<c>classification</c> A1–B2, <c>category</c>, <c>generativeAi</c>).</param>
public sealed record MatchEvidence(string BankName, string SignalType, int Distance, IReadOnlyDictionary<string, string> Labels);

/// <summary>A submitted file that matched at least one bank (or was routed to review).</summary>
/// <param name="SubmissionId">The platform's id of the submission (unique).</param>
/// <param name="UploaderId">The platform's user id: cases are per uploader.</param>
/// <param name="ReceivedAt">When Warden got it.</param>
/// <param name="Pdq">PDQ of the image, when it is one and decoded.</param>
/// <param name="Hashes">Digests of the file as uploaded (<c>md5</c>, <c>sha1</c>, <c>sha256</c>), before any change.</param>
/// <param name="Matches">Why it is here.</param>
/// <param name="Context">Upload context.</param>
/// <param name="EvidenceRef">The evidence vault item, when preservation is on.</param>
/// <param name="ProvenanceLinks">AI-provenance findings (a C2PA generator, a model fingerprint link).</param>
/// <param name="Raw">
/// The uploader-supplied texts as they arrived, for the fields <see cref="CaseBuilder"/> had to change to make
/// them XML-1.0-safe and within NCMEC's lengths (null when nothing changed). The case log keeps the raw
/// submission too: this is the evidence record of what the platform sent.
/// </param>
/// <param name="Model">For a model file (checkpoint, LoRA): what it is and which banked models it derives from; null for media.</param>
public sealed record MatchedSubmission(
    string SubmissionId,
    string UploaderId,
    DateTimeOffset ReceivedAt,
    PdqHash? Pdq,
    IReadOnlyDictionary<string, string> Hashes,
    IReadOnlyList<MatchEvidence> Matches,
    UploadContext Context,
    string? EvidenceRef = null,
    IReadOnlyList<string>? ProvenanceLinks = null,
    RawUploadText? Raw = null,
    ModelSubject? Model = null);

/// <summary>Raw values of the text fields that were changed at intake (a null member was kept as sent).</summary>
/// <param name="UploaderId">The uploader id as sent.</param>
/// <param name="IpAddress">The upload IP as sent.</param>
/// <param name="Url">The URL as sent.</param>
/// <param name="OriginalFileName">The file name as sent.</param>
/// <param name="DeviceId">The device id as sent.</param>
public sealed record RawUploadText(string? UploaderId = null, string? IpAddress = null, string? Url = null, string? OriginalFileName = null, string? DeviceId = null)
{
    /// <summary>The names of the fields that were changed (for notes in the report).</summary>
    public IEnumerable<string> ChangedFields()
    {
        if (UploaderId is not null)
        {
            yield return "uploader id";
        }

        if (IpAddress is not null)
        {
            yield return "upload IP";
        }

        if (Url is not null)
        {
            yield return "URL";
        }

        if (OriginalFileName is not null)
        {
            yield return "file name";
        }

        if (DeviceId is not null)
        {
            yield return "device id";
        }
    }
}

/// <summary>What the reviewer concluded about a cluster.</summary>
public enum Verdict
{
    /// <summary>Apparent CSAM (or another reportable incident): report it.</summary>
    Confirmed,

    /// <summary>Not what the match said: feeds the allow-list bank and the source's feedback.</summary>
    FalsePositive,
}

/// <summary>A decision on a whole cluster.</summary>
/// <param name="Verdict">Confirmed or false positive.</param>
/// <param name="Reviewer">Who decided.</param>
/// <param name="At">When.</param>
/// <param name="Classification">Industry classification A1, A2, B1 or B2 (confirmed only).</param>
/// <param name="FileAnnotations">NCMEC file annotations (e.g. <c>generativeAi</c>, <c>viral</c>).</param>
/// <param name="IncidentType">NCMEC incident type (one of <see cref="Reporting.CyberTipVocabulary.IncidentTypes"/>).</param>
/// <param name="DecidedWithoutViewing">True when policy allowed deciding a known-hash match without looking; the record says so.</param>
/// <param name="Note">Free text.</param>
public sealed record ClusterDecision(
    Verdict Verdict,
    string Reviewer,
    DateTimeOffset At,
    string? Classification = null,
    IReadOnlySet<string>? FileAnnotations = null,
    string? IncidentType = null,
    bool DecidedWithoutViewing = false,
    string? Note = null);

/// <summary>The uploader's past, for priority.</summary>
/// <param name="PriorConfirmedCases">Earlier cases of this uploader with a confirmed cluster.</param>
/// <param name="PriorReports">Earlier reports filed about this uploader.</param>
public sealed record UploaderHistory(int PriorConfirmedCases, int PriorReports)
{
    /// <summary>No history.</summary>
    public static UploaderHistory None { get; } = new(0, 0);
}

/// <summary>ReviewCase life cycle.</summary>
public enum CaseStatus
{
    /// <summary>At least one cluster awaits a decision.</summary>
    Open,

    /// <summary>Every cluster is decided.</summary>
    Decided,

    /// <summary>A report was filed; new matches from the uploader open a new case.</summary>
    Reported,

    /// <summary>Closed without a report (all false positives); new matches open a new case.</summary>
    Closed,
}

/// <summary>Near-duplicates inside a case, shown as one representative; one decision covers all members.</summary>
public sealed class Cluster
{
    private readonly List<MatchedSubmission> _members = [];

    internal Cluster(string id, MatchedSubmission representative)
    {
        Id = id;
        Representative = representative;
        _members.Add(representative);
    }

    /// <summary>Cluster id (unique in its case).</summary>
    public string Id { get; }

    /// <summary>The member shown to the reviewer (the first one).</summary>
    public MatchedSubmission Representative { get; }

    /// <summary>All members, representative first.</summary>
    public IReadOnlyList<MatchedSubmission> Members => _members;

    /// <summary>The decision, when made; it applies to every member, including later ones.</summary>
    public ClusterDecision? Decision { get; internal set; }

    /// <summary>Members that were in the cluster when it was decided (later ones inherit the decision).</summary>
    public int MembersAtDecision { get; internal set; }

    internal void Add(MatchedSubmission s) => _members.Add(s);
}

/// <summary>Matched content of one uploader, grouped into clusters.</summary>
public sealed class ReviewCase
{
    private readonly List<Cluster> _clusters = [];
    private readonly Dictionary<string, Cluster> _bySubmission = new(StringComparer.Ordinal);

    internal ReviewCase(string id, string uploaderId, DateTimeOffset openedAt, string? rawUploaderId = null)
    {
        Id = id;
        UploaderId = uploaderId;
        RawUploaderId = rawUploaderId ?? uploaderId;
        OpenedAt = openedAt;
        UpdatedAt = openedAt;
    }

    /// <summary>ReviewCase id.</summary>
    public string Id { get; }

    /// <summary>The uploader (XML-safe and at most 255 characters: see <see cref="RawUploaderId"/>).</summary>
    public string UploaderId { get; }

    /// <summary>The uploader id exactly as sent; cases are grouped by it, so ids that differ only in unsafe characters never share a case.</summary>
    public string RawUploaderId { get; }

    /// <summary>When the first submission arrived.</summary>
    public DateTimeOffset OpenedAt { get; }

    /// <summary>When the last submission arrived or a decision was made.</summary>
    public DateTimeOffset UpdatedAt { get; internal set; }

    /// <summary>Life cycle state.</summary>
    public CaseStatus Status { get; internal set; }

    /// <summary>Clusters in creation order.</summary>
    public IReadOnlyList<Cluster> Clusters => _clusters;

    /// <summary>Number of submissions.</summary>
    public int ItemCount => _bySubmission.Count;

    /// <summary>All submissions, cluster by cluster.</summary>
    public IEnumerable<MatchedSubmission> Submissions => _clusters.SelectMany(c => c.Members);

    /// <summary>The most severe match label so far (see <see cref="CasePriority"/>).</summary>
    public int MaxSeverity { get; private set; }

    /// <summary>Whether any submission carries an AI-provenance signal.</summary>
    public bool HasAiProvenance { get; private set; }

    /// <summary>The latest priority score (see <see cref="CasePriority"/>).</summary>
    public int Priority { get; internal set; }

    /// <summary>The cluster holding a submission, or null.</summary>
    public Cluster? ClusterOf(string submissionId) => _bySubmission.GetValueOrDefault(submissionId);

    /// <summary>The decision covering a submission (its cluster's), or null while undecided.</summary>
    public ClusterDecision? DecisionFor(string submissionId) => ClusterOf(submissionId)?.Decision;

    /// <summary>True when no cluster awaits a decision.</summary>
    public bool IsFullyDecided => _clusters.All(c => c.Decision is not null);

    internal bool Contains(string submissionId) => _bySubmission.ContainsKey(submissionId);

    internal void AddCluster(Cluster c)
    {
        _clusters.Add(c);
        _bySubmission[c.Representative.SubmissionId] = c;
        Aggregate(c.Representative);
    }

    internal void AddMember(Cluster c, MatchedSubmission s)
    {
        c.Add(s);
        _bySubmission[s.SubmissionId] = c;
        Aggregate(s);
    }

    private void Aggregate(MatchedSubmission s)
    {
        MaxSeverity = Math.Max(MaxSeverity, CasePriority.SeverityOf(s));
        HasAiProvenance |= CasePriority.HasAiProvenance(s);
    }
}
