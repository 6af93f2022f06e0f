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

        if (!options.AllowedFetchHosts.Contains(uri.Host, StringComparer.OrdinalIgnoreCase))
        {
            throw new ApiException(403, ErrorCodes.FetchRefused, $"Fetching from '{uri.Host}' is not allowed; an admin lists hosts in Warden:AllowedFetchHosts.");
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
}
