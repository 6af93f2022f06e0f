using System.Text.Json;
using Microsoft.Extensions.Logging;
using Warden.Review.Cases;
using Warden.Review.Evidence;

namespace Warden.Review;

/// <summary>Upload context sealed at rest: written sealed, opened only when a case is read for the console or a report.</summary>
public sealed partial class ReviewService
{
    /// <summary>
    /// The record as it is written: IP, content URL and file name moved into one sealed value bound to the
    /// submission id; without a master key they are dropped rather than kept in plaintext.
    /// </summary>
    internal SubmissionRecord SealContext(SubmissionRecord record)
    {
        if (record.Ip is null && record.Url is null && record.FileName is null)
        {
            return record;
        }

        var bare = record with { Ip = null, Url = null, FileName = null };
        return Seal is null ? bare : bare with { Sealed = Seal.Seal(record.Id, JsonSerializer.Serialize(new SealedContext(record.Ip, record.Url, record.FileName), Json)) };
    }

    /// <summary>A stored submission with its sealed context opened (null fields when it cannot be opened).</summary>
    private MatchedSubmission OpenSubmission(string body)
    {
        var record = JsonSerializer.Deserialize<SubmissionRecord>(body, Json) ?? throw new JsonException("Empty submission event.");
        if (record.Sealed is { } sealedValue)
        {
            SealedContext? context = null;
            try
            {
                context = Seal is null ? null : JsonSerializer.Deserialize<SealedContext>(Seal.Open(record.Id, sealedValue), Json);
            }
            catch (Exception ex) when (ex is EvidenceException or JsonException)
            {
                // Fails closed: the case shows no context rather than someone else's, and says so in the log.
                LogContextUnreadable(_log, record.Id, ex.Message);
            }

            record = record with { Ip = context?.Ip, Url = context?.Url, FileName = context?.FileName, Sealed = null };
        }

        return record.ToSubmission();
    }

    /// <summary>Seals context that an older version wrote in plaintext (once; resumable, safe on several nodes at once).</summary>
    private void SealPlaintextContext()
    {
        if (Seal is null)
        {
            return;
        }

        var n = Cases.RewriteSubmissionBodies("context-sealed", body =>
        {
            var record = JsonSerializer.Deserialize<SubmissionRecord>(body, Json);
            return record is null || (record.Ip is null && record.Url is null && record.FileName is null) ? null : JsonSerializer.Serialize(SealContext(record), Json);
        });
        if (n > 0)
        {
            LogContextSealed(_log, n);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Review: the sealed upload context of submission {Submission} could not be opened: {Error}")]
    private static partial void LogContextUnreadable(ILogger logger, string submission, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Review: sealed the upload context of {Count} case events written in plaintext")]
    private static partial void LogContextSealed(ILogger logger, int count);

    private sealed record SealedContext(string? Ip, string? Url, string? FileName);
}
