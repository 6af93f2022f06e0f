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
/// <param name="Name">Unique name (<see cref="BankNames.Rule"/>).</param>
/// <param name="Kind">Block list or allow list.</param>
/// <param name="Enabled">Disabled banks are not matched.</param>
/// <param name="Thresholds">Per signal type thresholds (type name → maximum distance, checked by <see cref="BankThresholds.Check"/>); types not named use their default.</param>
/// <param name="Description">Free text.</param>
/// <param name="CreatedAt">Creation time (UTC).</param>
public sealed record Bank(long Id, string Name, BankKind Kind, bool Enabled, IReadOnlyDictionary<string, int>? Thresholds, string? Description, DateTimeOffset CreatedAt)
{
    /// <summary>This bank's threshold for <paramref name="type"/>: its own setting, else the type's default.</summary>
    public int ThresholdFor(Signals.ISignalType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return Thresholds is not null && Thresholds.TryGetValue(type.Name, out var t) ? t : type.DefaultThreshold;
    }

    /// <summary>Value equality, the thresholds compared by content (a record would compare the map's reference).</summary>
    public bool Equals(Bank? other) =>
        other is not null && Id == other.Id && Name == other.Name && Kind == other.Kind && Enabled == other.Enabled
        && Description == other.Description && CreatedAt == other.CreatedAt && SameThresholds(Thresholds, other.Thresholds);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Id, Name, Kind, Enabled, Description, CreatedAt, Thresholds?.Count ?? 0);

    private static bool SameThresholds(IReadOnlyDictionary<string, int>? a, IReadOnlyDictionary<string, int>? b)
    {
        var ac = a?.Count ?? 0;
        if (ac != (b?.Count ?? 0))
        {
            return false;
        }

        return ac == 0 || a!.All(p => b!.TryGetValue(p.Key, out var v) && v == p.Value);
    }

    /// <summary>The PDQ entry of <see cref="Thresholds"/> (null: the default), as the API's and CLI's <c>pdq_threshold</c> show it.</summary>
    public int? PdqThreshold => Thresholds is not null && Thresholds.TryGetValue(Signals.SignalTypes.Pdq.Name, out var t) ? t : null;
}

/// <summary>The one rule for a bank's per-type threshold, which the API, the CLI and storage all apply.</summary>
public static class BankThresholds
{
    /// <summary>Null when <paramref name="value"/> is a valid threshold for <paramref name="type"/> (0 to its <see cref="Signals.ISignalType.MaxThreshold"/>), else the reason.</summary>
    public static string? Check(Signals.ISignalType type, int value)
    {
        ArgumentNullException.ThrowIfNull(type);
        return value < 0 || value > type.MaxThreshold
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"a {type.Name} threshold is a distance from 0 to {type.MaxThreshold}; got {value}")
            : null;
    }

    /// <summary>
    /// Checks a map of type name → threshold (null value: back to the default): the type must be known
    /// (<see cref="Signals.SignalTypes.TryGet"/>) and the value pass <see cref="Check"/>. Returns the map keyed by the
    /// types' canonical names, or throws <see cref="ArgumentException"/> with the reason.
    /// </summary>
    public static Dictionary<string, int?> Normalize(IEnumerable<KeyValuePair<string, int?>> thresholds)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        var result = new Dictionary<string, int?>(StringComparer.Ordinal);
        foreach (var (name, value) in thresholds)
        {
            if (!Signals.SignalTypes.TryGet(name, out var type))
            {
                throw new ArgumentException($"Unknown signal type '{name}' in thresholds; known types: {Signals.SignalTypes.Names}.", nameof(thresholds));
            }

            if (value is { } v && Check(type, v) is { } reason)
            {
                throw new ArgumentException(reason, nameof(thresholds));
            }

            result[type.Name] = value;
        }

        return result;
    }
}

/// <summary>The words for <see cref="BankKind"/> in the API, the CLI, exports and audit records.</summary>
public static class BankKinds
{
    /// <summary>The names, in the order help text lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["block", "allow"];

    /// <summary><c>block</c> or <c>allow</c>.</summary>
    public static string Name(BankKind kind) => kind == BankKind.AllowList ? "allow" : "block";

    /// <summary>Parses <c>block</c>/<c>blocklist</c> or <c>allow</c>/<c>allowlist</c> (case-insensitive, trimmed); empty means block.</summary>
    public static bool TryParse(string? name, out BankKind kind)
    {
        var n = name.AsSpan().Trim();
        if (n.IsEmpty || n.Equals("block", StringComparison.OrdinalIgnoreCase) || n.Equals("blocklist", StringComparison.OrdinalIgnoreCase))
        {
            kind = BankKind.BlockList;
            return true;
        }

        kind = BankKind.AllowList;
        return n.Equals("allow", StringComparison.OrdinalIgnoreCase) || n.Equals("allowlist", StringComparison.OrdinalIgnoreCase);
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

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\z")]
    private static partial Regex Pattern();
}
