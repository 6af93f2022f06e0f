using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>The native API on both databases: hashing, matching, banks, entries, imports, bad input.</summary>
public sealed class ApiTests
{
    private static Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK) => HttpAssert.Json(response, expected);

    private static async Task<(int Status, string Code)> Problem(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal((int)response.StatusCode, body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("detail").GetString()));
        return ((int)response.StatusCode, body.GetProperty("code").GetString()!);
    }

    private static ByteArrayContent Raw(byte[] data, string type = "image/jpeg")
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return content;
    }

    private static MultipartFormDataContent Form(byte[] data, string field = "file")
    {
        var form = new MultipartFormDataContent();
        var part = new ByteArrayContent(data);
        part.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        form.Add(part, field, "upload.jpg");
        return form;
    }

    /// <summary>Polls until the live index has applied a change (it polls every 100 ms in tests).</summary>
    private static async Task<JsonElement> EventuallyAsync(Func<Task<JsonElement>> get, Func<JsonElement, bool> done)
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

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Hash_match_and_bank_lifecycle(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);
        var image = Media.Jpeg(1);
        var other = Media.Jpeg(4);

        // Hash: raw body and multipart give the same signals; dihedral on request.
        var raw = await Json(await submitter.PostAsync("v1/hash?dihedral=true", Raw(image)));
        var multi = await Json(await submitter.PostAsync("v1/hash", Form(image)));
        var pdq = raw.GetProperty("pdq").GetProperty("hash").GetString()!;
        Assert.Equal(pdq, multi.GetProperty("pdq").GetProperty("hash").GetString());
        Assert.Equal(8, raw.GetProperty("pdq").GetProperty("dihedral").EnumerateObject().Count());
        Assert.Equal(JsonValueKind.Null, multi.GetProperty("pdq").GetProperty("dihedral").ValueKind);
        Assert.True(raw.GetProperty("pdq").GetProperty("quality").GetInt32() >= 50);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(image)), raw.GetProperty("sha256").GetString());
        Assert.Equal("jpeg", raw.GetProperty("image").GetProperty("format").GetString());

        // A bank with an action, an entry, and a match of a re-encoded copy.
        var bank = await Json(await curator.PostAsJsonAsync("v1/banks", new { name = "known", pdq_threshold = 24, action = new { quarantine = true, notify = false } }), HttpStatusCode.Created);
        Assert.Equal(24, bank.GetProperty("pdq_threshold").GetInt32());
        var entry = await Json(await curator.PostAsJsonAsync("v1/banks/known/entries", new { signal_type = "pdq", signal = pdq.ToUpperInvariant(), labels = new { category = "test" }, external_id = "ext-1" }), HttpStatusCode.Created);
        var entryId = entry.GetProperty("id").GetInt64();
        Assert.Equal(pdq, entry.GetProperty("signal").GetString());

        var copy = Media.Jpeg(1, quality: 60);
        var match = await EventuallyAsync(async () => await Json(await submitter.PostAsync("v1/match?uploader_id=user-9", Raw(copy))), m => m.GetProperty("matched").GetBoolean());
        Assert.True(match.GetProperty("matched").GetBoolean(), match.GetRawText() + " vs entry " + entry.GetRawText());
        Assert.Equal("quarantine", match.GetProperty("action").GetString());
        var hit = match.GetProperty("hits")[0];
        Assert.Equal("known", hit.GetProperty("bank").GetString());
        Assert.Equal(entryId, hit.GetProperty("entry_id").GetInt64());
        Assert.Equal(JsonValueKind.Number, hit.GetProperty("distance").ValueKind);
        Assert.True(hit.GetProperty("distance").GetInt32() <= 24);
        Assert.Equal("test", hit.GetProperty("labels").GetProperty("category").GetString());
        Assert.Equal("ext-1", hit.GetProperty("external_id").GetString());
        Assert.False(match.GetProperty("signals").GetProperty("md5").GetString()!.Length == 0);

        // Unrelated content does not match; match by value works.
        Assert.False((await Json(await submitter.PostAsync("v1/match", Raw(other)))).GetProperty("matched").GetBoolean());
        var byValue = await Json(await submitter.GetAsync($"v1/match?signal_type=pdq&signal={pdq}"));
        Assert.Equal(0, byValue.GetProperty("hits")[0].GetProperty("distance").GetInt32());
        Assert.Equal(JsonValueKind.Null, byValue.GetProperty("signals").ValueKind);

        // An allow-list hit suppresses the block hit.
        await Json(await curator.PostAsJsonAsync("v1/banks", new { name = "benign", kind = "allow" }), HttpStatusCode.Created);
        await Json(await curator.PostAsJsonAsync("v1/banks/benign/entries", new { signal_type = "pdq", signal = pdq }), HttpStatusCode.Created);
        var suppressed = await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=pdq&signal={pdq}")), m => m.GetProperty("hits").GetArrayLength() == 2);
        Assert.False(suppressed.GetProperty("matched").GetBoolean());
        Assert.Equal("none", suppressed.GetProperty("action").GetString());
        Assert.Contains(suppressed.GetProperty("hits").EnumerateArray(), h => h.GetProperty("suppressed").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await curator.PatchAsJsonAsync("v1/banks/benign", new { enabled = false })).StatusCode);

        // Disable the entry: no more hits; enable again; delete: gone.
        await Json(await curator.PatchAsJsonAsync($"v1/entries/{entryId}", new { enabled = false }));
        var none = await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=pdq&signal={pdq}")), m => m.GetProperty("hits").GetArrayLength() == 0);
        Assert.Equal(0, none.GetProperty("hits").GetArrayLength());
        await Json(await curator.PatchAsJsonAsync($"v1/entries/{entryId}", new { enabled = true }));
        var back = await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=pdq&signal={pdq}")), m => m.GetProperty("matched").GetBoolean());
        Assert.True(back.GetProperty("matched").GetBoolean());
        Assert.Equal(HttpStatusCode.NoContent, (await curator.DeleteAsync($"v1/entries/{entryId}")).StatusCode);
        var gone = await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=pdq&signal={pdq}")), m => m.GetProperty("hits").GetArrayLength() == 0);
        Assert.Equal(0, gone.GetProperty("hits").GetArrayLength());
        Assert.True((await Json(await curator.GetAsync($"v1/entries/{entryId}"))).GetProperty("deleted").GetBoolean());

        // Banks list and get.
        var banks = await Json(await curator.GetAsync("v1/banks"));
        Assert.Equal(2, banks.GetArrayLength());
        Assert.True((await Json(await curator.GetAsync("v1/banks/known"))).GetProperty("action").GetProperty("quarantine").GetBoolean());
    }

#pragma warning disable CA5351 // MD5 is a signal type here (hash lists carry it), not a security primitive.
    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Import_streams_a_list_and_export_reads_it_back(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var curator = server.Client(Role.Curator);
        await Json(await curator.PostAsJsonAsync("v1/banks", new { name = "list" }), HttpStatusCode.Created);
        var csv = new StringBuilder("signal_type,signal,category\n");
        for (var i = 0; i < 5000; i++)
        {
            csv.Append("md5,").Append(Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(BitConverter.GetBytes(i)))).Append(",test\n");
        }

        csv.Append("md5,not-a-hash,test\n");
        var aborted = await curator.PostAsync("v1/banks/list/import?format=csv", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv"));
        Assert.Equal((400, "invalid_list"), await Problem(aborted));

        var result = await Json(await curator.PostAsync("v1/banks/list/import?on_error=skip", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv")));
        Assert.True(result.GetProperty("skipped").GetInt64() == 1, result.GetRawText());
        Assert.Single(result.GetProperty("errors").EnumerateArray());

        var export = await curator.GetStringAsync("v1/banks/list/export?format=jsonl");
        Assert.Equal(5000, export.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        var page = await Json(await curator.GetAsync("v1/banks/list/entries?limit=10"));
        Assert.Equal(10, page.GetArrayLength());
        var next = await Json(await curator.GetAsync($"v1/banks/list/entries?limit=10&after_id={page[9].GetProperty("id").GetInt64()}"));
        Assert.True(next[0].GetProperty("id").GetInt64() > page[9].GetProperty("id").GetInt64());

        using var submitter = server.Client(Role.Submitter);
        var md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(BitConverter.GetBytes(42)));
        var hit = await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=md5&signal={md5}")), m => m.GetProperty("matched").GetBoolean());
        Assert.True(hit.GetProperty("matched").GetBoolean());
    }

#pragma warning restore CA5351

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Bad_input_gets_problem_json_with_a_stable_code_never_a_500(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect, o => o.MaxUploadBytes = 200_000);
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);
        var jpeg = Media.Jpeg(2);

        Assert.Equal((400, "unknown_signal_type"), await Problem(await submitter.GetAsync("v1/match?signal_type=photodna&signal=x")));
        Assert.Equal((400, "invalid_signal"), await Problem(await submitter.GetAsync("v1/match?signal_type=pdq&signal=xyz")));
        Assert.Equal((400, "invalid_signal"), await Problem(await submitter.GetAsync("v1/match?signal_type=md5")));
        Assert.Equal((400, "empty_upload"), await Problem(await submitter.PostAsync("v1/match", Raw([]))));
        // An image that cannot be decoded is still matched by its digests: 200 with a warning saying why there is no PDQ.
        var truncated = await Json(await submitter.PostAsync("v1/match", Raw(jpeg[..(jpeg.Length / 2)])));
        Assert.Equal("truncated_image", truncated.GetProperty("warnings")[0].GetProperty("code").GetString());
        var corrupt = (byte[])jpeg.Clone();
        for (var i = 200; i < corrupt.Length - 2; i += 7)
        {
            corrupt[i] = 0xFF;
        }

        var corrupted = await Json(await submitter.PostAsync("v1/match", Raw(corrupt)));
        Assert.Equal(64, corrupted.GetProperty("signals").GetProperty("sha256").GetString()!.Length);
        // Expect: 100-continue lets the server refuse before the body is sent (as well-behaved clients do).
        using var tooLarge = new HttpRequestMessage(HttpMethod.Post, "v1/hash") { Content = Raw(new byte[300_000]) };
        tooLarge.Headers.ExpectContinue = true;
        Assert.Equal((413, "payload_too_large"), await Problem(await submitter.SendAsync(tooLarge)));

        var malformed = new ByteArrayContent(Encoding.ASCII.GetBytes("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc"));
        malformed.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=xyz");
        Assert.Equal(400, (await Problem(await submitter.PostAsync("v1/match", malformed))).Status);
        var noBoundary = new ByteArrayContent([1, 2, 3]);
        noBoundary.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data");
        Assert.Equal((400, "invalid_request"), await Problem(await submitter.PostAsync("v1/match", noBoundary)));
        var noFile = new MultipartFormDataContent { { new StringContent("x"), "note" } };
        Assert.Equal((400, "empty_upload"), await Problem(await submitter.PostAsync("v1/match", noFile)));

        // Not an image: digests only, and a clear kind.
        var text = await Json(await submitter.PostAsync("v1/hash", Raw(Encoding.UTF8.GetBytes("plain text"), "text/plain")));
        Assert.Equal("other", text.GetProperty("content_kind").GetString());

        Assert.Equal((404, "not_found"), await Problem(await curator.GetAsync("v1/banks/nope")));
        Assert.Equal((404, "not_found"), await Problem(await curator.GetAsync("v1/no-such-endpoint")));
        Assert.Equal((400, "invalid_request"), await Problem(await curator.PostAsJsonAsync("v1/banks", new { name = "bad name!" })));
        Assert.Equal(HttpStatusCode.Created, (await curator.PostAsJsonAsync("v1/banks", new { name = "twice" })).StatusCode);
        Assert.Equal((409, "conflict"), await Problem(await curator.PostAsJsonAsync("v1/banks", new { name = "twice" })));
        Assert.Equal((400, "invalid_request"), await Problem(await curator.PostAsync("v1/banks", new StringContent("{not json", Encoding.UTF8, "application/json"))));
        Assert.Equal((400, "invalid_request"), await Problem(await curator.PostAsJsonAsync("v1/banks", new { name = "t2", pdq_threshold = 999 })));
        Assert.Equal((400, "invalid_signal"), await Problem(await curator.PostAsJsonAsync("v1/banks/twice/entries", new { signal_type = "sha256", signal = "abc" })));
        Assert.Equal((404, "not_found"), await Problem(await curator.DeleteAsync("v1/entries/99999")));

        // The server is still fine.
        Assert.Equal(HttpStatusCode.OK, (await submitter.PostAsync("v1/hash", Raw(jpeg))).StatusCode);
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Per_key_rate_limit_answers_429(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect, o => o.RateLimitPerSecond = 3);
        using var submitter = server.Client(Role.Submitter);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 12; i++)
        {
            statuses.Add((await submitter.GetAsync("v1/match?signal_type=md5&signal=" + new string('b', 32))).StatusCode);
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        var limited = await submitter.GetAsync("v1/match?signal_type=md5&signal=" + new string('b', 32));
        if (limited.StatusCode == HttpStatusCode.TooManyRequests)
        {
            Assert.Equal((429, "rate_limited"), await Problem(limited));
        }

        // Another key has its own bucket.
        using var other = server.Client(Role.Curator);
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("v1/banks")).StatusCode);
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Flood_control_quarantines_an_entry_matching_far_above_its_baseline(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect, o =>
        {
            o.FloodMinMatches = 5;
            o.FloodFactor = 3;
        });
        using var curator = server.Client(Role.Curator);
        using var submitter = server.Client(Role.Submitter);
        await Json(await curator.PostAsJsonAsync("v1/banks", new { name = "meme", action = new { quarantine = true, notify = false } }), HttpStatusCode.Created);
        var md5 = new string('c', 32);
        var entry = await Json(await curator.PostAsJsonAsync("v1/banks/meme/entries", new { signal_type = "md5", signal = md5 }), HttpStatusCode.Created);
        await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=md5&signal={md5}")), m => m.GetProperty("matched").GetBoolean());

        var actions = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            actions.Add((await Json(await submitter.GetAsync($"v1/match?signal_type=md5&signal={md5}"))).GetProperty("action").GetString()!);
        }

        Assert.Equal("quarantine", actions[0]);
        Assert.Equal("none", actions[^1]);
        var last = await Json(await submitter.GetAsync($"v1/match?signal_type=md5&signal={md5}"));
        Assert.True(last.GetProperty("hits")[0].GetProperty("flood_quarantined").GetBoolean());

        var flags = await Json(await curator.GetAsync("v1/flags"));
        Assert.Equal(entry.GetProperty("id").GetInt64(), flags[0].GetProperty("entry_id").GetInt64());
        Assert.Equal(HttpStatusCode.NoContent, (await curator.PostAsync($"v1/flags/{entry.GetProperty("id").GetInt64()}/clear", null)).StatusCode);
        var cleared = await EventuallyAsync(async () => await Json(await submitter.GetAsync($"v1/match?signal_type=md5&signal={md5}")), m => !m.GetProperty("hits")[0].GetProperty("flood_quarantined").GetBoolean());
        Assert.False(cleared.GetProperty("hits")[0].GetProperty("flood_quarantined").GetBoolean());
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Health_metrics_and_the_openapi_document_are_served(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var anonymous = server.Client(null);
        Assert.Equal("ok", await anonymous.GetStringAsync("healthz"));
        var ready = await Json(await anonymous.GetAsync("readyz"));
        Assert.True(ready.GetProperty("ready").GetBoolean());
        var openapi = await Json(await anonymous.GetAsync("openapi/v1.json"));
        Assert.Equal("Warden API", openapi.GetProperty("info").GetProperty("title").GetString());
        var paths = openapi.GetProperty("paths");
        foreach (var path in new[] { "/v1/hash", "/v1/match", "/v1/banks", "/v1/banks/{name}/import", "/m/lookup", "/h/hash", "/c/banks" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"{path} missing from the OpenAPI document");
        }

        var docs = await anonymous.GetAsync("docs");
        Assert.True(docs.IsSuccessStatusCode || docs.StatusCode == HttpStatusCode.Redirect || docs.StatusCode == HttpStatusCode.MovedPermanently);
        using var admin = server.Client(Role.Admin);
        await admin.GetAsync("v1/match?signal_type=md5&signal=" + new string('d', 32));
        var metrics = await admin.GetStringAsync("metrics");
        Assert.Contains("warden_index_entries", metrics, StringComparison.Ordinal);
        Assert.Contains("warden_lookups_total", metrics, StringComparison.Ordinal);
        Assert.Contains("http_request_duration_seconds", metrics, StringComparison.Ordinal);
    }
}
