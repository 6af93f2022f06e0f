using System.Globalization;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// Plain hash lists (see <see cref="PlainListReader"/>): one signal per line, no column for the type, so the caller
/// names it. No extension is its alone (.txt is anything); detected by a first line of hex digits only.
/// </summary>
internal sealed class PlainListFormat : BankFileFormat
{
    public static readonly PlainListFormat Instance = new();

    private PlainListFormat()
    {
    }

    public override string Name => "plain";

    public override IReadOnlyList<string> Aliases { get; } = ["txt", "text"];

    public override string ExportExtension => ".txt";

    public override string MimeType => "text/plain";

    public override bool NeedsSignalType => true;

    public override bool CanWrite => true;

    public override bool Sniff(ReadOnlySpan<byte> firstLine)
    {
        foreach (var b in firstLine.TrimEnd(" \t"u8))
        {
            if (!char.IsAsciiHexDigit((char)b))
            {
                return false;
            }
        }

        return true;
    }

    public override IEnumerable<BankEntryRecord> Read(ListInput input, ImportSession session) => PlainListReader.Read(input.Text, session);

    public override void Write(TextWriter writer, IEnumerable<BankEntryRecord> entries, ExportOptions options, ExportFilter filter)
    {
        string? type = null;
        foreach (var record in entries)
        {
            if (!filter.Take(record, deletedAllowed: false))
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
