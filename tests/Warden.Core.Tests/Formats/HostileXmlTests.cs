using System.Text;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class HostileXmlTests
{
    private const string Ns = "https://hashsharing.ncmec.org/hashsharing/v2";

    private static ImportOptions Ncmec(bool skip = true) => new(BankFileFormat.NcmecXml, SkipBadLines: skip, SourceName: "evil.xml");

    [Fact]
    public void Entity_expansion_is_refused_at_the_DTD()
    {
        var laughs = new StringBuilder("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for (var i = 1; i <= 9; i++)
        {
            laughs.Append(System.Globalization.CultureInfo.InvariantCulture, $" <!ENTITY lol{i} \"{string.Concat(Enumerable.Repeat($"&lol{(i == 1 ? "" : i - 1)};", 10))}\">\n");
        }

        laughs.Append($"]>\n<queryResult xmlns=\"{Ns}\"><images><image><member id=\"1\">&lol9;</member></image></images></queryResult>");
        var ex = Import.Fails(laughs.ToString(), Ncmec());
        Assert.Contains("DTD", ex.Reason, StringComparison.Ordinal);
        Assert.StartsWith("evil.xml: a DTD", ex.Message, StringComparison.Ordinal); // XmlReader gives no line for it
    }

    [Fact]
    public void External_entities_are_refused()
    {
        var xxe = $"<?xml version=\"1.0\"?><!DOCTYPE q [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><queryResult xmlns=\"{Ns}\"><images><image><id>&x;</id></image></images></queryResult>";
        Assert.Contains("DTD", Import.Fails(xxe, Ncmec()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_page_fails_after_yielding_what_came_before()
    {
        var full = File.ReadAllText(TestData.Own("ncmec-hashsharing", "scenario", "entries-window1-page1.xml"));
        var cut = full[..full.IndexOf("<video>", StringComparison.Ordinal)];
        var report = new ImportReport();
        var seen = 0;
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(cut));
        var ex = Assert.Throws<BankFormatException>(() =>
        {
            foreach (var _ in BankFileReader.Read(stream, Ncmec(), report))
            {
                seen++;
            }
        });
        Assert.StartsWith("evil.xml:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("malformed XML", ex.Reason, StringComparison.Ordinal);
        Assert.True(ex.Line > 30, ex.Message);
        Assert.Equal(9, seen); // seven records plus the two live entries' replacement tombstones
        Assert.Null(report.NcmecPage); // no paging information from a page that did not end
        Assert.False(report.Completed);
    }

    [Theory]
    [InlineData("<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v1\"/>", "in namespace 'https://hashsharing.ncmec.org/hashsharing/v1'")]
    [InlineData("<queryResult/>", "<queryResult> in no namespace")]
    [InlineData("<status xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"/>", "the root element is <status>")]
    [InlineData("", "malformed XML")]
    [InlineData("not xml at all", "malformed XML")]
    [InlineData("<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"/><second/>", "malformed XML")]
    [InlineData("<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><images maxTimestamp=\"yesterday\"/></queryResult>", "is not an ISO 8601 time")]
    public void Documents_that_are_not_entries_pages_are_fatal(string xml, string reason) =>
        Assert.Contains(reason, Import.Fails(xml, Ncmec()).Reason, StringComparison.Ordinal);

    [Fact]
    public void Fifty_megabytes_of_nesting_fail_fast_in_bounded_memory()
    {
        const long count = 50L * 1024 * 1024 / 3;
        using var stream = new GeneratedStream($"<queryResult xmlns=\"{Ns}\"><images count=\"1\"><image><fingerprints>", _ => "<a>", count);
        var ex = Assert.Throws<BankFormatException>(() => BankFileReader.Read(stream, Ncmec(), new ImportReport()).ToList());
        Assert.Contains("nested deeper than 32", ex.Reason, StringComparison.Ordinal);
        Assert.True(stream.Produced < 1 << 20, $"read {stream.Produced} bytes before failing");
    }

    [Fact]
    public void Fifty_megabytes_of_nesting_inside_an_unknown_element_fail_too()
    {
        using var stream = new GeneratedStream($"<queryResult xmlns=\"{Ns}\"><unknown>", _ => "<a>", 50L * 1024 * 1024 / 3);
        var ex = Assert.Throws<BankFormatException>(() => BankFileReader.Read(stream, Ncmec(), new ImportReport()).ToList());
        Assert.Contains("nested deeper", ex.Reason, StringComparison.Ordinal);
        Assert.True(stream.Produced < 1 << 20);
    }

    [Fact]
    public void A_huge_text_value_is_read_in_chunks_and_rejected()
    {
        // 50 MB of text in one <md5>: a bad entry (skipped), and never materialised as one 100 MB string.
        var header = $"<queryResult xmlns=\"{Ns}\"><images count=\"2\"><image><member id=\"1\"/><id>big</id><fingerprints><md5>";
        var trailer = $"</md5></fingerprints></image><image><member id=\"1\"/><id>ok</id><fingerprints><md5>{Hashes.Md5}</md5></fingerprints></image></images></queryResult>";
        using var stream = new GeneratedStream(header, _ => new string('a', 1024), 50 * 1024, trailer);
        var report = new ImportReport();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var records = BankFileReader.Read(stream, Ncmec() with { MaxXmlCharacters = 64L << 20 }, report).ToList();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(["1-ok", "1-ok-md5"], records.Select(r => r.ExternalId)); // the entry's replacement tombstone, then its fingerprint
        Assert.Contains("longer than 4096 characters", Assert.Single(report.Errors).Reason, StringComparison.Ordinal);

        // The generator allocates ~150 MB itself (a 1 KiB string and its bytes per line); a reader that held the
        // text would add 100 MB more.
        Assert.True(allocated < 220L << 20, $"allocated {allocated >> 20} MB");
    }

    [Fact]
    public void The_document_size_is_bounded()
    {
        using var stream = new GeneratedStream($"<queryResult xmlns=\"{Ns}\">", _ => "<!-- padding padding padding -->", 1_000_000, "</queryResult>");
        var ex = Assert.Throws<BankFormatException>(() => BankFileReader.Read(stream, Ncmec() with { MaxXmlCharacters = 1 << 20 }, new ImportReport()).ToList());
        Assert.Contains("larger than 1048576 characters", ex.Reason, StringComparison.Ordinal);
        Assert.True(stream.Produced < 4 << 20);
    }
}
