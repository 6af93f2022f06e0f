using System.Globalization;
using Npgsql;

namespace Warden.Storage;

/// <summary>
/// libpq-style URIs (<c>postgres://user:password@host:port/database?sslmode=require</c>) as Npgsql connection
/// strings, which Npgsql does not read itself. A <c>host</c> query parameter overrides the host part (a unix
/// socket directory: <c>postgres:///warden?host=/run/postgresql</c>).
/// </summary>
internal static class PostgresUri
{
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sslmode"] = "SSL Mode",
        ["application_name"] = "Application Name",
        ["connect_timeout"] = "Timeout",
        ["options"] = "Options",
        ["target_session_attrs"] = "Target Session Attributes",
        ["user"] = "Username",
        ["dbname"] = "Database",
        ["sslrootcert"] = "Root Certificate",
        ["sslcert"] = "SSL Certificate",
        ["sslkey"] = "SSL Key",
    };

    public static NpgsqlConnectionStringBuilder Parse(string uri)
    {
        var schemeEnd = uri.IndexOf("://", StringComparison.Ordinal);
        var rest = uri[(schemeEnd + 3)..];
        var query = string.Empty;
        if (rest.IndexOf('?', StringComparison.Ordinal) is var q and >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }

        var path = string.Empty;
        if (rest.IndexOf('/', StringComparison.Ordinal) is var slash and >= 0)
        {
            path = rest[(slash + 1)..];
            rest = rest[..slash];
        }

        var builder = new NpgsqlConnectionStringBuilder();
        if (rest.LastIndexOf('@') is var at and >= 0)
        {
            var userInfo = rest[..at];
            rest = rest[(at + 1)..];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon >= 0 ? userInfo[..colon] : userInfo);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(userInfo[(colon + 1)..]);
            }
        }

        // host, host:port, [v6]:port, or several comma-separated hosts (Npgsql takes the same list).
        if (rest.Length > 0)
        {
            var hostPart = rest;
            var portSep = rest.LastIndexOf(':');
            if (portSep >= 0 && portSep > rest.LastIndexOf(']') && !rest.Contains(',', StringComparison.Ordinal))
            {
                builder.Port = Port(rest[(portSep + 1)..]);
                hostPart = rest[..portSep];
            }

            builder.Host = Uri.UnescapeDataString(hostPart.Trim('[', ']'));
        }

        if (path.Length > 0)
        {
            builder.Database = Uri.UnescapeDataString(path);
        }

        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq >= 0 ? pair[..eq] : pair);
            var value = eq >= 0 ? Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' ')) : string.Empty;
            if (key.Equals("host", StringComparison.OrdinalIgnoreCase))
            {
                builder.Host = value;
            }
            else if (key.Equals("port", StringComparison.OrdinalIgnoreCase))
            {
                builder.Port = Port(value);
            }
            else
            {
                // Unknown keywords throw ArgumentException, which the caller reports.
                builder[Aliases.TryGetValue(key, out var alias) ? alias : key] = value;
            }
        }

        return builder;
    }

    // Not int.Parse: its message quotes the text, which in a mistyped URI ("postgres://host:secret") is a password.
    private static int Port(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535
            ? port
            : throw new ArgumentException("the port is not a number from 1 to 65535.");
}
