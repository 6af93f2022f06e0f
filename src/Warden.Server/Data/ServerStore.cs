using System.Data.Common;
using Dapper;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Data;

/// <summary>A stored API key (never the key itself).</summary>
public sealed record ApiKeyRecord(long Id, string PublicId, string Name, Role Role, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>What a bank's matches set off.</summary>
/// <param name="Quarantine">Tell the caller to hold the content (the response's action is <c>quarantine</c>).</param>
/// <param name="Notify">Send a signed webhook to every enabled subscription.</param>
public sealed record BankAction(bool Quarantine, bool Notify)
{
    /// <summary>The default: record the match, nothing else.</summary>
    public static BankAction RecordOnly { get; } = new(false, false);
}

/// <summary>A webhook subscription.</summary>
public sealed record Webhook(long Id, string Url, bool Enabled, DateTimeOffset CreatedAt);

/// <summary>One queued webhook delivery.</summary>
public sealed record OutboxItem(long Id, long WebhookId, string IdempotencyKey, string Event, string Payload, int Attempts, string State, DateTimeOffset CreatedAt, DateTimeOffset? DeliveredAt, int? LastStatus, string? LastError);

/// <summary>One hit to record.</summary>
public sealed record MatchEvent(long BankId, long EntryId, string SignalType, int Distance, string Action);

/// <summary>An entry flagged by flood control.</summary>
public sealed record EntryFlag(long EntryId, bool Quarantined, string Reason, DateTimeOffset FlaggedAt, DateTimeOffset? ClearedAt, string? ClearedBy);

/// <summary>
/// Data access for the server's own tables, on SQLite or PostgreSQL (portable SQL; the few differences are
/// chosen by dialect). Thread-safe: every call takes a pooled connection.
/// </summary>
public sealed class ServerStore(WardenDatabase database)
{
    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static DateTimeOffset? Time(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;

    /// <summary>The database.</summary>
    public WardenDatabase Database { get; } = database;

    /// <summary>Creates the server's tables if needed.</summary>
    public void Migrate() => Database.Migrate(ServerSchema.Instance);

    private T With<T>(Func<DbConnection, T> action)
    {
        try
        {
            using var connection = Database.OpenConnection();
            return action(connection);
        }
        catch (DbException ex)
        {
            throw Database.Translate(ex);
        }
    }

    // ---- API keys ----

    /// <summary>Creates a key; the returned secret is shown once and never stored.</summary>
    public (ApiKeyRecord Record, string Key) CreateKey(string name, Role role)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var (publicId, key) = ApiKeys.Generate();
        var now = Now();
        var id = With(c => c.ExecuteScalar<long>(
            "INSERT INTO api_keys(public_id, name, role, key_hash, created_at) VALUES (@publicId, @name, @role, @hash, @now) RETURNING id",
            new { publicId, name = name.Trim(), role = Roles.Name(role), hash = ApiKeys.Hash(key), now }));
        return (new ApiKeyRecord(id, publicId, name.Trim(), role, DateTimeOffset.FromUnixTimeMilliseconds(now), null), key);
    }

    /// <summary>The live (not revoked) key with this hash, if any.</summary>
    public ApiKeyRecord? FindKey(string keyHash) => With(c => c.QuerySingleOrDefault<KeyRow>(
        "SELECT * FROM api_keys WHERE key_hash = @keyHash AND revoked_at IS NULL", new { keyHash }))?.ToRecord();

    /// <summary>Every key, newest first.</summary>
    public IReadOnlyList<ApiKeyRecord> ListKeys() => With(c => c.Query<KeyRow>("SELECT * FROM api_keys ORDER BY id DESC").Select(r => r.ToRecord()).ToList());

    /// <summary>Revokes a key; false when there is no live key with that id.</summary>
    public bool RevokeKey(long id) => With(c => c.Execute("UPDATE api_keys SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL", new { id, now = Now() }) == 1);

    // ---- bank actions ----

    /// <summary>Every bank's action (banks not listed only record).</summary>
    public IReadOnlyDictionary<long, BankAction> BankActions() => With(c => c.Query<(long BankId, long Quarantine, long Notify)>(
        "SELECT bank_id, quarantine, notify FROM bank_actions").ToDictionary(r => r.BankId, r => new BankAction(r.Quarantine != 0, r.Notify != 0)));

    /// <summary>Sets a bank's action.</summary>
    public void SetBankAction(long bankId, BankAction action) => With(c => c.Execute(
        """
        INSERT INTO bank_actions(bank_id, quarantine, notify, updated_at) VALUES (@bankId, @q, @n, @now)
        ON CONFLICT(bank_id) DO UPDATE SET quarantine = excluded.quarantine, notify = excluded.notify, updated_at = excluded.updated_at
        """,
        new { bankId, q = action.Quarantine ? 1 : 0, n = action.Notify ? 1 : 0, now = Now() }));

    // ---- webhooks ----

    /// <summary>Adds a subscription.</summary>
    public Webhook CreateWebhook(string url, string secret)
    {
        var now = Now();
        var id = With(c => c.ExecuteScalar<long>("INSERT INTO webhooks(url, secret, enabled, created_at) VALUES (@url, @secret, 1, @now) RETURNING id", new { url, secret, now }));
        return new Webhook(id, url, true, DateTimeOffset.FromUnixTimeMilliseconds(now));
    }

    /// <summary>Every subscription.</summary>
    public IReadOnlyList<Webhook> ListWebhooks() => With(c => c.Query<(long Id, string Url, long Enabled, long CreatedAt)>(
        "SELECT id, url, enabled, created_at FROM webhooks ORDER BY id").Select(r => new Webhook(r.Id, r.Url, r.Enabled != 0, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt))).ToList());

    /// <summary>Removes a subscription (queued deliveries to it are dropped when due).</summary>
    public bool DeleteWebhook(long id) => With(c => c.Execute("DELETE FROM webhooks WHERE id = @id", new { id }) == 1);

    /// <summary>The enabled subscriptions with their secrets (for signing).</summary>
    public IReadOnlyList<(long Id, string Url, string Secret)> EnabledWebhooks() => With(c => c.Query<(long, string, string)>(
        "SELECT id, url, secret FROM webhooks WHERE enabled = 1").ToList());

    // ---- matches, actions and the outbox: one transaction per request ----

    /// <summary>
    /// Records a request's hits and queues its webhook deliveries in one transaction, so an acknowledged
    /// match is never lost and never half-recorded.
    /// </summary>
    public void RecordMatches(long? keyId, string? uploaderId, string? contentSha256, IReadOnlyList<MatchEvent> events, IReadOnlyList<(long WebhookId, string IdempotencyKey, string Event, string Payload)> deliveries)
    {
        if (events.Count == 0 && deliveries.Count == 0)
        {
            return;
        }

        var now = Now();
        With(c =>
        {
            using var tx = c.BeginTransaction();
            foreach (var e in events)
            {
                c.Execute(
                    "INSERT INTO match_events(created_at, key_id, uploader_id, content_sha256, bank_id, entry_id, signal_type, distance, action) VALUES (@now, @keyId, @uploaderId, @contentSha256, @BankId, @EntryId, @SignalType, @Distance, @Action)",
                    new { now, keyId, uploaderId, contentSha256, e.BankId, e.EntryId, e.SignalType, e.Distance, e.Action }, tx);
            }

            foreach (var d in deliveries)
            {
                c.Execute(
                    "INSERT INTO webhook_outbox(webhook_id, idempotency_key, event, payload, created_at, next_attempt_at) VALUES (@WebhookId, @IdempotencyKey, @Event, @Payload, @now, @now)",
                    new { d.WebhookId, d.IdempotencyKey, d.Event, d.Payload, now }, tx);
            }

            tx.Commit();
            return 0;
        });
    }

    /// <summary>
    /// Leases up to <paramref name="limit"/> due deliveries to <paramref name="owner"/> until <paramref name="leaseUntil"/>.
    /// A node that dies mid-delivery loses its lease and another node (or itself after a restart) delivers again;
    /// the idempotency key lets the receiver drop the repeat.
    /// </summary>
    public IReadOnlyList<(OutboxItem Item, string Url, string Secret)> LeaseDue(string owner, DateTimeOffset leaseUntil, int limit)
    {
        var now = Now();
        var skipLocked = Database.Dialect == SqlDialect.Postgres ? "FOR UPDATE SKIP LOCKED" : string.Empty;
        return With(c =>
        {
            var rows = c.Query<OutboxRow>(
                $"""
                UPDATE webhook_outbox SET lease_owner = @owner, lease_until = @until
                WHERE id IN (SELECT id FROM webhook_outbox WHERE state = 'pending' AND next_attempt_at <= @now AND lease_until <= @now ORDER BY id LIMIT @limit {skipLocked})
                RETURNING *
                """,
                new { owner, until = leaseUntil.ToUnixTimeMilliseconds(), now, limit }).ToList();
            if (rows.Count == 0)
            {
                return [];
            }

            var hooks = c.Query<(long Id, string Url, string Secret)>("SELECT id, url, secret FROM webhooks").ToDictionary(h => h.Id);
            var result = new List<(OutboxItem, string, string)>(rows.Count);
            foreach (var r in rows)
            {
                if (hooks.TryGetValue(r.Webhook_Id, out var h))
                {
                    result.Add((r.ToItem(), h.Url, h.Secret));
                }
                else
                {
                    c.Execute("UPDATE webhook_outbox SET state = 'dropped', last_error = 'webhook deleted' WHERE id = @Id", new { r.Id });
                }
            }

            return result;
        });
    }

    /// <summary>Marks a delivery done (the receiver answered 2xx).</summary>
    public void MarkDelivered(long id, int status) => With(c => c.Execute(
        "UPDATE webhook_outbox SET state = 'delivered', delivered_at = @now, attempts = attempts + 1, last_status = @status, last_error = NULL, lease_until = 0 WHERE id = @id",
        new { id, status, now = Now() }));

    /// <summary>Records a failed attempt and when to try again (or gives up: state <c>dead</c>).</summary>
    public void MarkFailed(long id, int? status, string error, DateTimeOffset? retryAt) => With(c => c.Execute(
        "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = @status, last_error = @error, lease_until = 0, next_attempt_at = @next, state = @state WHERE id = @id",
        new { id, status, error, next = retryAt?.ToUnixTimeMilliseconds() ?? Now(), state = retryAt is null ? "dead" : "pending" }));

    /// <summary>Deliveries, newest first (optionally one state).</summary>
    public IReadOnlyList<OutboxItem> ListDeliveries(string? state, int limit) => With(c => c.Query<OutboxRow>(
        $"SELECT * FROM webhook_outbox {(state is null ? string.Empty : "WHERE state = @state")} ORDER BY id DESC LIMIT @limit", new { state, limit }).Select(r => r.ToItem()).ToList());

    /// <summary>Pending deliveries (for metrics and readiness).</summary>
    public long PendingDeliveries() => With(c => c.ExecuteScalar<long>("SELECT COUNT(*) FROM webhook_outbox WHERE state = 'pending'"));

    // ---- flood control ----

    /// <summary>Flags an entry as flood-quarantined (no-op if already flagged and not cleared).</summary>
    public bool FlagEntry(long entryId, string reason) => With(c => c.Execute(
        """
        INSERT INTO entry_flags(entry_id, quarantined, reason, flagged_at) VALUES (@entryId, 1, @reason, @now)
        ON CONFLICT(entry_id) DO UPDATE SET quarantined = 1, reason = excluded.reason, flagged_at = excluded.flagged_at, cleared_at = NULL, cleared_by = NULL
        WHERE entry_flags.quarantined = 0
        """,
        new { entryId, reason, now = Now() }) == 1);

    /// <summary>Clears a flag (a curator looked at it): the entry triggers actions again.</summary>
    public bool ClearFlag(long entryId, string clearedBy) => With(c => c.Execute(
        "UPDATE entry_flags SET quarantined = 0, cleared_at = @now, cleared_by = @clearedBy WHERE entry_id = @entryId AND quarantined = 1",
        new { entryId, clearedBy, now = Now() }) == 1);

    /// <summary>Flags, newest first.</summary>
    public IReadOnlyList<EntryFlag> ListFlags(bool activeOnly) => With(c => c.Query<(long EntryId, long Quarantined, string Reason, long FlaggedAt, long? ClearedAt, string? ClearedBy)>(
        $"SELECT entry_id, quarantined, reason, flagged_at, cleared_at, cleared_by FROM entry_flags {(activeOnly ? "WHERE quarantined = 1" : string.Empty)} ORDER BY flagged_at DESC")
        .Select(r => new EntryFlag(r.EntryId, r.Quarantined != 0, r.Reason, DateTimeOffset.FromUnixTimeMilliseconds(r.FlaggedAt), Time(r.ClearedAt), r.ClearedBy)).ToList());

    /// <summary>Ids of the entries flood-quarantined now.</summary>
    public IReadOnlySet<long> QuarantinedEntries() => With(c => c.Query<long>("SELECT entry_id FROM entry_flags WHERE quarantined = 1").ToHashSet());

    private sealed class KeyRow
    {
        public long Id { get; set; }

        public string Public_Id { get; set; } = string.Empty;

        public string Name { get; set; } = string.Empty;

        public string Role { get; set; } = string.Empty;

        public long Created_At { get; set; }

        public long? Revoked_At { get; set; }

        public ApiKeyRecord ToRecord() => new(Id, Public_Id, Name, Roles.TryParse(Role, out var r) ? r : throw new InvalidDataException($"API key {Public_Id} has an unknown role '{Role}'."), DateTimeOffset.FromUnixTimeMilliseconds(Created_At), Time(Revoked_At));
    }

    private sealed class OutboxRow
    {
        public long Id { get; set; }

        public long Webhook_Id { get; set; }

        public string Idempotency_Key { get; set; } = string.Empty;

        public string Event { get; set; } = string.Empty;

        public string Payload { get; set; } = string.Empty;

        public long Created_At { get; set; }

        public long Attempts { get; set; }

        public string State { get; set; } = string.Empty;

        public long? Delivered_At { get; set; }

        public long? Last_Status { get; set; }

        public string? Last_Error { get; set; }

        public OutboxItem ToItem() => new(Id, Webhook_Id, Idempotency_Key, Event, Payload, (int)Attempts, State, DateTimeOffset.FromUnixTimeMilliseconds(Created_At), Time(Delivered_At), (int?)Last_Status, Last_Error);
    }
}
