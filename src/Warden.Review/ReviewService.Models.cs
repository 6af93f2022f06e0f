using System.Text.Json;
using Warden.Core.Hashing;
using Warden.Review.Evidence;

namespace Warden.Review;

/// <summary>A model file in a case: what it is (no preview: it is weights, not media) and which banked models it derives from.</summary>
/// <param name="Size">Bytes uploaded.</param>
/// <param name="Format">safetensors, gguf, onnx, torch-zip, …</param>
/// <param name="Family">Architecture family (sd1, sdxl, flux, …).</param>
/// <param name="Variant">Variant, when known.</param>
/// <param name="Kind">checkpoint, lora, unet, …</param>
/// <param name="Tensors">Tensor count.</param>
/// <param name="Verdict">Pickle verdict (safe, suspicious, dangerous).</param>
/// <param name="Links">The banked models it matched, by tier.</param>
public sealed record ModelSubject(long Size, string Format, string Family, string? Variant, string Kind, int Tensors, string Verdict, IReadOnlyList<ModelLink> Links);

/// <summary>One banked model a model upload derives from.</summary>
/// <param name="Tier">T0/T1/T2 (exact), L (declared parent), R, T3, T4 (near) or T5 (derivation).</param>
/// <param name="Bank">The bank.</param>
/// <param name="BankKind">block or allow (allow-listed bases appear as terms of a derivation).</param>
/// <param name="Model">The banked model's name.</param>
/// <param name="Signal">Exact tiers: the signal type that matched (and the part: <c>mfv1_model</c>, <c>component:vae@fp16</c>…).</param>
/// <param name="Score">R/T4: median sketch cosine; T3: share of the component's rows found.</param>
/// <param name="Coverage">R/T4: share of tensors compared; T3: sampled rows.</param>
/// <param name="Component">T3: the component contained.</param>
/// <param name="Precision">R: the file's reduced precision.</param>
/// <param name="EstimatedError">R: median relative error against the banked weights.</param>
/// <param name="Coefficient">T5: the banked model's share, or a LoRA's bake-in strength.</param>
/// <param name="Derivation">T5: merge, lora-bake-in or derived.</param>
/// <param name="Adapter">True when the banked model is a LoRA.</param>
/// <param name="Labels">The banked model's labels (category, lineage: derived_from, base_model, …).</param>
public sealed record ModelLink(
    string Tier, string Bank, string BankKind, string Model, string? Signal, double? Score, double? Coverage, string? Component,
    string? Precision, double? EstimatedError, double? Coefficient, string? Derivation, bool Adapter, IReadOnlyDictionary<string, string> Labels);

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
