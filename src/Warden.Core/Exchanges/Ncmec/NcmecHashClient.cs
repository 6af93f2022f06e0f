using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Xml;

namespace Warden.Core.Exchanges.Ncmec;

/// <summary>
/// The HTTP side of NCMEC Hash Sharing v2: Basic auth, GETs retried on 429/500/502/503/504 and network errors
/// (honouring <c>Retry-After</c>), pages read into memory up to a bound, feedback PUTs. Credentials live only in
/// the Authorization header and are never logged.
/// </summary>
public sealed class NcmecHashClient
{
    /// <summary>The Hash Sharing v2 XML namespace.</summary>
    public const string Namespace = "https://hashsharing.ncmec.org/hashsharing/v2";

    /// <summary>The largest page accepted (a real 1000-entry page is a few MB).</summary>
    public const int MaxPageBytes = ExchangeHttp.MaxBodyBytes;

    private readonly string _base;
    private readonly AuthenticationHeaderValue _auth;
    private readonly ExchangeRuntime _runtime;

    public NcmecHashClient(string baseUrl, string user, string password, ExchangeRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        ArgumentNullException.ThrowIfNull(runtime);
        _base = baseUrl.TrimEnd('/');
        _auth = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
        _runtime = runtime;
    }

    /// <summary>GETs tried at most this many times.</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>The first back-off when the server gives no Retry-After (doubles each try, up to a minute).</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest Retry-After honoured; a longer one fails the attempt (the scheduler backs off instead).</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The entries URL for a window: <c>{base}/v2/entries?from=..&amp;to=..</c> (UTC, whole seconds).</summary>
    public Uri EntriesUri(DateTimeOffset from, DateTimeOffset to) =>
        new(_base + "/v2/entries?from=" + Uri.EscapeDataString(Format(from)) + "&to=" + Uri.EscapeDataString(Format(to)));

    /// <summary>A <c>paging/next</c> link (already XML-unescaped) appended to the base unchanged, as NCMEC asks.</summary>
    public Uri NextUri(string next)
    {
        ArgumentNullException.ThrowIfNull(next);
        if (!next.StartsWith('/') || next.StartsWith("//", StringComparison.Ordinal) || next.Contains('#', StringComparison.Ordinal))
        {
            // A link is a path on the same server; anything else would send our credentials elsewhere.
            throw new ExchangeException($"NCMEC sent a paging link that is not a path on the server: '{Shorten(next)}'.");
        }

        return new Uri(_base + next);
    }

    /// <summary>
    /// A large fingerprint's retrieval link (relative to the application root, as NCMEC's large-fingerprints page
    /// says), checked like a paging link so credentials never go to another server.
    /// </summary>
    public Uri LargeFingerprintUri(string href)
    {
        ArgumentNullException.ThrowIfNull(href);
        if (!href.StartsWith('/') || href.StartsWith("//", StringComparison.Ordinal) || href.Contains('#', StringComparison.Ordinal) || href.Contains('\\', StringComparison.Ordinal))
        {
            throw new ExchangeException("NCMEC sent a large-fingerprint link that is not a path on the server.");
        }

        return new Uri(_base + href);
    }

    /// <summary>
    /// GETs a large fingerprint's raw bytes with the same auth, retries and back-off as pages. Null when NCMEC answers
    /// 404 or 410 (the fingerprint is gone). Errors name <paramref name="describe"/>, never the link.
    /// </summary>
    public async Task<byte[]?> GetLargeFingerprintAsync(Uri uri, string describe, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var http = new ExchangeHttp("NCMEC", _runtime) { MaxAttempts = MaxAttempts, BaseDelay = BaseDelay, MaxRetryAfter = MaxRetryAfter };
        try
        {
            return await http.GetBytesAsync(uri, "application/octet-stream", r => r.Headers.Authorization = _auth, cancellationToken, allowNotFound: true, describe: describe).ConfigureAwait(false);
        }
        catch (ExchangeException ex) when (ex.StatusCode == 410)
        {
            return null;
        }
    }

    /// <summary>NCMEC's time format: <c>yyyy-MM-ddTHH:mm:ssZ</c> in UTC.</summary>
    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>GETs a page (with retries, as every exchange client: <see cref="ExchangeHttp.GetBytesAsync"/>) and returns its bytes.</summary>
    public async Task<byte[]> GetAsync(Uri uri, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var http = new ExchangeHttp("NCMEC", _runtime) { MaxAttempts = MaxAttempts, BaseDelay = BaseDelay, MaxRetryAfter = MaxRetryAfter };
        return (await http.GetBytesAsync(uri, "application/xml", r => r.Headers.Authorization = _auth, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>The Retry-After of a response (seconds or an HTTP date), or null.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return ExchangeHttp.Retry(response);
    }

    /// <summary>
    /// <c>PUT {base}/v2/entries/{member}/{entry}/{TYPE}/feedback</c> with an affirmative or a negative (with one reason
    /// GUID) <c>feedbackSubmission</c>. Not retried here: the caller's outbox retries.
    /// </summary>
    public async Task SubmitFeedbackAsync(string memberId, string entryId, string fingerprintType, bool affirmative, string? reasonGuid, CancellationToken cancellationToken)
    {
        var body = new StringBuilder();
        using (var w = XmlWriter.Create(body, new XmlWriterSettings { OmitXmlDeclaration = true }))
        {
            w.WriteStartElement("feedbackSubmission", Namespace);
            if (affirmative)
            {
                w.WriteElementString("affirmative", Namespace, string.Empty);
            }
            else
            {
                w.WriteStartElement("negative", Namespace);
                w.WriteStartElement("reasonIds", Namespace);
                w.WriteElementString("guid", Namespace, reasonGuid ?? throw new ArgumentNullException(nameof(reasonGuid)));
                w.WriteEndElement();
                w.WriteEndElement();
            }

            w.WriteEndElement();
        }

        var uri = new Uri($"{_base}/v2/entries/{Uri.EscapeDataString(memberId)}/{Uri.EscapeDataString(entryId)}/{fingerprintType}/feedback");
        using var request = new HttpRequestMessage(HttpMethod.Put, uri);
        request.Headers.Authorization = _auth;
        request.Content = new StringContent("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + body, Encoding.UTF8, "application/xml");
        HttpResponseMessage response;
        try
        {
            response = await _runtime.Http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new ExchangeException($"NCMEC feedback: {ex.Message}", ex);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw new ExchangeException($"NCMEC refused the feedback: HTTP {(int)response.StatusCode}.") { StatusCode = (int)response.StatusCode, RetryAfter = RetryAfter(response) };
            }
        }
    }

    /// <summary><c>GET {base}/v2/feedback/{TYPE}/reasons</c>: reason GUID → name.</summary>
    public async Task<IReadOnlyDictionary<string, string>> FeedbackReasonsAsync(string fingerprintType, CancellationToken cancellationToken)
    {
        var bytes = await GetAsync(new Uri($"{_base}/v2/feedback/{fingerprintType}/reasons"), cancellationToken);
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = 1 << 20 };
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(bytes), settings);
            while (reader.Read())
            {
                if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "reason" && reader.GetAttribute("guid") is { Length: > 0 } guid)
                {
                    result[guid] = reader.GetAttribute("name") ?? string.Empty;
                }
            }
        }
        catch (XmlException ex)
        {
            throw new ExchangeException("NCMEC sent a malformed reasons list: " + ex.Message, ex);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            // System.Xml reading bytes throws ArgumentOutOfRangeException (Buffer.BlockCopy in SwitchEncoding) for an XML
            // declaration with a byte its encoding cannot decode, e.g. <?xml version="1.0\xDE" encoding="UTF-8"?>: malformed XML too.
            throw new ExchangeException("NCMEC sent a malformed reasons list: its XML declaration cannot be decoded", ex);
        }

        return result;
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
