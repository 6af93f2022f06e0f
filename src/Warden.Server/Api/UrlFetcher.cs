namespace Warden.Server.Api;

/// <summary>
/// Fetches content for HMA-style <c>?url=</c> requests, only from host names an operator listed in
/// <see cref="ServerOptions.AllowedFetchHosts"/> (a server that fetches any URL is an SSRF hole into the
/// platform's network), with a size cap and a timeout; the bytes stay in memory.
/// </summary>
public sealed class UrlFetcher(IHttpClientFactory clients, ServerOptions options)
{
    /// <summary>Name of the HttpClient used.</summary>
    public const string ClientName = "fetch";

    /// <summary>Fetches <paramref name="url"/> or throws <see cref="ApiException"/>.</summary>
    public async Task<byte[]> FetchAsync(string? url, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "url must be an absolute http(s) URL.");
        }

        if (!IsAllowed(uri, options.AllowedFetchHosts))
        {
            throw new ApiException(403, ErrorCodes.FetchRefused, $"Fetching from '{uri.Authority}' is not allowed; an admin lists host[:port] entries in Warden:AllowedFetchHosts (no port: the scheme's default port only).");
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            using var response = await clients.CreateClient(ClientName).GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new ApiException(422, ErrorCodes.InvalidRequest, $"Fetching the url answered HTTP {(int)response.StatusCode}.");
            }

            if (response.Content.Headers.ContentLength > options.MaxRemoteFileBytes)
            {
                throw new ApiException(413, ErrorCodes.PayloadTooLarge, $"The remote file is larger than {options.MaxRemoteFileBytes} bytes.");
            }

            await using var stream = await response.Content.ReadAsStreamAsync(cts.Token).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int read;
            while ((read = await stream.ReadAsync(chunk, cts.Token).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > options.MaxRemoteFileBytes)
                {
                    throw new ApiException(413, ErrorCodes.PayloadTooLarge, $"The remote file is larger than {options.MaxRemoteFileBytes} bytes.");
                }

                buffer.Write(chunk, 0, read);
            }

            return buffer.ToArray();
        }
        catch (HttpRequestException ex)
        {
            throw new ApiException(422, ErrorCodes.InvalidRequest, "Could not fetch the url: " + ex.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ApiException(504, ErrorCodes.Timeout, "Fetching the url timed out.");
        }
    }

    /// <summary>
    /// Whether <paramref name="uri"/> is on the allowlist. An entry is <c>host</c>, <c>host:port</c> or
    /// <c>[ipv6]:port</c>; without a port it allows the scheme's default port only (80/443), so an allowed host's
    /// other services (admin ports, databases) cannot be probed through the server. Malformed entries allow nothing.
    /// </summary>
    public static bool IsAllowed(Uri uri, IEnumerable<string> entries)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(entries);
        var host = Normalize(uri.Host);
        foreach (var raw in entries)
        {
            if (TryParseEntry(raw, out var entryHost, out var port) &&
                string.Equals(entryHost, host, StringComparison.OrdinalIgnoreCase) &&
                (port is { } p ? uri.Port == p : uri.IsDefaultPort))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryParseEntry(string? raw, out string host, out int? port)
    {
        host = string.Empty;
        port = null;
        var entry = raw?.Trim();
        if (string.IsNullOrEmpty(entry))
        {
            return false;
        }

        string? portText = null;
        if (entry.StartsWith('['))
        {
            var close = entry.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            host = entry[1..close];
            var rest = entry[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    return false;
                }

                portText = rest[1..];
            }
        }
        else if (entry.Count(c => c == ':') == 1)
        {
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            host = entry[..colon];
            portText = entry[(colon + 1)..];
        }
        else
        {
            host = entry; // a name, an IPv4 address, or a bare IPv6 address (no port)
        }

        if (portText is not null)
        {
            if (!int.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) || p is < 1 or > 65535)
            {
                return false;
            }

            port = p;
        }

        host = Normalize(host);
        return host.Length > 0;
    }

    private static string Normalize(string host) => host.Trim('[', ']').TrimEnd('.');
}
