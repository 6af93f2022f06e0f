using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;
using Warden.Core.Banks;
using Warden.Core.Signals;

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
/// Banks and entries in a <see cref="WardenDatabase"/>: a SQLite file (the same file the CLI and a single-node
/// server use) or a PostgreSQL database shared by several nodes. Every operation takes a pooled connection of
/// its own, so one instance may be used from many threads.
/// </summary>
/// <remarks>
/// Change feed: every write of a bank or an entry (insert, label change, enable/disable, threshold, kind,
/// tombstone) stamps the row with the next value of one counter (<c>counters.entry_seq</c>), so a reader
/// tails with <see cref="ChangesSince"/>. Writers take that counter with a row lock (PostgreSQL: <c>UPDATE ...
/// RETURNING</c> or <c>SELECT ... FOR UPDATE</c>; SQLite: the database write lock of <c>BEGIN IMMEDIATE</c>)
/// and hold it to commit, so numbers are handed out in commit order: while a transaction holding number n is
/// open, nobody else can take n+1, and PostgreSQL makes a commit visible before it releases the lock. A reader
/// therefore never sees n+1 committed while n may still appear, and a plain high-water mark never skips a
/// row (the failure of a sequence/identity column, whose numbers commit out of order). The cost: writers of
/// one database are serialised, which bank writes (rare, batched imports) afford.
/// </remarks>
public sealed class BankStore : IDisposable
{
    private const int SqliteBatchSize = 20_000;
    private const int PostgresBatchSize = 50_000;
    private const string SeqCounter = "entry_seq";
    private readonly WardenDatabase _db;
    private readonly bool _ownsDatabase;

    private BankStore(WardenDatabase db, bool ownsDatabase)
    {
        _db = db;
        _ownsDatabase = ownsDatabase;
    }

    /// <summary>The bank schema, for tools that migrate a database without opening a store.</summary>
    public static IMigrationSet MigrationSet => Schema.Banks;

    /// <summary>The database this store works on.</summary>
    public WardenDatabase Database => _db;

    /// <summary>For messages: the database file, or the PostgreSQL server and database (no password).</summary>
    public string Path => _db.DisplayName;

    /// <summary>
    /// Opens (creating if needed) and migrates the database named by <paramref name="target"/>: a SQLite file
    /// path or a PostgreSQL connection string (see <see cref="WardenDatabase.Open"/>). The store owns it.
    /// </summary>
    public static BankStore Open(string target)
    {
        var db = WardenDatabase.Open(target);
        try
        {
            return Open(db, ownsDatabase: true);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Migrates and uses <paramref name="database"/> (shared: disposing the store leaves it open).</summary>
    public static BankStore Open(WardenDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        return Open(database, ownsDatabase: false);
    }

    private static BankStore Open(WardenDatabase db, bool ownsDatabase)
    {
        db.Migrate(Schema.Banks);
        return new BankStore(db, ownsDatabase);
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private bool IsPostgres => _db.Dialect == SqlDialect.Postgres;

    /// <summary>Runs <paramref name="action"/> on a connection of its own, turning driver errors into <see cref="StorageException"/>.</summary>
    private T Run<T>(Func<DbConnection, T> action)
    {
        try
        {
            using var connection = _db.OpenConnection();
            return action(connection);
        }
        catch (DbException ex)
        {
            throw _db.Translate(ex);
        }
    }

    /// <summary>A write transaction: SQLite takes the database write lock now (BEGIN IMMEDIATE), not at the first write.</summary>
    private static DbTransaction BeginWrite(DbConnection connection) =>
        connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : connection.BeginTransaction(IsolationLevel.ReadCommitted);

    /// <summary>A read transaction that sees one snapshot for all its statements.</summary>
    private static DbTransaction BeginSnapshot(DbConnection connection) =>
        connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: true) : connection.BeginTransaction(IsolationLevel.RepeatableRead);

    /// <summary>Takes the next change number; the counter row stays locked until the transaction ends.</summary>
    private static long NextSeq(DbConnection connection, DbTransaction tx) =>
        connection.ExecuteScalar<long>($"UPDATE counters SET value = value + 1 WHERE name = '{SeqCounter}' RETURNING value", transaction: tx);

    /// <summary>Locks the counter (until the transaction ends) and returns its value; the caller sets it before committing.</summary>
    private long LockSeq(DbConnection connection, DbTransaction tx) =>
        connection.ExecuteScalar<long>($"SELECT value FROM counters WHERE name = '{SeqCounter}'" + (IsPostgres ? " FOR UPDATE" : string.Empty), transaction: tx);

    private static bool IsUniqueViolation(DbException ex) =>
        ex is SqliteException { SqliteErrorCode: 19 /* SQLITE_CONSTRAINT */ } or PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    /// <summary>Creates a bank.</summary>
    /// <param name="name">The name (<see cref="BankNames.Rule"/>).</param>
    /// <param name="kind">Block list or allow list.</param>
    /// <param name="pdqThreshold">Shorthand for <paramref name="thresholds"/>' PDQ entry.</param>
    /// <param name="description">Free text.</param>
    /// <param name="thresholds">Per signal type thresholds (<see cref="BankThresholds.Check"/>).</param>
    public Bank CreateBank(string name, BankKind kind = BankKind.BlockList, int? pdqThreshold = null, string? description = null, IReadOnlyDictionary<string, int>? thresholds = null)
    {
        if (!BankNames.IsValid(name))
        {
            throw new StorageException(StorageError.Invalid, $"Invalid bank name '{Warden.Core.Runtime.ShownText.Of(name)}': {BankNames.Rule}.");
        }

        var map = MergeThresholds(null, thresholds?.Select(p => KeyValuePair.Create(p.Key, (int?)p.Value)), pdqThreshold, clearPdq: false);
        var now = Now();
        return Run(c =>
        {
            try
            {
                using var tx = BeginWrite(c);
                var seq = NextSeq(c, tx);
                c.Execute(
                    "INSERT INTO banks(name, kind, enabled, thresholds, description, created_at, updated_at, seq) VALUES (@name, @kind, 1, @thresholds, @description, @now, @now, @seq)",
                    new { name, kind = (long)kind, thresholds = ThresholdsJson.Write(map), description, now, seq },
                    tx);
                tx.Commit();
            }
            catch (DbException ex) when (IsUniqueViolation(ex))
            {
                throw new StorageException(StorageError.Conflict, $"A bank named '{name}' already exists.", ex);
            }

            return GetBank(c, name)!;
        });
    }

    /// <summary>
    /// A bank's thresholds after a change: <paramref name="current"/> with <paramref name="changes"/> applied (null
    /// value: back to the default), then the PDQ shorthand. Every value passes the one rule (<see cref="BankThresholds"/>).
    /// </summary>
    private static SortedDictionary<string, int> MergeThresholds(IReadOnlyDictionary<string, int>? current, IEnumerable<KeyValuePair<string, int?>>? changes, int? pdqThreshold, bool clearPdq)
    {
        var map = current is null ? new SortedDictionary<string, int>(StringComparer.Ordinal) : new SortedDictionary<string, int>(current.ToDictionary(), StringComparer.Ordinal);
        var all = changes?.ToList() ?? [];
        if (clearPdq)
        {
            all.Add(KeyValuePair.Create(SignalTypes.Pdq.Name, (int?)null));
        }

        if (pdqThreshold is { } pdq)
        {
            all.Add(KeyValuePair.Create(SignalTypes.Pdq.Name, (int?)pdq));
        }

        Dictionary<string, int?> checkedChanges;
        try
        {
            checkedChanges = BankThresholds.Normalize(all);
        }
        catch (ArgumentException ex)
        {
            throw new StorageException(StorageError.Invalid, ex.Message.Split(" (Parameter", 2)[0], ex);
        }

        foreach (var (type, value) in checkedChanges)
        {
            if (value is { } v)
            {
                map[type] = v;
            }
            else
            {
                map.Remove(type);
            }
        }

        return map;
    }

    /// <summary>All banks, by name (deleted ones left out).</summary>
    public IReadOnlyList<Bank> ListBanks() => Run(c => c.Query<BankRow>($"SELECT * FROM banks WHERE name NOT LIKE '{DeletedPrefix}%' ORDER BY name").Select(r => r.ToBank()).ToList());

    // A deleted bank keeps its row under a name no live bank can have (valid names start with a letter or digit).
    private const string DeletedPrefix = "~deleted~";

    /// <summary>
    /// Deletes a bank: in one change, every live entry becomes a tombstone and the bank is disabled and renamed
    /// out of the way (<c>~deleted~ID~NAME</c>), so every node's index drops it, the name is free again, and
    /// nothing is removed under a node that has not caught up. False when there is no such bank.
    /// </summary>
    public bool DeleteBank(string name) => Run(c =>
    {
        using var tx = BeginWrite(c);
        var bank = GetBank(c, name, tx);
        if (bank is null)
        {
            return false;
        }

        var seq = NextSeq(c, tx);
        var now = Now();
        c.Execute("UPDATE bank_entries SET deleted = 1, updated_at = @now, seq = @seq WHERE bank_id = @id AND deleted = 0", new { id = bank.Id, now, seq }, tx);
        c.Execute("UPDATE banks SET name = @deleted, enabled = 0, updated_at = @now, seq = @seq WHERE id = @id", new { id = bank.Id, deleted = $"{DeletedPrefix}{bank.Id}~{name}", now, seq }, tx);
        tx.Commit();
        return true;
    });

    /// <summary>A bank by name (case-sensitive), or null.</summary>
    public Bank? GetBank(string name) => Run(c => GetBank(c, name));

    /// <summary>A bank by id, or null.</summary>
    public Bank? GetBank(long id) => Run(c => c.QuerySingleOrDefault<BankRow>("SELECT * FROM banks WHERE id = @id", new { id })?.ToBank());

    private static Bank? GetBank(DbConnection c, string name, DbTransaction? tx = null) =>
        c.QuerySingleOrDefault<BankRow>("SELECT * FROM banks WHERE name = @name", new { name }, tx)?.ToBank();

    /// <summary>A bank by name, or <see cref="StorageException"/> (NotFound) naming the known banks.</summary>
    public Bank RequireBank(string name) =>
        GetBank(name) ?? throw new StorageException(StorageError.NotFound, $"No bank named '{name}'." + (ListBanks() is { Count: > 0 } banks ? $" Banks: {string.Join(", ", banks.Select(b => b.Name))}." : " Create one with 'warden bank create NAME'."));

    /// <summary>Changes a bank's switches; null arguments leave the field as it is.</summary>
    /// <param name="name">The bank.</param>
    /// <param name="enabled">Match it or not.</param>
    /// <param name="kind">Block list or allow list.</param>
    /// <param name="pdqThreshold">Shorthand for a PDQ entry in <paramref name="thresholds"/>.</param>
    /// <param name="clearThreshold">PDQ back to its default.</param>
    /// <param name="description">Free text.</param>
    /// <param name="thresholds">Per signal type thresholds to set (a null value: back to the type's default); types not named keep theirs.</param>
    public Bank UpdateBank(string name, bool? enabled = null, BankKind? kind = null, int? pdqThreshold = null, bool clearThreshold = false, string? description = null, IReadOnlyDictionary<string, int?>? thresholds = null)
    {
        RequireBank(name);
        _ = MergeThresholds(null, thresholds, pdqThreshold, clearThreshold); // checked before the write lock is taken
        return Run(c =>
        {
            using var tx = BeginWrite(c);
            var seq = NextSeq(c, tx);

            // Read under the lock: two concurrent updates of different fields both survive.
            var bank = GetBank(c, name, tx) ?? throw new StorageException(StorageError.NotFound, $"No bank named '{name}'.");
            c.Execute(
                "UPDATE banks SET enabled = @enabled, kind = @kind, thresholds = @thresholds, description = @description, updated_at = @now, seq = @seq WHERE id = @id",
                new
                {
                    id = bank.Id,
                    enabled = (enabled ?? bank.Enabled) ? 1L : 0L,
                    kind = (long)(kind ?? bank.Kind),
                    thresholds = ThresholdsJson.Write(MergeThresholds(bank.Thresholds, thresholds, pdqThreshold, clearThreshold)),
                    description = description ?? bank.Description,
                    now = Now(),
                    seq,
                },
                tx);
            tx.Commit();
            return GetBank(c, name)!;
        });
    }

    /// <summary>
    /// The change sequence: the number of the latest committed change of a bank or an entry, so equal values
    /// mean an unchanged database.
    /// </summary>
    public long ChangeSequence() => Run(c => c.ExecuteScalar<long>($"SELECT value FROM counters WHERE name = '{SeqCounter}'"));

    /// <summary>A random number fixed when the database was created: tells databases apart for caches kept outside them.</summary>
    public long DatabaseId() => Run(c => c.ExecuteScalar<long>("SELECT value FROM counters WHERE name = 'database_id'"));

    /// <summary>
    /// Where a cache derived from this database (an index snapshot) lives: beside a SQLite file as
    /// <c>FILE.SUFFIX</c>; for PostgreSQL, which has no file to sit beside, under <c>$XDG_CACHE_HOME/warden/</c>
    /// (else <c>~/.cache/warden/</c>) as <c>SUFFIX-DATABASEID</c>, so two databases never share one.
    /// </summary>
    public string CacheDirectory(string suffix)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(suffix);
        if (_db.FilePath is { } file)
        {
            return file + "." + suffix;
        }

        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return System.IO.Path.Combine(cache, "warden", string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{suffix}-{DatabaseId():x}"));
    }

    /// <summary>Number of live (not deleted) entries per bank id.</summary>
    public IReadOnlyDictionary<long, long> CountEntries() =>
        Run(c => c.Query<(long BankId, long Count)>("SELECT bank_id, COUNT(*) FROM bank_entries WHERE deleted = 0 GROUP BY bank_id").ToDictionary(r => r.BankId, r => r.Count));

    /// <summary>
    /// Adds or updates entries (one row per signal per bank: re-importing the same records changes nothing)
    /// and applies tombstones, in record order. Committed in batches; <paramref name="progress"/> gets the
    /// running count. Records must already be validated (the list readers do that). On PostgreSQL the
    /// records go in by binary COPY into a temporary table and one <c>INSERT ... ON CONFLICT</c> per run of
    /// records (up to a batch; a tombstone or a record repeated within the run ends it), with the same
    /// results as SQLite's row-by-row upsert.
    /// </summary>
    /// <param name="bankId">The bank.</param>
    /// <param name="records">Records, applied in order.</param>
    /// <param name="source">The entries' source.</param>
    /// <param name="progress">Gets the running count after each batch.</param>
    /// <param name="transactionRecords">
    /// Records per transaction (0: the default, 20,000 on SQLite, 50,000 on PostgreSQL). A bulk loader that holds
    /// its records in memory anyway (an exchange's commit) passes its own size: fewer, larger SQLite transactions
    /// write each randomly keyed index page once per transaction instead of once per 20,000 records.
    /// </param>
    public ImportResult Import(long bankId, IEnumerable<BankEntryRecord> records, string? source, Action<long>? progress = null, int transactionRecords = 0)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentOutOfRangeException.ThrowIfNegative(transactionRecords);
        return Run(c =>
        {
            var before = c.ExecuteScalar<long>("SELECT COUNT(*) FROM bank_entries WHERE bank_id = @bankId", new { bankId });
            var counts = new ImportCounts();
            if (c is NpgsqlConnection pg)
            {
                ImportPostgres(pg, bankId, records, source, progress, transactionRecords > 0 ? transactionRecords : PostgresBatchSize, ref counts);
            }
            else
            {
                ImportSqlite(c, bankId, records, source, progress, transactionRecords > 0 ? transactionRecords : SqliteBatchSize, ref counts);
            }

            var after = c.ExecuteScalar<long>("SELECT COUNT(*) FROM bank_entries WHERE bank_id = @bankId", new { bankId });
            var added = after - before;
            return new ImportResult(counts.Processed, added, counts.Affected - added, counts.Processed - counts.Affected - counts.Tombstones, counts.Deleted);
        });
    }

    private struct ImportCounts
    {
        public long Processed;
        public long Affected;
        public long Deleted;
        public long Tombstones;
    }

    // The conflict target names the unique index's key: the signal itself on SQLite, its MD5 on PostgreSQL
    // (banks migration 4), whose btree rows cannot hold a TMK signal.
    private string UpsertSet => (IsPostgres ? "ON CONFLICT(bank_id, signal_type, md5(signal), external_id)" : "ON CONFLICT(bank_id, signal_type, signal, external_id)") + UpsertUpdate;

    private const string UpsertUpdate = """
         DO UPDATE SET
            labels = excluded.labels, note = excluded.note, deleted = 0, updated_at = excluded.updated_at, seq = excluded.seq
        WHERE bank_entries.labels IS DISTINCT FROM excluded.labels OR bank_entries.note IS DISTINCT FROM excluded.note OR bank_entries.deleted = 1
        """;

    // A tombstone with an external id deletes that entry and the per-signal entries made from it ("ID-md5",
    // "ID-pdq", ...): the byte range [ID-, ID.) holds exactly the ids starting with "ID-" ('.' follows '-').
    // The outer range [ID, ID.) lets SQLite seek the external-id index; written as "= ID OR range" alone it
    // scanned the whole bank per tombstone, quadratic on an NCMEC first sync (one replacement tombstone per entry).
    private const string TombstoneByExternalId = """
        UPDATE bank_entries SET deleted = 1, updated_at = @now, seq = @seq
        WHERE bank_id = @bank AND deleted = 0 AND external_id <> '' AND external_id >= @ext AND external_id < @hi
          AND (external_id = @ext OR external_id >= @lo)
        """;

    private const string TombstoneBySignal = """
        UPDATE bank_entries SET deleted = 1, updated_at = @now, seq = @seq
        WHERE bank_id = @bank AND deleted = 0 AND external_id = '' AND signal_type = @type AND signal = @signal
        """;

    private sealed class Tombstoner : IDisposable
    {
        private readonly DbCommand _byExt;
        private readonly DbCommand _bySignal;

        public Tombstoner(DbConnection c)
        {
            _byExt = WardenDatabase.Command(c, null, TombstoneByExternalId, ("now", 0L), ("seq", 0L), ("bank", 0L), ("ext", string.Empty), ("lo", string.Empty), ("hi", string.Empty));
            _bySignal = WardenDatabase.Command(c, null, TombstoneBySignal, ("now", 0L), ("seq", 0L), ("bank", 0L), ("type", string.Empty), ("signal", string.Empty));
        }

        public int Apply(DbTransaction tx, long bankId, BankEntryRecord record, long now, long seq)
        {
            if (record.ExternalId is { Length: > 0 } ext)
            {
                _byExt.Transaction = tx;
                Set(_byExt, now, seq, bankId, ext, ext + "-", ext + ".");
                return _byExt.ExecuteNonQuery();
            }

            _bySignal.Transaction = tx;
            Set(_bySignal, now, seq, bankId, record.SignalType, record.Signal);
            return _bySignal.ExecuteNonQuery();
        }

        private static void Set(DbCommand cmd, params object[] values)
        {
            for (var i = 0; i < values.Length; i++)
            {
                cmd.Parameters[i].Value = values[i];
            }
        }

        public void Dispose()
        {
            _byExt.Dispose();
            _bySignal.Dispose();
        }
    }

    /// <summary>A larger SQLite page cache for one import on a pooled connection; restores the default and frees the pages.</summary>
    private sealed class ImportCache : IDisposable
    {
        private readonly DbConnection _connection;
        private readonly long _previous;

        public ImportCache(DbConnection connection, int batchSize)
        {
            _connection = connection;
            _previous = connection.ExecuteScalar<long>("PRAGMA cache_size");

            // About 2 KiB per record covers the pages a batch dirties (table, three indexes) with room to spare;
            // at least the default, at most 512 MiB.
            var kib = Math.Clamp(batchSize * 2L, 2_000, 512 * 1024);
            connection.Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA cache_size = -{kib}"));
        }

        public void Dispose()
        {
            _connection.Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA cache_size = {_previous}; PRAGMA shrink_memory"));
        }
    }

    private void ImportSqlite(DbConnection c, long bankId, IEnumerable<BankEntryRecord> records, string? source, Action<long>? progress, int batchSize, ref ImportCounts counts)
    {
        // The unique index takes random keys (hashes), so a batch dirties index pages all over the file. With
        // SQLite's default 2 MB page cache those pages spill to the WAL mid-transaction and are written again each
        // time they are touched; a cache that holds a batch's dirty pages writes each page once per commit (the
        // main part of a first sync's write amplification). Pages are allocated as used and freed afterwards.
        using var cache = new ImportCache(c, batchSize);
        using var upsert = WardenDatabase.Command(
            c,
            null,
            "INSERT INTO bank_entries(bank_id, signal_type, signal, labels, source, external_id, enabled, note, deleted, updated_at, seq) VALUES (@bank, @type, @signal, @labels, @source, @ext, 1, @note, 0, @now, @seq) " + UpsertSet,
            ("bank", bankId), ("type", string.Empty), ("signal", string.Empty), ("labels", string.Empty), ("source", source), ("ext", string.Empty), ("note", null), ("now", 0L), ("seq", 0L));
        var p = upsert.Parameters;
        using var tombstoner = new Tombstoner(c);

        // Each batch is read before its transaction starts: a slow source (an upload) never holds the write lock.
        foreach (var batch in records.Chunk(batchSize))
        {
            DbTransaction? tx = BeginWrite(c);
            try
            {
                upsert.Transaction = tx;
                var locked = LockSeq(c, tx);
                var seq = locked;
                foreach (var record in batch)
                {
                    var now = Now();
                    if (record.Deleted)
                    {
                        counts.Deleted += tombstoner.Apply(tx, bankId, record, now, ++seq);
                        counts.Tombstones++;
                    }
                    else
                    {
                        p[1].Value = record.SignalType;
                        p[2].Value = record.Signal;
                        p[3].Value = LabelsJson.Write(record.Labels);
                        p[5].Value = record.ExternalId ?? string.Empty;
                        p[6].Value = (object?)record.Note ?? DBNull.Value;
                        p[7].Value = now;
                        p[8].Value = ++seq;
                        counts.Affected += upsert.ExecuteNonQuery();
                    }
                }

                CommitBatch(c, ref tx, locked);
            }
            finally
            {
                tx?.Dispose();
            }

            counts.Processed += batch.Length;
            progress?.Invoke(counts.Processed);
        }

        if (counts.Processed == 0)
        {
            progress?.Invoke(0);
        }
    }

    private void ImportPostgres(NpgsqlConnection c, long bankId, IEnumerable<BankEntryRecord> records, string? source, Action<long>? progress, int batchSize, ref ImportCounts counts)
    {
        // The staging table lives as long as the (pooled) session; its rows as long as one batch.
        c.Execute("""
            CREATE TEMP TABLE IF NOT EXISTS warden_import (
                signal_type TEXT COLLATE "C", signal TEXT COLLATE "C", labels TEXT, external_id TEXT COLLATE "C", note TEXT, seq BIGINT
            ) ON COMMIT DELETE ROWS
            """);

        // A run holds each key once (ON CONFLICT may not touch a row twice in one statement); ORDER BY seq keeps
        // the ids in record order, as the row-by-row SQLite import does.
        using var upsert = WardenDatabase.Command(
            c,
            null,
            """
            INSERT INTO bank_entries(bank_id, signal_type, signal, labels, source, external_id, enabled, note, deleted, updated_at, seq)
            SELECT @bank, signal_type, signal, labels, @source, external_id, 1, note, 0, @now, seq FROM warden_import ORDER BY seq
            """ + "\n" + UpsertSet + ";\nTRUNCATE warden_import",
            ("bank", bankId), ("source", source), ("now", 0L));
        using var tombstoner = new Tombstoner(c);
        var staged = new HashSet<(string, string, string)>();

        // Each batch is read before its transaction starts: a slow source (an upload) never holds the counter.
        foreach (var batch in records.Chunk(batchSize))
        {
            DbTransaction? tx = c.BeginTransaction(IsolationLevel.ReadCommitted);
            NpgsqlBinaryImporter? copy = null;
            try
            {
                var locked = LockSeq(c, tx);
                var seq = locked;

                // The staging sort spills to disk at the default 4 MB.
                c.Execute("SET LOCAL work_mem = '64MB'", transaction: tx);
                upsert.Transaction = tx;
                staged.Clear();

                void Flush(ref ImportCounts counts)
                {
                    if (copy is null)
                    {
                        return;
                    }

                    copy.Complete();
                    copy.Dispose();
                    copy = null;
                    staged.Clear();
                    upsert.Parameters[2].Value = Now();
                    counts.Affected += upsert.ExecuteNonQuery();
                }

                foreach (var record in batch)
                {
                    if (record.Deleted)
                    {
                        // Order matters (a tombstone then a re-add leaves the entry live): stage nothing across it.
                        Flush(ref counts);
                        counts.Deleted += tombstoner.Apply(tx, bankId, record, Now(), ++seq);
                        counts.Tombstones++;
                        continue;
                    }

                    var key = (record.SignalType, record.Signal, record.ExternalId ?? string.Empty);
                    if (!staged.Add(key))
                    {
                        // The same key twice in a run: apply the first before staging the second.
                        Flush(ref counts);
                        staged.Add(key);
                    }

                    copy ??= c.BeginBinaryImport("COPY warden_import (signal_type, signal, labels, external_id, note, seq) FROM STDIN (FORMAT BINARY)");
                    copy.StartRow();
                    copy.Write(record.SignalType, NpgsqlDbType.Text);
                    copy.Write(record.Signal, NpgsqlDbType.Text);
                    copy.Write(LabelsJson.Write(record.Labels), NpgsqlDbType.Text);
                    copy.Write(key.Item3, NpgsqlDbType.Text);
                    if (record.Note is null)
                    {
                        copy.WriteNull();
                    }
                    else
                    {
                        copy.Write(record.Note, NpgsqlDbType.Text);
                    }

                    copy.Write(++seq, NpgsqlDbType.Bigint);
                }

                Flush(ref counts);
                CommitBatch(c, ref tx, locked);
            }
            finally
            {
                // An unfinished COPY is cancelled by disposing it; then the transaction rolls back.
                copy?.Dispose();
                tx?.Dispose();
            }

            counts.Processed += batch.Length;
            progress?.Invoke(counts.Processed);
        }

        if (counts.Processed == 0)
        {
            progress?.Invoke(0);
        }
    }

    /// <summary>
    /// Commits an import batch. Records that changed nothing used no number: the counter moves only to the
    /// highest number a row took (only this transaction can hold numbers above the locked value), so
    /// re-importing a file leaves the change sequence, and the snapshots keyed on it, as they were.
    /// </summary>
    private static void CommitBatch(DbConnection c, ref DbTransaction? tx, long locked)
    {
        c.Execute($"UPDATE counters SET value = (SELECT COALESCE(MAX(seq), @locked) FROM bank_entries WHERE seq > @locked) WHERE name = '{SeqCounter}'", new { locked }, tx);
        tx!.Commit();
        tx.Dispose();
        tx = null;
    }

    /// <summary>Streams a bank's entries in id order (tombstones only when asked).</summary>
    public IEnumerable<BankEntry> ExportEntries(long bankId, bool includeDeleted = false)
    {
        using var c = _db.OpenConnection();
        using var cmd = WardenDatabase.Command(c, null, "SELECT * FROM bank_entries WHERE bank_id = @bank AND (@all = 1 OR deleted = 0) ORDER BY id", ("bank", bankId), ("all", includeDeleted ? 1L : 0L));
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            yield return ReadEntry(reader);
        }
    }

    private const string EnabledEntriesSql = """
        SELECT e.id, e.bank_id, e.signal_type, e.signal FROM bank_entries e JOIN banks b ON b.id = e.bank_id
        WHERE b.enabled = 1 AND e.enabled = 1 AND e.deleted = 0
        """;

    /// <summary>
    /// Streams what the matcher indexes: live, enabled entries of enabled banks. To build an index and then
    /// tail changes, use <see cref="ReadIndex"/>, which also says where to start tailing.
    /// </summary>
    public IEnumerable<IndexedEntry> EnabledEntries()
    {
        using var c = _db.OpenConnection();
        using var cmd = WardenDatabase.Command(c, null, EnabledEntriesSql);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            yield return new IndexedEntry(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3));
        }
    }

    /// <summary>
    /// Hands every live, enabled entry of an enabled bank (of every bank with
    /// <paramref name="includeDisabledBanks"/>) to <paramref name="add"/>, and every bank to
    /// <paramref name="bank"/>, all read from one snapshot, and returns the change sequence of that snapshot:
    /// pass it to <see cref="ChangesSince"/> to tail from exactly there. A live index that follows the feed
    /// should include disabled banks' entries and skip them at match time: the feed reports a bank being
    /// enabled again as a bank change only, not as changes of its entries.
    /// </summary>
    public long ReadIndex(Action<IndexedEntry> add, bool includeDisabledBanks = false, Action<Bank>? bank = null)
    {
        ArgumentNullException.ThrowIfNull(add);
        return Run(c =>
        {
            using var tx = BeginSnapshot(c);
            var seq = c.ExecuteScalar<long>($"SELECT value FROM counters WHERE name = '{SeqCounter}'", transaction: tx);
            if (bank is not null)
            {
                foreach (var row in c.Query<BankRow>("SELECT * FROM banks ORDER BY id", transaction: tx))
                {
                    bank(row.ToBank());
                }
            }

            var sql = includeDisabledBanks ? "SELECT id, bank_id, signal_type, signal FROM bank_entries WHERE enabled = 1 AND deleted = 0" : EnabledEntriesSql;
            using (var cmd = WardenDatabase.Command(c, tx, sql))
            using (var reader = cmd.ExecuteReader())
            {
                while (reader.Read())
                {
                    add(new IndexedEntry(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3)));
                }
            }

            tx.Commit();
            return seq;
        });
    }

    /// <summary>
    /// What changed after <paramref name="afterSeq"/>: banks and entries whose latest change numbers lie in
    /// (afterSeq, <see cref="ChangeBatch.HighWater"/>], each with its current state, read from one snapshot.
    /// At most about <paramref name="limit"/> entries (all entries of the last change number are included, so a
    /// batch never splits one change); <see cref="ChangeBatch.HasMore"/> says to call again at once. Feed
    /// HighWater back as the next afterSeq. Rows are never skipped: see the class remarks for why.
    /// A row changed twice appears once, in its latest state.
    /// </summary>
    public ChangeBatch ChangesSince(long afterSeq, int limit = 10_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return Run(c =>
        {
            using var tx = BeginSnapshot(c);
            var top = c.ExecuteScalar<long>($"SELECT value FROM counters WHERE name = '{SeqCounter}'", transaction: tx);
            var boundary = c.ExecuteScalar<long?>("SELECT seq FROM bank_entries WHERE seq > @afterSeq ORDER BY seq LIMIT 1 OFFSET @skip", new { afterSeq, skip = (long)limit - 1 }, tx);
            var high = Math.Min(boundary ?? top, top);
            if (high <= afterSeq)
            {
                tx.Commit();
                return new ChangeBatch([], [], top, HasMore: false); // top < afterSeq: a different database
            }

            var banks = c.Query<BankRow>("SELECT * FROM banks WHERE seq > @afterSeq AND seq <= @high ORDER BY seq", new { afterSeq, high }, tx).Select(r => r.ToBank()).ToList();
            var entries = new List<EntryChange>();
            using (var cmd = WardenDatabase.Command(c, tx, "SELECT id, bank_id, signal_type, signal, enabled, deleted, seq FROM bank_entries WHERE seq > @afterSeq AND seq <= @high ORDER BY seq", ("afterSeq", afterSeq), ("high", high)))
            using (var reader = cmd.ExecuteReader())
            {
                while (reader.Read())
                {
                    entries.Add(new EntryChange(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4) != 0, reader.GetInt64(5) != 0, reader.GetInt64(6)));
                }
            }

            tx.Commit();
            return new ChangeBatch(banks, entries, high, HasMore: high < top);
        });
    }

    /// <summary>
    /// One bank's changes after <paramref name="afterSeq"/>, whole entries (tombstones and disabled ones too), read from
    /// one snapshot the way <see cref="ChangesSince"/> reads them (so a peer that mirrors the bank never skips a row):
    /// at most about <paramref name="limit"/> entries; feed HighWater back as the next afterSeq while HasMore.
    /// </summary>
    public (IReadOnlyList<(BankEntry Entry, long Seq)> Entries, long HighWater, bool HasMore) BankChangesSince(long bankId, long afterSeq, int limit = 5_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return Run(c =>
        {
            using var tx = BeginSnapshot(c);
            var top = c.ExecuteScalar<long>($"SELECT value FROM counters WHERE name = '{SeqCounter}'", transaction: tx);
            var boundary = c.ExecuteScalar<long?>("SELECT seq FROM bank_entries WHERE seq > @afterSeq AND bank_id = @bankId ORDER BY seq LIMIT 1 OFFSET @skip", new { afterSeq, bankId, skip = (long)limit - 1 }, tx);
            var high = Math.Min(boundary ?? top, top);
            var entries = new List<(BankEntry, long)>();
            if (high > afterSeq)
            {
                using var cmd = WardenDatabase.Command(c, tx, "SELECT * FROM bank_entries WHERE seq > @afterSeq AND seq <= @high AND bank_id = @bankId ORDER BY seq", ("afterSeq", afterSeq), ("high", high), ("bankId", bankId));
                using var reader = cmd.ExecuteReader();
                var seqColumn = reader.GetOrdinal("seq");
                while (reader.Read())
                {
                    entries.Add((ReadEntry(reader), reader.GetInt64(seqColumn)));
                }
            }

            tx.Commit();
            return ((IReadOnlyList<(BankEntry, long)>)entries, Math.Max(high, afterSeq), high < top && boundary is not null);
        });
    }

    /// <summary>Entries by id (for labelling match results).</summary>
    public IReadOnlyDictionary<long, BankEntry> GetEntries(IEnumerable<long> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Run(c =>
        {
            var result = new Dictionary<long, BankEntry>();
            foreach (var chunk in ids.Distinct().Chunk(500))
            {
                using var cmd = WardenDatabase.Command(c, null, $"SELECT * FROM bank_entries WHERE id IN ({string.Join(",", chunk.Select((_, i) => "@p" + i))})", chunk.Select((id, i) => ("p" + i, (object?)id)).ToArray());
                using var reader = cmd.ExecuteReader();
                while (reader.Read())
                {
                    var e = ReadEntry(reader);
                    result[e.Id] = e;
                }
            }

            return result;
        });
    }

    /// <summary>
    /// The live entries of one bank that carry <paramref name="signal"/> of <paramref name="signalType"/>, read from
    /// the database (not the live index, which trails writes by up to one poll).
    /// </summary>
    public IReadOnlyList<BankEntry> EntriesWithSignal(string bankName, string signalType, string signal)
    {
        ArgumentNullException.ThrowIfNull(bankName);
        ArgumentNullException.ThrowIfNull(signalType);
        ArgumentNullException.ThrowIfNull(signal);
        return Run(c =>
        {
            var result = new List<BankEntry>();
            using var cmd = WardenDatabase.Command(
                c,
                null,
                "SELECT e.* FROM bank_entries e JOIN banks b ON b.id = e.bank_id WHERE b.name = @bank AND e.signal_type = @type AND e.signal = @signal AND e.deleted = 0",
                ("bank", (object?)bankName),
                ("type", signalType),
                ("signal", signal));
            using var reader = cmd.ExecuteReader();
            while (reader.Read())
            {
                result.Add(ReadEntry(reader));
            }

            return result;
        });
    }

    /// <summary>Turns one entry into a tombstone; false when it did not exist or was already deleted.</summary>
    public bool DeleteEntry(long id) => Run(c =>
    {
        using var tx = BeginWrite(c);
        var seq = NextSeq(c, tx);
        var n = c.Execute("UPDATE bank_entries SET deleted = 1, updated_at = @now, seq = @seq WHERE id = @id AND deleted = 0", new { id, now = Now(), seq }, tx);
        if (n > 0)
        {
            tx.Commit();
        }

        return n > 0;
    });

    /// <summary>Enables or disables one entry (a disabled entry stays in the bank but is not matched); false when it did not exist, is deleted, or already had that state.</summary>
    public bool SetEntryEnabled(long id, bool enabled) => Run(c =>
    {
        using var tx = BeginWrite(c);
        var seq = NextSeq(c, tx);
        var value = enabled ? 1L : 0L;
        var n = c.Execute("UPDATE bank_entries SET enabled = @value, updated_at = @now, seq = @seq WHERE id = @id AND deleted = 0 AND enabled <> @value", new { id, value, now = Now(), seq }, tx);
        if (n > 0)
        {
            tx.Commit();
        }

        return n > 0;
    });

    private static BankEntry ReadEntry(DbDataReader r) => new(
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
    public void Dispose()
    {
        if (_ownsDatabase)
        {
            _db.Dispose();
        }
    }

    private sealed class BankRow
    {
        public long Id { get; set; }

        public string Name { get; set; } = string.Empty;

        public long Kind { get; set; }

        public long Enabled { get; set; }

        public string Thresholds { get; set; } = "{}";

        public string? Description { get; set; }

        public long Created_At { get; set; }

        public Bank ToBank() => new(Id, Name, (BankKind)Kind, Enabled != 0, ThresholdsJson.Read(Thresholds), Description, DateTimeOffset.FromUnixTimeMilliseconds(Created_At));
    }
}
/// <summary>A bank's thresholds as a JSON object (keys sorted): type name → distance.</summary>
internal static class ThresholdsJson
{
    private static readonly IReadOnlyDictionary<string, int> Empty = new Dictionary<string, int>(StringComparer.Ordinal);

    public static string Write(SortedDictionary<string, int> thresholds)
    {
        if (thresholds.Count == 0)
        {
            return "{}";
        }

        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (type, value) in thresholds)
            {
                w.WriteNumber(type, value);
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static IReadOnlyDictionary<string, int> Read(string? json)
    {
        if (string.IsNullOrEmpty(json) || json == "{}")
        {
            return Empty;
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            var map = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                map[p.Name] = p.Value.GetInt32();
            }

            return map;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new StorageException(StorageError.Invalid, $"A bank's stored thresholds are not a JSON object of integers: {ex.Message}", ex);
        }
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
