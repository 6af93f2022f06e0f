using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Warden.Core.Exchanges;

/// <summary>Reading and checking the JSON configs of the JSON-speaking exchange types (StopNCII, ThreatExchange, peer).</summary>
internal static class ConfigReader
{
    /// <summary>The object's fields by name; unknown names (other than HMA's common ones) are refused.</summary>
    public static Dictionary<string, JsonElement> Fields(JsonElement json, string type, IReadOnlyList<string> known)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            throw new ExchangeConfigException($"A {type} config is a JSON object.");
        }

        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in json.EnumerateObject())
        {
            if (p.Name is "name" or "api" or "enabled" or "bank" && !known.Contains(p.Name))
            {
                continue; // HMA puts its common fields in the same object.
            }

            if (!known.Contains(p.Name))
            {
                throw new ExchangeConfigException($"Unknown {type} config field '{p.Name}'; known: {string.Join(", ", known)}.");
            }

            if (p.Value.ValueKind != JsonValueKind.Null)
            {
                fields[p.Name] = p.Value;
            }
        }

        return fields;
    }

    public static string? Str(Dictionary<string, JsonElement> f, string name, int max = 2048)
    {
        if (!f.TryGetValue(name, out var v))
        {
            return null;
        }

        var s = v.ValueKind == JsonValueKind.String ? v.GetString()!.Trim() : throw new ExchangeConfigException($"{name} must be a string.");
        if (s.Length > max || s.AsSpan().ContainsAnyInRange('\0', '\x1f'))
        {
            throw new ExchangeConfigException($"{name} must be at most {max} characters, without control characters.");
        }

        return s.Length == 0 ? null : s;
    }

    public static long Int(Dictionary<string, JsonElement> f, string name, long min, long max, long @default)
    {
        if (!f.TryGetValue(name, out var v))
        {
            return @default;
        }

        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= min && n <= max)
        {
            return n;
        }

        // HMA's forms send numbers as strings.
        if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n) && n >= min && n <= max)
        {
            return n;
        }

        throw new ExchangeConfigException(string.Create(CultureInfo.InvariantCulture, $"{name} must be an integer from {min} to {max}."));
    }

    public static IReadOnlyList<string> Strings(Dictionary<string, JsonElement> f, string name, int maxItems = 64, int maxLength = 128)
    {
        if (!f.TryGetValue(name, out var v))
        {
            return [];
        }

        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() > maxItems)
        {
            throw new ExchangeConfigException($"{name} must be a list of at most {maxItems} strings.");
        }

        var list = new List<string>();
        foreach (var item in v.EnumerateArray())
        {
            var s = item.ValueKind == JsonValueKind.String ? item.GetString()!.Trim() : null;
            if (string.IsNullOrEmpty(s) || s.Length > maxLength || s.AsSpan().ContainsAnyInRange('\0', '\x1f'))
            {
                throw new ExchangeConfigException($"{name}: '{item}' is not a non-empty string of at most {maxLength} characters.");
            }

            list.Add(s);
        }

        return [.. list.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>An http(s) root URL without query, fragment or user info; http only on the loopback address.</summary>
    public static string BaseUrl(string? value, string field, string? @default)
    {
        var text = value ?? @default ?? throw new ExchangeConfigException($"{field} is required.");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")
            || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
        {
            throw new ExchangeConfigException($"{field} '{text}' is not an http(s) URL without query, fragment or user info.");
        }

        if (uri.Scheme == "http" && !IsLoopback(uri))
        {
            // Keys travel in headers: plain http only to a local mirror or test server.
            throw new ExchangeConfigException($"{field} '{text}' must be https (http only on the loopback address).");
        }

        return uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }

    public static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>The name of an environment variable (never a value: <paramref name="valueMarkers"/> betray one).</summary>
    public static string? EnvName(string? value, string field, string valueMarkers)
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length > 128 || value.AsSpan().IndexOfAny("=\0 ") >= 0 || value.AsSpan().IndexOfAny(valueMarkers) >= 0)
        {
            throw new ExchangeConfigException($"{field} must be the NAME of an environment variable, not its value.");
        }

        return value;
    }

    /// <summary>Canonical JSON of a field map (null values left out).</summary>
    public static JsonElement Write(IEnumerable<KeyValuePair<string, object?>> fields) =>
        JsonSerializer.SerializeToElement(fields.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value));
}

/// <summary>The HTTP side of the JSON exchanges: GETs with retries (honouring Retry-After), bounded bodies, one-shot sends.</summary>
internal sealed class ExchangeHttp(string who, ExchangeRuntime runtime)
{
    /// <summary>The largest JSON body accepted.</summary>
    public const int MaxBodyBytes = 64 << 20;

    public int MaxAttempts { get; init; } = 6;

    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>GETs a JSON document; 404 returns null when <paramref name="allowNotFound"/>, other failures throw <see cref="ExchangeException"/>.</summary>
    public async Task<JsonDocument?> GetJsonAsync(Uri uri, Action<HttpRequestMessage> authorize, CancellationToken cancellationToken, bool allowNotFound = false)
    {
        var bytes = await GetBytesAsync(uri, "application/json", authorize, cancellationToken, allowNotFound).ConfigureAwait(false);
        if (bytes is null)
        {
            return null;
        }

        // JsonDocument checks UTF-8 only when a string is read (GetString then throws InvalidOperationException deep in
        // a fetcher); JSON is UTF-8 (RFC 8259), so a body that is not fails the page here, whole.
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            throw new ExchangeException($"{who} sent a body that is not UTF-8 JSON ({Where(uri)}).");
        }

        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException ex)
        {
            // A page that cannot be read whole fails the pass; nothing of it is committed.
            throw new ExchangeException($"{who} sent a body that is not JSON ({Where(uri)}): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// GETs a body (bounded) with retries: 408/429/5xx and network errors are retried with exponential back-off or
    /// the server's Retry-After (up to <see cref="MaxRetryAfter"/>); 401/403 and other 4xx fail at once. 404 returns
    /// null when <paramref name="allowNotFound"/>. Every exchange client's GETs go through here.
    /// </summary>
    /// <param name="uri">What to GET.</param>
    /// <param name="accept">The Accept header.</param>
    /// <param name="authorize">Adds the credentials.</param>
    /// <param name="cancellationToken">Cancels the wait and the request.</param>
    /// <param name="allowNotFound">404 returns null instead of throwing.</param>
    /// <param name="describe">What errors call the resource instead of its URL (a link that must not be stored or logged).</param>
    public async Task<byte[]?> GetBytesAsync(Uri uri, string accept, Action<HttpRequestMessage> authorize, CancellationToken cancellationToken, bool allowNotFound = false, string? describe = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(authorize);
        var where = describe ?? Where(uri);
        for (var attempt = 1; ; attempt++)
        {
            TimeSpan? retryAfter = null;
            string problem;
            int? status = null;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                request.Headers.Accept.ParseAdd(accept);
                authorize(request);
                using var response = await runtime.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
                status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    return await ReadBoundedAsync(response, cancellationToken).ConfigureAwait(false);
                }

                retryAfter = Retry(response);
                if (status == 404 && allowNotFound)
                {
                    return null;
                }

                if (status is 401 or 403)
                {
                    throw new ExchangeException($"{who} refused the credentials (HTTP {status}) at {where}.") { StatusCode = status };
                }

                if (status is not (408 or 429 or 500 or 502 or 503 or 504))
                {
                    throw new ExchangeException($"{who} answered HTTP {status} for {where}.") { StatusCode = status, Permanent = status is 404 or 410 };
                }

                problem = $"HTTP {status}";
            }
            catch (HttpRequestException ex)
            {
                problem = ex.Message;
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                problem = "timed out: " + ex.Message;
            }

            if (retryAfter > MaxRetryAfter || attempt >= MaxAttempts)
            {
                throw new ExchangeException($"{who}: {problem} for {where} after {attempt} attempt(s).") { StatusCode = status, RetryAfter = retryAfter };
            }

            var delay = retryAfter ?? TimeSpan.FromTicks(Math.Min(BaseDelay.Ticks << (attempt - 1), TimeSpan.FromMinutes(1).Ticks));
            runtime.Log(string.Create(CultureInfo.InvariantCulture, $"{who}: {problem}; retrying in {delay.TotalSeconds:0.#}s (attempt {attempt + 1} of {MaxAttempts})"));
            await runtime.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sends a JSON body once (the feedback outbox retries); a refusal throws with status and Retry-After.</summary>
    public async Task SendJsonAsync(HttpMethod method, Uri uri, object body, Action<HttpRequestMessage> authorize, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, uri)
        {
            Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        authorize(request);
        HttpResponseMessage response;
        try
        {
            response = await runtime.Http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new ExchangeException($"{who} feedback: {ex.Message}", ex);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var code = (int)response.StatusCode;
                throw new ExchangeException($"{who} refused the feedback: HTTP {code}.") { StatusCode = code, RetryAfter = Retry(response) };
            }
        }
    }

    public static TimeSpan? Retry(HttpResponseMessage response)
    {
        var h = response.Headers.RetryAfter;
        if (h?.Delta is { } d)
        {
            return d < TimeSpan.Zero ? TimeSpan.Zero : d;
        }

        if (h?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }

    // Only the path: queries may carry tokens (ThreatExchange's access_token).
    private static string Where(Uri uri) => uri.GetLeftPart(UriPartial.Path);

    private async Task<byte[]> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > MaxBodyBytes)
        {
            throw new ExchangeException($"{who} sent a body of {response.Content.Headers.ContentLength} bytes; the limit is {MaxBodyBytes}.");
        }

        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > MaxBodyBytes)
                {
                    throw new ExchangeException($"{who} sent a body larger than {MaxBodyBytes} bytes.");
                }

                buffer.Write(chunk, 0, n);
            }

            return buffer.ToArray();
        }
    }
}

/// <summary>One secret (an API key or token) from an environment variable or a file's first line; never logged.</summary>
internal static class ExchangeSecrets
{
    public static string Read(string? variable, string? file, ExchangeRuntime runtime, string what)
    {
        var (text, where) = FirstLine(variable, file, runtime, what, $"No {what} configured: name an environment variable or a file that holds it.");
        text = text?.Trim();
        return string.IsNullOrEmpty(text) ? throw new ExchangeException($"No {what} in the {where}.") : text;
    }

    /// <summary>
    /// The raw first line of the environment variable or the file (the variable wins), and where it came from;
    /// <paramref name="noneConfigured"/> when neither is named. The value is never put in a message.
    /// </summary>
    public static (string? Text, string Where) FirstLine(string? variable, string? file, ExchangeRuntime runtime, string what, string noneConfigured)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        if (!string.IsNullOrEmpty(variable))
        {
            return (runtime.Environment(variable), $"environment variable {variable}");
        }

        if (string.IsNullOrEmpty(file))
        {
            throw new ExchangeException(noneConfigured);
        }

        var where = $"file {file}";
        try
        {
            return (File.ReadLines(file).FirstOrDefault(), where);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ExchangeException($"Cannot read the {what} from the {where}: {ex.Message}", ex);
        }
    }
}
