using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Warden.Server.Api;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Exchanges;

/// <summary>
/// ROOST Coop as a client of the HMA-compatibility listener, with Coop's exact requests (roostorg/coop
/// server/services/hmaService/index.ts): no credentials at all, its default base URL ending in '/' (so every path
/// starts "//"), enabled_ratio as a string on bank create and a number on update, DELETE /c/bank/NAME, 404 on
/// GET /c/bank/NAME after a delete, and every body — 401, 404 and 405 included — parsed as JSON.
/// </summary>
public sealed class HmaListenerTests
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    // Coop's fetchHTTP with handleResponseBody 'as-json': the body is parsed before the status is looked at.
    private static async Task<(HttpStatusCode Status, JsonElement Body)> CoopAsync(HttpClient http, HttpMethod method, string url, string? json = null, HttpContent? content = null)
    {
        Assert.StartsWith("//", new Uri(url).AbsolutePath, StringComparison.Ordinal);
        using var request = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        else if (content is not null)
        {
            request.Content = content;
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text); // throws (fails the test) on any body that is not JSON
        return (response.StatusCode, doc.RootElement.Clone());
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Coop_works_unchanged_against_the_listener_and_the_main_address_still_needs_a_key(SqlDialect dialect)
    {
        var port = FreePort();
        await using var server = await TestServer.StartAsync(dialect, o =>
        {
            o.HmaUrls = $"http://127.0.0.1:{port}";
            o.HmaRole = "curator";
            o.HmaIdentity = "coop";
        });
        var hmaServiceUrl = $"http://127.0.0.1:{port}/"; // Coop's HMA_SERVICE_URL form (its default ends in '/')
        using var coop = new HttpClient { Timeout = TimeSpan.FromSeconds(30) }; // no Authorization, no X-Api-Key

        // createBank without an exchange: POST {url}/c/banks {name, enabled_ratio: "1"} (a string).
        var (status, body) = await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/banks", """{"name":"COOP_ORG1_MY_BANK","enabled_ratio":"1"}""");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("COOP_ORG1_MY_BANK", body.GetProperty("name").GetString());
        Assert.Equal(1.0, body.GetProperty("matching_enabled_ratio").GetDouble());
        (status, body) = await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/banks", """{"name":"COOP_ORG1_OFF","enabled_ratio":"0"}""");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(0.0, body.GetProperty("matching_enabled_ratio").GetDouble());
        Assert.Equal(HttpStatusCode.BadRequest, (await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/banks", """{"name":"COOP_ORG1_BAD","enabled_ratio":"lots"}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/banks", """{"name":7}""")).Status);

        // getBank / listBanks: GET {url}/c/bank/NAME (listBanks sends a Content-Type header on a GET).
        (status, _) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/bank/COOP_ORG1_MY_BANK");
        Assert.Equal(HttpStatusCode.OK, status);

        // updateBank: PUT {url}/c/bank/NAME {enabled_ratio: 0.5} (a number here).
        (status, body) = await CoopAsync(coop, HttpMethod.Put, $"{hmaServiceUrl}/c/bank/COOP_ORG1_MY_BANK", """{"enabled_ratio":0.5}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1.0, body.GetProperty("matching_enabled_ratio").GetDouble());

        // addContentToBank with a file: multipart, the field named by content type, plus content_id and note.
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(Media.Jpeg(5));
        form.Add(file, "photo", "blob");
        form.Add(new StringContent("item-1"), "content_id");
        form.Add(new StringContent("added from Coop"), "note");
        (status, body) = await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/bank/COOP_ORG1_MY_BANK/content", content: form);
        Assert.Equal(HttpStatusCode.Created, status);
        var pdq = body.GetProperty("signals").GetProperty("pdq").GetString()!;
        var contentId = body.GetProperty("id").GetInt64();

        // lookupContent: GET {url}/m/lookup?signal=&signal_type=pdq -> {BANK: [{bank_content_id, distance}]}
        var (_, lookup) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/m/lookup?signal={pdq}&signal_type=pdq");
        for (var i = 0; i < 100 && !lookup.TryGetProperty("COOP_ORG1_MY_BANK", out _); i++)
        {
            await Task.Delay(100);
            (_, lookup) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/m/lookup?signal={pdq}&signal_type=pdq");
        }

        Assert.Equal(contentId, lookup.GetProperty("COOP_ORG1_MY_BANK")[0].GetProperty("bank_content_id").GetInt64());

        // Exchanges: apis, api info, schema, create (POST /c/exchanges makes the bank too), then PUT enabled_ratio.
        (status, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/exchanges/apis");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("ncmec", body.EnumerateArray().Select(a => a.GetString()));
        (status, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/exchanges/api/{Uri.EscapeDataString("ncmec")}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("supports_authentification").GetBoolean());
        (status, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/exchanges/api/ncmec/schema");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("config_schema").GetProperty("fields").GetArrayLength() > 0);
        (status, _) = await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/exchanges", """{"bank":"COOP_ORG1_NCMEC","api":"ncmec","api_json":{"environment":"https://exttest.cybertip.org/hashsharing","base_url":"http://127.0.0.1:9/hashsharing","credentials_env":"COOP_TEST_UNSET","enabled":false}}""");
        Assert.Equal(HttpStatusCode.Created, status);
        (status, _) = await CoopAsync(coop, HttpMethod.Put, $"{hmaServiceUrl}/c/bank/COOP_ORG1_NCMEC", """{"enabled_ratio":0.25}""");
        Assert.Equal(HttpStatusCode.OK, status);
        (status, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/exchange/{Uri.EscapeDataString("COOP_ORG1_NCMEC")}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ncmec", body.GetProperty("api").GetString());
        (status, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/exchange/COOP_ORG1_NCMEC/status");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.TryGetProperty("fetched_items", out _));

        // setExchangeCredentials: refused (Warden never stores credentials), as JSON.
        (status, body) = await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/exchanges/api/ncmec", """{"credential_json":{"user":"u","password":"p"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);

        // deleteBank: DELETE {url}/c/bank/NAME; then getBank's GET says 404 (JSON) and lookups stop matching.
        (status, _) = await CoopAsync(coop, HttpMethod.Delete, $"{hmaServiceUrl}/c/bank/COOP_ORG1_MY_BANK");
        Assert.Equal(HttpStatusCode.OK, status);
        (status, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/bank/COOP_ORG1_MY_BANK");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal(404, body.GetProperty("status").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, (await CoopAsync(coop, HttpMethod.Delete, $"{hmaServiceUrl}/c/bank/COOP_ORG1_MY_BANK")).Status);
        for (var i = 0; i < 100 && lookup.TryGetProperty("COOP_ORG1_MY_BANK", out _); i++)
        {
            await Task.Delay(100);
            (_, lookup) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/m/lookup?signal={pdq}&signal_type=pdq");
        }

        Assert.False(lookup.TryGetProperty("COOP_ORG1_MY_BANK", out _));
        (_, body) = await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/banks");
        Assert.DoesNotContain("COOP_ORG1_MY_BANK", body.EnumerateArray().Select(b => b.GetProperty("name").GetString()));
        Assert.DoesNotContain(body.EnumerateArray(), b => b.GetProperty("name").GetString()!.StartsWith('~'));

        // The name is free again (Coop's rename creates the new bank, then deletes the old one).
        Assert.Equal(HttpStatusCode.Created, (await CoopAsync(coop, HttpMethod.Post, $"{hmaServiceUrl}/c/banks", """{"name":"COOP_ORG1_MY_BANK","enabled_ratio":"1"}""")).Status);

        // Deleting an exchange's bank ends the exchange too.
        Assert.Equal(HttpStatusCode.OK, (await CoopAsync(coop, HttpMethod.Delete, $"{hmaServiceUrl}/c/bank/COOP_ORG1_NCMEC")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/exchange/COOP_ORG1_NCMEC")).Status);

        // 404 and 405 answers are JSON too; the listener serves HMA's routes only.
        Assert.Equal(HttpStatusCode.NotFound, (await CoopAsync(coop, HttpMethod.Get, $"{hmaServiceUrl}/c/no_such_route")).Status);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await CoopAsync(coop, HttpMethod.Patch, $"{hmaServiceUrl}/c/banks", "{}")).Status);
        foreach (var path in new[] { "/v1/banks", "/v1/keys", "/metrics", "/review/api/queue", "/openapi/v1.json", "/" })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await CoopAsync(coop, HttpMethod.Get, hmaServiceUrl + path)).Status);
        }

        // The main address is unchanged: no key, a JSON 401; the listener's banks are there for keyed clients.
        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };
        using (var r = await anonymous.GetAsync("c/banks"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            Assert.Equal(401, doc.RootElement.GetProperty("status").GetInt32());
        }

        using var admin = server.Client(Role.Admin);
        Assert.Contains("COOP_ORG1_MY_BANK", await admin.GetStringAsync("c/banks"), StringComparison.Ordinal);

        // Every change through the listener is audited as the configured identity.
        var audit = JsonDocument.Parse(await admin.GetStringAsync("v1/audit?action=hma.request")).RootElement;
        var subjects = audit.EnumerateArray().Select(a => a.GetProperty("subject").GetString()).ToList();
        Assert.Contains("POST /c/banks", subjects);
        Assert.Contains("DELETE /c/bank/COOP_ORG1_MY_BANK", subjects);
        Assert.Contains("PUT /c/bank/COOP_ORG1_MY_BANK", subjects);
        Assert.All(audit.EnumerateArray(), a => Assert.Equal("hma-listener (coop)", a.GetProperty("actor").GetString()));
        Assert.DoesNotContain(audit.EnumerateArray(), a => a.GetProperty("subject").GetString()!.StartsWith("GET", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://127.0.0.1", "curator")] // no port
    [InlineData("http://127.0.0.1:0", "curator")] // a port the OS picks cannot be told apart
    [InlineData("ftp://127.0.0.1:9876", "curator")]
    [InlineData("http://127.0.0.1:9876/hma", "curator")]
    [InlineData("http://127.0.0.1:99999", "curator")]
    [InlineData("not a url", "curator")]
    [InlineData(";", "curator")]
    [InlineData("http://127.0.0.1:9876", "admin")] // HMA's API needs no more than curator
    [InlineData("http://127.0.0.1:9876", "reviewer")]
    [InlineData("http://127.0.0.1:9876", "root")]
    [InlineData("http://127.0.0.1:8080", "curator")] // the main address's port
    public void Bad_listener_settings_are_refused_with_a_message(string urls, string role)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => HmaListener.From(new ServerOptions { HmaUrls = urls, HmaRole = role }, "http://127.0.0.1:8080"));
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
    }

    [Theory]
    [InlineData("//c/banks", "/c/banks")]
    [InlineData("///c//bank///X/content", "/c/bank/X/content")]
    [InlineData("/c/banks", "/c/banks")]
    [InlineData("//", "/")]
    public void Repeated_slashes_are_collapsed(string path, string expected) => Assert.Equal(expected, HmaListener.CollapseSlashes(path));

    [Fact]
    public void The_listener_is_off_unless_configured() => Assert.Null(HmaListener.From(new ServerOptions(), "http://127.0.0.1:8080"));
}
