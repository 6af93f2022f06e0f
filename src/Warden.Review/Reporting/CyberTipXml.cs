using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace Warden.Review.Reporting;

/// <summary>
/// Writes CyberTipline documents. Elements are emitted in the XSD's sequence order by construction (each
/// writer lists its children in schema order), the mistake that bit other integrations repeatedly.
/// Timestamps are UTC with a <c>Z</c> and no fraction; annotation flags are written as empty elements
/// (their schema type is a boolean fixed to true).
/// </summary>
public static class CyberTipXml
{
    private static readonly XNamespace Xsi = "http://www.w3.org/2001/XMLSchema-instance";

    /// <summary>The <c>&lt;report&gt;</c> document.</summary>
    public static XDocument Report(CyberTipReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var i = report.Incident;
        var root = new XElement("report",
            new XAttribute(XNamespace.Xmlns + "xsi", Xsi),
            new XAttribute(Xsi + "noNamespaceSchemaLocation", "https://report.cybertip.org/ispws/xsd"),
            new XElement("incidentSummary",
                new XElement("incidentType", T(i.IncidentType)),
                Opt("platform", i.Platform, CyberTipLimits.Platform),
                Opt("escalateToHighPriority", i.EscalateToHighPriority, CyberTipLimits.Text3000),
                i.ReportAnnotations is { Count: > 0 } ra
                    ? new XElement("reportAnnotations", CyberTipVocabulary.ReportAnnotationOrder.Where(ra.Contains).Select(a => new XElement(a)))
                    : null,
                new XElement("incidentDateTime", Time(i.IncidentDateTime)),
                Opt("incidentDateTimeDescription", i.IncidentDateTimeDescription, CyberTipLimits.Text3000)),
            report.WebPageUrls is { Count: > 0 } urls
                ? new XElement("internetDetails", new XElement("webPageIncident", urls.Select(u => Opt("url", u, CyberTipLimits.Url))))
                : null,
            new XElement("reporter",
                Person("reportingPerson", report.Reporter.ReportingPerson),
                report.Reporter.ContactPerson is { } cp ? Person("contactPerson", cp) : null,
                Opt("companyTemplate", report.Reporter.CompanyTemplate),
                Opt("termsOfService", report.Reporter.TermsOfService),
                Opt("legalURL", report.Reporter.LegalUrl, CyberTipLimits.Url)),
            (report.ReportedUsers ?? []).Select(ReportedUser),
            Opt("additionalInfo", report.AdditionalInfo));
        return new XDocument(new XDeclaration("1.0", "UTF-8", null), root);
    }

    /// <summary>The <c>&lt;fileDetails&gt;</c> document of one uploaded file.</summary>
    public static XDocument FileDetails(long reportId, string fileId, CyberTipFile f)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentException.ThrowIfNullOrWhiteSpace(fileId);
        var root = new XElement("fileDetails",
            new XAttribute(XNamespace.Xmlns + "xsi", Xsi),
            new XAttribute(Xsi + "noNamespaceSchemaLocation", "https://report.cybertip.org/ispws/xsd"),
            new XElement("reportId", reportId.ToString(CultureInfo.InvariantCulture)),
            new XElement("fileId", T(fileId)),
            Opt("fileName", f.FileName),
            Opt("originalFileName", f.OriginalFileName, CyberTipLimits.OriginalFileName),
            f.UploadedToEspTimestamp is { } up ? new XElement("uploadedToEspTimestamp", Time(up)) : null,
            Opt("locationOfFile", f.LocationOfFile, CyberTipLimits.Url),
            Bool("fileViewedByEsp", f.FileViewedByEsp),
            Bool("exifViewedByEsp", f.ExifViewedByEsp),
            Bool("publiclyAvailable", f.PubliclyAvailable),
            Opt("fileRelevance", f.FileRelevance),
            f.Annotations is { Count: > 0 } an
                ? new XElement("fileAnnotations", CyberTipVocabulary.FileAnnotationOrder.Where(an.Contains).Select(a => new XElement(a)))
                : null,
            Opt("industryClassification", f.IndustryClassification),
            (f.OriginalFileHashes ?? []).Select(h => new XElement("originalFileHash", new XAttribute("hashType", Clip(h.HashType, CyberTipLimits.HashType)), T(h.Value))),
            f.IpCaptureEvent is { } ip ? Ip(ip) : null,
            (f.DeviceIds ?? []).Select(Device),
            f.HashDetails is { Count: > 0 } hd
                ? new XElement("details", new XAttribute("type", "HASH"), hd.Select(kv => new XElement("nameValuePair", new XElement("name", Clip(kv.Key, CyberTipLimits.DetailName)), new XElement("value", T(kv.Value)))))
                : null,
            (f.AdditionalInfo ?? []).Select(a => Opt("additionalInfo", a)));
        return new XDocument(new XDeclaration("1.0", "UTF-8", null), root);
    }

    /// <summary>
    /// Serialises a document as UTF-8 bytes with its declaration. Never throws for content: a text or
    /// attribute that still holds a character XML 1.0 cannot carry (a document built by hand, a value that
    /// bypassed the builder) is cleaned here (<see cref="XmlSafeText"/>), so a bad field can never stop a delivery.
    /// </summary>
    public static byte[] ToBytes(XDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        Sanitise(doc);
        using var ms = new MemoryStream();
        using (var w = XmlWriter.Create(ms, new XmlWriterSettings { Encoding = new System.Text.UTF8Encoding(false), Indent = true }))
        {
            doc.Save(w);
        }

        return ms.ToArray();
    }

    /// <summary>Serialises a document as a string.</summary>
    public static string ToText(XDocument doc) => System.Text.Encoding.UTF8.GetString(ToBytes(doc));

    /// <summary>The schema's timestamp form: UTC, seconds, <c>Z</c>.</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Cleans every text and attribute value in place (only those that need it).</summary>
    internal static void Sanitise(XDocument doc)
    {
        foreach (var node in doc.DescendantNodes())
        {
            if (node is XText t && !XmlSafeText.IsClean(t.Value))
            {
                t.Value = XmlSafeText.Clean(t.Value);
            }
            else if (node is XElement e)
            {
                foreach (var a in e.Attributes())
                {
                    if (!XmlSafeText.IsClean(a.Value))
                    {
                        a.Value = XmlSafeText.Clean(a.Value);
                    }
                }
            }
            else if (node is XComment or XProcessingInstruction or XDocumentType)
            {
                // Warden writes none; a hand-built one is dropped rather than risk an unwritable node.
                node.Remove();
            }
        }
    }

    private static string T(string value) => XmlSafeText.Clean(value ?? "");

    private static string Clip(string? value, int max) => XmlSafeText.Field(value, max) ?? "";

    // Optional text: absent when empty or blank after cleaning ("must not be blank if supplied").
    private static XElement? Opt(string name, string? value, int max = int.MaxValue) => XmlSafeText.Field(value, max) is { } v ? new XElement(name, v) : null;

    private static XElement? Bool(string name, bool? value) => value is null ? null : new XElement(name, value.Value ? "true" : "false");

    private static XElement Person(string name, CyberTipPerson p) => new(name,
        Opt("firstName", p.FirstName, CyberTipLimits.PersonName),
        Opt("lastName", p.LastName, CyberTipLimits.PersonName),
        (p.Phones ?? []).Select(x => Opt("phone", x, CyberTipLimits.Phone)),
        (p.Emails ?? []).Select(x => Opt("email", x, CyberTipLimits.Email)));

    private static XElement ReportedUser(ReportedUser u) => new("personOrUserReported",
        u.Emails is { Count: > 0 } ? Person("personOrUserReportedPerson", new CyberTipPerson(Emails: u.Emails)) : null,
        Opt("espIdentifier", u.EspIdentifier, CyberTipLimits.EspIdentifier),
        Opt("espService", u.EspService, CyberTipLimits.EspService),
        Opt("screenName", u.ScreenName, CyberTipLimits.ScreenName),
        Opt("displayName", u.DisplayName, CyberTipLimits.DisplayName),
        Opt("profileUrl", u.ProfileUrl, CyberTipLimits.Url),
        (u.IpCaptureEvents ?? []).Select(Ip),
        (u.DeviceIds ?? []).Select(Device),
        Opt("additionalInfo", u.AdditionalInfo));

    private static XElement Ip(IpCaptureEvent e) => new("ipCaptureEvent",
        new XElement("ipAddress", T(e.IpAddress)),
        Opt("eventName", e.EventName),
        e.DateTime is { } t ? new XElement("dateTime", Time(t)) : null,
        Bool("possibleProxy", e.PossibleProxy),
        e.Port is { } port ? new XElement("port", port.ToString(CultureInfo.InvariantCulture)) : null);

    private static XElement Device(DeviceIdEvent d) => new("deviceId",
        new XElement("idType", Clip(d.IdType, CyberTipLimits.DeviceIdType)),
        new XElement("idValue", Clip(d.IdValue, CyberTipLimits.DeviceIdValue)),
        Opt("eventName", d.EventName),
        d.DateTime is { } t ? new XElement("dateTime", Time(t)) : null);
}

/// <summary>
/// The maximum lengths NCMEC's documentation gives (Appendices A–D; not in the XSD, enforced by NCMEC's
/// server with code 4100), for the fields Warden writes. Lengths count UTF-16 units, as Java does.
/// </summary>
public static class CyberTipLimits
{
    /// <summary><c>incidentSummary/platform</c>.</summary>
    public const int Platform = 256;

    /// <summary><c>escalateToHighPriority</c>, <c>incidentDateTimeDescription</c>.</summary>
    public const int Text3000 = 3000;

    /// <summary>URLs (<c>url</c>, <c>profileUrl</c>, <c>legalURL</c>, <c>locationOfFile</c>).</summary>
    public const int Url = 2083;

    /// <summary><c>person/firstName</c>, <c>person/lastName</c>.</summary>
    public const int PersonName = 100;

    /// <summary><c>phone</c>.</summary>
    public const int Phone = 50;

    /// <summary><c>email</c>.</summary>
    public const int Email = 255;

    /// <summary><c>personOrUserReported/espIdentifier</c>.</summary>
    public const int EspIdentifier = 255;

    /// <summary><c>personOrUserReported/espService</c>.</summary>
    public const int EspService = 100;

    /// <summary><c>personOrUserReported/screenName</c>.</summary>
    public const int ScreenName = 256;

    /// <summary><c>personOrUserReported/displayName</c>.</summary>
    public const int DisplayName = 255;

    /// <summary><c>fileDetails/originalFileName</c>.</summary>
    public const int OriginalFileName = 2056;

    /// <summary><c>originalFileHash/@hashType</c>.</summary>
    public const int HashType = 64;

    /// <summary><c>details/nameValuePair/name</c>.</summary>
    public const int DetailName = 64;

    /// <summary><c>deviceId/idType</c>.</summary>
    public const int DeviceIdType = 255;

    /// <summary><c>deviceId/idValue</c>.</summary>
    public const int DeviceIdValue = 2083;
}
