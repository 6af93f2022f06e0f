using Dapper;
using Microsoft.Data.Sqlite;

namespace Warden.Server.Review;

/// <summary>A console user (a person who reviews; never an API key).</summary>
public sealed record ConsoleUser(long Id, string Username, string Role, bool? Blur, bool? Greyscale, bool Disabled);

/// <summary>A logged-in session.</summary>
public sealed record ConsoleSession(string TokenHash, ConsoleUser User, string Csrf, DateTimeOffset ExpiresAt);

/// <summary>One event of the case log, replayed into the case builder at start.</summary>
public sealed record CaseEvent(long Seq, string Kind, string CaseId, string? ClusterId, string Body);

/// <summary>
/// The console's own tables (users, sessions, exposure counters, the case event log) in the review SQLite
/// file, beside Warden.Review's tables (audit log, evidence catalogue, report outbox). SQLite only, like
/// Warden.Review's store: a PostgreSQL deployment keeps its review state in this file on the review node.
/// </summary>
public sealed class ReviewStore
{
    private static readonly (int Version, string Sql)[] Migrations =
    [
        (1, """
            CREATE TABLE console_users (
                id             INTEGER PRIMARY KEY AUTOINCREMENT,
                username       TEXT    NOT NULL UNIQUE,
                role           TEXT    NOT NULL,
                password_hash  TEXT    NOT NULL,
                created_at     INTEGER NOT NULL,
                disabled       INTEGER NOT NULL DEFAULT 0,
                blur           INTEGER NULL,
                greyscale      INTEGER NULL
            );
            CREATE TABLE console_sessions (
                token_hash  TEXT    PRIMARY KEY,
                user_id     INTEGER NOT NULL REFERENCES console_users(id),
                csrf        TEXT    NOT NULL,
                created_at  INTEGER NOT NULL,
                expires_at  INTEGER NOT NULL
            );
            CREATE TABLE console_exposure (
                user_id  INTEGER NOT NULL,
                day      TEXT    NOT NULL,
                reveals  INTEGER NOT NULL,
                PRIMARY KEY (user_id, day)
            );
            -- Cases are rebuilt at start by replaying this log in order (submissions, decisions, closes).
            CREATE TABLE case_events (
                seq         INTEGER PRIMARY KEY AUTOINCREMENT,
                kind        TEXT    NOT NULL,
                case_id     TEXT    NOT NULL,
                cluster_id  TEXT    NULL,
                body        TEXT    NOT NULL,
                at_ms       INTEGER NOT NULL
            );
            CREATE INDEX ix_case_events_case ON case_events(case_id, seq);
            """),
    ];

    private readonly string _connectionString;

    /// <summary>Opens (and migrates) the console tables in <paramref name="path"/>.</summary>
    public ReviewStore(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path.GetFullPath(path), Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        using var c = Connect();
        c.Execute("PRAGMA journal_mode=WAL;");
        using var tx = c.BeginTransaction();
        c.Execute("CREATE TABLE IF NOT EXISTS console_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)", transaction: tx);
        var current = c.ExecuteScalar<long?>("SELECT MAX(version) FROM console_schema_version", transaction: tx) ?? 0;
        foreach (var (version, sql) in Migrations.Where(m => m.Version > current))
        {
            c.Execute(sql, transaction: tx);
            c.Execute("INSERT INTO console_schema_version(version, applied_at) VALUES (@version, @at)", new { version, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }, tx);
        }

        tx.Commit();
    }

    /// <summary>Creates a user; false when the name is taken.</summary>
    public bool CreateUser(string username, string role, string passwordHash)
    {
        using var c = Connect();
        return c.Execute(
            "INSERT INTO console_users(username, role, password_hash, created_at) VALUES (@username, @role, @passwordHash, @at) ON CONFLICT(username) DO NOTHING",
            new { username, role, passwordHash, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }) == 1;
    }

    /// <summary>Sets a user's password; false when there is no such user.</summary>
    public bool SetPassword(string username, string passwordHash)
    {
        using var c = Connect();
        return c.Execute("UPDATE console_users SET password_hash = @passwordHash WHERE username = @username", new { username, passwordHash }) == 1;
    }

    /// <summary>A user and their password hash, or null.</summary>
    public (ConsoleUser User, string PasswordHash)? FindUser(string username)
    {
        using var c = Connect();
        var row = c.QuerySingleOrDefault<UserRow>("SELECT id AS Id, username AS Username, role AS Role, password_hash AS PasswordHash, disabled AS Disabled, blur AS Blur, greyscale AS Greyscale FROM console_users WHERE username = @username", new { username });
        return row is null ? null : (row.ToUser(), row.PasswordHash);
    }

    /// <summary>All users (no hashes).</summary>
    public IReadOnlyList<ConsoleUser> Users()
    {
        using var c = Connect();
        return [.. c.Query<UserRow>("SELECT id AS Id, username AS Username, role AS Role, password_hash AS PasswordHash, disabled AS Disabled, blur AS Blur, greyscale AS Greyscale FROM console_users ORDER BY username").Select(r => r.ToUser())];
    }

    /// <summary>Stores a user's display preferences (null: the organisation default).</summary>
    public void SetPreferences(long userId, bool? blur, bool? greyscale)
    {
        using var c = Connect();
        c.Execute("UPDATE console_users SET blur = @blur, greyscale = @greyscale WHERE id = @userId", new { userId, blur, greyscale });
    }

    /// <summary>Stores a session.</summary>
    public void CreateSession(string tokenHash, long userId, string csrf, DateTimeOffset expiresAt)
    {
        using var c = Connect();
        c.Execute("DELETE FROM console_sessions WHERE expires_at < @now", new { now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
        c.Execute("INSERT INTO console_sessions(token_hash, user_id, csrf, created_at, expires_at) VALUES (@tokenHash, @userId, @csrf, @now, @exp)",
            new { tokenHash, userId, csrf, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), exp = expiresAt.ToUnixTimeMilliseconds() });
    }

    /// <summary>A live session of an enabled user, or null.</summary>
    public ConsoleSession? FindSession(string tokenHash, DateTimeOffset now)
    {
        using var c = Connect();
        var row = c.QuerySingleOrDefault<SessionRow>(
            """
            SELECT s.token_hash AS TokenHash, s.csrf AS Csrf, s.expires_at AS ExpiresAt, u.id AS Id, u.username AS Username, u.role AS Role,
                   u.disabled AS Disabled, u.blur AS Blur, u.greyscale AS Greyscale
            FROM console_sessions s JOIN console_users u ON u.id = s.user_id
            WHERE s.token_hash = @tokenHash AND s.expires_at > @now AND u.disabled = 0
            """,
            new { tokenHash, now = now.ToUnixTimeMilliseconds() });
        return row is null ? null : new ConsoleSession(row.TokenHash, new ConsoleUser(row.Id, row.Username, row.Role, ToBool(row.Blur), ToBool(row.Greyscale), row.Disabled != 0), row.Csrf, DateTimeOffset.FromUnixTimeMilliseconds(row.ExpiresAt));
    }

    /// <summary>Ends a session.</summary>
    public void DeleteSession(string tokenHash)
    {
        using var c = Connect();
        c.Execute("DELETE FROM console_sessions WHERE token_hash = @tokenHash", new { tokenHash });
    }

    /// <summary>Reveals made by a user on a UTC day.</summary>
    public int Exposure(long userId, string day)
    {
        using var c = Connect();
        return c.ExecuteScalar<int?>("SELECT reveals FROM console_exposure WHERE user_id = @userId AND day = @day", new { userId, day }) ?? 0;
    }

    /// <summary>Counts one reveal unless the cap is reached (atomically); returns the new count, or null when refused.</summary>
    public int? TryExpose(long userId, string day, int cap)
    {
        using var c = Connect();
        using var tx = c.BeginTransaction(deferred: false);
        var n = c.ExecuteScalar<int?>("SELECT reveals FROM console_exposure WHERE user_id = @userId AND day = @day", new { userId, day }, tx) ?? 0;
        if (n >= cap)
        {
            return null;
        }

        c.Execute("INSERT INTO console_exposure(user_id, day, reveals) VALUES (@userId, @day, 1) ON CONFLICT(user_id, day) DO UPDATE SET reveals = reveals + 1", new { userId, day }, tx);
        tx.Commit();
        return n + 1;
    }

    /// <summary>Appends one case event (durable before it returns).</summary>
    public long AppendEvent(string kind, string caseId, string? clusterId, string body)
    {
        using var c = Connect();
        return c.ExecuteScalar<long>(
            "INSERT INTO case_events(kind, case_id, cluster_id, body, at_ms) VALUES (@kind, @caseId, @clusterId, @body, @at) RETURNING seq",
            new { kind, caseId, clusterId, body, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
    }

    /// <summary>Every case event, oldest first.</summary>
    public IEnumerable<CaseEvent> Events()
    {
        using var c = Connect();
        foreach (var e in c.Query<CaseEvent>("SELECT seq AS Seq, kind AS Kind, case_id AS CaseId, cluster_id AS ClusterId, body AS Body FROM case_events ORDER BY seq", buffered: false))
        {
            yield return e;
        }
    }

    private static bool? ToBool(long? v) => v is null ? null : v != 0;

    private SqliteConnection Connect()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        c.Execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
        return c;
    }

    private sealed class UserRow
    {
        public long Id { get; set; }

        public string Username { get; set; } = "";

        public string Role { get; set; } = "";

        public string PasswordHash { get; set; } = "";

        public long Disabled { get; set; }

        public long? Blur { get; set; }

        public long? Greyscale { get; set; }

        public ConsoleUser ToUser() => new(Id, Username, Role, ToBool(Blur), ToBool(Greyscale), Disabled != 0);
    }

    private sealed class SessionRow
    {
        public string TokenHash { get; set; } = "";

        public string Csrf { get; set; } = "";

        public long ExpiresAt { get; set; }

        public long Id { get; set; }

        public string Username { get; set; } = "";

        public string Role { get; set; } = "";

        public long Disabled { get; set; }

        public long? Blur { get; set; }

        public long? Greyscale { get; set; }
    }
}
