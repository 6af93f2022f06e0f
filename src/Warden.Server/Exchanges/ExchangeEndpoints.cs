using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Core.Exchanges;
using Warden.Server.Api;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Exchanges;

/// <summary>
/// <c>/v1/exchanges</c> (CRUD, status, fetch now, feedback, schema per type) and HMA's exchange routes under
/// <c>/c/</c> with HMA's shapes. Exchanges hold no secrets: a config names the environment variable (or file) that
/// holds credentials on the nodes that fetch, so HMA's credential POST is refused with a pointer to that.
/// </summary>
internal static partial class ExchangeEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1/exchanges").RequireAuthorization(Roles.Curate).WithTags("Exchanges");
        v1.MapGet(string.Empty, (ExchangeStore s) => s.List().Select(x => Dto(x, s.State(x.Id)))).WithSummary("List exchanges with their sync status");
        v1.MapPost(string.Empty, Create).WithSummary("Add an exchange that fills a bank (the bank is created when missing)");
        v1.MapGet("/types", () => ExchangeTypes.All.Select(t => new { name = t.Name, description = t.Description })).WithSummary("Exchange types");
        v1.MapGet("/types/{type}/schema", (string type) => Schema(ExchangeTypes.Find(type) ?? throw ApiException.NotFound($"No exchange type '{type}'."))).WithSummary("A type's config fields");
        v1.MapGet("/{name}", (string name, ExchangeStore s) => Get(s, name)).WithSummary("An exchange and its status");
        v1.MapGet("/{name}/status", (string name, ExchangeStore s) => Get(s, name)).WithSummary("An exchange's sync status");
        v1.MapPatch("/{name}", Update).WithSummary("Change enabled, feedback, interval_seconds or config");
        v1.MapDelete("/{name}", (string name, ExchangeStore s) => s.Remove(name) ? Results.NoContent() : throw ApiException.NotFound($"No exchange named '{name}'.")).WithSummary("Remove an exchange (its bank stays)");
        v1.MapPost("/{name}/fetch", (string name, ExchangeStore s) =>
        {
            var x = s.Require(name);
            s.RequestFetch(x.Id);
            return Results.Accepted($"/v1/exchanges/{name}/status", new { name, requested = true });
        }).WithSummary("Fetch now (the next scheduler tick on any node; one fetch runs at a time)");
        v1.MapPost("/{name}/feedback", Feedback).WithSummary("Queue an opinion on an entry (sent once per idempotency key)");
        v1.MapGet("/{name}/feedback", (string name, ExchangeStore s) => s.ListFeedback(s.Require(name).Id).Select(f => new
        {
            id = f.Id,
            idempotency_key = f.IdempotencyKey,
            entry = f.ExternalId,
            signal_type = f.SignalType,
            opinion = f.Opinion,
            reason_id = f.ReasonId,
            status = f.Status,
            attempts = f.Attempts,
            last_error = f.LastError,
            created_at = f.CreatedAt,
            sent_at = f.SentAt,
        })).WithSummary("The exchange's feedback outbox");

        // What a peer Warden mirrors a bank through (the "peer" exchange type): the bank's changes in sequence order.
        app.MapGet("/v1/banks/{name}/changes", BankChanges).RequireAuthorization(Roles.Curate).WithTags("Exchanges")
            .WithSummary("A bank's changes after a sequence number (entries, tombstones, disabled entries), for mirroring it");

        var hma = app.MapGroup("/c").RequireAuthorization(Roles.Curate).WithTags("HMA compatibility");
        hma.MapGet("/exchanges/apis", () => ExchangeTypes.All.Select(t => t.Name)).WithSummary("HMA: exchange API types");
        hma.MapGet("/exchanges/api/{api}", (string api, ExchangeStore s) => ApiConfig(api, s)).WithSummary("HMA: whether a type uses credentials and has them");
        hma.MapPost("/exchanges/api/{api}", (string api, ExchangeStore s) =>
        {
            _ = ApiConfig(api, s);
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "Warden never stores exchange credentials: put user:password in an environment variable on the fetching nodes and name it in the exchange's credentials_env (or credentials_file).");
        }).WithSummary("HMA: set credentials (refused: Warden reads them from the environment)");
        hma.MapGet("/exchanges/api/{api}/schema", (string api) => Schema(ExchangeTypes.Find(api) ?? throw ApiException.NotFound($"Exchange API '{api}' not found"))).WithSummary("HMA: config and credential fields of a type");
        hma.MapGet("/exchanges", (ExchangeStore s) => s.List().Select(x => x.Name)).WithSummary("HMA: exchange names");
        hma.MapPost("/exchanges", HmaCreate).WithSummary("HMA: create an exchange (its name is its bank's)");
        hma.MapGet("/exchange/{name}", (string name, ExchangeStore s) => HmaConfig(s.Get(name) ?? throw ApiException.NotFound($"Exchange '{name}' not found"))).WithSummary("HMA: an exchange's config");
        hma.MapPut("/exchange/{name}", HmaUpdate).WithSummary("HMA: enable or disable an exchange");
        hma.MapDelete("/exchange/{name}", (string name, ExchangeStore s) =>
        {
            s.Remove(name);
            return Results.Json(new { message = "Exchange deleted" });
        }).WithSummary("HMA: delete an exchange");
        hma.MapGet("/exchange/{name}/status", (string name, ExchangeStore s) =>
        {
            var x = s.Get(name) ?? throw ApiException.NotFound($"Exchange '{name}' not found");
            var st = s.State(x.Id);
            return Results.Json(new
            {
                checkpoint_ts = st.CheckpointTime?.ToUnixTimeSeconds(),
                running_fetch_start_ts = st.FetchStartedAt?.ToUnixTimeSeconds(),
                last_fetch_complete_ts = st.LastFetchAt?.ToUnixTimeSeconds(),
                last_fetch_succeeded = st.LastSucceeded,
                up_to_date = st.UpToDate,
                fetched_items = st.EntriesFetched,
            });
        }).WithSummary("HMA: fetch status");
    }

    private static IResult BankChanges(string name, [Microsoft.AspNetCore.Mvc.FromQuery(Name = "after_seq")] long? afterSeq, int? limit, BankStore store)
    {
        var bank = store.GetBank(name) ?? throw ApiException.NotFound($"No bank named '{name}'.");
        if (afterSeq is < 0)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "after_seq must be 0 or more.");
        }

        var (entries, high, more) = store.BankChangesSince(bank.Id, afterSeq ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000));
        return Results.Json(new
        {
            bank = bank.Name,
            database_id = store.DatabaseId().ToString(System.Globalization.CultureInfo.InvariantCulture),
            high_water = high,
            has_more = more,
            entries = entries.Select(e => new
            {
                id = e.Entry.Id,
                seq = e.Seq,
                signal_type = e.Entry.SignalType,
                signal = e.Entry.Signal,
                labels = e.Entry.Labels,
                external_id = string.IsNullOrEmpty(e.Entry.ExternalId) ? null : e.Entry.ExternalId,
                note = e.Entry.Note,
                enabled = e.Entry.Enabled,
                deleted = e.Entry.Deleted,
            }),
        });
    }

    private static object Dto(Exchange x, ExchangeState s) => new
    {
        name = x.Name,
        type = x.Type,
        bank = x.BankName,
        enabled = x.Enabled,
        feedback = x.FeedbackEnabled,
        interval_seconds = x.IntervalSeconds,
        config = JsonNode.Parse(x.Config),
        status = new
        {
            checkpoint_time = s.CheckpointTime,
            fetch_in_progress = s.FetchStartedAt is not null,
            last_fetch = s.LastFetchAt,
            last_success = s.LastSuccessAt,
            last_succeeded = s.LastSucceeded,
            up_to_date = s.UpToDate,
            lag_seconds = s.CheckpointTime is { } t ? Math.Max(0, (long)(DateTimeOffset.UtcNow - t).TotalSeconds) : (long?)null,
            entries_fetched = s.EntriesFetched,
            tombstones_fetched = s.TombstonesFetched,
            unsupported_fetched = s.UnsupportedFetched,
            errors = s.Errors,
            last_error = s.LastError,
            next_fetch = s.NextFetchAt,
        },
    };

    private static object Get(ExchangeStore s, string name)
    {
        var x = s.Get(name) ?? throw ApiException.NotFound($"No exchange named '{name}'.");
        return Dto(x, s.State(x.Id));
    }

    private static object Schema(IExchangeType t)
    {
        static object Field(ExchangeField f) => new
        {
            name = f.Name,
            type = f.Type,
            required = f.Required,
            @default = f.Default is null ? null : JsonNode.Parse(f.Default),
            help = f.Help,
            choices = f.Choices,
        };
        return new
        {
            config_schema = new { fields = t.Schema.Config.Select(Field) },
            credentials_schema = t.Schema.Credentials is null ? null : new { fields = t.Schema.Credentials.Select(Field) },
        };
    }

    private static object ApiConfig(string api, ExchangeStore s)
    {
        var t = ExchangeTypes.Find(api) ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"no such Exchange API '{api}'");
        var mine = s.List().Where(x => x.Type == t.Name).ToList();
        var resolved = mine.Count > 0 && mine.All(x => HasCredentials(x));
        return new { supports_authentification = t.Schema.Credentials is not null, has_set_authentification = resolved };
    }

    private static bool HasCredentials(Exchange x)
    {
        using var doc = JsonDocument.Parse(x.Config);
        var r = doc.RootElement;

        // A peer names its key api_key_*; one that names none needs none (HMA has no authentication).
        var (env, file) = x.Type == ExchangeTypes.Peer.Name ? ("api_key_env", "api_key_file") : ("credentials_env", "credentials_file");
        if (r.TryGetProperty(env, out var v) && v.GetString() is { Length: > 0 } name)
        {
            return !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name));
        }

        return r.TryGetProperty(file, out var f) && f.GetString() is { Length: > 0 } path ? File.Exists(path) : x.Type == ExchangeTypes.Peer.Name;
    }

    private static JsonElement Body(JsonElement? body) =>
        body is { ValueKind: JsonValueKind.Object } b ? b : throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "This endpoint expects a JSON object.");

    private static IResult Create(JsonElement? body, ExchangeStore s, BankStore banks)
    {
        var b = Body(body);
        var name = Str(b, "name") ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'name' is required.");
        var type = ExchangeTypes.Find(Str(b, "type")) ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"'type' must be one of {string.Join(", ", ExchangeTypes.All.Select(t => t.Name))}.");
        var bankName = Str(b, "bank") ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'bank' is required.");
        var config = b.TryGetProperty("config", out var c) ? c : throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'config' (an object) is required; see /v1/exchanges/types/{type}/schema.");
        var interval = b.TryGetProperty("interval_seconds", out var i) && i.TryGetInt64(out var iv) ? iv : 300;
        var feedback = b.TryGetProperty("feedback", out var f) && f.ValueKind == JsonValueKind.True;
        var x = CreateExchange(s, banks, name, type, bankName, config, interval, feedback);
        if (b.TryGetProperty("enabled", out var e) && e.ValueKind == JsonValueKind.False)
        {
            x = s.Update(name, enabled: false);
        }

        return Results.Created($"/v1/exchanges/{x.Name}", Dto(x, s.State(x.Id)));
    }

    private static Exchange CreateExchange(ExchangeStore s, BankStore banks, string name, IExchangeType type, string bankName, JsonElement config, long interval, bool feedback)
    {
        JsonElement canonical;
        try
        {
            canonical = type.Validate(config);
        }
        catch (ExchangeConfigException ex)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, ex.Message);
        }

        if (s.Get(name) is not null)
        {
            throw new ApiException(409, ErrorCodes.Conflict, $"An exchange named '{name}' already exists.");
        }

        var bank = banks.GetBank(bankName) ?? banks.CreateBank(bankName, description: $"filled by exchange {name} ({type.Name})");
        return s.Create(name, type.Name, bank.Id, canonical.GetRawText(), interval, feedback);
    }

    private static object Update(string name, JsonElement? body, ExchangeStore s)
    {
        var b = Body(body);
        var x = s.Require(name);
        string? config = null;
        if (b.TryGetProperty("config", out var c))
        {
            try
            {
                config = ExchangeTypes.Get(x.Type).Validate(c).GetRawText();
            }
            catch (ExchangeConfigException ex)
            {
                throw ApiException.BadRequest(ErrorCodes.InvalidRequest, ex.Message);
            }
        }

        bool? Flag(string key) => b.TryGetProperty(key, out var v) ? v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"'{key}' must be true or false."),
        } : null;

        long? interval = b.TryGetProperty("interval_seconds", out var i) ? (i.TryGetInt64(out var iv) ? iv : throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'interval_seconds' must be an integer.")) : null;
        x = s.Update(name, Flag("enabled"), Flag("feedback"), interval, config);
        return Dto(x, s.State(x.Id));
    }

    private static IResult Feedback(string name, JsonElement? body, ExchangeStore s)
    {
        var b = Body(body);
        var x = s.Require(name);
        var entry = Str(b, "entry") ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'entry' (the entry's exchange id, e.g. MEMBER-ENTRY) is required.");
        var signalType = (Str(b, "signal_type") ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'signal_type' is required.")).ToLowerInvariant();
        var opinion = Str(b, "opinion") switch
        {
            "true_positive" or "true-positive" => "true_positive",
            "false_positive" or "false-positive" => "false_positive",
            _ => throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "'opinion' must be true_positive or false_positive."),
        };
        if (x.Type == ExchangeTypes.Ncmec.Name && Warden.Core.Exchanges.Ncmec.NcmecExchangeType.FingerprintType(signalType) is null)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"NCMEC takes no feedback on {signalType} fingerprints (md5, sha1, pdq, tmk_pdqf).");
        }

        var key = Str(b, "idempotency_key") ?? $"curator:{x.Name}:{entry}:{signalType}:{opinion}";
        var queued = s.EnqueueFeedback(x.Id, key, entry, signalType, opinion, Str(b, "reason_id"));
        return Results.Json(new { idempotency_key = key, queued }, statusCode: queued ? 202 : 200);
    }

    private static string? Str(JsonElement b, string key) =>
        b.TryGetProperty(key, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            _ => throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"'{key}' must be a string."),
        } : null;

    // HMA: the exchange takes its bank's name, CAPS_AND_UNDERSCORE; api_json carries the type's fields.
    private static IResult HmaCreate(JsonElement? body, ExchangeStore s, BankStore banks)
    {
        var b = Body(body);
        var bank = Str(b, "bank") ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "Field `bank` is required");
        if (!HmaName().IsMatch(bank))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "Field `bank` must match /^[A-Z0-9_]+$/");
        }

        var api = Str(b, "api") ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "Field `api_type` is required");
        var type = ExchangeTypes.Find(api) ?? throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"No such exchange type '{api}'");
        var apiJson = b.TryGetProperty("api_json", out var j) ? j : JsonDocument.Parse("{}").RootElement;
        if (apiJson.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "Field `api_json` must be object");
        }

        var x = CreateExchange(s, banks, bank, type, bank, apiJson, 300, false);
        if (apiJson.TryGetProperty("enabled", out var e) && e.ValueKind == JsonValueKind.False)
        {
            s.Update(x.Name, enabled: false);
        }

        return Results.Json(new { message = "Created successfully" }, statusCode: 201);
    }

    private static JsonObject HmaConfig(Exchange x)
    {
        var o = new JsonObject { ["name"] = x.Name, ["api"] = x.Type, ["enabled"] = x.Enabled };
        foreach (var (k, v) in JsonNode.Parse(x.Config)!.AsObject())
        {
            o[k] = v?.DeepClone();
        }

        // HMA stores the NCMEC environment as its URL.
        if (x.Type == ExchangeTypes.Ncmec.Name && o["environment"]?.GetValue<string>() is { } env && Warden.Core.Exchanges.Ncmec.NcmecEnvironments.Find(env) is { } found)
        {
            o["environment"] = found.Url;
        }

        return o;
    }

    private static JsonObject HmaUpdate(string name, JsonElement? body, ExchangeStore s)
    {
        var b = Body(body);
        _ = s.Get(name) ?? throw ApiException.NotFound($"Exchange '{name}' not found");
        bool? enabled = b.TryGetProperty("enabled", out var e) ? e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "`enabled` must be a boolean"),
        } : null;
        return HmaConfig(s.Update(name, enabled: enabled));
    }

    [GeneratedRegex(@"^[A-Z0-9_]+\z")]
    private static partial Regex HmaName();
}
