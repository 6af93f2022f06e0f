using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Warden.Review;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Evidence;
using Warden.Review.Reporting;
using Warden.Review.Users;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Review;

/// <summary>
/// The review console: a static page (HTML + vanilla JS, embedded in the assembly) under <c>/review</c>
/// talking to JSON endpoints under <c>/review/api</c>. People log in with a user name and password (cookie
/// session, HttpOnly, SameSite=Strict, Secure over https); every state change needs the session's CSRF token
/// in <c>X-CSRF-Token</c>; every endpoint needs the reviewer or admin role. API keys do not open it.
/// </summary>
public static class ReviewConsole
{
    /// <summary>The session cookie.</summary>
    public const string CookieName = "warden_review";

    /// <summary>The CSRF header.</summary>
    public const string CsrfHeader = "X-CSRF-Token";

    private const string SessionItem = "warden.review.session";

    // PBKDF2 costs ~150 ms of CPU: at most this many run at once, so login floods cannot starve matching.
    private static readonly SemaphoreSlim LoginGate = new(Math.Max(1, Environment.ProcessorCount / 2));

    /// <summary>Registers the review services and the report delivery worker.</summary>
    public static IServiceCollection AddReviewConsole(this IServiceCollection services)
    {
        // The review state opens on the configured database; the audit log is injected into every endpoint that changes configuration.
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<ServerOptions>();
            return new ReviewService(options.Review, options.Database, sp.GetRequiredService<BankStore>(), sp.GetRequiredService<ILogger<ReviewService>>(), sp.GetService<IReviewDecisionFeedback>());
        });
        services.AddSingleton(sp => sp.GetRequiredService<ReviewService>().Audit);
        services.AddSingleton(sp => new LoginThrottle(sp.GetRequiredService<ServerOptions>().Review.Login));
        services.AddSingleton<ReportWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<ReportWorker>());
        services.AddHostedService<AuditCheckpointWorker>();
        return services;
    }

    /// <summary>Maps the console, its API and <c>GET /v1/audit</c>.</summary>
    public static void MapReviewConsole(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var review = app.Services.GetRequiredService<ReviewService>(); // open and replay at start, not on the first request

        app.MapGet("/review", () => Asset("index.html", "text/html; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/review/app.js", () => Asset("app.js", "text/javascript; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/review/models.css", () => Asset("models.css", "text/css; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/review/models.js", () => Asset("models.js", "text/javascript; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/review/app.css", () => Asset("app.css", "text/css; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();

        var open = app.MapGroup("/review/api").AllowAnonymous().ExcludeFromDescription().AddEndpointFilter(SecurityHeaders);
        open.MapPost("/login", Login);

        // The session check runs as middleware, before routing binds a body, so nothing about an endpoint
        // (not even a 415) is answered without a session; the endpoint filter re-checks that it ran.
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/review/api") && !context.Request.Path.StartsWithSegments("/review/api/login"))
            {
                Harden(context.Response.Headers);
                if (Authenticate(context, review) is { } refusal)
                {
                    await refusal.ExecuteAsync(context).ConfigureAwait(false);
                    return;
                }
            }

            await next(context).ConfigureAwait(false);
        });
        var api = app.MapGroup("/review/api").AllowAnonymous().ExcludeFromDescription().AddEndpointFilter(SecurityHeaders).AddEndpointFilter(RequireSession);
        api.MapPost("/logout", (HttpContext c, ReviewService r) =>
        {
            var s = Session(c);
            r.Store.DeleteSession(s.TokenHash);
            r.Audit.Append(new AuditEntry(s.User.Username, "user.logout", "user:" + s.User.Username));
            c.Response.Cookies.Delete(CookieName, new CookieOptions { Path = "/review" });
            return Results.NoContent();
        });
        api.MapGet("/me", Me);
        api.MapPut("/settings", (HttpContext c, ReviewService r, SettingsRequest body) =>
        {
            var s = Session(c);
            if (body.BlurPercent is < (int)Warden.Core.Imaging.Obscure.MinBlurPercent or > (int)Warden.Core.Imaging.Obscure.MaxBlurPercent)
            {
                return Problem(400, "invalid_request", $"blur_percent is {(int)Warden.Core.Imaging.Obscure.MinBlurPercent}–{(int)Warden.Core.Imaging.Obscure.MaxBlurPercent} (null: the organisation default).");
            }

            if (body.Size is { } size && (size < Warden.Core.Imaging.Obscure.MinSide || size > r.MaxPreviewSize))
            {
                return Problem(400, "invalid_request", $"size is {Warden.Core.Imaging.Obscure.MinSide}–{r.MaxPreviewSize} pixels (null: the organisation default).");
            }

            r.Store.SetPreferences(s.User.Id, body.Blur, body.Greyscale);
            r.Store.SetDisplay(s.User.Id, body.BlurPercent, body.Size);
            r.Audit.Append(new AuditEntry(s.User.Username, "user.settings", "user:" + s.User.Username, new Dictionary<string, string>
            {
                ["blur"] = Flag(body.Blur),
                ["greyscale"] = Flag(body.Greyscale),
                ["blur_percent"] = body.BlurPercent?.ToString(CultureInfo.InvariantCulture) ?? "default",
                ["size"] = body.Size?.ToString(CultureInfo.InvariantCulture) ?? "default",
            }));
            return Results.NoContent();
        });
        api.MapGet("/queue", (ReviewService r) => ConsoleQueueEndpoints.QueueRows(r));
        api.MapGet("/cases/{id}", (string id, HttpContext c, ReviewService r) => r.Cases.Find(id) is { } k ? Results.Json(CaseView(k, r, Session(c).User)) : NotFound());
        api.MapGet("/cases/{id}/items/{item}/media", MediaAsync);
        api.MapPost("/cases/{id}/items/{item}/reveal", async (string id, string item, HttpContext c, ReviewService r, RevealRequest? body, CancellationToken ct) =>
        {
            var g = await r.RevealAsync(Session(c).User, id, item, body?.Reason, ct).ConfigureAwait(false);
            return Results.Json(new
            {
                exposure_today = g.ExposureToday,
                exposure_cap = r.Options.DailyExposureCap,
                grant = g.Grant,
                expires_at = g.ExpiresAt,
                original_url = $"/review/api/cases/{Uri.EscapeDataString(id)}/items/{Uri.EscapeDataString(item)}/media?original=1&grant={Uri.EscapeDataString(g.Grant)}",
            });
        });
        api.MapPost("/obscure", (HttpContext c, ReviewService r, ReobscureRequest? body) =>
        {
            r.Reobscure(Session(c).User, body?.CaseId, body?.Item);
            return Results.NoContent();
        });
        api.MapPost("/cases/{id}/clusters/{cluster}/decision", (string id, string cluster, HttpContext c, ReviewService r, DecisionRequest body) =>
            Results.Json(DecisionView(r.Decide(Session(c).User, id, cluster, body))));
        api.MapPost("/cases/{id}/report", (string id, HttpContext c, ReviewService r) => Results.Json(ReportView(r, r.FileReport(Session(c).User, id))));
        api.MapGet("/cases/{id}/report", (string id, ReviewService r) =>
            r.Deliveries.FindByCase(id, NcmecDestination.DestinationName) is { } d ? Results.Json(ReportView(r, d)) : NotFound());
        api.MapPost("/cases/{id}/close", (string id, HttpContext c, ReviewService r) =>
        {
            r.CloseWithoutReport(Session(c).User, id);
            return Results.NoContent();
        });
        ReportAdmin.MapConsole(api);
        ConsoleQueueEndpoints.Map(api);

        var audit = app.MapGroup("/v1/audit").RequireAuthorization(Roles.Administer).WithTags("Audit");
        audit.MapGet(string.Empty, AuditQuery)
            .WithSummary("The hash-chained audit log (views, decisions, reports, logins, settings)")
            .WithDescription("Filters: actor, action, subject, from, to (ISO 8601), after (sequence), limit (default 1000). format=csv exports CSV (all matching records).");
        audit.MapGet("/verify", async (ReviewService r, CancellationToken ct) => r.Checkpoints is { } anchored ? await anchored.VerifyAsync(ct).ConfigureAwait(false) : r.Audit.Verify())
            .WithSummary("Walk the hash chain and report the first broken record")
            .WithDescription("With evidence preservation on, every record anchored by a signed checkpoint in the blob store must still carry its checkpointed hash, so a rewritten tail is caught too.");
        ReportAdmin.Map(app);
    }

    private static async Task<IResult> Login(HttpContext c, ReviewService r, LoginThrottle throttle, LoginRequest? body)
    {
        // JSON only: a cross-site form cannot send application/json without a CORS preflight (login CSRF).
        if (body is null || string.IsNullOrEmpty(body.Username) || string.IsNullOrEmpty(body.Password) || body.Username.Length > 128 || body.Password.Length > 1024)
        {
            return Problem(400, "invalid_request", "User name and password are required.");
        }

        // Backoff and lockout per account and per source, checked before any password work (docs/review.md).
        var source = c.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (throttle.RetryAfter(body.Username, source) is { TotalMilliseconds: > 0 } wait)
        {
            var seconds = (long)Math.Ceiling(wait.TotalSeconds);
            c.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problem(429, "rate_limited", $"Too many failed logins; retry in {seconds} s.");
        }

        if (!await LoginGate.WaitAsync(TimeSpan.FromSeconds(5), c.RequestAborted).ConfigureAwait(false))
        {
            c.Response.Headers.RetryAfter = "5";
            return Problem(429, "rate_limited", "Too many logins at once; retry shortly.");
        }

        var found = r.Store.FindUser(body.Username);
        bool ok;
        try
        {
            ok = PasswordHashing.Verify(body.Password, found?.PasswordHash ?? PasswordHashing.Decoy) && found is { User.Disabled: false } && IsReviewRole(found.Value.User.Role);
        }
        finally
        {
            LoginGate.Release();
        }

        if (!ok)
        {
            r.Audit.Append(new AuditEntry(body.Username, "user.login_failed", "user:" + body.Username));
            var (accountLocked, sourceLocked) = throttle.Failed(body.Username, source);
            var minutes = Math.Max(1, r.Options.Login.LockoutSeconds / 60).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (accountLocked)
            {
                r.Audit.Append(new AuditEntry(body.Username, "user.login_locked", "user:" + body.Username, new Dictionary<string, string> { ["scope"] = "account", ["source"] = source, ["minutes"] = minutes }));
            }

            if (sourceLocked)
            {
                r.Audit.Append(new AuditEntry(body.Username, "user.login_locked", "source:" + source, new Dictionary<string, string> { ["scope"] = "source", ["minutes"] = minutes }));
            }

            return Problem(401, "unauthorized", "Wrong user name or password.");
        }

        throttle.Succeeded(body.Username);

        var user = found!.Value.User;
        var token = Base64Url(RandomNumberGenerator.GetBytes(32));
        var csrf = Base64Url(RandomNumberGenerator.GetBytes(32));
        var expires = DateTimeOffset.UtcNow.AddMinutes(Math.Max(5, r.Options.SessionMinutes));
        r.Store.CreateSession(HashToken(token), user.Id, csrf, expires);
        c.Response.Cookies.Append(CookieName, token, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = c.Request.IsHttps,
            Path = "/review",
            Expires = expires,
            IsEssential = true,
        });
        r.Audit.Append(new AuditEntry(user.Username, "user.login", "user:" + user.Username));
        return Results.Json(new { csrf, username = user.Username, role = user.Role });
    }

    private static IResult Me(HttpContext c, ReviewService r)
    {
        var s = Session(c);
        var o = r.Options;
        var look = r.Look(s.User);
        var display = r.Store.Display(s.User.Id);
        return Results.Json(new
        {
            username = s.User.Username,
            role = s.User.Role,
            csrf = s.Csrf,
            blur = s.User.Blur ?? o.DefaultBlur,
            greyscale = s.User.Greyscale ?? o.DefaultGreyscale,
            org_blur = o.DefaultBlur,
            org_greyscale = o.DefaultGreyscale,
            blur_percent = display.BlurPercent,
            size = display.Size,
            org_blur_percent = o.DefaultBlurPercent,
            min_blur_percent = r.MinimumBlurPercent,
            max_size = r.MaxPreviewSize,
            look = new { size = look.MaxSide, blur_percent = look.BlurPercent, greyscale = look.Greyscale },
            reveal_seconds = Math.Clamp(o.RevealSeconds, 5, 600),
            exposure_today = r.Store.Exposure(s.User.Id, ReviewService.Today()),
            exposure_cap = o.DailyExposureCap,
            preservation = r.Vault is not null,
            decide_without_viewing = o.AllowDecisionWithoutViewing,
            classifications = CyberTipVocabulary.IndustryClassifications.Order(StringComparer.Ordinal),
            annotations = CyberTipVocabulary.FileAnnotationOrder,
            incident_types = CyberTipVocabulary.IncidentTypes.Order(StringComparer.Ordinal),
            environment = o.CyberTipline.Environment,
        });
    }

    /// <summary>
    /// The media endpoint: by default the server-made obscured derivative (PNG) or a placeholder; the original
    /// bytes only with <c>?original</c> and a live reveal grant of this person for this item. Any request that
    /// names <c>original</c> without one is refused (403), so no query string reaches the original bytes.
    /// </summary>
    private static async Task<IResult> MediaAsync(string id, string item, HttpContext c, ReviewService r, CancellationToken ct)
    {
        var user = Session(c).User;
        var h = c.Response.Headers;
        h.CacheControl = "no-store";
        h["Cross-Origin-Resource-Policy"] = "same-origin";
        if (c.Request.Query.ContainsKey("original"))
        {
            var grant = c.Request.Query["grant"].ToString();
            if (string.IsNullOrEmpty(grant))
            {
                grant = c.Request.Headers["X-Warden-Reveal-Grant"].ToString();
            }

            var original = r.Original(user, id, item, grant);
            h["X-Warden-Media"] = "original";
            return new WipeAfterSending(original, Sniff(original));
        }

        var preview = await r.PreviewAsync(user, id, item, ct).ConfigureAwait(false);
        h["X-Warden-Media"] = preview.IsPlaceholder ? "placeholder" : "derivative";
        return Results.Bytes(preview.Png, "image/png");
    }

    private static IResult AuditQuery(HttpContext c, ReviewService r, string? actor, string? action, string? subject, string? from, string? to, long? after, int? limit, string? format)
    {
        var filter = new AuditFilter(actor, action, subject, Time(from, "from"), Time(to, "to"));
        if (string.Equals(format, "csv", StringComparison.OrdinalIgnoreCase))
        {
            var sb = new StringWriter(CultureInfo.InvariantCulture);
            r.Audit.ExportCsv(sb, filter);
            return Results.Text(sb.ToString(), "text/csv; charset=utf-8");
        }

        var rows = r.Audit.Query(filter).Where(a => a.Seq > (after ?? 0)).Take(Math.Clamp(limit ?? 1000, 1, 10_000))
            .Select(a => new { seq = a.Seq, at = a.At, actor = a.Actor, action = a.Action, subject = a.Subject, details = a.Details, hash = a.HashHex });
        return Results.Json(rows);
    }

    private static DateTimeOffset? Time(string? text, string name) =>
        text is null ? null
        : DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t
        : throw Api.ApiException.BadRequest(Api.ErrorCodes.InvalidRequest, $"{name} is not an ISO 8601 time.");

    private static async ValueTask<object?> SecurityHeaders(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        Harden(context.HttpContext.Response.Headers);
        try
        {
            return await next(context).ConfigureAwait(false);
        }
        catch (ReviewException ex)
        {
            return Problem(ex.Status, ex.Code, ex.Message);
        }
        catch (EvidenceException ex)
        {
            return Problem(404, "evidence_unavailable", ex.Message);
        }
    }

    private static async ValueTask<object?> RequireSession(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        context.HttpContext.Items.ContainsKey(SessionItem)
            ? await next(context).ConfigureAwait(false)
            : Problem(401, "unauthorized", "Log in to the review console.");

    /// <summary>Loads the session, checks the role and (for state changes) the CSRF token; null when all pass.</summary>
    private static IResult? Authenticate(HttpContext http, ReviewService review)
    {
        var token = http.Request.Cookies[CookieName];
        var session = string.IsNullOrEmpty(token) || token.Length > 100 ? null : review.Store.FindSession(HashToken(token), DateTimeOffset.UtcNow);
        if (session is null)
        {
            return Problem(401, "unauthorized", "Log in to the review console.");
        }

        if (!IsReviewRole(session.User.Role))
        {
            return Problem(403, "forbidden", "The review console needs the reviewer or admin role.");
        }

        if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
        {
            var sent = http.Request.Headers[CsrfHeader].ToString();
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(sent), Encoding.ASCII.GetBytes(session.Csrf)))
            {
                return Problem(403, "csrf", "Missing or wrong CSRF token.");
            }
        }

        http.Items[SessionItem] = session;
        return null;
    }

    private static void Harden(IHeaderDictionary h)
    {
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "no-referrer";
        h.CacheControl = "no-store";
    }

    internal static ConsoleSession Session(HttpContext c) => (ConsoleSession)c.Items[SessionItem]!;

    private static bool IsReviewRole(string role) => role is "reviewer" or "admin";

    private static string HashToken(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Flag(bool? b) => b is null ? "default" : b.Value ? "on" : "off";

    private static IResult NotFound() => Problem(404, "not_found", "Not found.");

    internal static IResult Problem(int status, string code, string detail) =>
        Results.Json(new { type = "about:blank", title = ReasonPhrases(status), status, code, detail }, statusCode: status, contentType: "application/problem+json");

    private static string ReasonPhrases(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);

    private static AssetResult Asset(string name, string contentType)
    {
        using var stream = typeof(ReviewConsole).Assembly.GetManifestResourceStream("Warden.Server.Review.wwwroot." + name)
            ?? throw new InvalidOperationException($"Missing embedded asset {name}.");
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return new AssetResult(ms.ToArray(), contentType);
    }

    private static string Sniff(ReadOnlySpan<byte> b) => Warden.Core.Imaging.ImageFormatSniffer.MimeType(Warden.Core.Imaging.ImageFormatSniffer.Sniff(b));

    private static object CaseView(ReviewCase k, ReviewService r, ConsoleUser user) => new
    {
        id = k.Id,
        uploader_id = k.UploaderId,
        status = k.Status.ToString().ToLowerInvariant(),
        priority = k.Priority,
        items = k.ItemCount,
        opened_at = k.OpenedAt,
        updated_at = k.UpdatedAt,
        ips = k.Submissions.Select(s => s.Context.IpAddress).OfType<string>().Distinct().Take(50),
        urls = k.Submissions.Select(s => s.Context.Url).OfType<string>().Distinct().Take(50),
        claim = ConsoleQueueEndpoints.ClaimView(r.ConsoleState.Holder(k.Id, DateTimeOffset.UtcNow)),
        claim_minutes = (int)r.ClaimLease.TotalMinutes,
        clusters = k.Clusters.Select(c => new
        {
            id = c.Id,
            count = c.Members.Count,
            representative = Item(c.Representative),
            viewed_by_me = c.Representative.EvidenceRef is { } e && r.Vault is not null && r.Vault.Views(e).Any(v => v.Actor == user.Username && v.What == "revealed"),
            viewed_by_anyone = c.Representative.EvidenceRef is { } e2 && r.Vault is not null && r.Vault.ViewedByEsp(e2),
            decision = c.Decision is { } d ? DecisionView(d) : null,
            suggested_classification = CaseQuery.SuggestedClassification(c),
            suggested_annotations = CaseQuery.SuggestedAnnotations(c),
            members = c.Members.Take(20).Select(m => new { submission_id = m.SubmissionId, item = m.EvidenceRef, received_at = m.ReceivedAt }),
        }),
        report = r.Deliveries.FindByCase(k.Id, NcmecDestination.DestinationName) is { } dl ? ReportView(r, dl) : null,
    };

    private static object Item(MatchedSubmission s) => new
    {
        submission_id = s.SubmissionId,
        item = s.EvidenceRef,
        received_at = s.ReceivedAt,
        uploaded_at = s.Context.UploadedAt,
        ip = s.Context.IpAddress,
        url = s.Context.Url,
        file_name = s.Context.OriginalFileName,
        pdq = s.Pdq?.ToString(),
        hashes = s.Hashes,
        matches = s.Matches.Select(m => new { bank = m.BankName, signal_type = m.SignalType, distance = m.Distance, labels = m.Labels }),
        model = s.Model, // a model file: shown as a description with its lineage (models.js), never previewed
    };

    private static object DecisionView(ClusterDecision d) => new
    {
        verdict = d.Verdict == Verdict.Confirmed ? "confirmed" : "false_positive",
        reviewer = d.Reviewer,
        at = d.At,
        classification = d.Classification,
        annotations = d.FileAnnotations?.Order(StringComparer.Ordinal),
        incident_type = d.IncidentType,
        decided_without_viewing = d.DecidedWithoutViewing,
        note = d.Note,
    };

    private static object ReportView(ReviewService r, Delivery d) => new
    {
        delivery_id = d.Id,
        status = ReportAdmin.StatusName(d.Status),
        environment = d.Environment,
        report_id = d.ReportId,
        created_at = d.CreatedAt,
        finished_at = d.FinishedAt,
        last_error = d.LastError,
        document = d.Document,
        files = r.Deliveries.Files(d.Id).Select(f => new { file_name = f.FileName, file_id = f.FileId, md5 = f.Md5 }),
        receipts = r.Deliveries.Receipts(d.Id).Select(x => new { at = x.At, step = x.Step, outcome = x.Outcome, http_status = x.HttpStatus, response_code = x.ResponseCode, body = x.Body }),
    };

    /// <summary>Writes the original bytes, then zeroes them: the grant's copy is the only one in memory.</summary>
    private sealed class WipeAfterSending(byte[] body, string contentType) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            try
            {
                httpContext.Response.ContentType = contentType;
                httpContext.Response.ContentLength = body.Length;
                await httpContext.Response.Body.WriteAsync(body).ConfigureAwait(false);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(body);
            }
        }
    }

    private sealed class AssetResult(byte[] body, string contentType) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            var h = httpContext.Response.Headers;
            h.ContentSecurityPolicy = "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
            h.XContentTypeOptions = "nosniff";
            h.XFrameOptions = "DENY";
            h["Referrer-Policy"] = "no-referrer";
            h.CacheControl = "no-cache";
            httpContext.Response.ContentType = contentType;
            return httpContext.Response.Body.WriteAsync(body).AsTask();
        }
    }
}

/// <summary>Login body.</summary>
/// <param name="Username">User name.</param>
/// <param name="Password">Password.</param>
public sealed record LoginRequest(string? Username, string? Password);

/// <summary>
/// Display preferences (null: the organisation default). They change how the server-made derivative looks,
/// never whether originals are sent or what is logged.
/// </summary>
/// <param name="Blur">Blur media (off: the organisation's minimum blur, never none).</param>
/// <param name="Greyscale">Greyscale media.</param>
/// <param name="BlurPercent">Blur strength when on: gaussian sigma in percent of the derivative's longest side.</param>
/// <param name="Size">Longest side of the derivative in pixels.</param>
public sealed record SettingsRequest(bool? Blur, bool? Greyscale, int? BlurPercent = null, int? Size = null);

/// <summary>What was re-obscured (for the audit record; optional).</summary>
/// <param name="CaseId">The case on screen.</param>
/// <param name="Item">The item that was revealed.</param>
public sealed record ReobscureRequest(string? CaseId, string? Item);

/// <summary>A reveal's optional reason (kept in the view record and audit log).</summary>
/// <param name="Reason">Why the reviewer needs the original.</param>
public sealed record RevealRequest(string? Reason);
