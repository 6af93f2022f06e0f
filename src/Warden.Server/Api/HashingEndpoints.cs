using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Warden.Review;
using Warden.Server.Auth;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Api;

/// <summary>Hashing and matching (role submitter): <c>/v1/hash</c>, <c>/v1/match</c>, <c>/v1/provenance</c>.</summary>
internal static class HashingEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");

        var submit = v1.MapGroup(string.Empty).RequireAuthorization(Roles.Submit).WithTags("Hash and match");
        submit.MapPost("/hash", HashAsync)
            .WithSummary("Hash an upload")
            .WithDescription("Send the content as the raw body (any content type but forms) or as a file in multipart/form-data. Returns MD5, SHA-1, SHA-256 and, for images, PDQ with its quality (dihedral variants with dihedral=true). The content is held in memory only.")
            .AcceptsUpload()
            .Produces<SignalsDto>();
        submit.MapPost("/match", MatchUploadAsync)
            .WithSummary("Hash an upload and match it")
            .WithDescription("Hashes the content as /v1/hash does and matches every signal against the enabled banks (PDQ with the dihedral variants and the border-trimmed image). Hits on block-list banks are recorded and set off the bank's action; allow-list hits suppress them.")
            .AcceptsUpload()
            .Produces<MatchResponse>();
        submit.MapPost("/provenance", ProvenanceAsync)
            .WithSummary("Read an upload's AI provenance")
            .WithDescription("Generator metadata (A1111, ComfyUI, InvokeAI, NovelAI, …) with the models named and their hashes looked up in the banks, C2PA manifests (verified), IPTC digital source type and weak hints, with a verdict. Metadata is a claim: absence proves nothing. Prompts appear only as SHA-256. Schema: docs/provenance.md.")
            .AcceptsUpload();
        submit.MapGet("/match", MatchSignal)
            .WithSummary("Match one signal given by value")
            .RequiresQuery("signal_type", "signal")
            .Produces<MatchResponse>();
    }

    private static async Task<IResult> HashAsync(HttpRequest request, bool? dihedral, bool? tmk, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        var upload = await UploadReader.ReadAsync(request, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        var (hashes, video, warnings) = await service.HashAnyAsync(upload.Data, dihedral ?? false, tmk ?? false, cancellationToken).ConfigureAwait(false);
        return Results.Ok(SignalsDto.From(hashes, video, tmk ?? false, warnings));
    }

    private static async Task<IResult> MatchUploadAsync(HttpContext context, bool? dihedral, bool? provenance, [FromQuery(Name = "uploader_id")] string? uploaderId, [AsParameters] UploadQuery upload, MatchService service, ReviewService review, BankStore banks, ModelIndex models, ServerOptions options, CancellationToken cancellationToken)
    {
        // Every parameter is checked before anything happens: a bad one must not leave a recorded match, a
        // quarantine, a webhook, a case, a flood count or a metric behind its 400.
        var uploader = Uploader(uploaderId);
        var uploadContext = ReviewIntake.Parse(uploader, upload);
        var content = await UploadReader.ReadAsync(context.Request, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        if (ModelEndpoints.IsModelUpload(content.Data)
            && await ModelEndpoints.TryMatchUploadAsync(content.Data, service, banks, models, new MatchContext(context.User.KeyId(), uploader), cancellationToken).ConfigureAwait(false) is { } model)
        {
            // A model file: its identity signals, pickle verdict and near tiers, as /v1/models/scan answers them;
            // a banked model (exact or near) opens or joins the uploader's case like an image hit.
            await ReviewIntake.AfterModelScanAsync(review, content.Data.Length, () => content.Data, model, uploadContext, cancellationToken).ConfigureAwait(false);
            return Results.Ok(model);
        }

        var (hashes, video, warnings) = await service.HashAnyAsync(content.Data, dihedral ?? true, options.SignalLog && options.SignalLogTmk, cancellationToken).ConfigureAwait(false);
        var response = service.MatchContent(hashes, new MatchContext(context.User.KeyId(), uploader) { Upload = uploadContext }, (provenance ?? true) && video is null ? content.Data : null, video, warnings: warnings);
        await ReviewIntake.AfterMatchAsync(review, content.Data, hashes, response, uploadContext, cancellationToken).ConfigureAwait(false);
        return Results.Ok(response);
    }

    private static async Task<IResult> ProvenanceAsync(HttpRequest request, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        var upload = await UploadReader.ReadAsync(request, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(upload.Data));

        // Any bytes get a report: one the reader cannot read says so in its warnings (verdict unknown).
        var report = service.ReadProvenance(upload.Data, sha256, service.RequireIndex().Matcher, []);
        return Results.Json(MatchService.ProvenanceToJson(report));
    }

    private static IResult MatchSignal(HttpContext context, [FromQuery(Name = "signal_type")] string? signalType, string? signal, [FromQuery(Name = "uploader_id")] string? uploaderId, MatchService service) =>
        Results.Ok(service.MatchSignal(signalType ?? string.Empty, signal ?? string.Empty, new MatchContext(context.User.KeyId(), Uploader(uploaderId))));

    internal static string? Uploader(string? id) => Core.Banks.UploaderIds.Problem(id) is { } problem ? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, problem) : id;
}
