using System.Text.Json;
using Warden.Core.Banks;

namespace Warden.Core.Exchanges;

/// <summary>
/// An exchange type: a plug-in beside the signal types that knows one clearinghouse's wire format. It reads
/// <b>deltas from a checkpoint</b> (adds, updates, tombstones) for one bank and, optionally, writes opinions back.
/// A type is stateless; everything an exchange needs between runs is its config (typed, validated, stored) and
/// its checkpoint (opaque text the type made, stored by the caller only after the delta's records are committed).
/// </summary>
public interface IExchangeType
{
    /// <summary>The type's name in the API, the CLI and HMA's <c>api</c> field (e.g. "ncmec").</summary>
    string Name { get; }

    /// <summary>One line: what the type fetches.</summary>
    string Description { get; }

    /// <summary>The config's fields, for the API's schema endpoint and for forms.</summary>
    ExchangeSchema Schema { get; }

    /// <summary>
    /// Checks a config (a JSON object) and returns it in canonical form (defaults filled in, names normalised), or
    /// throws <see cref="ExchangeConfigException"/> saying what is wrong. Never resolves credentials.
    /// </summary>
    JsonElement Validate(JsonElement config);

    /// <summary>A fetcher for one sync pass with a validated config; credentials are resolved here.</summary>
    IExchangeFetcher CreateFetcher(JsonElement config, ExchangeRuntime runtime);

    /// <summary>A feedback writer, or null when the type cannot send opinions.</summary>
    IExchangeFeedbackWriter? CreateFeedbackWriter(JsonElement config, ExchangeRuntime runtime);

    /// <summary>
    /// The exchange's own id of the entry a bank entry with these labels came from (what
    /// <see cref="ExchangeOpinion.ExternalId"/> takes), or null when the labels do not name one: how a reviewer's
    /// decision on a hit finds the entry to send an opinion about.
    /// </summary>
    string? FeedbackEntryId(IReadOnlyDictionary<string, string> labels);

    /// <summary>
    /// True when the type can take an opinion back: its writer sends <see cref="OpinionKind.Seen"/> as the
    /// exchange's "not decided" value (StopNCII: PendingReview), which an undone decision queues in place of a
    /// verdict already sent. False (the default) where the exchange has no such value (NCMEC keeps a member's
    /// latest affirmative or negative vote until the next one replaces it).
    /// </summary>
    bool CanWithdrawOpinion => false;
}

/// <summary>What a fetcher may use from its host: the HTTP handler (tests inject one), the clock, a log line sink.</summary>
/// <param name="Http">The client to talk to the exchange with (the caller owns it).</param>
/// <param name="Clock">Now (UTC); tests move it.</param>
/// <param name="Log">Progress and retry notes (never credentials).</param>
/// <param name="Environment">Reads an environment variable (credentials); tests replace it.</param>
public sealed record ExchangeRuntime(HttpClient Http, Func<DateTimeOffset> Clock, Action<string> Log, Func<string, string?> Environment)
{
    /// <summary>The real clock and process environment, logging nowhere.</summary>
    public static ExchangeRuntime Default(HttpClient http) => new(http, () => DateTimeOffset.UtcNow, _ => { }, System.Environment.GetEnvironmentVariable);

    /// <summary>Waits (overridable so retry tests need not sleep long).</summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; init; } = Task.Delay;
}

/// <summary>One sync pass: reads from a checkpoint to the newest data.</summary>
public interface IExchangeFetcher
{
    /// <summary>
    /// Yields deltas in order from <paramref name="checkpoint"/> (null: from the beginning). Each delta's
    /// <see cref="ExchangeDelta.Checkpoint"/> covers its records and every earlier delta's: store it only after all
    /// of them are committed. The enumeration ends when the feed is read up to date.
    /// </summary>
    IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, CancellationToken cancellationToken);

    /// <summary>The time a checkpoint has reached (shown in status; must never move backwards), or null.</summary>
    DateTimeOffset? ProgressOf(string? checkpoint);
}

/// <summary>A piece of the feed, with the checkpoint that follows it.</summary>
/// <param name="Records">Adds, updates and tombstones, in feed order (an update is a tombstone of the entry then its fingerprints).</param>
/// <param name="Checkpoint">The checkpoint once these records (and all before) are committed.</param>
/// <param name="Entries">Live entries the piece carried.</param>
/// <param name="Tombstones">Deleted entries the piece carried.</param>
/// <param name="Filtered">Entries left out by the config (member filter).</param>
/// <param name="Unsupported">Fingerprints Warden does not match, by type (counted, never silently dropped).</param>
/// <param name="Errors">Malformed entries skipped (each also logged).</param>
public sealed record ExchangeDelta(
    IReadOnlyList<BankEntryRecord> Records,
    string Checkpoint,
    long Entries,
    long Tombstones,
    long Filtered,
    IReadOnlyDictionary<string, long> Unsupported,
    long Errors)
{
    /// <summary>
    /// This piece is part of a full listing (a list file fetched whole): entries of the exchange that the listing
    /// does not carry are gone. Set on every piece of the listing.
    /// </summary>
    public bool Snapshot { get; init; }

    /// <summary>The listing ends with this piece: the host tombstones what it did not carry, then stores the checkpoint.</summary>
    public bool SnapshotEnd { get; init; }
}

/// <summary>What a reviewer (or a curator) thinks of an exchange's entry.</summary>
public enum OpinionKind
{
    /// <summary>Confirmed: the entry matched what it says (NCMEC affirmative / upvote).</summary>
    TruePositive,

    /// <summary>The entry matched benign content (NCMEC negative with a reason).</summary>
    FalsePositive,

    /// <summary>Seen only (no verdict); types without it ignore it.</summary>
    Seen,
}

/// <summary>An opinion on one entry's fingerprint, to write back to the exchange.</summary>
/// <param name="ExternalId">The entry's id as the exchange gave it (NCMEC: <c>{member}-{entry}</c>).</param>
/// <param name="SignalType">The Warden signal type of the fingerprint the opinion is about (md5, sha1, pdq, ...).</param>
/// <param name="Kind">Verdict.</param>
/// <param name="ReasonId">For a false positive: the exchange's reason id (NCMEC: a GUID from the reasons list); null picks the only one.</param>
public sealed record ExchangeOpinion(string ExternalId, string SignalType, OpinionKind Kind, string? ReasonId);

/// <summary>Sends opinions to an exchange.</summary>
public interface IExchangeFeedbackWriter
{
    /// <summary>Sends one opinion; throws <see cref="ExchangeException"/> when the exchange refuses or cannot be reached.</summary>
    Task SendAsync(ExchangeOpinion opinion, CancellationToken cancellationToken);
}

/// <summary>A config field as the schema endpoint describes it (HMA's field descriptor shape).</summary>
/// <param name="Name">JSON property name.</param>
/// <param name="Type">"string", "number", "boolean", "enum", "list_of_number", "list_of_string".</param>
/// <param name="Required">True when the config must give it.</param>
/// <param name="Default">The default, as JSON text, or null.</param>
/// <param name="Help">What it means.</param>
/// <param name="Choices">For "enum": the allowed values.</param>
public sealed record ExchangeField(string Name, string Type, bool Required, string? Default, string Help, IReadOnlyList<string>? Choices = null);

/// <summary>A type's config schema and, when it uses them, its credentials' fields.</summary>
/// <param name="Config">Config fields.</param>
/// <param name="Credentials">Credential fields (never stored: they name environment variables or files), or null.</param>
public sealed record ExchangeSchema(IReadOnlyList<ExchangeField> Config, IReadOnlyList<ExchangeField>? Credentials);

/// <summary>A config that fails validation; the message says which field and why.</summary>
public sealed class ExchangeConfigException : Exception
{
    public ExchangeConfigException()
    {
    }

    public ExchangeConfigException(string message)
        : base(message)
    {
    }

    public ExchangeConfigException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>A fetch or send that failed (HTTP status, malformed page, missing credentials).</summary>
public sealed class ExchangeException : Exception
{
    public ExchangeException()
    {
    }

    public ExchangeException(string message)
        : base(message)
    {
    }

    public ExchangeException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>The HTTP status that ended the attempt, when there was one.</summary>
    public int? StatusCode { get; init; }

    /// <summary>How long the exchange asked us to wait (Retry-After), when it did.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Trying again unchanged cannot help (a malformed entry id, an unsupported fingerprint type).</summary>
    public bool Permanent { get; init; }
}

/// <summary>The installed exchange types.</summary>
public static class ExchangeTypes
{
    /// <summary>NCMEC Hash Sharing v2.</summary>
    public static Ncmec.NcmecExchangeType Ncmec { get; } = new();

    /// <summary>A hash list file at a URL.</summary>
    public static UrlList.UrlListExchangeType UrlList { get; } = new();

    /// <summary>StopNCII.org.</summary>
    public static StopNcii.StopNciiExchangeType StopNcii { get; } = new();

    /// <summary>Meta ThreatExchange (one privacy group).</summary>
    public static ThreatExchange.ThreatExchangeType ThreatExchange { get; } = new();

    /// <summary>Another Warden's or HMA's bank.</summary>
    public static Peer.PeerExchangeType Peer { get; } = new();

    /// <summary>Every type, by name.</summary>
    public static IReadOnlyList<IExchangeType> All { get; } = [Ncmec, UrlList, StopNcii, ThreatExchange, Peer];

    /// <summary>Finds a type by name (case-insensitive); null when unknown.</summary>
    public static IExchangeType? Find(string? name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase));

    /// <summary>Finds a type or throws <see cref="ExchangeConfigException"/> naming the known ones.</summary>
    public static IExchangeType Get(string? name) =>
        Find(name) ?? throw new ExchangeConfigException($"Unknown exchange type '{name}'; known types: {string.Join(", ", All.Select(t => t.Name))}.");
}

/// <summary>Credentials from where the config points (an environment variable or a file), never from the config itself.</summary>
public static class ExchangeCredentials
{
    /// <summary>
    /// Reads <c>user:password</c> from the environment variable <paramref name="variable"/> or, when that is null, the
    /// file <paramref name="file"/> (first line). Throws <see cref="ExchangeException"/> naming where it looked (never
    /// the value) when neither gives a non-empty user and password.
    /// </summary>
    public static (string User, string Password) UserPassword(string? variable, string? file, ExchangeRuntime runtime)
    {
        var (text, where) = ExchangeSecrets.FirstLine(variable, file, runtime, "credentials", "No credentials configured: set credentials_env (an environment variable holding user:password) or credentials_file.");
        if (string.IsNullOrEmpty(text))
        {
            throw new ExchangeException($"No credentials in the {where} (expected user:password).");
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var user = colon < 0 ? string.Empty : text[..colon].Trim();
        var password = colon < 0 ? string.Empty : text[(colon + 1)..].TrimEnd('\r', '\n');
        if (user.Length == 0 || password.Length == 0)
        {
            throw new ExchangeException($"The {where} does not hold user:password.");
        }

        return (user, password);
    }
}
