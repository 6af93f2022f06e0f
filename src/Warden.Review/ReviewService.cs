using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Evidence;
using Warden.Review.Reporting;
using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Storage;

namespace Warden.Review;

/// <summary>Upload context the match API was given with the content.</summary>
/// <param name="UploaderId">Platform user id.</param>
/// <param name="IpAddress">Upload IP.</param>
/// <param name="Url">Where the content is or would be published.</param>
/// <param name="UploadedAt">When the platform received it.</param>
/// <param name="FileName">The uploader's file name.</param>
public sealed record UploaderContext(string? UploaderId, string? IpAddress, string? Url, DateTimeOffset? UploadedAt, string? FileName);

/// <summary>One actionable hit of an upload (a block-list hit that was neither suppressed nor flood-quarantined), as review keeps it.</summary>
/// <param name="Bank">Bank name.</param>
/// <param name="SignalType">The matching signal's type.</param>
/// <param name="Distance">Distance (0 for exact types).</param>
/// <param name="Labels">The entry's labels.</param>
public sealed record ReviewHit(string Bank, string SignalType, int Distance, IReadOnlyDictionary<string, string> Labels);

/// <summary>A refusal the console shows as-is (HTTP status + message).</summary>
public sealed class ReviewException(int status, string code, string message) : Exception(message)
{
    /// <summary>HTTP status.</summary>
    public int Status { get; } = status;

    /// <summary>Stable code.</summary>
    public string Code { get; } = code;
}

/// <summary>
/// The review side of <c>warden serve</c>: turns actionable matches into cases (per uploader, clustered by
/// PDQ ≤ 10), preserves media in the evidence vault when configured, records decisions, reveals and
/// reports. Cases live in the configured database (<see cref="DbCaseStore"/>): nothing about them is held in
/// one node's memory except a capped cache of cluster representatives. Upload context that is evidence (IP,
/// content URL, file name) is sealed with the vault's key ring before it is written.
/// </summary>
public sealed partial class ReviewService : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly ReviewOptions _options;
    private readonly BankStore _banks;
    private readonly ILogger<ReviewService> _log;
    private readonly Lock _write = new();
    private readonly SemaphoreSlim _previewGate = new(Math.Max(1, Environment.ProcessorCount));
    private readonly IReviewDecisionFeedback? _decisionFeedback;
    private long _reconciledSeq;

    /// <summary>
    /// Opens the review database, the vault (when configured) and replays the case log. <paramref name="database"/>
    /// is the configured database (the target <paramref name="banks"/> was opened on), checked for a legacy review file.
    /// </summary>
    public ReviewService(ReviewOptions options, string database, BankStore banks, ILogger<ReviewService> log, IReviewDecisionFeedback? decisionFeedback = null)
    {
        _decisionFeedback = decisionFeedback;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(database);
        _options = options;
        _banks = banks;
        _log = log;
        ArgumentNullException.ThrowIfNull(banks);
        if (_options.Database is null && LegacyReviewFile.Pending(database) is { } legacy)
        {
            // Starting on an empty review state beside the old file would hide every case, user and audit record.
            throw new StorageException(
                StorageError.Conflict,
                $"The review state is still in {legacy}; it now lives in the configured database. Move it with " +
                $"'warden review migrate --db <database>' (it verifies the audit chain), then start again.");
        }

        // The configured database, unless Review:Database names another (a separate database for the review side).
        Database = _options.Database is null ? ReviewDatabase.On(banks.Database) : ReviewDatabase.Open(_options.Database);
        Store = new ReviewStore(Database);
        Audit = new AuditLog(new DbAuditStore(Database));
        Grants = new RevealGrants(256L << 20);
        Previews = new PreviewCache(Math.Clamp(_options.PreviewCacheMegabytes, 1, 4096) * (1L << 20));
        if (!string.IsNullOrWhiteSpace(_options.EvidenceDirectory) && !string.IsNullOrWhiteSpace(_options.MasterKey))
        {
            var keys = VaultKeyRing.FromBase64(new Dictionary<string, string> { [_options.MasterKeyId] = _options.MasterKey }, _options.MasterKeyId);
            var blobs = new FileSystemBlobStore(_options.EvidenceDirectory);
            Vault = new EvidenceVault(blobs, new DbEvidenceCatalog(Database), keys, audit: Audit);

            // The chain's head is anchored in the blob store, signed with a key derived from the master key,
            // which the database does not hold.
            Checkpoints = new AuditCheckpoints(Audit, blobs, AuditCheckpoints.DeriveKey(Convert.FromBase64String(_options.MasterKey)));
        }

        if (!string.IsNullOrWhiteSpace(_options.MasterKey))
        {
            Seal = new ContextSeal(VaultKeyRing.FromBase64(new Dictionary<string, string> { [_options.MasterKeyId] = _options.MasterKey }, _options.MasterKeyId));
        }
        else if (_options.CaseIntake)
        {
            LogContextDropped(_log);
        }

        Deliveries = new DbDeliveryStore(Database, Seal);
        Leases = new WorkLeases(Database);

        Cases = new DbCaseStore(Database, new CaseEventCodec(OpenSubmission, b => JsonSerializer.Deserialize<DecisionRecord>(b, Json)!.ToDecision(), b => JsonSerializer.Deserialize<CloseRecord>(b, Json)!.Reported), cacheRepresentatives: Math.Max(1, _options.CaseCacheRepresentatives));
        SealPlaintextContext();
    }

    /// <summary>Seals upload context, or null without a master key (then IP, URL and file name are not kept).</summary>
    public ContextSeal? Seal { get; }

    /// <summary>The review tables (in the configured database).</summary>
    public ReviewDatabase Database { get; }

    /// <summary>Console tables.</summary>
    public ReviewStore Store { get; }

    /// <summary>Hash-chained audit log.</summary>
    public AuditLog Audit { get; }

    /// <summary>Report outbox.</summary>
    public DbDeliveryStore Deliveries { get; }

    /// <summary>Leases on periodic work (the retention sweep) shared by every node.</summary>
    public WorkLeases Leases { get; }

    /// <summary>Reveal grants (original bytes held for their owner until redeemed or expired).</summary>
    internal RevealGrants Grants { get; }

    /// <summary>Obscured derivatives in memory.</summary>
    internal PreviewCache Previews { get; }

    /// <summary>Signed checkpoints of the audit chain in the blob store, or null when preservation (and so the blob store) is off.</summary>
    public AuditCheckpoints? Checkpoints { get; }

    /// <summary>Evidence vault, or null when preservation is off.</summary>
    public EvidenceVault? Vault { get; }

    /// <summary>Cases (in the configured database).</summary>
    public DbCaseStore Cases { get; }

    /// <summary>Settings.</summary>
    public ReviewOptions Options => _options;

    /// <summary>
    /// Called by the match API after an upload matched with its actionable hits (block list, not suppressed or
    /// flood-quarantined: the match actions decide which): they become a case item. Preserves the media when the
    /// vault is configured.
    /// </summary>
    public async Task IntakeAsync(byte[] data, ContentHashes hashes, IReadOnlyList<ReviewHit> hits, UploaderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        ArgumentNullException.ThrowIfNull(hits);
        ArgumentNullException.ThrowIfNull(context);
        if (hits.Count == 0 || !_options.CaseIntake)
        {
            return;
        }

        var submissionId = Guid.CreateVersion7().ToString("N");
        var receivedAt = DateTimeOffset.UtcNow;
        string? evidence = null;
        if (Vault is not null)
        {
            var sealedContext = new Dictionary<string, string> { ["submission"] = submissionId, ["uploader"] = context.UploaderId ?? "" };
            evidence = await Vault.StoreAsync(data, sealedContext, null, EvidenceActor.Component("system:match-api"), cancellationToken).ConfigureAwait(false);
        }

        var record = new SubmissionRecord(
            submissionId,
            string.IsNullOrWhiteSpace(context.UploaderId) ? "unknown" : context.UploaderId,
            receivedAt.ToUnixTimeMilliseconds(),
            hashes.Image?.Pdq.Hash.ToString(),
            new Dictionary<string, string> { ["md5"] = hashes.Exact.Md5Hex, ["sha1"] = hashes.Exact.Sha1Hex, ["sha256"] = hashes.Exact.Sha256Hex },
            [.. hits.Select(h => new MatchRecord(h.Bank, h.SignalType, h.Distance, h.Labels))],
            context.IpAddress,
            context.Url,
            context.UploadedAt?.ToUnixTimeMilliseconds(),
            context.FileName,
            evidence);

        // Clustering needs only the uploader, the PDQ and the digests: the context is sealed before the write.
        Cases.Add(record.ToSubmission(), JsonSerializer.Serialize(SealContext(record), Json));
    }

    /// <summary>Records a decision on a cluster (durably, then in memory) and audits it.</summary>
    public ClusterDecision Decide(ConsoleUser user, string caseId, string clusterId, DecisionRequest request)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(request);
        var @case = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        var cluster = @case.Clusters.FirstOrDefault(c => c.Id == clusterId) ?? throw new ReviewException(404, "not_found", "No such cluster.");
        var verdict = request.Verdict switch
        {
            "confirmed" => Verdict.Confirmed,
            "false_positive" => Verdict.FalsePositive,
            _ => throw new ReviewException(400, "invalid_request", "verdict is 'confirmed' or 'false_positive'."),
        };

        // One reviewer at a time: the claim is taken here when free (and renewed when one's own), else 409.
        TakeClaim(user, caseId);
        var viewed = cluster.Members.Any(m => m.EvidenceRef is { } e && Vault is not null && Vault.Views(e).Any(v => v.ActorKind == ActorKind.Human && v.What == "revealed"));
        if (!viewed && Vault is not null && cluster.Representative.EvidenceRef is not null && !_options.AllowDecisionWithoutViewing)
        {
            throw new ReviewException(409, "view_required", "Policy requires viewing the media before deciding.");
        }

        var decision = new ClusterDecision(
            verdict,
            user.Username,
            DateTimeOffset.UtcNow,
            verdict == Verdict.Confirmed ? NullIfEmpty(request.Classification) : null,
            verdict == Verdict.Confirmed && request.Annotations is { Count: > 0 } a ? new HashSet<string>(a, StringComparer.Ordinal) : null,
            NullIfEmpty(request.IncidentType),
            DecidedWithoutViewing: !viewed,
            Note: NullIfEmpty(request.Note));
        try
        {
            // Validated first (nothing written when it throws); the cluster, the case and the event in one transaction.
            decision = Cases.Decide(caseId, clusterId, decision, d => JsonSerializer.Serialize(DecisionRecord.From(d), Json));
        }
        catch (ArgumentException ex)
        {
            throw new ReviewException(400, "invalid_request", ex.Message.Split(" (Parameter", StringSplitOptions.None)[0]);
        }
        catch (InvalidOperationException ex)
        {
            throw new ReviewException(409, "conflict", ex.Message);
        }
        catch (KeyNotFoundException)
        {
            throw new ReviewException(404, "not_found", "No such case or cluster.");
        }

        Audit.Append(new AuditEntry(user.Username, "review.decide", "case:" + caseId, new Dictionary<string, string>
        {
            ["cluster"] = clusterId,
            ["verdict"] = request.Verdict,
            ["classification"] = decision.Classification ?? "",
            ["annotations"] = string.Join(',', decision.FileAnnotations ?? new HashSet<string>()),
            ["incident_type"] = decision.IncidentType ?? "",
            ["viewed"] = viewed ? "true" : "false",
            ["members"] = cluster.Members.Count.ToString(CultureInfo.InvariantCulture),
        }));
        try
        {
            // Exchange feedback (opt-in per exchange): queued in the durable outbox, sent by the scheduler.
            if (_decisionFeedback is not null && _decisionFeedback.Decided(caseId, clusterId, decision.At, verdict == Verdict.Confirmed, cluster.Members.SelectMany(m => m.Matches).Select(m => new ReviewedHit(m.BankName, m.SignalType, m.Labels))) > 0
                && !InForce(caseId, clusterId, decision.At))
            {
                _decisionFeedback.Undone(caseId, clusterId, decision.At); // undone meanwhile (another node): recall what was just queued
            }
        }
        catch (StorageException ex)
        {
            LogFeedbackFailed(_log, caseId, ex.Message);
        }

        if (verdict == Verdict.FalsePositive)
        {
            AllowList(user, @case, cluster);
        }

        return decision;
    }

    /// <summary>
    /// The safety net under the call in <see cref="Decide"/>: decisions live in the review database, the feedback
    /// outbox in the exchanges' (they may be two databases, so one transaction cannot hold both). A process that
    /// stored a decision and died before queueing its feedback left a decision event behind; this scan queues the
    /// feedback of every decision event it has not seen yet (made within <paramref name="window"/>, 24 h by default)
    /// whose cluster this node knows. Queueing is idempotent (the key is derived from the decision), so running it
    /// on every node, every tick, after a normal decision, queues nothing twice. Returns how many were queued now.
    /// </summary>
    public int ReconcileDecisionFeedback(TimeSpan? window = null)
    {
        if (_decisionFeedback is null)
        {
            return 0;
        }

        var since = DateTimeOffset.UtcNow - (window ?? TimeSpan.FromHours(24));
        var queued = 0;
        foreach (var e in Store.EventsAfter(Interlocked.Read(ref _reconciledSeq), "decision").ToList())
        {
            var decision = JsonSerializer.Deserialize<DecisionRecord>(e.Body, Json)?.ToDecision();
            List<ReviewedHit>? hits = null;
            if (decision is not null && decision.At >= since && e.ClusterId is { } clusterId)
            {
                lock (_write)
                {
                    hits = Cases.Find(e.CaseId)?.Clusters.FirstOrDefault(c => c.Id == clusterId)?.Members
                        .SelectMany(m => m.Matches).Select(m => new ReviewedHit(m.BankName, m.SignalType, m.Labels)).ToList();
                }
            }

            if (hits is not null && InForce(e.CaseId, e.ClusterId!, decision!.At))
            {
                queued += _decisionFeedback.Decided(e.CaseId, e.ClusterId!, decision!.At, decision.Verdict == Verdict.Confirmed, hits);
            }

            Interlocked.Exchange(ref _reconciledSeq, e.Seq); // only after its feedback is queued (committed)
        }

        return queued;
    }

    /// <summary>
    /// A reveal: after the exposure cap check (which counts it), reads the item's original bytes for this person,
    /// which records one <c>revealed</c> view and its audit entry, and holds those bytes under a short-lived,
    /// single-use grant that only this person can redeem, for this item only. The only way to original bytes.
    /// </summary>
    public async Task<RevealResult> RevealAsync(ConsoleUser user, string caseId, string itemId, string? reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        var vault = Vault ?? throw new ReviewException(404, "not_found", "Evidence preservation is off: there is no media to reveal.");
        RequireItem(caseId, itemId);
        var why = CleanReason(reason);

        // Counted before the read: a read that then fails over-counts, which errs on the reviewer's side.
        var count = Store.TryExpose(user.Id, Today(), _options.DailyExposureCap)
            ?? throw new ReviewException(429, "exposure_cap", $"Daily exposure cap reached ({_options.DailyExposureCap} reveals). Reveals resume tomorrow (UTC).");
        var purpose = why is null ? $"review of case {caseId}" : $"review of case {caseId}: {why}";
        var content = await vault.ReadAsync(itemId, new EvidenceAccess(EvidenceActor.Person(user.Username), purpose, Revealed: true), cancellationToken).ConfigureAwait(false);
        var (token, expires) = Grants.Issue(user.Id, caseId, itemId, content.Media, TimeSpan.FromSeconds(Math.Clamp(_options.RevealSeconds, 5, 600)));
        return new RevealResult(count, token, expires);
    }

    /// <summary>
    /// The original bytes for a redeemed reveal grant (consumed), or a 403 refusal: never without one.
    /// The view was recorded when the grant was issued.
    /// </summary>
    public byte[] Original(ConsoleUser user, string caseId, string itemId, string? grant)
    {
        ArgumentNullException.ThrowIfNull(user);
        _ = Vault ?? throw new ReviewException(404, "not_found", "Evidence preservation is off.");
        RequireItem(caseId, itemId);
        return Grants.Redeem(grant, user.Id, caseId, itemId)
            ?? throw new ReviewException(403, "reveal_required", "The original is served only once after a logged reveal of this item by you; reveal it (again).");
    }

    /// <summary>Re-obscure: drops this person's unredeemed grant, if any.</summary>
    public bool Reobscure(ConsoleUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return Grants.Revoke(user.Id);
    }

    /// <summary>
    /// The obscured derivative of an item as this person's settings draw it (reduced, blurred at least
    /// <see cref="ReviewOptions.MinimumBlurPercent"/>, greyscale by choice), made on the server; records an
    /// <c>obscured</c> view. Undecodable media gets a placeholder. Never the original bytes.
    /// </summary>
    public async Task<ObscuredImage> PreviewAsync(ConsoleUser user, string caseId, string itemId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        var vault = Vault ?? throw new ReviewException(404, "not_found", "Evidence preservation is off.");
        RequireItem(caseId, itemId);
        var look = Look(user);
        var access = new EvidenceAccess(EvidenceActor.Person(user.Username), $"review of case {caseId} (obscured preview)", Revealed: false);
        var key = PreviewCache.Key(itemId, look);
        if (Previews.TryGet(key, out var cached))
        {
            vault.RecordObscuredView(itemId, access);
            return cached;
        }

        await _previewGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var content = await vault.ReadAsync(itemId, access, cancellationToken).ConfigureAwait(false);
            try
            {
                var image = Warden.Core.Imaging.Obscure.Make(content.Media, look);
                Previews.Add(key, image);
                return image;
            }
            finally
            {
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(content.Media);
            }
        }
        finally
        {
            _previewGate.Release();
        }
    }

    /// <summary>
    /// How this person's derivatives look: their settings over the organisation's defaults, with blur never
    /// below the organisation's minimum (blur "off" means the minimum) and size never above the maximum.
    /// </summary>
    public ObscureOptions Look(ConsoleUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var (percent, size) = Store.Display(user.Id);
        var floor = MinimumBlurPercent;
        var blurOn = user.Blur ?? _options.DefaultBlur;
        var strength = blurOn ? Math.Max(floor, percent ?? _options.DefaultBlurPercent) : floor;
        var maxSide = MaxPreviewSize;
        return new ObscureOptions(
            Math.Clamp(size ?? maxSide, Warden.Core.Imaging.Obscure.MinSide, maxSide),
            Math.Min(strength, Warden.Core.Imaging.Obscure.MaxBlurPercent),
            user.Greyscale ?? _options.DefaultGreyscale);
    }

    /// <summary>The lightest blur ever served without a reveal (the organisation's minimum, at least 1 %).</summary>
    public int MinimumBlurPercent => Math.Clamp(_options.MinimumBlurPercent, (int)Warden.Core.Imaging.Obscure.MinBlurPercent, (int)Warden.Core.Imaging.Obscure.MaxBlurPercent);

    /// <summary>The organisation's largest derivative side.</summary>
    public int MaxPreviewSize => Math.Clamp(_options.PreviewSize, Warden.Core.Imaging.Obscure.MinSide, Warden.Core.Imaging.Obscure.MaxSideLimit);

    private static string? CleanReason(string? reason)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            return null;
        }

        // Free text into the audit log: printable characters only, bounded.
        var kept = new string([.. reason.Where(c => !char.IsControl(c) && !char.IsSurrogate(c)).Take(500)]).Trim();
        return kept.Length == 0 ? null : kept;
    }

    /// <summary>Builds the CyberTipline report of a decided case and queues it; idempotent per case.</summary>
    public Delivery FileReport(ConsoleUser user, string caseId)
    {
        ArgumentNullException.ThrowIfNull(user);
        var @case = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        if (Deliveries.FindByCase(caseId, NcmecDestination.DestinationName) is { } existing)
        {
            return existing;
        }

        if (!@case.IsFullyDecided)
        {
            throw new ReviewException(409, "not_decided", "Decide every cluster before filing.");
        }

        var settings = _options.CyberTipline;
        var env = string.Equals(settings.Environment, "production", StringComparison.OrdinalIgnoreCase) ? CyberTiplineEnvironment.Production : CyberTiplineEnvironment.Test;
        var now = DateTimeOffset.UtcNow;
        Delivery delivery;
        lock (_write)
        {
            try
            {
                var package = CaseReportBuilder.Build(
                    @case,
                    new ReportSettings
                    {
                        Reporter = new ReporterInfo(new CyberTipPerson(settings.ReporterFirstName, settings.ReporterLastName, Emails: [settings.ReporterEmail])),
                        ServiceName = settings.ServiceName,
                        IndustryClassificationMou = settings.IndustryClassificationMou,
                    },
                    e => Vault?.ViewedByEsp(e) ?? false,
                    now);
                delivery = CaseReportBuilder.EnqueueForNcmec(Deliveries, package, env, now);
            }
            catch (InvalidOperationException ex)
            {
                throw new ReviewException(409, "not_reportable", ex.Message);
            }
            catch (Exception ex) when (ex is CyberTipValidationException or ArgumentException)
            {
                // The builder makes uploader text safe, so this is a setting (e.g. the reporter's e-mail): say which.
                throw new ReviewException(409, "not_reportable", XmlSafeText.ForLog(ex.Message, 1000));
            }

            Cases.Close(caseId, reported: true, JsonSerializer.Serialize(new CloseRecord(true), Json));
        }

        if (Vault is not null)
        {
            // Reported evidence is kept for the post-report retention period (18 U.S.C. § 2258A(h)); never shortened.
            foreach (var item in @case.Clusters.Where(c => c.Decision?.Verdict == Verdict.Confirmed).SelectMany(c => c.Members).Select(x => x.EvidenceRef).OfType<string>())
            {
                try
                {
                    Vault.MarkReported(item, now, user.Username);
                }
                catch (EvidenceException)
                {
                    // Already destroyed (a legal request): the delivery reports it missing with an alarm.
                }
            }
        }

        Audit.Append(new AuditEntry(user.Username, "report.file", "case:" + caseId, new Dictionary<string, string>
        {
            ["delivery"] = delivery.Id.ToString(CultureInfo.InvariantCulture),
            ["environment"] = delivery.Environment,
        }));
        return delivery;
    }

    /// <summary>Closes a case whose clusters are all false positives (nothing to report).</summary>
    public void CloseWithoutReport(ConsoleUser user, string caseId)
    {
        ArgumentNullException.ThrowIfNull(user);
        var @case = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        if (!@case.IsFullyDecided || @case.Clusters.Any(c => c.Decision!.Verdict == Verdict.Confirmed))
        {
            throw new ReviewException(409, "conflict", "Only a fully decided case without confirmed clusters closes without a report.");
        }

        Cases.Close(caseId, reported: false, JsonSerializer.Serialize(new CloseRecord(false), Json));

        Audit.Append(new AuditEntry(user.Username, "review.close", "case:" + caseId));
    }

    /// <summary>Today (UTC) as the exposure counter's key.</summary>
    public static string Today() => DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public void Dispose()
    {
        _previewGate.Dispose();
        Database.Dispose();
    }

    private void RequireItem(string caseId, string itemId)
    {
        var @case = Cases.Find(caseId) ?? throw new ReviewException(404, "not_found", "No such case.");
        if (!@case.Submissions.Any(s => s.EvidenceRef == itemId))
        {
            throw new ReviewException(404, "not_found", "No such item in this case.");
        }
    }

    private void AllowList(ConsoleUser user, ReviewCase @case, Cluster cluster)
    {
        var bank = _banks.GetBank(_options.FalsePositiveBank) ?? CreateAllowBank();
        var records = cluster.Members.Where(m => m.Pdq is not null)
            .Select(m => new BankEntryRecord("pdq", m.Pdq!.Value.ToString(), new Dictionary<string, string> { ["source"] = "review", ["case"] = @case.Id }, $"False positive decided by {user.Username}"))
            .DistinctBy(r => r.Signal)
            .ToList();
        if (records.Count == 0)
        {
            return;
        }

        _banks.Import(bank.Id, records, "review");
        Audit.Append(new AuditEntry(user.Username, "bank.allow", "bank:" + bank.Name, new Dictionary<string, string> { ["case"] = @case.Id, ["cluster"] = cluster.Id, ["entries"] = records.Count.ToString(CultureInfo.InvariantCulture) }));
    }

    private Bank CreateAllowBank()
    {
        try
        {
            return _banks.CreateBank(_options.FalsePositiveBank, BankKind.AllowList, description: "PDQs that reviewers decided were false positives.");
        }
        catch (StorageException)
        {
            return _banks.RequireBank(_options.FalsePositiveBank); // created concurrently
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Review: no master key (Review:MasterKey): uploader IP, content URL and file name are not kept with cases (they are stored only sealed)")]
    private static partial void LogContextDropped(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Review: exchange feedback for case {Case} was not queued: {Error}")]
    private static partial void LogFeedbackFailed(ILogger logger, string @case, string error);


    private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}

/// <summary>A decision as the console sends it.</summary>
/// <param name="Verdict"><c>confirmed</c> or <c>false_positive</c>.</param>
/// <param name="Classification">A1, A2, B1 or B2.</param>
/// <param name="Annotations">NCMEC file annotations.</param>
/// <param name="IncidentType">NCMEC incident type.</param>
/// <param name="Note">Free text.</param>
public sealed record DecisionRequest(string? Verdict, string? Classification, IReadOnlyList<string>? Annotations, string? IncidentType, string? Note);

/// <summary>A logged reveal: today's count and the grant that lets this person fetch the original once.</summary>
/// <param name="ExposureToday">Reveals by this person today (UTC), this one included.</param>
/// <param name="Grant">The single-use token for <c>?original=1&amp;grant=…</c>.</param>
/// <param name="ExpiresAt">When the grant lapses.</param>
public sealed record RevealResult(int ExposureToday, string Grant, DateTimeOffset ExpiresAt);

internal sealed record MatchRecord(string Bank, string SignalType, int Distance, IReadOnlyDictionary<string, string> Labels);

internal sealed record SubmissionRecord(
    string Id,
    string Uploader,
    long ReceivedAt,
    string? Pdq,
    Dictionary<string, string> Hashes,
    IReadOnlyList<MatchRecord> Matches,
    string? Ip,
    string? Url,
    long? UploadedAt,
    string? FileName,
    string? Evidence,
    string? Sealed = null,
    ModelSubject? Model = null)
{
    public MatchedSubmission ToSubmission() => new(
        Id,
        Uploader,
        DateTimeOffset.FromUnixTimeMilliseconds(ReceivedAt),
        Pdq is null ? null : PdqHash.Parse(Pdq),
        Hashes,
        [.. Matches.Select(m => new MatchEvidence(m.Bank, m.SignalType, m.Distance, m.Labels))],
        new UploadContext(Ip, null, UploadedAt is { } u ? DateTimeOffset.FromUnixTimeMilliseconds(u) : null, Url, FileName),
        Evidence,
        Model: Model);
}

internal sealed record DecisionRecord(string Verdict, string Reviewer, long At, string? Classification, IReadOnlyList<string>? Annotations, string? IncidentType, bool WithoutViewing, string? Note)
{
    public static DecisionRecord From(ClusterDecision d) => new(d.Verdict.ToString(), d.Reviewer, d.At.ToUnixTimeMilliseconds(), d.Classification, d.FileAnnotations?.Order(StringComparer.Ordinal).ToList(), d.IncidentType, d.DecidedWithoutViewing, d.Note);

    public ClusterDecision ToDecision() => new(
        Enum.Parse<Verdict>(Verdict),
        Reviewer,
        DateTimeOffset.FromUnixTimeMilliseconds(At),
        Classification,
        Annotations is null ? null : new HashSet<string>(Annotations, StringComparer.Ordinal),
        IncidentType,
        WithoutViewing,
        Note);
}

internal sealed record CloseRecord(bool Reported);
