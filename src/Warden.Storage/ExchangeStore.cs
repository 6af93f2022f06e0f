using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Warden.Storage;

/// <summary>An exchange: where a bank's entries come from.</summary>
/// <param name="Id">Storage id.</param>
/// <param name="Name">Unique name.</param>
/// <param name="Type">Exchange type name (ncmec, ...).</param>
/// <param name="BankId">The bank it fills.</param>
/// <param name="BankName">That bank's name.</param>
/// <param name="Config">The validated config (JSON text; names credentials, never holds them).</param>
/// <param name="Enabled">Disabled exchanges are not fetched by the scheduler.</param>
/// <param name="FeedbackEnabled">Reviewer decisions on its entries are sent back as opinions (opt-in).</param>
/// <param name="IntervalSeconds">Seconds between scheduled fetches.</param>
/// <param name="CreatedAt">Creation time.</param>
public sealed record Exchange(long Id, string Name, string Type, long BankId, string BankName, string Config, bool Enabled, bool FeedbackEnabled, long IntervalSeconds, DateTimeOffset CreatedAt);

/// <summary>Where an exchange's sync stands.</summary>
/// <param name="Checkpoint">The committed checkpoint (the type's text), or null before the first commit.</param>
/// <param name="CheckpointTime">The time the checkpoint has reached, or null.</param>
/// <param name="FetchStartedAt">When the running fetch started (null when none runs).</param>
/// <param name="LastFetchAt">When the last fetch ended.</param>
/// <param name="LastSuccessAt">When a fetch last ended well.</param>
/// <param name="LastSucceeded">Whether the last fetch ended well (null before any).</param>
/// <param name="UpToDate">The last fetch read the feed to its end.</param>
/// <param name="LastError">The last failure's message.</param>
/// <param name="EntriesFetched">Live entries fetched, all runs together.</param>
/// <param name="TombstonesFetched">Deleted entries fetched.</param>
/// <param name="UnsupportedFetched">Fingerprints of types Warden does not match (PhotoDNA, large fingerprints).</param>
/// <param name="Errors">Failed fetches plus malformed entries skipped.</param>
/// <param name="NextFetchAt">When the scheduler fetches next.</param>
/// <param name="Failures">Failed fetches in a row (backoff).</param>
/// <param name="LeaseOwner">Who holds the fetch lease, or null.</param>
public sealed record ExchangeState(
    string? Checkpoint,
    DateTimeOffset? CheckpointTime,
    DateTimeOffset? FetchStartedAt,
    DateTimeOffset? LastFetchAt,
    DateTimeOffset? LastSuccessAt,
    bool? LastSucceeded,
    bool UpToDate,
    string? LastError,
    long EntriesFetched,
    long TombstonesFetched,
    long UnsupportedFetched,
    long Errors,
    DateTimeOffset NextFetchAt,
    int Failures,
    string? LeaseOwner);

/// <summary>A queued opinion for an exchange (the feedback outbox).</summary>
/// <param name="Id">Outbox id.</param>
/// <param name="ExchangeId">Exchange.</param>
/// <param name="IdempotencyKey">Unique key: the same decision is queued (and sent) once.</param>
/// <param name="ExternalId">The entry's exchange id.</param>
/// <param name="SignalType">The fingerprint's signal type.</param>
/// <param name="Opinion">"true_positive", "false_positive" or "seen".</param>
/// <param name="ReasonId">Reason id for a false positive.</param>
/// <param name="Status">"pending", "sent" or "failed" (gave up).</param>
/// <param name="Attempts">Tries so far.</param>
/// <param name="LastError">Last failure.</param>
/// <param name="CreatedAt">Queued at.</param>
/// <param name="SentAt">Acknowledged at.</param>
public sealed record ExchangeFeedback(long Id, long ExchangeId, string IdempotencyKey, string ExternalId, string SignalType, string Opinion, string? ReasonId, string Status, int Attempts, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? SentAt);

/// <summary>
/// Exchanges, their checkpoints and status, the fetch lease and the feedback outbox, in the same database as the
/// banks ("exchanges" migration set). The checkpoint is written only by the lease holder (every write checks the
/// owner), so two nodes, or a node and a CLI, never fetch one exchange at once.
/// </summary>
public sealed partial class ExchangeStore
{
    private readonly WardenDatabase _db;

    private ExchangeStore(WardenDatabase db) => _db = db;

    /// <summary>Migrates banks and exchanges on <paramref name="database"/> and uses it (not owned).</summary>
    public static ExchangeStore Open(WardenDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        database.Migrate(BankStore.MigrationSet);
        database.Migrate(ExchangeSchema.Set);
        return new ExchangeStore(database);
    }

    /// <summary>The database.</summary>
    public WardenDatabase Database => _db;

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private T Run<T>(Func<DbConnection, T> action)
    {
        try
        {
            using var c = _db.OpenConnection();
            return action(c);
        }
        catch (DbException ex)
        {
            throw _db.Translate(ex);
        }
    }

    private static DbTransaction BeginWrite(DbConnection connection) =>
        connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : connection.BeginTransaction(IsolationLevel.ReadCommitted);

    private const string Select = "SELECT x.*, b.name AS bank_name FROM exchanges x JOIN banks b ON b.id = x.bank_id";

    /// <summary>Exchange names: letters, digits, '_', '-', '.'; 1-64, as bank names.</summary>
    public static bool IsValidName(string? name) => Warden.Core.Banks.BankNames.IsValid(name);

    /// <summary>Adds an exchange (Conflict when the name is taken).</summary>
    public Exchange Create(string name, string type, long bankId, string config, long intervalSeconds = 300, bool feedbackEnabled = false)
    {
        if (!IsValidName(name))
        {
            throw new StorageException(StorageError.Invalid, $"Invalid exchange name '{name}': letters, digits, '_', '-' or '.', 1-64, starting with a letter or digit.");
        }

        if (intervalSeconds is < 10 or > 7 * 24 * 3600)
        {
            throw new StorageException(StorageError.Invalid, "The fetch interval is 10 seconds to 7 days.");
        }

        return Run(c =>
        {
            try
            {
                var now = Now();
                c.Execute(
                    "INSERT INTO exchanges(name, type, bank_id, config, enabled, feedback_enabled, interval_seconds, created_at, updated_at, next_fetch_at) VALUES (@name, @type, @bankId, @config, 1, @feedback, @intervalSeconds, @now, @now, 0)",
                    new { name, type, bankId, config, feedback = feedbackEnabled ? 1L : 0L, intervalSeconds, now });
            }
            catch (DbException ex) when (ex is SqliteException { SqliteErrorCode: 19 } or PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
            {
                throw new StorageException(StorageError.Conflict, $"An exchange named '{name}' already exists.", ex);
            }

            return Get(c, name)!;
        });
    }

    /// <summary>All exchanges by name.</summary>
    public IReadOnlyList<Exchange> List() => Run(c => c.Query<Row>(Select + " ORDER BY x.name").Select(r => r.ToExchange()).ToList());

    /// <summary>An exchange by name, or null.</summary>
    public Exchange? Get(string name) => Run(c => Get(c, name));

    private static Exchange? Get(DbConnection c, string name) => c.QuerySingleOrDefault<Row>(Select + " WHERE x.name = @name", new { name })?.ToExchange();

    /// <summary>An exchange by name or NotFound naming the known ones.</summary>
    public Exchange Require(string name) =>
        Get(name) ?? throw new StorageException(StorageError.NotFound, $"No exchange named '{name}'." + (List() is { Count: > 0 } all ? $" Exchanges: {string.Join(", ", all.Select(x => x.Name))}." : " Add one with 'warden exchange add NAME --type ncmec ...'."));

    /// <summary>Removes an exchange (its bank and entries stay); false when there was none.</summary>
    public bool Remove(string name) => Run(c =>
    {
        using var tx = BeginWrite(c);
        var id = c.ExecuteScalar<long?>("SELECT id FROM exchanges WHERE name = @name", new { name }, tx);
        if (id is null)
        {
            return false;
        }

        c.Execute("DELETE FROM exchange_feedback WHERE exchange_id = @id", new { id }, tx);
        c.Execute("DELETE FROM exchanges WHERE id = @id", new { id }, tx);
        tx.Commit();
        return true;
    });

    /// <summary>Changes switches; null leaves a field as it is.</summary>
    public Exchange Update(string name, bool? enabled = null, bool? feedbackEnabled = null, long? intervalSeconds = null, string? config = null)
    {
        var x = Require(name);
        if (intervalSeconds is < 10 or > 7 * 24 * 3600)
        {
            throw new StorageException(StorageError.Invalid, "The fetch interval is 10 seconds to 7 days.");
        }

        Run(c => c.Execute(
            "UPDATE exchanges SET enabled = @enabled, feedback_enabled = @feedback, interval_seconds = @interval, config = @config, updated_at = @now, next_fetch_at = CASE WHEN @enabled = 1 AND enabled = 0 THEN 0 ELSE next_fetch_at END WHERE id = @id",
            new
            {
                id = x.Id,
                enabled = (enabled ?? x.Enabled) ? 1L : 0L,
                feedback = (feedbackEnabled ?? x.FeedbackEnabled) ? 1L : 0L,
                interval = intervalSeconds ?? x.IntervalSeconds,
                config = config ?? x.Config,
                now = Now(),
            }));
        return Require(name);
    }

    /// <summary>The sync state of an exchange.</summary>
    public ExchangeState State(long id) => Run(c => c.QuerySingle<Row>(Select + " WHERE x.id = @id", new { id }).ToState());

    /// <summary>Exchanges due for a scheduled fetch: enabled, next_fetch_at passed, lease free or expired.</summary>
    public IReadOnlyList<Exchange> Due(DateTimeOffset now) => Run(c =>
        c.Query<Row>(Select + " WHERE x.enabled = 1 AND x.next_fetch_at <= @now AND (x.lease_owner IS NULL OR x.lease_until < @now) ORDER BY x.next_fetch_at", new { now = now.ToUnixTimeMilliseconds() })
            .Select(r => r.ToExchange()).ToList());

    /// <summary>
    /// Takes the fetch lease of exchange <paramref name="id"/> for <paramref name="ttl"/>: true when this owner now
    /// holds it. Free, expired, already ours, or held by a process on this host that no longer runs (a fetch killed
    /// with SIGKILL leaves its lease behind) count as free.
    /// </summary>
    public bool TryAcquireLease(long id, string owner, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return Run(c =>
        {
            var now = Now();
            var current = c.QuerySingleOrDefault<(string? Owner, long? Until)>("SELECT lease_owner, lease_until FROM exchanges WHERE id = @id", new { id });
            var dead = current.Owner is { } o && current.Until >= now && LeaseOwner.IsDeadLocal(o) ? o : null;
            return c.Execute(
                "UPDATE exchanges SET lease_owner = @owner, lease_until = @until, fetch_started_at = @now WHERE id = @id AND (lease_owner IS NULL OR lease_until < @now OR lease_owner = @owner OR lease_owner = @dead)",
                new { id, owner, until = now + (long)ttl.TotalMilliseconds, now, dead }) == 1;
        });
    }

    /// <summary>Extends a held lease; false when this owner no longer holds it.</summary>
    public bool RenewLease(long id, string owner, TimeSpan ttl) => Run(c =>
        c.Execute("UPDATE exchanges SET lease_until = @until WHERE id = @id AND lease_owner = @owner", new { id, owner, until = Now() + (long)ttl.TotalMilliseconds }) == 1);

    /// <summary>
    /// Records committed progress: the checkpoint (only forward) and the counts, if <paramref name="owner"/> still holds
    /// the lease; false otherwise (the caller must stop: someone else fetches now).
    /// </summary>
    public bool CommitProgress(long id, string owner, string checkpoint, DateTimeOffset? checkpointTime, long entries, long tombstones, long unsupported, long errors) => Run(c =>
        c.Execute(
            "UPDATE exchanges SET checkpoint = @checkpoint, checkpoint_time = @time, entries_fetched = entries_fetched + @entries, tombstones_fetched = tombstones_fetched + @tombstones, unsupported_fetched = unsupported_fetched + @unsupported, errors = errors + @errors, lease_until = @until WHERE id = @id AND lease_owner = @owner AND (checkpoint_time IS NULL OR @time IS NULL OR checkpoint_time <= @time)",
            new { id, owner, checkpoint, time = checkpointTime?.ToUnixTimeMilliseconds(), entries, tombstones, unsupported, errors, until = Now() + 120_000 }) == 1);

    /// <summary>Ends a fetch: status, next scheduled time, lease released.</summary>
    public void CompleteFetch(long id, string owner, bool succeeded, bool upToDate, string? error, DateTimeOffset nextFetchAt) => Run(c =>
    {
        var now = Now();
        return c.Execute(
            """
            UPDATE exchanges SET fetch_started_at = NULL, last_fetch_at = @now, last_succeeded = @ok,
                last_success_at = CASE WHEN @ok = 1 THEN @now ELSE last_success_at END,
                up_to_date = @upToDate, last_error = @error, errors = errors + (1 - @ok),
                failures = CASE WHEN @ok = 1 THEN 0 ELSE failures + 1 END,
                next_fetch_at = @next, lease_owner = NULL, lease_until = NULL
            WHERE id = @id AND lease_owner = @owner
            """,
            new { id, owner, now, ok = succeeded ? 1L : 0L, upToDate = upToDate ? 1L : 0L, error, next = nextFetchAt.ToUnixTimeMilliseconds() });
    });

    /// <summary>Asks the scheduler to fetch now (the API's "fetch now").</summary>
    public void RequestFetch(long id) => Run(c => c.Execute("UPDATE exchanges SET next_fetch_at = 0 WHERE id = @id", new { id }));

    /// <summary>Queues an opinion; false when the idempotency key was queued before (nothing is added).</summary>
    public bool EnqueueFeedback(long exchangeId, string idempotencyKey, string externalId, string signalType, string opinion, string? reasonId) => Run(c =>
    {
        try
        {
            return c.Execute(
                "INSERT INTO exchange_feedback(exchange_id, idempotency_key, external_id, signal_type, opinion, reason_id, status, attempts, next_attempt_at, created_at) VALUES (@exchangeId, @idempotencyKey, @externalId, @signalType, @opinion, @reasonId, 'pending', 0, 0, @now) ON CONFLICT(idempotency_key) DO NOTHING",
                new { exchangeId, idempotencyKey, externalId, signalType, opinion, reasonId, now = Now() }) == 1;
        }
        catch (DbException ex) when (ex is SqliteException { SqliteErrorCode: 19 } or PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return false;
        }
    });

    /// <summary>
    /// Claims up to <paramref name="limit"/> pending opinions due now for <paramref name="owner"/> for
    /// <paramref name="ttl"/> (a claim that is not marked sent or failed in time goes back to the queue).
    /// </summary>
    public IReadOnlyList<ExchangeFeedback> ClaimFeedback(string owner, TimeSpan ttl, int limit = 20) => Run(c =>
    {
        var now = Now();
        using var tx = BeginWrite(c);
        var ids = c.Query<long>(
            "SELECT id FROM exchange_feedback WHERE status = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now) ORDER BY id LIMIT @limit" + (c is NpgsqlConnection ? " FOR UPDATE SKIP LOCKED" : string.Empty),
            new { now, limit = (long)limit }, tx).ToList();
        foreach (var id in ids)
        {
            c.Execute("UPDATE exchange_feedback SET lease_owner = @owner, lease_until = @until, attempts = attempts + 1 WHERE id = @id", new { id, owner, until = now + (long)ttl.TotalMilliseconds }, tx);
        }

        var rows = ids.Count == 0 ? [] : c.Query<FeedbackRow>($"SELECT * FROM exchange_feedback WHERE id IN ({string.Join(",", ids)}) ORDER BY id", transaction: tx).Select(r => r.ToFeedback()).ToList();
        tx.Commit();
        return (IReadOnlyList<ExchangeFeedback>)rows;
    });

    /// <summary>Marks a claimed opinion sent (only by its claimant).</summary>
    public bool MarkFeedbackSent(long id, string owner) => Run(c =>
        c.Execute("UPDATE exchange_feedback SET status = 'sent', sent_at = @now, lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id = @id AND lease_owner = @owner AND status = 'pending'", new { id, owner, now = Now() }) == 1);

    /// <summary>Records a failed attempt: retried at <paramref name="retryAt"/>, or given up when null (never revives a recalled one).</summary>
    public void MarkFeedbackFailed(long id, string owner, string error, DateTimeOffset? retryAt) => Run(c =>
        c.Execute(
            "UPDATE exchange_feedback SET status = CASE WHEN @retry IS NULL THEN 'failed' ELSE 'pending' END, next_attempt_at = COALESCE(@retry, next_attempt_at), last_error = @error, lease_owner = NULL, lease_until = NULL WHERE id = @id AND lease_owner = @owner AND status = 'pending'",
            new { id, owner, error, retry = retryAt?.ToUnixTimeMilliseconds() }));

    /// <summary>Outbox rows of an exchange, newest first.</summary>
    public IReadOnlyList<ExchangeFeedback> ListFeedback(long exchangeId, int limit = 100) => Run(c =>
        c.Query<FeedbackRow>("SELECT * FROM exchange_feedback WHERE exchange_id = @exchangeId ORDER BY id DESC LIMIT @limit", new { exchangeId, limit = (long)limit }).Select(r => r.ToFeedback()).ToList());

    private static DateTimeOffset? Time(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;

    private sealed class Row
    {
        public long Id { get; set; }

        public string Name { get; set; } = string.Empty;

        public string Type { get; set; } = string.Empty;

        public long Bank_Id { get; set; }

        public string Bank_Name { get; set; } = string.Empty;

        public string Config { get; set; } = "{}";

        public long Enabled { get; set; }

        public long Feedback_Enabled { get; set; }

        public long Interval_Seconds { get; set; }

        public long Created_At { get; set; }

        public string? Checkpoint { get; set; }

        public long? Checkpoint_Time { get; set; }

        public long? Fetch_Started_At { get; set; }

        public long? Last_Fetch_At { get; set; }

        public long? Last_Success_At { get; set; }

        public long? Last_Succeeded { get; set; }

        public long Up_To_Date { get; set; }

        public string? Last_Error { get; set; }

        public long Entries_Fetched { get; set; }

        public long Tombstones_Fetched { get; set; }

        public long Unsupported_Fetched { get; set; }

        public long Errors { get; set; }

        public long Next_Fetch_At { get; set; }

        public long Failures { get; set; }

        public string? Lease_Owner { get; set; }

        public long? Lease_Until { get; set; }

        public Exchange ToExchange() => new(Id, Name, Type, Bank_Id, Bank_Name, Config, Enabled != 0, Feedback_Enabled != 0, Interval_Seconds, DateTimeOffset.FromUnixTimeMilliseconds(Created_At));

        public ExchangeState ToState() => new(
            Checkpoint,
            Time(Checkpoint_Time),
            Lease_Owner is not null && Lease_Until >= Now() ? Time(Fetch_Started_At) : null,
            Time(Last_Fetch_At),
            Time(Last_Success_At),
            Last_Succeeded is { } s ? s != 0 : null,
            Up_To_Date != 0,
            Last_Error,
            Entries_Fetched,
            Tombstones_Fetched,
            Unsupported_Fetched,
            Errors,
            DateTimeOffset.FromUnixTimeMilliseconds(Next_Fetch_At),
            (int)Failures,
            Lease_Owner is not null && Lease_Until >= Now() ? Lease_Owner : null);
    }

    private sealed class FeedbackRow
    {
        public long Id { get; set; }

        public long Exchange_Id { get; set; }

        public string Idempotency_Key { get; set; } = string.Empty;

        public string External_Id { get; set; } = string.Empty;

        public string Signal_Type { get; set; } = string.Empty;

        public string Opinion { get; set; } = string.Empty;

        public string? Reason_Id { get; set; }

        public string Status { get; set; } = string.Empty;

        public long Attempts { get; set; }

        public string? Last_Error { get; set; }

        public long Created_At { get; set; }

        public long? Sent_At { get; set; }

        public ExchangeFeedback ToFeedback() => new(Id, Exchange_Id, Idempotency_Key, External_Id, Signal_Type, Opinion, Reason_Id, Status, (int)Attempts, Last_Error, DateTimeOffset.FromUnixTimeMilliseconds(Created_At), Time(Sent_At));
    }
}

/// <summary>Lease owner names: <c>host/pid/start-ticks/random</c>, so a dead local holder can be recognised.</summary>
public static class LeaseOwner
{
    /// <summary>A fresh owner name for this process.</summary>
    public static string Create()
    {
        using var me = Process.GetCurrentProcess();
        return string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}/{Environment.ProcessId}/{me.StartTime.ToUniversalTime().Ticks}/{Guid.NewGuid():N}");
    }

    /// <summary>True when <paramref name="owner"/> names a process on this host that is no longer running.</summary>
    public static bool IsDeadLocal(string owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var parts = owner.Split('/');
        if (parts.Length != 4 || parts[0] != Environment.MachineName
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks))
        {
            return false;
        }

        try
        {
            using var p = Process.GetProcessById(pid);
            return p.HasExited || p.StartTime.ToUniversalTime().Ticks != ticks; // a reused pid is another process
        }
        catch (ArgumentException)
        {
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }
}

/// <summary>The "exchanges" migration set.</summary>
internal static class ExchangeSchema
{
    public static IMigrationSet Set { get; } = new MigrationSet("exchanges",
    [
        new Migration(
            1,
            Sqlite: """
            CREATE TABLE exchanges (
                id                  INTEGER PRIMARY KEY AUTOINCREMENT,
                name                TEXT    NOT NULL UNIQUE,
                type                TEXT    NOT NULL,
                bank_id             INTEGER NOT NULL REFERENCES banks(id),
                config              TEXT    NOT NULL,
                enabled             INTEGER NOT NULL DEFAULT 1,
                feedback_enabled    INTEGER NOT NULL DEFAULT 0,
                interval_seconds    INTEGER NOT NULL DEFAULT 300,
                created_at          INTEGER NOT NULL,
                updated_at          INTEGER NOT NULL,
                checkpoint          TEXT    NULL,
                checkpoint_time     INTEGER NULL,
                fetch_started_at    INTEGER NULL,
                last_fetch_at       INTEGER NULL,
                last_success_at     INTEGER NULL,
                last_succeeded      INTEGER NULL,
                up_to_date          INTEGER NOT NULL DEFAULT 0,
                last_error          TEXT    NULL,
                entries_fetched     INTEGER NOT NULL DEFAULT 0,
                tombstones_fetched  INTEGER NOT NULL DEFAULT 0,
                unsupported_fetched INTEGER NOT NULL DEFAULT 0,
                errors              INTEGER NOT NULL DEFAULT 0,
                next_fetch_at       INTEGER NOT NULL DEFAULT 0,
                failures            INTEGER NOT NULL DEFAULT 0,
                lease_owner         TEXT    NULL,
                lease_until         INTEGER NULL
            );
            CREATE TABLE exchange_feedback (
                id              INTEGER PRIMARY KEY AUTOINCREMENT,
                exchange_id     INTEGER NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
                idempotency_key TEXT    NOT NULL UNIQUE,
                external_id     TEXT    NOT NULL,
                signal_type     TEXT    NOT NULL,
                opinion         TEXT    NOT NULL,
                reason_id       TEXT    NULL,
                status          TEXT    NOT NULL,
                attempts        INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL DEFAULT 0,
                last_error      TEXT    NULL,
                created_at      INTEGER NOT NULL,
                sent_at         INTEGER NULL,
                lease_owner     TEXT    NULL,
                lease_until     INTEGER NULL
            );
            CREATE INDEX ix_exchange_feedback_pending ON exchange_feedback(status, next_attempt_at);
            """,
            Postgres: """
            CREATE TABLE exchanges (
                id                  BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                name                TEXT COLLATE "C" NOT NULL UNIQUE,
                type                TEXT   NOT NULL,
                bank_id             BIGINT NOT NULL REFERENCES banks(id),
                config              TEXT   NOT NULL,
                enabled             BIGINT NOT NULL DEFAULT 1,
                feedback_enabled    BIGINT NOT NULL DEFAULT 0,
                interval_seconds    BIGINT NOT NULL DEFAULT 300,
                created_at          BIGINT NOT NULL,
                updated_at          BIGINT NOT NULL,
                checkpoint          TEXT   NULL,
                checkpoint_time     BIGINT NULL,
                fetch_started_at    BIGINT NULL,
                last_fetch_at       BIGINT NULL,
                last_success_at     BIGINT NULL,
                last_succeeded      BIGINT NULL,
                up_to_date          BIGINT NOT NULL DEFAULT 0,
                last_error          TEXT   NULL,
                entries_fetched     BIGINT NOT NULL DEFAULT 0,
                tombstones_fetched  BIGINT NOT NULL DEFAULT 0,
                unsupported_fetched BIGINT NOT NULL DEFAULT 0,
                errors              BIGINT NOT NULL DEFAULT 0,
                next_fetch_at       BIGINT NOT NULL DEFAULT 0,
                failures            BIGINT NOT NULL DEFAULT 0,
                lease_owner         TEXT   NULL,
                lease_until         BIGINT NULL
            );
            CREATE TABLE exchange_feedback (
                id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                exchange_id     BIGINT NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
                idempotency_key TEXT   NOT NULL UNIQUE,
                external_id     TEXT   NOT NULL,
                signal_type     TEXT   NOT NULL,
                opinion         TEXT   NOT NULL,
                reason_id       TEXT   NULL,
                status          TEXT   NOT NULL,
                attempts        BIGINT NOT NULL DEFAULT 0,
                next_attempt_at BIGINT NOT NULL DEFAULT 0,
                last_error      TEXT   NULL,
                created_at      BIGINT NOT NULL,
                sent_at         BIGINT NULL,
                lease_owner     TEXT   NULL,
                lease_until     BIGINT NULL
            );
            CREATE INDEX ix_exchange_feedback_pending ON exchange_feedback(status, next_attempt_at);
            """),
    ]);
}
