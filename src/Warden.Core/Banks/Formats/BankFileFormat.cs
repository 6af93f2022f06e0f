using System.Text;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// A hash-list file format: the plug-in unit for lists, as <see cref="Signals.ISignalType"/> is for signals. A format
/// names itself (and its aliases, file extensions and MIME type), recognises its files, reads them and, optionally,
/// writes them. The built-ins live one folder each under <c>Banks/Formats/</c>; a host adds its own to a
/// <see cref="ListFormatRegistry"/>. Nothing outside a format's folder knows it by name.
/// </summary>
public abstract class BankFileFormat
{
    /// <summary>RFC 4180 CSV with a header row: <c>signal_type</c>, <c>signal</c>, optional <c>note</c> and <c>external_id</c>, every other column a label.</summary>
    public static BankFileFormat Csv => CsvListFormat.Instance;

    /// <summary>One JSON object per line: <c>signal_type</c>, <c>signal</c>, <c>labels</c>, <c>note</c>, <c>external_id</c>, <c>deleted</c>.</summary>
    public static BankFileFormat JsonLines => JsonLinesFormat.Instance;

    /// <summary>One hash per line, the signal type given by the caller (or detected by length when asked); blank lines and <c>#</c> comments skipped.</summary>
    public static BankFileFormat Plain => PlainListFormat.Instance;

    /// <summary>An NCMEC Hash Sharing API v2 entries page (<c>queryResult</c>); read only.</summary>
    public static BankFileFormat NcmecXml => NcmecXmlFormat.Instance;

    /// <summary>The name the CLI (<c>--list-format</c>) and the API (<c>format=</c>) use: lowercase letters, digits, '-' or '_'.</summary>
    public abstract string Name { get; }

    /// <summary>Other names accepted for it (case-insensitive).</summary>
    public virtual IReadOnlyList<string> Aliases => [];

    /// <summary>File extensions (with the dot, any case) that are this format and no other: detection trusts them before content.</summary>
    public virtual IReadOnlyList<string> Extensions => [];

    /// <summary>The extension an export is named with.</summary>
    public virtual string ExportExtension => Extensions.Count > 0 ? Extensions[0] : ".txt";

    /// <summary>The MIME type an export is served as.</summary>
    public abstract string MimeType { get; }

    /// <summary>
    /// True when the file does not say what its signals are (one hash per line): the caller must give the signal
    /// type, or <see cref="ImportOptions.AutoSignalType"/> to tell MD5 and SHA-1 apart by length.
    /// </summary>
    public virtual bool NeedsSignalType => false;

    /// <summary>True when <see cref="Write"/> is implemented.</summary>
    public virtual bool CanWrite => false;

    /// <summary>
    /// Whether a file whose first meaningful line is <paramref name="firstLine"/> is in this format. The line has
    /// the BOM, leading whitespace and <c>#</c> comment lines before it removed, and no line end. The registry asks
    /// formats in registration order; the first to claim the line wins.
    /// </summary>
    public abstract bool Sniff(ReadOnlySpan<byte> firstLine);

    /// <summary>
    /// Reads the records lazily (nothing is read until enumerated), reporting through <paramref name="session"/>:
    /// <see cref="ImportSession.Make"/> validates each record, <see cref="ImportSession.Error"/> reports a bad line,
    /// <see cref="ImportSession.Tick"/> and <see cref="ImportSession.Finish"/> drive progress.
    /// </summary>
    public abstract IEnumerable<BankEntryRecord> Read(ListInput input, ImportSession session);

    /// <summary>Writes the records <paramref name="filter"/> lets through; only when <see cref="CanWrite"/>.</summary>
    public virtual void Write(TextWriter writer, IEnumerable<BankEntryRecord> entries, ExportOptions options, ExportFilter filter) =>
        throw new NotSupportedException($"The {Name} list format is read only; export as {string.Join(", ", ListFormatRegistry.Current.Writable.Select(f => f.Name))}.");

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>Names and detection of list formats: shortcuts to <see cref="ListFormatRegistry.Current"/>.</summary>
public static class BankFileFormats
{
    /// <summary>The names a CLI accepts, in the order it lists them.</summary>
    public static IReadOnlyList<string> Names => ListFormatRegistry.Current.Names;

    /// <summary>The CLI name of a format.</summary>
    public static string Name(BankFileFormat format)
    {
        ArgumentNullException.ThrowIfNull(format);
        return format.Name;
    }

    /// <summary>Parses a name or alias (case-insensitive, trimmed).</summary>
    public static bool TryParse(string? name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out BankFileFormat? format) =>
        ListFormatRegistry.Current.TryGet(name, out format);

    /// <summary>
    /// Guesses a file's format: first from an extension a format claims (<see cref="BankFileFormat.Extensions"/>),
    /// otherwise from the first meaningful line (<see cref="BankFileFormat.Sniff"/>). Null when neither says.
    /// </summary>
    /// <param name="path">The file name (may be "-" or empty for standard input).</param>
    /// <param name="head">The file's first bytes (a few KiB is plenty; may be empty).</param>
    public static BankFileFormat? Detect(string? path, ReadOnlySpan<byte> head) => ListFormatRegistry.Current.Detect(path, head);

    /// <summary>The first line of <paramref name="head"/> that is not blank or a <c>#</c> comment, BOM and leading whitespace removed; empty when none.</summary>
    internal static ReadOnlySpan<byte> FirstLine(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith(Encoding.UTF8.Preamble))
        {
            head = head[Encoding.UTF8.Preamble.Length..];
        }

        while (true)
        {
            head = head.TrimStart(" \t\r\n"u8);
            if (head.IsEmpty)
            {
                return default;
            }

            var end = head.IndexOfAny((byte)'\n', (byte)'\r');
            var line = end < 0 ? head : head[..end];
            if (line[0] != (byte)'#')
            {
                return line;
            }

            if (end < 0)
            {
                return default;
            }

            head = head[end..];
        }
    }
}
