using System.Net;
using System.Text.Json;
using Warden.Core.ModelFiles;
using Warden.Core.Tests.Models;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>Model files through the API: a re-packaged copy of a banked model matches; hostile pickles are flagged, never run.</summary>
public sealed class ModelApiTests
{
    private static async Task<JsonElement> ScanAsync(HttpClient client, byte[] file)
    {
        using var content = new ByteArrayContent(file);
        var response = await client.PostAsync("v1/models/scan", content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_converted_copy_of_a_banked_model_matches_and_a_hostile_pickle_is_flagged(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect);
        using var dir = new TempDir();
        var model = ModelFixtures.Base(seed: 3);
        var original = dir.File("original.safetensors", ModelWriters.Safetensors(model));

        // Register it with the CLI (all identity signals into a bank), as an operator would.
        using (var output = new StringWriter())
        using (var error = new StringWriter())
        {
            Assert.True(Cli.WardenCli.Run(["bank", "create", "bad-models", "--db", server.Database], output, error) == 0, error.ToString());
            Assert.True(Cli.WardenCli.Run(["model", "add", "--bank", "bad-models", original, "--db", server.Database], output, error) == 0, error.ToString());
        }

        using var submitter = server.Client(Role.Submitter);

        // The same weights re-saved as a PyTorch checkpoint and cast to fp16: a different file, the same model.
        var converted = ModelWriters.TorchZip(ModelFixtures.Cast(model, TensorDType.F16));
        JsonElement scan = default;
        for (var i = 0; i < 50; i++)
        {
            scan = await ScanAsync(submitter, converted);
            if (scan.GetProperty("match").GetProperty("matched").GetBoolean())
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.Equal("torch-zip", scan.GetProperty("format").GetString());
        Assert.Equal("safe", scan.GetProperty("verdict").GetString());
        Assert.True(scan.GetProperty("match").GetProperty("matched").GetBoolean(), scan.GetRawText());
        Assert.Contains(scan.GetProperty("match").GetProperty("hits").EnumerateArray(), h => h.GetProperty("signal_type").GetString()!.StartsWith("mfv1_", StringComparison.Ordinal));

        // Hostile pickles: reported dangerous; the marker file their payload would create never appears.
        var marker = Path.Combine(dir.Path, "pwned");
        foreach (var (name, bytes) in ModelFixtures.HostilePickles(marker).Take(5))
        {
            using var content = new ByteArrayContent(bytes);
            var response = await submitter.PostAsync("v1/models/scan", content);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.UnprocessableEntity, $"{name}: {(int)response.StatusCode} {text}");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                Assert.NotEqual("safe", JsonDocument.Parse(text).RootElement.GetProperty("verdict").GetString());
            }
        }

        Assert.False(File.Exists(marker));

        // Scanning by path is for admins, under configured roots only.
        Assert.Equal(HttpStatusCode.Forbidden, (await submitter.PostAsJsonAsync("v1/models/scan-path", new { path = original })).StatusCode);
        using var admin = server.Client(Role.Admin);
        Assert.Equal(HttpStatusCode.Forbidden, (await admin.PostAsJsonAsync("v1/models/scan-path", new { path = original })).StatusCode);
    }

    [Fact]
    public async Task Near_tiers_answer_with_the_registered_models_labels()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var dir = new TempDir();
        var b = ModelFixtures.Base(1);
        var bad = ModelFixtures.FineTune(b, 2);
        var unrelated = ModelFixtures.FineTune(b, 3);
        using (var output = new StringWriter())
        using (var error = new StringWriter())
        {
            foreach (var args in new[]
            {
                new[] { "bank", "create", "bases", "--kind", "allow" },
                ["bank", "create", "bad-models"],
                ["model", "add", "--bank", "bases", dir.File("base.safetensors", ModelWriters.Safetensors(b))],
                ["model", "add", "--bank", "bad-models", dir.File("bad.safetensors", ModelWriters.Safetensors(bad)), "--label", "category=test-lineage"],
            })
            {
                Assert.True(Cli.WardenCli.Run([.. args, "--db", server.Database], output, error) == 0, error.ToString());
            }
        }

        using var submitter = server.Client(Role.Submitter);

        // A Q8_0 GGUF copy: the same weights in reduced precision, with the bad model's labels.
        var q8 = ModelWriters.Gguf([.. bad.Where(t => t.Values.Length % 32 == 0 && !ModelFixtures.IsBuffer(t.Name)).Select(t => t.As(TensorDType.Q8_0))], []);
        var scan = await ScanAsync(submitter, q8);
        var hit = Assert.Single(scan.GetProperty("near").EnumerateArray());
        Assert.Equal("R", hit.GetProperty("tier").GetString());
        Assert.Equal("bad-models", hit.GetProperty("bank").GetString());
        Assert.Equal("Q8_0", hit.GetProperty("precision").GetString());
        Assert.InRange(hit.GetProperty("estimated_error").GetDouble(), 0, NearMatcher.PrecisionTolerance(TensorDType.Q8_0));
        Assert.Equal("test-lineage", hit.GetProperty("labels").GetProperty("category").GetString());

        // A merge 0.6·bad + 0.4·unrelated: a T5 derivation naming the bad model and its share.
        var merge = await ScanAsync(submitter, ModelWriters.Safetensors(ModelFixtures.Merge(bad, 0.6, unrelated, 0.4)));
        var derivation = merge.GetProperty("derivation");
        var term = Assert.Single(derivation.GetProperty("terms").EnumerateArray(), t => t.GetProperty("bank").GetString() == "bad-models");
        Assert.InRange(term.GetProperty("coefficient").GetDouble(), 0.55, 0.65);
        Assert.Equal("test-lineage", term.GetProperty("labels").GetProperty("category").GetString());

        // An unrelated fine-tune of the same base: no near tier names the bad model.
        var clean = await ScanAsync(submitter, ModelWriters.Safetensors(unrelated));
        Assert.DoesNotContain(clean.GetProperty("near").EnumerateArray(), h => h.GetProperty("bank").GetString() == "bad-models");
        Assert.True(clean.GetProperty("derivation").ValueKind == JsonValueKind.Null || clean.GetProperty("derivation").GetProperty("terms").EnumerateArray().All(t => t.GetProperty("bank").GetString() != "bad-models"));
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> MatchAsync(HttpClient client, byte[] file)
    {
        using var content = new ByteArrayContent(file);
        var response = await client.PostAsync("v1/match", content);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task Model_uploads_to_match_are_scanned_with_near_tiers()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var dir = new TempDir();
        var b = ModelFixtures.Base(1);
        var bad = ModelFixtures.FineTune(b, 4);
        var unrelated = ModelFixtures.FineTune(b, 5);
        using (var output = new StringWriter())
        using (var error = new StringWriter())
        {
            foreach (var args in new[]
            {
                new[] { "bank", "create", "bases", "--kind", "allow" },
                ["bank", "create", "bad-models"],
                ["model", "add", "--bank", "bases", dir.File("base.safetensors", ModelWriters.Safetensors(b))],
                ["model", "add", "--bank", "bad-models", dir.File("bad.safetensors", ModelWriters.Safetensors(bad)), "--label", "category=test-lineage"],
            })
            {
                Assert.True(Cli.WardenCli.Run([.. args, "--db", server.Database], output, error) == 0, error.ToString());
            }
        }

        using var submitter = server.Client(Role.Submitter);
        var learned = bad.Where(t => !ModelFixtures.IsBuffer(t.Name)).ToList();

        // Every container a model host sees, each uploaded to /v1/match like any other file.
        var uploads = new (string Format, byte[] File, string Tier)[]
        {
            ("gguf", ModelWriters.Gguf([.. learned.Where(t => t.Values.Length % 32 == 0).Select(t => t.As(TensorDType.Q8_0))], []), "R"),
            ("onnx", OnnxWriter.Model(ModelFixtures.Cast(learned, TensorDType.F16)), "R"),
            ("safetensors", ModelWriters.Safetensors(ModelFixtures.FineTune(bad, 9, 0.0002)), "T4"),
        };
        foreach (var (format, file, tier) in uploads)
        {
            var (status, body) = await MatchAsync(submitter, file);
            Assert.True(status == HttpStatusCode.OK, $"{format}: {status} {body}");
            Assert.Equal(format, body.GetProperty("format").GetString());
            var hit = Assert.Single(body.GetProperty("near").EnumerateArray(), h => h.GetProperty("bank").GetString() == "bad-models");
            Assert.Equal(tier, hit.GetProperty("tier").GetString());
            Assert.Equal("test-lineage", hit.GetProperty("labels").GetProperty("category").GetString());
        }

        // A merge answers with its derivation; an unrelated fine-tune names nothing.
        var (_, merge) = await MatchAsync(submitter, ModelWriters.Safetensors(ModelFixtures.Merge(bad, 0.7, unrelated, 0.3)));
        Assert.Contains(merge.GetProperty("derivation").GetProperty("terms").EnumerateArray(), t => t.GetProperty("bank").GetString() == "bad-models");
        var (_, clean) = await MatchAsync(submitter, ModelWriters.Safetensors(unrelated));
        Assert.DoesNotContain(clean.GetProperty("near").EnumerateArray(), h => h.GetProperty("bank").GetString() == "bad-models");

        // An uploaded ONNX file naming external data: nothing beside the upload is read (its folder is the
        // server's /proc/PID/fd), whatever the location says.
        foreach (var location in new[] { "0", "3", "weights.bin", "../fd/1" })
        {
            var onnx = OnnxWriter.Model([new FixtureTensor("model.diffusion_model.out.2.weight", [4, 8], ModelFixtures.Gaussian(1, 32, 0.02))], OnnxStorage.External, new MemoryStream(), location);
            var (status, body) = await MatchAsync(submitter, onnx);
            Assert.True(status == HttpStatusCode.OK, body.ToString());
            Assert.Contains(body.GetProperty("anomalies").EnumerateArray(), a => a.GetProperty("code").GetString() is "onnx.external-not-read");
        }

        // A zip that is not a checkpoint is not a model: the media path answers it, not the model scan.
        var notModel = ModelWriters.Zip([new ModelWriters.ZipEntry("readme.txt", "hello"u8.ToArray())]);
        var (zipStatus, zipBody) = await MatchAsync(submitter, notModel);
        Assert.True(zipStatus != HttpStatusCode.OK || !zipBody.TryGetProperty("format", out _), zipBody.ToString());
        Assert.NotEqual(HttpStatusCode.InternalServerError, zipStatus);
    }
}
