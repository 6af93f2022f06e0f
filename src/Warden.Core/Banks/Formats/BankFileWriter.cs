using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using CsvHelper;

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
/// Writes hash lists in the formats <see cref="BankFileReader"/> reads back: CSV (header <c>signal_type,signal,</c>
/// label columns…<c>,note,external_id</c>), JSON Lines and plain (one signal per line). UTF-8 without BOM, "\n" line
/// ends. NCMEC XML is read only.
/// </summary>
public static class BankFileWriter
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = false };

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
    public static ExportResult Write(TextWriter writer, BankFileFormat format, IEnumerable<BankEntryRecord> entries, ExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(entries);
        options ??= new ExportOptions();
        var counts = new Counts(options);
        switch (format)
        {
            case BankFileFormat.Csv:
                WriteCsv(writer, entries, options, counts);
                break;
            case BankFileFormat.JsonLines:
                WriteJsonLines(writer, entries, counts);
                break;
            case BankFileFormat.Plain:
                WritePlain(writer, entries, counts);
                break;
            case BankFileFormat.NcmecXml:
                throw new NotSupportedException("NCMEC Hash Sharing XML is read only; export as csv, jsonl or plain.");
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }

        writer.Flush();
        return new ExportResult(counts.Written, counts.SkippedDeleted, counts.Filtered);
    }

    private sealed class Counts(ExportOptions options)
    {
        public long Written { get; set; }

        public long SkippedDeleted { get; set; }

        public long Filtered { get; set; }

        /// <summary>True when <paramref name="record"/> is to be written; counts it either way.</summary>
        public bool Take(BankEntryRecord record, bool deletedAllowed)
        {
            if (record.Deleted && !(deletedAllowed && options.IncludeDeleted))
            {
                SkippedDeleted++;
                return false;
            }

            if (options.SignalType is { } type && !string.Equals(record.SignalType, type, StringComparison.OrdinalIgnoreCase))
            {
                Filtered++;
                return false;
            }

            Written++;
            return true;
        }
    }

    private static void WriteCsv(TextWriter writer, IEnumerable<BankEntryRecord> entries, ExportOptions options, Counts counts)
    {
        var labelColumns = options.LabelColumns ?? CollectLabels(entries, options);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in labelColumns)
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new ArgumentException("Label column names must not be empty.", nameof(options));
            }

            if (IsReserved(name))
            {
                throw new InvalidOperationException($"A label named '{name}' cannot be written as a CSV column (the name is reserved); export as jsonl.");
            }

            if (!index.TryAdd(name, index.Count))
            {
                throw new ArgumentException($"Label column '{name}' is listed twice.", nameof(options));
            }
        }

        using var csv = CsvWriter.Create(writer, new CsvWriterOptions { NewLine = "\n" }, leaveOpen: true);
        string[] header = [CsvListReader.SignalTypeColumn, CsvListReader.SignalColumn, .. labelColumns, CsvListReader.NoteColumn, CsvListReader.ExternalIdColumn];
        csv.WriteHeader(header);
        var cells = new string?[labelColumns.Count];
        foreach (var record in entries)
        {
            if (!counts.Take(record, deletedAllowed: false))
            {
                continue;
            }

            Array.Clear(cells);
            foreach (var (key, value) in record.Labels)
            {
                if (!index.TryGetValue(key, out var i))
                {
                    throw new InvalidOperationException($"Record {record.SignalType}:{record.Signal} has label '{key}', which is not among the label columns.");
                }

                cells[i] = value;
            }

            csv.WriteField(record.SignalType);
            csv.WriteField(record.Signal);
            foreach (var cell in cells)
            {
                csv.WriteField(cell);
            }

            csv.WriteField(record.Note);
            csv.WriteField(record.ExternalId);
            csv.EndRecord();
        }

        csv.Flush();
    }

    private static bool IsReserved(string name) =>
        name.Equals(CsvListReader.SignalTypeColumn, StringComparison.OrdinalIgnoreCase) || name.Equals(CsvListReader.SignalColumn, StringComparison.OrdinalIgnoreCase)
        || name.Equals(CsvListReader.NoteColumn, StringComparison.OrdinalIgnoreCase) || name.Equals(CsvListReader.ExternalIdColumn, StringComparison.OrdinalIgnoreCase);

    /// <summary>First pass of a CSV export: the union of the label names of the records that will be written.</summary>
    private static List<string> CollectLabels(IEnumerable<BankEntryRecord> entries, ExportOptions options)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var probe = new Counts(options);
        foreach (var record in entries)
        {
            if (probe.Take(record, deletedAllowed: false))
            {
                names.UnionWith(record.Labels.Keys);
            }
        }

        var sorted = names.ToList();
        sorted.Sort(StringComparer.Ordinal);
        return sorted;
    }

    private static void WriteJsonLines(TextWriter writer, IEnumerable<BankEntryRecord> entries, Counts counts)
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var chars = new char[16 * 1024];
        using var json = new Utf8JsonWriter(buffer, JsonOptions);
        foreach (var record in entries)
        {
            if (!counts.Take(record, deletedAllowed: true))
            {
                continue;
            }

            json.WriteStartObject();
            json.WriteString("signal_type", record.SignalType);
            json.WriteString("signal", record.Signal);
            if (record.Labels.Count > 0)
            {
                json.WriteStartObject("labels");

                // Sorted, so that exports of the same data are byte-identical.
                foreach (var (key, value) in record.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            if (record.Note is not null)
            {
                json.WriteString("note", record.Note);
            }

            if (record.ExternalId is not null)
            {
                json.WriteString("external_id", record.ExternalId);
            }

            if (record.Deleted)
            {
                json.WriteBoolean("deleted", true);
            }

            json.WriteEndObject();
            json.Flush();
            json.Reset();
            buffer.GetSpan(1)[0] = (byte)'\n';
            buffer.Advance(1);
            if (buffer.WrittenCount >= 48 * 1024)
            {
                Drain(writer, buffer, ref chars);
            }
        }

        Drain(writer, buffer, ref chars);
    }

    private static void Drain(TextWriter writer, ArrayBufferWriter<byte> buffer, ref char[] chars)
    {
        var needed = Encoding.UTF8.GetMaxCharCount(buffer.WrittenCount);
        if (chars.Length < needed)
        {
            chars = new char[needed];
        }

        var n = Encoding.UTF8.GetChars(buffer.WrittenSpan, chars);
        writer.Write(chars, 0, n);
        buffer.ResetWrittenCount();
    }

    private static void WritePlain(TextWriter writer, IEnumerable<BankEntryRecord> entries, Counts counts)
    {
        string? type = null;
        foreach (var record in entries)
        {
            if (!counts.Take(record, deletedAllowed: false))
            {
                continue;
            }

            type ??= record.SignalType;
            if (!string.Equals(type, record.SignalType, StringComparison.Ordinal))
            {
                // A plain list has no column for the type, so a mixed list could not be read back.
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"A plain list holds one signal type; these records mix {type} and {record.SignalType}. Choose one (--signal-type) or export as csv or jsonl."));
            }

            writer.Write(record.Signal);
            writer.Write('\n');
        }
    }
}
