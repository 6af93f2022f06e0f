using System.Text.RegularExpressions;

namespace Warden.Core.Banks;

/// <summary>Whether a bank's hits block content or vouch for it.</summary>
public enum BankKind
{
    /// <summary>Hits are matches to act on.</summary>
    BlockList = 0,

    /// <summary>
    /// Hits suppress block-list hits on the same content: the false-positive valve for benign images that
    /// collide with a list entry.
    /// </summary>
    AllowList = 1,
}

/// <summary>A named list of signals.</summary>
/// <param name="Id">Storage id.</param>
/// <param name="Name">Unique name (letters, digits, '_', '-', '.'; at most 64).</param>
/// <param name="Kind">Block list or allow list.</param>
/// <param name="Enabled">Disabled banks are not matched.</param>
/// <param name="PdqThreshold">Per-bank PDQ distance threshold; null means the signal type's default (31).</param>
/// <param name="Description">Free text.</param>
/// <param name="CreatedAt">Creation time (UTC).</param>
/// <param name="Thresholds">Per signal type thresholds (type name → maximum distance); types not named use their default.</param>
public sealed record Bank(long Id, string Name, BankKind Kind, bool Enabled, int? PdqThreshold, string? Description, DateTimeOffset CreatedAt, IReadOnlyDictionary<string, int>? Thresholds = null)
{
    /// <summary>
    /// This bank's threshold for <paramref name="type"/>: its own setting, else the type's default. The stored
    /// PDQ column is the PDQ entry of that map (storage keeps one column until it keeps the map).
    /// </summary>
    public int ThresholdFor(Signals.ISignalType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (Thresholds is not null && Thresholds.TryGetValue(type.Name, out var t))
        {
            return t;
        }

        return PdqThreshold is { } pdq && type is Signals.PdqSignalType ? pdq : type.DefaultThreshold;
    }
}

/// <summary>One signal in a bank.</summary>
/// <param name="Id">Storage id (what matches report).</param>
/// <param name="BankId">Owning bank.</param>
/// <param name="SignalType">Signal type name.</param>
/// <param name="Signal">Normalised signal text.</param>
/// <param name="Labels">Free-form labels plus the well-known ones in <see cref="WellKnownLabels"/>.</param>
/// <param name="Source">Where the entry came from (file name, exchange, "manual").</param>
/// <param name="ExternalId">The source's own id for the entry (e.g. NCMEC member-entry), for updates and tombstones.</param>
/// <param name="Enabled">Disabled entries are not matched.</param>
/// <param name="Note">Free text.</param>
/// <param name="Deleted">Tombstone: kept so deletions sync, never matched.</param>
/// <param name="UpdatedAt">Last change (UTC).</param>
public sealed record BankEntry(
    long Id,
    long BankId,
    string SignalType,
    string Signal,
    IReadOnlyDictionary<string, string> Labels,
    string? Source,
    string? ExternalId,
    bool Enabled,
    string? Note,
    bool Deleted,
    DateTimeOffset UpdatedAt);

/// <summary>
/// An entry as list formats read and write it (no storage ids). <see cref="Deleted"/> marks a tombstone
/// (NCMEC `deletedImage`), identified by <see cref="ExternalId"/> or by signal.
/// </summary>
/// <param name="SignalType">Signal type name (validated).</param>
/// <param name="Signal">Normalised signal text.</param>
/// <param name="Labels">Labels.</param>
/// <param name="Note">Free text.</param>
/// <param name="ExternalId">The source's id.</param>
/// <param name="Deleted">Tombstone.</param>
public sealed record BankEntryRecord(
    string SignalType,
    string Signal,
    IReadOnlyDictionary<string, string> Labels,
    string? Note = null,
    string? ExternalId = null,
    bool Deleted = false);

/// <summary>Labels with a meaning across Warden (reports, review, rules).</summary>
public static class WellKnownLabels
{
    /// <summary>Free-text category (e.g. "csam", "terror", "ncii").</summary>
    public const string Category = "category";

    /// <summary>Industry classification: A1, A2, B1 or B2 (NCMEC/Tech Coalition scheme).</summary>
    public const string Classification = "classification";

    /// <summary>"true" when the material is known to be AI-generated (NCMEC's generativeAi annotation).</summary>
    public const string GenerativeAi = "generativeAi";

    /// <summary>The valid industry classifications.</summary>
    public static IReadOnlySet<string> Classifications { get; } = new HashSet<string>(StringComparer.Ordinal) { "A1", "A2", "B1", "B2" };

    /// <summary>Checks the values of the well-known labels; null when valid, else the reason.</summary>
    public static string? Validate(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.TryGetValue(Classification, out var c) && !Classifications.Contains(c))
        {
            return $"label '{Classification}' must be one of A1, A2, B1, B2; got '{c}'";
        }

        if (labels.TryGetValue(GenerativeAi, out var g) && g is not ("true" or "false"))
        {
            return $"label '{GenerativeAi}' must be true or false; got '{g}'";
        }

        return null;
    }
}

/// <summary>Bank name rules.</summary>
public static partial class BankNames
{
    /// <summary>True when <paramref name="name"/> is a valid bank name.</summary>
    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    /// <summary>The rule in words.</summary>
    public const string Rule = "a bank name is 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex Pattern();
}
