using System.Globalization;
using System.Text.Json;
using Warden.Review.Evidence;
using Warden.Review.Reporting;

namespace Warden.Review.Cases;

/// <summary>The organisation's standing report settings.</summary>
public sealed record ReportSettings
{
    /// <summary>The reporter block (reporting person with e-mail, contact, company template, ToS, legal URL).</summary>
    public required ReporterInfo Reporter { get; init; }

    /// <summary>The service name (<c>espService</c>, <c>platform</c>).</summary>
    public string? ServiceName { get; init; }

    /// <summary>Whether the ESP signed NCMEC's hash-sharing MOU; only then is <c>industryClassification</c> sent.</summary>
    public bool IndustryClassificationMou { get; init; }

    /// <summary>Incident type when the decisions name none.</summary>
    public string DefaultIncidentType { get; init; } = CyberTipVocabulary.ChildPornography;

    /// <summary>At most this many IP capture events and URLs are listed (the most recent).</summary>
    public int MaxContextEntries { get; init; } = 100;
}

/// <summary>One file to upload with its details.</summary>
/// <param name="SubmissionId">The submission it comes from.</param>
/// <param name="EvidenceRef">Vault item.</param>
/// <param name="FileName">Upload name.</param>
/// <param name="Details">The <c>fileDetails</c> content.</param>
public sealed record ReportFile(string SubmissionId, string EvidenceRef, string FileName, CyberTipFile Details);

/// <summary>A report ready for the outbox.</summary>
/// <param name="CaseId">The case.</param>
/// <param name="Report">The report document content.</param>
/// <param name="Files">The files.</param>
/// <param name="Omitted">Confirmed submissions that cannot be uploaded (no preserved evidence), listed in additionalInfo.</param>
public sealed record ReportPackage(string CaseId, CyberTipReport Report, IReadOnlyList<ReportFile> Files, IReadOnlyList<string> Omitted);

/// <summary>
/// Builds a CyberTipline report from a decided case: one file per confirmed submission (a cluster decision
/// covers every member), original-file hashes (MD5, SHA-1, SHA-256 as uploaded, and PDQ), the upload IP
/// event, the reviewer's classification and annotations, and a truthful <c>fileViewedByEsp</c>: true only
/// when a person viewed that very file revealed (members decided through their representative were not
/// viewed, and known-hash decisions without viewing say so).
/// </summary>
public static class CaseReportBuilder
{
    /// <summary>Builds the package; throws when the case has no confirmed cluster.</summary>
    /// <param name="case">The case (every cluster decided).</param>
    /// <param name="settings">Standing settings.</param>
    /// <param name="viewedByEsp">Whether a person viewed an evidence item revealed (<see cref="EvidenceVault.ViewedByEsp"/>).</param>
    /// <param name="now">Now (timestamps must be in the past).</param>
    public static ReportPackage Build(ReviewCase @case, ReportSettings settings, Func<string, bool> viewedByEsp, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(@case);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(viewedByEsp);
        if (!@case.IsFullyDecided)
        {
            throw new InvalidOperationException($"Case {@case.Id} still has undecided clusters.");
        }

        var confirmed = @case.Clusters.Where(c => c.Decision?.Verdict == Verdict.Confirmed).ToList();
        if (confirmed.Count == 0)
        {
            throw new InvalidOperationException($"Case {@case.Id} has no confirmed cluster: nothing to report.");
        }

        // Members are normalised when they enter a case; a submission built another way is normalised here.
        var members = confirmed.SelectMany(c => c.Members.Select(m => (Cluster: c, Item: SubmissionText.Normalise(m)))).ToList();
        var latest = members.Max(m => m.Item.Context.UploadedAt ?? m.Item.ReceivedAt);
        var incidentTime = latest < now ? latest : now.AddSeconds(-1); // NCMEC rejects future times
        var incidentType = confirmed.Select(c => c.Decision!.IncidentType).FirstOrDefault(t => t is not null && CyberTipVocabulary.IncidentTypes.Contains(t))
            ?? (CyberTipVocabulary.IncidentTypes.Contains(settings.DefaultIncidentType) ? settings.DefaultIncidentType : CyberTipVocabulary.ChildPornography);

        var recent = members.OrderByDescending(m => m.Item.Context.UploadedAt ?? m.Item.ReceivedAt).ToList();
        var urls = recent.Select(m => ReportUrl(m.Item.Context.Url)).OfType<string>().Distinct(StringComparer.Ordinal).Take(settings.MaxContextEntries).ToList();
        var ips = recent.Select(m => UploadIp(m.Item, now))
            .OfType<IpCaptureEvent>()
            .Distinct()
            .Take(settings.MaxContextEntries)
            .ToList();

        var files = new List<ReportFile>();
        var omitted = new List<string>();
        foreach (var (cluster, item) in members)
        {
            if (item.EvidenceRef is null)
            {
                omitted.Add(item.SubmissionId);
                continue;
            }

            files.Add(new ReportFile(item.SubmissionId, item.EvidenceRef, $"{files.Count + 1:D4}{Extension(item.Context.OriginalFileName)}", FileDetails(cluster, item, settings, viewedByEsp(item.EvidenceRef), now)));
        }

        var info = new List<string> { $"Warden case {@case.Id}: {members.Count} confirmed file(s) in {confirmed.Count} cluster(s) of near-duplicates." };
        if (omitted.Count > 0)
        {
            info.Add($"{omitted.Count} confirmed file(s) were not preserved and are not attached.");
        }

        if (members.Any(m => m.Item.Raw is not null) || !XmlSafeText.IsClean(@case.UploaderId) || @case.UploaderId.Length > CyberTipLimits.EspIdentifier)
        {
            info.Add("Some uploader-supplied values held characters XML cannot carry (shown as U+FFFD) or exceeded NCMEC's lengths; the values as received are kept in the evidence record.");
        }

        var report = new CyberTipReport(
            new IncidentSummary(incidentType, incidentTime, XmlSafeText.Field(settings.ServiceName, CyberTipLimits.Platform), IncidentDateTimeDescription: "Time of the most recent confirmed upload (UTC)."),
            settings.Reporter,
            urls,
            [new ReportedUser(EspIdentifier: XmlSafeText.Field(@case.UploaderId, CyberTipLimits.EspIdentifier) ?? "unknown", EspService: XmlSafeText.Field(settings.ServiceName, CyberTipLimits.EspService), IpCaptureEvents: ips)],
            string.Join(' ', info));
        return new ReportPackage(@case.Id, report, files, omitted);
    }

    /// <summary>Queues a package for NCMEC after validating every document it will send.</summary>
    public static Delivery EnqueueForNcmec(IDeliveryStore store, ReportPackage package, CyberTiplineEnvironment environment, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(package);
        var doc = CyberTipXml.Report(package.Report);
        CyberTipValidator.EnsureValid(doc, now);
        var files = new List<DeliveryFile>();
        foreach (var (f, i) in package.Files.Select((f, i) => (f, i)))
        {
            // Placeholder ids: the real ones exist only after submit and upload.
            CyberTipValidator.EnsureValid(CyberTipXml.FileDetails(1, "00000000000000000000000000000000", f.Details), now);
            files.Add(new DeliveryFile(i, f.EvidenceRef, f.FileName, JsonSerializer.Serialize(f.Details)));
        }

        return store.Enqueue(package.CaseId, NcmecDestination.DestinationName, NcmecDestination.EnvironmentName(environment), CyberTipXml.ToText(doc), files, now);
    }

    private static CyberTipFile FileDetails(Cluster cluster, MatchedSubmission item, ReportSettings settings, bool viewed, DateTimeOffset now)
    {
        var decision = cluster.Decision!;
        var hashes = new List<OriginalFileHash>();
        foreach (var (key, type) in (ReadOnlySpan<(string, string)>)[("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256")])
        {
            if (item.Hashes.TryGetValue(key, out var v) && XmlSafeText.Field(v, 1024) is { } value)
            {
                hashes.Add(new OriginalFileHash(type, value.ToLowerInvariant()));
            }
        }

        if (item.Pdq is { } pdq)
        {
            hashes.Add(new OriginalFileHash("PDQ", pdq.ToString()));
        }

        var details = item.Matches.Take(20).Select(m => new KeyValuePair<string, string>("Matched list", XmlSafeText.Clean($"{m.BankName} ({m.SignalType}, distance {m.Distance.ToString(CultureInfo.InvariantCulture)})"))).ToList();
        var notes = new List<string>();
        if (item.Raw is { } raw)
        {
            notes.Add($"The uploader's {string.Join(", ", raw.ChangedFields())} held characters XML cannot carry (shown as U+FFFD) or exceeded NCMEC's lengths; the values as received are kept in the evidence record.");
        }

        var location = ReportUrl(item.Context.Url);
        if (location is null && XmlSafeText.Field(item.Context.Url, 500) is { } notUrl)
        {
            notes.Add("Location given by the platform (not a valid URL): " + notUrl);
        }

        var ipEvent = UploadIp(item, now);
        if (ipEvent is null && XmlSafeText.Field(item.Context.IpAddress, 100) is { } notIp)
        {
            notes.Add("Upload IP given by the platform (not an IP address): " + notIp);
        }

        if (decision.DecidedWithoutViewing)
        {
            notes.Add("Decided on a known-hash match without human viewing, under the ESP's policy.");
        }

        if (!ReferenceEquals(item, cluster.Representative))
        {
            notes.Add($"Near-duplicate of {cluster.Representative.SubmissionId}; decided with its cluster of {cluster.Members.Count.ToString(CultureInfo.InvariantCulture)}.");
        }

        var annotations = decision.FileAnnotations is { Count: > 0 } a ? CyberTipVocabulary.FileAnnotationOrder.Where(a.Contains).ToList() : null;
        var classification = settings.IndustryClassificationMou && decision.Classification is { } cls && CyberTipVocabulary.IndustryClassifications.Contains(cls) ? cls : null;
        return new CyberTipFile(
            OriginalFileName: XmlSafeText.Field(item.Context.OriginalFileName, CyberTipLimits.OriginalFileName),
            UploadedToEspTimestamp: Past(item.Context.UploadedAt ?? item.ReceivedAt, now),
            LocationOfFile: location,
            FileViewedByEsp: viewed,
            FileRelevance: "Reported",
            Annotations: annotations,
            IndustryClassification: classification,
            OriginalFileHashes: hashes,
            IpCaptureEvent: ipEvent,
            DeviceIds: XmlSafeText.Field(item.Context.DeviceId, CyberTipLimits.DeviceIdValue) is { } dev ? [new DeviceIdEvent("Device ID", dev, "Upload")] : null,
            HashDetails: details.Count > 0 ? details : null,
            AdditionalInfo: notes.Count > 0 ? notes : null);
    }

    private static DateTimeOffset Past(DateTimeOffset t, DateTimeOffset now) => t < now ? t : now.AddSeconds(-1);

    // NCMEC refuses a report whose URL is not absolute or longer than 2083 (4100): such a value goes to notes.
    private static string? ReportUrl(string? url) =>
        XmlSafeText.Field(url) is { Length: <= CyberTipLimits.Url } u && Uri.TryCreate(u, UriKind.Absolute, out _) ? u : null;

    // An upload IP event only for a real address (NCMEC refuses others); ports outside 1..65535 are dropped.
    private static IpCaptureEvent? UploadIp(MatchedSubmission item, DateTimeOffset now)
    {
        var text = XmlSafeText.Field(item.Context.IpAddress, 100);
        if (!CyberTipValidator.IsIpAddress(text))
        {
            return null;
        }

        var port = item.Context.Port is >= 1 and <= 65535 ? item.Context.Port : null;
        return new IpCaptureEvent(text!, "Upload", Past(item.Context.UploadedAt ?? item.ReceivedAt, now), null, port);
    }

    private static string Extension(string? name)
    {
        var ext = Path.GetExtension(name ?? "");
        return ext.Length is > 1 and <= 6 && ext.Skip(1).All(char.IsAsciiLetterOrDigit) ? ext.ToLowerInvariant() : ".bin";
    }
}
