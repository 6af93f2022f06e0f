using System.Globalization;
using System.Net;
using System.Xml;
using System.Xml.Linq;
using System.Xml.Schema;

namespace Warden.Review.Reporting;

/// <summary>One problem found in a document.</summary>
/// <param name="Element">Where (element path).</param>
/// <param name="Message">What is wrong.</param>
public sealed record CyberTipIssue(string Element, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Element}: {Message}";
}

/// <summary>
/// Built-in checks of <c>report</c> and <c>fileDetails</c> documents: the XSD's element order and
/// cardinalities and enumerations for the elements Warden writes, plus the documented server-side rules
/// the XSD does not express (timestamps with a zone and in the past, the reporting person's e-mail,
/// length limits, IP syntax, <c>exifViewedByEsp</c> ⇒ <c>fileViewedByEsp</c>, supplemental files without
/// classification or meme flag, at most one <c>ipCaptureEvent</c> per file). It runs before every submit, so
/// a report NCMEC would reject with 4100 never leaves the outbox. The XSD itself is not redistributable;
/// <see cref="CyberTipSchema"/> validates against a copy when the operator has one.
/// </summary>
public static class CyberTipValidator
{
    private static readonly (string Name, int Max)[] ReportOrder =
    [
        ("batchedReport", 1), ("incidentSummary", 1), ("internetDetails", int.MaxValue), ("lawEnforcement", 1), ("reporter", 1),
        ("personOrUserReported", int.MaxValue), ("intendedRecipient", int.MaxValue), ("victim", int.MaxValue), ("additionalInfo", 1),
    ];

    private static readonly (string Name, int Max)[] IncidentOrder =
    [
        ("incidentType", 1), ("platform", 1), ("escalateToHighPriority", 1), ("reportAnnotations", 1), ("incidentDateTime", 1), ("incidentDateTimeDescription", 1),
    ];

    private static readonly (string Name, int Max)[] ReporterOrder =
    [
        ("reportingPerson", 1), ("contactPerson", 1), ("companyTemplate", 1), ("termsOfService", 1), ("legalURL", 1),
    ];

    // potentialMeme and fileAnnotations share a position: they are an xs:choice.
    private static readonly (string Name, int Max)[] FileOrder =
    [
        ("reportId", 1), ("fileId", 1), ("fileName", 1), ("originalFileName", 1), ("uploadedToEspTimestamp", 1), ("locationOfFile", 1),
        ("fileViewedByEsp", 1), ("exifViewedByEsp", 1), ("publiclyAvailable", 1), ("fileRelevance", 1), ("potentialMeme|fileAnnotations", 1),
        ("industryClassification", 1), ("originalFileHash", int.MaxValue), ("ipCaptureEvent", 1), ("deviceId", int.MaxValue),
        ("details", int.MaxValue), ("additionalInfo", int.MaxValue),
    ];

    private static readonly (string Name, int Max)[] IpOrder = [("ipAddress", 1), ("eventName", 1), ("dateTime", 1), ("possibleProxy", 1), ("port", 1)];

    private static readonly string[] TimestampElements = ["incidentDateTime", "dateTime", "uploadedToEspTimestamp"];

    /// <summary>Checks a document (root <c>report</c> or <c>fileDetails</c>) against the built-in rules.</summary>
    /// <param name="document">The document.</param>
    /// <param name="now">"Now" for the in-the-past rule.</param>
    public static IReadOnlyList<CyberTipIssue> Validate(XDocument document, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(document);
        var issues = new List<CyberTipIssue>();
        var root = document.Root;
        if (root is null || root.Name.Namespace != XNamespace.None)
        {
            issues.Add(new("/", "the root must be <report> or <fileDetails> without a namespace"));
            return issues;
        }

        switch (root.Name.LocalName)
        {
            case "report":
                ValidateReport(root, issues);
                break;
            case "fileDetails":
                ValidateFile(root, issues);
                break;
            default:
                issues.Add(new("/", $"unexpected root <{root.Name.LocalName}>"));
                return issues;
        }

        foreach (var e in root.Descendants())
        {
            var name = e.Name.LocalName;
            if (TimestampElements.Contains(name))
            {
                CheckTimestamp(e, now, issues);
            }
            else if (name == "ipAddress" && !IsIpAddress(e.Value.Trim()))
            {
                issues.Add(new(PathOf(e), $"'{e.Value}' is not an IPv4 or IPv6 address"));
            }
            else if (name == "port" && e.Parent?.Name.LocalName == "ipCaptureEvent"
                && (!int.TryParse(e.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535))
            {
                issues.Add(new(PathOf(e), "a port is 1..65535"));
            }
            else if (name == "eventName" && !CyberTipVocabulary.EventNames.Contains(e.Value))
            {
                issues.Add(new(PathOf(e), $"'{e.Value}' is not one of Login, Registration, Purchase, Upload, Other, Unknown"));
            }
            else if (name == "email" && !LooksLikeEmail(e.Value))
            {
                issues.Add(new(PathOf(e), $"'{e.Value}' is not an e-mail address"));
            }
            else if (name == "url" && (e.Value.Length > 2083 || !Uri.TryCreate(e.Value, UriKind.Absolute, out _)))
            {
                issues.Add(new(PathOf(e), "a URL must be absolute and at most 2083 characters"));
            }
            else if (MaxLength(e) is { } max && e.Value.Length > max)
            {
                issues.Add(new(PathOf(e), $"at most {max} characters"));
            }
            else if (name is "idType" or "idValue" && string.IsNullOrWhiteSpace(e.Value))
            {
                issues.Add(new(PathOf(e), "must not be blank"));
            }
            else if (name == "ipCaptureEvent")
            {
                CheckOrder(e, IpOrder, issues);
                if (e.Element("ipAddress") is null)
                {
                    issues.Add(new(PathOf(e), "ipAddress is required"));
                }
            }
        }

        return issues;
    }

    /// <summary>
    /// An IPv4 address in dotted-quad form or an IPv6 address (NCMEC: "a valid IPv4, IPv6, or IPv4-mapped
    /// IPv6 address"). Stricter than <see cref="IPAddress.TryParse(string?, out IPAddress?)"/>, which also
    /// takes forms such as <c>1</c> or <c>0x7f.1</c>.
    /// </summary>
    public static bool IsIpAddress(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 64 || !IPAddress.TryParse(text, out var ip))
        {
            return false;
        }

        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return text.Contains(':', StringComparison.Ordinal);
        }

        var parts = text.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is >= 1 and <= 3 && p.All(char.IsAsciiDigit) && int.Parse(p, CultureInfo.InvariantCulture) <= 255);
    }

    /// <summary>Throws <see cref="CyberTipValidationException"/> when <see cref="Validate"/> finds anything.</summary>
    public static void EnsureValid(XDocument document, DateTimeOffset now)
    {
        var issues = Validate(document, now);
        if (issues.Count > 0)
        {
            throw new CyberTipValidationException(issues);
        }
    }

    private static void ValidateReport(XElement root, List<CyberTipIssue> issues)
    {
        CheckOrder(root, ReportOrder, issues);
        var incident = root.Element("incidentSummary");
        if (incident is null)
        {
            issues.Add(new("/report", "incidentSummary is required"));
        }
        else
        {
            CheckOrder(incident, IncidentOrder, issues);
            var type = incident.Element("incidentType");
            if (type is null)
            {
                issues.Add(new("/report/incidentSummary", "incidentType is required"));
            }
            else if (!CyberTipVocabulary.IncidentTypes.Contains(type.Value))
            {
                issues.Add(new(PathOf(type), $"'{type.Value}' is not one of the eight incident types (exact strings)"));
            }

            if (incident.Element("incidentDateTime") is null)
            {
                issues.Add(new("/report/incidentSummary", "incidentDateTime is required"));
            }

            if (incident.Element("escalateToHighPriority") is { } esc && esc.Value.Length > 3000)
            {
                issues.Add(new(PathOf(esc), "at most 3000 characters"));
            }

            if (incident.Element("reportAnnotations") is { } ra)
            {
                CheckFlags(ra, CyberTipVocabulary.ReportAnnotationOrder, issues);
            }
        }

        var reporter = root.Element("reporter");
        if (reporter is null)
        {
            issues.Add(new("/report", "reporter is required"));
        }
        else
        {
            CheckOrder(reporter, ReporterOrder, issues);
            var person = reporter.Element("reportingPerson");
            if (person is null)
            {
                issues.Add(new("/report/reporter", "reportingPerson is required"));
            }
            else if (person.Element("email") is null)
            {
                issues.Add(new(PathOf(person), "the reporting person needs an e-mail address (documented rule)"));
            }
        }
    }

    private static void ValidateFile(XElement root, List<CyberTipIssue> issues)
    {
        CheckOrder(root, FileOrder, issues);
        if (root.Element("reportId") is not { } rid || !long.TryParse(rid.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            issues.Add(new("/fileDetails", "reportId is required and is a number"));
        }

        if (root.Element("fileId") is not { } fid || string.IsNullOrWhiteSpace(fid.Value))
        {
            issues.Add(new("/fileDetails", "fileId is required"));
        }

        if (root.Element("potentialMeme") is not null && root.Element("fileAnnotations") is not null)
        {
            issues.Add(new("/fileDetails", "potentialMeme and fileAnnotations are a choice: send one (prefer fileAnnotations/potentialMeme)"));
        }

        if (root.Element("originalFileName") is { } ofn && ofn.Value.Length > 2056)
        {
            issues.Add(new(PathOf(ofn), "at most 2056 characters"));
        }

        var relevance = root.Element("fileRelevance")?.Value;
        if (relevance is not null && !CyberTipVocabulary.FileRelevances.Contains(relevance))
        {
            issues.Add(new("/fileDetails/fileRelevance", $"'{relevance}' is not Reported or Supplemental Reported"));
        }

        var cls = root.Element("industryClassification");
        if (cls is not null && !CyberTipVocabulary.IndustryClassifications.Contains(cls.Value))
        {
            issues.Add(new(PathOf(cls), $"'{cls.Value}' is not A1, A2, B1 or B2"));
        }

        var annotations = root.Element("fileAnnotations");
        if (annotations is not null)
        {
            CheckFlags(annotations, CyberTipVocabulary.FileAnnotationOrder, issues);
        }

        if (relevance == "Supplemental Reported"
            && (cls is not null || root.Element("potentialMeme") is not null || annotations?.Element("potentialMeme") is not null))
        {
            issues.Add(new("/fileDetails", "a Supplemental Reported file carries no industryClassification or meme flag"));
        }

        if (IsTrue(root.Element("exifViewedByEsp")) && !IsTrue(root.Element("fileViewedByEsp")))
        {
            issues.Add(new("/fileDetails", "fileViewedByEsp must be true when exifViewedByEsp is true"));
        }

        foreach (var h in root.Elements("originalFileHash"))
        {
            var type = h.Attribute("hashType")?.Value;
            if (string.IsNullOrWhiteSpace(type) || type.Length > 64)
            {
                issues.Add(new(PathOf(h), "hashType is required, at most 64 characters"));
            }
        }
    }

    private static void CheckFlags(XElement set, IReadOnlyList<string> allowed, List<CyberTipIssue> issues)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var flag in set.Elements())
        {
            var name = flag.Name.LocalName;
            if (!allowed.Contains(name))
            {
                issues.Add(new(PathOf(flag), $"unknown annotation '{name}'"));
            }
            else if (!seen.Add(name))
            {
                issues.Add(new(PathOf(flag), "annotation given twice"));
            }

            var v = flag.Value.Trim();
            if (v.Length > 0 && v != "true" && v != "1")
            {
                issues.Add(new(PathOf(flag), "annotation flags are fixed to true: omit the element to leave it unset"));
            }
        }
    }

    private static void CheckOrder(XElement parent, (string Name, int Max)[] order, List<CyberTipIssue> issues)
    {
        var position = 0;
        var counts = new int[order.Length];
        foreach (var child in parent.Elements())
        {
            var name = child.Name.LocalName;
            var index = Array.FindIndex(order, o => o.Name == name || o.Name.Split('|').Contains(name));
            if (index < 0)
            {
                issues.Add(new(PathOf(child), $"<{name}> is not allowed in <{parent.Name.LocalName}>"));
                continue;
            }

            if (index < position)
            {
                issues.Add(new(PathOf(child), $"<{name}> is out of order: it must come before <{order[position].Name}> (the schema is a sequence)"));
                continue;
            }

            position = index;
            if (++counts[index] > order[index].Max)
            {
                issues.Add(new(PathOf(child), $"<{name}> may appear at most {order[index].Max} time(s) here"));
            }
        }
    }

    private static void CheckTimestamp(XElement e, DateTimeOffset now, List<CyberTipIssue> issues)
    {
        var text = e.Value.Trim();
        var hasZone = text.EndsWith('Z') || (text.Length > 6 && (text[^6] is '+' or '-') && text[^3] == ':');
        if (!hasZone)
        {
            issues.Add(new(PathOf(e), $"'{text}' needs a time zone (Z or ±hh:mm)"));
            return;
        }

        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
        {
            issues.Add(new(PathOf(e), $"'{text}' is not an ISO 8601 date and time"));
        }
        else if (t > now)
        {
            issues.Add(new(PathOf(e), $"'{text}' is in the future; NCMEC requires times in the past"));
        }
    }

    // The documented maximum lengths of the elements Warden writes (url and originalFileName are checked above).
    private static int? MaxLength(XElement e) => (e.Parent?.Name.LocalName, e.Name.LocalName) switch
    {
        ("incidentSummary", "platform") => CyberTipLimits.Platform,
        ("incidentSummary", "incidentDateTimeDescription") => CyberTipLimits.Text3000,
        ("reporter", "legalURL") or ("personOrUserReported", "profileUrl") or ("fileDetails", "locationOfFile") => CyberTipLimits.Url,
        (_, "firstName" or "lastName") => CyberTipLimits.PersonName,
        (_, "phone") => CyberTipLimits.Phone,
        ("personOrUserReported", "espIdentifier") => CyberTipLimits.EspIdentifier,
        ("personOrUserReported", "espService") => CyberTipLimits.EspService,
        ("personOrUserReported", "screenName") => CyberTipLimits.ScreenName,
        ("personOrUserReported", "displayName") => CyberTipLimits.DisplayName,
        ("nameValuePair", "name") => CyberTipLimits.DetailName,
        ("deviceId", "idType") => CyberTipLimits.DeviceIdType,
        ("deviceId", "idValue") => CyberTipLimits.DeviceIdValue,
        _ => null,
    };

    private static bool IsTrue(XElement? e) => e is not null && (e.Value.Trim() is "true" or "1");

    private static bool LooksLikeEmail(string v)
    {
        var at = v.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && at == v.LastIndexOf('@') && at < v.Length - 3 && v.IndexOf('.', at) > at + 1 && !v.Any(char.IsWhiteSpace) && v.Length <= 255;
    }

    private static string PathOf(XElement e) => "/" + string.Join('/', e.AncestorsAndSelf().Reverse().Select(a => a.Name.LocalName));
}

/// <summary>A document that failed validation.</summary>
public sealed class CyberTipValidationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CyberTipValidationException(IReadOnlyList<CyberTipIssue> issues)
        : base("The CyberTipline document is invalid: " + string.Join("; ", issues ?? [])) => Issues = issues ?? [];

    /// <summary>Convention constructor.</summary>
    public CyberTipValidationException()
        : this([])
    {
    }

    /// <summary>Convention constructor.</summary>
    public CyberTipValidationException(string message)
        : base(message) => Issues = [];

    /// <summary>Convention constructor.</summary>
    public CyberTipValidationException(string message, Exception innerException)
        : base(message, innerException) => Issues = [];

    /// <summary>The problems.</summary>
    public IReadOnlyList<CyberTipIssue> Issues { get; }
}

/// <summary>
/// Validation against NCMEC's XSD (<c>GET /xsd</c>, not redistributable: load the operator's copy).
/// </summary>
public sealed class CyberTipSchema
{
    private readonly XmlSchemaSet _set;

    private CyberTipSchema(XmlSchemaSet set) => _set = set;

    /// <summary>Loads and compiles the XSD at <paramref name="path"/>.</summary>
    public static CyberTipSchema Load(string path)
    {
        var set = new XmlSchemaSet { XmlResolver = null };
        using (var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null }))
        {
            set.Add(null, reader);
        }

        set.Compile();
        return new CyberTipSchema(set);
    }

    /// <summary>Schema errors of a document (empty when valid).</summary>
    public IReadOnlyList<string> Validate(XDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var errors = new List<string>();

        // Re-read from text so line info and the schema location hint are not involved.
        var doc = XDocument.Parse(document.ToString(SaveOptions.DisableFormatting));
        doc.Validate(_set, (_, e) => errors.Add(e.Message));
        return errors;
    }
}
