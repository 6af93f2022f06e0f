using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.Core.Banks;

namespace Warden.Storage;

/// <summary>What an import changed.</summary>
/// <param name="Processed">Records handed to the store.</param>
/// <param name="Added">New entries.</param>
/// <param name="Updated">Existing entries whose labels, note or tombstone changed.</param>
/// <param name="Unchanged">Records identical to what was stored (re-imports).</param>
/// <param name="Deleted">Entries turned into tombstones (a tombstone record may delete several: an NCMEC entry's fingerprints).</param>
public sealed record ImportResult(long Processed, long Added, long Updated, long Unchanged, long Deleted);

/// <summary>An entry as the matcher needs it: ids and the signal.</summary>
/// <param name="Id">Entry id.</param>
/// <param name="BankId">Bank id.</param>
/// <param name="SignalType">Signal type name.</param>
/// <param name="Signal">Normalised signal.</param>
public readonly record struct IndexedEntry(long Id, long BankId, string SignalType, string Signal);

/// <summary>
/// Banks and entries in a SQLite file (the same file the CLI and a single-node server use). One instance
/// holds one connection; it is not thread-safe.
/// </summary>
public sealed class BankStore : IDisposable
{
    private const int BatchSize = 20_000;
    private readonly SqliteConnection _connection;

    private BankStore(SqliteConnection connection) => _connection = connection;

    /// <summary>The database file.</summary>
    public string Path => _connection.DataSource;

    /// <summary>Opens (creating if needed) and migrates the database at <paramref name="path"/>.</summary>
    public static BankStore Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
        try
        {
            connection.Open();

            // WAL lets readers (a server's index tailer) run beside a writer; NORMAL sync is safe under WAL.
            connection.Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;");
            Migrate(connection);
            return new BankStore(connection);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 26 /* SQLITE_NOTADB */ or 11 /* SQLITE_CORRUPT */)
        {
            connection.Dispose();
            throw new StorageException(StorageError.Incompatible, $"{full} is not a Warden database (or is damaged): {ex.Message}", ex);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static void Migrate(SqliteConnection connection)
    {
        connection.Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        var current = connection.ExecuteScalar<long?>("SELECT MAX(version) FROM schema_version") ?? 0;
        var latest = Schema.Migrations[^1].Version;
        if (current > latest)
        {
            throw new StorageException(StorageError.Incompatible, $"The database has schema version {current}; this Warden knows up to {latest}. Upgrade Warden.");
        }

        foreach (var (version, sql) in Schema.Migrations.Where(m => m.Version > current))
        {
            using var tx = connection.BeginTransaction();
            connection.Execute(sql, transaction: tx);
            connection.Execute("INSERT INTO schema_version(version) VALUES (@version)", new { version }, tx);
            tx.Commit();
        }
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Creates a bank.</summary>
    public Bank CreateBank(string name, BankKind kind = BankKind.BlockList, int? pdqThreshold = null, string? description = null)
    {
        if (!BankNames.IsValid(name))
        {
            throw new StorageException(StorageError.Invalid, $"Invalid bank name '{name}': {BankNames.Rule}.");
        }

        CheckThreshold(pdqThreshold);
        var now = Now();
        try
        {
            _connection.Execute(
                "INSERT INTO banks(name, kind, enabled, pdq_threshold, description, created_at, updated_at) VALUES (@name, @kind, 1, @pdqThreshold, @description, @now, @now)",
                new { name, kind = (int)kind, pdqThreshold, description, now });
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == 19 /* SQLITE_CONSTRAINT */)
        {
            throw new StorageException(StorageError.Conflict, $"A bank named '{name}' already exists.", ex);
        }

        return GetBank(name)!;
    }

    private static void CheckThreshold(int? pdqThreshold)
    {
        if (pdqThreshold is < 0 or > 256)
        {
            throw new StorageException(StorageError.Invalid, $"A PDQ threshold is a distance from 0 to 256; got {pdqThreshold}.");
        }
    }

    /// <summary>All banks, by name.</summary>
    public IReadOnlyList<Bank> ListBanks() => _connection.Query<BankRow>("SELECT * FROM banks ORDER BY name").Select(r => r.ToBank()).ToList();

    /// <summary>A bank by name (case-sensitive), or null.</summary>
    public Bank? GetBank(string name) => _connection.QuerySingleOrDefault<BankRow>("SELECT * FROM banks WHERE name = @name", new { name })?.ToBank();

    /// <summary>A bank by name, or <see cref="StorageException"/> (NotFound) naming the known banks.</summary>
    public Bank RequireBank(string name) =>
        GetBank(name) ?? throw new StorageException(StorageError.NotFound, $"No bank named '{name}'." + (ListBanks() is { Count: > 0 } banks ? $" Banks: {string.Join(", ", banks.Select(b => b.Name))}." : " Create one with 'warden bank create NAME'."));

    /// <summary>Changes a bank's switches; null arguments leave the field as it is.</summary>
    public Bank UpdateBank(string name, bool? enabled = null, BankKind? kind = null, int? pdqThreshold = null, bool clearThreshold = false, string? description = null)
    {
        var bank = RequireBank(name);
        CheckThreshold(pdqThreshold);
        _connection.Execute(
            "UPDATE banks SET enabled = @enabled, kind = @kind, pdq_threshold = @threshold, description = @description, updated_at = @now WHERE id = @id",
            new
            {
                id = bank.Id,
                enabled = enabled ?? bank.Enabled,
                kind = (int)(kind ?? bank.Kind),
                threshold = clearThreshold ? null : pdqThreshold ?? bank.PdqThreshold,
                description = description ?? bank.Description,
                now = Now(),
            });
        return RequireBank(name);
    }

    /// <summary>The change sequence: grows with every entry written, so equal values mean unchanged entries.</summary>
    public long ChangeSequence() => _connection.ExecuteScalar<long>("SELECT value FROM counters WHERE name = 'entry_seq'");

    /// <summary>Number of live (not deleted) entries per bank id.</summary>
    public IReadOnlyDictionary<long, long> CountEntries() =>
        _connection.Query<(long BankId, long Count)>("SELECT bank_id, COUNT(*) FROM bank_entries WHERE deleted = 0 GROUP BY bank_id").ToDictionary(r => r.BankId, r => r.Count);

    /// <summary>
    /// Adds or updates entries (one row per signal per bank: re-importing the same records changes nothing)
    /// and applies tombstones. Committed in batches; <paramref name="progress"/> gets the running count.
    /// Records must already be validated (the list readers do that).
    /// </summary>
    public ImportResult Import(long bankId, IEnumerable<BankEntryRecord> records, string? source, Action<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        long processed = 0, affected = 0, deleted = 0, tombstones = 0;
        var before = _connection.ExecuteScalar<long>("SELECT COUNT(*) FROM bank_entries WHERE bank_id = @bankId", new { bankId });

        using var upsert = _connection.CreateCommand();
        upsert.CommandText = """
            INSERT INTO bank_entries(bank_id, signal_type, signal, labels, source, external_id, enabled, note, deleted, updated_at, seq)
            VALUES ($bank, $type, $signal, $labels, $source, $ext, 1, $note, 0, $now, $seq)
            ON CONFLICT(bank_id, signal_type, signal, external_id) DO UPDATE SET
                labels = excluded.labels, note = excluded.note, deleted = 0, updated_at = excluded.updated_at, seq = excluded.seq
            WHERE bank_entries.labels IS NOT excluded.labels OR bank_entries.note IS NOT excluded.note OR bank_entries.deleted = 1
            """;
        var pBank = upsert.Parameters.Add("$bank", SqliteType.Integer);
        var pType = upsert.Parameters.Add("$type", SqliteType.Text);
        var pSignal = upsert.Parameters.Add("$signal", SqliteType.Text);
        var pLabels = upsert.Parameters.Add("$labels", SqliteType.Text);
        var pSource = upsert.Parameters.Add("$source", SqliteType.Text);
        var pExt = upsert.Parameters.Add("$ext", SqliteType.Text);
        var pNote = upsert.Parameters.Add("$note", SqliteType.Text);
        var pNow = upsert.Parameters.Add("$now", SqliteType.Integer);
        var pSeq = upsert.Parameters.Add("$seq", SqliteType.Integer);

        using var tombstone = _connection.CreateCommand();
        tombstone.CommandText = """
            UPDATE bank_entries SET deleted = 1, updated_at = $now, seq = $seq
            WHERE bank_id = $bank AND deleted = 0
              AND (($ext <> '' AND (external_id = $ext OR external_id LIKE $extPrefix ESCAPE '\'))
                   OR ($ext = '' AND signal_type = $type AND signal = $signal))
            """;
        var tBank = tombstone.Parameters.Add("$bank", SqliteType.Integer);
        var tExt = tombstone.Parameters.Add("$ext", SqliteType.Text);
        var tExtPrefix = tombstone.Parameters.Add("$extPrefix", SqliteType.Text);
        var tType = tombstone.Parameters.Add("$type", SqliteType.Text);
        var tSignal = tombstone.Parameters.Add("$signal", SqliteType.Text);
        var tNow = tombstone.Parameters.Add("$now", SqliteType.Integer);
        var tSeq = tombstone.Parameters.Add("$seq", SqliteType.Integer);

        SqliteTransaction? tx = null;
        long seq = 0;
        var inBatch = 0;
        try
        {
            foreach (var record in records)
            {
                if (tx is null)
                {
                    tx = _connection.BeginTransaction();
                    upsert.Transaction = tx;
                    tombstone.Transaction = tx;
                    seq = _connection.ExecuteScalar<long>("SELECT value FROM counters WHERE name = 'entry_seq'", transaction: tx);
                }

                var now = Now();
                if (record.Deleted)
                {
                    tBank.Value = bankId;
                    tExt.Value = record.ExternalId ?? string.Empty;
                    tExtPrefix.Value = EscapeLike(record.ExternalId ?? string.Empty) + "-%";
                    tType.Value = record.SignalType;
                    tSignal.Value = record.Signal;
                    tNow.Value = now;
                    tSeq.Value = ++seq;
                    deleted += tombstone.ExecuteNonQuery();
                    tombstones++;
                }
                else
                {
                    pBank.Value = bankId;
                    pType.Value = record.SignalType;
                    pSignal.Value = record.Signal;
                    pLabels.Value = LabelsJson.Write(record.Labels);
                    pSource.Value = (object?)source ?? DBNull.Value;
                    pExt.Value = record.ExternalId ?? string.Empty;
                    pNote.Value = (object?)record.Note ?? DBNull.Value;
                    pNow.Value = now;
                    pSeq.Value = ++seq;
                    affected += upsert.ExecuteNonQuery();
                }

                processed++;
                if (++inBatch >= BatchSize)
                {
                    Commit(ref tx, seq);
                    inBatch = 0;
                    progress?.Invoke(processed);
                }
            }

            if (tx is not null)
            {
                Commit(ref tx, seq);
            }

            progress?.Invoke(processed);
        }
        finally
        {
            tx?.Dispose();
        }

        var after = _connection.ExecuteScalar<long>("SELECT COUNT(*) FROM bank_entries WHERE bank_id = @bankId", new { bankId });
        var added = after - before;
        return new ImportResult(processed, added, affected - added, processed - affected - tombstones, deleted);
    }

    private static string EscapeLike(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);

    private void Commit(ref SqliteTransaction? tx, long seq)
    {
        _connection.Execute("UPDATE counters SET value = @seq WHERE name = 'entry_seq'", new { seq }, tx);
        tx!.Commit();
        tx.Dispose();
        tx = null;
    }

    /// <summary>Streams a bank's entries in id order (tombstones only when asked).</summary>
    public IEnumerable<BankEntry> ExportEntries(long bankId, bool includeDeleted = false)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = "SELECT * FROM bank_entries WHERE bank_id = $bank AND ($all = 1 OR deleted = 0) ORDER BY id";
        cmd.Parameters.AddWithValue("$bank", bankId);
        cmd.Parameters.AddWithValue("$all", includeDeleted ? 1 : 0);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            yield return ReadEntry(reader);
        }
    }

    /// <summary>Streams what the matcher indexes: live, enabled entries of enabled banks.</summary>
    public IEnumerable<IndexedEntry> EnabledEntries()
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = """
            SELECT e.id, e.bank_id, e.signal_type, e.signal FROM bank_entries e JOIN banks b ON b.id = e.bank_id
            WHERE b.enabled = 1 AND e.enabled = 1 AND e.deleted = 0
            """;
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            yield return new IndexedEntry(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3));
        }
    }

    /// <summary>Entries by id (for labelling match results).</summary>
    public IReadOnlyDictionary<long, BankEntry> GetEntries(IEnumerable<long> ids)
    {
        var result = new Dictionary<long, BankEntry>();
        foreach (var chunk in ids.Distinct().Chunk(500))
        {
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = $"SELECT * FROM bank_entries WHERE id IN ({string.Join(",", chunk.Select((_, i) => "$p" + i))})";
            for (var i = 0; i < chunk.Length; i++)
            {
                cmd.Parameters.AddWithValue("$p" + i, chunk[i]);
            }

            using var reader = cmd.ExecuteReader();
            while (reader.Read())
            {
                var e = ReadEntry(reader);
                result[e.Id] = e;
            }
        }

        return result;
    }

    /// <summary>Turns one entry into a tombstone; false when it did not exist or was already deleted.</summary>
    public bool DeleteEntry(long id)
    {
        using var tx = _connection.BeginTransaction();
        var seq = _connection.ExecuteScalar<long>("UPDATE counters SET value = value + 1 WHERE name = 'entry_seq' RETURNING value", transaction: tx);
        var n = _connection.Execute("UPDATE bank_entries SET deleted = 1, updated_at = @now, seq = @seq WHERE id = @id AND deleted = 0", new { id, now = Now(), seq }, tx);
        tx.Commit();
        return n > 0;
    }

    private static BankEntry ReadEntry(SqliteDataReader r) => new(
        r.GetInt64(r.GetOrdinal("id")),
        r.GetInt64(r.GetOrdinal("bank_id")),
        r.GetString(r.GetOrdinal("signal_type")),
        r.GetString(r.GetOrdinal("signal")),
        LabelsJson.Read(r.GetString(r.GetOrdinal("labels"))),
        r.IsDBNull(r.GetOrdinal("source")) ? null : r.GetString(r.GetOrdinal("source")),
        r.GetString(r.GetOrdinal("external_id")) is { Length: > 0 } ext ? ext : null,
        r.GetInt64(r.GetOrdinal("enabled")) != 0,
        r.IsDBNull(r.GetOrdinal("note")) ? null : r.GetString(r.GetOrdinal("note")),
        r.GetInt64(r.GetOrdinal("deleted")) != 0,
        DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(r.GetOrdinal("updated_at"))));

    /// <inheritdoc />
    public void Dispose() => _connection.Dispose();

    private sealed class BankRow
    {
        public long Id { get; set; }

        public string Name { get; set; } = string.Empty;

        public long Kind { get; set; }

        public long Enabled { get; set; }

        public long? Pdq_Threshold { get; set; }

        public string? Description { get; set; }

        public long Created_At { get; set; }

        public Bank ToBank() => new(Id, Name, (BankKind)Kind, Enabled != 0, (int?)Pdq_Threshold, Description, DateTimeOffset.FromUnixTimeMilliseconds(Created_At));
    }
}

/// <summary>Labels as canonical JSON (keys sorted) so equal labels are equal text and re-imports change nothing.</summary>
internal static class LabelsJson
{
    public static string Write(IReadOnlyDictionary<string, string> labels)
    {
        if (labels.Count == 0)
        {
            return "{}";
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var (k, v) in labels.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                json.WriteString(k, v);
            }

            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static IReadOnlyDictionary<string, string> Read(string json)
    {
        if (json == "{}")
        {
            return new Dictionary<string, string>();
        }

        return JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];
    }
}
