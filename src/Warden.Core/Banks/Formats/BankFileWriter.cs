using System.Text;

namespace Warden.Core.Banks.Formats;

/// <summary>How to write a list file.</summary>
public sealed record ExportOptions
{
    /// <summary>
    /// CSV: the label columns, in order. When null the writer makes two passes over the records: the first collects
    /// the union of label names (sorted ordinally, so the shape is stable), the second writes. The source must then be
    /// enumerable twice and give the same records both times (a storage query is; a one-shot stream is not). With
    /// columns given, one pass is made and a label outside them is an error.
    /// </summary>
    public IReadOnlyList<string>? LabelColumns { get; init; }

    /// <summary>Only records of this signal type are written (the others are counted as filtered). Plain lists need it when the records mix types.</summary>
    public string? SignalType { get; init; }

    /// <summary>JSON Lines: also write tombstones (<c>"deleted": true</c>). Other formats cannot express them and always leave them out.</summary>
    public bool IncludeDeleted { get; init; }
}

/// <summary>What an export wrote.</summary>
/// <param name="Written">Records written.</param>
/// <param name="SkippedDeleted">Tombstones left out (see <see cref="ExportOptions.IncludeDeleted"/>).</param>
/// <param name="Filtered">Records of another signal type than <see cref="ExportOptions.SignalType"/>.</param>
public sealed record ExportResult(long Written, long SkippedDeleted, long Filtered);

/// <summary>
/// Writes hash lists in the formats <see cref="BankFileReader"/> reads back (each <see cref="BankFileFormat"/> that
/// <see cref="BankFileFormat.CanWrite"/>: CSV, JSON Lines, plain and plug-ins). UTF-8 without BOM, "\n" line ends.
/// </summary>
public static class BankFileWriter
{
    /// <summary>Writes <paramref name="entries"/> to <paramref name="stream"/> (left open, flushed).</summary>
    public static ExportResult Write(Stream stream, BankFileFormat format, IEnumerable<BankEntryRecord> entries, ExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var writer = new StreamWriter(stream, new UTF8Encoding(false), 64 * 1024, leaveOpen: true);
        var result = Write(writer, format, entries, options);
        writer.Flush();
        return result;
    }

    /// <summary>Writes <paramref name="entries"/> to <paramref name="writer"/> (left open, flushed).</summary>
    /// <exception cref="NotSupportedException">The format is read only.</exception>
    public static ExportResult Write(TextWriter writer, BankFileFormat format, IEnumerable<BankEntryRecord> entries, ExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(entries);
        options ??= new ExportOptions();
        var filter = new ExportFilter(options);
        format.Write(writer, entries, options, filter);
        writer.Flush();
        return new ExportResult(filter.Written, filter.SkippedDeleted, filter.Filtered);
    }
}
