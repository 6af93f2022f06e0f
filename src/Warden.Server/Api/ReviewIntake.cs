using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Mvc;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Review;
using Warden.Review.Cases;
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

    /// <summary>
    /// After a model upload was scanned: its actionable exact hits and its near and derivation links to block-list
    /// models make it a case item, as a matched image is (near tiers are review scores: they set off no action,
    /// but review is where they go). <paramref name="data"/> gives the bytes to preserve, or null when too big.
    /// </summary>
    public static async Task AfterModelScanAsync(ReviewService review, long size, Func<byte[]?> data, ModelScanResponse response, UploaderContext uploader, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(review);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(response);
        var links = ModelLinks(response);
        var hits = new List<ReviewHit>();
        foreach (var h in response.Match.Hits.Where(h => h.Outcome == HitOutcome.Acted).DistinctBy(h => (h.Bank, h.SignalType)))
        {
            hits.Add(new ReviewHit(h.Bank, h.SignalType, h.Distance, h.Labels));
        }

        foreach (var l in links.Where(l => BankKinds.TryParse(l.BankKind, out var kind) && kind == BankKind.BlockList && l.Signal is null))
        {
            hits.Add(new ReviewHit(l.Bank, "model:" + l.Tier, 0, l.Labels));
        }

        if (hits.Count == 0 || !review.Options.CaseIntake || !response.Signals.TryGetValue("sha256:file", out var sha256))
        {
            return;
        }

        var subject = new ModelSubject(size, response.Format, response.Family, response.Variant, response.Kind, response.Tensors, response.Verdict, links);
        await review.IntakeModelAsync(data(), sha256, subject, hits, uploader, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every banked model the scan links the file to: exact hits (by their part and tier), near tiers and derivation terms.</summary>
    internal static List<ModelLink> ModelLinks(ModelScanResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var links = new List<ModelLink>();
        foreach (var h in response.Match.Hits.Where(h => h.Outcome != HitOutcome.FloodQuarantined).DistinctBy(h => (h.Bank, h.EntryId)))
        {
            // Variant is "model:PART:TIER" (ModelEndpoints.Scan); the model's name is its "model" label.
            var parts = h.Variant.Split(':');
            var tier = parts.Length >= 3 ? parts[^1] : "T0";
            var part = parts.Length >= 3 ? string.Join(':', parts[1..^1]) : h.Variant;
            links.Add(new ModelLink(tier, h.Bank, h.BankKind, h.Labels.GetValueOrDefault("model") ?? h.ExternalId ?? h.Signal, $"{h.SignalType} ({part})", null, null, null, null, null, null, null, false, h.Labels));
        }

        foreach (var n in response.Near ?? [])
        {
            links.Add(new ModelLink(n.Tier, n.Bank, n.BankKind, n.Model, null, n.Score, n.Coverage, n.Component, n.Precision, n.EstimatedError, null, null, false, n.Labels));
        }

        if (response.Derivation is { } d)
        {
            foreach (var t in d.Terms)
            {
                links.Add(new ModelLink("T5", t.Bank, t.BankKind, t.Model, null, d.Explained, null, null, null, null, t.Coefficient, d.Kind, t.Adapter, t.Labels));
            }
        }

        // One line per banked model and tier: a model matches on many signals (SHA-256, AutoV2, MFv1 IDs, cast paths…).
        return [.. links.DistinctBy(l => (l.Tier, l.Bank, l.Model, l.Coefficient))];
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
