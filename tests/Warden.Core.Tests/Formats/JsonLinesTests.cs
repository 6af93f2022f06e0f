using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class JsonLinesTests
{
    private static ImportOptions Jsonl(bool skip = false, string? type = null) => new(BankFileFormat.JsonLines, type, skip, "list.jsonl");

    [Fact]
    public void Reads_objects_with_labels_note_external_id_and_tombstones()
    {
        var text = $$"""
            {"signal_type":"pdq","signal":"{{Hashes.Pdq.ToUpperInvariant()}}","labels":{"classification":"A1","category":"csam","score":1.50,"reviewed":true,"gone":null},"note":"é ✓","external_id":"x-1"}

            {"signal":"{{Hashes.Md5}}","deleted":true}
            {"external_id":"9002-img-1","deleted":true}
            """;
        var (records, report) = Import.Text(text, Jsonl(type: "md5"));
        Assert.Equal(3, records.Count);
        Assert.Equal(("pdq", Hashes.Pdq), (records[0].SignalType, records[0].Signal));
        Assert.Equal(new Dictionary<string, string> { ["classification"] = "A1", ["category"] = "csam", ["score"] = "1.50", ["reviewed"] = "true" }, records[0].Labels);
        Assert.Equal("é ✓", records[0].Note);
        Assert.Equal("x-1", records[0].ExternalId);
        Assert.True(records[1].Deleted);
        Assert.Equal("md5", records[1].SignalType);
        Assert.True(records[2].Deleted);
        Assert.Equal(("", "", "9002-img-1"), (records[2].SignalType, records[2].Signal, records[2].ExternalId));
        Assert.Equal((3L, 3L, 2L), (report.Read, report.Imported, report.Deleted));
    }

    [Theory]
    [InlineData("""{"signal_type":"md5","signal":"X"}""", "An md5 is 32 hex digits")]
    [InlineData("""{"signal_type":"md5"}""", "'signal' is missing")]
    [InlineData("""{"signal_type":"md6","signal":"d41d8cd98f00b204e9800998ecf8427e"}""", "unknown signal type 'md6'")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","labels":{"a":{"b":"c"}}}""", "label 'a' must be a string, number, boolean or null; got an object")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","labels":{"a":[1]}}""", "got an array")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","labels":["a"]}""", "'labels' must be an object")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","label":{"a":"b"}}""", "unknown property 'label'")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","labels":{"classification":"A3"}}""", "got 'A3'")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","signal":"x"}""", "appears twice")]
    [InlineData("""{"signal_type":"md5","signal":42}""", "'signal' must be a string; got a number")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e"} {}""", "invalid JSON")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8""", "invalid JSON at column")]
    [InlineData("""["md5","d41d8cd98f00b204e9800998ecf8427e"]""", "expected a JSON object")]
    [InlineData("""{"deleted":true}""", "needs a signal or an external_id")]
    [InlineData("""{"signal_type":"md5","signal":"d41d8cd98f00b204e9800998ecf8427e","deleted":"yes"}""", "'deleted' must be true or false")]
    public void Bad_lines_say_why(string line, string reason)
    {
        var text = $"{{\"signal_type\":\"sha1\",\"signal\":\"{Hashes.Sha1}\"}}\n{line}\n";
        var (records, report) = Import.Text(text, Jsonl(skip: true));
        Assert.Single(records);
        var error = Assert.Single(report.Errors);
        Assert.Equal(2, error.Line);
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Import.AssertBalanced(report);

        var ex = Import.Fails(text, Jsonl());
        Assert.StartsWith("list.jsonl:2: ", ex.Message, StringComparison.Ordinal);
    }
}
