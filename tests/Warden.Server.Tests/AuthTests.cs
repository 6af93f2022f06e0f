using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>Every endpoint of the running app, found from its routing table, with no key, a wrong key and a key of the wrong role.</summary>
public sealed class AuthTests
{
    private static readonly string[] Public = ["/healthz", "/readyz", "/status", "/status/live", "/openapi/{documentName}.json", "/docs/{documentName?}", "/docs",
        "/review", "/review/app.js", "/review/app.css", "/review/models.js", "/review/models.css", "/review/api/login"]; // the console's static page and its login

    private static IEnumerable<(string Method, string Path, string? Policy)> Endpoints(TestServer server)
    {
        var sources = server.App.Services.GetRequiredService<EndpointDataSource>();
        foreach (var endpoint in sources.Endpoints.OfType<RouteEndpoint>())
        {
            var methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"];
            var policy = endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).LastOrDefault(p => p is not null);
            var path = "/" + endpoint.RoutePattern.RawText!.TrimStart('/');
            foreach (var method in methods)
            {
                yield return (method, path, policy);
            }
        }
    }

    private static string Concrete(string pattern) => pattern
        .Replace("{name}", "no_such_bank", StringComparison.Ordinal)
        .Replace("{id:long}", "1", StringComparison.Ordinal)
        .Replace("{entryId:long}", "1", StringComparison.Ordinal)
        .Replace("{documentName}", "v1", StringComparison.Ordinal)
        .Replace("{documentName?}", "v1", StringComparison.Ordinal);

    private static HttpRequestMessage Request(string method, string path) =>
        new(new HttpMethod(method), path.TrimStart('/')) { Content = method is "GET" or "DELETE" ? null : new ByteArrayContent([1, 2, 3]) };

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Every_endpoint_but_health_and_docs_refuses_no_key_a_wrong_key_and_a_wrong_role(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        var endpoints = Endpoints(server).ToList();
        Assert.True(endpoints.Count > 30, $"only {endpoints.Count} endpoints found");
        using var anonymous = server.Client(null);
        using var wrong = server.Client(null);
        wrong.DefaultRequestHeaders.Add("X-Api-Key", "wdn_abcdefgh_" + new string('x', 43));
        var checkedCount = 0;
        foreach (var (method, pattern, policy) in endpoints)
        {
            var path = Concrete(pattern);
            if (Public.Contains(pattern) || Public.Contains(path) || pattern.StartsWith("/docs/", StringComparison.Ordinal))
            {
                Assert.Null(policy);
                var open = await anonymous.SendAsync(Request(method, path));
                Assert.NotEqual(HttpStatusCode.Unauthorized, open.StatusCode);
                continue;
            }

            if (pattern.StartsWith("/review/api/", StringComparison.Ordinal))
            {
                // Review console endpoints take a login session, never an API key (more in Review/ConsoleApiTests).
                Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(Request(method, path))).StatusCode);
                using var adminKey = server.Client(Role.Admin);
                Assert.Equal(HttpStatusCode.Unauthorized, (await adminKey.SendAsync(Request(method, path))).StatusCode);
                continue;
            }

            Assert.True(policy is not null, $"{method} {pattern} has no authorization policy");
            var none = await anonymous.SendAsync(Request(method, path));
            Assert.True(none.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} without a key answered {(int)none.StatusCode}");
            Assert.Equal("application/problem+json", none.Content.Headers.ContentType?.MediaType);

            var bad = await wrong.SendAsync(Request(method, path));
            Assert.True(bad.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} with a wrong key answered {(int)bad.StatusCode}");

            // A role the policy does not admit (admin is admitted everywhere, so never the wrong role).
            var outsider = Enum.GetValues<Role>().First(r => !Roles.Admitted(policy!).Contains(r));
            using var client = server.Client(outsider);
            var forbidden = await client.SendAsync(Request(method, path));
            Assert.True(forbidden.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} with a {Roles.Name(outsider)} key answered {(int)forbidden.StatusCode}");
            Assert.Equal("application/problem+json", forbidden.Content.Headers.ContentType?.MediaType);
            checkedCount++;
        }

        Assert.True(checkedCount > 25);
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_revoked_key_stops_working_and_a_new_key_works_at_once(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var admin = server.Client(Role.Admin);
        var created = await admin.PostAsJsonAsync("v1/keys", new { name = "pipeline", role = "submitter" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        var key = body.GetProperty("key").GetString()!;
        Assert.StartsWith("wdn_", key, StringComparison.Ordinal);

        using var submitter = new HttpClient { BaseAddress = server.BaseAddress };
        submitter.DefaultRequestHeaders.Add("X-Api-Key", key);
        Assert.Equal(HttpStatusCode.OK, (await submitter.GetAsync("v1/match?signal_type=md5&signal=" + new string('a', 32))).StatusCode);

        var list = await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("v1/keys");
        Assert.DoesNotContain(key, list.GetRawText(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"v1/keys/{body.GetProperty("id").GetInt64()}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await submitter.GetAsync("v1/match?signal_type=md5&signal=" + new string('a', 32))).StatusCode);
    }
}
