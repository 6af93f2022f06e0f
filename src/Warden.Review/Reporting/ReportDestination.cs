namespace Warden.Review.Reporting;

/// <summary>How one call to a reporting destination ended, as the outbox needs to know it.</summary>
public enum StepOutcome
{
    /// <summary>Done.</summary>
    Ok,

    /// <summary>Definitely not applied (connection refused, the server said it failed): retry as is.</summary>
    Retry,

    /// <summary>Unknown whether it was applied (timeout, cut connection, unreadable answer).</summary>
    Ambiguous,

    /// <summary>The destination refused the content (validation, malformed): retrying unchanged is pointless.</summary>
    Rejected,

    /// <summary>Credentials or permissions: an operator must act; retried slowly.</summary>
    AuthFailed,

    /// <summary>The report no longer exists (auto-deleted after 24 h, or unknown id): start over.</summary>
    ReportGone,

    /// <summary>The report was already finished.</summary>
    AlreadyFinished,

    /// <summary>The report was already retracted.</summary>
    AlreadyRetracted,

    /// <summary>
    /// Warden could not make the call: the destination adapter or the evidence read threw before anything
    /// was sent (a destination reports every transport outcome as a result, never as an exception). Retried
    /// with backoff; it counts towards dead-lettering like any other failure.
    /// </summary>
    Fault,
}

/// <summary>The result of one call, with what to keep as the receipt.</summary>
/// <param name="Outcome">Classification.</param>
/// <param name="HttpStatus">HTTP status, when a response came.</param>
/// <param name="ResponseCode">The destination's own status code (NCMEC <c>responseCode</c>).</param>
/// <param name="Description">Its text, or the exception message.</param>
/// <param name="Body">The raw response (truncated to a bound), kept as receipt.</param>
/// <param name="RequestId">The server's request id header (NCMEC support asks for it).</param>
/// <param name="ReportId">Report id (submit).</param>
/// <param name="FileId">File id (upload).</param>
/// <param name="FileHash">The destination's MD5 of an uploaded file.</param>
/// <param name="Request">The document sent, when it is one (kept with the receipt).</param>
public sealed record StepResult(
    StepOutcome Outcome,
    int? HttpStatus = null,
    int? ResponseCode = null,
    string? Description = null,
    string? Body = null,
    string? RequestId = null,
    string? ReportId = null,
    string? FileId = null,
    string? FileHash = null,
    string? Request = null);

/// <summary>
/// A place reports go (NCMEC's CyberTipline first; the UK NCA, RCMP/C3P or an EU Centre later). The outbox
/// drives every destination through the same life cycle: open a report, add each file, describe each
/// file, finish; or cancel an unfinished one. A destination that has no separate describe step returns
/// <see cref="StepOutcome.Ok"/> for it.
/// </summary>
public interface IReportDestination
{
    /// <summary>Stable name stored with each delivery (<c>ncmec</c>).</summary>
    string Name { get; }

    /// <summary><c>test</c> or <c>production</c>; a delivery is only ever sent to the environment it was queued for.</summary>
    string Environment { get; }

    /// <summary>Opens a report from its document; returns the destination's report id.</summary>
    Task<StepResult> OpenAsync(string document, CancellationToken cancellationToken);

    /// <summary>Uploads one file; returns its file id and the destination's MD5 of it.</summary>
    Task<StepResult> AddFileAsync(string reportId, string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);

    /// <summary>Sends a file's details (<paramref name="metadata"/> is the destination's own JSON, stored at enqueue).</summary>
    Task<StepResult> DescribeFileAsync(string reportId, string fileId, string metadata, CancellationToken cancellationToken);

    /// <summary>Completes the report; the answer is the legal receipt.</summary>
    Task<StepResult> FinishAsync(string reportId, CancellationToken cancellationToken);

    /// <summary>Cancels an unfinished report.</summary>
    Task<StepResult> CancelAsync(string reportId, CancellationToken cancellationToken);
}
