namespace Warden.Storage;

/// <summary>
/// The signal log's fixed tables (the "signal_log" <see cref="IMigrationSet"/>) and the DDL of one day's
/// partition, created on first use. Times are Unix milliseconds; days are yyyymmdd integers.
/// </summary>
internal static class SignalLogSchema
{
    public static IMigrationSet Set { get; } = new MigrationSet("signal_log",
    [
        new Migration(
            1,
            """
            CREATE TABLE signal_log_partitions (
                day        BIGINT NOT NULL PRIMARY KEY,
                created_at BIGINT NOT NULL
            );
            CREATE TABLE signal_log_state (
                name  TEXT   NOT NULL PRIMARY KEY,
                value BIGINT NOT NULL
            );
            -- A match of a logged upload, once per key (retroactive: entry x upload; backfill: item x entry x type).
            -- acted_at is set by the one node that claims it to run the bank's actions.
            CREATE TABLE signal_matches (
                match_key   TEXT   NOT NULL PRIMARY KEY,
                kind        TEXT   NOT NULL,
                created_at  BIGINT NOT NULL,
                day         BIGINT NOT NULL,
                log_id      BIGINT NOT NULL,
                bank_id     BIGINT NOT NULL,
                entry_id    BIGINT NOT NULL,
                signal_type TEXT   NOT NULL,
                distance    BIGINT NOT NULL,
                uploader    TEXT   NULL,
                content_id  TEXT   NULL,
                uploaded_at BIGINT NOT NULL,
                sha256      TEXT   NULL,
                acted_at    BIGINT NULL
            );
            CREATE INDEX signal_matches_unacted ON signal_matches(acted_at, created_at);
            -- Backfill items done (the idempotency keys): written in the transaction that logs the item.
            CREATE TABLE backfill_items (
                item_key   TEXT   NOT NULL PRIMARY KEY,
                done_at    BIGINT NOT NULL,
                day        BIGINT NULL,
                log_id     BIGINT NULL,
                outcome    TEXT   NOT NULL,
                worker     TEXT   NULL
            );
            CREATE INDEX backfill_items_done ON backfill_items(done_at);
            CREATE TABLE backfill_control (
                name  TEXT   NOT NULL PRIMARY KEY,
                value TEXT   NOT NULL
            );
            """),
        new Migration(
            2,
            """
            -- A large retroactive delta fanned out over the backfill workers: one task per index unit of the log
            -- (a closed week or a single day) for the change-feed range (delta_after, delta_high]. The key is derived
            -- from range and unit, so a pass repeated after a crash creates nothing new; done_at is set in the
            -- transaction that records the task's matches, so a redelivered task is recognised and only acknowledged.
            CREATE TABLE retro_tasks (
                task_key    TEXT   NOT NULL PRIMARY KEY,
                delta_after BIGINT NOT NULL,
                delta_high  BIGINT NOT NULL,
                unit        TEXT   NOT NULL,
                entries     BIGINT NOT NULL,
                created_at  BIGINT NOT NULL,
                queued_at   BIGINT NULL,
                done_at     BIGINT NULL,
                hits        BIGINT NULL,
                worker      TEXT   NULL
            );
            CREATE INDEX retro_tasks_queued ON retro_tasks(queued_at);
            """),
    ]);

    /// <summary>The statements that create one day's tables (idempotent).</summary>
    public static string[] Partition(SqlDialect dialect, int day)
    {
        var id = dialect == SqlDialect.Sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";
        var blob = dialect == SqlDialect.Sqlite ? "BLOB" : "BYTEA";
        var withoutRowId = dialect == SqlDialect.Sqlite ? " WITHOUT ROWID" : string.Empty;
        return
        [
            $"""
            CREATE TABLE IF NOT EXISTS signal_log_{day} (
                id          {id},
                logged_at   BIGINT NOT NULL,
                uploaded_at BIGINT NOT NULL,
                uploader    TEXT   NULL,
                content_id  TEXT   NULL,
                content_url TEXT   NULL,
                source      TEXT   NOT NULL,
                bank_seq    BIGINT NOT NULL,
                pdq         {blob} NULL,
                trimmed     {blob} NULL,
                pdq_quality BIGINT NOT NULL,
                sha256      TEXT   NULL,
                extra       TEXT   NULL
            )
            """,
            // Exact signals (digests, model fingerprints) keyed for lookup by value: a new entry is one probe per partition.
            $"""
            CREATE TABLE IF NOT EXISTS signal_log_x_{day} (
                type   TEXT   NOT NULL,
                value  TEXT   NOT NULL,
                log_id BIGINT NOT NULL,
                PRIMARY KEY (type, value, log_id)
            ){withoutRowId}
            """,
        ];
    }
}
