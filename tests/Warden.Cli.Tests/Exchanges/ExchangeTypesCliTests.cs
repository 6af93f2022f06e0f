using System.Text.Json;
using Warden.Core.Tests.Exchanges;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Cli.Tests.Exchanges;

/// <summary>
/// `warden exchange add NAME --type stopncii | fb_threatexchange | peer ...` then `fetch`, into real SQLite and
/// PostgreSQL databases, against the loopback fakes written from each wire format.
/// </summary>
public sealed class ExchangeTypesCliTests
{
    public static TheoryData<SqlDialect> Dialects => TestDatabases.Dialects;

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        return (WardenCli.Run(args, output, error), output.ToString(), error.ToString());
    }

    private static HashSet<string> Live(string db, string bank)
    {
        using var store = BankStore.Open(db);
        return [.. store.ExportEntries(store.RequireBank(bank).Id).Select(e => e.SignalType + ":" + e.Signal)];
    }

    private static string Hex(Random rng, int bytes)
    {
        var b = new byte[bytes];
        rng.NextBytes(b);
        return Convert.ToHexStringLower(b);
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task StopNCII_ThreatExchange_and_HMA_peer_exchanges_are_added_and_fetched_from_the_command_line(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var stopNcii = new FakeStopNcii();
        await using var te = new FakeThreatExchange(777);
        await using var hma = new FakeHma();
        var rng = new Random(21);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 100;
        for (var i = 0; i < 30; i++)
        {
            stopNcii.Put(new StopNciiRecord("ImagePDQ", Hex(rng, 32), now - i, i % 6 == 0 ? "Deleted" : "Active", []));
            te.Put(new TeIndicator(100 + i, i % 2 == 0 ? "HASH_PDQ" : "HASH_MD5", Hex(rng, i % 2 == 0 ? 32 : 16), now - i, i % 5 == 0, ["t"]));
        }

        hma.Banks.Add("SHARED");
        for (var i = 1; i <= 12; i++)
        {
            hma.Put(new HmaContent(i, "SHARED", true, new Dictionary<string, string> { ["pdq"] = Hex(rng, 32) }));
        }

        var suffix = Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var keys = "WARDEN_TEST_SNCII_" + suffix;
        var token = "WARDEN_TEST_TX_" + suffix;
        Environment.SetEnvironmentVariable(keys, stopNcii.FetchKey + "," + stopNcii.SubscriptionKey);
        Environment.SetEnvironmentVariable(token, te.Token);
        try
        {
            var add = Run("exchange", "add", "sn", "--type", "stopncii", "--bank", "ncii", "--url", stopNcii.BaseUrl, "--credentials-env", keys, "--start-time", "2020-01-01T00:00:00Z", "--db", db.Target);
            Assert.True(add.Exit == 0, add.Err);
            add = Run("exchange", "add", "tx", "--type", "fb_threatexchange", "--bank", "tx", "--url", te.BaseUrl, "--privacy-group", "777", "--credentials-env", token, "--db", db.Target);
            Assert.True(add.Exit == 0, add.Err);
            add = Run("exchange", "add", "partner", "--type", "peer", "--flavor", "hma", "--bank", "partner", "--url", hma.BaseUrl, "--remote-bank", "SHARED", "--format", "jsonl", "--db", db.Target);
            Assert.True(add.Exit == 0, add.Err);
            Assert.Equal("SHARED", JsonDocument.Parse(add.Out).RootElement.GetProperty("config").GetProperty("remote_bank").GetString());

            foreach (var name in new[] { "sn", "tx", "partner" })
            {
                var fetch = Run("exchange", "fetch", name, "--db", db.Target);
                Assert.True(fetch.Exit == 0, name + ": " + fetch.Err);
                Assert.Contains("up to date", fetch.Out, StringComparison.Ordinal);
            }

            Assert.Equal(stopNcii.Live().Select(r => "pdq:" + r.Hash).ToHashSet(), Live(db.Target, "ncii"));
            Assert.Equal(te.Live().Select(i => (i.Type == "HASH_PDQ" ? "pdq:" : "md5:") + i.Indicator).ToHashSet(), Live(db.Target, "tx"));
            Assert.Equal(hma.All.Select(c => "pdq:" + c.Signals["pdq"]).ToHashSet(), Live(db.Target, "partner"));

            // Options a type does not take are refused naming the field; the keys are never printed.
            var wrong = Run("exchange", "add", "bad", "--type", "stopncii", "--bank", "b", "--credentials-env", keys, "--privacy-group", "5", "--db", db.Target);
            Assert.Equal(2, wrong.Exit);
            Assert.Contains("privacy_group", wrong.Err, StringComparison.Ordinal);
            var status = Run("exchange", "status", "--format", "jsonl", "--db", db.Target);
            Assert.Equal(0, status.Exit);
            Assert.DoesNotContain(stopNcii.FetchKey, status.Out, StringComparison.Ordinal);
            Assert.DoesNotContain(te.Token, status.Out, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(keys, null);
            Environment.SetEnvironmentVariable(token, null);
        }
    }
}
