using Dapper;
using Warden.Storage;

namespace Warden.Review.Storage;

/// <summary>
/// Named leases on periodic work that must run on one node at a time (the evidence retention sweep): a row per
/// job with its holder and expiry. Taking one is a single conditional statement (free, already ours, or
/// expired: its node died), so on PostgreSQL exactly one of several nodes gets it; on SQLite (one node) it
/// is just as correct. A lease left to expire instead of released also spaces the runs: one per period.
/// </summary>
public sealed class WorkLeases(ReviewDatabase database)
{
    /// <summary>The table, in its own migration set.</summary>
    public static IMigrationSet Schema { get; } = new MigrationSet("review-leases",
    [
        new Migration(1, """
            CREATE TABLE work_leases (
                name         TEXT    PRIMARY KEY,
                owner        TEXT    NOT NULL,
                lease_until  BIGINT  NOT NULL
            );
            """),
    ]);

    private bool _migrated;

    /// <summary>Takes or renews the lease on <paramref name="name"/> until <paramref name="now"/> + <paramref name="duration"/>; false when another holder's lease runs.</summary>
    public bool TryTake(string name, string owner, DateTimeOffset now, TimeSpan duration)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(owner);
        Migrate();
        using var c = database.Connect();
        return c.Execute(
            """
            INSERT INTO work_leases(name, owner, lease_until) VALUES (@name, @owner, @until)
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
            WHERE work_leases.owner = excluded.owner OR work_leases.lease_until <= @now
            """,
            new { name, owner, until = (now + duration).ToUnixTimeMilliseconds(), now = now.ToUnixTimeMilliseconds() }) == 1;
    }

    /// <summary>Gives a lease back early (only the holder's).</summary>
    public void Release(string name, string owner)
    {
        Migrate();
        using var c = database.Connect();
        c.Execute("DELETE FROM work_leases WHERE name = @name AND owner = @owner", new { name, owner });
    }

    private void Migrate()
    {
        if (!_migrated)
        {
            database.Database.Migrate(Schema);
            _migrated = true;
        }
    }
}
