using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Dapper;
using Warden.FakeCyberTipline;
using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Server.Review;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Review;

/// <summary>
/// Three <c>warden serve</c> processes on one PostgreSQL database (WARDEN_TEST_POSTGRES) and one blob store:
/// uploads spread over all three land in one case per uploader and one cluster per picture; a reviewer logged
/// in through A decides through B a case created through A and C; the node delivering the report is killed
/// with SIGKILL mid-step and another finishes it exactly once; the audit chain verifies at the end.
/// </summary>
public sealed class ThreeNodeTests
{
    [SkippableFact]
    public async Task Three_nodes_share_cases_sessions_and_report_delivery_and_survive_a_kill_of_the_delivering_node()
    {
        var watch = Stopwatch.StartNew();
        await using var db = await TestDatabases.CreatePostgresAsync();
        var dir = Path.Combine(Path.GetTempPath(), "warden-3node-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string adminKey;
        using (var w = WardenDatabase.Open(db.Target))
        {
            var store = new ServerStore(w);
            store.Migrate();
            adminKey = store.CreateKey("test-admin", Role.Admin).Key;
            new ReviewStore(ReviewDatabase.On(w)).CreateUser("alice", "reviewer", PasswordHashing.Hash(ReviewHarness.Password));
        }

        await using var fake = await FakeCyberTiplineServer.StartAsync();
        var env = new Dictionary<string, string>
        {
            ["Warden__Review__EvidenceDirectory"] = Path.Combine(dir, "evidence"), // the shared blob store
            ["Warden__Review__MasterKey"] = ReviewHarness.MasterKey(dir),
            ["Warden__Review__CyberTipline__TestUrl"] = fake.BaseUri.ToString(),
            ["Warden__Review__CyberTipline__Username"] = fake.Username,
            ["Warden__Review__CyberTipline__Password"] = fake.Password,
            ["Warden__Review__CyberTipline__PollMilliseconds"] = "100",
            ["Warden__Review__CyberTipline__LeaseSeconds"] = "3",
        };
        // One after another: three runtimes starting at once on a small, busy machine can miss the readiness limit.
        var nodes = new List<ServerProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                nodes.Add(await ServerProcess.StartAsync(db.Target, environment: env));
            }

            var admins = nodes.Select(n => n.Client(adminKey)).ToList();
            await ReviewHarness.SeedBankAsync(admins[0]);
            var pdq = await ReviewHarness.PdqAsync(admins[0], Media.Jpeg(2));
            foreach (var a in admins)
            {
                // Every node's live index has the entries (the change feed).
                for (var i = 0; i < 100 && !(await a.GetFromJsonAsync<JsonElement>("v1/match?signal_type=pdq&signal=" + pdq)).GetProperty("matched").GetBoolean(); i++)
                {
                    await Task.Delay(100);
                }
            }

            // Uploads spread over the three nodes, concurrently: u1 sends picture 1 (twice, re-encoded) and picture 2;
            // u2 sends picture 1 six times. One case per uploader, one cluster per picture, whatever node took it.
            var uploads = new List<Task<bool>>
            {
                ReviewHarness.UploadAsync(admins[0], Media.Jpeg(1), "u1", 1),
                ReviewHarness.UploadAsync(admins[1], Media.Jpeg(1, quality: 60), "u1", 2),
                ReviewHarness.UploadAsync(admins[2], Media.Jpeg(2), "u1", 3),
            };
            uploads.AddRange(Enumerable.Range(0, 6).Select(i => ReviewHarness.UploadAsync(admins[i % 3], Media.Jpeg(1, quality: 70 + i), "u2", 10 + i)));
            Assert.All(await Task.WhenAll(uploads), Assert.True);

            // Logged in through A; the same session works through B and C.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            using var login = await http.PostAsJsonAsync(new Uri(nodes[0].BaseAddress, "review/api/login"), new { username = "alice", password = ReviewHarness.Password });
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
            var csrf = (await login.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("csrf").GetString()!;
            var cookie = login.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]).Single(c => c.StartsWith(ReviewConsole.CookieName + "=", StringComparison.Ordinal));
            async Task<HttpResponseMessage> Send(ServerProcess node, HttpMethod method, string path, object? body = null)
            {
                using var request = new HttpRequestMessage(method, new Uri(node.BaseAddress, "review/api/" + path)) { Content = body is null ? null : JsonContent.Create(body) };
                request.Headers.Add("Cookie", cookie);
                request.Headers.Add(ReviewConsole.CsrfHeader, csrf);
                return await http.SendAsync(request);
            }

            async Task<JsonElement> Get(ServerProcess node, string path)
            {
                using var r = await Send(node, HttpMethod.Get, path);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                return await r.Content.ReadFromJsonAsync<JsonElement>();
            }

            foreach (var node in nodes)
            {
                Assert.Equal(2, (await Get(node, "queue")).GetArrayLength());
            }

            var cases = (await Get(nodes[1], "queue")).EnumerateArray().Select(q => q.GetProperty("id").GetString()!).ToList();
            var views = new List<JsonElement>();
            foreach (var id in cases)
            {
                views.Add(await Get(nodes[1], "cases/" + id));
            }

            var u1 = views.Single(v => v.GetProperty("uploader_id").GetString() == "u1");
            var u2 = views.Single(v => v.GetProperty("uploader_id").GetString() == "u2");
            Assert.Equal(3, u1.GetProperty("items").GetInt32());
            Assert.Equal(2, u1.GetProperty("clusters").GetArrayLength());
            Assert.Equal(6, u2.GetProperty("items").GetInt32());
            Assert.Equal(1, u2.GetProperty("clusters").GetArrayLength());

            // Decided through B (the case came in through A and C).
            var caseId = u1.GetProperty("id").GetString()!;
            foreach (var c in u1.GetProperty("clusters").EnumerateArray())
            {
                using var d = await Send(nodes[1], HttpMethod.Post, $"cases/{caseId}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "confirmed", classification = "A1" });
                Assert.Equal(HttpStatusCode.OK, d.StatusCode);
            }

            // Every node sees the decisions.
            Assert.Equal("decided", (await Get(nodes[2], "cases/" + caseId)).GetProperty("status").GetString());

            // The first file upload takes effect at the fake, then its answer stalls: whichever node is delivering is
            // killed mid-step; another takes the lease over after it expires and finishes the report once.
            fake.Inject(new InjectedFailure("upload", FailureMode.Timeout, Delay: TimeSpan.FromSeconds(60), ProcessFirst: true));
            using (var file = await Send(nodes[2], HttpMethod.Post, $"cases/{caseId}/report"))
            {
                Assert.Equal(HttpStatusCode.OK, file.StatusCode);
            }

            for (var i = 0; i < 600 && !fake.Requests.Any(r => r.Endpoint == "upload"); i++)
            {
                await Task.Delay(50);
            }

            Assert.Contains(fake.Requests, r => r.Endpoint == "upload");
            string owner;
            using (var c = new Npgsql.NpgsqlConnection(db.Target))
            {
                owner = c.ExecuteScalar<string?>("SELECT lease_owner FROM report_deliveries WHERE case_id = @caseId", new { caseId }) ?? "";
            }

            var delivering = nodes.Single(n => owner.Split(':')[1] == n.ProcessId.ToString(CultureInfo.InvariantCulture));
            delivering.KillHard();
            fake.ClearFailures();
            var survivor = nodes.First(n => n != delivering);
            JsonElement report = default;
            for (var i = 0; i < 400; i++)
            {
                using var r = await Send(survivor, HttpMethod.Get, $"cases/{caseId}/report");
                if (r.StatusCode == HttpStatusCode.OK && (report = await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString() is "finished" or "dead_lettered")
                {
                    break;
                }

                await Task.Delay(100);
            }

            Assert.Equal("finished", report.GetProperty("status").GetString());
            var sent = Assert.Single(fake.Reports, r => r.State == FakeReportState.Finished);
            Assert.All(fake.Reports.Where(r => r.ReportId != sent.ReportId), r => Assert.Equal(FakeReportState.Retracted, r.State));
            Assert.Equal(3, sent.Files.Count); // every member of the confirmed clusters
            Assert.Contains("192.0.2.", sent.Xml, StringComparison.Ordinal); // the sealed context was opened for the report

            // One audit chain, verifiable through any surviving node.
            foreach (var n in nodes.Where(n => n != delivering))
            {
                using var a = n.Client(adminKey);
                Assert.True((await a.GetFromJsonAsync<JsonElement>("v1/audit/verify")).GetProperty("ok").GetBoolean());
            }

            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(120), $"took {watch.Elapsed}");
        }
        finally
        {
            nodes.ForEach(n => n.Dispose());
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
