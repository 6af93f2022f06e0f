using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Xml;
using System.Xml.Linq;

namespace Warden.Review.Reporting;

/// <summary>Which CyberTipline environment. Test and production credentials are separate.</summary>
public enum CyberTiplineEnvironment
{
    /// <summary><c>https://exttest.cybertip.org/ispws</c>.</summary>
    Test,

    /// <summary><c>https://report.cybertip.org/ispws</c>: real reports.</summary>
    Production,
}

/// <summary>CyberTipline connection settings.</summary>
public sealed record CyberTiplineOptions
{
    /// <summary>Production base URL.</summary>
    public static Uri ProductionBaseUri { get; } = new("https://report.cybertip.org/ispws/");

    /// <summary>Test base URL.</summary>
    public static Uri TestBaseUri { get; } = new("https://exttest.cybertip.org/ispws/");

    /// <summary>The environment. Production must be chosen explicitly.</summary>
    public CyberTiplineEnvironment Environment { get; init; } = CyberTiplineEnvironment.Test;

    /// <summary>
    /// Overrides the base URL (a local fake server). Refused for production unless it is NCMEC's URL, so a
    /// misconfiguration cannot send test traffic to production credentials or real reports elsewhere.
    /// </summary>
    public Uri? BaseUri { get; init; }

    /// <summary>Basic-auth user name.</summary>
    public required string Username { get; init; }

    /// <summary>Basic-auth password.</summary>
    public required string Password { get; init; }

    /// <summary>Per-request timeout (uploads of large files may need more).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>The largest response body read (answers are small XML documents).</summary>
    public int MaxResponseBytes { get; init; } = 1 << 20;

    /// <summary>The effective base URL, ending in '/'.</summary>
    public Uri EffectiveBaseUri
    {
        get
        {
            var uri = BaseUri ?? (Environment == CyberTiplineEnvironment.Production ? ProductionBaseUri : TestBaseUri);
            if (Environment == CyberTiplineEnvironment.Production && uri != ProductionBaseUri)
            {
                throw new InvalidOperationException("The production CyberTipline environment only talks to " + ProductionBaseUri);
            }

            return uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
        }
    }
}

/// <summary>A parsed CyberTipline answer (<c>reportResponse</c> or <c>reportDoneResponse</c>).</summary>
public sealed record CyberTipResponse(int ResponseCode, string? Description, string? ReportId, string? FileId, string? Hash, IReadOnlyList<string> FileIds)
{
    /// <summary>Parses an answer; null when it is not one (malformed, other root, no code). Bounded and DTD-free.</summary>
    public static CyberTipResponse? TryParse(ReadOnlySpan<byte> body)
    {
        try
        {
            using var ms = new MemoryStream(body.ToArray());
            using var reader = XmlReader.Create(ms, new XmlReaderSettings
            {
                DtdProcessing = DtdProcessing.Prohibit,
                XmlResolver = null,
                MaxCharactersInDocument = 4 << 20,
                IgnoreComments = true,
            });
            var root = XDocument.Load(reader).Root;
            if (root is null || root.Name.LocalName is not ("reportResponse" or "reportDoneResponse"))
            {
                return null;
            }

            var codeText = root.Element("responseCode")?.Value.Trim();
            if (!int.TryParse(codeText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var code))
            {
                return null;
            }

            return new CyberTipResponse(
                code,
                root.Element("responseDescription")?.Value,
                NullIfEmpty(root.Element("reportId")?.Value.Trim()),
                NullIfEmpty(root.Element("fileId")?.Value.Trim()),
                NullIfEmpty(root.Element("hash")?.Value.Trim()),
                [.. root.Element("files")?.Elements("fileId").Select(f => f.Value.Trim()) ?? []]);
        }
        catch (XmlException)
        {
            return null;
        }
        catch (ArgumentOutOfRangeException)
        {
            // System.Xml reading bytes throws ArgumentOutOfRangeException (Buffer.BlockCopy in SwitchEncoding) for an XML
            // declaration with a byte its encoding cannot decode, e.g. <?xml version="1.0\xDE" encoding="UTF-8"?>: malformed XML too.
            return null;
        }
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>
/// HTTP client of NCMEC's CyberTipline Reporting API (ISPWS): <c>/status</c>, <c>/submit</c>,
/// <c>/upload</c>, <c>/fileinfo</c>, <c>/finish</c>, <c>/retract</c> with Basic authentication. Every answer
/// is classified into a <see cref="StepOutcome"/> from the body's <c>responseCode</c> first and the HTTP
/// status second (NCMEC has answered errors with HTTP 200, 400 and 401 over the years).
/// </summary>
public sealed class CyberTiplineClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly CyberTiplineOptions _options;

    /// <summary>Creates a client; pass an <see cref="HttpClient"/> to share a handler, else one is created.</summary>
    public CyberTiplineClient(CyberTiplineOptions options, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
        _http.Timeout = Timeout.InfiniteTimeSpan; // per-request timeouts below, so they can be told from cancellation
        BaseUri = options.EffectiveBaseUri;
    }

    /// <summary>The base URL in use.</summary>
    public Uri BaseUri { get; }

    /// <summary>The environment.</summary>
    public CyberTiplineEnvironment Environment => _options.Environment;

    /// <summary><c>POST /submit</c> with a <c>report</c> document.</summary>
    public Task<StepResult> SubmitAsync(string reportXml, CancellationToken cancellationToken = default) =>
        SendAsync(() => new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, "submit")) { Content = Xml(reportXml) }, reportXml, cancellationToken);

    /// <summary><c>POST /upload</c>: multipart <c>id</c> then <c>file</c>.</summary>
    public Task<StepResult> UploadAsync(string reportId, string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) =>
        SendAsync(() =>
        {
            var form = new MultipartFormDataContent
            {
                { new StringContent(reportId), "id" },
                { new ReadOnlyMemoryContent(content) { Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream") } }, "file", SafeFileName(fileName) },
            };
            return new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, "upload")) { Content = form };
        }, null, cancellationToken);

    /// <summary><c>POST /fileinfo</c> with a <c>fileDetails</c> document.</summary>
    public Task<StepResult> FileInfoAsync(string fileDetailsXml, CancellationToken cancellationToken = default) =>
        SendAsync(() => new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, "fileinfo")) { Content = Xml(fileDetailsXml) }, fileDetailsXml, cancellationToken);

    /// <summary><c>POST /finish</c> (form <c>id</c>).</summary>
    public Task<StepResult> FinishAsync(string reportId, CancellationToken cancellationToken = default) =>
        SendAsync(() => new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, "finish")) { Content = new FormUrlEncodedContent([new("id", reportId)]) }, null, cancellationToken);

    /// <summary><c>POST /retract</c> (form <c>id</c>).</summary>
    public Task<StepResult> RetractAsync(string reportId, CancellationToken cancellationToken = default) =>
        SendAsync(() => new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, "retract")) { Content = new FormUrlEncodedContent([new("id", reportId)]) }, null, cancellationToken);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    /// <summary>Maps an answer to an outcome (public for tests and other destinations reusing the table).</summary>
    public static StepOutcome Classify(int httpStatus, CyberTipResponse? response)
    {
        if (httpStatus is 401 or 403)
        {
            return StepOutcome.AuthFailed;
        }

        if (response is null)
        {
            // No readable answer: a proxy error, a cut or garbled body. The server may have acted.
            return StepOutcome.Ambiguous;
        }

        return response.ResponseCode switch
        {
            0 when httpStatus is >= 200 and < 300 => StepOutcome.Ok,
            0 => StepOutcome.Ambiguous,
            1000 or 1100 or 1110 or 1111 or 1300 => StepOutcome.Retry,
            2000 or 3000 or 3100 or 3300 => StepOutcome.AuthFailed,
            5001 => StepOutcome.ReportGone,
            5101 => StepOutcome.AlreadyRetracted,
            5102 => StepOutcome.AlreadyFinished,
            _ => StepOutcome.Rejected, // 4000/4100/4110/4200, 1001 (2016 schema error), 5002 and unknown codes
        };
    }

    private async Task<StepResult> SendAsync(Func<HttpRequestMessage> build, string? requestDocument, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RequestTimeout);
        using var request = build();
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_options.Username + ":" + _options.Password)));
        int? status = null;
        string? requestId = null;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            status = (int)response.StatusCode;
            requestId = response.Headers.TryGetValues("Request-ID", out var ids) ? ids.FirstOrDefault() : null;
            var body = await ReadBoundedAsync(response.Content, timeout.Token).ConfigureAwait(false);
            var parsed = body is null ? null : CyberTipResponse.TryParse(body);
            var outcome = Classify(status.Value, parsed);
            var text = body is null ? "(response over the size limit)" : Encoding.UTF8.GetString(body);
            return new StepResult(outcome, status, parsed?.ResponseCode, parsed?.Description, text, requestId,
                parsed?.ReportId, parsed?.FileId, parsed?.Hash, requestDocument);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex)
        {
            return new StepResult(StepOutcome.Ambiguous, status, null, "timed out after " + _options.RequestTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture) + " s: " + ex.Message, null, requestId, Request: requestDocument);
        }
        catch (HttpRequestException ex) when (status is null && ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            // Nothing reached the server: safe to send again.
            return new StepResult(StepOutcome.Retry, null, null, ex.Message, null, null, Request: requestDocument);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            return new StepResult(StepOutcome.Ambiguous, status, null, ex.Message, null, requestId, Request: requestDocument);
        }
    }

    private async Task<byte[]?> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var ms = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (ms.Length + n > _options.MaxResponseBytes)
            {
                return null;
            }

            ms.Write(buffer, 0, n);
        }

        return ms.ToArray();
    }

    private static StringContent Xml(string xml) => new(xml, new UTF8Encoding(false), new MediaTypeHeaderValue("text/xml") { CharSet = "utf-8" });

    // The multipart file name is metadata NCMEC sees; keep it ASCII and short (the original name goes in fileDetails).
    private static string SafeFileName(string name)
    {
        var clean = new string([.. name.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_').Take(100)]);
        return clean.Length == 0 ? "file" : clean;
    }
}

/// <summary>The CyberTipline as a <see cref="IReportDestination"/>: file metadata is <see cref="CyberTipFile"/> JSON.</summary>
public sealed class NcmecDestination(CyberTiplineClient client, TimeProvider? time = null) : IReportDestination
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The destination name stored with deliveries.</summary>
    public const string DestinationName = "ncmec";

    /// <inheritdoc/>
    public string Name => DestinationName;

    /// <inheritdoc/>
    public string Environment => EnvironmentName(client.Environment);

    /// <summary>The stored name of an environment.</summary>
    public static string EnvironmentName(CyberTiplineEnvironment e) => e == CyberTiplineEnvironment.Production ? "production" : "test";

    /// <inheritdoc/>
    public Task<StepResult> OpenAsync(string document, CancellationToken cancellationToken) => client.SubmitAsync(document, cancellationToken);

    /// <inheritdoc/>
    public Task<StepResult> AddFileAsync(string reportId, string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        client.UploadAsync(reportId, fileName, content, cancellationToken);

    /// <inheritdoc/>
    public Task<StepResult> DescribeFileAsync(string reportId, string fileId, string metadata, CancellationToken cancellationToken)
    {
        var file = JsonSerializer.Deserialize<CyberTipFile>(metadata) ?? throw new InvalidOperationException("Empty file metadata.");
        var doc = CyberTipXml.FileDetails(long.Parse(reportId, CultureInfo.InvariantCulture), fileId, file);
        var issues = CyberTipValidator.Validate(doc, _time.GetUtcNow());
        if (issues.Count > 0)
        {
            return Task.FromResult(new StepResult(StepOutcome.Rejected, Description: "invalid fileDetails: " + string.Join("; ", issues), Request: CyberTipXml.ToText(doc)));
        }

        return client.FileInfoAsync(CyberTipXml.ToText(doc), cancellationToken);
    }

    /// <inheritdoc/>
    public Task<StepResult> FinishAsync(string reportId, CancellationToken cancellationToken) => client.FinishAsync(reportId, cancellationToken);

    /// <inheritdoc/>
    public Task<StepResult> CancelAsync(string reportId, CancellationToken cancellationToken) => client.RetractAsync(reportId, cancellationToken);
}
