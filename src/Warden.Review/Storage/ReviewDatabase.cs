using Dapper;
using Microsoft.Data.Sqlite;

namespace Warden.Review.Storage;

/// <summary>
/// The SQLite file holding the audit log, the evidence catalogue and the report outbox. Thread-safe: each
/// operation opens a pooled connection of its own. Durability over speed: WAL with <c>synchronous=FULL</c>,
/// because an acknowledged audit record or outbox step must survive a power cut.
/// </summary>
public sealed class ReviewDatabase
{
    private readonly string _connectionString;

    private ReviewDatabase(string connectionString) => _connectionString = connectionString;

    /// <summary>The database file.</summary>
    public string Path { get; private init; } = "";

    /// <summary>Opens (creating if needed) and migrates the database at <paramref name="path"/>.</summary>
    public static ReviewDatabase Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        var db = new ReviewDatabase(cs) { Path = full };
        using var connection = db.Connect();
        connection.Execute("PRAGMA journal_mode=WAL;");
        Migrate(connection);
        return db;
    }

    /// <summary>An open connection with the per-connection settings applied; the caller disposes it.</summary>
    internal SqliteConnection Connect()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        connection.Execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
        return connection;
    }

    private static void Migrate(SqliteConnection connection)
    {
        using var tx = connection.BeginTransaction();
        connection.Execute("CREATE TABLE IF NOT EXISTS review_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)", transaction: tx);
        var current = connection.ExecuteScalar<long?>("SELECT MAX(version) FROM review_schema_version", transaction: tx) ?? 0;
        foreach (var (version, sql) in ReviewSql.Migrations)
        {
            if (version <= current)
            {
                continue;
            }

            connection.Execute(sql, transaction: tx);
            connection.Execute(
                "INSERT INTO review_schema_version(version, applied_at) VALUES (@version, @at)",
                new { version, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                tx);
        }

        tx.Commit();
    }
}
