using System.Text;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class WriterTests
{
    private static readonly BankEntryRecord[] Sample =
    [
        new("md5", Hashes.Md5, new Dictionary<string, string> { ["classification"] = "A1", ["category"] = "csam" }, "first, \"quoted\"", "ext-1"),
        new("pdq", Hashes.Pdq, new Dictionary<string, string> { ["source_list"] = "hotline\nlist", ["Zeta"] = "é" }),
        new("sha1", Hashes.Sha1, new Dictionary<string, string>(), ExternalId: "ext-3"),
    ];

    private static string Write(BankFileFormat format, IEnumerable<BankEntryRecord> records, ExportOptions? options = null)
    {
        using var stream = new MemoryStream();
        BankFileWriter.Write(stream, format, records, options);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void AssertSameRecords(BankEntryRecord[] expected, List<BankEntryRecord> actual)
    {
        Assert.Equal(expected.Length, actual.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal((expected[i].SignalType, expected[i].Signal, expected[i].Note, expected[i].ExternalId, expected[i].Deleted), (actual[i].SignalType, actual[i].Signal, actual[i].Note, actual[i].ExternalId, actual[i].Deleted));
            Assert.Equal(expected[i].Labels.OrderBy(p => p.Key, StringComparer.Ordinal), actual[i].Labels.OrderBy(p => p.Key, StringComparer.Ordinal));
        }
    }

    [Fact]
    public void Csv_has_the_sorted_union_of_labels_and_reads_back()
    {
        var csv = Write(BankFileFormat.Csv, Sample);
        Assert.StartsWith("signal_type,signal,Zeta,category,classification,source_list,note,external_id\n", csv, StringComparison.Ordinal);
        Assert.Contains($"md5,{Hashes.Md5},,csam,A1,,\"first, \"\"quoted\"\"\",ext-1\n", csv, StringComparison.Ordinal);
        var (back, report) = Import.Text(csv, new ImportOptions(BankFileFormat.Csv));
        AssertSameRecords(Sample, back);
        Assert.Equal(0, report.ErrorCount);
    }

    [Fact]
    public void Csv_with_given_columns_makes_one_pass()
    {
        var csv = Write(BankFileFormat.Csv, new OneShot<BankEntryRecord>(Sample), new ExportOptions { LabelColumns = ["classification", "category", "source_list", "Zeta"] });
        Assert.StartsWith("signal_type,signal,classification,category,source_list,Zeta,note,external_id\n", csv, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => Write(BankFileFormat.Csv, Sample, new ExportOptions { LabelColumns = ["classification"] }));
        var reserved = new BankEntryRecord("md5", Hashes.Md5, new Dictionary<string, string> { ["note"] = "x" });
        Assert.Throws<InvalidOperationException>(() => Write(BankFileFormat.Csv, [reserved]));
    }

    [Fact]
    public void Json_lines_round_trip_including_tombstones_when_asked()
    {
        BankEntryRecord[] records = [.. Sample, new("md5", Hashes.Md5, new Dictionary<string, string>(), ExternalId: "gone", Deleted: true)];
        var jsonl = Write(BankFileFormat.JsonLines, records, new ExportOptions { IncludeDeleted = true });
        Assert.Equal(4, jsonl.Count(c => c == '\n'));
        Assert.Contains("\"Zeta\":\"é\"", jsonl, StringComparison.Ordinal);
        var (back, _) = Import.Text(jsonl, new ImportOptions(BankFileFormat.JsonLines));
        AssertSameRecords(records, back);

        using var stream = new MemoryStream();
        var result = BankFileWriter.Write(stream, BankFileFormat.JsonLines, records);
        Assert.Equal(new ExportResult(3, 1, 0), result);
    }

    [Fact]
    public void Plain_lists_hold_one_type()
    {
        Assert.Throws<InvalidOperationException>(() => Write(BankFileFormat.Plain, Sample));
        using var stream = new MemoryStream();
        var result = BankFileWriter.Write(stream, BankFileFormat.Plain, Sample, new ExportOptions { SignalType = "md5" });
        Assert.Equal(Hashes.Md5 + "\n", Encoding.UTF8.GetString(stream.ToArray()));
        Assert.Equal(new ExportResult(1, 0, 2), result);
        var (back, _) = Import.Text(Encoding.UTF8.GetString(stream.ToArray()), new ImportOptions(BankFileFormat.Plain, "md5"));
        Assert.Equal(Hashes.Md5, Assert.Single(back).Signal);
    }

    [Fact]
    public void Ncmec_is_read_only() =>
        Assert.Throws<NotSupportedException>(() => Write(BankFileFormat.NcmecXml, Sample));
}
