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
                new XElement("incidentType", i.IncidentType),
                Opt("platform", i.Platform),
                Opt("escalateToHighPriority", i.EscalateToHighPriority),
                i.ReportAnnotations is { Count: > 0 } ra
                    ? new XElement("reportAnnotations", CyberTipVocabulary.ReportAnnotationOrder.Where(ra.Contains).Select(a => new XElement(a)))
                    : null,
                new XElement("incidentDateTime", Time(i.IncidentDateTime)),
                Opt("incidentDateTimeDescription", i.IncidentDateTimeDescription)),
            report.WebPageUrls is { Count: > 0 } urls
                ? new XElement("internetDetails", new XElement("webPageIncident", urls.Select(u => new XElement("url", u))))
                : null,
            new XElement("reporter",
                Person("reportingPerson", report.Reporter.ReportingPerson),
                report.Reporter.ContactPerson is { } cp ? Person("contactPerson", cp) : null,
                Opt("companyTemplate", report.Reporter.CompanyTemplate),
                Opt("termsOfService", report.Reporter.TermsOfService),
                Opt("legalURL", report.Reporter.LegalUrl)),
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
            new XElement("fileId", fileId),
            Opt("fileName", f.FileName),
            Opt("originalFileName", f.OriginalFileName),
            f.UploadedToEspTimestamp is { } up ? new XElement("uploadedToEspTimestamp", Time(up)) : null,
            Opt("locationOfFile", f.LocationOfFile),
            Bool("fileViewedByEsp", f.FileViewedByEsp),
            Bool("exifViewedByEsp", f.ExifViewedByEsp),
            Bool("publiclyAvailable", f.PubliclyAvailable),
            Opt("fileRelevance", f.FileRelevance),
            f.Annotations is { Count: > 0 } an
                ? new XElement("fileAnnotations", CyberTipVocabulary.FileAnnotationOrder.Where(an.Contains).Select(a => new XElement(a)))
                : null,
            Opt("industryClassification", f.IndustryClassification),
            (f.OriginalFileHashes ?? []).Select(h => new XElement("originalFileHash", new XAttribute("hashType", h.HashType), h.Value)),
            f.IpCaptureEvent is { } ip ? Ip(ip) : null,
            (f.DeviceIds ?? []).Select(Device),
            f.HashDetails is { Count: > 0 } hd
                ? new XElement("details", new XAttribute("type", "HASH"), hd.Select(kv => new XElement("nameValuePair", new XElement("name", kv.Key), new XElement("value", kv.Value))))
                : null,
            (f.AdditionalInfo ?? []).Select(a => new XElement("additionalInfo", a)));
        return new XDocument(new XDeclaration("1.0", "UTF-8", null), root);
    }

    /// <summary>Serialises a document as UTF-8 bytes with its declaration.</summary>
    public static byte[] ToBytes(XDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
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

    private static XElement? Opt(string name, string? value) => string.IsNullOrEmpty(value) ? null : new XElement(name, value);

    private static XElement? Bool(string name, bool? value) => value is null ? null : new XElement(name, value.Value ? "true" : "false");

    private static XElement Person(string name, CyberTipPerson p) => new(name,
        Opt("firstName", p.FirstName),
        Opt("lastName", p.LastName),
        (p.Phones ?? []).Select(x => new XElement("phone", x)),
        (p.Emails ?? []).Select(x => new XElement("email", x)));

    private static XElement ReportedUser(ReportedUser u) => new("personOrUserReported",
        u.Emails is { Count: > 0 } ? Person("personOrUserReportedPerson", new CyberTipPerson(Emails: u.Emails)) : null,
        Opt("espIdentifier", u.EspIdentifier),
        Opt("espService", u.EspService),
        Opt("screenName", u.ScreenName),
        Opt("displayName", u.DisplayName),
        Opt("profileUrl", u.ProfileUrl),
        (u.IpCaptureEvents ?? []).Select(Ip),
        (u.DeviceIds ?? []).Select(Device),
        Opt("additionalInfo", u.AdditionalInfo));

    private static XElement Ip(IpCaptureEvent e) => new("ipCaptureEvent",
        new XElement("ipAddress", e.IpAddress),
        Opt("eventName", e.EventName),
        e.DateTime is { } t ? new XElement("dateTime", Time(t)) : null,
        Bool("possibleProxy", e.PossibleProxy),
        e.Port is { } port ? new XElement("port", port.ToString(CultureInfo.InvariantCulture)) : null);

    private static XElement Device(DeviceIdEvent d) => new("deviceId",
        new XElement("idType", d.IdType),
        new XElement("idValue", d.IdValue),
        Opt("eventName", d.EventName),
        d.DateTime is { } t ? new XElement("dateTime", Time(t)) : null);
}
