using CsvHelper;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// CSV lists (see <see cref="CsvListReader"/>); written with the header <c>signal_type,signal,</c>label columns…<c>,note,external_id</c>.
/// Detected by <c>.csv</c>, or a first line with a comma.
/// </summary>
internal sealed class CsvListFormat : BankFileFormat
{
    public static readonly CsvListFormat Instance = new();

    private CsvListFormat()
    {
    }

    public override string Name => "csv";

    public override IReadOnlyList<string> Extensions { get; } = [".csv"];

    public override string MimeType => "text/csv";

    public override bool CanWrite => true;

    public override bool Sniff(ReadOnlySpan<byte> firstLine) => firstLine.Contains((byte)',');

    public override IEnumerable<BankEntryRecord> Read(ListInput input, ImportSession session) =>
        input.Stream is { } stream ? CsvListReader.Read(stream, null, session) : CsvListReader.Read(null, input.Text, session);

    public override void Write(TextWriter writer, IEnumerable<BankEntryRecord> entries, ExportOptions options, ExportFilter filter)
    {
        var labelColumns = options.LabelColumns ?? CollectLabels(entries, filter);
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
            if (!filter.Take(record, deletedAllowed: false))
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
    private static List<string> CollectLabels(IEnumerable<BankEntryRecord> entries, ExportFilter filter)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var probe = filter.Probe();
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

}
