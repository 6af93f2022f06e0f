using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Warden.Core.ModelFiles;
using Warden.Server.Auth;

namespace Warden.Server.Api;

/// <summary>A pickle finding.</summary>
/// <param name="Verdict">safe, suspicious or dangerous.</param>
/// <param name="Kind">What was found (global, opcode, trailing data…).</param>
/// <param name="Symbol">module.name for globals.</param>
/// <param name="Member">The zip member or stream.</param>
/// <param name="Offset">Byte offset in the pickle.</param>
/// <param name="Detail">Why.</param>
public sealed record PickleFindingDto(string Verdict, string Kind, string Symbol, string Member, long Offset, string Detail);

/// <summary>A format anomaly.</summary>
/// <param name="Severity">Severity.</param>
/// <param name="Code">Stable code.</param>
/// <param name="Message">Description.</param>
public sealed record AnomalyDto(string Severity, string Code, string Message);

/// <summary>What a model file is and whether it matches a model bank.</summary>
/// <param name="Format">safetensors, torch-zip, torch-legacy, pickle, gguf, …</param>
/// <param name="Family">Architecture family (sd1, sdxl, flux, …).</param>
/// <param name="Variant">Variant.</param>
/// <param name="Kind">checkpoint, lora, …</param>
/// <param name="Evidence">The tensor names and shapes the guess rests on.</param>
/// <param name="Tensors">Tensor count.</param>
/// <param name="Verdict">Worst pickle verdict: safe (or no pickle), suspicious, dangerous. Pickles are parsed, never executed.</param>
/// <param name="PickleFindings">Every non-allowlisted global or opcode found.</param>
/// <param name="Anomalies">Format violations and oddities.</param>
/// <param name="Signals">Identity signals computed (file hashes in every Civitai scheme, MFv1 IDs incl. cast paths) and lineage pointers.</param>
/// <param name="Match">Hits of those signals in the banks, recorded and acted on like any match.</param>
public sealed record ModelScanResponse(
    string Format, string Family, string? Variant, string Kind, IReadOnlyList<string> Evidence, int Tensors, string Verdict,
    IReadOnlyList<PickleFindingDto> PickleFindings, IReadOnlyList<AnomalyDto> Anomalies, IReadOnlyDictionary<string, string> Signals, MatchResponse Match);

/// <summary>Scan a model file that already sits on the server.</summary>
/// <param name="Path">An absolute path under one of <c>Warden:ModelScanRoots</c>.</param>
public sealed record ScanPathRequest(string Path);

/// <summary><c>/v1/models/…</c>: model files (checkpoints, LoRAs) — safe parsing, fingerprints, model banks.</summary>
internal static class ModelEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/models/scan", ScanUploadAsync)
            .RequireAuthorization(Roles.Submit).WithTags("Models")
            .WithSummary("Scan an uploaded model file")
            .AcceptsUpload(multipart: false)
            .WithDescription("The body is the file (safetensors, PyTorch .ckpt/.pt/.bin, legacy torch, pickle, GGUF). It is held in memory only (an in-memory file) up to Warden:MaxModelUploadBytes. Pickles are interpreted without executing anything; a dangerous verdict is reported, never run. Identity signals (SHA-256, Civitai AutoV1/V2/V3, BLAKE3, MFv1 model and component IDs with fp16/bf16 cast paths) and lineage pointers are matched against the banks.");
        app.MapPost("/v1/models/scan-path", ScanPathAsync)
            .RequireAuthorization(Roles.Administer).WithTags("Models")
            .WithSummary("Scan a model file on the server's disk (for multi-GB files)");
    }

    private static async Task<ModelScanResponse> ScanUploadAsync(HttpContext context, [FromQuery(Name = "uploader_id")] string? uploaderId, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        uploaderId = V1Endpoints.Uploader(uploaderId); // checked before the upload is read or matched
        if (!MemoryFile.Supported)
        {
            throw new ApiException(503, ErrorCodes.Unavailable, "Model uploads need in-memory files (Linux); scan by path instead.");
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = options.MaxModelUploadBytes;
        }

        using var file = await MemoryFile.CreateAsync(context.Request.Body, options.MaxModelUploadBytes, cancellationToken).ConfigureAwait(false);
        return await Task.Run(() => Scan(file.Path, service, new MatchContext(context.User.KeyId(), uploaderId)), cancellationToken).ConfigureAwait(false);
    }

    private static async Task<ModelScanResponse> ScanPathAsync(HttpContext context, ScanPathRequest request, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        if (request is null || string.IsNullOrWhiteSpace(request.Path))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "path must be an absolute path.");
        }

        // Percent-escapes are decoded once ("%2e%2e" is ".."), then the whole path is resolved (every symlink, every
        // "..") before it is compared with the roots, which are resolved the same way.
        var decoded = request.Path.Contains('%', StringComparison.Ordinal) ? Uri.UnescapeDataString(request.Path) : request.Path;
        if (decoded.Contains('\0', StringComparison.Ordinal) || !Path.IsPathFullyQualified(decoded))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "path must be an absolute path.");
        }

        var real = RealPath.Resolve(decoded);
        var allowed = real is not null && options.ModelScanRoots.Select(RealPath.Resolve).Any(root => root is not null && RealPath.IsUnder(real, root));
        if (!allowed)
        {
            // One answer for "outside the roots" and "missing", so the endpoint says nothing about the rest of the disk.
            throw new ApiException(403, ErrorCodes.Forbidden, "That path is not a file or folder under a folder listed in Warden:ModelScanRoots.");
        }

        return await Task.Run(() => Scan(real!, service, new MatchContext(context.User.KeyId(), null)), cancellationToken).ConfigureAwait(false);
    }

    private static ModelScanResponse Scan(string path, MatchService service, MatchContext context)
    {
        ModelDocument doc;
        ModelFingerprint fingerprint;
        try
        {
            doc = ModelReader.Read(path);
            fingerprint = Fingerprinter.Compute(doc);
        }
        catch (ModelFormatException ex)
        {
            throw new ApiException(422, ErrorCodes.InvalidModel, ex.Message);
        }
        catch (Exception ex) when (ex is not (OutOfMemoryException or OperationCanceledException))
        {
            // A file Warden cannot read fully is an error for that file, never a 500 and never "safe".
            throw new ApiException(422, ErrorCodes.InvalidModel, $"the model could not be read: {ex.GetType().Name}: {ex.Message}");
        }

        var signals = ModelSignals.Identity(fingerprint).Concat(ModelSignals.Lineage(doc)).ToList();
        var arch = ModelArchitecture.Classify(doc);
        var match = service.MatchSignals(signals.Select(s => (s.Type, s.Value, $"model:{s.Part}:{s.Tier}")), fingerprint.File?.Sha256Hex, context);
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in signals)
        {
            named.TryAdd($"{s.Type}:{s.Part}", s.Value);
        }

        return new ModelScanResponse(
            doc.Format.Name(),
            arch.Family,
            arch.Variant,
            arch.Kind,
            arch.Evidence,
            doc.Tensors.Count,
            doc.Pickles.Count == 0 ? "safe" : doc.Verdict.ToString().ToLowerInvariant(),
            [.. doc.Pickles.SelectMany(p => p.Findings.Select(f => new PickleFindingDto(f.Verdict.ToString().ToLowerInvariant(), f.Kind, f.Symbol, p.Member, f.Offset, f.Detail)))],
            [.. doc.Anomalies.Select(a => new AnomalyDto(a.Severity.ToString().ToLowerInvariant(), a.Code, a.Message))],
            named,
            match);
    }
}
