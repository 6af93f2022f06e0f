using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Warden.Review.Audit;
using Warden.Server.Auth;
using Warden.Server.Data;

namespace Warden.Server.Api;

/// <summary>Administration (role admin): API keys and webhooks.</summary>
internal static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");

        var admin = v1.MapGroup(string.Empty).RequireAuthorization(Roles.Administer).WithTags("Administration");
        admin.MapGet("/keys", (ServerStore s) => s.ListKeys().Select(k => ToDto(k, null))).WithSummary("List API keys").Produces<IReadOnlyList<KeyDto>>();
        admin.MapPost("/keys", CreateKey).WithSummary("Create an API key (the secret is in this response only)").Produces<KeyDto>(StatusCodes.Status201Created);
        admin.MapDelete("/keys/{id:long}", RevokeKey).WithSummary("Revoke an API key").Produces(StatusCodes.Status204NoContent);
        admin.MapGet("/webhooks", (ServerStore s) => s.ListWebhooks().Select(w => new WebhookDto(w.Id, w.Url, w.Enabled, w.CreatedAt, null))).WithSummary("List webhooks").Produces<IReadOnlyList<WebhookDto>>();
        admin.MapPost("/webhooks", CreateWebhook).WithSummary("Subscribe a webhook (HMAC-SHA256 signed POSTs)").Produces<WebhookDto>(StatusCodes.Status201Created);
        admin.MapDelete("/webhooks/{id:long}", (HttpContext context, long id, ServerStore s, AuditLog audit) =>
        {
            if (!s.DeleteWebhook(id))
            {
                throw ApiException.NotFound($"No webhook {id}.");
            }

            ConfigAudit.Append(audit, context, "webhook.delete", $"webhook:{id}");
            return Results.NoContent();
        }).WithSummary("Delete a webhook");
        admin.MapGet("/webhooks/deliveries", (string? state, int? limit, ServerStore s) => s.ListDeliveries(state, Math.Clamp(limit ?? 100, 1, 1000))).WithSummary("Recent webhook deliveries").Produces<IReadOnlyList<OutboxItem>>();
    }

    internal static KeyDto ToDto(ApiKeyRecord k, string? key) => new(k.Id, k.PublicId, k.Name, Roles.Name(k.Role), k.CreatedAt, k.RevokedAt, key);

    private static IResult CreateKey(HttpContext context, CreateKeyRequest request, ServerStore server, ApiKeyCache cache, AuditLog audit)
    {
        if (request is null || string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 200)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "A key needs a name (1–200 characters) saying who uses it.");
        }

        if (!Roles.TryParse(request.Role, out var role))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"Unknown role '{request.Role}'; roles: {Roles.AllNames}.");
        }

        var (record, key) = server.CreateKey(request.Name, role);
        cache.Invalidate();
        ConfigAudit.Append(audit, context, "key.create", $"key:{record.Id}", new Dictionary<string, string> { ["public_id"] = record.PublicId, ["role"] = Roles.Name(role), ["name"] = record.Name });
        return Results.Created($"/v1/keys/{record.Id}", ToDto(record, key));
    }

    private static IResult RevokeKey(HttpContext context, long id, ServerStore server, ApiKeyCache cache, AuditLog audit)
    {
        if (!server.RevokeKey(id))
        {
            throw ApiException.NotFound($"No live key {id}.");
        }

        cache.Invalidate();
        ConfigAudit.Append(audit, context, "key.revoke", $"key:{id}");
        return Results.NoContent();
    }

    private static IResult CreateWebhook(HttpContext context, CreateWebhookRequest request, ServerStore server, AuditLog audit)
    {
        if (request is null || !Uri.TryCreate(request.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "A webhook needs an absolute http(s) url.");
        }

        if (request.Secret is { Length: < 16 })
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "A webhook secret has at least 16 characters (or leave it out to get a generated one).");
        }

        var secret = request.Secret ?? Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var hook = server.CreateWebhook(url.ToString(), secret);
        ConfigAudit.Append(audit, context, "webhook.create", $"webhook:{hook.Id}", new Dictionary<string, string> { ["host"] = url.Host });
        return Results.Created($"/v1/webhooks/{hook.Id}", new WebhookDto(hook.Id, hook.Url, hook.Enabled, hook.CreatedAt, secret));
    }
}
