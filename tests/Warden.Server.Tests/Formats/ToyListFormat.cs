using System.Globalization;
using System.Text;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;

namespace Warden.Server.Tests.Formats;

/// <summary>
/// A list format that exists only in this test project: a <c>TOYLIST 1</c> header line, then one entry per line as
/// tab-separated <c>signal_type</c>, <c>signal</c> and <c>name=value</c> labels. Proves that a format plugs in with
/// name, aliases, extension, MIME type, detection, reader and writer, and no edit outside the test.
/// </summary>
internal sealed class ToyListFormat : BankFileFormat
{
    public const string FormatName = "toylist";
    public const string Header = "TOYLIST 1";

    public override string Name => FormatName;

    public override IReadOnlyList<string> Aliases { get; } = ["toy-list"];

    public override IReadOnlyList<string> Extensions { get; } = [".toylist"];

    public override string MimeType => "application/x-warden-toylist";

    public override bool CanWrite => true;

    public override bool Sniff(ReadOnlySpan<byte> firstLine) => firstLine.StartsWith("TOYLIST "u8);

    public override IEnumerable<BankEntryRecord> Read(ListInput input, ImportSession session)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(session);
        var text = input.Text;
        long line = 0;
        var first = text.ReadLine();
        line++;
        if (first != Header)
        {
            throw session.Fatal(line, $"expected the header '{Header}'");
        }

        while (text.ReadLine() is { } row)
        {
            line++;
            session.Tick(line);
            if (row.Length == 0)
            {
                continue;
            }

            session.CountRead();
            var cells = row.Split('\t');
            if (cells.Length < 2)
            {
                session.Error(line, "expected signal_type<TAB>signal");
                continue;
            }

            if (!session.TryResolveType(cells[0], out var type, out var reason))
            {
                session.Error(line, reason!);
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var bad = false;
            foreach (var cell in cells.Skip(2))
            {
                var eq = cell.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    session.Error(line, $"label '{cell}' is not name=value");
                    bad = true;
                    break;
                }

                labels[cell[..eq]] = cell[(eq + 1)..];
            }

            if (!bad && session.Make(line, type!, cells[1], labels, null, null) is { } record)
            {
                yield return record;
            }
        }

        session.Finish(line);
    }

    public override void Write(TextWriter writer, IEnumerable<BankEntryRecord> entries, ExportOptions options, ExportFilter filter)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(filter);
        writer.Write(Header + "\n");
        foreach (var record in entries)
        {
            if (!filter.Take(record, deletedAllowed: false))
            {
                continue;
            }

            var line = new StringBuilder().Append(record.SignalType).Append('\t').Append(record.Signal);
            foreach (var (key, value) in record.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                line.Append(CultureInfo.InvariantCulture, $"\t{key}={value}");
            }

            writer.Write(line.Append('\n').ToString());
        }
    }
}
