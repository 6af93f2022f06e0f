using System.Security.Cryptography;
using Dapper;
using Warden.Review.Storage;

namespace Warden.Review.Users;

/// <summary>A reviewer's claim on a case: who, since when, until when (a lease that lapses unless renewed).</summary>
/// <param name="CaseId">The case.</param>
/// <param name="UserId">The holder's user id.</param>
/// <param name="Username">The holder.</param>
/// <param name="ClaimedAt">When they took it (renewals keep this).</param>
/// <param name="ExpiresAt">When it lapses unless renewed.</param>
public sealed record CaseClaim(string CaseId, long UserId, string Username, DateTimeOffset ClaimedAt, DateTimeOffset ExpiresAt);

/// <summary>
/// The console's working state in the review database, so it holds across nodes: case claims (one reviewer at a
/// time, taken by a conditional upsert), user administration (disable, password reset, both end the user's
/// sessions) and lookups the case search needs (cases by CyberTipline report id).
/// </summary>
public sealed class ConsoleStore
{
    private readonly ReviewDatabase _database;

    /// <summary>Opens the store (brings the console tables to the latest version).</summary>
    public ConsoleStore(ReviewDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        database.Database.Migrate(ConsoleSql.Schema);
    }

    /// <summary>
    /// Takes the claim on <paramref name="caseId"/> for <paramref name="lease"/>, or renews it when this person holds
    /// it; returns the claim, or null (nothing changed) when someone else holds a live one.
    /// </summary>
    public CaseClaim? TryClaim(string caseId, ConsoleUser user, TimeSpan lease, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(user);
        using var c = _database.Connect();
        var row = c.QuerySingleOrDefault<ClaimRow>(ConsoleSql.Claim, new
        {
            CaseId = caseId,
            UserId = user.Id,
            user.Username,
            Now = now.ToUnixTimeMilliseconds(),
            Until = (now + lease).ToUnixTimeMilliseconds(),
        });
        return row?.ToClaim();
    }

    /// <summary>The live claim on a case, or null.</summary>
    public CaseClaim? Holder(string caseId, DateTimeOffset now)
    {
        using var c = _database.Connect();
        return c.QuerySingleOrDefault<ClaimRow>(ConsoleSql.Holder, new { CaseId = caseId, Now = now.ToUnixTimeMilliseconds() })?.ToClaim();
    }

    /// <summary>Every live claim by case id (one small query for a whole queue page).</summary>
    public IReadOnlyDictionary<string, CaseClaim> Live(DateTimeOffset now)
    {
        using var c = _database.Connect();
        return c.Query<ClaimRow>(ConsoleSql.Live, new { Now = now.ToUnixTimeMilliseconds() }).Select(r => r.ToClaim()).ToDictionary(x => x.CaseId, StringComparer.Ordinal);
    }

    /// <summary>Drops the claim: this person's only, or anyone's when <paramref name="userId"/> is null. True when one was dropped.</summary>
    public bool Release(string caseId, long? userId)
    {
        using var c = _database.Connect();
        return c.Execute(ConsoleSql.Release, new { CaseId = caseId, UserId = userId }) > 0;
    }

    /// <summary>Ids of the cases whose report got this CyberTipline report id.</summary>
    public IReadOnlyList<string> CasesByReportId(string reportId)
    {
        using var c = _database.Connect();
        return [.. c.Query<string>(ConsoleSql.CasesByReportId, new { ReportId = reportId })];
    }

    /// <summary>Disables or enables a user; disabling ends their sessions at once. False when there is no such user.</summary>
    public bool SetDisabled(string username, bool disabled)
    {
        using var c = _database.Connect();
        using var tx = _database.BeginWrite(c);
        var n = c.Execute(ConsoleSql.SetDisabled, new { Username = username, Disabled = disabled ? 1L : 0L }, tx);
        if (n > 0 && disabled)
        {
            c.Execute(ConsoleSql.EndSessions, new { Username = username }, tx);
        }

        tx.Commit();
        return n > 0;
    }

    /// <summary>Sets a new password hash and ends the user's sessions (a reset logs them out everywhere). False when there is no such user.</summary>
    public bool SetPassword(string username, string passwordHash)
    {
        using var c = _database.Connect();
        using var tx = _database.BeginWrite(c);
        var n = c.Execute(ConsoleSql.SetPassword, new { Username = username, Hash = passwordHash }, tx);
        if (n > 0)
        {
            c.Execute(ConsoleSql.EndSessions, new { Username = username }, tx);
        }

        tx.Commit();
        return n > 0;
    }

    /// <summary>Live sessions per user id.</summary>
    public IReadOnlyDictionary<long, long> SessionCounts(DateTimeOffset now)
    {
        using var c = _database.Connect();
        return c.Query<(long UserId, long Sessions)>(ConsoleSql.SessionCounts, new { Now = now.ToUnixTimeMilliseconds() }).ToDictionary(x => x.UserId, x => x.Sessions);
    }

    /// <summary>A random 20-character password (about 119 bits).</summary>
    public static string GeneratePassword()
    {
        const string alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        return string.Create(20, 0, (span, _) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
            }
        });
    }

    private sealed class ClaimRow
    {
        public string CaseId { get; set; } = "";

        public long UserId { get; set; }

        public string Username { get; set; } = "";

        public long ClaimedAt { get; set; }

        public long ExpiresAt { get; set; }

        public CaseClaim ToClaim() => new(CaseId, UserId, Username, DateTimeOffset.FromUnixTimeMilliseconds(ClaimedAt), DateTimeOffset.FromUnixTimeMilliseconds(ExpiresAt));
    }
}
