using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Warden.Core.ModelFiles;
using Warden.Review;
using Warden.Server.Auth;
using Warden.Server.Index;
using Warden.Storage;

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
/// <param name="Near">Near tiers against the registered models (review, never acted on): R (same weights, reduced precision), T3 (row containment), T4 (sketch cosine).</param>
/// <param name="Derivation">T5: the file explained as a merge of registered models or a base with a registered LoRA baked in (review).</param>
public sealed record ModelScanResponse(
    string Format, string Family, string? Variant, string Kind, IReadOnlyList<string> Evidence, int Tensors, string Verdict,
    IReadOnlyList<PickleFindingDto> PickleFindings, IReadOnlyList<AnomalyDto> Anomalies, IReadOnlyDictionary<string, string> Signals, MatchResponse Match,
    IReadOnlyList<NearHitDto>? Near = null, DerivationDto? Derivation = null);

/// <summary>A near (review) match with a registered model.</summary>
/// <param name="Tier">R, T3 or T4.</param>
/// <param name="Bank">Bank of the registered model.</param>
/// <param name="BankKind">block or allow.</param>
/// <param name="Model">Its name.</param>
/// <param name="Score">R/T4: median per-tensor sketch cosine; T3: share of the component's sampled rows found.</param>
/// <param name="Coverage">R/T4: share of the file's tensors compared; T3: sampled rows of the registered component.</param>
/// <param name="Component">T3: the registered component contained.</param>
/// <param name="Precision">R: the file's reduced precision (fp8-e4m3, Q4_K, …).</param>
/// <param name="EstimatedError">R: median relative error of the file's weights against the registered ones.</param>
/// <param name="Labels">The registered model's bank labels (category, lineage, …).</param>
public sealed record NearHitDto(string Tier, string Bank, string BankKind, string Model, double Score, double Coverage, string? Component, string? Precision, double? EstimatedError, IReadOnlyDictionary<string, string> Labels);

/// <summary>One registered model's share in a derivation.</summary>
/// <param name="Model">Name.</param>
/// <param name="Bank">Bank.</param>
/// <param name="BankKind">block or allow.</param>
/// <param name="Adapter">True for a LoRA (the coefficient is its bake-in strength).</param>
/// <param name="Coefficient">Non-negative weight.</param>
/// <param name="Labels">Its bank labels.</param>
public sealed record DerivationTermDto(string Model, string Bank, string BankKind, bool Adapter, double Coefficient, IReadOnlyDictionary<string, string> Labels);

/// <summary>T5 derivation.</summary>
/// <param name="Kind">merge, lora-bake-in or derived.</param>
/// <param name="Explained">Share of the change from the allow-listed bases the fit explains.</param>
/// <param name="Tensors">Tensors used.</param>
/// <param name="Terms">Terms, largest first.</param>
public sealed record DerivationDto(string Kind, double Explained, int Tensors, IReadOnlyList<DerivationTermDto> Terms);

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
            .WithDescription("The body is the file (safetensors, PyTorch .ckpt/.pt/.bin, legacy torch, pickle, GGUF, ONNX; an ONNX file's external data is not read from an upload). It is held in memory only (an in-memory file) up to Warden:MaxModelUploadBytes. Pickles are interpreted without executing anything; a dangerous verdict is reported, never run. Identity signals (SHA-256, Civitai AutoV1/V2/V3, BLAKE3, MFv1 model and component IDs with fp16/bf16 cast paths) and lineage pointers are matched against the banks.");
        app.MapPost("/v1/models/scan-path", ScanPathAsync)
            .RequireAuthorization(Roles.Administer).WithTags("Models")
            .WithSummary("Scan a model file on the server's disk (for multi-GB files)");
    }

    private static async Task<ModelScanResponse> ScanUploadAsync(HttpContext context, [FromQuery(Name = "uploader_id")] string? uploaderId, [AsParameters] UploadQuery upload, MatchService service, BankStore banks, ModelIndex index, ReviewService review, ServerOptions options, CancellationToken cancellationToken)
    {
        uploaderId = HashingEndpoints.Uploader(uploaderId); // checked before the upload is read or matched
        var uploadContext = ReviewIntake.Parse(uploaderId, upload);
        if (!MemoryFile.Supported)
        {
            throw new ApiException(503, ErrorCodes.Unavailable, "Model uploads need in-memory files (Linux); scan by path instead.");
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = options.MaxModelUploadBytes;
        }

        using var file = await MemoryFile.CreateAsync(context.Request.Body, options.MaxModelUploadBytes, cancellationToken).ConfigureAwait(false);
        var response = await Task.Run(() => Scan(file.Path, service, banks, index, new MatchContext(context.User.KeyId(), uploaderId), UploadLimits), cancellationToken).ConfigureAwait(false);
        var length = file.Length;

        // The case keeps the file as evidence when it fits the media upload limit; a bigger checkpoint is
        // recorded by its signals and description only.
        await ReviewIntake.AfterModelScanAsync(review, length, () => length <= options.MaxUploadBytes ? File.ReadAllBytes(file.Path) : null, response, uploadContext, cancellationToken).ConfigureAwait(false);
        return response;
    }

    // An upload is one file: nothing it names beside itself is read (its folder is the server's /proc/PID/fd).
    private static readonly ModelLimits UploadLimits = ModelLimits.Default with { ExternalData = false };

    /// <summary>
    /// True when an upload to /v1/match is a model file rather than media: safetensors, GGUF, ONNX, a (torch) zip or
    /// a legacy torch file by content. Bare pickles are not claimed here (any ASCII text starts like one).
    /// </summary>
    internal static bool IsModelUpload(ReadOnlySpan<byte> data) =>
        ModelReader.Sniff(data[..Math.Min(data.Length, 512)], data.Length) is ModelFormat.Safetensors or ModelFormat.Gguf or ModelFormat.Onnx or ModelFormat.TorchLegacy or ModelFormat.Zip;

    /// <summary>
    /// /v1/match with a model file: the same scan and near tiers as /v1/models/scan, or null when the file turns out
    /// not to be a model (a zip of something else), so the media path answers it.
    /// </summary>
    internal static async Task<ModelScanResponse?> TryMatchUploadAsync(byte[] data, MatchService service, BankStore banks, ModelIndex index, MatchContext context, CancellationToken cancellationToken)
    {
        if (!MemoryFile.Supported)
        {
            throw new ApiException(503, ErrorCodes.Unavailable, "Model uploads need in-memory files (Linux); scan by path instead.");
        }

        using var file = MemoryFile.Create(data);
        if (data.Length >= 2 && data[0] == (byte)'P' && data[1] == (byte)'K' && !IsCheckpointZip(file.Path))
        {
            return null;
        }

        return await Task.Run(() => Scan(file.Path, service, banks, index, context, UploadLimits), cancellationToken).ConfigureAwait(false);
    }

    // A zip is a model when it holds tensors or any pickle a loader would unpickle (a hostile data.pkl alone counts).
    private static bool IsCheckpointZip(string path)
    {
        try
        {
            var doc = ModelReader.Read(path, UploadLimits);
            return doc.Tensors.Count > 0 || doc.Pickles.Count > 0;
        }
        catch (Exception ex) when (ex is ModelFormatException or IOException or InvalidDataException)
        {
            return false;
        }
    }

    private static async Task<ModelScanResponse> ScanPathAsync(HttpContext context, ScanPathRequest request, MatchService service, BankStore banks, ModelIndex index, ServerOptions options, CancellationToken cancellationToken)
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

        return await Task.Run(() => Scan(real!, service, banks, index, new MatchContext(context.User.KeyId(), null), ModelLimits.Default), cancellationToken).ConfigureAwait(false);
    }

    private static ModelScanResponse Scan(string path, MatchService service, BankStore banks, ModelIndex index, MatchContext context, ModelLimits limits)
    {
        ModelDocument doc;
        ModelFingerprint fingerprint;
        try
        {
            doc = ModelReader.Read(path, limits);
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

        var (near, derivation) = Near(fingerprint, banks, index);
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
            match,
            near,
            derivation);
    }

    // The near tiers from the server's model index (built over the models registered in the enabled banks and
    // kept current from the bank change feed), as `warden model scan` reports them: review scores with the
    // registered models' bank labels (lineage: derived_from, base_model, …).
    private static (List<NearHitDto> Near, DerivationDto? Derivation) Near(ModelFingerprint fp, BankStore banks, ModelIndex index)
    {
        var enabled = banks.ListBanks().Where(b => b.Enabled).ToList();
        if (enabled.Count == 0)
        {
            return ([], null);
        }

        var kinds = enabled.ToDictionary(b => b.Name, b => b.Kind, StringComparer.Ordinal);
        var answer = index.Near(fp, kinds);
        var labels = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        IReadOnlyDictionary<string, string> Labels(ModelRecord r)
        {
            if (!labels.TryGetValue(r.Bank + "/" + r.Id, out var l))
            {
                // From the database, not the live index: a label changed a moment ago shows at once.
                var entries = (r.ModelId is null ? [] : banks.EntriesWithSignal(r.Bank, "mfv1_model", r.ModelId)).Concat(banks.EntriesWithSignal(r.Bank, "sha256", r.Id));
                l = labels[r.Bank + "/" + r.Id] = entries.SelectMany(e => e.Labels).GroupBy(p => p.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Value, StringComparer.Ordinal);
            }

            return l;
        }

        string Kind(ModelRecord r) => kinds.TryGetValue(r.Bank, out var k) ? BankDto.KindName(k) : "block";
        var near = answer.Similar.Concat(answer.Contained).Select(h => new NearHitDto(h.Tier, h.Record.Bank, Kind(h.Record), h.Record.Name, Math.Round(h.Score, 6), Math.Round(h.Coverage, 4), h.Component, h.Precision, h.Error is { } e ? Math.Round(e, 6) : null, Labels(h.Record))).ToList();
        var derivation = answer.Derivation;
        var dto = derivation is null ? null : new DerivationDto(derivation.Kind, Math.Round(derivation.Explained, 4), derivation.Tensors,
            [.. derivation.Terms.Select(t => new DerivationTermDto(t.Record.Name, t.Record.Bank, Kind(t.Record), t.Record.IsAdapter, Math.Round(t.Coefficient, 4), Labels(t.Record)))]);
        return (near, dto);
    }
}
