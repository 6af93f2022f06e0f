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
}
