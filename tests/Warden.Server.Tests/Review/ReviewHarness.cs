using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Warden.FakeCyberTipline;
using Warden.Review;
using Warden.Review.Users;
using Warden.Server.Auth;
using Warden.Server.Review;

namespace Warden.Server.Tests.Review;

/// <summary>
/// A server with the review console over fresh databases, the bundled fake CyberTipline as its test
/// endpoint, a bank holding the PDQ of benign synthetic image 1, and users alice (reviewer), root (admin).
/// </summary>
internal sealed class ReviewHarness : IAsyncDisposable
{
    public const string Password = "correct horse battery staple";

    private ReviewHarness(TestServer server, FakeCyberTiplineServer fake, string dir)
    {
        Server = server;
        Fake = fake;
        Directory = dir;
    }

    public TestServer Server { get; }

    public FakeCyberTiplineServer Fake { get; }

    public string Directory { get; }

    public ReviewService Review => Server.App.Services.GetRequiredService<ReviewService>();

    public static async Task<ReviewHarness> StartAsync(bool preserve = true, Action<ReviewOptions>? configure = null, string? dir = null, Warden.Storage.SqlDialect? dialect = null)
    {
        dir ??= Path.Combine(Path.GetTempPath(), "warden-review-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        var fake = await FakeCyberTiplineServer.StartAsync();
        TestServer server;
        try
        {
            server = dialect is { } d
                ? await TestServer.StartAsync(d, o => Configure(o.Review, dir, preserve, fake, configure)) // a fresh database of that kind (PostgreSQL skips without one)
                : await TestServer.StartAsync(Path.Combine(dir, "warden.db"), o => Configure(o.Review, dir, preserve, fake, configure));
        }
        catch
        {
            await fake.DisposeAsync();
            throw;
        }

        var h = new ReviewHarness(server, fake, dir);
        h.Review.Store.CreateUser("alice", "reviewer", PasswordHashing.Hash(Password));
        h.Review.Store.CreateUser("root", "admin", PasswordHashing.Hash(Password));
        return h;
    }

    /// <summary>Review settings for a run in <paramref name="dir"/>.</summary>
    public static void Configure(ReviewOptions r, string dir, bool preserve, FakeCyberTiplineServer fake, Action<ReviewOptions>? configure = null)
    {
        if (preserve)
        {
            r.EvidenceDirectory = Path.Combine(dir, "evidence");
            r.MasterKey = MasterKey(dir);
        }

        r.CyberTipline.TestUrl = fake.BaseUri.ToString();
        r.CyberTipline.Username = fake.Username;
        r.CyberTipline.Password = fake.Password;
        r.CyberTipline.PollMilliseconds = 100;
        configure?.Invoke(r);
    }

    /// <summary>One master key per test folder (kept in a file so a restart uses the same one).</summary>
    public static string MasterKey(string dir)
    {
        var path = Path.Combine(dir, "master.key");
        if (!File.Exists(path))
        {
            File.WriteAllText(path, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        }

        return File.ReadAllText(path);
    }

    /// <summary>Creates the block-list bank with image 1's PDQ (and image 2's, labelled B1) and waits until it matches.</summary>
    public static async Task SeedBankAsync(HttpClient admin)
    {
        (await admin.PostAsJsonAsync("v1/banks", new { name = "known", kind = "block" })).EnsureSuccessStatusCode();
        foreach (var (seed, cls) in new[] { (1, "A1"), (2, "B1") })
        {
            var pdq = await PdqAsync(admin, Media.Jpeg(seed));
            (await admin.PostAsJsonAsync("v1/banks/known/entries", new { signal_type = "pdq", signal = pdq, labels = new Dictionary<string, string> { ["classification"] = cls } })).EnsureSuccessStatusCode();
        }

        // Both entries must be in the live index (it may have picked up one change per poll).
        var pdqs = new[] { await PdqAsync(admin, Media.Jpeg(1)), await PdqAsync(admin, Media.Jpeg(2)) };
        for (var i = 0; i < 100; i++)
        {
            var matched = 0;
            foreach (var pdq in pdqs)
            {
                var r = await admin.GetFromJsonAsync<JsonElement>("v1/match?signal_type=pdq&signal=" + pdq);
                matched += r.GetProperty("matched").GetBoolean() ? 1 : 0;
            }

            if (matched == pdqs.Length)
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the bank never matched");
    }

    public static async Task<string> PdqAsync(HttpClient client, byte[] image)
    {
        using var r = await client.PostAsync("v1/hash", new ByteArrayContent(image));
        r.EnsureSuccessStatusCode();
        return (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("pdq").GetProperty("hash").GetString()!;
    }

    /// <summary>Uploads as a submitter with uploader context; returns whether it matched.</summary>
    public static async Task<bool> UploadAsync(HttpClient submitter, byte[] image, string uploader, int n)
    {
        using var r = await submitter.PostAsync($"v1/match?uploader_id={uploader}&uploader_ip=192.0.2.{n}&content_url=https://example.org/p/{n}&uploaded_at=2026-01-02T03:04:05Z&file_name=f{n}.jpg", new ByteArrayContent(image));
        r.EnsureSuccessStatusCode();
        return (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("matched").GetBoolean();
    }

    /// <summary>Bank + three uploads by u1: image 1, image 1 re-encoded (same cluster), image 2 (a second cluster).</summary>
    public async Task SeedCaseAsync()
    {
        using var admin = Server.Client(Role.Admin);
        await SeedBankAsync(admin);
        using var submitter = Server.Client(Role.Submitter);
        Assert.True(await UploadAsync(submitter, Media.Jpeg(1), "u1", 1));
        Assert.True(await UploadAsync(submitter, Media.Jpeg(1, quality: 60), "u1", 2));
        Assert.True(await UploadAsync(submitter, Media.Jpeg(2), "u1", 3));
    }

    /// <summary>A logged-in console client (cookie + CSRF header).</summary>
    public Task<ConsoleClient> LoginAsync(string user = "alice") => ConsoleClient.LoginAsync(Server.BaseAddress, user, Password);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Fake.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>An HTTP client of the console API with a session cookie.</summary>
internal sealed class ConsoleClient : IDisposable
{
    private ConsoleClient(HttpClient http, string csrf)
    {
        Http = http;
        Csrf = csrf;
    }

    public HttpClient Http { get; }

    public string Csrf { get; }

    public static async Task<ConsoleClient> LoginAsync(Uri baseAddress, string user, string password)
    {
        var http = Anonymous(baseAddress);
        using var r = await http.PostAsJsonAsync("review/api/login", new { username = user, password });
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var csrf = (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("csrf").GetString()!;
        return new ConsoleClient(http, csrf);
    }

    public static HttpClient Anonymous(Uri baseAddress) =>
        new(new HttpClientHandler { CookieContainer = new CookieContainer(), UseCookies = true }) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };

    public Task<JsonElement> GetAsync(string path) => Http.GetFromJsonAsync<JsonElement>("review/api/" + path);

    public async Task<HttpResponseMessage> PostAsync(string path, object? body = null, string? csrf = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "review/api/" + path) { Content = body is null ? null : JsonContent.Create(body) };
        request.Headers.Add(ReviewConsole.CsrfHeader, csrf ?? Csrf);
        return await Http.SendAsync(request);
    }

    public async Task<JsonElement> FirstCaseAsync()
    {
        var queue = await GetAsync("queue");
        Assert.Equal(1, queue.GetArrayLength());
        return await GetAsync("cases/" + queue[0].GetProperty("id").GetString());
    }

    public void Dispose() => Http.Dispose();
}
