using System.Net;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Warden.Server.Api;
using Warden.Server.Auth;
using Warden.Storage;
using static Warden.Server.Tests.HttpAssert;

namespace Warden.Server.Tests;

/// <summary>
/// Inputs are checked before anything happens (a refused request leaves no match record, webhook, case, flood
/// count or metric), and <c>?url=</c> fetches are allowed by host:port only.
/// </summary>
public sealed class UploadValidationTests
{
    /// <summary>Polls until <paramref name="done"/> holds (or 10 s pass) and returns the last value.</summary>
    internal static async Task<JsonElement> EventuallyAsync(Func<Task<JsonElement>> get, Func<JsonElement, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var value = await get();
            if (done(value) || DateTime.UtcNow > deadline)
            {
                return value;
            }

            await Task.Delay(50);
        }
    }

    private static IEnumerable<string> BadQueries()
    {
        yield return "uploader_ip=not-an-ip";
        yield return "uploader_ip=999.1.1.1";
        yield return "uploader_ip=10.0.0.1%2F24";
        yield return "content_url=not%20a%20url";
        yield return "content_url=https://example.org/" + new string('a', 2100);
        yield return "uploaded_at=yesterday";
        yield return "file_name=" + new string('f', 256);
        yield return "uploader_id=" + new string('u', 257);
        yield return "dihedral=maybe";
        yield return "provenance=perhaps";
        yield return "uploader_id=ok&uploader_ip=1.2.3.4&uploaded_at=2026-01-01T00:00:00Z&content_url=relative/path";
    }

    [Fact]
    public async Task Bad_parameters_are_refused_before_any_side_effect()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var admin = server.Client(Role.Admin);
        var bank = "sfx-" + Guid.NewGuid().ToString("N")[..8];
        await Json(await admin.PostAsJsonAsync("v1/banks", new { name = bank, kind = "block", action = new { quarantine = true, notify = true } }), HttpStatusCode.Created);
        await Json(await admin.PostAsJsonAsync("v1/webhooks", new { url = "http://127.0.0.1:9/hook" }), HttpStatusCode.Created);
        var image = Media.Jpeg(31);
        var pdq = (await Json(await admin.PostAsync("v1/hash", new ByteArrayContent(image)))).GetProperty("pdq").GetProperty("hash").GetString();
        await Json(await admin.PostAsJsonAsync($"v1/banks/{bank}/entries", new { signal_type = "pdq", signal = pdq }), HttpStatusCode.Created);
        await EventuallyAsync(async () => await Json(await admin.GetAsync("m/index/status")), s => s.GetProperty("pdq").GetProperty("size").GetInt32() >= 1);

        using var submitter = server.Client(Role.Submitter);
        foreach (var query in BadQueries())
        {
            using var response = await submitter.PostAsync("v1/match?" + query, new ByteArrayContent(image));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{query}: {(int)response.StatusCode} {text}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        async Task<(int Deliveries, int Cases, bool Metric, int Flags)> SideEffectsAsync()
        {
            var deliveries = (await Json(await admin.GetAsync("v1/webhooks/deliveries"))).GetArrayLength();
            var cases = server.App.Services.GetRequiredService<Warden.Review.ReviewService>().Store.Events().Count();
            var metrics = await admin.GetStringAsync("metrics");
            var flags = (await Json(await admin.GetAsync("v1/flags?all=true"))).GetArrayLength();
            return (deliveries, cases, metrics.Contains($"bank=\"{bank}\"", StringComparison.Ordinal), flags);
        }

        Assert.Equal((0, 0, false, 0), await SideEffectsAsync());

        // The same upload with good parameters does all of it: the checks above could see side effects.
        var ok = await Json(await submitter.PostAsync("v1/match?uploader_id=u1&uploader_ip=192.0.2.7&uploaded_at=2026-01-01T00:00:00Z&file_name=a.jpg", new ByteArrayContent(image)));
        Assert.True(ok.GetProperty("matched").GetBoolean(), ok.GetRawText());
        var after = await SideEffectsAsync();
        Assert.True(after.Deliveries == 1 && after.Metric, $"{after}");
    }

    [Fact]
    public async Task Importing_a_list_the_server_cannot_type_is_a_400_and_imports_nothing()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var curator = server.Client(Role.Curator);
        await Json(await curator.PostAsJsonAsync("v1/banks", new { name = "lists" }), HttpStatusCode.Created);
        var sha256s = string.Join('\n', Enumerable.Range(0, 30).Select(i => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)))));
        foreach (var query in new[] { "format=plain", string.Empty, "format=plain&signal_type=nonsense", "format=csv&signal_type=auto", "format=plain&signal_type=%20" })
        {
            using var response = await curator.PostAsync("v1/banks/lists/import?" + query, new StringContent(sha256s));
            var problem = await Json(response, HttpStatusCode.BadRequest);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.True(problem.GetProperty("code").GetString() is "invalid_request" or "invalid_list", $"{query}: {problem}");
        }

        Assert.Equal(0, (await Json(await curator.GetAsync("v1/banks/lists"))).GetProperty("entries").GetInt64());
        var ok = await Json(await curator.PostAsync("v1/banks/lists/import?format=plain&signal_type=sha256", new StringContent(sha256s)));
        Assert.Equal(30, ok.GetProperty("added").GetInt64());
    }

    [Fact]
    public async Task Url_fetches_are_allowed_by_host_and_port()
    {
        var image = Media.Jpeg(12);
        await using var origin = await ImageOriginAsync(image);
        var other = await ImageOriginAsync(image);
        await using (other)
        {
            await using var server = await TestServer.StartAsync(SqlDialect.Sqlite, o =>
            {
                o.AllowedFetchHosts.Add($"127.0.0.1:{origin.Port}");
                o.AllowedFetchHosts.Add("localhost"); // no port: the scheme's default only
            });
            using var client = server.Client(Role.Submitter);
            var hashed = await Json(await client.GetAsync($"h/hash?url=http://127.0.0.1:{origin.Port}/x.jpg"));
            Assert.Equal(64, hashed.GetProperty("pdq").GetString()!.Length);

            // Another port of an allowed host, and a port-less entry used with a port, are refused before any connection.
            foreach (var url in new[] { $"http://127.0.0.1:{other.Port}/x.jpg", $"http://localhost:{other.Port}/x.jpg", "http://127.0.0.1:1/x.jpg", "http://127.0.0.1/x.jpg", $"http://localhost:{origin.Port}/x.jpg" })
            {
                foreach (var path in new[] { "h/hash?url=", "m/lookup?url=" })
                {
                    var refused = await client.GetAsync(path + Uri.EscapeDataString(url));
                    Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, $"{path}{url}: {(int)refused.StatusCode}");
                    Assert.Equal("fetch_refused", (await Json(refused, HttpStatusCode.Forbidden)).GetProperty("code").GetString());
                }
            }

            Assert.Equal(0, other.Requests);
        }
    }

    [FsCheck.Xunit.Property(MaxTest = 1000)]
    public Property Allowlist_entries_match_exactly_their_host_and_port()
    {
        var hosts = new[] { "a.example", "b.example", "127.0.0.1", "::1" };
        var ports = new int?[] { null, 80, 443, 8080, 9000 };
        var gen = from h in Gen.Elements(hosts)
                  from eh in Gen.Elements(hosts)
                  from p in Gen.Elements(ports)
                  from ep in Gen.Elements(ports)
                  from https in Gen.Elements(false, true)
                  select (h, eh, p, ep, https);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (host, entryHost, port, entryPort, https) = t;
            var scheme = https ? "https" : "http";
            var authority = (host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host) + (port is { } p ? $":{p}" : string.Empty);
            var uri = new Uri($"{scheme}://{authority}/x");
            var entry = entryPort is { } ep ? (entryHost.Contains(':', StringComparison.Ordinal) ? $"[{entryHost}]:{ep}" : $"{entryHost}:{ep}") : entryHost;
            var effective = port ?? (https ? 443 : 80);
            var expected = host == entryHost && (entryPort is { } e ? e == effective : effective == (https ? 443 : 80));
            Assert.Equal(expected, UrlFetcher.IsAllowed(uri, [entry]));
            Assert.Equal(expected, UrlFetcher.IsAllowed(uri, ["garbage:port", "[broken", ":80", "a.example:0", entry.ToUpperInvariant()]));
        });
    }

    private static async Task<Origin> ImageOriginAsync(byte[] image)
    {
        var app = WebApplication.CreateSlimBuilder(["--urls", "http://127.0.0.1:0"]).Build();
        var origin = new Origin(app);
        app.MapGet("/x.jpg", () =>
        {
            Interlocked.Increment(ref origin.Count);
            return Results.Bytes(image, "image/jpeg");
        });
        await app.StartAsync();
        origin.Port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        return origin;
    }

    private sealed class Origin(WebApplication app) : IAsyncDisposable
    {
#pragma warning disable SA1401, CA1051 // a counter the handler increments
        public int Count;
#pragma warning restore SA1401, CA1051

        public int Port { get; set; }

        public int Requests => Volatile.Read(ref Count);

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
