using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Tests.Exchanges;
using Warden.Server.Auth;
using Warden.Server.Exchanges;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Exchanges;

/// <summary>
/// The server side of exchanges: scheduled fetches into the live bank, /v1/exchanges, HMA's /c/exchange routes with
/// HMA's shapes, metrics, the feedback outbox, and two nodes on one PostgreSQL with one fetcher.
/// </summary>
public sealed class ExchangeApiTests
{
    public static TheoryData<SqlDialect> Dialects => TestDatabases.Dialects;

    private static string Variable(FakeNcmecServer server)
    {
        var name = "WARDEN_TEST_NCMEC_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        Environment.SetEnvironmentVariable(name, server.User + ":" + server.Password);
        return name;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> WaitAsync(HttpClient client, string url, Func<JsonElement, bool> done, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = await client.GetFromJsonAsync<JsonElement>(url);
            if (done(last))
            {
                return last;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{url} never reached the expected state; last: {last}");
    }

    private static void AssertBankEqualsFeed(BankStore banks, string bank, FakeNcmecServer server)
    {
        var expected = FeedModel.Expected(server.Live());
        var live = banks.ExportEntries(banks.RequireBank(bank).Id).ToDictionary(e => e.ExternalId!, StringComparer.Ordinal);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), live.Keys.Order(StringComparer.Ordinal));
        Assert.All(expected, e => Assert.Equal(e.Value.Signal, live[e.Key].Signal));
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task An_exchange_added_through_the_API_fills_its_bank_on_schedule_and_HMA_routes_see_it(SqlDialect dialect)
    {
        Environment.SetEnvironmentVariable("Warden__Exchanges__PollSeconds", "0.2");
        await using var server = await TestServer.StartAsync(dialect);
        await using var ncmec = new FakeNcmecServer { PageSize = 50 };
        var variable = Variable(ncmec);
        var t0 = DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeSeconds();
        FeedHistory.Fill(ncmec, new Random(31), t0, entries: 300, spanSeconds: 40_000);
        var start = DateTimeOffset.FromUnixTimeSeconds(t0).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        using var curator = server.Client(Role.Curator);

        using (var submitter = server.Client(Role.Submitter))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await submitter.GetAsync("v1/exchanges")).StatusCode);
        }

        var bad = await curator.PostAsync("v1/exchanges", Json("""{"name":"x","type":"ncmec","bank":"b","config":{"environment":"Moon","credentials_env":"V"}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType!.MediaType);
        Assert.Contains("Unknown NCMEC environment", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.PostAsync("v1/exchanges", Json("{\"name\":"))).StatusCode);

        var created = await curator.PostAsync("v1/exchanges", Json($$$"""
            {"name":"ncmec-api","type":"ncmec","bank":"ncmec-bank","interval_seconds":3600,"feedback":true,
             "config":{"environment":"test_Industry","base_url":"{{{ncmec.BaseUrl}}}","credentials_env":"{{{variable}}}","start_time":"{{{start}}}"}}
            """));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await curator.PostAsync("v1/exchanges", Json($$$"""{"name":"ncmec-api","type":"ncmec","bank":"b","config":{"environment":"Industry","credentials_env":"V"}}"""))).StatusCode);

        var status = await WaitAsync(curator, "v1/exchanges/ncmec-api/status", s => s.GetProperty("status").GetProperty("last_succeeded").ValueKind == JsonValueKind.True);
        Assert.True(status.GetProperty("status").GetProperty("entries_fetched").GetInt64() > 0);
        var banks = server.App.Services.GetRequiredService<BankStore>();
        AssertBankEqualsFeed(banks, "ncmec-bank", ncmec);

        // Fetch now: the next tick on any node.
        Assert.Equal(HttpStatusCode.Accepted, (await curator.PostAsync("v1/exchanges/ncmec-api/fetch", null)).StatusCode);
        var last = status.GetProperty("status").GetProperty("last_fetch").GetDateTimeOffset();
        await WaitAsync(curator, "v1/exchanges/ncmec-api/status", s => s.GetProperty("status").GetProperty("last_fetch").GetDateTimeOffset() > last);

        // HMA's routes and shapes.
        Assert.Equal(["ncmec", "url_list", "stopncii", "fb_threatexchange", "peer"], (await curator.GetFromJsonAsync<string[]>("c/exchanges/apis"))!);
        Assert.Contains("ncmec-api", (await curator.GetFromJsonAsync<string[]>("c/exchanges"))!);
        var cfg = await curator.GetFromJsonAsync<JsonElement>("c/exchange/ncmec-api");
        Assert.Equal("ncmec", cfg.GetProperty("api").GetString());
        Assert.Equal("https://exttest.cybertip.org/hashsharing", cfg.GetProperty("environment").GetString());
        Assert.True(cfg.GetProperty("enabled").GetBoolean());
        var hmaStatus = await curator.GetFromJsonAsync<JsonElement>("c/exchange/ncmec-api/status");
        Assert.True(hmaStatus.GetProperty("last_fetch_succeeded").GetBoolean());
        Assert.True(hmaStatus.GetProperty("checkpoint_ts").GetInt64() > t0);
        Assert.True(hmaStatus.GetProperty("fetched_items").GetInt64() > 0);
        var schema = await curator.GetFromJsonAsync<JsonElement>("c/exchanges/api/ncmec/schema");
        var env = schema.GetProperty("config_schema").GetProperty("fields").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "environment");
        Assert.Equal("enum", env.GetProperty("type").GetString());
        Assert.Contains("Industry", env.GetProperty("choices").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(2, schema.GetProperty("credentials_schema").GetProperty("fields").GetArrayLength());
        var api = await curator.GetFromJsonAsync<JsonElement>("c/exchanges/api/ncmec");
        Assert.True(api.GetProperty("supports_authentification").GetBoolean());
        Assert.True(api.GetProperty("has_set_authentification").GetBoolean());
        var creds = await curator.PostAsync("c/exchanges/api/ncmec", Json("""{"credential_json":{"user":"u","password":"p"}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, creds.StatusCode);
        Assert.Contains("credentials_env", await creds.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var hmaCreate = await curator.PostAsync("c/exchanges", Json($$$"""{"bank":"NCMEC_TWO","api":"ncmec","api_json":{"environment":"https://exttest.cybertip.org/hashsharing","base_url":"{{{ncmec.BaseUrl}}}","credentials_env":"{{{variable}}}","enabled":false}}"""));
        Assert.Equal(HttpStatusCode.Created, hmaCreate.StatusCode);
        Assert.Equal("Created successfully", (await hmaCreate.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("message").GetString());
        Assert.False((await curator.GetFromJsonAsync<JsonElement>("c/exchange/NCMEC_TWO")).GetProperty("enabled").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.PostAsync("c/exchanges", Json("""{"bank":"lower_case","api":"ncmec","api_json":{}}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.PostAsync("c/exchanges", Json("""{"bank":"NCMEC_THREE\n","api":"ncmec","api_json":{}}"""))).StatusCode);
        var put = await curator.PutAsync("c/exchange/NCMEC_TWO", Json("""{"enabled":true}"""));
        Assert.True((await put.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("enabled").GetBoolean());
        Assert.Equal("Exchange deleted", (await (await curator.DeleteAsync("c/exchange/NCMEC_TWO")).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await curator.GetAsync("c/exchange/NCMEC_TWO")).StatusCode);

        // A curator's feedback is queued once per key and sent once.
        var fb = """{"entry":"9003-e-1","signal_type":"md5","opinion":"true_positive"}""";
        Assert.Equal(HttpStatusCode.Accepted, (await curator.PostAsync("v1/exchanges/ncmec-api/feedback", Json(fb))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await curator.PostAsync("v1/exchanges/ncmec-api/feedback", Json(fb))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.PostAsync("v1/exchanges/ncmec-api/feedback", Json("""{"entry":"9003-e-1","signal_type":"blake3","opinion":"true_positive"}"""))).StatusCode);
        var outbox = await WaitAsync(curator, "v1/exchanges/ncmec-api/feedback", o => o.GetArrayLength() == 1 && o[0].GetProperty("status").GetString() == "sent");
        Assert.Equal(1, outbox[0].GetProperty("attempts").GetInt32());
        Assert.Equal(["/v2/entries/9003/e-1/MD5/feedback"], ncmec.Feedback.Select(f => f.Path));

        // Metrics per exchange.
        using var admin = server.Client(Role.Admin);
        var metrics = await admin.GetStringAsync("metrics");
        Assert.Contains("warden_exchange_last_success_timestamp_seconds{exchange=\"ncmec-api\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("warden_exchange_lag_seconds{exchange=\"ncmec-api\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("warden_exchange_entries_fetched{exchange=\"ncmec-api\"}", metrics, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NoContent, (await curator.DeleteAsync("v1/exchanges/ncmec-api")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await curator.GetAsync("v1/exchanges/ncmec-api")).StatusCode);
        Environment.SetEnvironmentVariable(variable, null);
    }

    [SkippableFact]
    public async Task Two_nodes_on_one_PostgreSQL_run_one_fetcher()
    {
        Environment.SetEnvironmentVariable("Warden__Exchanges__PollSeconds", "0.2");
        await using var db = await TestDatabases.CreatePostgresAsync();
        await using var ncmec = new FakeNcmecServer { PageSize = 100, PageDelay = TimeSpan.FromMilliseconds(30) };
        var variable = Variable(ncmec);
        var t0 = DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeSeconds();
        FeedHistory.Fill(ncmec, new Random(41), t0, entries: 1500, spanSeconds: 40_000);
        var start = DateTimeOffset.FromUnixTimeSeconds(t0).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        using (var banks = BankStore.Open(db.Target))
        {
            var bank = banks.CreateBank("shared");
            ExchangeStore.Open(banks.Database).Create("shared-feed", "ncmec", bank.Id, $$"""{"environment":"test_Industry","base_url":"{{ncmec.BaseUrl}}","credentials_env":"{{variable}}","start_time":"{{start}}","adaptive_windows":false,"end_lag_seconds":5}""", intervalSeconds: 3600);
        }

        await using var a = await TestServer.StartAsync(db.Target);
        await using var b = await TestServer.StartAsync(db.Target);
        using var client = a.Client(Role.Curator);
        await WaitAsync(client, "v1/exchanges/shared-feed/status", s => s.GetProperty("status").GetProperty("last_succeeded").ValueKind == JsonValueKind.True, 120);
        await Task.Delay(1500); // both schedulers tick several more times

        Assert.Equal(1, ncmec.MaxInFlight);
        var windows = ncmec.Requests.Count(r => r.PathAndQuery.StartsWith("/v2/entries?from=", StringComparison.Ordinal) && !r.PathAndQuery.Contains("start=", StringComparison.Ordinal));
        Assert.Equal(1, windows); // one pass in all, on one node
        AssertBankEqualsFeed(b.App.Services.GetRequiredService<BankStore>(), "shared", ncmec);
        Assert.Null(b.App.Services.GetRequiredService<ExchangeStore>().State(b.App.Services.GetRequiredService<ExchangeStore>().Require("shared-feed").Id).LeaseOwner);
        Environment.SetEnvironmentVariable(variable, null);
        _ = a.App.Services.GetRequiredService<ExchangeOptions>();
    }
}
