using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Warden.Server.Actions;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>Tests with real <c>warden serve</c> processes: two nodes on one database, and SIGKILL during webhook delivery.</summary>
public sealed class MultiProcessTests
{
    private static string AdminKey(string database)
    {
        using var db = WardenDatabase.Open(database);
        var store = new ServerStore(db);
        store.Migrate();
        return store.CreateKey("test-admin", Role.Admin).Key;
    }

    private static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > limit)
            {
                throw new TimeoutException($"condition not met within {limit.TotalSeconds} s");
            }

            await Task.Delay(20);
        }

        return watch.Elapsed;
    }

    private static async Task<bool> MatchesAsync(HttpClient client, string md5)
    {
        var body = JsonDocument.Parse(await client.GetStringAsync($"v1/match?signal_type=md5&signal={md5}")).RootElement;
        return body.GetProperty("matched").GetBoolean();
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_change_through_one_node_or_the_cli_takes_effect_on_every_node_within_two_seconds(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        var key = AdminKey(db.Target);
        using var a = await ServerProcess.StartAsync(db.Target);
        using var b = await ServerProcess.StartAsync(db.Target);
        using var clientA = a.Client(key);
        using var clientB = b.Client(key);

        Assert.Equal(HttpStatusCode.Created, (await clientA.PostAsJsonAsync("v1/banks", new { name = "shared" })).StatusCode);
        var md5 = new string('e', 32);
        var added = await clientA.PostAsJsonAsync("v1/banks/shared/entries", new { signal_type = "md5", signal = md5 });
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        var id = JsonDocument.Parse(await added.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetInt64();

        // Added through A: B matches it within 2 s.
        var seen = await UntilAsync(() => MatchesAsync(clientB, md5), TimeSpan.FromSeconds(2));

        // Disabled through B: A stops matching within 2 s.
        Assert.Equal(HttpStatusCode.OK, (await clientB.PatchAsJsonAsync($"v1/entries/{id}", new { enabled = false })).StatusCode);
        var gone = await UntilAsync(async () => !await MatchesAsync(clientA, md5), TimeSpan.FromSeconds(2));

        // Imported with the CLI: both nodes match within 2 s.
        var md5b = new string('f', 32);
        var list = Path.Combine(Path.GetTempPath(), $"warden-list-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(list, $"signal_type,signal\nmd5,{md5b}\n");
        try
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            Assert.True(Cli.WardenCli.Run(["bank", "import", "shared", list, "--db", db.Target], output, error) == 0, error.ToString());
        }
        finally
        {
            File.Delete(list);
        }

        var cliA = await UntilAsync(() => MatchesAsync(clientA, md5b), TimeSpan.FromSeconds(2));
        var cliB = await UntilAsync(() => MatchesAsync(clientB, md5b), TimeSpan.FromSeconds(2));

        // A bank disabled through one node stops matching on the other.
        Assert.Equal(HttpStatusCode.OK, (await clientA.PatchAsJsonAsync("v1/banks/shared", new { enabled = false })).StatusCode);
        var bankOff = await UntilAsync(async () => !await MatchesAsync(clientB, md5b), TimeSpan.FromSeconds(2));
        Assert.All(new[] { seen, gone, cliA, cliB, bankOff }, t => Assert.True(t < TimeSpan.FromSeconds(2)));
    }

    /// <summary>A webhook receiver on 127.0.0.1 that verifies signatures and processes each delivery id once.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly WebApplication _app;

        public Receiver(string secret)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            _app = builder.Build();
            _app.MapPost("/hook", async (HttpContext context) =>
            {
                using var buffer = new MemoryStream();
                await context.Request.Body.CopyToAsync(buffer);
                var body = buffer.ToArray();
                var delivery = context.Request.Headers[WebhookSigner.DeliveryHeader].ToString();
                var valid = WebhookSigner.Verify(secret, context.Request.Headers[WebhookSigner.SignatureHeader], body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
                Attempts.Add((delivery, valid, Encoding.UTF8.GetString(body)));
                FirstAttempt.TrySetResult();
                if (Hold)
                {
                    // The first attempt hangs until the test has killed the sender.
                    await Task.Delay(TimeSpan.FromSeconds(20), context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
                    return Results.StatusCode(503);
                }

                Processed.TryAdd(delivery, 0);
                return Results.Ok();
            });
        }

        public ConcurrentBag<(string Delivery, bool Valid, string Body)> Attempts { get; } = [];

        public ConcurrentDictionary<string, int> Processed { get; } = new();

        public TaskCompletionSource FirstAttempt { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Hold { get; set; } = true;

        public string Url => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";

        public Task StartAsync() => _app.StartAsync();

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }

    [Fact]
    public async Task A_webhook_survives_sigkill_mid_delivery_and_arrives_exactly_once_by_idempotency_key()
    {
        await using var db = TestDatabases.CreateSqlite();
        var key = AdminKey(db.Target);
        const string secret = "0123456789abcdef-test-secret";
        await using var receiver = new Receiver(secret);
        await receiver.StartAsync();
        var environment = new Dictionary<string, string> { ["Warden__WebhookTimeoutSeconds"] = "2" };

        var first = await ServerProcess.StartAsync(db.Target, environment: environment);
        using (var client = first.Client(key))
        {
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("v1/webhooks", new { url = receiver.Url, secret })).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("v1/banks", new { name = "notify", action = new { quarantine = true, notify = true } })).StatusCode);
            var md5 = new string('1', 32);
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("v1/banks/notify/entries", new { signal_type = "md5", signal = md5 })).StatusCode);
            await UntilAsync(() => MatchesAsync(client, md5), TimeSpan.FromSeconds(10));
        }

        // The match above queued the webhook before answering; its first delivery hangs at the receiver.
        await receiver.FirstAttempt.Task.WaitAsync(TimeSpan.FromSeconds(20));
        first.KillHard();
        first.Dispose();
        receiver.Hold = false;

        // A new process on the same database delivers it again after the dead node's lease runs out.
        using var second = await ServerProcess.StartAsync(db.Target, environment: environment);
        await UntilAsync(() => Task.FromResult(!receiver.Processed.IsEmpty), TimeSpan.FromSeconds(30));
        using var admin = second.Client(key);
        await UntilAsync(
            async () => JsonDocument.Parse(await admin.GetStringAsync("v1/webhooks/deliveries")).RootElement.EnumerateArray().All(d => d.GetProperty("state").GetString() == "delivered"),
            TimeSpan.FromSeconds(10));

        var attempts = receiver.Attempts.ToList();
        Assert.True(attempts.Count >= 2, $"expected a retry after the kill, saw {attempts.Count} attempt(s)");
        Assert.Single(attempts.Select(a => a.Delivery).Distinct());
        Assert.All(attempts, a => Assert.True(a.Valid, "bad signature"));
        Assert.Single(receiver.Processed);
        var payload = JsonDocument.Parse(attempts[0].Body).RootElement;
        Assert.Equal("match", payload.GetProperty("event").GetString());
        Assert.Equal("notify", payload.GetProperty("hits")[0].GetProperty("bank").GetString());
    }
}
