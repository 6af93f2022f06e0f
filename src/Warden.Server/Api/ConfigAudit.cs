using Microsoft.AspNetCore.Http;
using Warden.Review.Audit;
using Warden.Server.Auth;

namespace Warden.Server.Api;

/// <summary>Configuration and key changes of every role group go to the hash-chained audit log.</summary>
internal static class ConfigAudit
{
    // Configuration and key changes go to the hash-chained audit log with the acting key (never the secret).
    internal static void Append(AuditLog audit, HttpContext context, string action, string subject, IReadOnlyDictionary<string, string>? details = null) =>
        audit.Append(new AuditEntry(context.User.Actor(), action, subject, details));
}
