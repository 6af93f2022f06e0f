using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using NetVips;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>Provenance in the API: /v1/provenance, and model references in uploads matched against model banks.</summary>
public sealed class ProvenanceApiTests
{
    // A PNG whose tEXt "parameters" chunk is A1111 infotext naming a checkpoint by its AutoV2 hash.
    internal static byte[] A1111Png(string modelHash)
    {
        using var small = Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: 5);
        using var big = small.Resize(16);
        using var grey = big.Cast(Enums.BandFormat.Uchar);
        var png = grey.PngsaveBuffer();
        var text = $"a benign test landscape\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 256x192, Model hash: {modelHash}, Model: test-checkpoint, Version: v1.10.0";
        var data = (byte[])[.. "parameters"u8, 0, .. Encoding.Latin1.GetBytes(text)];
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        "tEXt"u8.CopyTo(chunk.AsSpan(4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        const int afterIhdr = 8 + 25; // signature + IHDR chunk
        return [.. png.AsSpan(0, afterIhdr), .. chunk, .. png.AsSpan(afterIhdr)];
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
        }

        return ~crc;
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task An_upload_naming_a_banked_model_is_a_hit_with_the_evidence_chain(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var curator = server.Client(Role.Curator);
        using var submitter = server.Client(Role.Submitter);
        const string autoV2 = "0123abcdef";
        var png = A1111Png(autoV2);
        using var content = new ByteArrayContent(png);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");

        // Provenance alone: generator and the model reference with its hash scheme; no bank yet.
        var prov = JsonDocument.Parse(await (await submitter.PostAsync("v1/provenance", content)).Content.ReadAsStringAsync()).RootElement;
        Assert.Contains("0123abcdef", prov.GetRawText(), StringComparison.Ordinal);
        Assert.DoesNotContain("benign test landscape", prov.GetRawText(), StringComparison.Ordinal); // prompts only as SHA-256

        Assert.Equal(System.Net.HttpStatusCode.Created, (await curator.PostAsJsonAsync("v1/banks", new { name = "models" })).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await curator.PostAsJsonAsync("v1/banks/models/entries", new { signal_type = "civitai_autov2", signal = autoV2, labels = new { kind = "checkpoint" } })).StatusCode);

        JsonElement match = default;
        for (var i = 0; i < 100; i++)
        {
            using var upload = new ByteArrayContent(png);
            match = JsonDocument.Parse(await (await submitter.PostAsync("v1/match", upload)).Content.ReadAsStringAsync()).RootElement;
            if (match.GetProperty("matched").GetBoolean())
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.True(match.GetProperty("matched").GetBoolean(), match.GetRawText());
        var hit = match.GetProperty("hits").EnumerateArray().Single(h => h.GetProperty("signal_type").GetString() == "civitai_autov2");
        Assert.Equal("models", hit.GetProperty("bank").GetString());
        Assert.StartsWith("provenance:checkpoint", hit.GetProperty("variant").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Object, match.GetProperty("provenance").ValueKind);

        // Asked not to: no provenance block and no model hit.
        using var again = new ByteArrayContent(png);
        var plain = JsonDocument.Parse(await (await submitter.PostAsync("v1/match?provenance=false", again)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("provenance").ValueKind);
        Assert.False(plain.GetProperty("matched").GetBoolean());
    }
}
