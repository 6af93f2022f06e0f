using Dapper;
using Warden.Review.Storage;

namespace Warden.Review.Users;

/// <summary>A console user (a person who reviews; never an API key).</summary>
public sealed record ConsoleUser(long Id, string Username, string Role, bool? Blur, bool? Greyscale, bool Disabled);

/// <summary>A logged-in session.</summary>
public sealed record ConsoleSession(string TokenHash, ConsoleUser User, string Csrf, DateTimeOffset ExpiresAt);

/// <summary>One event of the case log, replayed into the case builder at start.</summary>
public sealed record CaseEvent(long Seq, string Kind, string CaseId, string? ClusterId, string Body);

/// <summary>
/// The console's tables (users, sessions, exposure counters, display settings, the case event log) in the
/// review database, so every node behind a load balancer sees the same logins, counters and cases.
/// </summary>
public sealed class ReviewStore(ReviewDatabase database)
{
    /// <summary>
    /// Creates a user; false when the name is taken, also by a name that differs only in case ("Alice" beside
    /// "alice" would read as the same person in the audit log). Throws <see cref="ArgumentException"/> for a name
    /// outside <see cref="UserNames"/>' rule.
    /// </summary>
    public bool CreateUser(string username, string role, string passwordHash)
    {
        if (UserNames.Problem(username) is { } problem)
        {
            throw new ArgumentException(problem, nameof(username));
        }

        using var c = database.Connect();
        if (c.ExecuteScalar<long>("SELECT COUNT(*) FROM console_users WHERE lower(username) = lower(@username)", new { username }) > 0)
        {
            return false;
        }

        return c.Execute(
            "INSERT INTO console_users(username, role, password_hash, created_at) VALUES (@username, @role, @passwordHash, @at) ON CONFLICT(username) DO NOTHING",
            new { username, role, passwordHash, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }) == 1;
    }

    /// <summary>A user and their password hash, or null.</summary>
    public (ConsoleUser User, string PasswordHash)? FindUser(string username)
    {
        using var c = database.Connect();
        var row = c.QuerySingleOrDefault<UserRow>("SELECT id AS Id, username AS Username, role AS Role, password_hash AS PasswordHash, disabled AS Disabled, blur AS Blur, greyscale AS Greyscale FROM console_users WHERE username = @username", new { username });
        return row is null ? null : (row.ToUser(), row.PasswordHash);
    }

    /// <summary>All users (no hashes).</summary>
    public IReadOnlyList<ConsoleUser> Users()
    {
        using var c = database.Connect();
        return [.. c.Query<UserRow>("SELECT id AS Id, username AS Username, role AS Role, password_hash AS PasswordHash, disabled AS Disabled, blur AS Blur, greyscale AS Greyscale FROM console_users ORDER BY username").Select(r => r.ToUser())];
    }

    /// <summary>Stores a user's display preferences (null: the organisation default).</summary>
    public void SetPreferences(long userId, bool? blur, bool? greyscale)
    {
        using var c = database.Connect();
        c.Execute("UPDATE console_users SET blur = @blur, greyscale = @greyscale WHERE id = @userId", new { userId, blur = ToLong(blur), greyscale = ToLong(greyscale) });
    }

    /// <summary>Stores a session.</summary>
    public void CreateSession(string tokenHash, long userId, string csrf, DateTimeOffset expiresAt)
    {
        using var c = database.Connect();
        c.Execute("DELETE FROM console_sessions WHERE expires_at < @now", new { now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
        c.Execute("INSERT INTO console_sessions(token_hash, user_id, csrf, created_at, expires_at) VALUES (@tokenHash, @userId, @csrf, @now, @exp)",
            new { tokenHash, userId, csrf, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), exp = expiresAt.ToUnixTimeMilliseconds() });
    }

    /// <summary>A live session of an enabled user, or null.</summary>
    public ConsoleSession? FindSession(string tokenHash, DateTimeOffset now)
    {
        using var c = database.Connect();
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
        using var c = database.Connect();
        c.Execute("DELETE FROM console_sessions WHERE token_hash = @tokenHash", new { tokenHash });
    }

    /// <summary>Reveals made by a user on a UTC day.</summary>
    public int Exposure(long userId, string day)
    {
        using var c = database.Connect();
        return c.ExecuteScalar<int?>("SELECT reveals FROM console_exposure WHERE user_id = @userId AND day = @day", new { userId, day }) ?? 0;
    }

    /// <summary>
    /// Counts one reveal unless the cap is reached; returns the new count, or null when refused. One statement,
    /// so two nodes revealing for the same person at once cannot both pass the cap.
    /// </summary>
    public int? TryExpose(long userId, string day, int cap)
    {
        if (cap <= 0)
        {
            return null;
        }

        using var c = database.Connect();
        var n = c.ExecuteScalar<long?>(
            """
            INSERT INTO console_exposure(user_id, day, reveals) VALUES (@userId, @day, 1)
            ON CONFLICT(user_id, day) DO UPDATE SET reveals = console_exposure.reveals + 1 WHERE console_exposure.reveals < @cap
            RETURNING reveals
            """,
            new { userId, day, cap });
        return n is null ? null : (int)n.Value;
    }

    /// <summary>A user's blur strength and derivative size (null: the default).</summary>
    public (int? BlurPercent, int? Size) Display(long userId)
    {
        using var c = database.Connect();
        var row = c.QuerySingleOrDefault<DisplayRow>("SELECT blur_percent AS BlurPercent, size AS Size FROM console_display WHERE user_id = @userId", new { userId });
        return row is null ? (null, null) : ((int?)row.BlurPercent, (int?)row.Size);
    }

    /// <summary>Stores a user's blur strength and derivative size (kept apart from the user row, so they change nothing else).</summary>
    public void SetDisplay(long userId, int? blurPercent, int? size)
    {
        using var c = database.Connect();
        c.Execute(
            "INSERT INTO console_display(user_id, blur_percent, size) VALUES (@userId, @blurPercent, @size) ON CONFLICT(user_id) DO UPDATE SET blur_percent = excluded.blur_percent, size = excluded.size",
            new { userId, blurPercent = (long?)blurPercent, size = (long?)size });
    }

    /// <summary>Appends one case event (durable before it returns).</summary>
    public long AppendEvent(string kind, string caseId, string? clusterId, string body)
    {
        using var c = database.Connect();
        return c.ExecuteScalar<long>(
            "INSERT INTO case_events(kind, case_id, cluster_id, body, at_ms) VALUES (@kind, @caseId, @clusterId, @body, @at) RETURNING seq",
            new { kind, caseId, clusterId, body, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
    }

    /// <summary>Every case event, oldest first.</summary>
    public IEnumerable<CaseEvent> Events()
    {
        using var c = database.Connect();
        foreach (var e in c.Query<CaseEvent>("SELECT seq AS Seq, kind AS Kind, case_id AS CaseId, cluster_id AS ClusterId, body AS Body FROM case_events ORDER BY seq", buffered: false))
        {
            yield return e;
        }
    }

    /// <summary>Case events of one kind after <paramref name="afterSeq"/>, oldest first (the feedback reconciler's scan).</summary>
    public IEnumerable<CaseEvent> EventsAfter(long afterSeq, string kind)
    {
        using var c = database.Connect();
        foreach (var e in c.Query<CaseEvent>("SELECT seq AS Seq, kind AS Kind, case_id AS CaseId, cluster_id AS ClusterId, body AS Body FROM case_events WHERE seq > @afterSeq AND kind = @kind ORDER BY seq", new { afterSeq, kind }, buffered: false))
        {
            yield return e;
        }
    }

    private static bool? ToBool(long? v) => v is null ? null : v != 0;

    private static long? ToLong(bool? v) => v is null ? null : v.Value ? 1 : 0;

    private sealed record DisplayRow(long? BlurPercent, long? Size);

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
