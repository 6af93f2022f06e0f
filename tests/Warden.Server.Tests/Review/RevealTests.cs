using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Warden.Core.Hashing;
using Warden.Core.Imaging;
using Warden.Review;
using Warden.Review.Evidence;
using Warden.Review.Users;
using Warden.Server.Review;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Reviewer protection on the server, not in CSS: the media endpoint serves a server-made obscured derivative
/// whatever the settings, query string or role; original bytes only once per logged, counted reveal, to its
/// owner, for its item, before it expires; <c>fileViewedByEsp</c> only from such reveals.
/// </summary>
public sealed class RevealTests
{
    /// <summary>Every byte string the case's media came from: none of them may ever be served without a reveal.</summary>
    private static readonly byte[][] Originals = [Media.Jpeg(1), Media.Jpeg(1, quality: 60), Media.Jpeg(2)];

    private static readonly HashSet<string> OriginalDigests = [.. Originals.Select(Digest)];

    [Fact]
    public async Task Without_a_reveal_no_setting_query_or_role_gets_original_bytes()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        h.Review.Store.CreateUser("sub", "submitter", PasswordHashing.Hash(ReviewHarness.Password));
        using var alice = await h.LoginAsync();
        using var root = await h.LoginAsync("root");
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var items = AllItems(k);
        Assert.Equal(3, items.Count);

        // Grants that exist but are wrong for the request: root's grant for item 0 and alice's own for item 1.
        var rootGrant = await RevealAsync(root, caseId, items[0]);
        var otherItemGrant = await RevealAsync(alice, caseId, items[1]);
        var aliceViewsBefore = RevealedViews(h, items, "alice");

        var queries = new List<string>
        {
            "", "?original", "?original=1", "?original=0", "?original=false", "?ORIGINAL=1", "?original=1&original=1", "?original=&grant=",
            "?original=1&grant=not-a-grant", "?original=1&grant=" + new string('A', 43), "?original=1&grant=" + new string('x', 5000),
            "?raw=1", "?format=original", "?blur=0&greyscale=0&size=100000", "?size=0", "?download=1",
            "?grant=" + rootGrant.Grant, "?original=1&grant=" + rootGrant.Grant, "?grant=" + otherItemGrant.Grant,
        };
        var settings = new List<object>();
        foreach (var blur in new bool?[] { null, true, false })
        {
            foreach (var grey in new bool?[] { null, false })
            {
                foreach (var percent in new int?[] { null, 1, 25 })
                {
                    foreach (var size in new int?[] { null, 32, 256 })
                    {
                        settings.Add(new { blur, greyscale = grey, blur_percent = percent, size });
                    }
                }
            }
        }

        var served = 0;
        var refused = 0;
        foreach (var (setting, n) in settings.Select((s, n) => (s, n)))
        {
            using (var put = await alice.PutAsync("settings", setting))
            {
                Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
            }

            // Every query on one item per setting (rotating), the plain derivative of every item.
            var item = items[n % items.Count];
            foreach (var q in queries)
            {
                (await FetchAsync(alice, caseId, item, q)).Match(() => served++, () => refused++);
            }

            // Her own grant, asked for with any other item.
            if (item != items[1])
            {
                (await FetchAsync(alice, caseId, item, "?original=1&grant=" + otherItemGrant.Grant)).Match(() => served++, () => refused++);
            }

            foreach (var other in items)
            {
                (await FetchAsync(alice, caseId, other, "")).Match(() => served++, () => refused++);
            }
        }

        // Admins get the same; API keys and other roles get nothing at all.
        foreach (var q in queries)
        {
            (await FetchAsync(root, caseId, items[2], q)).Match(() => served++, () => refused++);
        }

        using var sub = ConsoleClient.Anonymous(h.Server.BaseAddress);
        foreach (var q in queries.Take(6))
        {
            using var r = await sub.GetAsync($"review/api/cases/{caseId}/items/{items[0]}/media{q}");
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.DoesNotContain(Digest(await r.Content.ReadAsByteArrayAsync()), OriginalDigests);
        }

        Assert.True(served > 300 && refused > 300, $"served {served}, refused {refused}");

        // None of this was a reveal: no new revealed view, and the grants still work for their owners only.
        Assert.Equal(aliceViewsBefore, RevealedViews(h, items, "alice"));
        Assert.Equal(Originals[0], await RedeemAsync(root, caseId, items[0], rootGrant.Grant));
        Assert.Contains(await RedeemAsync(alice, caseId, items[1], otherItemGrant.Grant), Originals);
    }

    [Fact]
    public async Task Grants_serve_once_to_their_owner_for_their_item_before_they_expire()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        using var root = await h.LoginAsync("root");
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var items = AllItems(k);

        // Another case's id with the right item is refused too (the grant names its case).
        var g = await RevealAsync(alice, caseId, items[0]);
        await AssertRefusedAsync(root, caseId, items[0], g.Grant);            // another user
        await AssertRefusedAsync(alice, caseId, items[1], g.Grant);           // another item
        await AssertRefusedAsync(alice, (caseId[0] == 'f' ? "e" : "f") + caseId[1..], items[0], g.Grant, HttpStatusCode.NotFound); // no such case
        Assert.Equal(Originals[0], await RedeemAsync(alice, caseId, items[0], g.Grant)); // still valid for its owner
        await AssertRefusedAsync(alice, caseId, items[0], g.Grant);           // used once

        // Expired: the clock moves past the grant's lifetime.
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        h.Review.Grants.Time = clock;
        var late = await RevealAsync(alice, caseId, items[0]);
        clock.Now += TimeSpan.FromSeconds(h.Review.Options.RevealSeconds + 1);
        await AssertRefusedAsync(alice, caseId, items[0], late.Grant);

        // A new reveal replaces the person's previous grant; re-obscure drops an unredeemed one.
        var first = await RevealAsync(alice, caseId, items[0]);
        var second = await RevealAsync(alice, caseId, items[2]);
        await AssertRefusedAsync(alice, caseId, items[0], first.Grant);
        using (var obscure = await alice.PostAsync("obscure"))
        {
            Assert.Equal(HttpStatusCode.NoContent, obscure.StatusCode);
        }

        await AssertRefusedAsync(alice, caseId, items[2], second.Grant);
        Assert.Equal(0, h.Review.Grants.Count); // nothing held once used, replaced, expired or dropped

        // The grant also travels as a header (same rules).
        var header = await RevealAsync(alice, caseId, items[2]);
        using var req = new HttpRequestMessage(HttpMethod.Get, $"review/api/cases/{caseId}/items/{items[2]}/media?original=1");
        req.Headers.Add("X-Warden-Reveal-Grant", header.Grant);
        using var res = await alice.Http.SendAsync(req);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("original", res.Headers.GetValues("X-Warden-Media").Single());
        Assert.Equal(Originals[2], await res.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Each_reveal_logs_exactly_one_revealed_view_and_counts_once()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var items = AllItems(k);
        var vault = h.Review.Vault!;
        var rng = new Random(5);
        var expected = new Dictionary<string, int>();
        for (var n = 1; n <= 12; n++)
        {
            var item = items[rng.Next(items.Count)];
            var auditBefore = h.Review.Audit.Query(new(Action: "evidence.view", Subject: "evidence:" + item)).Count(a => a.Details["what"] == "revealed");
            var derivativeFetches = rng.Next(0, 3);
            for (var i = 0; i < derivativeFetches; i++)
            {
                (await FetchAsync(alice, caseId, item, "")).Match(() => { }, () => Assert.Fail("derivative refused"));
            }

            var g = await RevealAsync(alice, caseId, item, reason: n % 3 == 0 ? "check\u0001 the uploader's claim" : null);
            Assert.Equal(n, g.ExposureToday);
            Assert.Equal(n, (await alice.GetAsync("me")).GetProperty("exposure_today").GetInt32());
            Assert.NotNull(await RedeemAsync(alice, caseId, item, g.Grant)); // fetching the original adds no view
            expected[item] = expected.GetValueOrDefault(item) + 1;
            Assert.Equal(expected[item], vault.Views(item).Count(v => v.What == "revealed" && v.Actor == "alice" && v.ActorKind == ActorKind.Human));
            Assert.Equal(auditBefore + 1, h.Review.Audit.Query(new(Action: "evidence.view", Subject: "evidence:" + item)).Count(a => a.Details["what"] == "revealed"));
            if (n % 3 == 0)
            {
                Assert.Contains(vault.Views(item), v => v.What == "revealed" && v.Purpose.EndsWith(": check the uploader's claim", StringComparison.Ordinal));
            }
        }

        Assert.Equal(12, items.Sum(i => vault.Views(i).Count(v => v.What == "revealed")));
        Assert.True(h.Review.Audit.Verify().Ok);
    }

    [Fact]
    public async Task The_exposure_cap_applies_to_reveals_and_a_refused_reveal_grants_nothing()
    {
        await using var h = await ReviewHarness.StartAsync(configure: r => r.DailyExposureCap = 2);
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var items = AllItems(k);
        await RevealAsync(alice, caseId, items[0]);
        await RevealAsync(alice, caseId, items[0]);
        using var refused = await alice.PostAsync($"cases/{caseId}/items/{items[1]}/reveal");
        Assert.Equal((HttpStatusCode)429, refused.StatusCode);
        Assert.Equal("exposure_cap", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("code").GetString());
        Assert.False(h.Review.Vault!.ViewedByEsp(items[1]));
        await AssertRefusedAsync(alice, caseId, items[1], null);

        // At the cap, derivatives are still served (they are not exposure to the original).
        (await FetchAsync(alice, caseId, items[1], "")).Match(() => { }, () => Assert.Fail("derivative refused at the cap"));
    }

    [Theory]
    [InlineData(new int[0])]
    [InlineData(new[] { 0 })]
    [InlineData(new[] { 1 })]
    [InlineData(new[] { 0, 1 })]
    public async Task FileViewedByEsp_is_true_exactly_for_items_revealed_before_the_report(int[] revealClusters)
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();

        // Blur off, largest preview: the reviewer looks at every derivative, more than once.
        (await alice.PutAsync("settings", new { blur = false, greyscale = false, size = 256 })).Dispose();
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var clusters = k.GetProperty("clusters").EnumerateArray().ToList();
        foreach (var item in AllItems(k))
        {
            for (var i = 0; i < 3; i++)
            {
                (await FetchAsync(alice, caseId, item, "")).Match(() => { }, () => Assert.Fail("derivative refused"));
            }
        }

        var revealed = new HashSet<string>();
        foreach (var c in revealClusters)
        {
            var item = clusters[c].GetProperty("representative").GetProperty("item").GetString()!;
            var g = await RevealAsync(alice, caseId, item);
            Assert.NotNull(await RedeemAsync(alice, caseId, item, g.Grant));
            revealed.Add(item);
        }

        foreach (var c in clusters)
        {
            using var d = await alice.PostAsync($"cases/{caseId}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "confirmed", classification = "A1" });
            Assert.Equal(HttpStatusCode.OK, d.StatusCode);
        }

        (await alice.PostAsync($"cases/{caseId}/report")).Dispose();
        var report = await ConsoleApiTests.WaitReportAsync(alice, caseId);
        Assert.Equal("finished", report.GetProperty("status").GetString());

        // Match the report's files to items by the MD5 the delivery recorded.
        var fake = Assert.Single(h.Fake.Reports);
        var md5OfItem = AllItems(k).ToDictionary(i => i, i => ExactHashes.Compute(Original(h, i)).Md5Hex);
        var files = report.GetProperty("files").EnumerateArray().ToList();
        Assert.Equal(3, files.Count);
        var viewedFiles = 0;
        foreach (var f in files)
        {
            var item = md5OfItem.Single(p => string.Equals(p.Value, f.GetProperty("md5").GetString(), StringComparison.OrdinalIgnoreCase)).Key;
            var info = fake.Files.Single(x => x.FileId == f.GetProperty("file_id").GetString()).FileInfos.Single();
            var viewed = info.Contains("<fileViewedByEsp>true</fileViewedByEsp>", StringComparison.Ordinal);
            Assert.Equal(revealed.Contains(item), viewed);
            Assert.Equal(revealed.Contains(item), h.Review.Vault!.ViewedByEsp(item));
            viewedFiles += viewed ? 1 : 0;
        }

        Assert.Equal(revealed.Count, viewedFiles);
    }

    [Fact]
    public async Task Media_that_is_not_an_image_is_served_as_a_placeholder_never_as_itself()
    {
        await using var h = await ReviewHarness.StartAsync();
        var kinds = new Dictionary<string, byte[]>
        {
            ["video.mp4"] = [0, 0, 0, 0x18, (byte)'f', (byte)'t', (byte)'y', (byte)'p', (byte)'i', (byte)'s', (byte)'o', (byte)'m', 0, 0, 2, 0, .. new byte[4000]],
            ["model.pt"] = [(byte)'P', (byte)'K', 3, 4, .. "archive/data.pkl"u8, .. new byte[100]],
            ["notes.txt"] = "plain text that is not a picture"u8.ToArray(),
            ["cut.jpg"] = Media.Jpeg(3)[..700],
            ["corrupt.png"] = [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, .. RandomNumberGenerator.GetBytes(300)],
        };
        foreach (var (name, bytes) in kinds)
        {
            var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var hit = new ReviewHit("known", "sha256", 0, new Dictionary<string, string>());
            await h.Review.IntakeAsync(bytes, new ContentHashes(ExactHashes.Compute(bytes), bytes.Length, null, null), [hit], new UploaderContext("u-files", null, null, null, name), CancellationToken.None);
        }

        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var items = AllItems(k);
        Assert.Equal(kinds.Count, items.Count);
        var digests = kinds.Values.Select(Digest).ToHashSet();
        foreach (var item in items)
        {
            using var r = await alice.Http.GetAsync($"review/api/cases/{caseId}/items/{item}/media");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("placeholder", r.Headers.GetValues("X-Warden-Media").Single());
            var body = await r.Content.ReadAsByteArrayAsync();
            Assert.DoesNotContain(Digest(body), digests);
            using var png = ImageDecoder.Decode(body);
            Assert.Equal(ImageFormat.Png, png.Format);

            // A reveal still gives the original bytes (for a person to judge), logged like any other.
            var g = await RevealAsync(alice, caseId, item);
            Assert.Contains(Digest(await RedeemAsync(alice, caseId, item, g.Grant)), digests);
        }
    }

    [Theory]
    [InlineData("{\"blur_percent\":0}")]
    [InlineData("{\"blur_percent\":26}")]
    [InlineData("{\"blur_percent\":-3}")]
    [InlineData("{\"size\":31}")]
    [InlineData("{\"size\":257}")]
    [InlineData("{\"size\":2147483647}")]
    [InlineData("{\"blur\":\"off\"}")]
    [InlineData("{\"size\":\"big\"}")]
    [InlineData("[]")]
    public async Task Out_of_range_settings_are_a_400(string json)
    {
        await using var h = await ReviewHarness.StartAsync();
        using var alice = await h.LoginAsync();
        using var req = new HttpRequestMessage(HttpMethod.Put, "review/api/settings") { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        req.Headers.Add(ReviewConsole.CsrfHeader, alice.Csrf);
        using var r = await alice.Http.SendAsync(req);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
    }

    [Fact]
    public async Task Blur_off_still_means_the_minimum_blur_and_settings_change_only_the_look()
    {
        await using var h = await ReviewHarness.StartAsync(configure: r => r.MinimumBlurPercent = 0); // configured below 1: raised to 1
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var caseId = k.GetProperty("id").GetString()!;
        var item = AllItems(k)[0];
        var looks = new List<(int W, bool Grey, double Sharpness)>();
        foreach (var s in new object[]
        {
            new { blur = true, greyscale = true },
            new { blur = false, greyscale = false, size = 256 },
            new { blur = true, greyscale = false, blur_percent = 25, size = 64 },
        })
        {
            (await alice.PutAsync("settings", s)).Dispose();
            using var r = await alice.Http.GetAsync($"review/api/cases/{caseId}/items/{item}/media");
            var body = await r.Content.ReadAsByteArrayAsync();
            using var img = ImageDecoder.Decode(body);
            looks.Add((img.Width, img.BytesPerPixel == 1, Sharpness(img)));
        }

        Assert.Equal((256, true), (looks[0].W, looks[0].Grey));
        Assert.Equal((256, false), (looks[1].W, looks[1].Grey));
        Assert.Equal((64, false), (looks[2].W, looks[2].Grey));

        // Even "no blur" is blurred far beyond the original's detail: compare with the original reduced alone.
        using var reducedOriginal = NetVips.Image.NewFromBuffer(Originals[0]).ThumbnailImage(256);
        var reference = reducedOriginal.Colourspace(NetVips.Enums.Interpretation.Bw).Cast(NetVips.Enums.BandFormat.Uchar);
        var refPixels = reference.WriteToMemory<byte>();
        var refSharpness = Sharpness(refPixels, reference.Width, reference.Height, 1);
        Assert.True(looks[1].Sharpness < refSharpness / 4, $"blur off: {looks[1].Sharpness} vs original {refSharpness}");
        Assert.Equal(0, h.Review.Store.Exposure(1, ReviewService.Today()));
        Assert.False(h.Review.Vault!.ViewedByEsp(item));
    }

    private static double Sharpness(DecodedImage img) => Sharpness(img.Pixels.ToArray(), img.PixelWidth, img.PixelHeight, img.BytesPerPixel);

    /// <summary>Mean absolute Laplacian (first channel): fine detail, near zero on smooth shading.</summary>
    private static double Sharpness(byte[] px, int w, int h, int bpp)
    {
        double sum = 0;
        int P(int x, int y) => px[((y * w) + x) * bpp];
        for (var y = 1; y < h - 1; y++)
        {
            for (var x = 1; x < w - 1; x++)
            {
                sum += Math.Abs((4 * P(x, y)) - P(x - 1, y) - P(x + 1, y) - P(x, y - 1) - P(x, y + 1));
            }
        }

        return sum / ((h - 2) * (w - 2));
    }

    private static string Digest(byte[] b) => Convert.ToHexString(SHA256.HashData(b));

    private static byte[] Original(ReviewHarness h, string item) =>
        h.Review.Vault!.ReadAsync(item, new EvidenceAccess(EvidenceActor.Component("test:oracle"), "test oracle", Revealed: false)).GetAwaiter().GetResult().Media;

    private static List<string> AllItems(JsonElement k) =>
        [.. k.GetProperty("clusters").EnumerateArray().SelectMany(c => c.GetProperty("members").EnumerateArray()).Select(m => m.GetProperty("item").GetString()!)];

    private static int RevealedViews(ReviewHarness h, IEnumerable<string> items, string actor) =>
        items.Sum(i => h.Review.Vault!.Views(i).Count(v => v.What == "revealed" && v.Actor == actor));

    private static async Task<(string Grant, int ExposureToday)> RevealAsync(ConsoleClient c, string caseId, string item, string? reason = null)
    {
        using var r = await c.PostAsync($"cases/{caseId}/items/{item}/reveal", reason is null ? null : new { reason });
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var j = await r.Content.ReadFromJsonAsync<JsonElement>();
        Assert.StartsWith($"/review/api/cases/{caseId}/items/{item}/media?original=1&grant=", j.GetProperty("original_url").GetString(), StringComparison.Ordinal);
        return (j.GetProperty("grant").GetString()!, j.GetProperty("exposure_today").GetInt32());
    }

    private static async Task<byte[]> RedeemAsync(ConsoleClient c, string caseId, string item, string grant)
    {
        using var r = await c.Http.GetAsync($"review/api/cases/{caseId}/items/{item}/media?original=1&grant={Uri.EscapeDataString(grant)}");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("original", r.Headers.GetValues("X-Warden-Media").Single());
        return await r.Content.ReadAsByteArrayAsync();
    }

    private static async Task AssertRefusedAsync(ConsoleClient c, string caseId, string item, string? grant, HttpStatusCode status = HttpStatusCode.Forbidden)
    {
        using var r = await c.Http.GetAsync($"review/api/cases/{caseId}/items/{item}/media?original=1" + (grant is null ? "" : "&grant=" + Uri.EscapeDataString(grant)));
        Assert.Equal(status, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain(Digest(await r.Content.ReadAsByteArrayAsync()), OriginalDigests);
    }

    /// <summary>One media request that is not a valid redemption: a derivative PNG (never an original) or a refusal.</summary>
    private static async Task<Outcome> FetchAsync(ConsoleClient c, string caseId, string item, string query)
    {
        using var r = await c.Http.GetAsync($"review/api/cases/{caseId}/items/{item}/media{query}");
        var body = await r.Content.ReadAsByteArrayAsync();
        Assert.DoesNotContain(Digest(body), OriginalDigests);
        if (r.StatusCode == HttpStatusCode.OK)
        {
            Assert.Equal("image/png", r.Content.Headers.ContentType?.MediaType);
            Assert.Equal("derivative", r.Headers.GetValues("X-Warden-Media").Single());
            Assert.Equal("no-store", r.Headers.CacheControl?.ToString());
            using var img = ImageDecoder.Decode(body);
            Assert.True(Math.Max(img.Width, img.Height) <= 256);
            return new Outcome(true);
        }

        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Equal("reveal_required", (JsonSerializer.Deserialize<JsonElement>(body)).GetProperty("code").GetString());
        return new Outcome(false);
    }

    private readonly record struct Outcome(bool Served)
    {
        public void Match(Action served, Action refused) => (Served ? served : refused)();
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}

/// <summary>PUT for the console client.</summary>
internal static class ConsoleClientExtensions
{
    public static async Task<HttpResponseMessage> PutAsync(this ConsoleClient c, string path, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, "review/api/" + path) { Content = JsonContent.Create(body) };
        request.Headers.Add(ReviewConsole.CsrfHeader, c.Csrf);
        return await c.Http.SendAsync(request);
    }
}
