using System.Globalization;
using System.Text;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// What one import did, filled in while the records are enumerated: every record read ends up imported, skipped
/// (bad, see <see cref="Errors"/>) or unsupported (a fingerprint type Warden does not match, e.g. NCMEC's pdna), so
/// <c>Read == Imported + Skipped + Unsupported</c> and nothing is dropped silently. Use one report per import.
/// </summary>
public sealed class ImportReport
{
    private readonly List<BankFormatError> _errors = [];
    private readonly Dictionary<string, long> _unsupportedTypes = new(StringComparer.Ordinal);

    /// <summary>The source name errors carry.</summary>
    public string Source { get; internal set; } = "-";

    /// <summary>Lines read (for XML: the last line reached).</summary>
    public long Lines { get; internal set; }

    /// <summary>Bytes consumed from the stream (0 when reading a TextReader).</summary>
    public long BytesRead { get; internal set; }

    /// <summary>Records read: data lines/rows, or NCMEC fingerprints plus tombstones. Blank and comment lines are not records.</summary>
    public long Read { get; internal set; }

    /// <summary>Records handed to the caller (tombstones included).</summary>
    public long Imported { get; internal set; }

    /// <summary>Of <see cref="Imported"/>, the tombstones (<see cref="BankEntryRecord.Deleted"/>).</summary>
    public long Deleted { get; internal set; }

    /// <summary>Records not imported because they were bad (see <see cref="Errors"/>).</summary>
    public long Skipped { get; internal set; }

    /// <summary>Records of a type Warden does not match (NCMEC large fingerprints, pdna, …), by design not imported.</summary>
    public long Unsupported { get; internal set; }

    /// <summary><see cref="Unsupported"/> by type name.</summary>
    public IReadOnlyDictionary<string, long> UnsupportedTypes => _unsupportedTypes;

    /// <summary>NCMEC XML: the entry tombstones emitted before each live entry so that it replaces the stored one (not counted as read).</summary>
    public long ReplacementTombstones { get; internal set; }

    /// <summary>All errors, including those past the <see cref="Errors"/> cap.</summary>
    public long ErrorCount { get; internal set; }

    /// <summary>The first <see cref="ImportOptions.MaxErrors"/> errors.</summary>
    public IReadOnlyList<BankFormatError> Errors => _errors;

    /// <summary>True once the whole file was read (the enumeration ran to its end).</summary>
    public bool Completed { get; internal set; }

    /// <summary>NCMEC XML: the page's paging link and max timestamps; set when the page was read to its end.</summary>
    public NcmecPageInfo? NcmecPage { get; internal set; }

    internal int MaxErrors { get; set; } = 1000;

    internal void AddError(BankFormatError error)
    {
        ErrorCount++;
        if (_errors.Count < MaxErrors)
        {
            _errors.Add(error);
        }
    }

    internal void AddUnsupported(string type)
    {
        Unsupported++;
        _unsupportedTypes[type] = _unsupportedTypes.GetValueOrDefault(type) + 1;
    }

    /// <summary>A one-line summary, e.g. <c>read 1000, imported 990 (2 deletions), skipped 8, unsupported 2 (pdna 2)</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"read {Read}, imported {Imported}");
        if (Deleted > 0)
        {
            sb.Append(c, $" ({Deleted} deletions)");
        }

        sb.Append(c, $", skipped {Skipped}, unsupported {Unsupported}");
        if (_unsupportedTypes.Count > 0)
        {
            sb.Append(" (").AppendJoin(", ", _unsupportedTypes.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => string.Create(c, $"{p.Key} {p.Value}"))).Append(')');
        }

        if (ErrorCount > 0)
        {
            sb.Append(c, $", {ErrorCount} errors");
        }

        if (!Completed)
        {
            sb.Append(", incomplete");
        }

        return sb.ToString();
    }
}
