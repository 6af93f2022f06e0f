using System.Diagnostics;
using System.Globalization;
using Warden.Core.Banks.Formats;
using Xunit.Abstractions;

namespace Warden.Core.Tests.Formats;

[CollectionDefinition(nameof(FormatsSerial), DisableParallelization = true)]
public sealed class FormatsSerial;

/// <summary>
/// A million lines through each line format, generated on the fly: the readers must be lazy (the input is read only
/// as far as the records taken) and hold bounded memory whatever the length. Serial, so that heap and time numbers
/// are this test's own.
/// </summary>
[Collection(nameof(FormatsSerial))]
public sealed class StreamingTests(ITestOutputHelper output)
{
    private const int Lines = 1_000_000;

    public static TheoryData<string> LineFormats => ["plain", "csv", "jsonl"];

    private static GeneratedStream Generate(string format, long count) => format switch
    {
        "plain" => new GeneratedStream("# generated\n", i => Hashes.Md5Of(i) + "\n", count),
        "csv" => new GeneratedStream("signal_type,signal,classification,category\n", i => $"md5,{Hashes.Md5Of(i)},A1,csam\n", count),
        _ => new GeneratedStream(string.Empty, i => $"{{\"signal_type\":\"md5\",\"signal\":\"{Hashes.Md5Of(i)}\",\"labels\":{{\"classification\":\"A1\",\"category\":\"csam\"}}}}\n", count),
    };

    private static ImportOptions Options(string format) => new(Format(format), format == "plain" ? "md5" : null);

    private static BankFileFormat Format(string name) => BankFileFormats.TryParse(name, out var f) ? f : throw new ArgumentException(name);

    [Theory]
    [MemberData(nameof(LineFormats))]
    public void Reading_is_lazy(string format)
    {
        using var stream = Generate(format, Lines);
        var records = BankFileReader.Read(stream, Options(format), new ImportReport());
        Assert.Equal(0, stream.Produced); // nothing read before enumeration

        var first = records.Take(1000).ToList();
        Assert.Equal(Hashes.Md5Of(999), first[^1].Signal);
        Assert.True(stream.LinesProduced < 10_000, $"{format}: {stream.LinesProduced} lines generated for 1000 records");
    }

    [Theory]
    [MemberData(nameof(LineFormats))]
    public void A_million_lines_stream_in_bounded_memory(string format)
    {
        using var stream = Generate(format, Lines);
        var report = new ImportReport();
        GC.Collect();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0, count = 0;
        var clock = Stopwatch.StartNew();
        foreach (var record in BankFileReader.Read(stream, Options(format), report))
        {
            if (++count % 250_000 == 0)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
            }
        }

        clock.Stop();
        Assert.Equal(Lines, count);
        Assert.Equal((long)Lines, report.Imported);
        Assert.True(report.Completed);

        // A million materialised records would hold well over 100 MB.
        Assert.True(peak < 16L << 20, $"{format}: live heap grew by {peak >> 10} KiB");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{format}: {Lines} lines in {clock.Elapsed.TotalSeconds:F2} s (incl. 4 forced GCs), live heap growth {peak >> 10} KiB"));
    }

    [Theory]
    [MemberData(nameof(LineFormats))]
    public void Throughput(string format)
    {
        // Pre-render the file so that the generator does not count; one warm-up pass.
        using var source = Generate(format, Lines);
        using var buffer = new MemoryStream();
        source.CopyTo(buffer);
        double best = 0;
        for (var pass = 0; pass < 3; pass++)
        {
            buffer.Position = 0;
            var clock = Stopwatch.StartNew();
            var n = BankFileReader.Read(buffer, Options(format), new ImportReport()).LongCount();
            clock.Stop();
            Assert.Equal(Lines, n);
            best = Math.Max(best, Lines / clock.Elapsed.TotalSeconds);
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{format}: {best / 1e6:F2} M lines/s ({buffer.Length >> 20} MB, one core, best of 3)"));
    }
}
