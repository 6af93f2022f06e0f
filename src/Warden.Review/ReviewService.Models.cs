using System.Text.Json;
using Warden.Core.Hashing;
using Warden.Review.Cases;
using Warden.Review.Evidence;

namespace Warden.Review;

/// <summary>Model uploads that match a banked model become case items like matched media.</summary>
public sealed partial class ReviewService
{
    /// <summary>
    /// Called after a model upload was scanned: when <paramref name="hits"/> (actionable exact hits and near or
    /// derivation links to block-list models) is not empty, the upload joins its uploader's case (same intake as
    /// media: clustered, sealed context, evidence preserved when the vault is on and <paramref name="data"/> is
    /// given). Returns whether an item was added.
    /// </summary>
    public async Task<bool> IntakeModelAsync(byte[]? data, string sha256, ModelSubject model, IReadOnlyList<ReviewHit> hits, UploaderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sha256);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(hits);
        ArgumentNullException.ThrowIfNull(context);
        if (hits.Count == 0 || !_options.CaseIntake)
        {
            return false;
        }

        var submissionId = Guid.CreateVersion7().ToString("N");
        string? evidence = null;
        if (Vault is not null && data is not null)
        {
            var sealedContext = new Dictionary<string, string> { ["submission"] = submissionId, ["uploader"] = context.UploaderId ?? "" };
            evidence = await Vault.StoreAsync(data, sealedContext, null, EvidenceActor.Component("system:model-api"), cancellationToken).ConfigureAwait(false);
        }

        var digests = new Dictionary<string, string>(StringComparer.Ordinal) { ["sha256"] = sha256 };
        if (data is not null)
        {
            var exact = ExactHashes.Compute(data);
            digests["md5"] = exact.Md5Hex;
            digests["sha1"] = exact.Sha1Hex;
        }

        var record = new SubmissionRecord(
            submissionId,
            string.IsNullOrWhiteSpace(context.UploaderId) ? "unknown" : context.UploaderId,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            null,
            digests,
            [.. hits.Select(h => new MatchRecord(h.Bank, h.SignalType, h.Distance, h.Labels))],
            context.IpAddress,
            context.Url,
            context.UploadedAt?.ToUnixTimeMilliseconds(),
            context.FileName,
            evidence,
            Model: model);
        return Cases.Add(record.ToSubmission(), JsonSerializer.Serialize(SealContext(record), Json)).Added;
    }
}
