using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Warden.Server.Api;
using Warden.Server.Data;

namespace Warden.Server.Auth;

/// <summary>
/// Resolves presented keys to their records with a short-lived cache: a request costs one SHA-256 and a
/// dictionary lookup; a revoked key stops working within <see cref="Ttl"/> on every node.
/// </summary>
public sealed class ApiKeyCache(ServerStore store, TimeProvider time)
{
    /// <summary>How long a lookup (found or not) is trusted.</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, (ApiKeyRecord? Record, long Expires)> _cache = new(StringComparer.Ordinal);

    /// <summary>The live key record for a presented key, or null.</summary>
    public ApiKeyRecord? Resolve(string presented)
    {
        // Malformed keys never reach the database.
        if (ApiKeys.PublicIdOf(presented) is null || presented.Length > 100)
        {
            return null;
        }

        var hash = ApiKeys.Hash(presented);
        var now = time.GetTimestamp();
        if (_cache.TryGetValue(hash, out var cached) && cached.Expires > now)
        {
            return cached.Record;
        }

        var record = store.FindKey(hash);
        if (_cache.Count > 100_000)
        {
            _cache.Clear(); // bounded: a flood of random well-formed keys cannot grow it without limit
        }

        _cache[hash] = (record, now + (long)(Ttl.TotalSeconds * time.TimestampFrequency));
        return record;
    }

    /// <summary>Drops every cached lookup (after a key is created or revoked on this node).</summary>
    public void Invalidate() => _cache.Clear();
}

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-Api-Key: &lt;key&gt;</c>. Failures answer problem+json
/// 401 (no or unknown key) or 403 (a key of the wrong role).
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyCache keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        // The HMA listener's requests act as its configured identity and role (see HmaListener).
        if (Context.Items.ContainsKey(HmaListener.Marker) && Context.RequestServices.GetService(typeof(HmaListener)) is HmaListener hma)
        {
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(hma.Principal(SchemeName), SchemeName)));
        }

        string? presented = null;
        var authorization = Request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            presented = authorization["Bearer ".Length..].Trim();
        }
        else if (Request.Headers.TryGetValue("X-Api-Key", out var header))
        {
            presented = header.ToString().Trim();
        }

        if (string.IsNullOrEmpty(presented))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        ApiKeyRecord? record;
        try
        {
            record = keys.Resolve(presented);
        }
        catch (Warden.Storage.StorageException ex)
        {
            return Task.FromResult(AuthenticateResult.Fail(ex.Message));
        }

        if (record is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("Unknown or revoked API key."));
        }

        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, record.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new Claim(ClaimTypes.Name, record.Name),
                new Claim(ClaimTypes.Role, Roles.Name(record.Role)),
                new Claim("key_public_id", record.PublicId),
            ],
            SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer realm=\"warden\"";
        var hasKey = Request.Headers.Authorization.Count > 0 || Request.Headers.ContainsKey("X-Api-Key");
        return Problems.WriteAsync(Context, 401, ErrorCodes.Unauthorized, hasKey
            ? "The API key is unknown or revoked."
            : "An API key is required: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'. Create one with 'warden key create --role ROLE'.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var role = Context.User.FindFirst(ClaimTypes.Role)?.Value ?? "none";
        return Problems.WriteAsync(Context, 403, ErrorCodes.Forbidden, $"This key's role ({role}) may not use this endpoint.");
    }
}

/// <summary>Helpers over the authenticated principal.</summary>
internal static class PrincipalExtensions
{
    public static long? KeyId(this ClaimsPrincipal user) =>
        long.TryParse(user.FindFirst(ClaimTypes.NameIdentifier)?.Value, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;

    public static string Actor(this ClaimsPrincipal user) => $"key:{user.FindFirst("key_public_id")?.Value ?? "?"} ({user.Identity?.Name})";
}
