using System.Security.Claims;

namespace Warden.Server.Auth;

/// <summary>Helpers over the authenticated principal.</summary>
internal static class PrincipalExtensions
{
    public static long? KeyId(this ClaimsPrincipal user) =>
        long.TryParse(user.FindFirst(ClaimTypes.NameIdentifier)?.Value, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;

    public static string Actor(this ClaimsPrincipal user) => $"key:{user.FindFirst("key_public_id")?.Value ?? "?"} ({user.Identity?.Name})";
}
