using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Mvc;
using Warden.Core.Hashing;
using Warden.Review;
using Warden.Server.Actions;

namespace Warden.Server.Api;

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
    /// <summary>When the upload matched, adds it with its actionable hits to its uploader's case.</summary>
    public static async Task AfterMatchAsync(ReviewService review, byte[] data, ContentHashes hashes, MatchResponse response, UploaderContext uploader, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(review);
        ArgumentNullException.ThrowIfNull(response);
        if (!response.Matched)
        {
            return;
        }

        var hits = response.Hits.Where(h => h.Outcome == HitOutcome.Acted).Select(h => new ReviewHit(h.Bank, h.SignalType, h.Distance, h.Labels)).ToList();
        await review.IntakeAsync(data, hashes, hits, uploader, cancellationToken).ConfigureAwait(false);
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
