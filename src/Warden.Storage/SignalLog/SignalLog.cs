using System.Data.Common;
using Dapper;
using Warden.Core.Hashing.Pdq;

namespace Warden.Storage;

/// <summary>
/// The signal log (opt-in): the signals and upload context of every upload the server or a backfill worker
/// matched, never the media, so that hash-list entries added later can be searched against earlier uploads
/// (retroactive matching). Partitioned by the UTC day the row was logged: one table pair per day
/// (<c>signal_log_YYYYMMDD</c> for uploads, <c>signal_log_x_YYYYMMDD</c> for their exact signals), listed in
/// <c>signal_log_partitions</c>, so retention drops whole tables instead of deleting rows. The same layout on
/// SQLite and PostgreSQL. Thread-safe.
/// </summary>
public sealed class SignalLog
{
    /// <summary>The default retention.</summary>
    public const int DefaultRetentionDays = 90;

    private readonly WardenDatabase _db;
    private readonly TimeProvider _time;
    private readonly HashSet<int> _known = [];
    private readonly Lock _gate = new();

    /// <summary>Opens the log on <paramref name="database"/>, creating its tables when missing.</summary>
    /// <param name="database">The Warden database.</param>
    /// <param name="snapshotDirectory">Where per-partition index snapshots live (see <see cref="RetroactiveSearch"/>).</param>
    /// <param name="retentionDays">Days a partition is kept (at least 1).</param>
    /// <param name="time">The clock (tests move it).</param>
    public SignalLog(WardenDatabase database, string snapshotDirectory, int retentionDays = DefaultRetentionDays, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentException.ThrowIfNullOrEmpty(snapshotDirectory);
        ArgumentOutOfRangeException.ThrowIfLessThan(retentionDays, 1);
        _db = database;
        _time = time ?? TimeProvider.System;
        SnapshotDirectory = snapshotDirectory;
        RetentionDays = retentionDays;
        _db.Migrate(SignalLogSchema.Set);
    }

    /// <summary>The database.</summary>
    public WardenDatabase Database => _db;

    /// <summary>Where partition snapshots live.</summary>
    public string SnapshotDirectory { get; }

    /// <summary>Days a partition is kept.</summary>
    public int RetentionDays { get; }

    /// <summary>Now, by the log's clock.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();

    /// <summary>The partition (yyyymmdd) of a time.</summary>
    public static int DayOf(DateTimeOffset t)
    {
        var u = t.UtcDateTime;
        return (u.Year * 10000) + (u.Month * 100) + u.Day;
    }

    /// <summary>The start (UTC midnight) of a partition's day.</summary>
    public static DateTimeOffset StartOf(int day) =>
        new(day / 10000, day / 100 % 100, day % 100, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Logs one upload in its own transaction; returns its partition and row id.</summary>
    public (int Day, long Id) Append(LoggedSignals signals, UploadRecord upload)
    {
        EnsurePartition(DayOf(Now));
        using var c = Open();
        using var tx = c.BeginTransaction();
        var r = Append(c, tx, signals, upload);
        tx.Commit();
        return r;
    }

    /// <summary>Logs one upload inside the caller's transaction (a backfill worker's exactly-once unit).</summary>
    public (int Day, long Id) Append(DbConnection connection, DbTransaction transaction, LoggedSignals signals, UploadRecord upload)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(signals);
        ArgumentNullException.ThrowIfNull(upload);
        var now = Now;
        var day = DayOf(now);
        bool known;
        lock (_gate)
        {
            known = _known.Contains(day);
        }

        if (!known)
        {
            // On the caller's transaction: a second connection would wait on this one's lock (SQLite). Idempotent.
            CreatePartition(connection, transaction, day);
        }

        var sha256 = signals.Exact.FirstOrDefault(e => e.Type == "sha256").Value;
        var id = connection.ExecuteScalar<long>(
            $"""
            INSERT INTO signal_log_{day}(logged_at, uploaded_at, uploader, content_id, content_url, source, bank_seq, pdq, trimmed, pdq_quality, sha256, extra)
            VALUES (@logged, @uploaded, @Uploader, @ContentId, @ContentUrl, @Source, @BankSequence, @pdq, @trimmed, @PdqQuality, @sha256, @Extra) RETURNING id
            """,
            new
            {
                logged = now.ToUnixTimeMilliseconds(),
                uploaded = upload.UploadedAt.ToUnixTimeMilliseconds(),
                upload.Uploader,
                upload.ContentId,
                upload.ContentUrl,
                upload.Source,
                upload.BankSequence,
                pdq = LoggedSignals.Pack(signals.Pdq),
                trimmed = LoggedSignals.Pack(signals.Trimmed),
                signals.PdqQuality,
                sha256,
                signals.Extra,
            },
            transaction);
        // The exact signals (usually the three digests) in one statement, not one round trip each.
        var exact = signals.Exact.Distinct().ToList();
        if (exact.Count > 0)
        {
            var sql = new System.Text.StringBuilder($"INSERT INTO signal_log_x_{day}(type, value, log_id) VALUES ");
            var args = new DynamicParameters();
            args.Add("id", id);
            for (var i = 0; i < exact.Count; i++)
            {
                sql.Append(i == 0 ? "" : ", ").Append(System.Globalization.CultureInfo.InvariantCulture, $"(@t{i}, @v{i}, @id)");
                args.Add("t" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), exact[i].Type);
                args.Add("v" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), exact[i].Value);
            }

            connection.Execute(sql.ToString(), args, transaction);
        }

        return (day, id);
    }

    /// <summary>
    /// Takes back a row appended earlier in the caller's still-open transaction (a batch found another delivery had
    /// already claimed the item): the rest of the batch commits, this row never becomes visible.
    /// </summary>
    public static void Remove(DbConnection connection, DbTransaction transaction, int day, long id)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.Execute($"DELETE FROM signal_log_x_{Checked(day)} WHERE log_id = @id", new { id }, transaction);
        connection.Execute($"DELETE FROM signal_log_{day} WHERE id = @id", new { id }, transaction);
    }

    /// <summary>The partitions (days) that exist, oldest first.</summary>
    public IReadOnlyList<int> Partitions()
    {
        using var c = Open();
        return c.Query<long>("SELECT day FROM signal_log_partitions ORDER BY day").Select(d => (int)d).ToList();
    }

    /// <summary>Number of uploads in a partition.</summary>
    public long Count(int day)
    {
        using var c = Open();
        return c.ExecuteScalar<long>($"SELECT COUNT(*) FROM signal_log_{Checked(day)}");
    }

    /// <summary>
    /// Drops every partition older than the retention period (tables and their index snapshots) and returns
    /// the days dropped. A partition is dropped whole once its last row is older than the period.
    /// </summary>
    public IReadOnlyList<int> DropExpired()
    {
        var cutoff = DayOf(Now.AddDays(-RetentionDays));
        var dropped = new List<int>();
        foreach (var day in Partitions().Where(d => d < cutoff))
        {
            using (var c = Open())
            using (var tx = c.BeginTransaction())
            {
                c.Execute($"DROP TABLE IF EXISTS signal_log_x_{day}", transaction: tx);
                c.Execute($"DROP TABLE IF EXISTS signal_log_{day}", transaction: tx);
                c.Execute("DELETE FROM signal_log_partitions WHERE day = @day", new { day }, tx);
                tx.Commit();
            }

            lock (_gate)
            {
                _known.Remove(day);
            }

            RetroactiveSearch.DeleteSnapshots(SnapshotDirectory, day);
            dropped.Add(day);
        }

        return dropped;
    }

    /// <summary>Reads a partition's PDQ hashes of rows with id above <paramref name="afterId"/>, in id order (every variant, each with its row id).</summary>
    public void ReadPdq(int day, long afterId, List<PdqHash> hashes, List<long> ids)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        ArgumentNullException.ThrowIfNull(ids);
        using var c = Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT id, pdq, trimmed FROM signal_log_{Checked(day)} WHERE id > @after AND pdq IS NOT NULL ORDER BY id";
        var p = cmd.CreateParameter();
        p.ParameterName = "after";
        p.Value = afterId;
        cmd.Parameters.Add(p);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            var id = reader.GetInt64(0);
            var n = LoggedSignals.Unpack((byte[])reader.GetValue(1), hashes);
            if (!reader.IsDBNull(2))
            {
                n += LoggedSignals.Unpack((byte[])reader.GetValue(2), hashes);
            }

            for (var i = 0; i < n; i++)
            {
                ids.Add(id);
            }
        }
    }

    /// <summary>
    /// The rows of a partition that logged a record-only signal of <paramref name="type"/> (e.g. "vpdq") in
    /// their extra signals, in id order, with its value. A row whose extra signals are not a JSON object of
    /// strings is skipped (it cannot match, and one damaged row must not stop a retroactive pass).
    /// </summary>
    public IReadOnlyList<(long Id, string Value)> ReadExtra(int day, string type)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        using var c = Open();
        var found = new List<(long, string)>();
        foreach (var (id, extra) in c.Query<(long, string)>($"SELECT id, extra FROM signal_log_{Checked(day)} WHERE extra IS NOT NULL ORDER BY id"))
        {
            try
            {
                if (System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(extra) is { } signals && signals.TryGetValue(type, out var value))
                {
                    found.Add((id, value));
                }
            }
            catch (System.Text.Json.JsonException)
            {
            }
        }

        return found;
    }

    /// <summary>The highest row id of a partition (0 when empty).</summary>
    public long MaxId(int day)
    {
        using var c = Open();
        return c.ExecuteScalar<long?>($"SELECT MAX(id) FROM signal_log_{Checked(day)}") ?? 0;
    }

    /// <summary>Rows of a partition whose exact signal of <paramref name="type"/> is one of <paramref name="values"/>.</summary>
    public IReadOnlyList<(string Value, long Id)> LookupExact(int day, string type, IReadOnlyCollection<string> values)
    {
        using var c = Open();
        var found = new List<(string, long)>();
        foreach (var chunk in values.Chunk(500))
        {
            found.AddRange(c.Query<(string, long)>($"SELECT value, log_id FROM signal_log_x_{Checked(day)} WHERE type = @type AND {In("value")}", new { type, chunk }));
        }

        return found;
    }

    /// <summary>The uploads of a partition by row id (missing ids are left out).</summary>
    public IReadOnlyDictionary<long, LoggedUpload> Get(int day, IEnumerable<long> ids)
    {
        using var c = Open();
        var result = new Dictionary<long, LoggedUpload>();
        foreach (var chunk in ids.Distinct().Chunk(500))
        {
            foreach (var r in c.Query<Row>($"SELECT id AS Id, logged_at AS LoggedAt, uploaded_at AS UploadedAt, uploader AS Uploader, content_id AS ContentId, content_url AS ContentUrl, source AS Source, bank_seq AS BankSeq, sha256 AS Sha256 FROM signal_log_{Checked(day)} WHERE {In("id")}", new { chunk }))
            {
                result[r.Id] = new LoggedUpload(
                    day, r.Id, DateTimeOffset.FromUnixTimeMilliseconds(r.LoggedAt),
                    new UploadRecord(r.Uploader, r.ContentId, r.ContentUrl, DateTimeOffset.FromUnixTimeMilliseconds(r.UploadedAt), r.Source, r.BankSeq),
                    r.Sha256);
            }
        }

        return result;
    }

    /// <summary>
    /// Records a match once: false (and nothing written) when its key is already recorded, so a repeated
    /// delivery or a repeated retroactive pass never records or acts twice.
    /// </summary>
    public bool RecordMatch(DbConnection connection, DbTransaction? transaction, SignalMatch match)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(match);
        return connection.Execute(
            """
            INSERT INTO signal_matches(match_key, kind, created_at, day, log_id, bank_id, entry_id, signal_type, distance, uploader, content_id, uploaded_at, sha256)
            VALUES (@Key, @Kind, @now, @Day, @LogId, @BankId, @EntryId, @SignalType, @Distance, @Uploader, @ContentId, @uploaded, @Sha256)
            ON CONFLICT (match_key) DO NOTHING
            """,
            new
            {
                match.Key,
                match.Kind,
                now = Now.ToUnixTimeMilliseconds(),
                match.Day,
                match.LogId,
                match.BankId,
                match.EntryId,
                match.SignalType,
                match.Distance,
                match.Uploader,
                match.ContentId,
                uploaded = match.UploadedAt.ToUnixTimeMilliseconds(),
                match.Sha256,
            },
            transaction) == 1;
    }

    /// <summary>Records a match in its own transaction (see the other overload).</summary>
    public bool RecordMatch(SignalMatch match)
    {
        using var c = Open();
        return RecordMatch(c, null, match);
    }

    /// <summary>Every recorded match, oldest first (tests, status, the review hand-off).</summary>
    public IReadOnlyList<(SignalMatch Match, bool Acted)> Matches(string? kind = null)
    {
        using var c = Open();
        return c.Query<MatchRow>(
            "SELECT * FROM signal_matches WHERE (@kind IS NULL OR kind = @kind) ORDER BY created_at, match_key", new { kind })
            .Select(r => (r.ToMatch(), r.Acted_At is not null)).ToList();
    }

    /// <summary>
    /// Claims up to <paramref name="limit"/> recorded matches nobody has acted on: each is marked acted by a
    /// conditional update before it is returned, so across any number of nodes each match is handed out once.
    /// </summary>
    public IReadOnlyList<SignalMatch> ClaimUnacted(int limit)
    {
        using var c = Open();
        var claimed = new List<SignalMatch>();
        foreach (var r in c.Query<MatchRow>("SELECT * FROM signal_matches WHERE acted_at IS NULL ORDER BY created_at LIMIT @limit", new { limit }).ToList())
        {
            if (c.Execute("UPDATE signal_matches SET acted_at = @now WHERE match_key = @k AND acted_at IS NULL", new { now = Now.ToUnixTimeMilliseconds(), k = r.Match_Key }) == 1)
            {
                claimed.Add(r.ToMatch());
            }
        }

        return claimed;
    }

    /// <summary>A named checkpoint (retroactive matching's change number); 0 when unset.</summary>
    public long GetCheckpoint(string name)
    {
        using var c = Open();
        return c.ExecuteScalar<long?>("SELECT value FROM signal_log_state WHERE name = @name", new { name }) ?? 0;
    }

    /// <summary>Sets a named checkpoint.</summary>
    public void SetCheckpoint(string name, long value)
    {
        using var c = Open();
        c.Execute("INSERT INTO signal_log_state(name, value) VALUES (@name, @value) ON CONFLICT (name) DO UPDATE SET value = excluded.value", new { name, value });
    }

    /// <summary>An open connection to the log's database.</summary>
    public DbConnection Open() => _db.OpenConnection();

    // Dapper expands a list for SQLite; Npgsql takes the array as one parameter.
    private string In(string column) => _db.Dialect == SqlDialect.Postgres ? column + " = ANY(@chunk)" : column + " IN @chunk";

    private static int Checked(int day) =>
        day is >= 19700101 and <= 99991231 ? day : throw new ArgumentOutOfRangeException(nameof(day), day, "Not a partition day (yyyymmdd).");

    /// <summary>Creates the partition of today (by the log's clock) if missing: call before a transaction that appends.</summary>
    public void EnsurePartition() => EnsurePartition(DayOf(Now));

    private void EnsurePartition(int day)
    {
        lock (_gate)
        {
            if (_known.Contains(day))
            {
                return;
            }
        }

        // Concurrent creators (several workers at midnight): IF NOT EXISTS plus ON CONFLICT make the race
        // harmless; PostgreSQL can still report a duplicate type when two CREATEs collide, so retry once.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var c = Open();
                using var tx = c.BeginTransaction();
                CreatePartition(c, tx, day);
                tx.Commit();
                break;
            }
            catch (DbException) when (attempt == 0)
            {
            }
        }

        lock (_gate)
        {
            _known.Add(day);
        }
    }

    private void CreatePartition(DbConnection c, DbTransaction tx, int day)
    {
        foreach (var sql in SignalLogSchema.Partition(_db.Dialect, day))
        {
            c.Execute(sql, transaction: tx);
        }

        c.Execute("INSERT INTO signal_log_partitions(day, created_at) VALUES (@day, @now) ON CONFLICT (day) DO NOTHING", new { day, now = Now.ToUnixTimeMilliseconds() }, tx);
    }

    private sealed record Row(long Id, long LoggedAt, long UploadedAt, string? Uploader, string? ContentId, string? ContentUrl, string Source, long BankSeq, string? Sha256);

#pragma warning disable IDE1006, SA1300 // Dapper maps columns by name
    private sealed class MatchRow
    {
        public string Match_Key { get; set; } = "";

        public string Kind { get; set; } = "";

        public long Day { get; set; }

        public long Log_Id { get; set; }

        public long Bank_Id { get; set; }

        public long Entry_Id { get; set; }

        public string Signal_Type { get; set; } = "";

        public long Distance { get; set; }

        public string? Uploader { get; set; }

        public string? Content_Id { get; set; }

        public long Uploaded_At { get; set; }

        public string? Sha256 { get; set; }

        public long? Acted_At { get; set; }

        public SignalMatch ToMatch() => new(Match_Key, Kind, (int)Day, Log_Id, Bank_Id, Entry_Id, Signal_Type, (int)Distance, Uploader, Content_Id, DateTimeOffset.FromUnixTimeMilliseconds(Uploaded_At), Sha256);
    }
#pragma warning restore IDE1006, SA1300
}
