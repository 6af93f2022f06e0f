using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Warden.Core.Exchanges;
using Warden.Core.Tests.Exchanges;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Cli.Tests.Exchanges;

/// <summary>
/// `warden exchange ...` and the sync into a real database (SQLite file and PostgreSQL), against the local fake NCMEC
/// Hash Sharing server: the reference scenario, the CLI as scripts use it, and a fetch killed with SIGKILL.
/// </summary>
public sealed class ExchangeCommandTests
{
    public static TheoryData<SqlDialect> Dialects => TestDatabases.Dialects;

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        return (WardenCli.Run(args, output, error), output.ToString(), error.ToString());
    }

    /// <summary>The bank's live entries by external id.</summary>
    private static Dictionary<string, Warden.Core.Banks.BankEntry> LiveBank(string db, string bank)
    {
        using var store = BankStore.Open(db);
        var b = store.RequireBank(bank);
        var live = store.ExportEntries(b.Id).ToList();
        Assert.Equal(live.Count, live.Select(e => e.ExternalId).Distinct().Count()); // nothing doubled
        return live.ToDictionary(e => e.ExternalId!, StringComparer.Ordinal);
    }

    /// <param name="db">The database.</param>
    /// <param name="bank">The bank.</param>
    /// <param name="server">The feed.</param>
    private static void AssertBankEqualsFeed(string db, string bank, FakeNcmecServer server)
    {
        var expected = FeedModel.Expected(server.Live()).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        var live = LiveBank(db, bank);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), live.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, e) in expected)
        {
            Assert.Equal(e.Type, live[key].SignalType);
            Assert.Equal(e.Signal, live[key].Signal);
            Assert.Equal(e.Classification, live[key].Labels.GetValueOrDefault("classification"));
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task The_reference_scenario_fills_a_real_bank_with_the_expected_state(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeNcmecServer();
        var dir = Path.Combine(NcmecFixtures.HashSharingDir, "scenario");
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json"))).RootElement;
        server.Fixed["/v2/entries?from=2025-01-10T00%3A00%3A00Z&to=2025-01-11T00%3A00%3A00Z"] = File.ReadAllText(Path.Combine(dir, "entries-window1-page1.xml"));
        server.Fixed[expected.GetProperty("requests")[1].GetProperty("pathAndQuery").GetString()!] = File.ReadAllText(Path.Combine(dir, "entries-window1-page2.xml"));
        server.Fixed["/v2/entries?from=2025-01-11T00%3A00%3A00Z&to=2025-01-20T00%3A00%3A00Z"] = File.ReadAllText(Path.Combine(dir, "entries-window2-empty.xml"));

        using var banks = BankStore.Open(db.Target);
        var exchanges = ExchangeStore.Open(banks.Database);
        var bank = banks.CreateBank("ncmec");
        var config = NcmecFixtures.Config(server, ""","start_time":"2025-01-10T00:00:00Z","adaptive_windows":false""");
        var x = exchanges.Create("ncmec-test", "ncmec", bank.Id, ExchangeTypes.Ncmec.Validate(config).GetRawText());
        using var http = new HttpClient();
        var sync = new ExchangeSync(banks, exchanges);
        foreach (var now in new[] { "2025-01-11T00:00:05Z", "2025-01-20T00:00:05Z" })
        {
            var runtime = new ExchangeRuntime(http, () => DateTimeOffset.Parse(now, CultureInfo.InvariantCulture), _ => { }, _ => server.User + ":" + server.Password);
            await sync.RunAsync(x, runtime, LeaseOwner.Create(), CancellationToken.None);
        }

        var live = LiveBank(db.Target, "ncmec");
        Assert.Equal(["9002-vid-0001-md5", "9003-img-0002-md5", "9003-img-0002-pdq", "9003-img-0002-sha1", "9004-vid-0001-md5"], live.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("eea06ddba9609fbc060e74acc2af973d", live["9003-img-0002-md5"].Signal);
        Assert.Equal("A2", live["9003-img-0002-md5"].Labels["classification"]);
        Assert.Equal("exchange:ncmec-test", live["9003-img-0002-md5"].Source);

        // The deleted entry's fingerprints are tombstones, so every node's index drops them.
        var all = banks.ExportEntries(bank.Id, includeDeleted: true).ToList();
        Assert.All(all.Where(e => e.ExternalId!.StartsWith("9002-img-0001-", StringComparison.Ordinal)), e => Assert.True(e.Deleted));
        Assert.Contains(all, e => e.Signal == "6b1549446a0af52e4984df28a2c3a9e9" && e.Deleted);

        var state = exchanges.State(x.Id);
        Assert.Equal(DateTimeOffset.Parse(expected.GetProperty("expectedState").GetProperty("finalCheckpoint").GetString()!, CultureInfo.InvariantCulture), state.CheckpointTime);
        Assert.True(state.LastSucceeded);
        Assert.Equal(3, state.UnsupportedFetched); // pdna, tmk-pdqf, videntifier
        Assert.Null(state.LeaseOwner);
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task Three_commands_fill_a_bank_and_keep_it_in_sync_through_503_and_429(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeNcmecServer { PageSize = 100 };
        var variable = "WARDEN_TEST_NCMEC_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, server.User + ":" + server.Password);
        try
        {
            var rng = new Random(11);
            var t0 = DateTimeOffset.UtcNow.AddDays(-3).ToUnixTimeSeconds();
            FeedHistory.Fill(server, rng, t0, entries: 700, spanSeconds: 2 * 86400, tmk: true);

            var start = DateTimeOffset.FromUnixTimeSeconds(t0).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            var add = Run("exchange", "add", "ncmec-industry", "--type", "ncmec", "--bank", "ncmec", "--url", server.BaseUrl, "--environment", "Industry", "--credentials-env", variable,
                "--config", $$"""{"start_time":"{{start}}","end_lag_seconds":1}""", "--db", db.Target);
            Assert.True(add.Exit == 0, add.Err);
            Assert.Contains("bank ncmec (created)", add.Out, StringComparison.Ordinal);

            var fetch = Run("exchange", "fetch", "ncmec-industry", "--db", db.Target);
            Assert.True(fetch.Exit == 0, fetch.Err);
            Assert.Contains("entries/s", fetch.Err, StringComparison.Ordinal);
            Assert.Contains("up to date", fetch.Out, StringComparison.Ordinal);
            AssertBankEqualsFeed(db.Target, "ncmec", server);

            // The feed moves on; the next pass meets a 503 and a 429 on the way.
            await Task.Delay(1100);
            FeedHistory.Mutate(server, rng, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1, 1, tmk: true);
            await Task.Delay(2100);
            server.Fail(503);
            server.Fail(429, retryAfterSeconds: 1);
            var again = Run("exchange", "fetch", "ncmec-industry", "--format", "jsonl", "--db", db.Target);
            Assert.True(again.Exit == 0, again.Err);
            Assert.Contains("HTTP 503", again.Err, StringComparison.Ordinal);
            Assert.Contains("HTTP 429", again.Err, StringComparison.Ordinal);
            AssertBankEqualsFeed(db.Target, "ncmec", server);

            var status = Run("exchange", "status", "ncmec-industry", "--format", "jsonl", "--db", db.Target);
            Assert.Equal(0, status.Exit);
            var s = JsonDocument.Parse(status.Out).RootElement;
            Assert.True(s.GetProperty("last_succeeded").GetBoolean());
            Assert.True(s.GetProperty("entries_fetched").GetInt64() >= server.Live().Count);
            Assert.True(s.GetProperty("lag_seconds").GetInt64() < 600);
            Assert.Equal(variable, s.GetProperty("config").GetProperty("credentials_env").GetString());

            // Credentials are never stored nor printed.
            foreach (var text in new[] { add.Out, add.Err, fetch.Out, fetch.Err, again.Out, again.Err, status.Out })
            {
                Assert.DoesNotContain(server.Password, text, StringComparison.Ordinal);
            }

            using (var store = BankStore.Open(db.Target))
            {
                Assert.DoesNotContain(ExchangeStore.Open(store.Database).List(), x => x.Config.Contains(server.Password, StringComparison.Ordinal));
            }

            Assert.Equal(0, Run("exchange", "disable", "ncmec-industry", "--db", db.Target).Exit);
            Assert.Contains("ncmec-industry", Run("exchange", "list", "--db", db.Target).Out, StringComparison.Ordinal);
            Assert.Equal(0, Run("exchange", "enable", "ncmec-industry", "--db", db.Target).Exit);
            Assert.Equal(0, Run("exchange", "remove", "ncmec-industry", "--db", db.Target).Exit);
            var gone = Run("exchange", "fetch", "ncmec-industry", "--db", db.Target);
            Assert.Equal(1, gone.Exit);
            Assert.Contains("No exchange named 'ncmec-industry'", gone.Err, StringComparison.Ordinal);
            AssertBankEqualsFeed(db.Target, "ncmec", server); // the bank stays
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Theory]
    [InlineData("--type", "nope", "Unknown exchange type 'nope'")]
    [InlineData("--credentials-env", "user:password", "NAME of an environment variable")]
    [InlineData("--environment", "Moon", "Unknown NCMEC environment")]
    [InlineData("--url", "file:///etc/passwd", "base_url")]
    public void Bad_add_options_are_refused_with_a_message(string option, string value, string message)
    {
        using var db = TestDatabases.CreateSqlite();
        var args = new Dictionary<string, string>
        {
            ["--type"] = "ncmec",
            ["--bank"] = "b",
            ["--url"] = "https://exttest.cybertip.org/hashsharing",
            ["--environment"] = "test_Industry",
            ["--credentials-env"] = "NCMEC_CREDENTIALS",
        };
        args[option] = value;
        var r = Run(["exchange", "add", "x", .. args.SelectMany(a => new[] { a.Key, a.Value }), "--db", db.Target]);
        Assert.Equal(WardenCli.UsageError, r.Exit);
        Assert.Contains(message, r.Err, StringComparison.Ordinal);
        Assert.Equal(0, Run("exchange", "list", "--db", db.Target).Exit);
        Assert.DoesNotContain("x ", Run("exchange", "list", "--db", db.Target).Out.Split('\n').Skip(1).FirstOrDefault() ?? string.Empty, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task A_fetch_killed_with_SIGKILL_resumes_and_ends_with_exactly_the_live_set(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeNcmecServer { PageSize = 500, PageDelay = TimeSpan.FromMilliseconds(700) }; // slow enough that a loaded machine still kills it mid-window (the first commit comes after 10 s)
        var rng = new Random(23);
        var t0 = DateTimeOffset.UtcNow.AddDays(-2).ToUnixTimeSeconds();
        FeedHistory.Fill(server, rng, t0, entries: 14_000, spanSeconds: 86400);
        var variable = "WARDEN_TEST_NCMEC_KILL";
        var start = DateTimeOffset.FromUnixTimeSeconds(t0).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        using (var banks = BankStore.Open(db.Target))
        {
            var bank = banks.CreateBank("ncmec");
            var config = NcmecFixtures.Config(server, $$""","start_time":"{{start}}","adaptive_windows":false,"end_lag_seconds":1""", variable).GetRawText();
            ExchangeStore.Open(banks.Database).Create("killme", "ncmec", bank.Id, config);
        }

        // One process fetches; it is killed (SIGKILL) once it has committed at least once, mid-window.
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "warden.dll"), "exchange", "fetch", "killme", "--db", db.Target })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment[variable] = server.User + ":" + server.Password;
        using (var p = Process.Start(info)!)
        {
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (DateTime.UtcNow < deadline && !p.HasExited && Checkpoint(db.Target) is null)
            {
                await Task.Delay(50);
            }

            Assert.False(p.HasExited, "the fetch finished before it could be killed");
            Assert.NotNull(Checkpoint(db.Target));
            p.Kill();
            await p.WaitForExitAsync();
        }

        var saved = Checkpoint(db.Target)!;
        Assert.Contains("\"next\"", saved, StringComparison.Ordinal); // killed mid-window, with a link to resume
        var servedBefore = server.EntriesPagesServed;
        Assert.True(servedBefore < 28, $"{servedBefore} pages were served before the kill: too late to test a resume");

        // The feed moves on meanwhile; then a fetch runs again (the dead process's lease is taken over).
        FeedHistory.Mutate(server, rng, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1, 1);
        await Task.Delay(2100);
        server.Requests.Clear();
        server.PageDelay = TimeSpan.Zero;
        Environment.SetEnvironmentVariable(variable, server.User + ":" + server.Password);
        try
        {
            var again = Run("exchange", "fetch", "killme", "--db", db.Target);
            Assert.True(again.Exit == 0, again.Err);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }

        Assert.Contains("start=", server.Requests.First(r => r.PathAndQuery.StartsWith("/v2/entries", StringComparison.Ordinal)).PathAndQuery, StringComparison.Ordinal);
        AssertBankEqualsFeed(db.Target, "ncmec", server);
    }

    private static string? Checkpoint(string db)
    {
        using var store = BankStore.Open(db);
        var x = ExchangeStore.Open(store.Database);
        return x.State(x.Require("killme").Id).Checkpoint;
    }
}
