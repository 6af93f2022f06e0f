using System.Text;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// Reads hash-list files as a lazy stream of validated, normalised <see cref="BankEntryRecord"/>s: nothing is read
/// until the caller enumerates, and memory stays bounded whatever the file's size, so a 10M-line list can be piped
/// straight into storage. Enumerate once; the <see cref="ImportReport"/> fills in as it goes.
/// </summary>
/// <example>
/// <code>
/// var report = new ImportReport();
/// using var file = File.OpenRead(path);
/// var options = new ImportOptions(BankFileFormat.Csv, SkipBadLines: true, SourceName: path) { OnError = e => Console.Error.WriteLine(e) };
/// store.Import(bank.Id, BankFileReader.Read(file, options, report), path);
/// Console.WriteLine(report); // read 1000, imported 998, skipped 2, unsupported 0, 2 errors
/// </code>
/// </example>
public static class BankFileReader
{
    /// <summary>
    /// Reads <paramref name="stream"/> (UTF-8; a BOM is honoured; NCMEC XML follows its declaration). The stream is
    /// not disposed. Options are checked at once (<see cref="ArgumentException"/>); file problems surface while
    /// enumerating, as <see cref="BankFormatException"/> (abort mode, or a fatal problem) or in
    /// <paramref name="report"/> (skip mode).
    /// </summary>
    /// <param name="stream">The file.</param>
    /// <param name="options">Format, signal type, skip or abort, source name, progress.</param>
    /// <param name="report">Receives counts, errors and (NCMEC) the page's paging information.</param>
    public static IEnumerable<BankEntryRecord> Read(Stream stream, ImportOptions options, ImportReport report)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        ImportSession.CheckOptions(options);
        long? total = null;
        if (stream.CanSeek)
        {
            total = Math.Max(0, stream.Length - stream.Position);
        }

        return ReadStream(stream, options, report, total);
    }

    /// <summary>
    /// Reads already-decoded text (e.g. standard input as a TextReader, or a string in tests). Same rules as
    /// <see cref="Read(Stream, ImportOptions, ImportReport)"/>; progress has no byte counts.
    /// </summary>
    public static IEnumerable<BankEntryRecord> Read(TextReader reader, ImportOptions options, ImportReport report)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(report);
        ImportSession.CheckOptions(options);
        return ReadText(reader, options, report);
    }

    /// <summary>Guesses a file's format from its name and first bytes; see <see cref="BankFileFormats.Detect"/>.</summary>
    public static BankFileFormat? Detect(string? path, ReadOnlySpan<byte> head) => BankFileFormats.Detect(path, head);

    private static IEnumerable<BankEntryRecord> ReadStream(Stream stream, ImportOptions options, ImportReport report, long? total)
    {
        var counter = new CountingStream(stream);
        var session = new ImportSession(options, report, counter, total);
        IEnumerable<BankEntryRecord> records;
        StreamReader? text = null;
        switch (options.Format)
        {
            case BankFileFormat.Csv:
                records = CsvListReader.Read(counter, null, session);
                break;
            case BankFileFormat.NcmecXml:
                records = NcmecXmlReader.Read(counter, null, session);
                break;
            default:
                text = new StreamReader(counter, new UTF8Encoding(false, throwOnInvalidBytes: false), detectEncodingFromByteOrderMarks: true, bufferSize: 64 * 1024, leaveOpen: true);
                records = options.Format == BankFileFormat.Plain ? PlainListReader.Read(text, session) : JsonLinesReader.Read(text, session);
                break;
        }

        try
        {
            foreach (var record in records)
            {
                yield return record;
            }
        }
        finally
        {
            text?.Dispose();
        }
    }

    private static IEnumerable<BankEntryRecord> ReadText(TextReader reader, ImportOptions options, ImportReport report)
    {
        var session = new ImportSession(options, report, null, null);
        var records = options.Format switch
        {
            BankFileFormat.Csv => CsvListReader.Read(null, reader, session),
            BankFileFormat.NcmecXml => NcmecXmlReader.Read(null, reader, session),
            BankFileFormat.Plain => PlainListReader.Read(reader, session),
            _ => JsonLinesReader.Read(reader, session),
        };
        foreach (var record in records)
        {
            yield return record;
        }
    }
}
