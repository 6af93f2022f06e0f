namespace Warden.Review.Storage;

/// <summary>
/// Every SQL statement of Warden.Review in one place, so the schema can be ported to PostgreSQL as one
/// migration set. The SQL is deliberately portable: integer ids and Unix-millisecond times, TEXT for
/// strings/JSON, BLOB (PostgreSQL: BYTEA) for hashes, no SQLite-only functions in queries. The
/// SQLite-specific parts: the append-only triggers (PostgreSQL: a trigger function that RAISEs),
/// <c>INTEGER PRIMARY KEY AUTOINCREMENT</c> (PostgreSQL: <c>BIGSERIAL</c>/identity) and
/// <c>last_insert_rowid()</c> in SqliteDeliveryStore (PostgreSQL: <c>RETURNING id</c>).
/// </summary>
internal static class ReviewSql
{
    /// <summary>Numbered migrations, recorded in <c>review_schema_version</c> (its own table, so the file can be shared with Warden.Storage).</summary>
    public static IReadOnlyList<(int Version, string Sql)> Migrations { get; } =
    [
        (1, """
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
            """),
        (2, """
            -- Dead-lettering: the step that keeps failing (failures counts its consecutive failures) and the
            -- restarts since the delivery was queued or requeued.
            ALTER TABLE report_deliveries ADD COLUMN failure_key TEXT NULL;
            ALTER TABLE report_deliveries ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
            """),
    ];

    // ---- audit ----
    public const string AuditLast = "SELECT seq AS Seq, hash AS Hash FROM audit_log ORDER BY seq DESC LIMIT 1";

    public const string AuditInsert = """
        INSERT INTO audit_log(seq, at_ms, actor, action, subject, details, prev_hash, hash)
        VALUES (@Seq, @AtMs, @Actor, @Action, @Subject, @Details, @PrevHash, @Hash)
        """;

    public const string AuditSelectColumns = "SELECT seq AS Seq, at_ms AS AtMs, actor AS Actor, action AS Action, subject AS Subject, details AS Details, prev_hash AS PrevHash, hash AS Hash FROM audit_log";

    public const string AuditPage = AuditSelectColumns + " WHERE seq > @After ORDER BY seq LIMIT @Limit";

    /// <summary>Filter: a NULL parameter means "any".</summary>
    public const string AuditQuery = AuditSelectColumns + """
         WHERE seq > @After
           AND (@Actor IS NULL OR actor = @Actor)
           AND (@Action IS NULL OR action = @Action)
           AND (@Subject IS NULL OR subject = @Subject)
           AND (@FromMs IS NULL OR at_ms >= @FromMs)
           AND (@ToMs IS NULL OR at_ms < @ToMs)
         ORDER BY seq LIMIT @Limit
        """;

    // ---- evidence ----
    public const string EvidenceInsert = """
        INSERT INTO evidence_items(id, case_id, key_id, size, captured_at, reported_at, retain_until, legal_hold, hold_reason, destroyed_at)
        VALUES (@Id, @CaseId, @KeyId, @Size, @CapturedAt, NULL, @RetainUntil, 0, NULL, NULL)
        """;

    public const string EvidenceSelectColumns = "SELECT id AS Id, case_id AS CaseId, key_id AS KeyId, size AS Size, captured_at AS CapturedAt, reported_at AS ReportedAt, retain_until AS RetainUntil, legal_hold AS LegalHold, hold_reason AS HoldReason, destroyed_at AS DestroyedAt FROM evidence_items";

    public const string EvidenceGet = EvidenceSelectColumns + " WHERE id = @Id";

    public const string EvidenceDue = EvidenceSelectColumns + " WHERE destroyed_at IS NULL AND legal_hold = 0 AND retain_until <= @Now ORDER BY retain_until LIMIT @Limit";

    public const string EvidenceLive = EvidenceSelectColumns + " WHERE destroyed_at IS NULL ORDER BY id";

    public const string EvidenceSetReported = "UPDATE evidence_items SET reported_at = @ReportedAt, retain_until = @RetainUntil WHERE id = @Id";

    public const string EvidenceSetRetention = "UPDATE evidence_items SET retain_until = @RetainUntil WHERE id = @Id";

    public const string EvidenceSetHold = "UPDATE evidence_items SET legal_hold = @Hold, hold_reason = @Reason WHERE id = @Id";

    public const string EvidenceSetKey = "UPDATE evidence_items SET key_id = @KeyId WHERE id = @Id";

    public const string EvidenceSetDestroyed = "UPDATE evidence_items SET destroyed_at = @At WHERE id = @Id AND destroyed_at IS NULL";

    public const string EvidenceInsertDestruction = "INSERT INTO evidence_destructions(item_id, at_ms, actor, reason) VALUES (@Id, @At, @Actor, @Reason)";

    public const string EvidenceDestruction = "SELECT item_id AS ItemId, at_ms AS AtMs, actor AS Actor, reason AS Reason FROM evidence_destructions WHERE item_id = @Id";

    public const string EvidenceInsertView = "INSERT INTO evidence_views(item_id, actor, actor_kind, at_ms, what, purpose) VALUES (@ItemId, @Actor, @ActorKind, @AtMs, @What, @Purpose)";

    public const string EvidenceViews = "SELECT item_id AS ItemId, actor AS Actor, actor_kind AS ActorKind, at_ms AS AtMs, what AS What, purpose AS Purpose FROM evidence_views WHERE item_id = @Id ORDER BY id";

    public const string EvidenceHumanViewed = "SELECT COUNT(*) FROM evidence_views WHERE item_id = @Id AND actor_kind = 0 AND what = 'revealed'";

    // ---- report deliveries ----
    public const string DeliveryInsert = """
        INSERT INTO report_deliveries(case_id, destination, environment, status, document, created_at, next_attempt_at)
        VALUES (@CaseId, @Destination, @Environment, 0, @Document, @CreatedAt, @CreatedAt)
        """;

    public const string DeliveryFileInsert = """
        INSERT INTO report_delivery_files(delivery_id, idx, evidence_ref, file_name, metadata)
        VALUES (@DeliveryId, @Idx, @EvidenceRef, @FileName, @Metadata)
        """;

    public const string DeliverySelectColumns = """
        SELECT id AS Id, case_id AS CaseId, destination AS Destination, environment AS Environment, status AS Status,
               in_flight AS InFlight, report_id AS ReportId, generation AS Generation, document AS Document,
               created_at AS CreatedAt, opened_at AS OpenedAt, finished_at AS FinishedAt, failures AS Failures,
               next_attempt_at AS NextAttemptAt, last_error AS LastError, alarmed_at AS AlarmedAt, version AS Version,
               failure_key AS FailureKey, restarts AS Restarts
        FROM report_deliveries
        """;

    public const string DeliveryById = DeliverySelectColumns + " WHERE id = @Id";

    public const string DeliveryByCase = DeliverySelectColumns + " WHERE case_id = @CaseId AND destination = @Destination";

    public const string DeliveryDue = DeliverySelectColumns + " WHERE status IN (0, 1, 2) AND next_attempt_at <= @Now ORDER BY next_attempt_at LIMIT @Limit";

    /// <summary>Newest first; a NULL status means every status.</summary>
    public const string DeliveryList = DeliverySelectColumns + " WHERE (@Status IS NULL OR status = @Status) ORDER BY id DESC LIMIT @Limit";

    public const string DeliveryCount = "SELECT COUNT(*) FROM report_deliveries WHERE status = @Status";

    public const string DeliveryOpenBefore = DeliverySelectColumns + " WHERE status IN (1, 2) AND opened_at IS NOT NULL AND opened_at <= @Before ORDER BY opened_at";

    public const string DeliveryFiles = """
        SELECT delivery_id AS DeliveryId, idx AS Idx, evidence_ref AS EvidenceRef, file_name AS FileName, metadata AS Metadata,
               md5 AS Md5, file_id AS FileId, described AS Described
        FROM report_delivery_files WHERE delivery_id = @Id ORDER BY idx
        """;

    /// <summary>Optimistic concurrency: a write only lands on the version it was computed from.</summary>
    public const string DeliveryUpdate = """
        UPDATE report_deliveries SET status = @Status, in_flight = @InFlight, report_id = @ReportId, generation = @Generation,
               opened_at = @OpenedAt, finished_at = @FinishedAt, failures = @Failures, next_attempt_at = @NextAttemptAt,
               last_error = @LastError, alarmed_at = @AlarmedAt, failure_key = @FailureKey, restarts = @Restarts, version = version + 1
        WHERE id = @Id AND version = @Version
        """;

    public const string DeliveryFileUpdate = "UPDATE report_delivery_files SET md5 = @Md5, file_id = @FileId, described = @Described WHERE delivery_id = @DeliveryId AND idx = @Idx";

    public const string ReceiptInsert = """
        INSERT INTO report_receipts(delivery_id, at_ms, generation, step, outcome, http_status, response_code, request_id, request, body)
        VALUES (@DeliveryId, @AtMs, @Generation, @Step, @Outcome, @HttpStatus, @ResponseCode, @RequestId, @Request, @Body)
        """;

    public const string Receipts = """
        SELECT delivery_id AS DeliveryId, at_ms AS AtMs, generation AS Generation, step AS Step, outcome AS Outcome,
               http_status AS HttpStatus, response_code AS ResponseCode, request_id AS RequestId, request AS Request, body AS Body
        FROM report_receipts WHERE delivery_id = @Id ORDER BY id
        """;
}
