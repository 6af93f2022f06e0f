using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Warden.FakeCyberTipline;
using Warden.Review.Reporting;

namespace Warden.Review.Tests;

/// <summary>The fake answers as the documentation says NCMEC does.</summary>
public sealed class FakeServerTests : IAsyncLifetime, IDisposable
{
    private FakeCyberTiplineServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeCyberTiplineServer.StartAsync();
        _http = new HttpClient { BaseAddress = _server.BaseUri };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_server.Username}:{_server.Password}")));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _http?.Dispose();

    private static string MinimalReport => CyberTipXml.ToText(CyberTipXml.Report(new CyberTipReport(
        new IncidentSummary(CyberTipVocabulary.ChildPornography, DateTimeOffset.UtcNow.AddHours(-1)),
        new ReporterInfo(new CyberTipPerson(Emails: ["t@example.com"])))));

    private async Task<(HttpStatusCode Status, CyberTipResponse Response)> Post(string path, HttpContent content)
    {
        using var r = await _http.PostAsync(new Uri(path, UriKind.Relative), content);
        Assert.Equal("application/xml; charset=ISO-8859-1", r.Content.Headers.ContentType!.ToString());
        Assert.True(r.Headers.Contains("Request-ID"));
        return (r.StatusCode, CyberTipResponse.TryParse(await r.Content.ReadAsByteArrayAsync())!);
    }

    private static StringContent Xml(string s) => new(s, Encoding.UTF8, "text/xml");

    private static FormUrlEncodedContent Id(string id) => new([new KeyValuePair<string, string>("id", id)]);

    [Fact]
    public async Task Wrong_credentials_get_401_and_code_2000()
    {
        using var anon = new HttpClient { BaseAddress = _server.BaseUri };
        using var r = await anon.GetAsync(new Uri("status", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal(2000, CyberTipResponse.TryParse(await r.Content.ReadAsByteArrayAsync())!.ResponseCode);
    }

    [Fact]
    public async Task Status_names_the_user()
    {
        using var r = await _http.GetAsync(new Uri("status", UriKind.Relative));
        var parsed = CyberTipResponse.TryParse(await r.Content.ReadAsByteArrayAsync())!;
        Assert.Equal(0, parsed.ResponseCode);
        Assert.StartsWith("Remote User : " + _server.Username, parsed.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_documented_flow_and_its_error_codes()
    {
        Assert.Equal((HttpStatusCode.BadRequest, 4110), Code(await Post("submit", Xml("<report><oops"))));
        Assert.Equal((HttpStatusCode.BadRequest, 4100), Code(await Post("submit", Xml("<report><incidentSummary/></report>"))));
        var (_, submit) = await Post("submit", Xml(MinimalReport));
        Assert.Equal(0, submit.ResponseCode);
        var id = submit.ReportId!;

        using var form = new MultipartFormDataContent { { new StringContent(id), "id" }, { new ByteArrayContent([1, 2, 3]), "file", "a.png" } };
        var (_, upload) = await Post("upload", form);
        Assert.Equal("5289df737df57326fcdd22597afb1fac", upload.Hash); // MD5 of 01 02 03
        Assert.Matches("^[0-9a-f]{32}$", upload.FileId);

        var details = CyberTipXml.ToText(CyberTipXml.FileDetails(long.Parse(id, System.Globalization.CultureInfo.InvariantCulture), upload.FileId!, new CyberTipFile(FileViewedByEsp: false)));
        Assert.Equal(0, (await Post("fileinfo", Xml(details))).Response.ResponseCode);
        Assert.Equal(4000, (await Post("fileinfo", Xml(details))).Response.ResponseCode);
        Assert.Equal(5002, (await Post("fileinfo", Xml(details.Replace(upload.FileId!, new string('0', 32), StringComparison.Ordinal)))).Response.ResponseCode);

        var (_, done) = await Post("finish", Id(id));
        Assert.Equal([upload.FileId!], done.FileIds);
        Assert.Equal(5102, (await Post("finish", Id(id))).Response.ResponseCode);
        Assert.Equal(5102, (await Post("retract", Id(id))).Response.ResponseCode);
        Assert.Equal(5001, (await Post("finish", Id("12345"))).Response.ResponseCode);

        var (_, second) = await Post("submit", Xml(MinimalReport));
        Assert.Equal(0, (await Post("retract", Id(second.ReportId!))).Response.ResponseCode);
        Assert.Equal(5101, (await Post("retract", Id(second.ReportId!))).Response.ResponseCode);

        var report = Assert.Single(_server.Reports, r => r.State == FakeReportState.Finished);
        Assert.Equal(3, report.Files[0].Size);
    }

    [Fact]
    public async Task Injected_failures_apply_to_the_chosen_requests_only()
    {
        _server.Inject(new InjectedFailure("submit", FailureMode.ServiceUnavailable, Times: 1, SkipFirst: 1));
        Assert.Equal(0, (await Post("submit", Xml(MinimalReport))).Response.ResponseCode);
        using (var r = await _http.PostAsync(new Uri("submit", UriKind.Relative), Xml(MinimalReport)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        }

        Assert.Equal(0, (await Post("submit", Xml(MinimalReport))).Response.ResponseCode);
        Assert.Equal(2, _server.Reports.Count);
        Assert.Equal([null, "ServiceUnavailable", null], _server.Requests.Select(r => r.Failure));

        _server.Inject(new InjectedFailure("submit", FailureMode.DropAfterBytes, Bytes: 10));
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var r = await _http.PostAsync(new Uri("submit", UriKind.Relative), Xml(MinimalReport));
            await r.Content.ReadAsByteArrayAsync();
        });
        Assert.Equal(3, _server.Reports.Count); // applied before the cut
    }

    private static (HttpStatusCode, int) Code((HttpStatusCode Status, CyberTipResponse Response) r) => (r.Status, r.Response.ResponseCode);
}
