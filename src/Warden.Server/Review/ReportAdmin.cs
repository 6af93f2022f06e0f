using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Review;
using Warden.Review.Reporting;
using Warden.Server.Api;
using Warden.Server.Auth;

namespace Warden.Server.Review;

/// <summary>An admin's reason for a cancel or requeue (kept in the audit log).</summary>
/// <param name="Reason">Free text, at most 500 characters.</param>
public sealed record DeliveryActionRequest(string? Reason);

/// <summary>
/// The report outbox for admins: list deliveries (dead-lettered and failed ones need a person), cancel or
/// requeue one. Under <c>/v1/reports</c> for admin API keys and under <c>/review/api/deliveries</c> for admin
/// console users. Both go through the running worker's deliverer, so an action waits for a step in progress
/// instead of racing it; the deliverer audits each action with the admin as actor.
/// </summary>
internal static class ReportAdmin
{
    private const int MaxReason = 500;

    public static void Map(WebApplication app)
    {
        var reports = app.MapGroup("/v1/reports").RequireAuthorization(Roles.Administer).WithTags("Reports");
        reports.MapGet(string.Empty, (string? status, int? limit, ReviewService r) => List(r, status, limit))
            .WithSummary("Report deliveries, newest first")
            .WithDescription("status: queued, open, retracting, finished, failed, cancelled, dead_lettered (default: all). attention counts failed and dead-lettered deliveries, which wait for an admin.");
        reports.MapGet("/{id:long}", (long id, ReviewService r) => r.Deliveries.Find(id) is { } d ? Results.Json(Detail(r, d)) : throw ApiException.NotFound($"No report delivery {id}."))
            .WithSummary("One report delivery with its files and the destination's answers");
        reports.MapPost("/{id:long}/cancel", async (long id, DeliveryActionRequest? body, HttpContext c, ReportWorker w, ReviewService r, CancellationToken ct) =>
            Results.Json(Summary(await CancelAsync(w, id, c.User.Actor(), body, ct).ConfigureAwait(false))))
            .WithSummary("Cancel a delivery that has not finished (an open report is retracted first); audited")
            .WithDescription("Body (optional): {\"reason\": \"…\"}. 409 when the report was already finished.");
        reports.MapPost("/{id:long}/requeue", async (long id, DeliveryActionRequest? body, HttpContext c, ReportWorker w, CancellationToken ct) =>
            Results.Json(Summary(await RequeueAsync(w, id, c.User.Actor(), body, ct).ConfigureAwait(false))))
            .WithSummary("Requeue a failed, dead-lettered or cancelled delivery; audited")
            .WithDescription("Body (optional): {\"reason\": \"…\"}. A report that may still be open at the destination is retracted first and a fresh one filed. 409 for other states.");
    }

    public static void MapConsole(RouteGroupBuilder api)
    {
        api.MapGet("/deliveries", (string? status, int? limit, HttpContext c, ReviewService r) =>
            IsAdmin(c) ? List(r, status, limit) : Forbidden());
        api.MapPost("/deliveries/{id:long}/cancel", async (long id, DeliveryActionRequest? body, HttpContext c, ReportWorker w, CancellationToken ct) =>
            IsAdmin(c) ? Results.Json(Summary(await CancelAsync(w, id, ReviewConsole.Session(c).User.Username, body, ct).ConfigureAwait(false))) : Forbidden());
        api.MapPost("/deliveries/{id:long}/requeue", async (long id, DeliveryActionRequest? body, HttpContext c, ReportWorker w, CancellationToken ct) =>
            IsAdmin(c) ? Results.Json(Summary(await RequeueAsync(w, id, ReviewConsole.Session(c).User.Username, body, ct).ConfigureAwait(false))) : Forbidden());
    }

    private static bool IsAdmin(HttpContext c) => ReviewConsole.Session(c).User.Role == "admin";

    private static IResult Forbidden() => ReviewConsole.Problem(403, "forbidden", "Report deliveries are for admins.");

    private static IResult List(ReviewService r, string? status, int? limit)
    {
        DeliveryStatus? filter = null;
        if (!string.IsNullOrEmpty(status))
        {
            filter = ParseStatus(status) ?? throw new ApiException(400, ErrorCodes.InvalidRequest,
                "status is one of queued, open, retracting, finished, failed, cancelled, dead_lettered.");
        }

        var rows = r.Deliveries.List(filter, Math.Clamp(limit ?? 100, 1, 1000));
        return Results.Json(new
        {
            attention = r.Deliveries.Count(DeliveryStatus.DeadLettered) + r.Deliveries.Count(DeliveryStatus.Failed),
            deliveries = rows.Select(Summary),
        });
    }

    private static async Task<Delivery> CancelAsync(ReportWorker w, long id, string actor, DeliveryActionRequest? body, CancellationToken ct)
    {
        var reason = Reason(body, "cancelled by an admin");
        var d = await Guard(() => w.Deliverer.CancelAsync(id, actor, reason, ct)).ConfigureAwait(false);
        return d.Status == DeliveryStatus.Finished
            ? throw new ApiException(409, ErrorCodes.Conflict, $"Report delivery {id} is finished (report {d.ReportId}): a finished report cannot be cancelled.")
            : d;
    }

    private static Task<Delivery> RequeueAsync(ReportWorker w, long id, string actor, DeliveryActionRequest? body, CancellationToken ct) =>
        Guard(() => w.Deliverer.RequeueAsync(id, actor, Reason(body, "requeued by an admin"), ct));

    // The deliverer's refusals as problems: unknown id 404, wrong state or a concurrent writer 409.
    private static async Task<Delivery> Guard(Func<Task<Delivery>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (KeyNotFoundException ex)
        {
            throw new ApiException(404, ErrorCodes.NotFound, ex.Message);
        }
        catch (InvalidOperationException ex)
        {
            throw new ApiException(409, ErrorCodes.Conflict, ex.Message);
        }
        catch (DeliveryConflictException)
        {
            throw new ApiException(409, ErrorCodes.Conflict, "Another worker changed this delivery just now; look again and retry.");
        }
    }

    private static string Reason(DeliveryActionRequest? body, string fallback)
    {
        var reason = body?.Reason?.Trim();
        if (reason is { Length: > MaxReason })
        {
            throw new ApiException(400, ErrorCodes.InvalidRequest, $"reason is at most {MaxReason} characters.");
        }

        return string.IsNullOrEmpty(reason) ? fallback : XmlSafeText.Clean(reason);
    }

    private static DeliveryStatus? ParseStatus(string s) => s.Trim().ToLowerInvariant() switch
    {
        "queued" => DeliveryStatus.Queued,
        "open" => DeliveryStatus.Open,
        "retracting" => DeliveryStatus.Retracting,
        "finished" => DeliveryStatus.Finished,
        "failed" => DeliveryStatus.Failed,
        "cancelled" => DeliveryStatus.Cancelled,
        "dead_lettered" or "dead-lettered" => DeliveryStatus.DeadLettered,
        _ => null,
    };

    internal static string StatusName(DeliveryStatus s) => s.WireName();

    internal static object Summary(Delivery d) => new
    {
        id = d.Id,
        case_id = d.CaseId,
        destination = d.Destination,
        environment = d.Environment,
        status = StatusName(d.Status),
        needs_attention = d.NeedsAttention,
        report_id = d.ReportId,
        generation = d.Generation,
        restarts = d.Restarts,
        failing_step = d.FailureKey,
        failures = d.Failures,
        last_error = d.LastError,
        created_at = d.CreatedAt,
        opened_at = d.OpenedAt,
        finished_at = d.FinishedAt,
        next_attempt_at = d.IsTerminal ? (DateTimeOffset?)null : d.NextAttemptAt,
    };

    private static object Detail(ReviewService r, Delivery d) => new
    {
        delivery = Summary(d),
        files = r.Deliveries.Files(d.Id).Select(f => new { index = f.Index, file_name = f.FileName, file_id = f.FileId, md5 = f.Md5, described = f.Described }),
        receipts = r.Deliveries.Receipts(d.Id).Select(x => new
        {
            at = x.At,
            generation = x.Generation.ToString(CultureInfo.InvariantCulture),
            step = x.Step,
            outcome = x.Outcome,
            http_status = x.HttpStatus,
            response_code = x.ResponseCode,
            request_id = x.RequestId,
        }),
    };
}
