using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Warden.Review.Reporting;

namespace Warden.FakeCyberTipline;

/// <summary>What an injected failure does.</summary>
public enum FailureMode
{
    /// <summary>Hold the answer for <see cref="InjectedFailure.Delay"/> (the client times out). With <see cref="InjectedFailure.ProcessFirst"/> the request takes effect first.</summary>
    Timeout,

    /// <summary>HTTP 500 with responseCode 1000 "Server error"; nothing happens.</summary>
    ServerError,

    /// <summary>HTTP 503 with an empty body (a proxy in front); nothing happens.</summary>
    ServiceUnavailable,

    /// <summary>The request takes effect, the answer is HTTP 200 with a garbled body.</summary>
    Malformed,

    /// <summary>The request takes effect, then the connection is cut after <see cref="InjectedFailure.Bytes"/> bytes of the answer.</summary>
    DropAfterBytes,

    /// <summary>HTTP 401 with responseCode 2000; nothing happens.</summary>
    Unauthorized,

    /// <summary>HTTP 400 with responseCode 4100 "Validation failed"; nothing happens.</summary>
    Reject,
}

/// <summary>A failure for the next matching requests of one endpoint (<c>submit</c>, <c>upload</c>, <c>fileinfo</c>, <c>finish</c>, <c>retract</c>, <c>status</c>).</summary>
/// <param name="Endpoint">The endpoint.</param>
/// <param name="Mode">What happens.</param>
/// <param name="Times">How many requests fail.</param>
/// <param name="SkipFirst">How many matching requests succeed first.</param>
/// <param name="Bytes">For <see cref="FailureMode.DropAfterBytes"/>.</param>
/// <param name="Delay">For <see cref="FailureMode.Timeout"/> (default 30 s).</param>
/// <param name="ProcessFirst">For <see cref="FailureMode.Timeout"/>: apply the request before stalling.</param>
public sealed record InjectedFailure(string Endpoint, FailureMode Mode, int Times = 1, int SkipFirst = 0, int Bytes = 40, TimeSpan? Delay = null, bool ProcessFirst = true);

/// <summary>A report's state at the fake.</summary>
public enum FakeReportState
{
    /// <summary>Submitted, not finished.</summary>
    Open,

    /// <summary>Finished.</summary>
    Finished,

    /// <summary>Retracted.</summary>
    Retracted,

    /// <summary>Deleted as NCMEC does after 24 h unfinished (<see cref="FakeCyberTiplineServer.Expire"/>).</summary>
    Expired,
}

/// <summary>A file received by the fake.</summary>
public sealed record FakeFile(string FileId, string FileName, string Md5, long Size, IReadOnlyList<string> FileInfos);

/// <summary>A report received by the fake.</summary>
public sealed record FakeReport(long ReportId, FakeReportState State, string Xml, IReadOnlyList<FakeFile> Files);

/// <summary>One request as the fake saw it.</summary>
public sealed record FakeRequest(string Endpoint, int Status, long? ReportId, string? Failure);

/// <summary>Fake server settings.</summary>
public sealed record FakeCyberTiplineOptions
{
    /// <summary>Port on 127.0.0.1 (0: a free one).</summary>
    public int Port { get; init; }

    /// <summary>Accepted user name.</summary>
    public string Username { get; init; } = "warden-test";

    /// <summary>Accepted password.</summary>
    public string Password { get; init; } = "warden-test-password";

    /// <summary>Check submitted documents with Warden's built-in rules (NCMEC answers 400/4100 when they fail).</summary>
    public bool Validate { get; init; } = true;

    /// <summary>First report id handed out.</summary>
    public long FirstReportId { get; init; } = 900001;
}

/// <summary>
/// A local stand-in for NCMEC's CyberTipline Reporting API: real HTTP on 127.0.0.1 under <c>/ispws/</c>,
/// the documented endpoints, answers and response codes (including NCMEC's quirk of labelling UTF-8
/// bodies ISO-8859-1), Basic authentication, injectable failures, and a record of every report, file and
/// request. For tests, and for demos (<c>warden serve</c> can point its test environment at it). It keeps
/// uploads only as MD5 and size, never the bytes.
/// </summary>
public sealed class FakeCyberTiplineServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FakeCyberTiplineOptions _options;
    private readonly Lock _lock = new();
    private readonly Dictionary<long, ReportState> _reports = [];
    private readonly List<FakeRequest> _requests = [];
    private readonly List<(InjectedFailure Failure, int Seen, int Used)> _failures = [];
    private long _nextReportId;

    private FakeCyberTiplineServer(WebApplication app, FakeCyberTiplineOptions options)
    {
        _app = app;
        _options = options;
        _nextReportId = options.FirstReportId;
    }

    /// <summary>The base URL, e.g. <c>http://127.0.0.1:40123/ispws/</c>.</summary>
    public Uri BaseUri { get; private set; } = null!;

    /// <summary>Accepted user name.</summary>
    public string Username => _options.Username;

    /// <summary>Accepted password.</summary>
    public string Password => _options.Password;

    /// <summary>Starts a server.</summary>
    public static async Task<FakeCyberTiplineServer> StartAsync(FakeCyberTiplineOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new FakeCyberTiplineOptions();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, options.Port));
        var app = builder.Build();
        var server = new FakeCyberTiplineServer(app, options);
        server.Map();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUri = new Uri(address.TrimEnd('/') + "/ispws/");
        return server;
    }

    /// <summary>Adds a failure rule (rules apply in the order added).</summary>
    public void Inject(InjectedFailure failure)
    {
        lock (_lock)
        {
            _failures.Add((failure, 0, 0));
        }
    }

    /// <summary>Removes all failure rules.</summary>
    public void ClearFailures()
    {
        lock (_lock)
        {
            _failures.Clear();
        }
    }

    /// <summary>Deletes an unfinished report, as NCMEC does 24 h after opening.</summary>
    public void Expire(long reportId)
    {
        lock (_lock)
        {
            if (_reports.TryGetValue(reportId, out var r) && r.State == FakeReportState.Open)
            {
                r.State = FakeReportState.Expired;
            }
        }
    }

    /// <summary>Every report received, in id order.</summary>
    public IReadOnlyList<FakeReport> Reports
    {
        get
        {
            lock (_lock)
            {
                return [.. _reports.Values.OrderBy(r => r.Id).Select(r => new FakeReport(r.Id, r.State, r.Xml,
                    [.. r.Files.Select(f => new FakeFile(f.FileId, f.FileName, f.Md5, f.Size, [.. f.FileInfos]))]))];
            }
        }
    }

    /// <summary>Every request, in arrival order.</summary>
    public IReadOnlyList<FakeRequest> Requests
    {
        get
        {
            lock (_lock)
            {
                return [.. _requests];
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private void Map()
    {
        _app.MapGet("/ispws/status", ctx => Handle(ctx, "status", Status));
        _app.MapPost("/ispws/submit", ctx => Handle(ctx, "submit", Submit));
        _app.MapPost("/ispws/upload", ctx => Handle(ctx, "upload", Upload));
        _app.MapPost("/ispws/fileinfo", ctx => Handle(ctx, "fileinfo", FileInfo));
        _app.MapPost("/ispws/finish", ctx => Handle(ctx, "finish", Finish));
        _app.MapPost("/ispws/retract", ctx => Handle(ctx, "retract", Retract));
    }

    private async Task Handle(HttpContext ctx, string endpoint, Func<HttpContext, Task<Answer>> action)
    {
        ctx.Response.Headers["Request-ID"] = Guid.NewGuid().ToString("N");
        if (!Authorised(ctx))
        {
            Record(endpoint, 401, null, null);
            await Write(ctx, new Answer(401, Response(2000, "Authentication required", null))).ConfigureAwait(false);
            return;
        }

        var failure = NextFailure(endpoint);
        if (failure is null)
        {
            var answer = await action(ctx).ConfigureAwait(false);
            Record(endpoint, answer.Status, answer.ReportId, null);
            await Write(ctx, answer).ConfigureAwait(false);
            return;
        }

        var mode = failure.Mode.ToString();
        switch (failure.Mode)
        {
            case FailureMode.ServerError:
                Record(endpoint, 500, null, mode);
                await Write(ctx, new Answer(500, Response(1000, "Server error", null))).ConfigureAwait(false);
                return;
            case FailureMode.ServiceUnavailable:
                Record(endpoint, 503, null, mode);
                ctx.Response.StatusCode = 503;
                return;
            case FailureMode.Unauthorized:
                Record(endpoint, 401, null, mode);
                await Write(ctx, new Answer(401, Response(2000, "Authentication required", null))).ConfigureAwait(false);
                return;
            case FailureMode.Reject:
                Record(endpoint, 400, null, mode);
                await Write(ctx, new Answer(400, Response(4100, "Validation failed - injected", null))).ConfigureAwait(false);
                return;
        }

        Answer? applied = null;
        if (failure.Mode != FailureMode.Timeout || failure.ProcessFirst)
        {
            applied = await action(ctx).ConfigureAwait(false);
        }

        Record(endpoint, applied?.Status ?? 0, applied?.ReportId, mode);
        switch (failure.Mode)
        {
            case FailureMode.Timeout:
                try
                {
                    await Task.Delay(failure.Delay ?? TimeSpan.FromSeconds(30), ctx.RequestAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                await Write(ctx, applied ?? await action(ctx).ConfigureAwait(false)).ConfigureAwait(false);
                return;
            case FailureMode.Malformed:
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "application/xml;charset=ISO-8859-1";
                await ctx.Response.WriteAsync("<?xml version=\"1.0\"?><reportResponse><responseCode>0</respo", ctx.RequestAborted).ConfigureAwait(false);
                return;
            case FailureMode.DropAfterBytes:
                var bytes = Encoding.UTF8.GetBytes(applied!.Body);
                ctx.Response.StatusCode = applied.Status;
                ctx.Response.ContentType = "application/xml;charset=ISO-8859-1";
                ctx.Response.ContentLength = bytes.Length;
                await ctx.Response.Body.WriteAsync(bytes.AsMemory(0, Math.Min(failure.Bytes, bytes.Length - 1)), ctx.RequestAborted).ConfigureAwait(false);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
                ctx.Abort();
                return;
        }
    }

    private Task<Answer> Status(HttpContext ctx) =>
        Task.FromResult(Ok(0, $"Remote User : {_options.Username}, Remote Ip : {ctx.Connection.RemoteIpAddress}", null));

    private async Task<Answer> Submit(HttpContext ctx)
    {
        var (doc, error) = await ReadXml(ctx).ConfigureAwait(false);
        if (doc is null || doc.Root?.Name.LocalName != "report")
        {
            return new Answer(400, Response(4110, "Malformed XML submittal - " + (error ?? "root is not <report>"), null));
        }

        if (Invalid(doc) is { } invalid)
        {
            return invalid;
        }

        lock (_lock)
        {
            var id = _nextReportId++;
            _reports[id] = new ReportState(id, doc.ToString());
            return Ok(0, "Success", id);
        }
    }

    private async Task<Answer> Upload(HttpContext ctx)
    {
        if (!ctx.Request.HasFormContentType)
        {
            return new Answer(400, Response(4000, "Invalid request - multipart form expected", null));
        }

        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
        if (!long.TryParse(form["id"], NumberStyles.None, CultureInfo.InvariantCulture, out var reportId) || form.Files.GetFile("file") is not { } file)
        {
            return new Answer(400, Response(4000, "Invalid request - id and file are required", null));
        }

        string md5;
        await using (var s = file.OpenReadStream())
        {
#pragma warning disable CA5351 // The CyberTipline answers with the upload's MD5; mirrored here.
            md5 = Convert.ToHexStringLower(await MD5.HashDataAsync(s, ctx.RequestAborted).ConfigureAwait(false));
#pragma warning restore CA5351
        }

        lock (_lock)
        {
            if (StateError(reportId) is { } err)
            {
                return err;
            }

            var fileId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            _reports[reportId].Files.Add(new FileState(fileId, file.FileName, md5, file.Length));
            return new Answer(200, Response(0, "Success", reportId, ("fileId", fileId), ("hash", md5)), reportId);
        }
    }

    private async Task<Answer> FileInfo(HttpContext ctx)
    {
        var (doc, error) = await ReadXml(ctx).ConfigureAwait(false);
        if (doc is null || doc.Root?.Name.LocalName != "fileDetails")
        {
            return new Answer(400, Response(4110, "Malformed XML submittal - " + (error ?? "root is not <fileDetails>"), null));
        }

        if (Invalid(doc) is { } invalid)
        {
            return invalid;
        }

        _ = long.TryParse(doc.Root.Element("reportId")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var reportId);
        var fileId = doc.Root.Element("fileId")?.Value.Trim();
        lock (_lock)
        {
            if (StateError(reportId) is { } err)
            {
                return err;
            }

            var f = _reports[reportId].Files.FirstOrDefault(x => x.FileId == fileId);
            if (f is null)
            {
                return new Answer(400, Response(5002, "File does not exist", reportId), reportId);
            }

            if (f.FileInfos.Count > 0)
            {
                return new Answer(400, Response(4000, "Invalid request - file details were already provided for this file", reportId), reportId);
            }

            f.FileInfos.Add(doc.ToString());
            return Ok(0, "Success", reportId, ("fileId", f.FileId));
        }
    }

    private async Task<Answer> Finish(HttpContext ctx)
    {
        var reportId = await FormId(ctx).ConfigureAwait(false);
        lock (_lock)
        {
            if (StateError(reportId) is { } err)
            {
                return err;
            }

            var r = _reports[reportId];
            r.State = FakeReportState.Finished;
            var done = new XElement("reportDoneResponse",
                new XElement("responseCode", 0),
                new XElement("reportId", reportId),
                new XElement("files", r.Files.Select(f => new XElement("fileId", f.FileId))));
            return new Answer(200, Declaration + done.ToString(), reportId);
        }
    }

    private async Task<Answer> Retract(HttpContext ctx)
    {
        var reportId = await FormId(ctx).ConfigureAwait(false);
        lock (_lock)
        {
            if (StateError(reportId) is { } err)
            {
                return err;
            }

            _reports[reportId].State = FakeReportState.Retracted;
            return Ok(0, "Success", reportId);
        }
    }

    /// <summary>Caller holds the lock. The documented codes for a report that cannot change.</summary>
    private Answer? StateError(long reportId)
    {
        if (!_reports.TryGetValue(reportId, out var r) || r.State == FakeReportState.Expired)
        {
            return new Answer(400, Response(5001, "Report does not exist", null));
        }

        return r.State switch
        {
            FakeReportState.Finished => new Answer(400, Response(5102, "Report already finished", reportId), reportId),
            FakeReportState.Retracted => new Answer(400, Response(5101, "Report already retracted", reportId), reportId),
            _ => null,
        };
    }

    private Answer? Invalid(XDocument doc)
    {
        if (!_options.Validate)
        {
            return null;
        }

        var issues = CyberTipValidator.Validate(doc, DateTimeOffset.UtcNow);
        return issues.Count == 0 ? null : new Answer(400, Response(4100, "Validation failed - " + string.Join("; ", issues), null));
    }

    private static async Task<long> FormId(HttpContext ctx)
    {
        if (!ctx.Request.HasFormContentType)
        {
            return -1;
        }

        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
        return long.TryParse(form["id"], NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : -1;
    }

    private static async Task<(XDocument? Doc, string? Error)> ReadXml(HttpContext ctx)
    {
        using var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted).ConfigureAwait(false);
        ms.Position = 0;
        try
        {
            using var reader = XmlReader.Create(ms, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = 16 << 20 });
            return (XDocument.Load(reader), null);
        }
        catch (XmlException ex)
        {
            return (null, ex.Message);
        }
    }

    private bool Authorised(HttpContext ctx)
    {
        var header = ctx.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            return pair == _options.Username + ":" + _options.Password;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private InjectedFailure? NextFailure(string endpoint)
    {
        lock (_lock)
        {
            for (var i = 0; i < _failures.Count; i++)
            {
                var (f, seen, used) = _failures[i];
                if (f.Endpoint != endpoint || used >= f.Times)
                {
                    continue;
                }

                if (seen < f.SkipFirst)
                {
                    _failures[i] = (f, seen + 1, used);
                    return null;
                }

                _failures[i] = (f, seen + 1, used + 1);
                return f;
            }

            return null;
        }
    }

    private void Record(string endpoint, int status, long? reportId, string? failure)
    {
        lock (_lock)
        {
            _requests.Add(new FakeRequest(endpoint, status, reportId, failure));
        }
    }

    private const string Declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

    private static Answer Ok(int code, string description, long? reportId, params (string Name, string Value)[] extra) =>
        new(200, Response(code, description, reportId, extra), reportId);

    private static string Response(int code, string description, long? reportId, params (string Name, string Value)[] extra) =>
        Declaration + new XElement("reportResponse",
            new XElement("responseCode", code),
            new XElement("responseDescription", description),
            reportId is null ? null : new XElement("reportId", reportId),
            extra.Select(e => new XElement(e.Name, e.Value)));

    private static async Task Write(HttpContext ctx, Answer answer)
    {
        ctx.Response.StatusCode = answer.Status;

        // NCMEC labels its UTF-8 bodies ISO-8859-1; clients must let the XML declaration decide.
        ctx.Response.ContentType = "application/xml;charset=ISO-8859-1";
        await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(answer.Body), ctx.RequestAborted).ConfigureAwait(false);
    }

    private sealed record Answer(int Status, string Body, long? ReportId = null);

    private sealed class ReportState(long id, string xml)
    {
        public long Id { get; } = id;

        public string Xml { get; } = xml;

        public FakeReportState State { get; set; }

        public List<FileState> Files { get; } = [];
    }

    private sealed class FileState(string fileId, string fileName, string md5, long size)
    {
        public string FileId { get; } = fileId;

        public string FileName { get; } = fileName;

        public string Md5 { get; } = md5;

        public long Size { get; } = size;

        public List<string> FileInfos { get; } = [];
    }
}
