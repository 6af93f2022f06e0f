using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Every console route (they are left out of the OpenAPI document, so the OpenAPI sweep does not reach them), called
/// by a signed-in admin with hostile route values and bodies: line ends, NUL, traversal, invalid UTF-8, numbers past
/// every integer type, very long values, malformed and wrongly typed JSON. Each answer is below 500 and every error
/// is problem+json.
/// </summary>
public sealed partial class ConsoleHostileRouteTests
{
    private static readonly string[] HostileValues =
        ["%0A", "a%0D%0Ab", "%00", "..%2F..%2Fetc", "%C3%28", "%E2%80%AE", "-1", "0", "99999999999999999999999", "1e5", "0x10", new string('a', 4000)];

    private static readonly string[] HostileBodies =
        ["{not json", "[]", "null", "\"text\"", "{\"decision\":12,\"reason\":[],\"password\":{},\"note\":null}", new string('[', 5000) + new string(']', 5000), "{\"a\":\"\\u0000\\ud800\"}"];

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex Parameter();

    [Fact]
    public async Task Every_console_route_answers_hostile_values_with_a_4xx_problem()
    {
        await using var h = await ReviewHarness.StartAsync();
        using var admin = await ConsoleClient.LoginAsync(h.Server.BaseAddress, "root", ReviewHarness.Password);
        var routes = h.Server.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/review/api", StringComparison.Ordinal) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (Method: m, Pattern: e.RoutePattern.RawText!)))
            .Where(r => !r.Pattern.EndsWith("/logout", StringComparison.Ordinal)) // would end the session the sweep runs in
            .Distinct().ToList();
        Assert.True(routes.Count > 20, $"only {routes.Count} console routes found");

        var calls = 0;
        foreach (var (method, pattern) in routes)
        {
            var urls = Parameter().IsMatch(pattern)
                ? HostileValues.Select(v => Parameter().Replace(pattern, v.Replace("$", "$$", StringComparison.Ordinal)))
                : [pattern + "?limit=99999999999999999999&offset=-1&cursor=%0A&state=%E2%80%AE&q=%00x"];
            foreach (var url in urls)
            {
                var bodies = method is "POST" or "PUT" or "PATCH" or "DELETE" ? HostileBodies : [""];
                foreach (var body in bodies)
                {
                    using var request = new HttpRequestMessage(new HttpMethod(method), url.TrimStart('/'));
                    request.Headers.Add(Warden.Server.Review.ReviewConsole.CsrfHeader, admin.Csrf);
                    if (body.Length > 0)
                    {
                        request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                    }

                    using var response = await admin.Http.SendAsync(request);
                    calls++;
                    var status = (int)response.StatusCode;
                    Assert.True(status < 500, $"{method} {Shorten(url)} with {Shorten(body)}: {status} {await response.Content.ReadAsStringAsync()}");
                    var media = response.Content.Headers.ContentType?.MediaType;
                    if (status >= 400 && !(status == 400 && media is null && url.Contains("%00", StringComparison.Ordinal)))
                    {
                        Assert.True(media == "application/problem+json", $"{method} {Shorten(url)} with {Shorten(body)}: {status} as {media ?? "no content type"}");
                    }
                }
            }
        }

        // The session survived the sweep (no route logged the admin out or broke the store).
        Assert.Equal(HttpStatusCode.OK, (await admin.Http.GetAsync("review/api/queue")).StatusCode);
        Assert.True(calls > 200, $"only {calls} calls");
    }

    private static string Shorten(string s) => s.Length > 80 ? s[..80] + "…" : s;
}
