namespace Warden.Storage;

/// <summary>
/// The schema as numbered migrations, applied in order inside a transaction and recorded in
/// <c>schema_version</c>. Types are chosen to carry over to PostgreSQL unchanged in meaning: ids and
/// times are 64-bit integers (Unix milliseconds), labels are JSON text, booleans are 0/1.
/// </summary>
internal static class Schema
{
    public static IReadOnlyList<(int Version, string Sql)> Migrations { get; } =
    [
        (1, """
            CREATE TABLE banks (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                name          TEXT    NOT NULL UNIQUE,
                kind          INTEGER NOT NULL DEFAULT 0,
                enabled       INTEGER NOT NULL DEFAULT 1,
                pdq_threshold INTEGER NULL,
                description   TEXT    NULL,
                created_at    INTEGER NOT NULL,
                updated_at    INTEGER NOT NULL
            );
            CREATE TABLE bank_entries (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                bank_id     INTEGER NOT NULL REFERENCES banks(id) ON DELETE CASCADE,
                signal_type TEXT    NOT NULL,
                signal      TEXT    NOT NULL,
                labels      TEXT    NOT NULL DEFAULT '{}',
                source      TEXT    NULL,
                external_id TEXT    NOT NULL DEFAULT '',
                enabled     INTEGER NOT NULL DEFAULT 1,
                note        TEXT    NULL,
                deleted     INTEGER NOT NULL DEFAULT 0,
                updated_at  INTEGER NOT NULL,
                seq         INTEGER NOT NULL
            );
            -- One row per signal per source entry per bank: re-importing a file adds nothing, and two
            -- clearinghouse members sharing a fingerprint stay two entries ('' = no external id).
            CREATE UNIQUE INDEX ux_bank_entries_signal ON bank_entries(bank_id, signal_type, signal, external_id);
            CREATE INDEX ix_bank_entries_external ON bank_entries(bank_id, external_id) WHERE external_id <> '';
            -- Change feed: every insert/update takes the next seq, so indexes can tail new rows.
            CREATE INDEX ix_bank_entries_seq ON bank_entries(seq);
            CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO counters(name, value) VALUES ('entry_seq', 0);
            """),
    ];
}
