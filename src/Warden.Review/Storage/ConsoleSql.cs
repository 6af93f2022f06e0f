using Warden.Storage;

namespace Warden.Review.Storage;

/// <summary>
/// The console's own tables (case claims) as a migration set of their own ("review-console"), so they evolve
/// apart from the review tables. Same rules as <see cref="ReviewSql"/>: one text for SQLite and PostgreSQL.
/// </summary>
internal static class ConsoleSql
{
    private const string V1 = """
        -- One live claim per case: the reviewer working on it and until when (a lease; renewed while they work).
        CREATE TABLE case_claims (
            case_id     TEXT    PRIMARY KEY,
            user_id     BIGINT  NOT NULL,
            username    TEXT    NOT NULL,
            claimed_at  BIGINT  NOT NULL,
            expires_at  BIGINT  NOT NULL
        );
        CREATE INDEX ix_case_claims_expiry ON case_claims(expires_at);
        """;

    /// <summary>The console migration set.</summary>
    public static IMigrationSet Schema { get; } = new MigrationSet("review-console", [new Migration(1, V1, V1)]);

    /// <summary>
    /// Takes a free or lapsed claim, or renews one's own, in one statement: the conditional upsert returns no row
    /// when another person holds a live claim, so two reviewers (on any nodes) can never both hold it.
    /// </summary>
    public const string Claim = """
        INSERT INTO case_claims(case_id, user_id, username, claimed_at, expires_at) VALUES (@CaseId, @UserId, @Username, @Now, @Until)
        ON CONFLICT(case_id) DO UPDATE SET
            claimed_at = CASE WHEN case_claims.user_id = excluded.user_id AND case_claims.expires_at > excluded.claimed_at THEN case_claims.claimed_at ELSE excluded.claimed_at END,
            user_id = excluded.user_id, username = excluded.username, expires_at = excluded.expires_at
        WHERE case_claims.user_id = excluded.user_id OR case_claims.expires_at <= excluded.claimed_at
        RETURNING case_id AS CaseId, user_id AS UserId, username AS Username, claimed_at AS ClaimedAt, expires_at AS ExpiresAt
        """;

    public const string Columns = "SELECT case_id AS CaseId, user_id AS UserId, username AS Username, claimed_at AS ClaimedAt, expires_at AS ExpiresAt FROM case_claims";

    public const string Holder = Columns + " WHERE case_id = @CaseId AND expires_at > @Now";

    public const string Live = Columns + " WHERE expires_at > @Now";

    public const string Release = "DELETE FROM case_claims WHERE case_id = @CaseId AND (@UserId IS NULL OR user_id = @UserId)";

    public const string CasesByReportId = "SELECT case_id FROM report_deliveries WHERE report_id = @ReportId";

    public const string SetDisabled = "UPDATE console_users SET disabled = @Disabled WHERE username = @Username";

    public const string SetPassword = "UPDATE console_users SET password_hash = @Hash WHERE username = @Username";

    public const string EndSessions = "DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users WHERE username = @Username)";

    public const string SessionCounts = "SELECT user_id AS UserId, COUNT(*) AS Sessions FROM console_sessions WHERE expires_at > @Now GROUP BY user_id";
}
