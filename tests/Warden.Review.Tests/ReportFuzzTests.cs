using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;
using FsCheck;
using FsCheck.Fluent;
using Warden.Review.Cases;
using Warden.Review.Reporting;
using TestData = Warden.Core.Tests.TestData;

namespace Warden.Review.Tests;

/// <summary>
/// Arbitrary Unicode in every field a report carries (uploader ids, file names, URLs, IPs, device ids, bank
/// names, labels, notes, hashes, the organisation's settings): control characters, lone and paired
/// surrogates, non-characters, XML specials and very long strings. Whatever arrives, the report builder's
/// XML is well-formed XML 1.0, valid against NCMEC's XSD, clean under the built-in rules and within every
/// documented length, and the raw values stay on the submission.
/// </summary>
public sealed partial class ReportFuzzTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private static CyberTipSchema? _schema;
    private static IReadOnlyList<(string[] Path, int Max)>? _lengthRules;

    // ---- generators ----

    /// <summary>One hostile piece: mostly printable, with every class XML 1.0 refuses or discourages.</summary>
    internal static Gen<string> Piece { get; } = Gen.Frequency(
        (10, Gen.Choose(0x20, 0x7E).Select(i => ((char)i).ToString())),
        (4, Gen.Choose(0x00, 0x1F).Select(i => ((char)i).ToString())),
        (1, Gen.Choose(0x7F, 0x9F).Select(i => ((char)i).ToString())),
        (3, Gen.Choose(0xD800, 0xDFFF).Select(i => ((char)i).ToString())), // lone, or a pair by chance
        (2, Gen.Elements("\uFFFE", "\uFFFF", "\uFDD0", "\uFDEF", "\uFFFD", "<", ">", "&", "\"", "'", "]]>", "\u2028", "\u0085", "\r\n", "\t", " ", "&amp;", "<!--", "<?xml", "\uFEFF")),
        (2, Gen.Elements("\uD83D\uDE00", "\uDBFF\uDFFF", "\uD83F\uDFFE", "\uD800\uDC00", "\uDBFF\uDFFE")), // pairs, incl. plane non-characters
        (3, Gen.Choose(0xA0, 0xFFFF).Select(i => ((char)i).ToString())));

    /// <summary>Strings of hostile pieces; now and then thousands of characters long.</summary>
    internal static Gen<string> Hostile { get; } =
        from length in Gen.Frequency((12, Gen.Choose(0, 24)), (3, Gen.Choose(25, 400)), (1, Gen.Choose(2000, 9000)))
        from pieces in Gen.ArrayOf(Piece, length)
        select string.Concat(pieces);

    private static Gen<string?> MaybeHostile { get; } = Gen.Frequency((1, Gen.Constant<string?>(null)), (6, Hostile.Select(s => (string?)s)));

    // Sometimes a value that is almost right (a real URL or IP with a bad character), so both branches run.
    private static Gen<string?> UrlLike { get; } = Gen.Frequency(
        (3, MaybeHostile),
        (2, Hostile.Select(s => (string?)("https://photos.example.com/p/" + s))),
        (1, Gen.Constant<string?>("https://photos.example.com/ok")));

    private static Gen<string?> IpLike { get; } = Gen.Frequency(
        (3, MaybeHostile),
        (2, Hostile.Select(s => (string?)("198.51.100." + s))),
        (1, Gen.Elements<string?>("198.51.100.7", "2001:db8::1", "1", "0x7f.1", "::ffff:192.0.2.1")));

    internal sealed record Upload(string? FileName, string? Url, string? Ip, string? Device, int? Port, DateTimeOffset UploadedAt, string? Hash);

    internal sealed record Spec(
        string Uploader,
        Upload[] Uploads,
        string Bank,
        string SignalType,
        string LabelKey,
        string LabelValue,
        string? Note,
        string? ServiceName,
        string? First,
        string? Last,
        string? Template,
        string? Tos,
        string? LegalUrl,
        string? Phone,
        string? IncidentType,
        bool Mou);

    private static Gen<Upload> UploadGen { get; } =
        from name in MaybeHostile
        from url in UrlLike
        from ip in IpLike
        from device in MaybeHostile
        from port in Gen.Frequency((2, Gen.Constant<int?>(null)), (3, Gen.Choose(-70000, 70000).Select(p => (int?)p)))
        from ticks in Gen.Choose(0, int.MaxValue).Select(t => t * 1_400_000_000L) // year 1 to ~9500, future included
        from hash in MaybeHostile
        select new Upload(name, url, ip, device, port, new DateTimeOffset(Math.Min(ticks, DateTime.MaxValue.Ticks - 1), TimeSpan.Zero), hash);

    internal static Gen<Spec> SpecGen { get; } =
        from uploader in Hostile
        from uploads in Gen.ArrayOf(UploadGen, 3)
        from bank in Hostile
        from signal in Hostile
        from key in Hostile
        from value in Hostile
        from note in MaybeHostile
        from service in MaybeHostile
        from first in MaybeHostile
        from last in MaybeHostile
        from template in MaybeHostile
        from tos in MaybeHostile
        from legal in UrlLike
        from phone in MaybeHostile
        from incident in Gen.Frequency((3, Gen.Constant<string?>(null)), (2, Gen.Elements<string?>([.. CyberTipVocabulary.IncidentTypes])))
        from mou in Gen.Elements(true, false)
        select new Spec(uploader, uploads, bank, signal, key, value, note, service, first, last, template, tos, legal, phone, incident, mou);

    // ---- the properties ----

    [SkippableFact]
    public void Any_unicode_in_any_field_gives_xsd_valid_rule_clean_reports_within_every_documented_length()
    {
        var schema = Schema();
        var rules = LengthRules();
        var cases = 0;
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(4000), Prop.ForAll(SpecGen.ToArbitrary(), spec =>
        {
            cases++;
            var (@case, package) = Build(spec);
            var report = CyberTipXml.Report(package.Report);
            AssertDocument(report, schema, rules);
            Assert.Equal(XmlSafeText.Field(@case.UploaderId, CyberTipLimits.EspIdentifier), report.Root!.Element("personOrUserReported")!.Element("espIdentifier")!.Value);
            foreach (var f in package.Files)
            {
                // The stored metadata goes through JSON (the outbox row), as in a real delivery.
                var stored = JsonSerializer.Deserialize<CyberTipFile>(JsonSerializer.Serialize(f.Details))!;
                AssertDocument(CyberTipXml.FileDetails(900000123, "0123456789abcdef0123456789abcdef", stored), schema, rules);
            }

            // The raw values stay on the submission (the evidence record) even where the report shows a safe form.
            var byId = @case.Submissions.ToDictionary(s => s.SubmissionId);
            for (var i = 0; i < spec.Uploads.Length; i++)
            {
                var s = byId["s" + i];
                Assert.Equal(spec.Uploads[i].FileName, s.Raw?.OriginalFileName ?? s.Context.OriginalFileName);
                Assert.Equal(spec.Uploads[i].Url, s.Raw?.Url ?? s.Context.Url);
                Assert.Equal(spec.Uploads[i].Ip, s.Raw?.IpAddress ?? s.Context.IpAddress);
                Assert.Equal(spec.Uploads[i].Device, s.Raw?.DeviceId ?? s.Context.DeviceId);
                Assert.Equal(UploaderOf(spec), s.Raw?.UploaderId ?? s.UploaderId);
                Assert.True(s.Context.OriginalFileName is null || XmlSafeText.IsClean(s.Context.OriginalFileName));
            }

            return true;
        }));
        Assert.Equal(4000, cases);
    }

    /// <summary>The writer on its own, fed hostile values in every field of the model (enumerations too): it never throws and always writes well-formed XML 1.0.</summary>
    [FsCheck.Xunit.Property(MaxTest = 5000)]
    public Property The_writer_never_throws_and_always_writes_well_formed_xml()
    {
        var gen =
            from a in Gen.ArrayOf(MaybeHostile, 24)
            from port in Gen.Choose(int.MinValue, int.MaxValue)
            select (a, port);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var a = t.a;
            var file = new CyberTipFile(a[0], a[1], Now, a[2], true, false, null, a[3], [a[4] ?? "viral"], a[5],
                [new OriginalFileHash(a[6] ?? "", a[7] ?? "")], new IpCaptureEvent(a[8] ?? "", a[9], Now, null, t.port),
                [new DeviceIdEvent(a[10] ?? "", a[11] ?? "", a[12])], [new KeyValuePair<string, string>(a[13] ?? "", a[14] ?? "")], [a[15] ?? "", a[16] ?? ""]);
            var report = new CyberTipReport(
                new IncidentSummary(a[17] ?? "", Now, a[18], a[19], null, a[20]),
                new ReporterInfo(new CyberTipPerson(a[21], a[22], [a[23] ?? ""], [a[0] ?? ""]), null, a[1], a[2], a[3]),
                [a[4] ?? "", a[5] ?? ""],
                [new ReportedUser(a[6], a[7], a[8], a[9], a[10], [a[11] ?? ""], [new IpCaptureEvent(a[12] ?? "")], null, a[13])],
                a[14]);
            var fileId = string.IsNullOrWhiteSpace(a[15]) ? "f" : a[15]!; // NCMEC's token, never blank
            foreach (var doc in new[] { CyberTipXml.FileDetails(1, fileId, file), CyberTipXml.Report(report) })
            {
                var parsed = ParseStrict(CyberTipXml.ToBytes(doc));
                Assert.All(parsed.DescendantNodes().OfType<XText>(), x => Assert.True(XmlSafeText.IsClean(x.Value)));
            }

            return true;
        });
    }

    [FsCheck.Xunit.Property(MaxTest = 10000)]
    public Property Cleaning_leaves_only_xml_characters_keeps_the_length_and_is_idempotent()
    {
        return Prop.ForAll(Hostile.ToArbitrary(), s =>
        {
            var clean = XmlSafeText.Clean(s);
            Assert.True(XmlSafeText.IsClean(clean));
            Assert.Equal(s.Length, clean.Length);
            Assert.Same(clean, XmlSafeText.Clean(clean)); // clean text is returned as is, without a copy
            Assert.True(XmlConvert.VerifyXmlChars(clean) is not null || clean.Length == 0);
            for (var i = 0; i < s.Length; i++)
            {
                // Characters that were fine stay exactly where they were.
                Assert.True(clean[i] == s[i] || clean[i] == XmlSafeText.Replacement);
            }

            var field = XmlSafeText.Field(s, 64);
            Assert.True(field is null || (field.Length <= 64 && XmlSafeText.IsClean(field) && field.Trim() == field));
            return true;
        });
    }

    // A table in code, not [InlineData]: test runners re-encode lone surrogates in theory data.
    [Fact]
    public void Cleaning_examples()
    {
        (string Raw, string Expected)[] table =
        [
            ("a\u0001b", "a\uFFFDb"),
            ("\uD800", "\uFFFD"),
            ("x\uDC00", "x\uFFFD"),
            ("\uDC00\uD800", "\uFFFD\uFFFD"), // reversed pair
            ("\uFFFE\uFFFF", "\uFFFD\uFFFD"),
            ("\uD83D\uDE00", "\uD83D\uDE00"), // a real pair (U+1F600) is kept
            ("\uDBFF\uDFFF", "\uFFFD\uFFFD"), // U+10FFFF, a non-character
            ("tab\tlf\ncr\r", "tab\tlf\ncr\r"),
            ("\u0085\u009F\u007F", "\uFFFD\uFFFD\uFFFD"),
            ("\uFDD0", "\uFFFD"),
            ("\u0000", "\uFFFD"),
        ];
        foreach (var (raw, expected) in table)
        {
            Assert.Equal(expected, XmlSafeText.Clean(raw));
        }
    }

    [Fact]
    public void Shortening_never_splits_a_surrogate_pair_and_marks_the_cut()
    {
        var s = string.Concat(Enumerable.Repeat("\uD83D\uDE00", 40));
        for (var max = 2; max < 30; max++)
        {
            var f = XmlSafeText.Field(s, max)!;
            Assert.True(f.Length <= max);
            Assert.EndsWith(XmlSafeText.Ellipsis.ToString(), f, StringComparison.Ordinal);
            Assert.True(XmlSafeText.IsClean(f));
        }
    }

    [Fact]
    public void Uploader_ids_that_differ_only_in_unsafe_characters_never_share_a_case()
    {
        var builder = new CaseBuilder();
        var rng = new Random(3);
        var a = builder.Add(CaseBuilderTests.Item("s1", "user\u0001", CaseBuilderTests.RandomHash(rng)));
        var b = builder.Add(CaseBuilderTests.Item("s2", "user\u0002", CaseBuilderTests.RandomHash(rng)));
        Assert.NotSame(a, b);
        Assert.Equal("user\uFFFD", a.UploaderId);
        Assert.Equal("user\u0001", a.RawUploaderId);
        Assert.Equal("user\u0002", b.Submissions.Single().Raw!.UploaderId);
    }

    // ---- helpers ----

    private static string UploaderOf(Spec spec) => string.IsNullOrWhiteSpace(spec.Uploader) ? "unknown" : spec.Uploader;

    private static (ReviewCase Case, ReportPackage Package) Build(Spec spec)
    {
        var builder = new CaseBuilder();
        var rng = new Random(spec.Uploader.Length);
        var h = CaseBuilderTests.RandomHash(rng);
        ReviewCase? c = null;
        for (var i = 0; i < spec.Uploads.Length; i++)
        {
            var u = spec.Uploads[i];
            var hashes = new Dictionary<string, string> { ["sha256"] = u.Hash ?? "", ["md5"] = "d41d8cd98f00b204e9800998ecf8427e" };
            var labels = new Dictionary<string, string> { [spec.LabelKey] = spec.LabelValue, ["classification"] = "A1" };
            c = builder.Add(new MatchedSubmission(
                "s" + i,
                UploaderOf(spec),
                Now.AddMinutes(-10 + i),
                i == 2 ? null : CaseBuilderTests.Flip(h, i, rng), // two near-duplicates and one without a PDQ
                hashes,
                [new MatchEvidence(spec.Bank, spec.SignalType, i, labels)],
                new UploadContext(u.Ip, u.Port, u.UploadedAt, u.Url, u.FileName, u.Device),
                EvidenceRef: "e" + i));
        }

        foreach (var cluster in c!.Clusters)
        {
            builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.Confirmed, "user:alice", Now.AddMinutes(-1), "B2", new HashSet<string> { "generativeAi" }, spec.IncidentType, Note: spec.Note));
        }

        var settings = new ReportSettings
        {
            Reporter = new ReporterInfo(new CyberTipPerson(spec.First, spec.Last, spec.Phone is null ? null : [spec.Phone], ["trust-safety@example.com"]), null, spec.Template, spec.Tos, spec.LegalUrl),
            ServiceName = spec.ServiceName,
            IndustryClassificationMou = spec.Mou,
        };
        return (c, CaseReportBuilder.Build(c, settings, e => e == "e0", Now));
    }

    private static void AssertDocument(XDocument doc, CyberTipSchema schema, IReadOnlyList<(string[] Path, int Max)> rules)
    {
        var parsed = ParseStrict(CyberTipXml.ToBytes(doc));
        var errors = schema.Validate(parsed);
        Assert.True(errors.Count == 0, "XSD: " + string.Join("; ", errors) + "\n" + parsed);
        var issues = CyberTipValidator.Validate(parsed, Now);
        Assert.True(issues.Count == 0, "rules: " + string.Join("; ", issues));
        foreach (var e in parsed.Descendants())
        {
            foreach (var (path, max) in rules)
            {
                if (path[^1].StartsWith('@'))
                {
                    if (Matches(e, path[..^1]) && e.Attribute(path[^1][1..]) is { } a)
                    {
                        Assert.True(a.Value.Length <= max, $"{string.Join('/', path)} is {a.Value.Length} > {max}");
                    }
                }
                else if (Matches(e, path))
                {
                    Assert.True(e.Value.Length <= max, $"{string.Join('/', path)} is {e.Value.Length} > {max}");
                }
            }
        }
    }

    // A documentation path such as person/firstName or details/nameValuePair/name, matched from the element up.
    private static bool Matches(XElement e, string[] path)
    {
        XElement? at = e;
        for (var i = path.Length - 1; i >= 0; i--)
        {
            if (at is null)
            {
                return false;
            }

            var name = at.Name.LocalName;
            var ok = name == path[i] || (path[i] == "person" && name is "reportingPerson" or "contactPerson" or "personOrUserReportedPerson");
            if (!ok)
            {
                return false;
            }

            at = at.Parent;
        }

        return true;
    }

    private static XDocument ParseStrict(byte[] bytes)
    {
        using var reader = XmlReader.Create(new MemoryStream(bytes), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, CheckCharacters = true });
        return XDocument.Load(reader);
    }

    private static CyberTipSchema Schema() =>
        _schema ??= CyberTipSchema.Load(TestData.SharedPath("ncmec", "cybertip", "cyber_tipline.xsd"));

    // The documented maximum lengths, read from the copyable rules file (facts restated from NCMEC's documentation).
    private static IReadOnlyList<(string[] Path, int Max)> LengthRules()
    {
        if (_lengthRules is not null)
        {
            return _lengthRules;
        }

        using var json = JsonDocument.Parse(File.ReadAllText(TestData.SharedPath("ncmec", "cybertip", "documentation-rules.json")));
        var rules = new List<(string[], int)>();
        foreach (var e in json.RootElement.GetProperty("elements").EnumerateArray())
        {
            if (!e.TryGetProperty("rules", out var rs))
            {
                continue;
            }

            foreach (var r in rs.EnumerateArray())
            {
                var m = MaxLength().Match(r.GetString() ?? "");
                if (m.Success)
                {
                    rules.Add((e.GetProperty("path").GetString()!.Split('/'), int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));
                }
            }
        }

        Assert.True(rules.Count > 40, "the rules file lists the documented lengths");
        return _lengthRules = rules;
    }

    [GeneratedRegex(@"^max length is (\d+) characters$")]
    private static partial Regex MaxLength();
}
