using Microsoft.Data.Sqlite;

namespace Warden.Review.Tests;

/// <summary>
/// A review file as Warden before one persistence wrote it (NAME.review.db, its own schema runners), made with
/// that version's DDL verbatim so 'warden review migrate' is tested against the real old layout.
/// </summary>
internal static class LegacyFixture
{
    /// <summary>Warden.Review's migration 1 (audit log, evidence catalogue, report outbox).</summary>
    public const string ReviewV1 = """
                CREATE TABLE audit_log (
                    seq        INTEGER PRIMARY KEY,
                    at_ms      INTEGER NOT NULL,
                    actor      TEXT    NOT NULL,
                    action     TEXT    NOT NULL,
                    subject    TEXT    NOT NULL,
                    details    TEXT    NOT NULL,
                    prev_hash  BLOB    NOT NULL,
                    hash       BLOB    NOT NULL
                );
                CREATE INDEX ix_audit_actor ON audit_log(actor, seq);
                CREATE INDEX ix_audit_subject ON audit_log(subject, seq);
                CREATE INDEX ix_audit_at ON audit_log(at_ms);
                -- Append-only: the database itself refuses edits (PostgreSQL: BEFORE UPDATE OR DELETE trigger
                -- whose function does RAISE EXCEPTION). The hash chain still catches edits made by someone who
                -- drops these triggers.
                CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
                CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

                CREATE TABLE evidence_items (
                    id             TEXT    PRIMARY KEY,
                    case_id        TEXT    NULL,
                    key_id         TEXT    NOT NULL,
                    size           INTEGER NOT NULL,
                    captured_at    INTEGER NOT NULL,
                    reported_at    INTEGER NULL,
                    retain_until   INTEGER NOT NULL,
                    legal_hold     INTEGER NOT NULL DEFAULT 0,
                    hold_reason    TEXT    NULL,
                    destroyed_at   INTEGER NULL
                );
                CREATE INDEX ix_evidence_due ON evidence_items(retain_until) WHERE destroyed_at IS NULL;
                CREATE INDEX ix_evidence_case ON evidence_items(case_id);
                CREATE TABLE evidence_views (
                    id          INTEGER PRIMARY KEY AUTOINCREMENT,
                    item_id     TEXT    NOT NULL,
                    actor       TEXT    NOT NULL,
                    actor_kind  INTEGER NOT NULL,
                    at_ms       INTEGER NOT NULL,
                    what        TEXT    NOT NULL,
                    purpose     TEXT    NOT NULL
                );
                CREATE INDEX ix_evidence_views_item ON evidence_views(item_id);
                CREATE TABLE evidence_destructions (
                    item_id  TEXT    PRIMARY KEY,
                    at_ms    INTEGER NOT NULL,
                    actor    TEXT    NOT NULL,
                    reason   TEXT    NOT NULL
                );

                CREATE TABLE report_deliveries (
                    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
                    case_id            TEXT    NOT NULL,
                    destination        TEXT    NOT NULL,
                    environment        TEXT    NOT NULL,
                    status             INTEGER NOT NULL,
                    in_flight          TEXT    NULL,
                    report_id          TEXT    NULL,
                    generation         INTEGER NOT NULL DEFAULT 0,
                    document           TEXT    NOT NULL,
                    created_at         INTEGER NOT NULL,
                    opened_at          INTEGER NULL,
                    finished_at        INTEGER NULL,
                    failures           INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at    INTEGER NOT NULL,
                    last_error         TEXT    NULL,
                    alarmed_at         INTEGER NULL,
                    version            INTEGER NOT NULL DEFAULT 0
                );
                -- One delivery per case and destination: a second enqueue of the same case is a no-op.
                CREATE UNIQUE INDEX ux_report_deliveries_case ON report_deliveries(case_id, destination);
                CREATE INDEX ix_report_deliveries_due ON report_deliveries(status, next_attempt_at);
                CREATE TABLE report_delivery_files (
                    delivery_id   INTEGER NOT NULL REFERENCES report_deliveries(id),
                    idx           INTEGER NOT NULL,
                    evidence_ref  TEXT    NOT NULL,
                    file_name     TEXT    NOT NULL,
                    metadata      TEXT    NOT NULL,
                    md5           TEXT    NULL,
                    file_id       TEXT    NULL,
                    described     INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (delivery_id, idx)
                );
                CREATE TABLE report_receipts (
                    id            INTEGER PRIMARY KEY AUTOINCREMENT,
                    delivery_id   INTEGER NOT NULL REFERENCES report_deliveries(id),
                    at_ms         INTEGER NOT NULL,
                    generation    INTEGER NOT NULL,
                    step          TEXT    NOT NULL,
                    outcome       TEXT    NOT NULL,
                    http_status   INTEGER NULL,
                    response_code INTEGER NULL,
                    request_id    TEXT    NULL,
                    request       TEXT    NULL,
                    body          TEXT    NULL
                );
                CREATE INDEX ix_report_receipts_delivery ON report_receipts(delivery_id, id);
        """;

    /// <summary>Warden.Review's migration 2 (dead-lettering columns).</summary>
    public const string ReviewV2 = """
                -- Dead-lettering: the step that keeps failing (failures counts its consecutive failures) and the
                -- restarts since the delivery was queued or requeued.
                ALTER TABLE report_deliveries ADD COLUMN failure_key TEXT NULL;
                ALTER TABLE report_deliveries ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
        """;

    /// <summary>The server's console tables (users, sessions, exposure, case log).</summary>
    public const string ConsoleV1 = """
                CREATE TABLE console_users (
                    id             INTEGER PRIMARY KEY AUTOINCREMENT,
                    username       TEXT    NOT NULL UNIQUE,
                    role           TEXT    NOT NULL,
                    password_hash  TEXT    NOT NULL,
                    created_at     INTEGER NOT NULL,
                    disabled       INTEGER NOT NULL DEFAULT 0,
                    blur           INTEGER NULL,
                    greyscale      INTEGER NULL
                );
                CREATE TABLE console_sessions (
                    token_hash  TEXT    PRIMARY KEY,
                    user_id     INTEGER NOT NULL REFERENCES console_users(id),
                    csrf        TEXT    NOT NULL,
                    created_at  INTEGER NOT NULL,
                    expires_at  INTEGER NOT NULL
                );
                CREATE TABLE console_exposure (
                    user_id  INTEGER NOT NULL,
                    day      TEXT    NOT NULL,
                    reveals  INTEGER NOT NULL,
                    PRIMARY KEY (user_id, day)
                );
                -- Cases are rebuilt at start by replaying this log in order (submissions, decisions, closes).
                CREATE TABLE case_events (
                    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind        TEXT    NOT NULL,
                    case_id     TEXT    NOT NULL,
                    cluster_id  TEXT    NULL,
                    body        TEXT    NOT NULL,
                    at_ms       INTEGER NOT NULL
                );
                CREATE INDEX ix_case_events_case ON case_events(case_id, seq);
        """;

    /// <summary>Creates the legacy file at <paramref name="path"/> (with or without review migration 2).</summary>
    public static void Create(string path, bool withV2 = true)
    {
        using var c = Open(path);
        Exec(c, "CREATE TABLE review_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        Exec(c, ReviewV1);
        Exec(c, "INSERT INTO review_schema_version VALUES (1, 0)");
        if (withV2)
        {
            Exec(c, ReviewV2);
            Exec(c, "INSERT INTO review_schema_version VALUES (2, 0)");
        }

        Exec(c, "CREATE TABLE console_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        Exec(c, ConsoleV1);
        Exec(c, "INSERT INTO console_schema_version VALUES (1, 0)");
        Exec(c, "CREATE TABLE IF NOT EXISTS console_display (user_id INTEGER PRIMARY KEY, blur_percent INTEGER NULL, size INTEGER NULL)");
    }

    /// <summary>An unpooled connection (so the file can be renamed afterwards).</summary>
    public static SqliteConnection Open(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    /// <summary>Runs SQL with @-parameters given as (name, value) pairs.</summary>
    public static void Exec(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue("@" + name, value ?? DBNull.Value);
        }

        cmd.ExecuteNonQuery();
    }
}
