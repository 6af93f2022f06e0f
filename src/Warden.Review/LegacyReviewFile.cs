using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.Review.Audit;
using Warden.Review.Storage;
using Warden.Storage;

namespace Warden.Review;

/// <summary>What <see cref="LegacyReviewFile.Migrate"/> moved.</summary>
/// <param name="Rows">Rows copied per table.</param>
/// <param name="Audit">The audit chain as verified in the target after the copy.</param>
/// <param name="MovedTo">Where the legacy file was renamed to (kept, never deleted).</param>
public sealed record LegacyMigrationResult(IReadOnlyDictionary<string, long> Rows, AuditVerification Audit, string MovedTo);

/// <summary>
/// The review state of Warden before one persistence: a SQLite file (<c>NAME.review.db</c>) beside the
/// database with its own schema runner. <see cref="Migrate"/> moves all of it into the configured database
/// (SQLite or PostgreSQL) in one transaction, keeping ids and the audit chain byte for byte, and verifies the
/// chain on both sides.
/// </summary>
public static class LegacyReviewFile
{
    /// <summary>Suffix given to a legacy file once it has been moved (kept: it is evidence).</summary>
    public const string MovedSuffix = ".migrated";

    // Parents before children (foreign keys). Columns are the current schema's; a legacy file lacking one (an
    // older version of it) gets the column default.
    private static readonly (string Table, string[] Columns, string? Identity)[] Tables =
    [
        ("audit_log", ["seq", "at_ms", "actor", "action", "subject", "details", "prev_hash", "hash"], null),
        ("evidence_items", ["id", "case_id", "key_id", "size", "captured_at", "reported_at", "retain_until", "legal_hold", "hold_reason", "destroyed_at"], null),
        ("evidence_views", ["id", "item_id", "actor", "actor_kind", "at_ms", "what", "purpose"], "id"),
        ("evidence_destructions", ["item_id", "at_ms", "actor", "reason"], null),
        ("report_deliveries", ["id", "case_id", "destination", "environment", "status", "in_flight", "report_id", "generation", "document", "created_at", "opened_at", "finished_at", "failures", "next_attempt_at", "last_error", "alarmed_at", "version", "failure_key", "restarts"], "id"),
        ("report_delivery_files", ["delivery_id", "idx", "evidence_ref", "file_name", "metadata", "md5", "file_id", "described"], null),
        ("report_receipts", ["id", "delivery_id", "at_ms", "generation", "step", "outcome", "http_status", "response_code", "request_id", "request", "body"], "id"),
        ("console_users", ["id", "username", "role", "password_hash", "created_at", "disabled", "blur", "greyscale"], "id"),
        ("console_sessions", ["token_hash", "user_id", "csrf", "created_at", "expires_at"], null),
        ("console_exposure", ["user_id", "day", "reveals"], null),
        ("console_display", ["user_id", "blur_percent", "size"], null),
        ("case_events", ["seq", "kind", "case_id", "cluster_id", "body", "at_ms"], "seq"),
    ];

    /// <summary>
    /// Where the legacy review file of <paramref name="database"/> was kept: beside a SQLite database,
    /// <c>NAME.review.db</c>; for PostgreSQL, <c>DATABASE.review.db</c> in the working folder.
    /// </summary>
    public static string PathFor(string database)
    {
        ArgumentNullException.ThrowIfNull(database);
        if (!WardenDatabase.IsPostgres(database))
        {
            return Path.ChangeExtension(database, ".review.db");
        }

        string? name = null;
        if (Uri.TryCreate(database.Trim(), UriKind.Absolute, out var uri) && uri.Scheme.StartsWith("postgres", StringComparison.OrdinalIgnoreCase))
        {
            name = uri.AbsolutePath.Trim('/');
        }
        else
        {
            try
            {
                var builder = new DbConnectionStringBuilder { ConnectionString = database };
                name = builder.TryGetValue("Database", out var d) ? d?.ToString() : null;
            }
            catch (ArgumentException)
            {
            }
        }

        // Only safe file-name characters: the name comes from a connection string, not from a path.
        name = string.Concat((name ?? "").Where(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'));
        return (name.Length == 0 ? "warden" : name) + ".review.db";
    }

    /// <summary>The legacy review file of <paramref name="database"/> when one exists and has not been moved yet; else null.</summary>
    public static string? Pending(string database)
    {
        var path = Path.GetFullPath(PathFor(database));
        if (!File.Exists(path))
        {
            return null;
        }

        // A SQLite database itself named NAME.review.db is its own legacy path: that file is the database.
        return !WardenDatabase.IsPostgres(database) && path == Path.GetFullPath(database) ? null : path;
    }

    /// <summary>
    /// Moves the legacy file at <paramref name="legacyPath"/> into <paramref name="target"/>: verifies the
    /// legacy audit chain (a broken chain is refused: moving it would launder the break), copies every table
    /// in one transaction (the target must hold no review state yet), verifies the chain again in the target
    /// and checks that its head is the legacy head, then renames the legacy file to <c>*.migrated</c>.
    /// Refusals are <see cref="StorageException"/>s with the reason; nothing is changed by a refusal.
    /// </summary>
    public static LegacyMigrationResult Migrate(string legacyPath, ReviewDatabase target)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(legacyPath);
        ArgumentNullException.ThrowIfNull(target);
        var full = Path.GetFullPath(legacyPath);
        if (!File.Exists(full))
        {
            throw new StorageException(StorageError.NotFound, $"No legacy review file at {full}.");
        }

        if (target.Database.FilePath is { } targetFile && Path.GetFullPath(targetFile) == full)
        {
            throw new StorageException(StorageError.Invalid, "The legacy review file and the target database are the same file.");
        }

        var cs = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString();
        SqliteConnection OpenLegacy()
        {
            var c = new SqliteConnection(cs);
            c.Open();
            return c;
        }

        Dictionary<string, long> rows = [];
        AuditRecord? legacyHead;
        try
        {
            using (var legacy = OpenLegacy())
            {
                var known = legacy.Query<string>("SELECT name FROM sqlite_master WHERE type = 'table'").ToHashSet(StringComparer.Ordinal);
                if (!known.Contains("review_schema_version") && !known.Contains("console_schema_version"))
                {
                    throw new StorageException(StorageError.Incompatible, $"{full} is not a Warden review file (no review_schema_version table).");
                }
            }

            var legacyLog = new AuditLog(new LegacyAuditStore(OpenLegacy));
            var before = legacyLog.Verify();
            if (!before.Ok)
            {
                throw new StorageException(StorageError.Incompatible, $"The audit chain in {full} does not verify (record {before.FirstBrokenSeq}: {before.Reason}); nothing was moved.");
            }

            legacyHead = legacyLog.Query().LastOrDefault();
            Copy(OpenLegacy, target, rows);
        }
        catch (SqliteException ex)
        {
            throw new StorageException(StorageError.Incompatible, $"{full} cannot be read as a review file: {ex.Message}", ex);
        }

        var after = new AuditLog(new DbAuditStore(target)).Verify();
        var targetHead = new AuditLog(new DbAuditStore(target)).Query().LastOrDefault();
        if (!after.Ok || after.RecordsChecked != rows["audit_log"] || (legacyHead is not null && (targetHead is null || !targetHead.Hash.AsSpan().SequenceEqual(legacyHead.Hash))))
        {
            throw new StorageException(StorageError.Incompatible, $"The audit chain did not verify in {target.DisplayName} after the copy ({after.Reason ?? "head differs from the legacy head"}); the legacy file is left in place.");
        }

        var moved = full + MovedSuffix;
        SqliteConnection.ClearAllPools();
        File.Move(full, moved);
        foreach (var sidecar in new[] { "-wal", "-shm" })
        {
            if (File.Exists(full + sidecar))
            {
                File.Move(full + sidecar, moved + sidecar);
            }
        }

        return new LegacyMigrationResult(rows, after, moved);
    }

    private static void Copy(Func<SqliteConnection> openLegacy, ReviewDatabase target, Dictionary<string, long> rows)
    {
        using var legacy = openLegacy();
        using var connection = target.Connect();
        using var tx = target.BeginWrite(connection, ReviewDatabase.AuditLockKey);
        foreach (var (table, _, _) in Tables)
        {
            if (connection.ExecuteScalar<long>($"SELECT COUNT(*) FROM {table}", transaction: tx) > 0)
            {
                throw new StorageException(StorageError.Conflict, $"{target.DisplayName} already holds review state ({table} has rows); migrate into a database without any.");
            }
        }

        foreach (var (table, columns, identity) in Tables)
        {
            var present = legacy.Query<string>($"SELECT name FROM pragma_table_info('{table}')").ToHashSet(StringComparer.Ordinal);
            var copied = columns.Where(present.Contains).ToArray();
            long n = 0;
            if (copied.Length > 0)
            {
                var insert = $"INSERT INTO {table}({string.Join(", ", copied)}) VALUES ({string.Join(", ", copied.Select((_, i) => "@p" + i))})";
                using var read = legacy.CreateCommand();
                read.CommandText = $"SELECT {string.Join(", ", copied)} FROM {table}";
                using var reader = read.ExecuteReader();
                using var write = connection.CreateCommand();
                write.Transaction = tx;
                write.CommandText = insert;
                var parameters = new DbParameter[copied.Length];
                for (var i = 0; i < copied.Length; i++)
                {
                    parameters[i] = write.CreateParameter();
                    parameters[i].ParameterName = "@p" + i;
                    write.Parameters.Add(parameters[i]);
                }

                while (reader.Read())
                {
                    for (var i = 0; i < copied.Length; i++)
                    {
                        parameters[i].Value = reader.GetValue(i);
                    }

                    write.ExecuteNonQuery();
                    n++;
                }
            }

            rows[table] = n;
            if (identity is not null && target.Dialect == SqlDialect.Postgres)
            {
                // Explicit ids do not move an identity's sequence; the next insert must not reuse one.
                connection.Execute($"SELECT setval(pg_get_serial_sequence('{table}', '{identity}'), (SELECT COALESCE(MAX({identity}), 0) + 1 FROM {table}), false)", transaction: tx);
            }
        }

        tx.Commit();
    }

    /// <summary>Reads the legacy file's audit log; appending to it is refused (it is only ever read).</summary>
    private sealed class LegacyAuditStore(Func<SqliteConnection> open) : IAuditStore
    {
        public AuditRecord Append(Func<long, byte[]?, AuditRecord> build) => throw new InvalidOperationException("The legacy review file is read-only.");

        public IEnumerable<AuditRecord> Query(AuditFilter filter) => DbAuditStore.Query(open, filter);
    }
}
