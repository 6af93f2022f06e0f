namespace Warden.Core.Banks.Formats;

/// <summary>How to read one list file.</summary>
/// <param name="Format">The file's format (see <see cref="BankFileFormats.Detect"/> to guess it).</param>
/// <param name="SignalType">
/// Plain lists: the type of every line (required), or <see cref="AutoSignalType"/> to tell MD5 and SHA-1 apart by
/// length. CSV and JSON Lines: the type of rows that leave <c>signal_type</c> empty or out (optional). NCMEC: unused.
/// </param>
/// <param name="SkipBadLines">
/// False (<c>--on-error abort</c>): the first bad line throws <see cref="BankFormatException"/>. True
/// (<c>--on-error skip</c>): bad lines are reported (<see cref="ImportReport.Errors"/>, <see cref="OnError"/>) and
/// reading goes on. Problems no skip can get past (no header, malformed XML) throw either way.
/// </param>
/// <param name="SourceName">The name errors carry (the file's path as the user typed it); "-" when empty.</param>
/// <param name="Progress">Called every <see cref="ProgressInterval"/> lines and once at the end (for a progress bar).</param>
public sealed record ImportOptions(
    BankFileFormat Format,
    string? SignalType = null,
    bool SkipBadLines = false,
    string SourceName = "",
    Action<ImportProgress>? Progress = null)
{
    /// <summary>The <see cref="SignalType"/> value that asks plain lists to detect MD5/SHA-1 by length.</summary>
    public const string AutoSignalType = "auto";

    /// <summary>Called for every error, including those past <see cref="MaxErrors"/>; runs before an abort throws.</summary>
    public Action<BankFormatError>? OnError { get; init; }

    /// <summary>Labels given to every record (e.g. <c>--label category=csam</c>); a row's own labels win.</summary>
    public IReadOnlyDictionary<string, string>? DefaultLabels { get; init; }

    /// <summary>How many errors <see cref="ImportReport.Errors"/> keeps (the count goes on past it).</summary>
    public int MaxErrors { get; init; } = 1000;

    /// <summary>
    /// Longest line (characters) the line formats accept; a longer one is a bad line and is never held in memory
    /// whole, so a file without newlines cannot exhaust memory. Also CSV's largest field.
    /// </summary>
    public int MaxLineLength { get; init; } = 1 << 20;

    /// <summary>NCMEC XML: the most characters a page may hold (XmlReaderSettings.MaxCharactersInDocument).</summary>
    public long MaxXmlCharacters { get; init; } = 64L << 20;

    /// <summary>
    /// NCMEC XML: large fingerprints (served by an href link instead of a value) that the caller fetches itself.
    /// Null: every large fingerprint is counted as unsupported.
    /// </summary>
    public NcmecLargeFingerprintHandler? LargeFingerprints { get; init; }

    /// <summary>Lines (or XML entries) between two <see cref="Progress"/> calls.</summary>
    public int ProgressInterval { get; init; } = 10_000;
}

/// <summary>Where an import stands, for a progress bar.</summary>
/// <param name="BytesRead">Bytes consumed from the stream so far (null when reading a TextReader).</param>
/// <param name="TotalBytes">The stream's remaining length when it is seekable, else null.</param>
/// <param name="LinesRead">Lines read (for XML: the current line).</param>
/// <param name="Records">Records read so far (<see cref="ImportReport.Read"/>).</param>
/// <param name="Done">True on the final call.</param>
public readonly record struct ImportProgress(long? BytesRead, long? TotalBytes, long LinesRead, long Records, bool Done);

/// <summary>Which NCMEC large fingerprints a caller takes, and the callback that receives each.</summary>
/// <param name="Names">Element names (e.g. <c>tmk-pdqf</c>).</param>
/// <param name="Take">Called once per taken fingerprint of a valid entry, right after that entry's records are read.</param>
public sealed record NcmecLargeFingerprintHandler(IReadOnlySet<string> Names, Action<NcmecLargeFingerprint> Take);

/// <summary>A large fingerprint of an NCMEC entry: its link (relative to the application root; never to be stored).</summary>
/// <param name="Name">Element name (e.g. <c>tmk-pdqf</c>).</param>
/// <param name="Href">The retrieval link as NCMEC sent it.</param>
/// <param name="MemberId">The entry's member id.</param>
/// <param name="EntryId">The entry's id.</param>
/// <param name="Labels">The labels the entry's records carry.</param>
public sealed record NcmecLargeFingerprint(string Name, string Href, string MemberId, string EntryId, IReadOnlyDictionary<string, string> Labels);
