using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Signals;
using Warden.Server.Auth;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Api;

/// <summary>
/// Meta's Hasher-Matcher-Actioner (HMA 2.0 / OpenMediaMatch) API shapes, so an HMA client works against Warden
/// unchanged apart from sending an API key (HMA itself has no authentication). Paths, parameters and response
/// shapes follow HMA's blueprints, including its quirks (lookup distances are strings). docs/api.md lists the
/// differences.
/// </summary>
internal static class HmaEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var hasher = app.MapGroup("/h").RequireAuthorization(Roles.Submit).WithTags("HMA compatibility");
        hasher.MapGet("/hash", HashUrlAsync).WithSummary("HMA: hash content at a URL (only hosts in AllowedFetchHosts)");
        hasher.MapPost("/hash", HashUploadAsync).AcceptsUpload(field: "photo").WithSummary("HMA: hash an upload (multipart; the field is the content type, e.g. photo=@x.jpg)");

        var matcher = app.MapGroup("/m").RequireAuthorization(Roles.Submit).WithTags("HMA compatibility");
        matcher.MapGet("/raw_lookup", RawLookup).RequiresQuery("signal", "signal_type").WithSummary("HMA: entry ids matching a signal");
        matcher.MapGet("/lookup", LookupAsync).WithSummary("HMA: matches of a signal (or of content at url=) by bank");
        matcher.MapPost("/lookup", LookupUploadAsync).AcceptsUpload(field: "photo").WithSummary("HMA: matches of an upload by signal type and bank");
        matcher.MapPost("/compare", Compare).WithSummary("HMA: compare pairs of hashes");
        matcher.MapGet("/index/status", IndexStatus).WithSummary("HMA: index status");

        var curator = app.MapGroup("/c").RequireAuthorization(Roles.Curate).WithTags("HMA compatibility");
        curator.MapGet("/banks", (BankStore s) => s.ListBanks().Select(HmaBank)).WithSummary("HMA: list banks");
        curator.MapPost("/banks", CreateBank).WithSummary("HMA: create a bank");
        curator.MapGet("/bank/{name}", (string name, BankStore s) => HmaBank(s.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'."))).WithSummary("HMA: get a bank");
        curator.MapPut("/bank/{name}", UpdateBank).WithSummary("HMA: update a bank");
        curator.MapDelete("/bank/{name}", DeleteBank).WithSummary("HMA: delete a bank, its entries and the exchange that fills it");
        curator.MapPost("/bank/{name}/signal", AddSignal).WithSummary("HMA: add a signal to a bank");
        curator.MapGet("/bank/{name}/content/{id}", GetContent).WithSummary("HMA: one content item (a Warden entry); include_signals=true adds its signal");
        curator.MapPost("/bank/{name}/content", AddContentAsync).AcceptsUpload(field: "photo").WithSummary("HMA: hash an upload and add its signals to a bank");
        curator.MapGet("/signal_type", () => SignalTypes.All.Select(t => new { name = t.Name, enabled_ratio = 1.0 })).WithSummary("HMA: signal types");
        curator.MapGet("/content_type", () => new[] { new { name = "photo", enabled = true } }).WithSummary("HMA: content types");

        // HMA's health checks: /status answers 503 while the index is loading or stale.
        app.MapGet("/status", (LiveIndex index) => index.IsReady ? Results.Text("I-AM-ALIVE") : Results.Text("INDEX-STALE", statusCode: 503))
            .AllowAnonymous().WithTags("Health").WithSummary("HMA: readiness");
        app.MapGet("/status/live", () => Results.Text("I-AM-ALIVE")).AllowAnonymous().WithTags("Health").WithSummary("HMA: liveness");
    }

    private static object HmaBank(Bank b) => new { name = b.Name, matching_enabled_ratio = b.Enabled ? 1.0 : 0.0, is_allowlist = b.Kind == BankKind.AllowList };

    private static JsonObject PdqOnly(SignalsDto signals) =>
        new() { ["pdq"] = signals.Pdq is { Quality: >= PdqResult.DefaultMinQuality } p ? p.Hash : string.Empty };

    private static async Task<IResult> HashUploadAsync(HttpRequest request, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        var upload = await UploadReader.ReadAsync(request, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        var hashes = await service.HashAsync(upload.Data, false, cancellationToken).ConfigureAwait(false);
        var signals = SignalsDto.From(hashes);
        return Results.Json(upload.FieldName == "video" ? new JsonObject { ["video_md5"] = signals.Md5 } : PdqOnly(signals));
    }

    private static async Task<IResult> HashUrlAsync(string? url, MatchService service, UrlFetcher fetcher, CancellationToken cancellationToken)
    {
        var data = await fetcher.FetchAsync(url, cancellationToken).ConfigureAwait(false);
        var hashes = await service.HashAsync(data, false, cancellationToken).ConfigureAwait(false);
        return Results.Json(PdqOnly(SignalsDto.From(hashes)));
    }

    private static HashSet<string>? BankFilter(string? banks) =>
        string.IsNullOrWhiteSpace(banks) ? null : banks.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    // HMA's raw lookup ignores allow-lists and actions: ids (or ids with distances) of every hit.
    private static IResult RawLookup(string? signal, [FromQuery(Name = "signal_type")] string? signalType, [FromQuery(Name = "include_distance")] bool? includeDistance, MatchService service)
    {
        var hits = service.Lookup(signalType ?? string.Empty, signal ?? string.Empty);
        return includeDistance == true
            ? Results.Json(new { matches = hits.Select(h => new { bank_content_id = h.EntryId, distance = h.Distance }) })
            : Results.Json(new { matches = hits.Select(h => h.EntryId).Distinct() });
    }

    // HMA answers with actionable block-list hits only, one per entry (its best distance), grouped by bank name.
    private static JsonObject ByBank(IEnumerable<HitDto> hits, HashSet<string>? banks)
    {
        var result = new JsonObject();
        foreach (var group in hits.Where(h => h.Outcome == Actions.HitOutcome.Acted && (banks is null || banks.Contains(h.Bank))).GroupBy(h => h.Bank))
        {
            var array = new JsonArray();
            foreach (var h in group.GroupBy(h => h.EntryId).Select(g => g.MinBy(x => x.Distance)!))
            {
                // HMA sends the distance as a string.
                array.Add(new JsonObject { ["bank_content_id"] = h.EntryId, ["distance"] = h.Distance.ToString(CultureInfo.InvariantCulture) });
            }

            result[group.Key] = array;
        }

        return result;
    }

    private static async Task<IResult> LookupAsync(HttpContext context, string? signal, [FromQuery(Name = "signal_type")] string? signalType, string? url, string? banks, MatchService service, UrlFetcher fetcher, CancellationToken cancellationToken)
    {
        var filter = BankFilter(banks);
        if (url is not null)
        {
            var data = await fetcher.FetchAsync(url, cancellationToken).ConfigureAwait(false);
            var hashes = await service.HashAsync(data, false, cancellationToken).ConfigureAwait(false);
            var response = service.MatchContent(hashes, new MatchContext(context.User.KeyId(), null));
            return Results.Json(new JsonObject { ["pdq"] = ByBank(response.Hits, filter) });
        }

        var matched = service.MatchSignal(signalType ?? string.Empty, signal ?? string.Empty, new MatchContext(context.User.KeyId(), null));
        return Results.Json(ByBank(matched.Hits, filter));
    }

    private static async Task<IResult> LookupUploadAsync(HttpContext context, string? banks, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        var upload = await UploadReader.ReadAsync(context.Request, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        var hashes = await service.HashAsync(upload.Data, false, cancellationToken).ConfigureAwait(false);
        var response = service.MatchContent(hashes, new MatchContext(context.User.KeyId(), null));
        var filter = BankFilter(banks);
        var result = new JsonObject();
        foreach (var group in response.Hits.GroupBy(h => h.SignalType))
        {
            result[group.Key] = ByBank(group, filter);
        }

        if (result.Count == 0)
        {
            result["pdq"] = new JsonObject();
        }

        return Results.Json(result);
    }

    private static IResult Compare(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "The body is a JSON object: {\"pdq\": [hash1, hash2]}.");
        }

        var result = new JsonObject();
        foreach (var property in body.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.Array || property.Value.GetArrayLength() != 2)
            {
                throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"'{property.Name}' must be an array of two signals.");
            }

            var (type, a) = MatchService.Normalize(property.Name, property.Value[0].GetString());
            var (_, b) = MatchService.Normalize(property.Name, property.Value[1].GetString());
            if (type is PdqSignalType)
            {
                var distance = PdqHash.Parse(a).DistanceTo(PdqHash.Parse(b));
                result[type.Name] = new JsonArray(distance <= PdqSignalType.DefaultMatchThreshold, new JsonObject { ["distance"] = distance });
            }
            else
            {
                result[type.Name] = new JsonArray(a == b, new JsonObject { ["distance"] = a == b ? 0 : 1 });
            }
        }

        return Results.Json(result);
    }

    private static IResult IndexStatus(LiveIndex index)
    {
        var state = index.Current;
        return Results.Json(new
        {
            pdq = new
            {
                present = state is not null,
                built_to = state?.BuiltAt.ToUnixTimeSeconds() ?? -1,
                size = state?.Matcher.Count ?? 0,
                sequence = index.Sequence,
            },
        });
    }

    // HMA clients send enabled_ratio as a number or, as ROOST Coop does, as a string ("1", "0.5").
    private static bool? Ratio(JsonElement body)
    {
        if (!body.TryGetProperty("enabled_ratio", out var r) || r.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        double ratio = 0;
        var ok = r.ValueKind switch
        {
            JsonValueKind.Number => r.TryGetDouble(out ratio),
            JsonValueKind.String => double.TryParse(r.GetString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out ratio),
            _ => false,
        };
        return ok && ratio is >= 0 and <= 1
            ? ratio > 0 // Warden has no coin-flip rollout: a ratio above zero enables the bank
            : throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "enabled_ratio is a number from 0 to 1 (or one as a string).");
    }

    private static IResult CreateBank(JsonElement body, BankStore store)
    {
        var name = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        if (string.IsNullOrWhiteSpace(name))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "A bank needs a name (a string).");
        }

        var enabled = body.TryGetProperty("enabled", out var e) && e.ValueKind == JsonValueKind.False ? false : Ratio(body);
        var bank = store.CreateBank(name);
        if (enabled == false)
        {
            bank = store.UpdateBank(name, enabled: false);
        }

        return Results.Json(HmaBank(bank), statusCode: StatusCodes.Status201Created);
    }

    private static IResult UpdateBank(string name, JsonElement body, BankStore store)
    {
        _ = store.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'.");
        bool? enabled = null;
        if (body.ValueKind == JsonValueKind.Object)
        {
            if (body.TryGetProperty("enabled", out var e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                enabled = e.GetBoolean();
            }
            else
            {
                enabled = Ratio(body);
            }
        }

        return Results.Json(HmaBank(store.UpdateBank(name, enabled: enabled)));
    }

    private static IResult DeleteBank(HttpContext context, string name, BankStore store, Warden.Storage.ExchangeStore exchanges, Warden.Review.Audit.AuditLog audit)
    {
        var bank = store.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'.");

        // HMA's exchange is its bank's: deleting the bank ends the feed that would refill it.
        foreach (var x in exchanges.List().Where(x => x.BankId == bank.Id))
        {
            exchanges.Remove(x.Name);
        }

        if (!store.DeleteBank(name))
        {
            throw ApiException.NotFound($"No bank named '{name}'.");
        }

        audit.Append(new Warden.Review.Audit.AuditEntry(
            context.User.Actor(), "bank.delete", "bank:" + name, new Dictionary<string, string> { ["id"] = bank.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
        return Results.Json(new { message = "Bank deleted" });
    }

    /// <summary>
    /// HMA's <c>GET /c/bank/&lt;name&gt;/content/&lt;id&gt;</c>: a content item is a Warden entry (one signal; the id is
    /// the entry id that <c>POST /c/bank/&lt;name&gt;/signal</c> returns). As HMA does, the path's bank must exist
    /// but the item is served whatever bank holds it, with that bank in <c>bank</c> (HMA's peer walker relies on
    /// it); <c>disable_until_ts</c> is HMA's 1 (enabled) or 0 (disabled); labels are <c>collab_metadata</c> (each value
    /// a one-element list). A deleted entry, or an id that is not a positive integer, is HMA's 404.
    /// </summary>
    private static IResult GetContent(string name, string id, HttpRequest request, BankStore store)
    {
        _ = store.GetBank(name) ?? throw ApiException.NotFound($"bank '{name}' not found");
        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var contentId) || contentId <= 0
            || store.GetEntries([contentId]).GetValueOrDefault(contentId) is not { Deleted: false } entry
            || store.GetBank(entry.BankId) is not { } bank)
        {
            throw ApiException.NotFound($"content '{id}' not found");
        }

        var collab = new JsonObject();
        foreach (var (key, value) in entry.Labels)
        {
            collab[key] = new JsonArray(value);
        }

        var item = new JsonObject
        {
            ["id"] = entry.Id,
            ["disable_until_ts"] = entry.Enabled ? 1 : 0,
            ["collab_metadata"] = collab,
            ["original_media_uri"] = null,
            ["bank"] = new JsonObject { ["name"] = bank.Name, ["matching_enabled_ratio"] = bank.Enabled ? 1.0 : 0.0 },
        };
        if (string.Equals(request.Query["include_signals"], "true", StringComparison.OrdinalIgnoreCase))
        {
            item["signals"] = new JsonObject { [entry.SignalType] = entry.Signal };
        }

        return Results.Json(item);
    }

    private static IResult AddSignal(string name, JsonElement body, BankStore store)
    {
        var bank = store.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'.");
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "The body is a JSON object such as {\"pdq\": \"<64 hex>\"}.");
        }

        var note = body.TryGetProperty("note", out var nt) ? nt.GetString() : null;
        var signals = new JsonObject();
        long? id = null;
        foreach (var property in body.EnumerateObject().Where(p => p.Name is not "note" and not "metadata"))
        {
            var (type, normalized) = MatchService.Normalize(property.Name, property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : null);
            var entry = store.AddEntry(bank.Id, new BankEntryRecord(type.Name, normalized, new Dictionary<string, string>(), note), "hma");
            id ??= entry.Id;
            signals[type.Name] = normalized;
        }

        if (id is null)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "No signal in the body; send e.g. {\"pdq\": \"<64 hex>\"}.");
        }

        return Results.Json(new JsonObject { ["id"] = id, ["signals"] = signals }, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> AddContentAsync(string name, HttpRequest request, BankStore store, MatchService service, ServerOptions options, CancellationToken cancellationToken)
    {
        var bank = store.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'.");
        var upload = await UploadReader.ReadAsync(request, options.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        var hashes = await service.HashAsync(upload.Data, false, cancellationToken).ConfigureAwait(false);
        if (hashes.Error is { } error)
        {
            // Adding needs a PDQ hash: content that has none is refused with the decoder's reason (nothing is added).
            var (status, code, detail) = Problems.Map(error);
            throw new ApiException(status, code, detail);
        }

        var signals = SignalsDto.From(hashes);
        if (signals.Pdq is not { Quality: >= PdqResult.DefaultMinQuality } pdq)
        {
            throw new ApiException(422, ErrorCodes.CorruptImage, "The content has no PDQ hash of usable quality (≥ 50) to add.");
        }

        var entry = store.AddEntry(bank.Id, new BankEntryRecord("pdq", pdq.Hash, new Dictionary<string, string>()), "hma");
        return Results.Json(new JsonObject { ["id"] = entry.Id, ["signals"] = new JsonObject { ["pdq"] = pdq.Hash } }, statusCode: StatusCodes.Status201Created);
    }
}
