using System.Data;
using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.Storage;

namespace Warden.Review.Storage;

/// <summary>
/// The review state (audit log, evidence catalogue, report outbox, console users, sessions, exposure counters,
/// the case log, settings) in Warden's configured database: the same <see cref="WardenDatabase"/> and the same
/// migration runner as the banks, on a SQLite file (one node) or PostgreSQL (several nodes on one database).
/// Thread-safe: each operation takes a pooled connection of its own.
/// </summary>
public sealed class ReviewDatabase : IDisposable
{
    /// <summary>Advisory lock key of audit appends on PostgreSQL ("warden.a"); distinct from the migration key.</summary>
    internal const long AuditLockKey = 0x7761726465_6E2E61;

    private readonly bool _owns;

    private ReviewDatabase(WardenDatabase database, bool owns)
    {
        Database = database;
        _owns = owns;
    }

    /// <summary>The underlying database.</summary>
    public WardenDatabase Database { get; }

    /// <summary>SQLite or PostgreSQL.</summary>
    public SqlDialect Dialect => Database.Dialect;

    /// <summary>For messages (never a password).</summary>
    public string DisplayName => Database.DisplayName;

    /// <summary>
    /// Opens <paramref name="target"/> (a SQLite file path or a PostgreSQL connection string, as for
    /// <see cref="WardenDatabase.Open"/>) and brings the review tables to the latest version. Disposing the
    /// result closes the database.
    /// </summary>
    public static ReviewDatabase Open(string target)
    {
        var database = WardenDatabase.Open(target);
        try
        {
            database.Migrate(ReviewSql.Schema);
            return new ReviewDatabase(database, owns: true);
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    /// <summary>The review tables on an already open database (migrated now); the caller keeps ownership of it.</summary>
    public static ReviewDatabase On(WardenDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        database.Migrate(ReviewSql.Schema);
        return new ReviewDatabase(database, owns: false);
    }

    /// <summary>An open connection; the caller disposes it.</summary>
    internal DbConnection Connect()
    {
        var connection = Database.OpenConnection();
        if (Dialect == SqlDialect.Sqlite)
        {
            // An acknowledged audit record or outbox step must survive a power cut: FULL, not the banks' NORMAL.
            connection.Execute("PRAGMA synchronous=FULL;");
        }

        return connection;
    }

    /// <summary>
    /// A write transaction that takes its lock up front: SQLite's BEGIN IMMEDIATE (so a read-then-write never
    /// fails on upgrade); on PostgreSQL READ COMMITTED plus, when <paramref name="lockKey"/> is given, a
    /// transaction-level advisory lock that serialises the writers of that key across nodes.
    /// </summary>
    internal DbTransaction BeginWrite(DbConnection connection, long? lockKey = null)
    {
        if (Dialect == SqlDialect.Sqlite)
        {
            return ((SqliteConnection)connection).BeginTransaction(deferred: false);
        }

        var tx = connection.BeginTransaction(IsolationLevel.ReadCommitted);
        if (lockKey is { } key)
        {
            connection.Execute("SELECT pg_advisory_xact_lock(@key)", new { key }, tx);
        }

        return tx;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_owns)
        {
            Database.Dispose();
        }
    }
}
