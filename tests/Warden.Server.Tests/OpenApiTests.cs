using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Tests;

/// <summary>
/// The served OpenAPI document is complete enough to generate clients from, says what the server really does
/// (every error it returns is documented with the problem schema), lints clean, and a client generated from it
/// works against the live server. The Node tools come from scripts/test (.tools/node); those tests skip without them.
/// </summary>
public sealed class OpenApiTests
{
    private static readonly string[] Methods = ["get", "post", "put", "patch", "delete"];

    private static async Task<TestServer> StartAsync() =>
        await TestServer.StartAsync(SqlDialect.Sqlite, o => o.RateLimitPerSecond = 100_000);

    private static async Task<JsonElement> DocumentAsync(TestServer server)
    {
        using var anonymous = server.Client(null);
        using var response = await anonymous.GetAsync("openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static IEnumerable<(string Path, string Method, JsonElement Operation)> Operations(JsonElement document)
    {
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var method in Methods)
            {
                if (path.Value.TryGetProperty(method, out var operation))
                {
                    yield return (path.Name, method, operation);
                }
            }
        }
    }

    [Fact]
    public async Task Every_operation_has_an_id_described_parameters_request_bodies_and_problem_errors()
    {
        await using var server = await StartAsync();
        var document = await DocumentAsync(server);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var schemas = document.GetProperty("components").GetProperty("schemas");
        Assert.True(schemas.TryGetProperty("Problem", out _), "no Problem schema");

        var count = 0;
        foreach (var (path, method, operation) in Operations(document))
        {
            count++;
            var where = $"{method.ToUpperInvariant()} {path}";
            Assert.True(ids.Add(operation.GetProperty("operationId").GetString()!), $"{where}: duplicate operationId");
            foreach (var parameter in operation.TryGetProperty("parameters", out var ps) ? ps.EnumerateArray() : default)
            {
                Assert.False(string.IsNullOrWhiteSpace(parameter.TryGetProperty("description", out var d) ? d.GetString() : null), $"{where}: parameter {parameter.GetProperty("name")} has no description");
                if (parameter.GetProperty("in").GetString() == "path")
                {
                    Assert.True(parameter.GetProperty("required").GetBoolean(), $"{where}: path parameter not required");
                }
            }

            var responses = operation.GetProperty("responses");
            var errors = responses.EnumerateObject().Where(r => r.Name[0] is '4' or '5').ToList();
            Assert.Contains(errors, r => r.Name[0] == '4');
            Assert.Contains(errors, r => r.Name == "500");
            foreach (var error in errors.Where(e => path is not "/readyz" and not "/status"))
            {
                var schema = error.Value.GetProperty("content").GetProperty("application/problem+json").GetProperty("schema");
                Assert.Equal("#/components/schemas/Problem", schema.GetProperty("$ref").GetString());
            }

            // Every operation that reads the body says so, with each media type it takes.
            if (method is "post" or "put" or "patch" && operation.TryGetProperty("requestBody", out var body))
            {
                Assert.True(body.GetProperty("content").EnumerateObject().Any(), $"{where}: empty request body");
            }
        }

        Assert.True(count > 50, $"only {count} operations");
        foreach (var upload in new[] { "/v1/hash", "/v1/match", "/v1/provenance", "/h/hash", "/m/lookup", "/c/bank/{name}/content" })
        {
            var content = document.GetProperty("paths").GetProperty(upload).GetProperty("post").GetProperty("requestBody").GetProperty("content");
            Assert.Equal("binary", content.GetProperty("application/octet-stream").GetProperty("schema").GetProperty("format").GetString());
            Assert.True(content.TryGetProperty("multipart/form-data", out _), $"{upload}: no multipart body");
        }

        var import = document.GetProperty("paths").GetProperty("/v1/banks/{name}/import").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        Assert.True(import.TryGetProperty("text/csv", out _));
        Assert.True(document.GetProperty("paths").GetProperty("/v1/models/scan").GetProperty("post").TryGetProperty("requestBody", out _));

        // Tags: unique names, each described.
        var tags = document.GetProperty("tags").EnumerateArray().Select(t => (Name: t.GetProperty("name").GetString()!, Description: t.GetProperty("description").GetString())).ToList();
        Assert.Equal(tags.Count, tags.Select(t => t.Name).Distinct(StringComparer.Ordinal).Count());
        Assert.All(tags, t => Assert.False(string.IsNullOrWhiteSpace(t.Description)));

        // Request schemas: only what the handler needs is required; a member that may be null is optional.
        foreach (var schema in schemas.EnumerateObject().Where(s => s.Name.EndsWith("Request", StringComparison.Ordinal)))
        {
            var required = schema.Value.TryGetProperty("required", out var r) ? r.EnumerateArray().Select(x => x.GetString()!).ToHashSet() : [];
            foreach (var property in schema.Value.GetProperty("properties").EnumerateObject())
            {
                var raw = property.Value.GetRawText();
                var nullable = raw.Contains("\"null\"", StringComparison.Ordinal);
                Assert.False(nullable && required.Contains(property.Name), $"{schema.Name}.{property.Name} may be null but is required");
            }
        }

        // Counts are numbers: no "integer or string" unions that give generated clients number | string.
        Assert.DoesNotContain("\"pattern\": \"^-?(?:0|[1-9]\\\\d*)$\"", document.GetRawText(), StringComparison.Ordinal);
        Assert.False(document.GetProperty("servers")[0].GetProperty("url").GetString()!.EndsWith('/'));
    }

    /// <summary>
    /// Calls every documented operation as a client would get it wrong (no key, a role too low, unknown ids,
    /// a malformed body, missing parameters) and checks that each error the server answers is documented for that
    /// operation and is problem+json: the document and the server cannot drift apart.
    /// </summary>
    [Fact]
    public async Task Every_error_the_server_answers_is_documented_for_its_operation()
    {
        await using var server = await StartAsync();
        var document = await DocumentAsync(server);
        using var admin = server.Client(Role.Admin);
        using var anonymous = server.Client(null);
        using var submitter = server.Client(Role.Submitter);
        var checkedErrors = 0;
        foreach (var (path, method, operation) in Operations(document))
        {
            if (path is "/readyz" or "/status")
            {
                continue; // 503 there is the readiness answer itself, not an error
            }

            var documented = operation.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
            foreach (var (client, url, body) in Variants(path, admin, anonymous, submitter))
            {
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), url.TrimStart('/'));
                if (method is "post" or "put" or "patch")
                {
                    request.Content = body;
                }

                using var response = await client.SendAsync(request);
                var status = (int)response.StatusCode;
                Assert.True(status < 500, $"{method} {url}: {status}");
                if (status >= 400)
                {
                    checkedErrors++;
                    Assert.True(documented.Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture)), $"{method.ToUpperInvariant()} {path}: answered {status}, documented only {string.Join(',', documented)}");
                    var media = response.Content.Headers.ContentType?.MediaType;
                    if (status == 400 && media is null && url.Contains("%00", StringComparison.Ordinal))
                    {
                        continue; // Kestrel refuses an encoded NUL in the path itself, before any of Warden's code (docs/api.md)
                    }

                    Assert.True(media == "application/problem+json", $"{method.ToUpperInvariant()} {url}: {status} as {media ?? "no content type"}");
                }
            }
        }

        Assert.True(checkedErrors > 100, $"only {checkedErrors} errors were provoked");
    }

    private static IEnumerable<(HttpClient Client, string Url, HttpContent Body)> Variants(string path, HttpClient admin, HttpClient anonymous, HttpClient submitter)
    {
        var unknown = path.Replace("{id}", "987654", StringComparison.Ordinal).Replace("{entryId}", "987654", StringComparison.Ordinal);
        unknown = System.Text.RegularExpressions.Regex.Replace(unknown, "\\{[^}]+\\}", "no-such-thing");
        HttpContent Garbage() => new StringContent("{not json", Encoding.UTF8, "application/json");
        yield return (anonymous, unknown, Garbage());
        yield return (submitter, unknown, Garbage());
        yield return (admin, unknown, Garbage());
        yield return (admin, unknown + "?limit=-5&signal_type=nope&signal=zz&format=nope&url=ftp://x", new ByteArrayContent([]));
        yield return (admin, unknown, new StringContent("{}", Encoding.UTF8, "application/json"));

        // Hostile path segments and query values: line ends, NUL, an encoded traversal, invalid UTF-8, bidi
        // controls, numbers past every integer type, a very long segment. Each is a 4xx, never a 500.
        string[] hostile = ["%0A", "a%0D%0Ab", "%00", "..%2F..%2Fetc", "%C3%28", "%E2%80%AE", "-1", "99999999999999999999999", "1e5", "0x10", new string('a', 4000)];
        foreach (var h in hostile)
        {
            var url = System.Text.RegularExpressions.Regex.Replace(path, "\\{[^}]+\\}", h);
            if (url != path)
            {
                yield return (admin, url, new StringContent("{}", Encoding.UTF8, "application/json"));
            }
        }

        yield return (admin, unknown + "?limit=99999999999999999999&offset=-1&since=%00&cursor=%0A&page=NaN&state=%E2%80%AE", new ByteArrayContent([]));
    }

    [SkippableFact]
    public async Task The_document_lints_clean_with_redocly()
    {
        var tools = NodeTools.Require("@redocly/cli");
        await using var server = await StartAsync();
        using var dir = new TempFolder();
        var file = Path.Combine(dir.Path, "openapi.json");
        File.WriteAllText(file, (await DocumentAsync(server)).GetRawText());
        var (code, stdout, stderr) = await NodeTools.RunAsync(Path.Combine(tools, ".bin", "redocly"), dir.Path, "lint", file, "--format=json", "--max-problems=500");
        var problems = JsonDocument.Parse(stdout).RootElement.GetProperty("problems");
        Assert.True(problems.GetArrayLength() == 0, problems.GetRawText());
        Assert.True(code == 0, stderr);
    }

    [SkippableFact]
    public async Task A_client_generated_from_the_served_document_hashes_matches_imports_and_looks_up()
    {
        var tools = NodeTools.Require("openapi-typescript", "openapi-fetch", "typescript", "@types/node");
        await using var server = await StartAsync();
        using var dir = new TempFolder();
        foreach (var file in Directory.GetFiles(Path.Combine(NodeTools.RepoRoot, "tests", "Warden.Server.Tests", "OpenApiClient")))
        {
            File.Copy(file, Path.Combine(dir.Path, Path.GetFileName(file)));
        }

        File.WriteAllText(Path.Combine(dir.Path, "package.json"), """{"type":"module"}""");
        File.CreateSymbolicLink(Path.Combine(dir.Path, "node_modules"), tools);
        var image = Path.Combine(dir.Path, "photo.jpg");
        File.WriteAllBytes(image, Media.Jpeg(seed: 7));

        var documentUrl = new Uri(server.BaseAddress, "openapi/v1.json").ToString();
        await NodeTools.RunCheckedAsync("node", dir.Path, "generate.mjs", documentUrl, "schema.ts");
        Assert.Contains("\"/v1/banks/{name}/import\"", File.ReadAllText(Path.Combine(dir.Path, "schema.ts")), StringComparison.Ordinal);
        await NodeTools.RunCheckedAsync(Path.Combine(tools, ".bin", "tsc"), dir.Path, "-p", ".");
        var output = await NodeTools.RunCheckedAsync("node", dir.Path, "out/client.js", server.BaseAddress.ToString().TrimEnd('/'), server.Key(Role.Admin), image);

        var result = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
#pragma warning disable CA5351 // MD5 is one of the signal types the API computes, compared here, not used for security
        var md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(File.ReadAllBytes(image)));
#pragma warning restore CA5351
        Assert.Equal(md5, result.GetProperty("hash").GetProperty("md5").GetString());
        Assert.Equal(64, result.GetProperty("hash").GetProperty("pdq").GetString()!.Length);
        Assert.Equal(201, result.GetProperty("bank").GetProperty("status").GetInt32());
        Assert.Equal(1, result.GetProperty("import").GetProperty("added").GetInt32());
        Assert.Equal(404, result.GetProperty("missing").GetProperty("status").GetInt32());
        Assert.Equal("not_found", result.GetProperty("missing").GetProperty("code").GetString());
        Assert.True(result.GetProperty("match").GetProperty("matched").GetBoolean());
        Assert.Contains("generated-client", result.GetProperty("match").GetProperty("banks").EnumerateArray().Select(b => b.GetString()));
        Assert.True(result.GetProperty("lookup").TryGetProperty("generated-client", out var hits) && hits.GetArrayLength() == 1, result.GetProperty("lookup").GetRawText());
    }

    /// <summary>The /docs page in real Chromium with every request off 127.0.0.1 blocked and recorded.</summary>
    [SkippableFact]
    public async Task The_docs_page_renders_offline_with_no_external_requests_or_vendor_buttons()
    {
        const string chromium = "/usr/bin/chromium";
        Skip.IfNot(File.Exists(chromium), "Chromium is not installed at /usr/bin/chromium (apt-get install chromium).");
        await using var server = await StartAsync();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = chromium,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        page.SetDefaultTimeout(30_000);
        var external = new List<string>();
        await page.RouteAsync("**/*", async route =>
        {
            var url = new Uri(route.Request.Url);
            if (url.Scheme is "http" or "https" && url.Host != server.BaseAddress.Host)
            {
                lock (external)
                {
                    external.Add(route.Request.Url);
                }

                await route.AbortAsync();
                return;
            }

            await route.ContinueAsync();
        });

        await page.GotoAsync(new Uri(server.BaseAddress, "docs/").ToString());
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Warden API" }).First).ToBeVisibleAsync();
        await page.WaitForTimeoutAsync(1500); // late loaders (fonts, telemetry) would have asked by now
        foreach (var vendor in new[] { "Ask AI", "Deploy", "Share", "Generate SDK", "Open API Client" })
        {
            Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = vendor }).CountAsync());
            Assert.Equal(0, await page.GetByRole(AriaRole.Link, new() { Name = vendor }).CountAsync());
        }

        Assert.DoesNotContain("Ask AI", await page.Locator("body").InnerTextAsync(), StringComparison.Ordinal);

        Assert.True(external.Count == 0, "external requests: " + string.Join(", ", external));
    }
}

/// <summary>A temporary folder, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "warden-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The Node.js tools that scripts/test installs under .tools/node (or WARDEN_NODE_TOOLS).</summary>
internal static class NodeTools
{
    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Warden.sln) was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>node_modules holding <paramref name="packages"/>, or a skip saying how to get them.</summary>
    public static string Require(params string[] packages)
    {
        var modules = Environment.GetEnvironmentVariable("WARDEN_NODE_TOOLS") is { Length: > 0 } env ? env : Path.Combine(RepoRoot, ".tools", "node", "node_modules");
        var missing = packages.Where(p => !File.Exists(Path.Combine(modules, p, "package.json"))).ToList();
        Skip.If(missing.Count > 0, $"Node tools missing ({string.Join(", ", missing)}) under {modules}: scripts/test installs them with npm.");
        Skip.If(!OnPath("node"), "node is not installed.");
        return modules;
    }

    private static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, name)));

    public static async Task<string> RunCheckedAsync(string file, string workingDirectory, params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(file, workingDirectory, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)} exited {code}:\n{stdout}{stderr}");
        return stdout;
    }

    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["NO_COLOR"] = "1";
        start.Environment["REDOCLY_TELEMETRY"] = "off";
        start.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} did not finish in 90 s");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
