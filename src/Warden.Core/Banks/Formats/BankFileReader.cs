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
        using var input = new ListInput(counter, null);
        foreach (var record in options.Format.Read(input, session))
        {
            yield return record;
        }
    }

    private static IEnumerable<BankEntryRecord> ReadText(TextReader reader, ImportOptions options, ImportReport report)
    {
        var session = new ImportSession(options, report, null, null);
        using var input = new ListInput(null, reader);
        foreach (var record in options.Format.Read(input, session))
        {
            yield return record;
        }
    }
}
