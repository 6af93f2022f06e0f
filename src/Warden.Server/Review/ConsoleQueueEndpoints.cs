using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Review;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Reporting;
using Warden.Review.Users;
using Warden.Storage;

namespace Warden.Server.Review;

/// <summary>
/// The console's queue and case-work endpoints under <c>/review/api</c>: the filtered, sorted, paged case list
/// (queue and closed history, search by uploader, hash or report id), claims, every member of a cluster with
/// why it clustered, undo, and (admins) user administration. Session, role and CSRF checks are the console's.
/// </summary>
public static class ConsoleQueueEndpoints
{
    private static readonly HashSet<string> ListParameters = new(StringComparer.Ordinal)
    {
        "status", "priority_min", "bank", "label", "ai", "min_age_hours", "max_age_hours", "uploader", "hash", "report_id", "sort", "order", "limit", "offset",
    };

    /// <summary>Maps the endpoints on the console's API group.</summary>
    public static void Map(RouteGroupBuilder api)
    {
        ArgumentNullException.ThrowIfNull(api);
        api.MapGet("/cases", ListCases);
        api.MapPost("/cases/{id}/claim", (string id, HttpContext c, ReviewService r) => Results.Json(ClaimView(r.Claim(ReviewConsole.Session(c).User, id))));
        api.MapPost("/cases/{id}/release", (string id, HttpContext c, ReviewService r) => Results.Json(new { released = r.ReleaseClaim(ReviewConsole.Session(c).User, id) }));
        api.MapGet("/cases/{id}/clusters/{cluster}/members", Members);
        api.MapPost("/cases/{id}/clusters/{cluster}/undo", (string id, string cluster, HttpContext c, ReviewService r) =>
        {
            var undo = r.Undo(ReviewConsole.Session(c).User, id, cluster);
            var f = undo.Feedback;
            return Results.Json(new
            {
                undone = undo.Was.Verdict == Verdict.Confirmed ? "confirmed" : "false_positive",
                decided_by = undo.Was.Reviewer,
                allow_list_removed = undo.AllowListRemoved,
                feedback = new
                {
                    cancelled = f.Cancelled,
                    withdrawn = f.Withdrawn,
                    sent_kept = f.SentAndKept,
                    opinions = f.Opinions.Select(o => new { exchange = o.Exchange, entry = o.ExternalId, signal_type = o.SignalType, opinion = o.Opinion, outcome = o.Outcome, sent_at = o.SentAt }),
                },
                message = UndoMessage(undo),
            });
        });

        api.MapGet("/admin/users", (HttpContext c, ReviewService r) => Admin(c) ?? Results.Json(Users(r)));
        api.MapPost("/admin/users/{name}/disable", (string name, HttpContext c, ReviewService r) => Admin(c) ?? SetDisabled(c, r, name, true));
        api.MapPost("/admin/users/{name}/enable", (string name, HttpContext c, ReviewService r) => Admin(c) ?? SetDisabled(c, r, name, false));
        api.MapPost("/admin/users/{name}/password", (string name, HttpContext c, ReviewService r, PasswordResetRequest? body) => Admin(c) ?? ResetPassword(c, r, name, body));
    }

    /// <summary>The queue rows of <c>GET /review/api/queue</c> (open cases, priority order) with their claims.</summary>
    public static IEnumerable<object> QueueRows(ReviewService r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var claims = r.ConsoleState.Live(DateTimeOffset.UtcNow);
        return r.Cases.Queue().Select(k => Row(r, k, claims));
    }

    /// <summary>A case's live claim as JSON, or null.</summary>
    internal static object? ClaimView(CaseClaim? claim) => claim is null ? null : new { by = claim.Username, since = claim.ClaimedAt, until = claim.ExpiresAt };

    private static IResult ListCases(HttpContext c, ReviewService r)
    {
        if (Validate(c.Request.Query, r, out var q) is { } error)
        {
            return ReviewConsole.Problem(400, "invalid_request", error);
        }

        var now = DateTimeOffset.UtcNow;
        var page = CaseQuery.Run(r.Cases.Cases, q.Filter, q.Sort, q.Descending, q.Offset, q.Limit, now);
        var claims = r.ConsoleState.Live(now);
        var next = q.Offset + page.Cases.Count;
        return Results.Json(new
        {
            total = page.Total,
            offset = q.Offset,
            limit = q.Limit,
            sort = q.Sort.ToString().ToLowerInvariant(),
            order = q.Descending ? "desc" : "asc",
            next_offset = next < page.Total && next <= CaseQuery.MaxOffset ? next : (int?)null,
            cases = page.Cases.Select(k => Row(r, k, claims)),
        });
    }

    /// <summary>Validates the list's query string; the error message, or null with <paramref name="q"/> set.</summary>
    internal static string? Validate(IQueryCollection query, ReviewService r, out ListQuery q)
    {
        q = new ListQuery(new CaseFilter(), CaseSort.Priority, true, 0, 25);
        foreach (var (key, values) in query)
        {
            if (!ListParameters.Contains(key))
            {
                return $"Unknown parameter '{Clip(key)}'. Known: {string.Join(", ", ListParameters.Order(StringComparer.Ordinal))}.";
            }

            if (values.Count != 1)
            {
                return $"{key} is given more than once.";
            }

            var v = values[0] ?? "";
            if (v.Length > 256 || v.Any(char.IsControl))
            {
                return $"{key} is longer than 256 characters or holds control characters.";
            }
        }

        string? Get(string name) => query.TryGetValue(name, out var v) ? v[0] : null;

        var f = new CaseFilter();
        switch (Get("status"))
        {
            case null or "open": break;
            case "closed": f = f with { Scope = CaseScope.Closed }; break;
            case "all": f = f with { Scope = CaseScope.All }; break;
            default: return "status is open, closed or all.";
        }

        if (Int("priority_min", 0, 100, out var priority) is { } e1)
        {
            return e1;
        }

        f = f with { MinPriority = priority };
        if (Get("bank") is { } bank)
        {
            if (string.IsNullOrWhiteSpace(bank))
            {
                return "bank is empty.";
            }

            f = f with { Bank = bank.Trim() };
        }

        if (Get("label") is { } label)
        {
            var eq = label.IndexOf('=', StringComparison.Ordinal);
            var key = (eq < 0 ? label : label[..eq]).Trim();
            if (key.Length == 0)
            {
                return "label is KEY or KEY=VALUE (e.g. classification=A1).";
            }

            f = f with { LabelKey = key, LabelValue = eq < 0 ? null : label[(eq + 1)..].Trim() };
        }

        switch (Get("ai"))
        {
            case null: break;
            case "true": f = f with { Ai = true }; break;
            case "false": f = f with { Ai = false }; break;
            default: return "ai is true or false.";
        }

        if (Int("min_age_hours", 0, 876_000, out var minAge) is { } e2)
        {
            return e2;
        }

        if (Int("max_age_hours", 0, 876_000, out var maxAge) is { } e3)
        {
            return e3;
        }

        if (minAge > maxAge)
        {
            return "min_age_hours is above max_age_hours.";
        }

        f = f with { MinAge = minAge is { } a ? TimeSpan.FromHours(a) : null, MaxAge = maxAge is { } b ? TimeSpan.FromHours(b) : null };
        if (Get("uploader") is { } uploader)
        {
            if (string.IsNullOrWhiteSpace(uploader))
            {
                return "uploader is empty.";
            }

            f = f with { Uploader = uploader.Trim() };
        }

        if (Get("hash") is { } hash)
        {
            f = f with { Hash = CaseQuery.ParseHash(hash) };
            if (f.Hash is null)
            {
                return "hash is hex: 32 digits (MD5), 40 (SHA-1) or 64 (SHA-256 or PDQ).";
            }
        }

        if (Get("report_id") is { } reportId)
        {
            reportId = reportId.Trim();
            if (reportId.Length is 0 or > 64 || !reportId.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_'))
            {
                return "report_id is 1–64 letters, digits, '-' or '_'.";
            }

            f = f with { CaseIds = r.ConsoleState.CasesByReportId(reportId).ToHashSet(StringComparer.Ordinal) };
        }

        // History lists the latest changes first; the queue the most urgent.
        var sort = f.Scope == CaseScope.Open ? CaseSort.Priority : CaseSort.Updated;
        switch (Get("sort"))
        {
            case null: break;
            case "priority": sort = CaseSort.Priority; break;
            case "opened": sort = CaseSort.Opened; break;
            case "updated": sort = CaseSort.Updated; break;
            case "items": sort = CaseSort.Items; break;
            default: return "sort is priority, opened, updated or items.";
        }

        var descending = sort != CaseSort.Opened; // by age: oldest first
        switch (Get("order"))
        {
            case null: break;
            case "asc": descending = false; break;
            case "desc": descending = true; break;
            default: return "order is asc or desc.";
        }

        if (Int("limit", 1, CaseQuery.MaxLimit, out var limit) is { } e4)
        {
            return e4;
        }

        if (Int("offset", 0, CaseQuery.MaxOffset, out var offset) is { } e5)
        {
            return e5 + " Narrow the filter to reach older cases.";
        }

        q = new ListQuery(f, sort, descending, offset ?? 0, limit ?? 25);
        return null;

        string? Int(string name, int min, int max, out int? value)
        {
            value = null;
            if (Get(name) is not { } text)
            {
                return null;
            }

            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            {
                return $"{name} is a whole number from {min} to {max}.";
            }

            value = n;
            return null;
        }
    }

    private static IResult Members(string id, string cluster, HttpContext c, ReviewService r, string? offset, string? limit)
    {
        var k = r.Cases.Find(id);
        var cl = k?.Clusters.FirstOrDefault(x => x.Id == cluster);
        if (k is null || cl is null)
        {
            return ReviewConsole.Problem(404, "not_found", "No such case or cluster.");
        }

        if (!TryInt(offset, 0, int.MaxValue, 0, out var skip) || !TryInt(limit, 1, 200, 50, out var take))
        {
            return ReviewConsole.Problem(400, "invalid_request", "offset is a whole number ≥ 0 and limit one from 1 to 200.");
        }

        var members = cl.Members;
        var threshold = new CaseBuilderOptions().ClusterThreshold;
        var me = ReviewConsole.Session(c).User.Username;
        return Results.Json(new
        {
            case_id = k.Id,
            cluster = cl.Id,
            total = members.Count,
            offset = skip,
            threshold,
            members = members.Skip(skip).Take(take).Select(m =>
            {
                var (signal, distance) = CaseQuery.Why(cl, m, threshold);
                return new
                {
                    submission_id = m.SubmissionId,
                    item = m.EvidenceRef,
                    received_at = m.ReceivedAt,
                    file_name = m.Context.OriginalFileName,
                    pdq = m.Pdq?.ToString(),
                    sha256 = m.Hashes.GetValueOrDefault("sha256"),
                    viewed_by_me = m.EvidenceRef is { } e && r.Vault is not null && r.Vault.Views(e).Any(v => v.Actor == me && v.What == "revealed"),
                    signal,
                    distance,
                    why = signal switch
                    {
                        "representative" => "the representative (shown for the cluster)",
                        "pdq" => $"PDQ distance {distance} to the representative (clustered at ≤ {threshold})",
                        _ => $"identical {signal.ToUpperInvariant()} to the representative",
                    },
                };
            }),
        });
    }

    /// <summary>One line for the reviewer: what the undo took back, and what had already gone out.</summary>
    internal static string UndoMessage(UndoResult undo)
    {
        var parts = new List<string> { "Decision undone; the cluster awaits a decision again." };
        var f = undo.Feedback;
        if (f.Cancelled > 0)
        {
            parts.Add($"{f.Cancelled} queued exchange opinion(s) cancelled before they went out.");
        }

        if (f.Withdrawn > 0)
        {
            parts.Add($"{f.Withdrawn} opinion(s) already sent to {Names(f, "withdrawal_queued")}: a withdrawal is queued.");
        }

        if (f.SentAndKept > 0)
        {
            parts.Add($"{f.SentAndKept} opinion(s) already sent to {Names(f, "sent", "in_flight")}, which cannot take one back: it stands until your next decision replaces it.");
        }

        if (undo.AllowListRemoved > 0)
        {
            parts.Add($"{undo.AllowListRemoved} allow-list entr{(undo.AllowListRemoved == 1 ? "y" : "ies")} removed.");
        }

        return string.Join(' ', parts);

        static string Names(FeedbackRecall f, params string[] outcomes) =>
            string.Join(", ", f.Opinions.Where(o => outcomes.Contains(o.Outcome)).Select(o => o.Exchange).Distinct(StringComparer.Ordinal));
    }

    private static object Row(ReviewService r, ReviewCase k, IReadOnlyDictionary<string, CaseClaim> claims)
    {
        var open = k.Status is CaseStatus.Open or CaseStatus.Decided;
        var report = open ? null : r.Deliveries.FindByCase(k.Id, NcmecDestination.DestinationName);
        return new
        {
            id = k.Id,
            uploader_id = k.UploaderId,
            status = k.Status.ToString().ToLowerInvariant(),
            priority = k.Priority,
            items = k.ItemCount,
            clusters = k.Clusters.Count,
            undecided = k.Clusters.Count(c => c.Decision is null),
            max_severity = k.MaxSeverity,
            ai = k.HasAiProvenance,
            banks = k.Submissions.SelectMany(s => s.Matches).Select(m => m.BankName).Distinct(StringComparer.Ordinal).Take(10),
            opened_at = k.OpenedAt,
            updated_at = k.UpdatedAt,
            claim = open ? ClaimView(claims.GetValueOrDefault(k.Id)) : null,
            report = report is null ? null : new { status = ReportAdmin.StatusName(report.Status), report_id = report.ReportId },
        };
    }

    private static IResult? Admin(HttpContext c) =>
        ReviewConsole.Session(c).User.Role == "admin" ? null : ReviewConsole.Problem(403, "forbidden", "User administration is for admins.");

    private static IEnumerable<object> Users(ReviewService r)
    {
        var sessions = r.ConsoleState.SessionCounts(DateTimeOffset.UtcNow);
        return r.Store.Users().Select(u => new { username = u.Username, role = u.Role, disabled = u.Disabled, sessions = sessions.GetValueOrDefault(u.Id) });
    }

    private static IResult SetDisabled(HttpContext c, ReviewService r, string name, bool disabled)
    {
        var admin = ReviewConsole.Session(c).User;
        if (disabled && string.Equals(name, admin.Username, StringComparison.Ordinal))
        {
            return ReviewConsole.Problem(409, "conflict", "You cannot disable your own account (ask another admin, or use 'warden user disable').");
        }

        if (!r.ConsoleState.SetDisabled(name, disabled))
        {
            return ReviewConsole.Problem(404, "not_found", "No such user.");
        }

        r.Audit.Append(new AuditEntry(admin.Username, disabled ? "user.disable" : "user.enable", "user:" + name, new Dictionary<string, string> { ["via"] = "console" }));
        return Results.Json(new { username = name, disabled });
    }

    private static IResult ResetPassword(HttpContext c, ReviewService r, string name, PasswordResetRequest? body)
    {
        var admin = ReviewConsole.Session(c).User;
        var given = body?.Password;
        if (given is not null && (given.Length < 12 || given.Length > 1024))
        {
            return ReviewConsole.Problem(400, "invalid_request", "password is 12–1024 characters (or leave it out to have one generated).");
        }

        // Without a password, one is generated and shown once to the admin (never stored or logged in clear).
        var password = given ?? ConsoleStore.GeneratePassword();
        if (!r.ConsoleState.SetPassword(name, PasswordHashing.Hash(password)))
        {
            return ReviewConsole.Problem(404, "not_found", "No such user.");
        }

        r.Audit.Append(new AuditEntry(admin.Username, "user.password_reset", "user:" + name, new Dictionary<string, string> { ["via"] = "console", ["generated"] = given is null ? "true" : "false" }));
        return Results.Json(new { username = name, password = given is null ? password : null, sessions_ended = true });
    }

    private static bool TryInt(string? text, int min, int max, int fallback, out int value)
    {
        value = fallback;
        return text is null || (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max);
    }

    private static string Clip(string s) => s.Length > 40 ? s[..40] + "…" : s;

    /// <summary>A parsed list query.</summary>
    internal sealed record ListQuery(CaseFilter Filter, CaseSort Sort, bool Descending, int Offset, int Limit);
}

/// <summary>An admin's password reset: the new password, or none to have one generated (returned once).</summary>
/// <param name="Password">At least 12 characters; null: generate.</param>
public sealed record PasswordResetRequest(string? Password);
