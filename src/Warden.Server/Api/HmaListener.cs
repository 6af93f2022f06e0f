using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Warden.Review.Audit;
using Warden.Server.Auth;

namespace Warden.Server.Api;

/// <summary>
/// The HMA-compatibility listener: extra addresses (<see cref="ServerOptions.HmaUrls"/>, off by default) where HMA
/// clients that cannot send credentials — ROOST Coop sends none at all — are served HMA's routes only
/// (<c>/c</c>, <c>/m</c>, <c>/h</c>, <c>/status</c>), every request acting as one configured identity and role,
/// logged, and audited when it changes something. The main address keeps requiring API keys. Coop's default base
/// URL ends in '/', so it asks for <c>//c/...</c>: repeated slashes are collapsed before routing here.
/// </summary>
public sealed partial class HmaListener
{
    /// <summary>The <see cref="HttpContext.Items"/> key that marks a request as arrived on the listener.</summary>
    public const string Marker = "warden.hma-listener";

    private static readonly string[] Prefixes = ["/c/", "/m/", "/h/"];

    private HmaListener(IReadOnlyList<string> urls, IReadOnlySet<int> ports, Role role, string identity)
    {
        Urls = urls;
        Ports = ports;
        Role = role;
        Identity = identity;
    }

    /// <summary>The listener's URLs.</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <summary>Their ports (how a request is known to have arrived on the listener).</summary>
    public IReadOnlySet<int> Ports { get; }

    /// <summary>The role every request acts with.</summary>
    public Role Role { get; }

    /// <summary>The name every request acts as.</summary>
    public string Identity { get; }

    /// <summary>
    /// Reads the settings; null when the listener is off. Throws <see cref="InvalidOperationException"/> saying
    /// what is wrong (a URL without an explicit port, a role that is not submitter or curator, a port the main
    /// URLs use too).
    /// </summary>
    public static HmaListener? From(ServerOptions options, string? mainUrls)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.HmaUrls))
        {
            return null;
        }

        if (!Roles.TryParse(options.HmaRole, out var role) || role is not (Role.Submitter or Role.Curator))
        {
            throw new InvalidOperationException($"--hma-role '{options.HmaRole}': the HMA listener acts as a submitter or a curator (HMA's API has nothing for other roles).");
        }

        var identity = options.HmaIdentity?.Trim() ?? string.Empty;
        if (identity.Length is 0 or > 100 || identity.Any(char.IsControl))
        {
            throw new InvalidOperationException("HmaIdentity must be a name of 1-100 printable characters.");
        }

        var urls = new List<string>();
        var ports = new HashSet<int>();
        foreach (var text in options.HmaUrls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // An explicit, fixed port: requests are told apart from the main address by the port they arrived on.
            var authority = text.Contains("://", StringComparison.Ordinal) ? text[(text.IndexOf("://", StringComparison.Ordinal) + 3)..].TrimEnd('/') : string.Empty;
            var colon = authority.LastIndexOf(':');
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query)
                || colon < 0 || !int.TryParse(authority[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw new InvalidOperationException($"--hma-urls '{text}' is not http(s)://HOST:PORT with an explicit port from 1 to 65535 and no path.");
            }

            urls.Add(text.TrimEnd('/'));
            ports.Add(port);
        }

        if (urls.Count == 0)
        {
            throw new InvalidOperationException("--hma-urls names no URL.");
        }

        foreach (var main in (mainUrls ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (Uri.TryCreate(main.Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://+", "://localhost", StringComparison.Ordinal), UriKind.Absolute, out var m) && m.Port > 0 && ports.Contains(m.Port))
            {
                throw new InvalidOperationException($"--hma-urls must use a port of its own; {m.Port} is also in --urls.");
            }
        }

        return new HmaListener(urls, ports, role, identity);
    }

    /// <summary>True for a request that arrived on the listener.</summary>
    public bool Owns(HttpContext context) => Ports.Contains(context.Connection.LocalPort);

    /// <summary>The principal every listener request acts as.</summary>
    public ClaimsPrincipal Principal(string scheme) => new(new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, "hma-listener"),
            new Claim(ClaimTypes.Name, Identity),
            new Claim(ClaimTypes.Role, Roles.Name(Role)),
            new Claim("key_public_id", "hma-listener"),
        ],
        scheme));

    /// <summary>Collapses runs of '/' ("//c//banks" → "/c/banks").</summary>
    public static string CollapseSlashes(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!path.Contains("//", StringComparison.Ordinal))
        {
            return path;
        }

        var b = new System.Text.StringBuilder(path.Length);
        foreach (var c in path)
        {
            if (c != '/' || b.Length == 0 || b[^1] != '/')
            {
                b.Append(c);
            }
        }

        return b.ToString();
    }

    /// <summary>True for a path of HMA's API (the only ones the listener serves).</summary>
    public static bool IsHmaPath(string path) =>
        path is "/status" or "/status/live" || Prefixes.Any(p => path.StartsWith(p, StringComparison.Ordinal));

    /// <summary>
    /// Adds the listener's middleware (first, before routing, so collapsed paths route): marks its requests,
    /// refuses non-HMA paths with a JSON 404, logs each request (method and path; never the query, which carries
    /// hashes and URLs) and audits each change.
    /// </summary>
    public void Use(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<HmaListener>();
        var audit = app.Services.GetRequiredService<AuditLog>();
        app.Use(async (context, next) =>
        {
            if (!Owns(context))
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            var path = CollapseSlashes(context.Request.Path.Value ?? "/");
            context.Request.Path = path;
            if (!IsHmaPath(path))
            {
                LogRefused(log, context.Request.Method, path);
                await Problems.WriteAsync(context, 404, ErrorCodes.NotFound, "This address serves HMA's API only (/c, /m, /h, /status).").ConfigureAwait(false);
                return;
            }

            context.Items[Marker] = true;
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                LogRequest(log, Identity, context.Request.Method, path, context.Response.StatusCode);
                if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method) && !HttpMethods.IsOptions(context.Request.Method))
                {
                    Audit(audit, context, path);
                }
            }
        });
    }

    // Every change through the listener is in the hash-chained audit log, with the identity it acted as.
    private void Audit(AuditLog audit, HttpContext context, string path) =>
        audit.Append(new AuditEntry(
            $"hma-listener ({Identity})",
            "hma.request",
            $"{context.Request.Method} {path}",
            new Dictionary<string, string> { ["status"] = context.Response.StatusCode.ToString(CultureInfo.InvariantCulture), ["role"] = Roles.Name(Role) }));

    [LoggerMessage(Level = LogLevel.Information, Message = "HMA listener: {Identity} {Method} {Path} -> {Status}")]
    private static partial void LogRequest(ILogger logger, string identity, string method, string path, int status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "HMA listener: refused {Method} {Path} (not an HMA route)")]
    private static partial void LogRefused(ILogger logger, string method, string path);
}
