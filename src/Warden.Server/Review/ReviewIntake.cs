using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Hashing;
using Warden.Server.Api;

namespace Warden.Server.Review;

/// <summary>Optional upload context of <c>POST /v1/match</c> (query parameters).</summary>
public sealed class UploadQuery
{
    /// <summary>The uploader's IP address (v4 or v6).</summary>
    [FromQuery(Name = "uploader_ip")]
    public string? UploaderIp { get; set; }

    /// <summary>Where the content is or would be published (absolute URL).</summary>
    [FromQuery(Name = "content_url")]
    public string? ContentUrl { get; set; }

    /// <summary>When the platform received it (ISO 8601).</summary>
    [FromQuery(Name = "uploaded_at")]
    public string? UploadedAt { get; set; }

    /// <summary>The uploader's file name.</summary>
    [FromQuery(Name = "file_name")]
    public string? FileName { get; set; }
}

/// <summary>Hands actionable matches of the upload API to the review side.</summary>
public static class ReviewIntake
{
    /// <summary>Validates the upload context and, when the upload matched, adds it to its uploader's case.</summary>
    public static async Task AfterMatchAsync(HttpContext context, byte[] data, ContentHashes hashes, MatchResponse response, string? uploaderId, UploadQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(query);
        var uploader = Parse(uploaderId, query);
        if (!response.Matched)
        {
            return;
        }

        var review = context.RequestServices.GetService<ReviewService>();
        if (review is not null)
        {
            await review.IntakeAsync(data, hashes, response, uploader, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Checks the context fields (400 on a malformed one).</summary>
    public static UploaderContext Parse(string? uploaderId, UploadQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.UploaderIp is { } ip && !IPAddress.TryParse(ip, out _))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "uploader_ip is not an IP address.");
        }

        if (query.ContentUrl is { } url && (url.Length > 2048 || !Uri.TryCreate(url, UriKind.Absolute, out _)))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "content_url is not an absolute URL of at most 2048 characters.");
        }

        DateTimeOffset? at = null;
        if (query.UploadedAt is { } text)
        {
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            {
                throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "uploaded_at is not an ISO 8601 time.");
            }

            at = parsed;
        }

        if (query.FileName is { Length: > 255 })
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "file_name is longer than 255 characters.");
        }

        return new UploaderContext(uploaderId, query.UploaderIp, query.ContentUrl, at, query.FileName);
    }
}

/// <summary>Retroactive intake: a logged upload that a bank entry added later matches (no media: only its signals were kept).</summary>
public sealed partial class ReviewService
{
    /// <summary>The label that marks a case member as found retroactively (shown with the match in the console).</summary>
    public const string RetroactiveLabel = "retroactive";

    /// <summary>
    /// Adds a retroactive match to its uploader's case (opening one if needed), keyed by the match's idempotency
    /// key so a repeated hand-off adds nothing; the upload time is the original one.
    /// </summary>
    public bool IntakeRetroactive(string matchKey, string? uploaderId, DateTimeOffset uploadedAt, string? url, string? sha256, string bankName, string signalType, int distance, IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!_options.CaseIntake)
        {
            return false;
        }

        var submissionId = "retro-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(matchKey)))[..32];
        var marked = new Dictionary<string, string>(labels, StringComparer.Ordinal) { [RetroactiveLabel] = uploadedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture) };
        var record = new SubmissionRecord(
            submissionId,
            string.IsNullOrWhiteSpace(uploaderId) ? "unknown" : uploaderId,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            null,
            sha256 is null ? [] : new Dictionary<string, string> { ["sha256"] = sha256 },
            [new MatchRecord(bankName, signalType, distance, marked)],
            null,
            url,
            uploadedAt.ToUnixTimeMilliseconds(),
            null,
            null);
        // Idempotent by submission id (derived from the match key): a repeated hand-off adds nothing.
        return Cases.Add(record.ToSubmission(), JsonSerializer.Serialize(SealContext(record), Json)).Added;
    }
}
