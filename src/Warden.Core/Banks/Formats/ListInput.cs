using System.Text;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// What a <see cref="BankFileFormat"/> reads: the file's bytes when it came as a stream (formats with their own
/// decoder, such as XML, read <see cref="Stream"/>), and always its text as UTF-8 (<see cref="Text"/>; a BOM is
/// honoured, invalid bytes become U+FFFD so the reader reports them as bad values, not crashes).
/// </summary>
public sealed class ListInput : IDisposable
{
    private readonly TextReader? _given;
    private StreamReader? _owned;

    internal ListInput(Stream? stream, TextReader? text)
    {
        Stream = stream;
        _given = text;
    }

    /// <summary>The bytes (counted for progress), or null when the caller handed over text.</summary>
    public Stream? Stream { get; }

    /// <summary>The text; made over <see cref="Stream"/> on first use.</summary>
    public TextReader Text => _given ?? (_owned ??= new StreamReader(Stream!, new UTF8Encoding(false, throwOnInvalidBytes: false), detectEncodingFromByteOrderMarks: true, bufferSize: 64 * 1024, leaveOpen: true));

    /// <summary>Disposes the text reader made over the stream (the stream itself stays open).</summary>
    public void Dispose() => _owned?.Dispose();
}

/// <summary>
/// The rule every writer applies to each record: tombstones out unless the format can mark them and the caller asked
/// (<see cref="ExportOptions.IncludeDeleted"/>), other signal types out when one is chosen; counts each outcome.
/// </summary>
public sealed class ExportFilter
{
    private readonly ExportOptions _options;

    internal ExportFilter(ExportOptions options) => _options = options;

    /// <summary>Records taken.</summary>
    public long Written { get; private set; }

    /// <summary>Tombstones left out.</summary>
    public long SkippedDeleted { get; private set; }

    /// <summary>Records of another signal type.</summary>
    public long Filtered { get; private set; }

    /// <summary>True when <paramref name="record"/> is to be written; counts it either way.</summary>
    /// <param name="record">The record.</param>
    /// <param name="deletedAllowed">Whether the format can express a tombstone.</param>
    public bool Take(BankEntryRecord record, bool deletedAllowed)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Deleted && !(deletedAllowed && _options.IncludeDeleted))
        {
            SkippedDeleted++;
            return false;
        }

        if (_options.SignalType is { } type && !string.Equals(record.SignalType, type, StringComparison.OrdinalIgnoreCase))
        {
            Filtered++;
            return false;
        }

        Written++;
        return true;
    }

    /// <summary>A fresh filter with the same options (a first pass that must not count, e.g. collecting CSV columns).</summary>
    public ExportFilter Probe() => new(_options);
}
