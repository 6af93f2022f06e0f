using System.Text;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class DetectTests
{
    [Theory]
    [InlineData("a.csv", "", BankFileFormat.Csv)]
    [InlineData("a.JSONL", "", BankFileFormat.JsonLines)]
    [InlineData("a.ndjson", "", BankFileFormat.JsonLines)]
    [InlineData("page.xml", "", BankFileFormat.NcmecXml)]
    [InlineData("-", "\uFEFF<?xml version=\"1.0\"?><queryResult/>", BankFileFormat.NcmecXml)]
    [InlineData("list.txt", "  {\"signal\":\"x\"}\n", BankFileFormat.JsonLines)]
    [InlineData("list.txt", "# comment\nsignal_type,signal\n", BankFileFormat.Csv)]
    [InlineData("list.md5", "# md5 list\r\nd41d8cd98f00b204e9800998ecf8427e\r\n", BankFileFormat.Plain)]
    [InlineData("", "D41D8CD98F00B204E9800998ECF8427E", BankFileFormat.Plain)]
    public void Detects_by_extension_then_content(string path, string head, BankFileFormat expected) =>
        Assert.Equal(expected, BankFileReader.Detect(path, Encoding.UTF8.GetBytes(head)));

    [Theory]
    [InlineData("x.bin", "")]
    [InlineData("x.bin", "hello world\n")]
    [InlineData("x", "# only a comment")]
    public void Says_null_when_it_cannot_tell(string path, string head) =>
        Assert.Null(BankFileReader.Detect(path, Encoding.UTF8.GetBytes(head)));

    [Theory]
    [InlineData("csv", BankFileFormat.Csv)]
    [InlineData("JSONL", BankFileFormat.JsonLines)]
    [InlineData("plain", BankFileFormat.Plain)]
    [InlineData("ncmec", BankFileFormat.NcmecXml)]
    public void Cli_names_round_trip(string name, BankFileFormat format)
    {
        Assert.True(BankFileFormats.TryParse(name, out var parsed));
        Assert.Equal(format, parsed);
        Assert.Equal(name.ToLowerInvariant(), BankFileFormats.Name(format));
        Assert.Contains(BankFileFormats.Name(format), BankFileFormats.Names);
        Assert.False(BankFileFormats.TryParse("yaml", out _));
    }
}
