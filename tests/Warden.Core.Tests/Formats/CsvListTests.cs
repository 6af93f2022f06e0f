using System.Text;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class CsvListTests
{
    private static ImportOptions Csv(bool skip = false, string? type = null) => new(BankFileFormat.Csv, type, skip, "list.csv");

    [Fact]
    public void Reads_signals_labels_note_and_external_id()
    {
        var text = $"""
            signal_type,signal,classification,category,Note,external_id
            md5,{Hashes.Md5.ToUpperInvariant()},A1,csam,,hotline-1
            pdq, {Hashes.Pdq} ,,,"seen twice, once cropped",
            SHA1,{Hashes.Sha1},B2,"terror, propaganda",,
            """;
        var (records, report) = Import.Text(text, Csv());
        Assert.Equal(3, records.Count);

        Assert.Equal(("md5", Hashes.Md5), (records[0].SignalType, records[0].Signal));
        Assert.Equal(new Dictionary<string, string> { ["classification"] = "A1", ["category"] = "csam" }, records[0].Labels);
        Assert.Null(records[0].Note);
        Assert.Equal("hotline-1", records[0].ExternalId);

        Assert.Equal(Hashes.Pdq, records[1].Signal);
        Assert.Empty(records[1].Labels);
        Assert.Equal("seen twice, once cropped", records[1].Note);
        Assert.Null(records[1].ExternalId);

        Assert.Equal("sha1", records[2].SignalType);
        Assert.Equal("terror, propaganda", records[2].Labels["category"]);
        Assert.Equal((3L, 3L, 0L), (report.Read, report.Imported, report.Skipped));
    }

    [Fact]
    public void Quoted_line_breaks_BOM_comments_and_blank_lines()
    {
        var text = "\uFEFF# exported 2025-01-10\nsignal_type,signal,note\n\nmd5," + Hashes.Md5 + ",\"two\nlines\"\n# a comment\nmd5,bad,\n";
        var (records, report) = Import.Text(text, Csv(skip: true));
        Assert.Equal("two\nlines", Assert.Single(records).Note);
        var error = Assert.Single(report.Errors);
        Assert.Equal(7, error.Line);
        Assert.StartsWith("list.csv:7: An md5 is 32 hex digits", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Header_problems_are_fatal_even_when_skipping()
    {
        Assert.Contains("no 'signal' column", Import.Fails("signal_type,hash\nmd5," + Hashes.Md5, Csv(skip: true)).Reason, StringComparison.Ordinal);
        Assert.Contains("no 'signal_type' column", Import.Fails("signal\n" + Hashes.Md5, Csv(skip: true)).Reason, StringComparison.Ordinal);
        Assert.Contains("twice", Import.Fails("signal_type,signal,Signal\n", Csv(skip: true)).Reason, StringComparison.Ordinal);
        Assert.Contains("has no name", Import.Fails("signal_type,signal,,x\n", Csv(skip: true)).Reason, StringComparison.Ordinal);
        Assert.Contains("no header row", Import.Fails(string.Empty, Csv(skip: true)).Reason, StringComparison.Ordinal);
        var ex = Import.Fails("signal_type,hash\n", Csv(skip: true));
        Assert.Equal(1, ex.Line);
    }

    [Fact]
    public void Signal_type_column_may_be_left_out_or_empty_when_the_caller_gives_one()
    {
        var (records, _) = Import.Text($"signal,classification\n{Hashes.Md5},A2\n", Csv(type: "md5"));
        Assert.Equal("md5", Assert.Single(records).SignalType);
        (records, _) = Import.Text($"signal_type,signal\n,{Hashes.Sha256}\npdq,{Hashes.Pdq}\n", Csv(type: "sha256"));
        Assert.Equal(["sha256", "pdq"], records.Select(r => r.SignalType));
    }

    [Fact]
    public void Bad_rows_are_reported_with_their_lines_and_the_rest_imported()
    {
        var text = $"""
            signal_type,signal,classification,generativeAi
            md5,{Hashes.Md5},A1,
            photodna,AAAA,,
            md5,{Hashes.Md5},Z9,
            md5,{Hashes.Md5},,maybe
            md5,{Hashes.Md5},A1,false,extra
            md5,ab"c,,
            ,{Hashes.Md5},,
            md5,,,
            sha1,{Hashes.Sha1},B1,true
            """;
        var (records, report) = Import.Text(text, Csv(skip: true));
        Assert.Equal([Hashes.Md5, Hashes.Sha1], records.Select(r => r.Signal));
        Assert.Equal("true", records[1].Labels["generativeAi"]);
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9], report.Errors.Select(e => e.Line));
        var reasons = report.Errors.Select(e => e.Reason).ToList();
        Assert.Contains("unknown signal type 'photodna'", reasons[0], StringComparison.Ordinal);
        Assert.Contains("must be one of A1, A2, B1, B2; got 'Z9'", reasons[1], StringComparison.Ordinal);
        Assert.Contains("generativeAi", reasons[2], StringComparison.Ordinal);
        Assert.Contains("different number of fields", reasons[3], StringComparison.Ordinal);
        Assert.Contains("quote", reasons[4], StringComparison.Ordinal);
        Assert.Contains("no default signal type", reasons[5], StringComparison.Ordinal);
        Assert.Contains("signal is empty", reasons[6], StringComparison.Ordinal);
        Assert.Equal((9L, 2L, 7L), (report.Read, report.Imported, report.Skipped));
        Import.AssertBalanced(report);
    }

    [Fact]
    public void Abort_mode_stops_at_the_first_bad_row_after_yielding_the_good_ones()
    {
        var text = $"signal_type,signal\nmd5,{Hashes.Md5}\nmd5,nothex\nmd5,{Hashes.Md5}\n";
        var report = new ImportReport();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var seen = new List<string>();
        var ex = Assert.Throws<BankFormatException>(() =>
        {
            foreach (var r in BankFileReader.Read(stream, Csv(), report))
            {
                seen.Add(r.Signal);
            }
        });
        Assert.Equal("list.csv:3: An md5 is 32 hex digits; got 6 characters.", ex.Message);
        Assert.Single(seen);
        Assert.False(report.Completed);
    }

    [Theory]
    [InlineData("md5,ab\"c", 3, "quote")]
    [InlineData("md5,x,y", 3, "different number of fields")]
    public void Malformed_rows_abort_too(string row, long line, string reason)
    {
        var ex = Import.Fails($"signal_type,signal\nmd5,{Hashes.Md5}\n{row}\nmd5,{Hashes.Md5}\n", Csv());
        Assert.Equal(line, ex.Line);
        Assert.Contains(reason, ex.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unclosed_quote_cannot_swallow_a_large_file()
    {
        // An opening quote never closed: the record would run to the end; the bound turns it into a fatal error.
        using var stream = new GeneratedStream("signal_type,signal,note\nmd5," + Hashes.Md5 + ",\"never closed\n", i => Hashes.Md5Of(i) + "\n", 2_000_000);
        var report = new ImportReport();
        var ex = Assert.Throws<BankFormatException>(() => BankFileReader.Read(stream, Csv(skip: true), report).ToList());
        Assert.True(stream.Produced < 8L << 20, $"read {stream.Produced} bytes");
        Assert.NotEmpty(ex.Reason);
    }
}
