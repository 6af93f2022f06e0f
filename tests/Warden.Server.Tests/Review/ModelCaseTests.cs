using System.Text.Json;
using Microsoft.Playwright;
using Warden.Core.ModelFiles;
using Warden.Core.Tests.Models;
using Warden.Server.Auth;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Model uploads in review: a model file that matches a banked model (exact, any near tier, or a derivation) opens or
/// joins its uploader's case through the same intake as a matched image, and the console shows it as a model —
/// which banked model it derives from, by which tier, with scores, coefficients, estimated error and lineage labels —
/// never as media. Unrelated models and allow-listed bases alone open nothing.
/// </summary>
public sealed class ModelCaseTests
{
    private const string Chromium = "/usr/bin/chromium";

    private sealed record Fixture(ReviewHarness Harness, List<FixtureTensor> Base, List<FixtureTensor> Bad, List<FixtureTensor> Lora) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Harness.DisposeAsync();
    }

    private static async Task<Fixture> StartAsync(TempDir dir)
    {
        var h = await ReviewHarness.StartAsync();
        var b = ModelFixtures.Base(1);
        var bad = ModelFixtures.FineTune(b, 2);
        var lora = ModelFixtures.Lora(4);
        using var output = new StringWriter();
        using var error = new StringWriter();
        foreach (var args in new[]
        {
            new[] { "bank", "create", "bases", "--kind", "allow" },
            ["bank", "create", "bad-models"],
            ["model", "add", dir.File("sd15-base.safetensors", ModelWriters.Safetensors(b)), "--bank", "bases", "--name", "sd15-base"],
            ["model", "add", dir.File("bad.safetensors", ModelWriters.Safetensors(bad)), "--bank", "bad-models", "--name", "bad-finetune", "--label", "category=test-lineage", "--label", "derived_from=sd15-base", "--label", "base_model=sd15-base"],
            ["model", "add", dir.File("bad-lora.safetensors", ModelWriters.Safetensors(lora)), "--bank", "bad-models", "--name", "bad-lora", "--label", "base_model=sd15-base"],
        })
        {
            Assert.True(Cli.WardenCli.Run([.. args, "--db", h.Server.Database], output, error) == 0, error.ToString());
        }

        return new Fixture(h, b, bad, lora);
    }

    private static byte[] Q8(List<FixtureTensor> m) =>
        ModelWriters.Gguf([.. m.Where(t => t.Values.Length % 32 == 0 && !ModelFixtures.IsBuffer(t.Name)).Select(t => t.As(TensorDType.Q8_0))], []);

    private static async Task UploadAsync(HttpClient submitter, string path, byte[] file, string uploader, string name)
    {
        using var r = await submitter.PostAsync($"{path}?uploader_id={uploader}&uploader_ip=192.0.2.7&file_name={name}", new ByteArrayContent(file));
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
    }

    private static async Task<List<JsonElement>> ItemsAsync(ConsoleClient api, string uploader)
    {
        var cases = (await api.GetAsync("cases?uploader=" + uploader)).GetProperty("cases").EnumerateArray().ToList();
        var items = new List<JsonElement>();
        foreach (var c in cases)
        {
            var k = await api.GetAsync("cases/" + c.GetProperty("id").GetString());
            items.AddRange(k.GetProperty("clusters").EnumerateArray().Select(x => x.GetProperty("representative")));
        }

        return items;
    }

    private static JsonElement Link(JsonElement item, string tier, string model) =>
        item.GetProperty("model").GetProperty("links").EnumerateArray().First(l => l.GetProperty("tier").GetString() == tier && l.GetProperty("model").GetString() == model);

    [Fact]
    public async Task Model_uploads_that_match_banked_models_become_case_items_with_their_lineage()
    {
        using var dir = new TempDir();
        await using var f = await StartAsync(dir);
        var h = f.Harness;
        using var submitter = h.Server.Client(Role.Submitter);
        using var api = await h.LoginAsync();

        // Every tier, through both model endpoints, each by its own uploader.
        var uploads = new (string Uploader, string Path, string Name, byte[] File, string Tier, string Model)[]
        {
            ("m-r", "v1/match", "bad-q8.gguf", Q8(f.Bad), "R", "bad-finetune"),
            ("m-t4", "v1/models/scan", "bad-noised.safetensors", ModelWriters.Safetensors(ModelFixtures.FineTune(f.Bad, 9, 0.0002)), "T4", "bad-finetune"),
            ("m-t2", "v1/match", "bad.ckpt", ModelWriters.TorchZip(ModelFixtures.Cast(f.Bad, TensorDType.F16)), "T2", "bad-finetune"),
            ("m-t5", "v1/match", "baked.safetensors", ModelWriters.Safetensors(ModelFixtures.BakeIn(f.Base, f.Lora, 0.8)), "T5", "bad-lora"),
        };
        foreach (var u in uploads)
        {
            await UploadAsync(submitter, u.Path, u.File, u.Uploader, u.Name);
            var item = Assert.Single(await ItemsAsync(api, u.Uploader));
            var model = item.GetProperty("model");
            Assert.Equal(u.File.Length, model.GetProperty("size").GetInt64());
            Assert.Equal("sd1", model.GetProperty("family").GetString());
            Assert.Equal(u.Name, item.GetProperty("file_name").GetString());
            var link = Link(item, u.Tier, u.Model);
            Assert.Equal("bad-models", link.GetProperty("bank").GetString());
            Assert.Equal("block", link.GetProperty("bank_kind").GetString());
            Assert.Equal("sd15-base", link.GetProperty("labels").GetProperty("base_model").GetString());
            Assert.Contains(item.GetProperty("matches").EnumerateArray(), m => m.GetProperty("bank").GetString() == "bad-models");
            switch (u.Tier)
            {
                case "R":
                    Assert.Equal("Q8_0", link.GetProperty("precision").GetString());
                    Assert.InRange(link.GetProperty("estimated_error").GetDouble(), 0, NearMatcher.PrecisionTolerance(TensorDType.Q8_0));
                    Assert.Equal("sd15-base", link.GetProperty("labels").GetProperty("derived_from").GetString());
                    break;
                case "T5":
                    Assert.True(link.GetProperty("adapter").GetBoolean());
                    Assert.InRange(link.GetProperty("coefficient").GetDouble(), 0.75, 0.85);
                    Assert.Equal("lora-bake-in", link.GetProperty("derivation").GetString());
                    break;
                case "T2":
                    Assert.StartsWith("mfv1_", link.GetProperty("signal").GetString(), StringComparison.Ordinal);
                    break;
            }

            // The file is preserved like media (vault on), but the console serves no preview of a model.
            Assert.False(string.IsNullOrEmpty(item.GetProperty("item").GetString()));
        }

        // The same uploader's second model joins its case (one case, two items); the exact copy clusters apart.
        await UploadAsync(submitter, "v1/match", ModelWriters.TorchZip(ModelFixtures.Cast(f.Bad, TensorDType.F16)), "m-r", "again.ckpt");
        Assert.Equal(2, (await ItemsAsync(api, "m-r")).Count);
        Assert.Single((await api.GetAsync("cases?uploader=m-r")).GetProperty("cases").EnumerateArray());

        // Nothing opens for an unrelated fine-tune of the base, the allow-listed base itself, or its Q8 copy.
        foreach (var (name, file) in new[]
        {
            ("other.safetensors", ModelWriters.Safetensors(ModelFixtures.FineTune(f.Base, 5))),
            ("base.safetensors", ModelWriters.Safetensors(f.Base)),
            ("base-q8.gguf", Q8(f.Base)),
        })
        {
            await UploadAsync(submitter, "v1/match", file, "m-clean", name);
            await UploadAsync(submitter, "v1/models/scan", file, "m-clean", name);
        }

        Assert.Empty(await ItemsAsync(api, "m-clean"));
    }

    [SkippableFact]
    public async Task The_console_shows_a_model_case_with_its_lineage_and_no_preview()
    {
        Skip.IfNot(File.Exists(Chromium), "Chromium is not installed at /usr/bin/chromium (apt-get install chromium).");
        using var dir = new TempDir();
        await using var f = await StartAsync(dir);
        var h = f.Harness;
        using (var submitter = h.Server.Client(Role.Submitter))
        {
            await UploadAsync(submitter, "v1/match", Q8(f.Bad), "model-uploader", "anime-mix-v3.Q8_0.gguf");
            await UploadAsync(submitter, "v1/match", ModelWriters.Safetensors(ModelFixtures.BakeIn(f.Base, f.Lora, 0.8)), "model-uploader", "anime-mix-v3-lora-merged.safetensors");
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        page.SetDefaultTimeout(30_000);
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review").ToString());
        await page.GetByLabel("User name").FillAsync("alice");
        await page.GetByLabel("Password").FillAsync(ReviewHarness.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#queue").WaitForAsync();
        await page.Locator("#queue a.case-link", new() { HasText = "model-uploader" }).ClickAsync();

        // The GGUF copy: file, size, format, architecture; an R link with precision and estimated error; lineage labels.
        var panel = page.Locator("#model-0");
        await Assertions.Expect(panel).ToContainTextAsync("anime-mix-v3.Q8_0.gguf");
        await Assertions.Expect(page.Locator("#model-format-0")).ToHaveTextAsync("gguf");
        await Assertions.Expect(page.Locator("#model-arch-0")).ToContainTextAsync("sd1");
        await Assertions.Expect(page.Locator("#model-size-0")).ToContainTextAsync("KiB");
        var lineage = page.Locator("#lineage-0");
        await Assertions.Expect(lineage).ToContainTextAsync("bad-finetune");
        await Assertions.Expect(lineage).ToContainTextAsync("same weights in reduced precision");
        await Assertions.Expect(lineage).ToContainTextAsync("Q8_0, estimated error");
        await Assertions.Expect(lineage).ToContainTextAsync("derived_from: sd15-base");
        await Assertions.Expect(lineage).ToContainTextAsync("base_model: sd15-base");

        // The bake-in: a T5 link to the LoRA with its strength.
        var second = page.Locator("#lineage-1");
        await Assertions.Expect(second).ToContainTextAsync("bad-lora");
        await Assertions.Expect(second).ToContainTextAsync("LoRA baked in at strength 0.80");

        // No media preview and no reveal for a model file; the decision form is there as for media.
        await Assertions.Expect(page.Locator("img.media")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#reveal-0")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#confirm-0")).ToBeVisibleAsync();
        await page.ScreenshotAsync(new() { Path = Screenshot("review-model-case.png"), FullPage = true });

        // Decided like any cluster.
        await page.Locator("#fp-0").ClickAsync();
        await Assertions.Expect(page.Locator("#cluster-0 .decided")).ToContainTextAsync("false positive");
    }

    /// <summary>docs/images/NAME when WARDEN_SCREENSHOTS=1 (to refresh the committed one), else a temporary folder.</summary>
    private static string Screenshot(string name)
    {
        if (Environment.GetEnvironmentVariable("WARDEN_SCREENSHOTS") != "1")
        {
            var temp = Path.Combine(Path.GetTempPath(), "warden-screenshots");
            Directory.CreateDirectory(temp);
            return Path.Combine(temp, name);
        }

        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
        {
            dir = dir.Parent;
        }

        var target = Path.Combine(dir?.FullName ?? Path.GetTempPath(), "docs", "images");
        Directory.CreateDirectory(target);
        return Path.Combine(target, name);
    }
}
