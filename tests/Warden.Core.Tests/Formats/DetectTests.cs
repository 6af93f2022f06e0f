using System.Text;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class DetectTests
{
    [Theory]
    [InlineData("a.csv", "", "csv")]
    [InlineData("a.JSONL", "", "jsonl")]
    [InlineData("a.ndjson", "", "jsonl")]
    [InlineData("page.xml", "", "ncmec")]
    [InlineData("-", "\uFEFF<?xml version=\"1.0\"?><queryResult/>", "ncmec")]
    [InlineData("list.txt", "  {\"signal\":\"x\"}\n", "jsonl")]
    [InlineData("list.txt", "# comment\nsignal_type,signal\n", "csv")]
    [InlineData("list.md5", "# md5 list\r\nd41d8cd98f00b204e9800998ecf8427e\r\n", "plain")]
    [InlineData("", "D41D8CD98F00B204E9800998ECF8427E", "plain")]
    public void Detects_by_extension_then_content(string path, string head, string expected) =>
        Assert.Equal(expected, BankFileReader.Detect(path, Encoding.UTF8.GetBytes(head))?.Name);

    [Theory]
    [InlineData("x.bin", "")]
    [InlineData("x.bin", "hello world\n")]
    [InlineData("x", "# only a comment")]
    public void Says_null_when_it_cannot_tell(string path, string head) =>
        Assert.Null(BankFileReader.Detect(path, Encoding.UTF8.GetBytes(head)));

    [Theory]
    [InlineData("csv", "csv")]
    [InlineData("JSONL", "jsonl")]
    [InlineData("plain", "plain")]
    [InlineData("ncmec", "ncmec")]
    public void Cli_names_round_trip(string name, string formatName)
    {
        Assert.True(ListFormatRegistry.Default.TryGet(formatName, out var format));
        Assert.True(BankFileFormats.TryParse(name, out var parsed));
        Assert.Equal(format, parsed);
        Assert.Equal(name.ToLowerInvariant(), BankFileFormats.Name(format));
        Assert.Contains(BankFileFormats.Name(format), BankFileFormats.Names);
        Assert.False(BankFileFormats.TryParse("yaml", out _));
    }
}
