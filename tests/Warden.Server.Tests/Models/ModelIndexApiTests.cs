using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.ModelFiles;
using Warden.Core.Tests.Models;
using Warden.Server.Auth;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Tests.Models;

/// <summary>
/// The server's model index over real HTTP: models registered while the server runs reach the near tiers of
/// /v1/models/scan and /v1/match within a poll (no restart), leave them when their entries are deleted, come back
/// from the record files after a restart, and a query reads only its candidates, not every registered model.
/// </summary>
public sealed class ModelIndexApiTests
{
    private static void Cli(string database, params string[][] commands)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        foreach (var args in commands)
        {
            Assert.True(Warden.Cli.WardenCli.Run([.. args, "--db", database], output, error) == 0, error.ToString());
        }
    }

    private static async Task<JsonElement> PostAsync(HttpClient client, string path, byte[] file)
    {
        using var content = new ByteArrayContent(file);
        using var response = await client.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Polls until <paramref name="done"/> holds for the answer (the index applies changes once per poll).</summary>
    private static async Task<JsonElement> UntilAsync(HttpClient client, string path, byte[] file, Func<JsonElement, bool> done)
    {
        JsonElement body = default;
        for (var i = 0; i < 150; i++)
        {
            body = await PostAsync(client, path, file);
            if (done(body))
            {
                return body;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"{path} never answered as expected: {body}");
        return body;
    }

    private static bool Names(JsonElement body, string tier, string model) =>
        body.GetProperty("near").EnumerateArray().Any(h => h.GetProperty("tier").GetString() == tier && h.GetProperty("model").GetString() == model);

    private static byte[] Q8(List<FixtureTensor> m) =>
        ModelWriters.Gguf([.. m.Where(t => t.Values.Length % 32 == 0 && !ModelFixtures.IsBuffer(t.Name)).Select(t => t.As(TensorDType.Q8_0))], []);

    [Fact]
    public async Task Registrations_reach_the_near_tiers_live_leave_on_delete_and_survive_a_restart()
    {
        using var dir = new TempDir();
        var database = Path.Combine(dir.Path, "warden.db");
        var b = ModelFixtures.Base(1);
        var bad = ModelFixtures.FineTune(b, 2);
        var second = ModelFixtures.FineTune(b, 6);
        var lora = ModelFixtures.Lora(4);
        var badFile = dir.File("bad.safetensors", ModelWriters.Safetensors(bad));
        Cli(database, ["bank", "create", "bases", "--kind", "allow"], ["bank", "create", "bad-models"],
            ["model", "add", "--bank", "bases", "--name", "sd15-base", dir.File("base.safetensors", ModelWriters.Safetensors(b))]);

        await using (var server = await TestServer.StartAsync(database))
        {
            using var submitter = server.Client(Role.Submitter);
            var index = server.App.Services.GetRequiredService<ModelIndex>();
            var q8 = Q8(bad);
            var before = await PostAsync(submitter, "v1/models/scan", q8);
            Assert.False(Names(before, "R", "bad"), before.ToString());

            // Registered while the server runs, with lineage labels: the next poll brings it into the index.
            Cli(database,
                ["model", "add", badFile, "--bank", "bad-models", "--name", "bad", "--label", "derived_from=sd15-base", "--label", "base_model=sd15-base", "--label", "category=test-lineage"],
                ["model", "add", dir.File("lora.safetensors", ModelWriters.Safetensors(lora)), "--bank", "bad-models", "--name", "bad-lora", "--label", "base_model=sd15-base"]);
            var scan = await UntilAsync(submitter, "v1/models/scan", q8, body => Names(body, "R", "bad"));
            var hit = scan.GetProperty("near").EnumerateArray().Single(h => h.GetProperty("model").GetString() == "bad");
            Assert.Equal("Q8_0", hit.GetProperty("precision").GetString());
            Assert.Equal("sd15-base", hit.GetProperty("labels").GetProperty("derived_from").GetString());
            Assert.Equal("sd15-base", hit.GetProperty("labels").GetProperty("base_model").GetString());

            // /v1/match answers from the same index: an fp16 ONNX export (R) and a LoRA baked into the base (T5, strength).
            var onnx = await PostAsync(submitter, "v1/match", OnnxWriter.Model(ModelFixtures.Cast([.. bad.Where(t => !ModelFixtures.IsBuffer(t.Name))], TensorDType.F16)));
            Assert.True(Names(onnx, "R", "bad"), onnx.ToString());
            foreach (var strength in new[] { 0.3, 0.8, 1.2 })
            {
                var baked = await PostAsync(submitter, "v1/match", ModelWriters.Safetensors(ModelFixtures.BakeIn(b, lora, strength)));
                var derivation = baked.GetProperty("derivation");
                Assert.True(derivation.ValueKind == JsonValueKind.Object, baked.ToString());
                Assert.Equal("lora-bake-in", derivation.GetProperty("kind").GetString());
                var term = derivation.GetProperty("terms").EnumerateArray().Single(t => t.GetProperty("model").GetString() == "bad-lora");
                Assert.True(term.GetProperty("adapter").GetBoolean());
                Assert.InRange(term.GetProperty("coefficient").GetDouble(), strength - 0.05, strength + 0.05);
                Assert.Equal("sd15-base", term.GetProperty("labels").GetProperty("base_model").GetString());
            }

            // Unrelated models of the same architecture (other bases) registered too: a query reads its few
            // candidates, not every registered model, and names none of the strangers.
            var strangers = Enumerable.Range(20, 8).Select(s => new[] { "model", "add", "--bank", "bad-models", "--name", "stranger-" + s, dir.File($"s{s}.safetensors", ModelWriters.Safetensors(ModelFixtures.Base(s))) }).ToArray();
            Cli(database, strangers);
            await UntilAsync(submitter, "v1/models/scan", Q8(ModelFixtures.Base(27)), body => Names(body, "R", "stranger-27"));
            Assert.Equal(11, index.Count);
            var answer = index.Near(Fingerprinter.Compute(ModelReader.Read(dir.File("q8.gguf", q8))), new Dictionary<string, Core.Banks.BankKind>
            {
                ["bases"] = Core.Banks.BankKind.AllowList,
                ["bad-models"] = Core.Banks.BankKind.BlockList,
            });
            Assert.InRange(answer.Candidates, 1, 4); // bad, its base, the LoRA, at most one stray: not the 11 registered
            Assert.DoesNotContain(answer.Similar.Concat(answer.Contained), h => h.Record.Name.StartsWith("stranger-", StringComparison.Ordinal));

            // Its entries deleted over the API: the model leaves the near tiers within a poll.
            using var curator = server.Client(Role.Curator);
            using (var store = BankStore.Open(database))
            {
                var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(badFile)));
                foreach (var e in store.EntriesWithSignal("bad-models", "sha256", sha))
                {
                    using var deleted = await curator.DeleteAsync($"v1/entries/{e.Id}");
                    Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
                }
            }

            await UntilAsync(submitter, "v1/models/scan", q8, body => !Names(body, "R", "bad"));

            // Registered again later: back in.
            Cli(database, ["model", "add", "--bank", "bad-models", "--name", "bad", badFile], ["model", "add", "--bank", "bad-models", "--name", "second", dir.File("second.safetensors", ModelWriters.Safetensors(second))]);
            await UntilAsync(submitter, "v1/match", q8, body => Names(body, "R", "bad"));
        }

        // Record files cut short or overwritten with junk (hostile or a crash mid-write): the build masks them.
        var records = Directory.GetFiles(Path.Combine(database + ".models", "bad-models"), "*.json").Order(StringComparer.Ordinal).ToList();
        var stranger = records.First(r => File.ReadAllText(r).Contains("\"stranger-20\"", StringComparison.Ordinal));
        File.WriteAllBytes(stranger, File.ReadAllBytes(stranger)[..100]);
        File.WriteAllBytes(records.First(r => File.ReadAllText(r).Contains("\"stranger-21\"", StringComparison.Ordinal)), [0x7B, 0xFF, 0x00, 0x22]);

        // A restart builds the index from the record files of the live entries: the same answers at once.
        await using (var server = await TestServer.StartAsync(database))
        {
            using var submitter = server.Client(Role.Submitter);
            var scan = await PostAsync(submitter, "v1/models/scan", Q8(second));
            Assert.True(Names(scan, "R", "second"), scan.ToString());
            Assert.False(Names(scan, "R", "bad"), scan.ToString());
            Assert.Equal(10, server.App.Services.GetRequiredService<ModelIndex>().Count); // 12 registered, 2 unreadable
            var strangerScan = await PostAsync(submitter, "v1/models/scan", Q8(ModelFixtures.Base(20)));
            Assert.False(Names(strangerScan, "R", "stranger-20"), strangerScan.ToString());

            // Disabling the bank takes its models out (a bank change rebuilds the index).
            using var admin = server.Client(Role.Admin);
            using var disabled = await admin.PatchAsJsonAsync("v1/banks/bad-models", new { enabled = false });
            Assert.True(disabled.IsSuccessStatusCode, await disabled.Content.ReadAsStringAsync());
            await UntilAsync(submitter, "v1/models/scan", Q8(second), body => !body.GetProperty("near").EnumerateArray().Any(h => h.GetProperty("bank").GetString() == "bad-models"));
        }
    }
}
