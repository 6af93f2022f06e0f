using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class PlainListTests
{
    [Fact]
    public void Reads_one_hash_per_line_skipping_blanks_and_comments_and_normalising()
    {
        var text = $"# hotline list 2025-01\r\n\r\n{Hashes.Md5.ToUpperInvariant()}\r\n   \n  {Hashes.Md5Of(7)}  \n# end";
        var (records, report) = Import.Text(text, new ImportOptions(BankFileFormat.Plain, "md5"));
        Assert.Equal([Hashes.Md5, Hashes.Md5Of(7)], records.Select(r => r.Signal));
        Assert.All(records, r => Assert.Equal("md5", r.SignalType));
        Assert.All(records, r => Assert.Empty(r.Labels));
        Assert.Equal((2L, 2L, 0L), (report.Read, report.Imported, report.Skipped));
        Assert.Equal(6, report.Lines);
        Assert.True(report.Completed);
    }

    [Fact]
    public void The_signal_type_is_required_and_checked_when_Read_is_called()
    {
        using var s = new MemoryStream();
        var report = new ImportReport();
        Assert.Throws<ArgumentException>(() => BankFileReader.Read(s, new ImportOptions(BankFileFormat.Plain), report));
        var ex = Assert.Throws<ArgumentException>(() => BankFileReader.Read(s, new ImportOptions(BankFileFormat.Plain, "photodna"), report));
        Assert.Contains("known types", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BankFileReader.Read(s, new ImportOptions(BankFileFormat.Csv, "auto"), report));
    }

    [Fact]
    public void Auto_tells_md5_from_sha1_by_length_and_refuses_to_guess_64_digits()
    {
        var text = $"{Hashes.Md5}\n{Hashes.Sha1}\n{Hashes.Sha256}\nabc\n";
        var (records, report) = Import.Text(text, new ImportOptions(BankFileFormat.Plain, "auto", SkipBadLines: true, SourceName: "list.txt"));
        Assert.Equal(["md5", "sha1"], records.Select(r => r.SignalType));
        Assert.Equal(2, report.Skipped);
        Assert.StartsWith("list.txt:3: 64 hex digits could be a sha256 or a pdq", report.Errors[0].ToString(), StringComparison.Ordinal);
        Assert.Equal(4, report.Errors[1].Line);
        Import.AssertBalanced(report);
    }

    [Fact]
    public void Abort_mode_throws_file_line_reason_at_the_first_bad_line()
    {
        var text = $"{Hashes.Md5}\n{Hashes.Md5}x\n{Hashes.Md5}\n";
        var ex = Import.Fails(text, new ImportOptions(BankFileFormat.Plain, "md5", SourceName: "feed.md5"));
        Assert.Equal("feed.md5", ex.SourceName);
        Assert.Equal(2, ex.Line);
        Assert.StartsWith("feed.md5:2: An md5 is 32 hex digits", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Skip_mode_reports_every_bad_line_with_a_capped_list_and_a_full_count()
    {
        var lines = Enumerable.Range(0, 30).Select(i => i % 3 == 0 ? Hashes.Md5Of(i) : "zz" + i).ToList();
        lines.Add($"{Hashes.Md5} extra.jpg");
        var seen = new List<BankFormatError>();
        var options = new ImportOptions(BankFileFormat.Plain, "md5", SkipBadLines: true) { MaxErrors = 5, OnError = seen.Add };
        var (records, report) = Import.Text(string.Join('\n', lines), options);
        Assert.Equal(10, records.Count);
        Assert.Equal(21, report.ErrorCount);
        Assert.Equal(5, report.Errors.Count);
        Assert.Equal(21, seen.Count);
        Assert.Contains("one hash per line", seen[^1].Reason, StringComparison.Ordinal);
        Assert.Equal("-", seen[0].Source);
        Import.AssertBalanced(report);
    }

    [Fact]
    public void A_line_longer_than_the_limit_is_a_bad_line_and_is_not_held_whole()
    {
        // 8 MB with no newline, then a good line: the reader must skip it within its line bound.
        using var stream = new GeneratedStream(string.Empty, i => i < 8 * 1024 ? new string('a', 1024) : "\n" + Hashes.Md5 + "\n", 8 * 1024 + 1);
        var report = new ImportReport();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var records = BankFileReader.Read(stream, new ImportOptions(BankFileFormat.Plain, "md5", SkipBadLines: true) { MaxLineLength = 4096 }, report).ToList();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal([Hashes.Md5], records.Select(r => r.Signal));
        Assert.Contains("longer than 4096", Assert.Single(report.Errors).Reason, StringComparison.Ordinal);
        Assert.Equal(1, report.Errors[0].Line);

        // The generator itself allocates ~8 MB of 1 KiB strings and their bytes; a reader holding the line would add 16 MB+.
        Assert.True(allocated < 40L << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Default_labels_apply_to_every_record_and_are_validated_up_front()
    {
        var labels = new Dictionary<string, string> { ["classification"] = "A1", ["category"] = "csam" };
        var (records, _) = Import.Text(Hashes.Pdq, new ImportOptions(BankFileFormat.Plain, "pdq") { DefaultLabels = labels });
        Assert.Equal("A1", Assert.Single(records).Labels["classification"]);
        using var s = new MemoryStream();
        var bad = new Dictionary<string, string> { ["classification"] = "C3" };
        Assert.Throws<ArgumentException>(() => BankFileReader.Read(s, new ImportOptions(BankFileFormat.Plain, "pdq") { DefaultLabels = bad }, new ImportReport()));
    }

    [Fact]
    public void Progress_reports_lines_and_bytes_and_a_final_call()
    {
        var text = string.Join('\n', Enumerable.Range(0, 2500).Select(i => Hashes.Md5Of(i))) + "\n";
        var calls = new List<ImportProgress>();
        var (records, report) = Import.Text(text, new ImportOptions(BankFileFormat.Plain, "md5", Progress: calls.Add) { ProgressInterval = 1000 });
        Assert.Equal(2500, records.Count);
        Assert.Equal([1000L, 2000L, 2500L], calls.Select(c => c.LinesRead));
        Assert.True(calls[^1].Done);
        Assert.Equal(text.Length, calls[^1].BytesRead);
        Assert.Equal(text.Length, calls[^1].TotalBytes);
        Assert.Equal(text.Length, report.BytesRead);
    }

    [Fact]
    public void Reads_from_a_TextReader_too()
    {
        var report = new ImportReport();
        using var reader = new StringReader(Hashes.Sha256 + "\n");
        var records = BankFileReader.Read(reader, new ImportOptions(BankFileFormat.Plain, "sha256"), report).ToList();
        Assert.Equal(Hashes.Sha256, Assert.Single(records).Signal);
        Assert.Equal(0, report.BytesRead);
    }
}
