using System.Text.Json;
using System.Text.Json.Serialization;

namespace Warden.Cli.Backfill;

/// <summary>
/// One unit of work: a file path, an http(s) URL or an s3:// object to backfill, or (kind "retro") one task of a
/// fanned-out retroactive delta, whose source is the task's key in the database; with its idempotency key.
/// </summary>
/// <param name="Key">Idempotency key (hex SHA-256 of the source): a repeated delivery or re-enqueue of the same source is processed once.</param>
/// <param name="Source">What to read, or the retroactive task's key.</param>
/// <param name="Uploader">The uploader to attribute the content to, if known.</param>
/// <param name="Kind">Null for content to backfill; <see cref="RetroKind"/> for a retroactive task.</param>
internal sealed record WorkItem(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("uploader")] string? Uploader,
    [property: JsonPropertyName("kind"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Kind = null)
{
    /// <summary>Why a source URL with a user name or password is refused.</summary>
    public const string CredentialsRefused =
        "a URL with a user name or password is refused (the source is kept in the queue, the signal log and messages); give a URL the workers can read without them";

    /// <summary>The kind of a retroactive task.</summary>
    public const string RetroKind = "retro";

    /// <summary>The item for a source.</summary>
    public static WorkItem For(string source, string? uploader) =>
        new(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(source))), source, uploader);

    /// <summary>The item for a retroactive task (by its key in retro_tasks).</summary>
    public static WorkItem Retro(string taskKey) => For(taskKey, null) with { Kind = RetroKind };

    /// <summary>The wire form.</summary>
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this);

    /// <summary>Parses the wire form; null with the reason when it is not an item (a poison message).</summary>
    public static WorkItem? Parse(ReadOnlySpan<byte> data, out string? reason)
    {
        reason = null;
        try
        {
            var item = JsonSerializer.Deserialize<WorkItem>(data);
            if (item is null || string.IsNullOrWhiteSpace(item.Source) || item.Key is not { Length: 64 } || !item.Key.All(char.IsAsciiHexDigitLower))
            {
                reason = "not a backfill item (needs a source and a 64-hex-digit key)";
                return null;
            }

            if (item.Kind is null && item.Source.Contains("://", StringComparison.Ordinal) && UrlCredentials.Of(item.Source) is not null)
            {
                reason = "not a backfill item: " + CredentialsRefused;
                return null;
            }

            if (Core.Banks.UploaderIds.Problem(item.Uploader) is { } uploaderProblem)
            {
                reason = "not a backfill item: " + uploaderProblem;
                return null;
            }

            if (item.Kind is not (null or RetroKind))
            {
                reason = $"not a backfill item: unknown kind '{item.Kind}'";
                return null;
            }

            return item;
        }
        catch (JsonException ex)
        {
            reason = "not a backfill item: " + ex.Message;
            return null;
        }
    }
}

/// <summary>The queue's counters (what 'warden backfill status' shows).</summary>
/// <param name="Enqueued">Items ever accepted.</param>
/// <param name="Waiting">Items not yet finished (waiting or in flight).</param>
/// <param name="InFlight">Items handed to a worker and not yet acknowledged.</param>
/// <param name="DeadLettered">Items set aside as poison.</param>
internal sealed record QueueState(long Enqueued, long Waiting, long InFlight, long DeadLettered);

/// <summary>An item handed to one worker until it is acknowledged, retried or dead-lettered.</summary>
internal interface IWorkLease
{
    /// <summary>The raw message.</summary>
    ReadOnlyMemory<byte> Data { get; }

    /// <summary>How many times this item has been handed out (1 on the first delivery).</summary>
    long Deliveries { get; }

    /// <summary>Done: never hand it out again.</summary>
    Task AckAsync(CancellationToken cancellationToken);

    /// <summary>Failed for now: hand it out again later.</summary>
    Task RetryAsync(CancellationToken cancellationToken);

    /// <summary>Still working: extend the lease.</summary>
    Task InProgressAsync(CancellationToken cancellationToken);

    /// <summary>Poison: keep it aside with the reason and never hand it out again.</summary>
    Task DeadLetterAsync(string reason, CancellationToken cancellationToken);
}

/// <summary>
/// The work queue behind 'warden backfill' and 'warden worker': at-least-once delivery with leases. NATS
/// JetStream implements it (<see cref="NatsWorkQueue"/>); another broker (Kafka) needs only these calls — see
/// docs/operations.md for what that takes.
/// </summary>
internal interface IWorkQueue : IAsyncDisposable
{
    /// <summary>Creates the queue's stream and consumer if missing (idempotent).</summary>
    Task EnsureAsync(CancellationToken cancellationToken);

    /// <summary>Adds an item; false when the same key was already accepted within the broker's duplicate window.</summary>
    Task<bool> EnqueueAsync(WorkItem item, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="max"/> leased items, waiting up to <paramref name="wait"/> for the first.</summary>
    Task<IReadOnlyList<IWorkLease>> TakeAsync(int max, TimeSpan wait, CancellationToken cancellationToken);

    /// <summary>The counters.</summary>
    Task<QueueState> StateAsync(CancellationToken cancellationToken);

    /// <summary>The dead-lettered items with their reasons (most recent last, at most <paramref name="limit"/>).</summary>
    Task<IReadOnlyList<(string Data, string Reason)>> DeadLettersAsync(int limit, CancellationToken cancellationToken);
}
