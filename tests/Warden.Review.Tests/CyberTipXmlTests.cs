using System.Xml.Linq;
using Warden.Core.Tests;
using Warden.Review.Cases;
using Warden.Review.Reporting;

namespace Warden.Review.Tests;

public sealed class CyberTipXmlTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    internal static ReportSettings Settings { get; } = new()
    {
        Reporter = new ReporterInfo(new CyberTipPerson("Alex", "Reviewer", ["2025550100"], ["trust-safety@example.com"]), CompanyTemplate: "Legal process: legal@example.com", TermsOfService: "https://photos.example.com/terms", LegalUrl: "https://photos.example.com/legal"),
        ServiceName = "Warden Demo Photos",
        IndustryClassificationMou = true,
    };

    private static string Cybertip(params string[] parts) => TestData.SharedPath(["ncmec", "cybertip", .. parts]);

    private static CyberTipSchema? _schema;

    private static CyberTipSchema Schema() => _schema ??= CyberTipSchema.Load(Cybertip("cyber_tipline.xsd"));

    internal static ReviewCase DecidedCase(bool viewed = true)
    {
        var rng = new Random(11);
        var h = CaseBuilderTests.RandomHash(rng);
        var builder = new CaseBuilder();
        var c = builder.Add(CaseBuilderTests.Item("s0", "user-000123", h, 0, evidence: "e0", sha256: new string('a', 64)));
        builder.Add(CaseBuilderTests.Item("s1", "user-000123", CaseBuilderTests.Flip(h, 3, rng), 1, evidence: "e1"));
        builder.Add(CaseBuilderTests.Item("s2", "user-000123", CaseBuilderTests.RandomHash(rng), 2, evidence: null));
        builder.Decide(c.Id, c.Clusters[0].Id, new ClusterDecision(Verdict.Confirmed, "user:alice", Now.AddMinutes(-5), "A1", new HashSet<string> { "generativeAi", "viral" }, DecidedWithoutViewing: !viewed));
        builder.Decide(c.Id, c.Clusters[1].Id, new ClusterDecision(Verdict.Confirmed, "user:alice", Now.AddMinutes(-5), "B1"));
        return c;
    }

    [Fact]
    public void A_case_report_has_one_file_per_confirmed_member_with_truthful_viewed_flags()
    {
        var c = DecidedCase();
        var package = CaseReportBuilder.Build(c, Settings, e => e == "e0", Now);
        Assert.Equal(["s0", "s1"], package.Files.Select(f => f.SubmissionId));
        Assert.Equal(["s2"], package.Omitted);
        Assert.True(package.Files[0].Details.FileViewedByEsp);
        Assert.False(package.Files[1].Details.FileViewedByEsp); // decided through its representative, never seen
        Assert.Equal(["viral", "generativeAi"], package.Files[0].Details.Annotations);
        Assert.Equal("A1", package.Files[0].Details.IndustryClassification);
        Assert.Contains(package.Files[0].Details.OriginalFileHashes!, h => h.HashType == "SHA256");
        Assert.Contains(package.Files[0].Details.OriginalFileHashes!, h => h.HashType == "PDQ" && h.Value.Length == 64);
        Assert.Contains("Near-duplicate of s0", package.Files[1].Details.AdditionalInfo![0], StringComparison.Ordinal);

        var report = CyberTipXml.Report(package.Report);
        Assert.Empty(CyberTipValidator.Validate(report, Now));
        var root = report.Root!;
        Assert.Equal(["incidentSummary", "internetDetails", "reporter", "personOrUserReported", "additionalInfo"], root.Elements().Select(e => e.Name.LocalName));
        Assert.Equal("user-000123", root.Element("personOrUserReported")!.Element("espIdentifier")!.Value);
        Assert.Equal(3, root.Element("personOrUserReported")!.Elements("ipCaptureEvent").Count());

        foreach (var f in package.Files)
        {
            Assert.Empty(CyberTipValidator.Validate(CyberTipXml.FileDetails(4564654, "b0754af766b426f2928a02c651ed4b99", f.Details), Now));
        }
    }

    [Fact]
    public void Without_the_mou_no_industry_classification_is_sent_and_unviewed_known_hash_decisions_say_so()
    {
        var c = DecidedCase(viewed: false);
        var package = CaseReportBuilder.Build(c, Settings with { IndustryClassificationMou = false }, _ => false, Now);
        Assert.All(package.Files, f => Assert.Null(f.Details.IndustryClassification));
        Assert.All(package.Files, f => Assert.False(f.Details.FileViewedByEsp));
        Assert.Contains(package.Files[0].Details.AdditionalInfo!, s => s.Contains("without human viewing", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void Builder_output_validates_against_ncmecs_xsd()
    {
        var package = CaseReportBuilder.Build(DecidedCase(), Settings, _ => true, Now);
        Assert.Empty(Schema().Validate(CyberTipXml.Report(package.Report)));
        foreach (var f in package.Files)
        {
            Assert.Empty(Schema().Validate(CyberTipXml.FileDetails(900000001, "0123456789abcdef0123456789abcdef", f.Details)));
        }

        var everything = new CyberTipFile("a.png", "orig.png", Now.AddDays(-1), "https://x.example.com/a", true, true, true, "Reported",
            [.. CyberTipVocabulary.FileAnnotationOrder], "B2", [new("MD5", "00"), new("SHA1", "11")],
            new IpCaptureEvent("2001:db8::1", "Upload", Now.AddDays(-1), true, 443), [new DeviceIdEvent("IDFA", "x", "Login", Now.AddDays(-2))],
            [new("PDQ quality", "100")], ["one", "two"]);
        var doc = CyberTipXml.FileDetails(1, "f", everything);
        Assert.Empty(Schema().Validate(doc));
        Assert.Empty(CyberTipValidator.Validate(doc, Now));
    }

    public static TheoryData<string> ValidSamples { get; } =
    [
        "docs-examples/report.xml", "docs-examples/fileDetails.xml", "constructed/report-minimal.xml", "constructed/report-full.xml",
        "constructed/fileDetails-full.xml", "constructed/fileDetails-supplemental.xml", "constructed/fileDetails-batched-viral-meme.xml",
        "constructed/report-batched-viral-meme.xml",
    ];

    [SkippableTheory]
    [MemberData(nameof(ValidSamples))]
    public void Reference_samples_pass_the_xsd_and_the_built_in_rules(string file)
    {
        var doc = XDocument.Load(Cybertip(file.Split('/')));
        Assert.Empty(Schema().Validate(doc));
        var issues = CyberTipValidator.Validate(doc, Now);

        // The documentation example's reportingPerson has an e-mail; report-full has every element in order.
        Assert.True(issues.Count == 0, string.Join("\n", issues));
    }

    public static TheoryData<string, bool, string> InvalidSamples { get; } = new()
    {
        { "fileAnnotations-false.xml", true, "fixed to true" },
        { "fileDetails-ipCaptureEvent-before-industryClassification.xml", true, "out of order" },
        { "fileDetails-potentialMeme-and-fileAnnotations.xml", true, "choice" },
        { "fileDetails-two-ipCaptureEvents.xml", true, "at most 1" },
        { "report-incidentDateTime-no-timezone.xml", false, "time zone" },
        { "report-reporter-before-internetDetails.xml", true, "out of order" },
        { "report-unknown-incidentType.xml", true, "incident types" },
    };

    [SkippableTheory]
    [MemberData(nameof(InvalidSamples))]
    public void Invalid_samples_fail_the_built_in_rules_and_the_xsd_where_it_can_tell(string file, bool xsdRejects, string reason)
    {
        var doc = XDocument.Load(Cybertip("constructed", "invalid", file));
        var issues = CyberTipValidator.Validate(doc, Now);
        Assert.Contains(issues, i => i.Message.Contains(reason, StringComparison.Ordinal));
        Assert.Equal(xsdRejects, Schema().Validate(doc).Count > 0);
    }

    [Fact]
    public void Built_in_rules_catch_documented_server_side_rules()
    {
        var report = new CyberTipReport(new IncidentSummary(CyberTipVocabulary.ChildPornography, Now.AddDays(1)), new ReporterInfo(new CyberTipPerson("No", "Email")),
            ["not a url"], [new ReportedUser("u", IpCaptureEvents: [new IpCaptureEvent("999.1.1.1", "Upload", Port: 70000)])]);
        var issues = CyberTipValidator.Validate(CyberTipXml.Report(report), Now).Select(i => i.Message).ToList();
        Assert.Contains(issues, m => m.Contains("in the future", StringComparison.Ordinal));
        Assert.Contains(issues, m => m.Contains("e-mail", StringComparison.Ordinal));
        Assert.Contains(issues, m => m.Contains("URL", StringComparison.Ordinal));
        Assert.Contains(issues, m => m.Contains("IPv4 or IPv6", StringComparison.Ordinal));
        Assert.Contains(issues, m => m.Contains("port", StringComparison.Ordinal));

        var file = new CyberTipFile(FileViewedByEsp: false, ExifViewedByEsp: true, FileRelevance: "Supplemental Reported", IndustryClassification: "A1", OriginalFileHashes: [new(new string('x', 65), "1")]);
        var fileDoc = CyberTipXml.FileDetails(1, "f", file);
        var hashType = fileDoc.Root!.Element("originalFileHash")!.Attribute("hashType")!;
        Assert.Equal(CyberTipLimits.HashType, hashType.Value.Length); // the writer keeps to the documented length…
        hashType.Value = new string('x', 65); // …and the rules catch a hand-made document that does not
        var fileIssues = CyberTipValidator.Validate(fileDoc, Now).Select(i => i.Message).ToList();
        Assert.Contains(fileIssues, m => m.Contains("exifViewedByEsp", StringComparison.Ordinal));
        Assert.Contains(fileIssues, m => m.Contains("Supplemental", StringComparison.Ordinal));
        Assert.Contains(fileIssues, m => m.Contains("hashType", StringComparison.Ordinal));
        Assert.Throws<CyberTipValidationException>(() => CyberTipValidator.EnsureValid(CyberTipXml.Report(report), Now));
    }

    [Fact]
    public void Hostile_or_odd_documents_give_issues_not_exceptions()
    {
        Assert.NotEmpty(CyberTipValidator.Validate(new XDocument(new XElement("x")), Now));
        Assert.NotEmpty(CyberTipValidator.Validate(new XDocument(new XElement(XName.Get("report", "urn:x"))), Now));
        Assert.NotEmpty(CyberTipValidator.Validate(new XDocument(new XElement("report")), Now));
        Assert.NotEmpty(CyberTipValidator.Validate(XDocument.Parse("<fileDetails><reportId>abc</reportId><bogus/></fileDetails>"), Now));
    }

    [SkippableTheory]
    [InlineData("docs-examples/submit.response.xml", 0, "4564654", null)]
    [InlineData("docs-examples/upload.response.xml", 0, "4564654", "b0754af766b426f2928a02c651ed4b99")]
    [InlineData("docs-examples/status.response.xml", 0, null, null)]
    [InlineData("recorded-2016/status-401.response.xml", 1000, null, null)]
    [InlineData("recorded-2016/submit-no-incidentSummary-1001.response.xml", 1001, null, null)]
    [InlineData("constructed/response-fileinfo-4100.xml", 4100, null, null)]
    [InlineData("constructed/response-finish-two-files.xml", 0, "900000001", null)]
    public void Responses_parse(string file, int code, string? reportId, string? fileId)
    {
        var r = CyberTipResponse.TryParse(File.ReadAllBytes(Cybertip(file.Split('/'))));
        Assert.NotNull(r);
        Assert.Equal((code, reportId, fileId), (r.ResponseCode, r.ReportId, r.FileId));
        if (file.Contains("two-files", StringComparison.Ordinal))
        {
            Assert.Equal(2, r.FileIds.Count);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("<reportResponse><responseCode>0</respo")]
    [InlineData("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><reportResponse><responseCode>&a;</responseCode></reportResponse>")]
    [InlineData("<other><responseCode>0</responseCode></other>")]
    [InlineData("<reportResponse><responseCode>zero</responseCode></reportResponse>")]
    public void Malformed_or_hostile_responses_do_not_parse(string body) =>
        Assert.Null(CyberTipResponse.TryParse(System.Text.Encoding.UTF8.GetBytes(body)));

    [Theory]
    [InlineData(200, 0, StepOutcome.Ok)]
    [InlineData(500, 0, StepOutcome.Ambiguous)]
    [InlineData(500, 1000, StepOutcome.Retry)]
    [InlineData(200, 1110, StepOutcome.Retry)]
    [InlineData(401, 1000, StepOutcome.AuthFailed)]
    [InlineData(200, 2000, StepOutcome.AuthFailed)]
    [InlineData(400, 4100, StepOutcome.Rejected)]
    [InlineData(200, 1001, StepOutcome.Rejected)]
    [InlineData(400, 5001, StepOutcome.ReportGone)]
    [InlineData(400, 5101, StepOutcome.AlreadyRetracted)]
    [InlineData(400, 5102, StepOutcome.AlreadyFinished)]
    public void Answers_classify_by_response_code_first(int http, int code, StepOutcome expected) =>
        Assert.Equal(expected, CyberTiplineClient.Classify(http, new CyberTipResponse(code, null, null, null, null, [])));

    [Fact]
    public void Production_only_talks_to_ncmec()
    {
        var prod = new CyberTiplineOptions { Environment = CyberTiplineEnvironment.Production, Username = "u", Password = "p", BaseUri = new Uri("http://127.0.0.1:1/ispws/") };
        Assert.Throws<InvalidOperationException>(() => prod.EffectiveBaseUri);
        Assert.Equal(CyberTiplineOptions.ProductionBaseUri, (prod with { BaseUri = null }).EffectiveBaseUri);
        Assert.Equal(CyberTiplineOptions.TestBaseUri, new CyberTiplineOptions { Username = "u", Password = "p" }.EffectiveBaseUri);
    }
}
