using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>
/// Requests shaped exactly as an HMA 2.0 (OpenMediaMatch) client sends them — paths, query parameters,
/// multipart field names, JSON bodies — and the response shapes HMA answers with.
/// </summary>
public sealed class HmaCompatibilityTests
{
    private static Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK) => HttpAssert.Json(response, expected);

    private static MultipartFormDataContent Photo(byte[] jpeg)
    {
        // HMA: curl -F photo=@image.jpg http://hma/h/hash
        var form = new MultipartFormDataContent();
        var part = new ByteArrayContent(jpeg);
        part.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        form.Add(part, "photo", "image.jpg");
        return form;
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task An_hma_client_session_works_unchanged(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var client = server.Client(Role.Admin);
        var jpeg = Media.Jpeg(7);

        // Hasher: {"pdq": "<64 hex>"}
        var hashed = await Json(await client.PostAsync("h/hash", Photo(jpeg)));
        Assert.Equal(["pdq"], hashed.EnumerateObject().Select(p => p.Name));
        var pdq = hashed.GetProperty("pdq").GetString()!;
        Assert.Matches("^[0-9a-f]{64}$", pdq);

        // Curator: create a bank, list banks, add a signal.
        var bank = await Json(await client.PostAsync("c/banks", new StringContent("{\"name\": \"TEST_BANK\"}", Encoding.UTF8, "application/json")), HttpStatusCode.Created);
        Assert.Equal("TEST_BANK", bank.GetProperty("name").GetString());
        Assert.Equal(1.0, bank.GetProperty("matching_enabled_ratio").GetDouble());
        var banks = await Json(await client.GetAsync("c/banks"));
        Assert.Contains(banks.EnumerateArray(), b => b.GetProperty("name").GetString() == "TEST_BANK");
        var added = await Json(await client.PostAsync("c/bank/TEST_BANK/signal", new StringContent($"{{\"pdq\": \"{pdq}\"}}", Encoding.UTF8, "application/json")), HttpStatusCode.Created);
        var id = added.GetProperty("id").GetInt64();
        Assert.Equal(pdq, added.GetProperty("signals").GetProperty("pdq").GetString());

        // Matcher: GET /m/lookup?signal=&signal_type= -> {"BANK": [{"bank_content_id": id, "distance": "0"}]}
        JsonElement lookup = default;
        for (var i = 0; i < 100; i++)
        {
            lookup = await Json(await client.GetAsync($"m/lookup?signal={pdq}&signal_type=pdq"));
            if (lookup.TryGetProperty("TEST_BANK", out _))
            {
                break;
            }

            await Task.Delay(50);
        }

        var match = lookup.GetProperty("TEST_BANK")[0];
        Assert.Equal(id, match.GetProperty("bank_content_id").GetInt64());
        Assert.Equal(JsonValueKind.String, match.GetProperty("distance").ValueKind);
        Assert.Equal("0", match.GetProperty("distance").GetString());

        // Bank filter.
        var filtered = await Json(await client.GetAsync($"m/lookup?signal={pdq}&signal_type=pdq&banks=OTHER_BANK"));
        Assert.Empty(filtered.EnumerateObject());

        // Raw lookup: ids, or ids with numeric distances.
        var raw = await Json(await client.GetAsync($"m/raw_lookup?signal={pdq}&signal_type=pdq"));
        Assert.Equal(id, raw.GetProperty("matches")[0].GetInt64());
        var rawDistance = await Json(await client.GetAsync($"m/raw_lookup?signal={pdq}&signal_type=pdq&include_distance=true"));
        Assert.Equal(id, rawDistance.GetProperty("matches")[0].GetProperty("bank_content_id").GetInt64());
        Assert.Equal(0, rawDistance.GetProperty("matches")[0].GetProperty("distance").GetInt32());

        // Lookup by upload: {"pdq": {"BANK": [...]}}
        var byUpload = await Json(await client.PostAsync("m/lookup", Photo(Media.Jpeg(7, quality: 70))));
        Assert.Equal(id, byUpload.GetProperty("pdq").GetProperty("TEST_BANK")[0].GetProperty("bank_content_id").GetInt64());

        // Compare: {"pdq": [true, {"distance": n}]}
        var flipped = (pdq[0] == '0' ? "f" : "0") + pdq[1..];
        var compared = await Json(await client.PostAsync("m/compare", new StringContent($"{{\"pdq\": [\"{pdq}\", \"{flipped}\"]}}", Encoding.UTF8, "application/json")));
        var pair = compared.GetProperty("pdq");
        Assert.True(pair[0].GetBoolean());
        Assert.InRange(pair[1].GetProperty("distance").GetInt32(), 1, 4);

        // Index status and health.
        var status = await Json(await client.GetAsync("m/index/status"));
        Assert.True(status.GetProperty("pdq").GetProperty("present").GetBoolean());
        Assert.Equal(1, status.GetProperty("pdq").GetProperty("size").GetInt64());
        using var anonymous = server.Client(null);
        Assert.Equal("I-AM-ALIVE", await anonymous.GetStringAsync("status"));

        // Content upload into a bank.
        var content = await Json(await client.PostAsync("c/bank/TEST_BANK/content", Photo(Media.Jpeg(8))), HttpStatusCode.Created);
        Assert.Matches("^[0-9a-f]{64}$", content.GetProperty("signals").GetProperty("pdq").GetString()!);

        // Disabling a bank through HMA's PUT stops its matches.
        await Json(await client.PutAsync("c/bank/TEST_BANK", new StringContent("{\"enabled_ratio\": 0.0}", Encoding.UTF8, "application/json")));
        JsonElement after = default;
        for (var i = 0; i < 100; i++)
        {
            after = await Json(await client.GetAsync($"m/lookup?signal={pdq}&signal_type=pdq"));
            if (!after.TryGetProperty("TEST_BANK", out _))
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.False(after.TryGetProperty("TEST_BANK", out _));
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Hma_errors_are_problem_json(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var client = server.Client(Role.Admin);
        var bad = await client.GetAsync("m/lookup?signal=zz&signal_type=pdq");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("m/raw_lookup?signal=x&signal_type=nope")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsync("c/bank/NOPE/signal", new StringContent("{\"pdq\": \"00\"}", Encoding.UTF8, "application/json"))).StatusCode);

        // URL fetching is off unless an admin lists the host.
        var refused = await client.GetAsync("h/hash?url=http://127.0.0.1:1/x.jpg");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("fetch_refused", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
