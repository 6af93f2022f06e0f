using System.Net;
using System.Text.Json;
using Warden.FakeCyberTipline;
using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;

namespace Warden.Server.Tests.Review;

/// <summary>SIGKILL of a real <c>warden serve</c> process during a report delivery and during decisions.</summary>
public sealed class ConsoleCrashTests
{
    [Fact]
    public async Task A_kill_during_report_delivery_loses_nothing_and_sends_the_report_once()
    {
        using var run = new Run();
        await using var fake = await FakeCyberTiplineServer.StartAsync();
        // The first file upload takes effect at the fake, then its answer stalls: the server is killed mid-delivery.
        fake.Inject(new InjectedFailure("upload", FailureMode.Timeout, Delay: TimeSpan.FromSeconds(60), ProcessFirst: true));
        string caseId;
        using (var server = await run.StartAsync(fake))
        {
            caseId = await run.SeedAndDecideAllAsync(server);
            using var alice = await ConsoleClient.LoginAsync(server.BaseAddress, "alice", ReviewHarness.Password);
            using (var file = await alice.PostAsync($"cases/{caseId}/report"))
            {
                Assert.Equal(HttpStatusCode.OK, file.StatusCode); // acknowledged: queued durably
            }

            await Until(() => fake.Requests.Any(r => r.Endpoint == "upload"));
            server.KillHard();
        }

        fake.ClearFailures();
        using (var again = await run.StartAsync(fake))
        {
            using var alice = await ConsoleClient.LoginAsync(again.BaseAddress, "alice", ReviewHarness.Password);
            var report = await ConsoleApiTests.WaitReportAsync(alice, caseId);
            Assert.Equal("finished", report.GetProperty("status").GetString());
            // Exactly one report is finished; the half-uploaded one (an upload's outcome was unknown) was
            // retracted, never finished (docs/review.md, delivery rules).
            var sent = Assert.Single(fake.Reports, r => r.State == FakeReportState.Finished);
            Assert.All(fake.Reports.Where(r => r.ReportId != sent.ReportId), r => Assert.Equal(FakeReportState.Retracted, r.State));
            Assert.Equal(2, sent.Files.Count);
            Assert.Equal(sent.ReportId.ToString(System.Globalization.CultureInfo.InvariantCulture), report.GetProperty("report_id").GetString());
        }
    }

    [Fact]
    public async Task A_kill_during_decisions_keeps_every_acknowledged_decision()
    {
        using var run = new Run();
        await using var fake = await FakeCyberTiplineServer.StartAsync();
        string caseId;
        string[] clusters;
        var acknowledged = new List<string>();
        using (var server = await run.StartAsync(fake))
        {
            using var admin = server.Client(run.AdminKey);
            await ReviewHarness.SeedBankAsync(admin);
            Assert.True(await ReviewHarness.UploadAsync(admin, Media.Jpeg(1), "u1", 1));
            Assert.True(await ReviewHarness.UploadAsync(admin, Media.Jpeg(2), "u1", 2));
            using var alice = await ConsoleClient.LoginAsync(server.BaseAddress, "alice", ReviewHarness.Password);
            var k = await alice.FirstCaseAsync();
            caseId = k.GetProperty("id").GetString()!;
            clusters = [.. k.GetProperty("clusters").EnumerateArray().Select(c => c.GetProperty("id").GetString()!)];

            using (var first = await alice.PostAsync($"cases/{caseId}/clusters/{clusters[0]}/decision", new { verdict = "confirmed", classification = "A1" }))
            {
                Assert.Equal(HttpStatusCode.OK, first.StatusCode);
                acknowledged.Add(clusters[0]);
            }

            // The second decision races the kill: whether or not it lands, the first one must survive.
            var second = alice.PostAsync($"cases/{caseId}/clusters/{clusters[1]}/decision", new { verdict = "confirmed", classification = "B1" });
            server.KillHard();
            try
            {
                using var r = await second;
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    acknowledged.Add(clusters[1]);
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
        }

        using (var again = await run.StartAsync(fake))
        {
            using var alice = await ConsoleClient.LoginAsync(again.BaseAddress, "alice", ReviewHarness.Password);
            var k = await alice.GetAsync("cases/" + caseId);
            foreach (var c in k.GetProperty("clusters").EnumerateArray().Where(c => acknowledged.Contains(c.GetProperty("id").GetString()!)))
            {
                Assert.Equal(JsonValueKind.Object, c.GetProperty("decision").ValueKind);
            }

            Assert.Equal("A1", k.GetProperty("clusters")[0].GetProperty("decision").GetProperty("classification").GetString());
            using var admin = again.Client(run.AdminKey);
            Assert.True((await admin.GetFromJsonAsync<JsonElement>("v1/audit/verify")).GetProperty("ok").GetBoolean());
        }
    }

    private static async Task Until(Func<bool> condition)
    {
        for (var i = 0; i < 600 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition());
    }

    /// <summary>A folder with the database, the review database, users and keys, and the process settings.</summary>
    private sealed class Run : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "warden-crash-" + Guid.NewGuid().ToString("N"));

        public Run()
        {
            Directory.CreateDirectory(_dir);
            using (var db = WardenDatabase.Open(Database))
            {
                var store = new ServerStore(db);
                store.Migrate();
                AdminKey = store.CreateKey("test-admin", Role.Admin).Key;
                new ReviewStore(ReviewDatabase.On(db)).CreateUser("alice", "reviewer", PasswordHashing.Hash(ReviewHarness.Password));
            }
        }

        public string AdminKey { get; }

        private string Database => Path.Combine(_dir, "warden.db");

        public Task<ServerProcess> StartAsync(FakeCyberTiplineServer fake) => ServerProcess.StartAsync(Database, environment: new Dictionary<string, string>
        {
            ["Warden__Review__EvidenceDirectory"] = Path.Combine(_dir, "evidence"),
            ["Warden__Review__MasterKey"] = ReviewHarness.MasterKey(_dir),
            ["Warden__Review__CyberTipline__TestUrl"] = fake.BaseUri.ToString(),
            ["Warden__Review__CyberTipline__Username"] = fake.Username,
            ["Warden__Review__CyberTipline__Password"] = fake.Password,
            ["Warden__Review__CyberTipline__PollMilliseconds"] = "100",

            // The restarted process is a new lease owner: it takes over the killed one's delivery at expiry.
            ["Warden__Review__CyberTipline__LeaseSeconds"] = "3",
        });

        public async Task<string> SeedAndDecideAllAsync(ServerProcess server)
        {
            using var admin = server.Client(AdminKey);
            await ReviewHarness.SeedBankAsync(admin);
            Assert.True(await ReviewHarness.UploadAsync(admin, Media.Jpeg(1), "u1", 1));
            Assert.True(await ReviewHarness.UploadAsync(admin, Media.Jpeg(2), "u1", 2));
            using var alice = await ConsoleClient.LoginAsync(server.BaseAddress, "alice", ReviewHarness.Password);
            var k = await alice.FirstCaseAsync();
            var id = k.GetProperty("id").GetString()!;
            foreach (var c in k.GetProperty("clusters").EnumerateArray())
            {
                using var d = await alice.PostAsync($"cases/{id}/clusters/{c.GetProperty("id").GetString()}/decision", new { verdict = "confirmed" });
                Assert.Equal(HttpStatusCode.OK, d.StatusCode);
            }

            return id;
        }

        public void Dispose()
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
