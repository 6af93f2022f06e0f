namespace Warden.Storage;

/// <summary>
/// One step of a schema, in both dialects. Version numbers start at 1 and go up by one; a released
/// migration never changes (add a new one instead).
/// </summary>
/// <param name="Version">1, 2, 3, ... within its set.</param>
/// <param name="Sqlite">The step's SQL for SQLite (several statements allowed).</param>
/// <param name="Postgres">The step's SQL for PostgreSQL (several statements allowed).</param>
public sealed record Migration(int Version, string Sqlite, string Postgres)
{
    /// <summary>A step whose SQL is the same in both dialects.</summary>
    public Migration(int version, string sql)
        : this(version, sql, sql)
    {
    }
}

/// <summary>
/// A module's versioned schema (the banks, the server's keys and outbox, the review queue, ...): applied with
/// <see cref="WardenDatabase.Migrate"/>, its version recorded under <see cref="Name"/> in <c>schema_versions</c>.
/// </summary>
public interface IMigrationSet
{
    /// <summary>Unique name of the set (e.g. "banks", "server").</summary>
    string Name { get; }

    /// <summary>The steps, versions 1..n in order.</summary>
    IReadOnlyList<Migration> Migrations { get; }
}

/// <summary>A migration set given by value.</summary>
/// <param name="Name">Unique name of the set.</param>
/// <param name="Migrations">The steps, versions 1..n in order.</param>
public sealed record MigrationSet(string Name, IReadOnlyList<Migration> Migrations) : IMigrationSet;
