using System.Globalization;
using Warden.Core.Signals;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// The state one import shares with its format's reader (<see cref="BankFileFormat.Read"/>): counts, the skip/abort
/// rule, signal validation and progress. A reader calls <see cref="Tick"/> per line, <see cref="Make"/> per record
/// (or <see cref="Error"/> for a bad line), and <see cref="Finish"/> at the end.
/// </summary>
public sealed class ImportSession
{
    private static readonly IReadOnlyDictionary<string, string> NoLabels = new Dictionary<string, string>(StringComparer.Ordinal);

    private readonly CountingStream? _counter;
    private readonly long? _totalBytes;
    private readonly Action<ImportProgress>? _progress;
    private readonly int _progressInterval;
    private long _nextProgress;

    // One-entry cache: files rarely switch types, and SignalTypes.TryGet trims and scans per call.
    private string? _lastTypeName;
    private ISignalType? _lastType;

    internal ImportSession(ImportOptions options, ImportReport report, CountingStream? counter, long? totalBytes)
    {
        Options = options;
        Report = report;
        _counter = counter;
        _totalBytes = totalBytes;
        _progress = options.Progress;
        _progressInterval = Math.Max(1, options.ProgressInterval);
        _nextProgress = _progressInterval;
        Source = string.IsNullOrEmpty(options.SourceName) ? "-" : options.SourceName;
        report.Source = Source;
        report.MaxErrors = Math.Max(0, options.MaxErrors);
        DefaultType = ResolveDefaultType(options);
        DefaultLabels = options.DefaultLabels is { Count: > 0 } d ? new Dictionary<string, string>(d, StringComparer.Ordinal) : NoLabels;
    }

    public ImportOptions Options { get; }

    public ImportReport Report { get; }

    public string Source { get; }

    /// <summary>The caller's signal type, or null (none, or "auto").</summary>
    public ISignalType? DefaultType { get; }

    /// <summary>True when the caller asked to detect the type by length.</summary>
    public bool AutoType => string.Equals(Options.SignalType?.Trim(), ImportOptions.AutoSignalType, StringComparison.OrdinalIgnoreCase);

    /// <summary>The caller's labels (validated), or an empty dictionary.</summary>
    public IReadOnlyDictionary<string, string> DefaultLabels { get; }

    /// <summary>Validates options that do not depend on the file; throws <see cref="ArgumentException"/>.</summary>
    internal static void CheckOptions(ImportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Format is null)
        {
            throw new ArgumentException("No list format given.", nameof(options));
        }

        _ = ResolveDefaultType(options);
        if (options.Format.NeedsSignalType && string.IsNullOrWhiteSpace(options.SignalType))
        {
            throw new ArgumentException(
                $"A {options.Format.Name} hash list needs its signal type ({string.Join(", ", SignalTypes.All.Select(t => t.Name))}, or '{ImportOptions.AutoSignalType}' to tell md5 and sha1 apart by length).",
                nameof(options));
        }

        if (options.DefaultLabels is { } labels)
        {
            if (labels.Keys.Any(string.IsNullOrWhiteSpace))
            {
                throw new ArgumentException("Label names must not be empty.", nameof(options));
            }

            if (WellKnownLabels.Validate(labels) is { } reason)
            {
                throw new ArgumentException(reason, nameof(options));
            }
        }

        if (options.MaxLineLength < 80)
        {
            throw new ArgumentException("MaxLineLength must be at least 80.", nameof(options));
        }
    }

    private static ISignalType? ResolveDefaultType(ImportOptions options)
    {
        var name = options.SignalType;
        if (string.IsNullOrWhiteSpace(name) || string.Equals(name.Trim(), ImportOptions.AutoSignalType, StringComparison.OrdinalIgnoreCase))
        {
            if (name is not null && !options.Format.NeedsSignalType && !string.IsNullOrWhiteSpace(name))
            {
                throw new ArgumentException($"Signal type '{ImportOptions.AutoSignalType}' applies only to lists that do not name their signal types (plain).", nameof(options));
            }

            return null;
        }

        return SignalTypes.TryGet(name, out var type)
            ? type
            : throw new ArgumentException($"Unknown signal type '{name}'; known types: {string.Join(", ", SignalTypes.All.Select(t => t.Name))}.", nameof(options));
    }

    /// <summary>Looks a type name up (cached); an empty name means the caller's default.</summary>
    public bool TryResolveType(ReadOnlySpan<char> name, out ISignalType? type, out string? reason)
    {
        name = name.Trim();
        if (name.IsEmpty)
        {
            type = DefaultType;
            reason = type is null ? "signal_type is empty and no default signal type was given (--signal-type)" : null;
            return type is not null;
        }

        if (_lastTypeName is not null && name.SequenceEqual(_lastTypeName))
        {
            type = _lastType;
            reason = null;
            return true;
        }

        foreach (var candidate in SignalTypes.All)
        {
            if (name.Equals(candidate.Name, StringComparison.OrdinalIgnoreCase))
            {
                (_lastTypeName, _lastType) = (name.ToString(), candidate);
                type = candidate;
                reason = null;
                return true;
            }
        }

        type = null;
        reason = $"unknown signal type '{Shorten(name)}'; known types: {string.Join(", ", SignalTypes.All.Select(t => t.Name))}";
        return false;
    }

    /// <summary>
    /// Validates and normalises one record. Returns null when it is bad: the error is then reported (and thrown in
    /// abort mode), and the record counted as skipped.
    /// </summary>
    public BankEntryRecord? Make(long line, ISignalType type, ReadOnlySpan<char> signal, IReadOnlyDictionary<string, string> labels, string? note, string? externalId, bool deleted = false)
    {
        if (!type.TryNormalize(signal, out var normalized, out var reason))
        {
            Error(line, reason ?? $"not a valid {type.Name}");
            return null;
        }

        if (!ReferenceEquals(labels, DefaultLabels) && WellKnownLabels.Validate(labels) is { } labelReason)
        {
            Error(line, labelReason);
            return null;
        }

        return Accept(new BankEntryRecord(type.Name, normalized, labels, note, externalId, deleted));
    }

    /// <summary>Counts one record read from the file, good or bad (<see cref="ImportReport.Read"/>); call before <see cref="Make"/> or <see cref="Error"/>.</summary>
    public void CountRead() => Report.Read++;

    /// <summary>Counts a record handed to the caller.</summary>
    public BankEntryRecord Accept(BankEntryRecord record)
    {
        Report.Imported++;
        if (record.Deleted)
        {
            Report.Deleted++;
        }

        return record;
    }

    /// <summary>Reports a bad line; throws in abort mode, else counts <paramref name="skipped"/> records as skipped.</summary>
    public void Error(long line, string reason, long skipped = 1)
    {
        Report.Skipped += skipped;
        var error = Add(line, reason);
        if (!Options.SkipBadLines)
        {
            throw new BankFormatException(error);
        }
    }

    /// <summary>Reports a problem no skip gets past; returns the exception for the caller to throw.</summary>
    public BankFormatException Fatal(long line, string reason, Exception? inner = null) => new(Add(line, reason), inner);

    private BankFormatError Add(long line, string reason)
    {
        var error = new BankFormatError(Source, line, reason);
        Report.AddError(error);
        Options.OnError?.Invoke(error);
        return error;
    }

    /// <summary>Calls the progress callback when <paramref name="lines"/> passed the next step.</summary>
    public void Tick(long lines)
    {
        Report.Lines = lines;
        if (_progress is not null && lines >= _nextProgress)
        {
            _nextProgress = lines + _progressInterval;
            _progress(Snapshot(false));
        }
    }

    /// <summary>Marks the import complete and makes the final progress call.</summary>
    public void Finish(long lines)
    {
        Report.Lines = lines;
        Report.BytesRead = _counter?.BytesRead ?? 0;
        Report.Completed = true;
        _progress?.Invoke(Snapshot(true));
    }

    private ImportProgress Snapshot(bool done)
    {
        if (_counter is not null)
        {
            Report.BytesRead = _counter.BytesRead;
        }

        return new ImportProgress(_counter?.BytesRead, _totalBytes, Report.Lines, Report.Read, done);
    }

    /// <summary>Cuts a value for an error message (a hostile file must not make messages huge).</summary>
    public static string Shorten(ReadOnlySpan<char> value, int max = 80) =>
        value.Length <= max ? value.ToString() : string.Create(CultureInfo.InvariantCulture, $"{value[..max]}… ({value.Length} characters)");
}
