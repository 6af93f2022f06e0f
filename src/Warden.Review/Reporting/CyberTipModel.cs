namespace Warden.Review.Reporting;

/// <summary>The fixed vocabularies of the CyberTipline schema (strings must match exactly).</summary>
public static class CyberTipVocabulary
{
    /// <summary>The default incident type for apparent CSAM.</summary>
    public const string ChildPornography = "Child Pornography (possession, manufacture, and distribution)";

    /// <summary>The eight <c>incidentType</c> values.</summary>
    public static IReadOnlySet<string> IncidentTypes { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        ChildPornography,
        "Child Sex Trafficking",
        "Child Sex Tourism",
        "Child Sexual Molestation",
        "Misleading Domain Name",
        "Misleading Words or Digital Images on the Internet",
        "Online Enticement of Children for Sexual Acts",
        "Unsolicited Obscene Material Sent to a Child",
    };

    /// <summary>Industry classifications (only with the hash-sharing MOU).</summary>
    public static IReadOnlySet<string> IndustryClassifications { get; } = new HashSet<string>(StringComparer.Ordinal) { "A1", "A2", "B1", "B2" };

    /// <summary><c>fileAnnotations</c> flags, in schema order.</summary>
    public static IReadOnlyList<string> FileAnnotationOrder { get; } =
        ["animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction", "physicalHarm", "violenceGore", "bestiality", "liveStreaming", "infant", "generativeAi"];

    /// <summary><c>fileAnnotations</c> flags.</summary>
    public static IReadOnlySet<string> FileAnnotations { get; } = new HashSet<string>(FileAnnotationOrder, StringComparer.Ordinal);

    /// <summary><c>reportAnnotations</c> flags, in schema order.</summary>
    public static IReadOnlyList<string> ReportAnnotationOrder { get; } = ["sextortion", "csamSolicitation", "minorToMinorInteraction", "spam", "sadisticOnlineExploitation"];

    /// <summary><c>eventName</c> values of IP capture and device events.</summary>
    public static IReadOnlySet<string> EventNames { get; } = new HashSet<string>(StringComparer.Ordinal) { "Login", "Registration", "Purchase", "Upload", "Other", "Unknown" };

    /// <summary><c>fileRelevance</c> values.</summary>
    public static IReadOnlySet<string> FileRelevances { get; } = new HashSet<string>(StringComparer.Ordinal) { "Reported", "Supplemental Reported" };
}

/// <summary>A person (reporter, contact, reported user's personal details).</summary>
public sealed record CyberTipPerson(string? FirstName = null, string? LastName = null, IReadOnlyList<string>? Phones = null, IReadOnlyList<string>? Emails = null);

/// <summary>An IP address seen at an event.</summary>
public sealed record IpCaptureEvent(string IpAddress, string? EventName = null, DateTimeOffset? DateTime = null, bool? PossibleProxy = null, int? Port = null);

/// <summary>A device identifier seen at an event.</summary>
public sealed record DeviceIdEvent(string IdType, string IdValue, string? EventName = null, DateTimeOffset? DateTime = null);

/// <summary><c>incidentSummary</c>.</summary>
public sealed record IncidentSummary(
    string IncidentType,
    DateTimeOffset IncidentDateTime,
    string? Platform = null,
    string? EscalateToHighPriority = null,
    IReadOnlySet<string>? ReportAnnotations = null,
    string? IncidentDateTimeDescription = null);

/// <summary><c>reporter</c>: the ESP's reporting person and standing texts.</summary>
public sealed record ReporterInfo(
    CyberTipPerson ReportingPerson,
    CyberTipPerson? ContactPerson = null,
    string? CompanyTemplate = null,
    string? TermsOfService = null,
    string? LegalUrl = null);

/// <summary><c>personOrUserReported</c>: the uploader.</summary>
public sealed record ReportedUser(
    string? EspIdentifier = null,
    string? EspService = null,
    string? ScreenName = null,
    string? DisplayName = null,
    string? ProfileUrl = null,
    IReadOnlyList<string>? Emails = null,
    IReadOnlyList<IpCaptureEvent>? IpCaptureEvents = null,
    IReadOnlyList<DeviceIdEvent>? DeviceIds = null,
    string? AdditionalInfo = null);

/// <summary>A <c>&lt;report&gt;</c> document.</summary>
public sealed record CyberTipReport(
    IncidentSummary Incident,
    ReporterInfo Reporter,
    IReadOnlyList<string>? WebPageUrls = null,
    IReadOnlyList<ReportedUser>? ReportedUsers = null,
    string? AdditionalInfo = null);

/// <summary>A hash of the file as the user uploaded it, before any change by the ESP.</summary>
public sealed record OriginalFileHash(string HashType, string Value);

/// <summary>
/// A <c>&lt;fileDetails&gt;</c> document without its ids: the report and file ids are only known after
/// <c>/submit</c> and <c>/upload</c>, so the outbox stores this and fills them in at <c>/fileinfo</c>.
/// </summary>
public sealed record CyberTipFile(
    string? FileName = null,
    string? OriginalFileName = null,
    DateTimeOffset? UploadedToEspTimestamp = null,
    string? LocationOfFile = null,
    bool? FileViewedByEsp = null,
    bool? ExifViewedByEsp = null,
    bool? PubliclyAvailable = null,
    string? FileRelevance = "Reported",
    IReadOnlyList<string>? Annotations = null,
    string? IndustryClassification = null,
    IReadOnlyList<OriginalFileHash>? OriginalFileHashes = null,
    IpCaptureEvent? IpCaptureEvent = null,
    IReadOnlyList<DeviceIdEvent>? DeviceIds = null,
    IReadOnlyList<KeyValuePair<string, string>>? HashDetails = null,
    IReadOnlyList<string>? AdditionalInfo = null);
