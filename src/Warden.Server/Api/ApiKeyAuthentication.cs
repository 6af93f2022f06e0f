using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Warden.Server.Auth;
using Warden.Server.Data;

namespace Warden.Server.Api;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-Api-Key: &lt;key&gt;</c>. Failures answer problem+json
/// 401 (no or unknown key) or 403 (a key of the wrong role).
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyCache keys, HmaListener? hma = null)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        // The HMA listener's requests act as its configured identity and role (see HmaListener).
        if (Context.Items.ContainsKey(HmaListener.Marker) && hma is not null)
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
