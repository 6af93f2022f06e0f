using System.Data;
using System.Data.Common;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Warden.Storage;

/// <summary>The SQL dialect of a <see cref="WardenDatabase"/>.</summary>
public enum SqlDialect
{
    /// <summary>A SQLite file (the default: one node, one file).</summary>
    Sqlite,

    /// <summary>A PostgreSQL database (several nodes on one database).</summary>
    Postgres,
}

/// <summary>
/// Where Warden keeps its data, made from one string: a file path is a SQLite database (created if missing);
/// a <c>postgres://</c> / <c>postgresql://</c> URI or an Npgsql connection string (<c>Host=...;...</c>) is a
/// PostgreSQL database. Hands out opened connections (pooled, so one instance serves many threads) and runs
/// the <see cref="IMigrationSet">migration sets</see> of every module on it.
/// </summary>
public sealed class WardenDatabase : IDisposable
{
    private readonly string _connectionString;
    private readonly NpgsqlDataSource? _dataSource;

    private WardenDatabase(SqlDialect dialect, string connectionString, string displayName, string? filePath, NpgsqlDataSource? dataSource)
    {
        Dialect = dialect;
        _connectionString = connectionString;
        DisplayName = displayName;
        FilePath = filePath;
        _dataSource = dataSource;
    }

    /// <summary>SQLite or PostgreSQL.</summary>
    public SqlDialect Dialect { get; }

    /// <summary>For messages: the full file path, or <c>postgres://user@host:port/database</c> (never the password).</summary>
    public string DisplayName { get; }

    /// <summary>The SQLite file; null for PostgreSQL.</summary>
    public string? FilePath { get; }

    /// <summary>True when <paramref name="target"/> names a PostgreSQL database rather than a SQLite file.</summary>
    public static bool IsPostgres(string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var t = target.AsSpan().Trim();
        if (t.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || t.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        // A key=value connection string names its server; a file path practically never holds "host=".
        foreach (var part in target.Split(';'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && part[..eq].Trim() is var key && (key.Equals("Host", StringComparison.OrdinalIgnoreCase) || key.Equals("Server", StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Makes the database object for <paramref name="target"/> (see the class summary). Connects to nothing yet:
    /// the first <see cref="OpenConnection"/> or <see cref="Migrate"/> does. A malformed connection string is a
    /// <see cref="StorageException"/> (Invalid).
    /// </summary>
    public static WardenDatabase Open(string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (string.IsNullOrWhiteSpace(target))
        {
            throw new StorageException(StorageError.Invalid, "No database given: pass a SQLite file path or a PostgreSQL connection string.");
        }

        return IsPostgres(target) ? OpenPostgres(target.Trim()) : OpenSqlite(target);
    }

    private static WardenDatabase OpenSqlite(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
            var dir = Path.GetDirectoryName(full);
            if (!string.IsNullOrEmpty(dir))
            {
                Directory.CreateDirectory(dir);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new StorageException(StorageError.Unavailable, $"Cannot use {path} as a database file: {ex.Message}", ex);
        }

        // Pooled: a connection per operation costs a pool lookup, and one instance serves many threads.
        var cs = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true }.ToString();
        return new WardenDatabase(SqlDialect.Sqlite, cs, full, full, null);
    }

    private static WardenDatabase OpenPostgres(string target)
    {
        try
        {
            var builder = target.Contains("://", StringComparison.Ordinal) ? PostgresUri.Parse(target) : new NpgsqlConnectionStringBuilder(target);
            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                throw new StorageException(StorageError.Invalid, "The PostgreSQL connection string names no Host.");
            }

            if (string.IsNullOrEmpty(builder.ApplicationName))
            {
                builder.ApplicationName = "warden";
            }

            // Every request runs the same few statements: prepared once per pooled connection, PostgreSQL skips
            // parsing and planning them again. A connection string that sets it (0 behind a pooler that cannot
            // hold prepared statements) wins.
            if (!target.Contains("auto prepare", StringComparison.OrdinalIgnoreCase) && !target.Contains("autoprepare", StringComparison.OrdinalIgnoreCase))
            {
                builder.MaxAutoPrepare = 64;
            }

            var display = $"postgres://{(string.IsNullOrEmpty(builder.Username) ? string.Empty : builder.Username + "@")}{builder.Host}:{builder.Port}/{builder.Database ?? builder.Username ?? string.Empty}";
            var cs = builder.ConnectionString;

            // Validates the combination of settings too (host:port lists, SSL options).
            return new WardenDatabase(SqlDialect.Postgres, cs, display, null, NpgsqlDataSource.Create(cs));
        }
        catch (Exception ex) when (ex is ArgumentException or KeyNotFoundException or InvalidOperationException or NotSupportedException)
        {
            // The parser's message names the bad keyword; the string itself may hold a password.
            throw new StorageException(StorageError.Invalid, $"Not a valid PostgreSQL connection string: {ex.Message}", ex);
        }
        catch (FormatException ex)
        {
            // Number parsers quote the text they refused, which in a mistyped string can be a password.
            throw new StorageException(StorageError.Invalid, "Not a valid PostgreSQL connection string: a port or number is malformed.", ex);
        }
    }

    /// <summary>
    /// An opened connection (from the pool; dispose it to give it back). SQLite connections come with WAL,
    /// foreign keys and a 10 s busy timeout. A database that cannot be reached or opened is a
    /// <see cref="StorageException"/> with the reason.
    /// </summary>
    public DbConnection OpenConnection()
    {
        if (Dialect == SqlDialect.Postgres)
        {
            try
            {
                return _dataSource!.OpenConnection();
            }
            catch (Exception ex) when (ex is NpgsqlException or SocketException or TimeoutException)
            {
                throw Translate(ex);
            }
        }

        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();

            // WAL lets readers (a server's index tailer) run beside a writer; NORMAL sync is safe under WAL.
            // busy_timeout first: switching a new file to WAL takes a lock that another process may hold.
            using var cmd = connection.CreateCommand();
            cmd.CommandText = "PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;";
            cmd.ExecuteNonQuery();
            return connection;
        }
        catch (SqliteException ex)
        {
            connection.Dispose();
            throw Translate(ex);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Turns a driver exception into a <see cref="StorageException"/> whose message says what went wrong with
    /// which database (never the password). Callers catch <see cref="DbException"/> and rethrow this.
    /// </summary>
    public StorageException Translate(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex switch
        {
            StorageException s => s,
            SqliteException { SqliteErrorCode: 26 /* SQLITE_NOTADB */ or 11 /* SQLITE_CORRUPT */ } e =>
                new StorageException(StorageError.Incompatible, $"{DisplayName} is not a Warden database (or is damaged): {e.Message}", e),
            SqliteException { SqliteErrorCode: 14 /* SQLITE_CANTOPEN */ or 8 /* SQLITE_READONLY */ or 23 /* SQLITE_AUTH */ } e =>
                new StorageException(StorageError.Unavailable, $"Cannot open the database {DisplayName}: {e.Message}", e),
            SqliteException e => new StorageException(StorageError.Unavailable, $"Database {DisplayName}: {e.Message}", e),
            PostgresException { SqlState: "3D000" } e =>
                new StorageException(StorageError.Unavailable, $"PostgreSQL at {DisplayName}: the database does not exist ({e.MessageText}). Create it first (CREATE DATABASE).", e),
            PostgresException { SqlState: "28P01" or "28000" } e =>
                new StorageException(StorageError.Unavailable, $"PostgreSQL at {DisplayName} refused the login: {e.MessageText}", e),
            PostgresException e => new StorageException(StorageError.Unavailable, $"PostgreSQL at {DisplayName}: {e.MessageText} (SQLSTATE {e.SqlState})", e),
            NpgsqlException { InnerException: SocketException se } e =>
                new StorageException(StorageError.Unavailable, $"Cannot reach PostgreSQL at {DisplayName}: {se.Message}", e),
            NpgsqlException { InnerException: TimeoutException } e =>
                new StorageException(StorageError.Unavailable, $"Cannot reach PostgreSQL at {DisplayName}: timed out connecting", e),
            NpgsqlException e => new StorageException(StorageError.Unavailable, $"PostgreSQL at {DisplayName}: {e.Message}", e),
            SocketException e => new StorageException(StorageError.Unavailable, $"Cannot reach PostgreSQL at {DisplayName}: {e.Message}", e),
            _ => new StorageException(StorageError.Unavailable, $"Database {DisplayName}: {ex.Message}", ex),
        };
    }

    /// <summary>
    /// Brings <paramref name="set"/> to its latest version: applies, in order and in one transaction, every
    /// migration newer than the version recorded for the set in <c>schema_versions(name, version)</c>. Safe
    /// when several processes start at once: PostgreSQL takes a transaction-level advisory lock, SQLite a
    /// write lock (BEGIN IMMEDIATE), before reading the version, so each migration runs exactly once.
    /// A database newer than this program (recorded version above the latest known) is refused.
    /// </summary>
    /// <returns>The migrations applied now (0 when already current).</returns>
    public int Migrate(IMigrationSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        var migrations = set.Migrations;
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
            {
                throw new ArgumentException($"Migration set '{set.Name}' must number its migrations 1, 2, 3, ... in order.", nameof(set));
            }
        }

        try
        {
            using var connection = OpenConnection();
            using var tx = Dialect == SqlDialect.Sqlite ? ((SqliteConnection)connection).BeginTransaction(deferred: false) : connection.BeginTransaction(IsolationLevel.ReadCommitted);
            if (Dialect == SqlDialect.Postgres)
            {
                // Held until commit; every Warden process migrates under the same key, one after another.
                Exec(connection, tx, $"SELECT pg_advisory_xact_lock({MigrationLockKey})");
                Exec(connection, tx, "CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version BIGINT NOT NULL)");
            }
            else
            {
                Exec(connection, tx, "CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL)");
                AdoptLegacyVersion(connection, tx);
            }

            var current = Scalar(connection, tx, "SELECT version FROM schema_versions WHERE name = @name", ("name", set.Name)) is { } v and not DBNull ? Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture) : 0;
            if (current > migrations.Count)
            {
                throw new StorageException(StorageError.Incompatible, $"The database {DisplayName} has schema version {current} of '{set.Name}'; this Warden knows up to {migrations.Count}. Upgrade Warden.");
            }

            var applied = 0;
            foreach (var m in migrations.Skip((int)current))
            {
                Exec(connection, tx, Dialect == SqlDialect.Sqlite ? m.Sqlite : m.Postgres);
                applied++;
            }

            if (applied > 0)
            {
                Exec(connection, tx, "INSERT INTO schema_versions(name, version) VALUES (@name, @version) ON CONFLICT(name) DO UPDATE SET version = excluded.version", ("name", set.Name), ("version", (long)migrations.Count));
            }

            tx.Commit();
            return applied;
        }
        catch (Exception ex) when (ex is DbException or SocketException)
        {
            throw Translate(ex);
        }
    }

    /// <summary>The advisory lock key of migrations ("warden.m" in ASCII); other locks must not reuse it.</summary>
    internal const long MigrationLockKey = 0x7761726465_6E2E6D;

    /// <summary>
    /// SQLite databases made before migration sets kept the bank schema's version in <c>schema_version</c>:
    /// adopt it as the "banks" version, then leave a fence value there, so that an older Warden opening this
    /// file says "schema version 1000000 ... Upgrade Warden" instead of failing half-way through its migration.
    /// </summary>
    private static void AdoptLegacyVersion(DbConnection connection, DbTransaction tx)
    {
        Exec(connection, tx, """
            CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_versions(name, version)
                SELECT 'banks', v FROM (SELECT MAX(version) AS v FROM schema_version WHERE version < 1000000) WHERE v IS NOT NULL
                ON CONFLICT(name) DO NOTHING;
            DELETE FROM schema_version WHERE version <> 1000000;
            INSERT INTO schema_version(version) SELECT 1000000 WHERE NOT EXISTS (SELECT 1 FROM schema_version);
            """);
    }

    internal static int Exec(DbConnection connection, DbTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        using var cmd = Command(connection, tx, sql, args);
        return cmd.ExecuteNonQuery();
    }

    internal static object? Scalar(DbConnection connection, DbTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        using var cmd = Command(connection, tx, sql, args);
        return cmd.ExecuteScalar();
    }

    internal static DbCommand Command(DbConnection connection, DbTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();

            // With the prefix: Microsoft.Data.Sqlite looks a bare name up under each prefix in turn, per execution.
            p.ParameterName = "@" + name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_dataSource is not null)
        {
            _dataSource.Dispose();
        }
        else
        {
            // Releases the pooled file handles, so the file can be moved or deleted once the database is closed.
            using var c = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(c);
        }
    }
}
