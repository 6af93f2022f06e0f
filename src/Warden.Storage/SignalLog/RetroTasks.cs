using System.Data.Common;
using System.Globalization;
using Dapper;

namespace Warden.Storage;

/// <summary>One fanned-out piece of a retroactive delta: the entries of change-feed range (After, High] against one index unit of the log.</summary>
/// <param name="Key">The task's key (also the work item's idempotency key).</param>
/// <param name="After">The delta's first change number, exclusive.</param>
/// <param name="High">The delta's last change number, inclusive.</param>
/// <param name="Unit">The log unit ("wMONDAY" or "dDAY", see <see cref="RetroactiveSearch.Units"/>).</param>
/// <param name="Entries">Entries in the delta when it was fanned out.</param>
/// <param name="Done">True once a worker recorded its matches.</param>
public sealed record RetroTask(string Key, long After, long High, string Unit, long Entries, bool Done);

/// <summary>Progress of one fanned-out delta.</summary>
/// <param name="After">The delta's first change number, exclusive.</param>
/// <param name="High">Its last change number, inclusive.</param>
/// <param name="Entries">Entries in the delta.</param>
/// <param name="Units">Tasks (log units) in all.</param>
/// <param name="Queued">Tasks handed to the queue.</param>
/// <param name="Done">Tasks finished.</param>
/// <param name="Hits">Matches newly recorded by the finished tasks.</param>
/// <param name="CreatedAt">When the delta was fanned out.</param>
public sealed record RetroDeltaStatus(long After, long High, long Entries, long Units, long Queued, long Done, long Hits, DateTimeOffset CreatedAt);

/// <summary>
/// The database side of a retroactive delta too large for one node: the server splits it into one task per
/// index unit of the signal log (<see cref="RetroactivePass"/> with a fan-out size), any backfill worker
/// publishes the tasks on the work queue and processes them. A task's completion is written in the
/// transaction that records its matches, so a redelivered task is only acknowledged, and each match is
/// recorded once by its key ("rt:ENTRY:DAY:ROW", as in the in-process pass) whoever finds it.
/// </summary>
public sealed class RetroTasks(SignalLog log)
{
    /// <summary>A task still not done this long after it was queued is queued again (a lost message); duplicates are harmless.</summary>
    public static readonly TimeSpan RequeueAfter = TimeSpan.FromHours(1);

    /// <summary>The key of a delta's task for a unit.</summary>
    public static string Key(long after, long high, string unit) =>
        string.Create(CultureInfo.InvariantCulture, $"rt-task:{after}:{high}:{unit}");

    /// <summary>Creates the tasks of a delta (those that exist already are kept as they are); returns how many are new.</summary>
    public int Create(long after, long high, int entries, IEnumerable<string> units)
    {
        ArgumentNullException.ThrowIfNull(units);
        using var c = log.Open();
        using var tx = c.BeginTransaction();
        var n = 0;
        foreach (var unit in units)
        {
            n += c.Execute(
                "INSERT INTO retro_tasks(task_key, delta_after, delta_high, unit, entries, created_at) VALUES (@key, @after, @high, @unit, @entries, @now) ON CONFLICT (task_key) DO NOTHING",
                new { key = Key(after, high, unit), after, high, unit, entries, now = log.Now.ToUnixTimeMilliseconds() },
                tx);
        }

        tx.Commit();
        return n;
    }

    /// <summary>Tasks to publish: never queued, or queued long ago and still not done (oldest first).</summary>
    public IReadOnlyList<string> ToQueue(int limit)
    {
        using var c = log.Open();
        return c.Query<string>(
            "SELECT task_key FROM retro_tasks WHERE done_at IS NULL AND (queued_at IS NULL OR queued_at < @stale) ORDER BY created_at, task_key LIMIT @limit",
            new { stale = (log.Now - RequeueAfter).ToUnixTimeMilliseconds(), limit }).ToList();
    }

    /// <summary>Notes that tasks were published.</summary>
    public void MarkQueued(IEnumerable<string> keys)
    {
        using var c = log.Open();
        using var tx = c.BeginTransaction();
        var now = log.Now.ToUnixTimeMilliseconds();
        foreach (var key in keys)
        {
            c.Execute("UPDATE retro_tasks SET queued_at = @now WHERE task_key = @key", new { key, now }, tx);
        }

        tx.Commit();
    }

    /// <summary>A task by key, or null when there is none.</summary>
    public RetroTask? Get(string key)
    {
        using var c = log.Open();
        return c.QuerySingleOrDefault<(string, long, long, string, long, long?)?>(
            "SELECT task_key, delta_after, delta_high, unit, entries, done_at FROM retro_tasks WHERE task_key = @key", new { key }) is { } r
            ? new RetroTask(r.Item1, r.Item2, r.Item3, r.Item4, r.Item5, r.Item6 is not null)
            : null;
    }

    /// <summary>Marks a task done inside the caller's transaction; false when another delivery already did (then roll back).</summary>
    public bool TryComplete(DbConnection connection, DbTransaction transaction, string key, int hits, string worker)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.Execute(
            "UPDATE retro_tasks SET done_at = @now, hits = @hits, worker = @worker WHERE task_key = @key AND done_at IS NULL",
            new { key, hits, worker, now = log.Now.ToUnixTimeMilliseconds() },
            transaction) == 1;
    }

    /// <summary>The most recent deltas' progress (unfinished ones first), at most <paramref name="limit"/>.</summary>
    public IReadOnlyList<RetroDeltaStatus> Status(int limit = 10)
    {
        using var c = log.Open();
        return c.Query<(long, long, long, long, long, long, long, long)>(
            """
            SELECT delta_after, delta_high, MAX(entries), COUNT(*), COUNT(queued_at), COUNT(done_at), CAST(COALESCE(SUM(hits), 0) AS BIGINT), MIN(created_at)
            FROM retro_tasks GROUP BY delta_after, delta_high
            ORDER BY CASE WHEN COUNT(done_at) < COUNT(*) THEN 0 ELSE 1 END, MIN(created_at) DESC LIMIT @limit
            """,
            new { limit })
            .Select(r => new RetroDeltaStatus(r.Item1, r.Item2, r.Item3, r.Item4, r.Item5, r.Item6, r.Item7, DateTimeOffset.FromUnixTimeMilliseconds(r.Item8)))
            .ToList();
    }
}
