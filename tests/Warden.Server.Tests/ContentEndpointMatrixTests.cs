using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NetVips;
using Warden.Core.Tests;
using Warden.Server.Auth;
using Warden.Storage;
using static Warden.Server.Tests.HttpAssert;

namespace Warden.Server.Tests;

/// <summary>
/// Every endpoint that takes content × every supported format (and non-images, random bytes, empty bodies and
/// truncations at many offsets): 200 or a documented 4xx problem, never a 500. The digests of anything uploaded
/// to /v1/hash and /v1/match are always computed, so nothing evades digest matching by its format, and a banked
/// image re-encoded in any format matches by PDQ.
/// </summary>
public sealed class ContentEndpointMatrixTests
{
    private const int Width = 320;
    private const int Height = 240;

    // Statuses docs/api.md lists for content endpoints (the model scanner's 422 invalid_model included).
    private static readonly HashSet<int> Documented = [400, 413, 415, 422];

    private static readonly string[] Endpoints = ["v1/hash", "v1/match", "v1/provenance", "h/hash", "m/lookup", "v1/models/scan"];

    private static Image Photo(int seed)
    {
        // Media.Jpeg's blobs, uncompressed: large smooth shapes that keep PDQ stable across re-encodings.
        using var jpeg = Image.NewFromBuffer(Media.Jpeg(seed, Width, Height));
        return jpeg.Copy();
    }

    private static byte[] Rgb(Image image)
    {
        using var flat = image.Bands == 3 ? image.Copy() : image.ExtractBand(0, 3);
        return flat.WriteToMemory<byte>();
    }

    /// <summary>Every supported format (BMP in each layout) of one image.</summary>
    internal static IReadOnlyList<(string Name, byte[] Data)> Encodings(int seed)
    {
        using var image = Photo(seed);
        var rgb = Rgb(image);
        var list = new List<(string, byte[])>
        {
            ("jpeg", image.JpegsaveBuffer(q: 90)),
            ("jpeg-progressive", image.JpegsaveBuffer(q: 85, interlace: true)),
            ("png", image.PngsaveBuffer()),
            ("png-palette", image.PngsaveBuffer(palette: true)),
            ("webp-lossy", image.WebpsaveBuffer(q: 85)),
            ("webp-lossless", image.WebpsaveBuffer(lossless: true)),
            ("gif", image.GifsaveBuffer()),
            ("tiff", image.TiffsaveBuffer()),
            ("tiff-deflate", image.TiffsaveBuffer(compression: Enums.ForeignTiffCompression.Deflate)),
            ("tiff-big", image.TiffsaveBuffer(bigtiff: true)),
        };

        // An animated GIF: three frames stacked with page-height (the first frame is the image).
        using (var frames = Image.Arrayjoin([image, image.Invert(), image.Flip(Enums.Direction.Horizontal)], across: 1))
        using (var animated = frames.Mutate(m =>
        {
            m.Set(GValue.GIntType, "page-height", Height);
            m.Set(GValue.ArrayIntType, "delay", new[] { 100, 100, 100 });
        }))
        {
            list.Add(("gif-animated", animated.GifsaveBuffer()));
        }

        foreach (var kind in Enum.GetValues<BmpKind>())
        {
            list.Add(("bmp-" + kind.ToString().ToLowerInvariant(), BmpWriter.Encode(rgb, Width, Height, kind)));
        }

        return list;
    }

    /// <summary>Content that is not an image.</summary>
    internal static IReadOnlyList<(string Name, byte[] Data)> NonImages()
    {
        var zip = new MemoryStream();
        using (var archive = new System.IO.Compression.ZipArchive(zip, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            using var entry = new StreamWriter(archive.CreateEntry("notes.txt").Open());
            entry.Write("benign notes");
        }

        var list = new List<(string, byte[])>
        {
            ("text", Encoding.UTF8.GetBytes("A plain text file.\nNothing to see here.\n")),
            ("pdf", Encoding.ASCII.GetBytes("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")),
            ("zip", zip.ToArray()),
            ("json", Encoding.UTF8.GetBytes("{\"hello\": [1, 2, 3]}")),
            ("one-byte", [0x42]),
            ("bm-header-only", Encoding.ASCII.GetBytes("BM")),
            ("gif-magic-only", Encoding.ASCII.GetBytes("GIF89a")),
            ("tiff-magic-only", [0x49, 0x49, 0x2A, 0x00]),
            ("riff-webp-magic", Encoding.ASCII.GetBytes("RIFF\0\0\0\0WEBPVP8 ")),
        };
        var rng = new Random(1234);
        foreach (var size in new[] { 7, 100, 4096, 50_000 })
        {
            var bytes = new byte[size];
            rng.NextBytes(bytes);
            list.Add(($"random-{size}", bytes));
        }

        return list;
    }

    /// <summary>Cuts of <paramref name="data"/> at header-sized offsets and at fractions of its length.</summary>
    internal static IEnumerable<(string Name, byte[] Data)> Truncations(string name, byte[] data)
    {
        var offsets = new SortedSet<int> { 1, 2, 3, 4, 6, 8, 12, 14, 16, 18, 26, 30, 54, 100, 300 };
        foreach (var fraction in new[] { 0.1, 0.25, 0.5, 0.75, 0.9, 0.99 })
        {
            offsets.Add((int)(data.Length * fraction));
        }

        offsets.Add(data.Length - 1);
        return offsets.Where(o => o > 0 && o < data.Length).Select(o => ($"{name}[..{o}]", data[..o]));
    }

    private static HttpContent Body(string endpoint, byte[] data)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        if (endpoint is "h/hash" or "m/lookup")
        {
            // HMA clients send multipart with the field named after the content type.
            return new MultipartFormDataContent { { content, "photo", "upload.bin" } };
        }

        return content;
    }

    private static async Task<(int Status, JsonElement Body, string? MediaType)> PostAsync(HttpClient client, string endpoint, byte[] data)
    {
        using var response = await client.PostAsync(endpoint, Body(endpoint, data));
        var text = await response.Content.ReadAsStringAsync();
        JsonElement json = default;
        if (text.Length > 0)
        {
            try
            {
                json = JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
                Assert.Fail($"POST {endpoint}: {(int)response.StatusCode} with a body that is not JSON: {text[..Math.Min(200, text.Length)]}");
            }
        }

        return ((int)response.StatusCode, json, response.Content.Headers.ContentType?.MediaType);
    }

    private static void AssertAnswer(string endpoint, string name, byte[] data, (int Status, JsonElement Body, string? MediaType) r)
    {
        var where = $"POST {endpoint} with {name} ({data.Length} bytes)";
        Assert.True(r.Status == 200 || Documented.Contains(r.Status), $"{where}: {r.Status} {r.Body}");
        if (r.Status != 200)
        {
            Assert.Equal("application/problem+json", r.MediaType);
            Assert.True(r.Body.TryGetProperty("code", out var code) && code.GetString() is { Length: > 0 }, $"{where}: no code in {r.Body}");
            Assert.Equal(r.Status, r.Body.GetProperty("status").GetInt32());
        }

        // Hashing and matching never refuse content for what it is, and always give its digests.
        if (endpoint is "v1/hash" or "v1/match" or "v1/provenance" or "h/hash" or "m/lookup")
        {
            Assert.True(r.Status == 200, $"{where}: {r.Status} {r.Body}");
        }

        var sha256 = Convert.ToHexStringLower(SHA256.HashData(data));
        if (endpoint == "v1/hash")
        {
            Assert.Equal(sha256, r.Body.GetProperty("sha256").GetString());
            Assert.Equal(JsonValueKind.Array, r.Body.GetProperty("warnings").ValueKind);
        }
        else if (endpoint == "v1/match")
        {
            Assert.Equal(sha256, r.Body.GetProperty("signals").GetProperty("sha256").GetString());
            Assert.Equal(JsonValueKind.Array, r.Body.GetProperty("warnings").ValueKind);
            if (r.Body.GetProperty("signals").GetProperty("pdq").ValueKind == JsonValueKind.Null)
            {
                Assert.Contains(r.Body.GetProperty("warnings").EnumerateArray(), w => w.GetProperty("stage").GetString() == "image");
            }
        }
        else if (endpoint == "v1/provenance")
        {
            Assert.Equal(sha256, r.Body.GetProperty("file").GetProperty("sha256").GetString());
            Assert.Equal(JsonValueKind.Array, r.Body.GetProperty("warnings").ValueKind);
        }
    }

    [Fact]
    public async Task Every_content_endpoint_answers_every_format_without_a_500()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var client = server.Client(Role.Admin);
        var corpus = new List<(string Name, byte[] Data)>();
        var encodings = Encodings(5);
        corpus.AddRange(encodings);
        corpus.AddRange(NonImages());
        foreach (var (name, data) in encodings.Where(e => e.Name is "jpeg" or "jpeg-progressive" or "png" or "webp-lossy" or "webp-lossless" or "gif" or "gif-animated" or "tiff" or "tiff-big" or "bmp-rle8" or "bmp-rle4" or "bmp-bpp16" or "bmp-bpp24" or "bmp-bpp32v5" or "bmp-bpp24core"))
        {
            corpus.AddRange(Truncations(name, data));
        }

        foreach (var (name, data) in NonImages().Where(n => n.Name is "zip" or "pdf"))
        {
            corpus.AddRange(Truncations(name, data));
        }

        var decoded = new HashSet<string>();
        foreach (var endpoint in Endpoints)
        {
            foreach (var (name, data) in corpus)
            {
                var r = await PostAsync(client, endpoint, data);
                AssertAnswer(endpoint, name, data, r);
                if (endpoint == "v1/hash" && r.Body.GetProperty("content_kind").GetString() == "image")
                {
                    decoded.Add(name);
                }
            }

            // An empty body is a documented 400 everywhere.
            var empty = await PostAsync(client, endpoint, []);
            Assert.True(empty.Status == 400, $"POST {endpoint} with an empty body: {empty.Status} {empty.Body}");
            Assert.Equal("empty_upload", empty.Body.GetProperty("code").GetString());
        }

        // Every whole encoding decodes as an image (no supported format is refused).
        foreach (var (name, _) in encodings)
        {
            Assert.Contains(name, decoded);
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("readyz")).StatusCode);
    }

#pragma warning disable CA5350, CA5351 // MD5 and SHA-1 are bank signal types here, not security
    [Fact]
    public async Task A_banked_image_matches_in_every_format_and_a_banked_non_image_by_its_digest()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var client = server.Client(Role.Admin);
        await Json(await client.PostAsJsonAsync("v1/banks", new { name = "formats", kind = "block" }), HttpStatusCode.Created);
        var encodings = Encodings(7);
        var original = encodings.Single(e => e.Name == "png").Data;
        var pdq = (await Json(await client.PostAsync("v1/hash", Body("v1/hash", original)))).GetProperty("pdq").GetProperty("hash").GetString();
        await Json(await client.PostAsJsonAsync("v1/banks/formats/entries", new { signal_type = "pdq", signal = pdq }), HttpStatusCode.Created);
        var pdf = NonImages().Single(n => n.Name == "pdf").Data;
        var zip = NonImages().Single(n => n.Name == "zip").Data;
        await Json(await client.PostAsJsonAsync("v1/banks/formats/entries", new { signal_type = "sha256", signal = Convert.ToHexStringLower(SHA256.HashData(pdf)) }), HttpStatusCode.Created);
        await Json(await client.PostAsJsonAsync("v1/banks/formats/entries", new { signal_type = "md5", signal = Convert.ToHexStringLower(MD5.HashData(zip)) }), HttpStatusCode.Created);
        var truncatedJpeg = encodings.Single(e => e.Name == "jpeg").Data[..5000];
        await Json(await client.PostAsJsonAsync("v1/banks/formats/entries", new { signal_type = "sha1", signal = Convert.ToHexStringLower(SHA1.HashData(truncatedJpeg)) }), HttpStatusCode.Created);
        await UploadValidationTests.EventuallyAsync(async () => await Json(await client.GetAsync($"v1/match?signal_type=pdq&signal={pdq}")), m => m.GetProperty("matched").GetBoolean());

        foreach (var (name, data) in encodings.Where(e => e.Name != "bmp-bpp1"))
        {
            var match = await Json(await client.PostAsync("v1/match", Body("v1/match", data)));
            Assert.True(match.GetProperty("matched").GetBoolean(), $"{name}: {match}");
            Assert.Contains(match.GetProperty("hits").EnumerateArray(), h => h.GetProperty("signal_type").GetString() == "pdq");
            Assert.DoesNotContain(match.GetProperty("warnings").EnumerateArray(), w => w.GetProperty("stage").GetString() == "image");

            // The HMA lookup finds it too.
            var hma = await Json(await client.PostAsync("m/lookup", Body("m/lookup", data)));
            Assert.True(hma.GetProperty("pdq").TryGetProperty("formats", out _), $"{name} via /m/lookup: {hma}");
        }

        foreach (var (name, data, type) in new[] { ("pdf", pdf, "sha256"), ("zip", zip, "md5"), ("truncated jpeg", truncatedJpeg, "sha1") })
        {
            var match = await Json(await client.PostAsync("v1/match", Body("v1/match", data)));
            Assert.True(match.GetProperty("matched").GetBoolean(), $"{name}: {match}");
            Assert.Contains(match.GetProperty("hits").EnumerateArray(), h => h.GetProperty("signal_type").GetString() == type);
            var warning = match.GetProperty("warnings").EnumerateArray().First(w => w.GetProperty("stage").GetString() == "image");
            Assert.Equal(name == "truncated jpeg" ? "truncated_image" : "unsupported_format", warning.GetProperty("code").GetString());
            Assert.Contains(match.GetProperty("warnings").EnumerateArray(), w => w.GetProperty("stage").GetString() == "provenance" || name == "truncated jpeg");
        }
    }
#pragma warning restore CA5350, CA5351
}
