using System.Data.Common;
using Dapper;

namespace Warden.Storage;

/// <summary>
/// The database side of a distributed backfill: which items are done (their idempotency keys, written in the
/// same transaction as the item's signal log row and matches, so a redelivered item is recognised and
/// skipped), the pause switch every worker reads, and the completion times 'warden backfill status' turns into
/// a rate.
/// </summary>
public sealed class BackfillLedger(SignalLog log)
{
    private const string PausedKey = "paused";

    /// <summary>True when the item was already processed.</summary>
    public bool IsDone(string key)
    {
        using var c = log.Open();
        return IsDone(c, key);
    }

    /// <summary>True when the item was already processed (on the caller's connection: a worker keeps one open).</summary>
    public static bool IsDone(DbConnection connection, string key) =>
        connection.ExecuteScalar<long>("SELECT COUNT(*) FROM backfill_items WHERE item_key = @key", new { key }) > 0;

    /// <summary>
    /// Which of <paramref name="keys"/> are already processed, in one query per 500 keys: a worker checks a whole
    /// fetched batch at once instead of one round trip per item.
    /// </summary>
    public static HashSet<string> DoneKeys(DbConnection connection, SqlDialect dialect, IReadOnlyCollection<string> keys)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(keys);
        var done = new HashSet<string>(StringComparer.Ordinal);

        // Dapper expands a list for SQLite; Npgsql takes the array as one parameter.
        var sql = dialect == SqlDialect.Postgres
            ? "SELECT item_key FROM backfill_items WHERE item_key = ANY(@chunk)"
            : "SELECT item_key FROM backfill_items WHERE item_key IN @chunk";
        foreach (var chunk in keys.Distinct(StringComparer.Ordinal).Chunk(500))
        {
            done.UnionWith(connection.Query<string>(sql, new { chunk }));
        }

        return done;
    }

    /// <summary>
    /// Claims an item's key inside the caller's transaction: false when another delivery already finished it
    /// (then the caller rolls back and only acknowledges).
    /// </summary>
    /// <param name="connection">The caller's connection.</param>
    /// <param name="transaction">The caller's transaction.</param>
    /// <param name="key">The item's key.</param>
    /// <param name="outcome">What became of it.</param>
    /// <param name="worker">Who did it.</param>
    /// <param name="day">The signal log row it wrote (partition), if any.</param>
    /// <param name="id">The signal log row it wrote (id), if any.</param>
    public bool TryComplete(DbConnection connection, DbTransaction transaction, string key, string outcome, string worker, int? day = null, long? id = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.Execute(
            "INSERT INTO backfill_items(item_key, done_at, outcome, worker, day, log_id) VALUES (@key, @now, @outcome, @worker, @day, @id) ON CONFLICT (item_key) DO NOTHING",
            new { key, now = log.Now.ToUnixTimeMilliseconds(), outcome, worker, day, id },
            transaction) == 1;
    }

    /// <summary>Links a completed item to its signal log row.</summary>
    public static void SetRow(DbConnection connection, DbTransaction transaction, string key, int day, long id)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.Execute("UPDATE backfill_items SET day = @day, log_id = @id WHERE item_key = @key", new { key, day, id }, transaction);
    }

    /// <summary>Items completed since <paramref name="since"/> and the first of them (for the rate).</summary>
    public (long Count, DateTimeOffset? First) DoneSince(DateTimeOffset since)
    {
        using var c = log.Open();
        var (count, first) = c.QuerySingle<(long, long?)>("SELECT COUNT(*), MIN(done_at) FROM backfill_items WHERE done_at >= @t", new { t = since.ToUnixTimeMilliseconds() });
        return (count, first is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null);
    }

    /// <summary>Items completed, by outcome.</summary>
    public IReadOnlyDictionary<string, long> Outcomes()
    {
        using var c = log.Open();
        return c.Query<(string, long)>("SELECT outcome, COUNT(*) FROM backfill_items GROUP BY outcome").ToDictionary(r => r.Item1, r => r.Item2);
    }

    /// <summary>Pauses or resumes every worker (they check before each item).</summary>
    public void SetPaused(bool paused)
    {
        using var c = log.Open();
        c.Execute(
            "INSERT INTO backfill_control(name, value) VALUES (@name, @value) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            new { name = PausedKey, value = paused ? "1" : "0" });
    }

    /// <summary>True while paused.</summary>
    public bool IsPaused()
    {
        using var c = log.Open();
        return c.ExecuteScalar<string?>("SELECT value FROM backfill_control WHERE name = @name", new { name = PausedKey }) == "1";
    }
}
