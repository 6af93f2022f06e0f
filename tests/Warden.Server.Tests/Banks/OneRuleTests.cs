using System.Globalization;
using System.Net;
using System.Text.Json;
using FsCheck.Fluent;
using Warden.Cli;
using Warden.Core.Banks;
using Warden.Core.Signals;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Tests.Banks;

/// <summary>
/// One source per word: the bank-name rule, the threshold rule and the bank kind names are each one function in
/// Warden.Core, and the API, the HMA routes, the CLI and storage accept and refuse exactly what it says, for many
/// generated inputs.
/// </summary>
public sealed class OneRuleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-rules-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = WardenCli.Run([.. args, "--db", Path.Combine(_dir, "cli.db")], output, error);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>Names near the rule's edges: valid characters mostly, with hostile ones, leading punctuation and lengths around 64.</summary>
    private static string[] Names()
    {
        var valid = "aZ09_-.".ToCharArray();
        var hostile = " !/é~\t%?#\\\"'\0:@=\n\r".ToCharArray();
        var ch = Gen.Frequency((8, Gen.Elements(valid)), (1, Gen.Elements(hostile)));
        var gen = from length in Gen.Frequency((6, Gen.Choose(0, 12)), (2, Gen.Choose(60, 70)))
                  from chars in ch.ArrayOf(length)
                  select new string(chars);
        string[] edges = ["", "a", new string('a', 64), new string('a', 65), "-a", ".a", "_a", "a b", "ā", "bank.v2", "x/y", " a",
            // Words a command-line parser could rewrite (response files, "-x:value" splitting) and line ends that a
            // regex "$" accepts: each must be refused everywhere, not turned into a different, valid name.
            "-:a09", "-=a", "-a:b", "-a=b", "@a", "@", "a\n", "a\r\n", "\na", "a\n\n", "a\u2028"];
        return [.. edges, .. gen.Sample(40, 80)];
    }

    [Fact]
    public async Task Api_hma_cli_and_storage_accept_the_same_bank_names()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var curator = server.Client(Role.Curator);
        using var store = BankStore.Open(Path.Combine(_dir, "store.db"));
        var names = Names().Distinct(StringComparer.Ordinal).ToList();
        Assert.Contains(names, BankNames.IsValid);
        Assert.Contains(names, n => !BankNames.IsValid(n));
        foreach (var name in names)
        {
            var valid = BankNames.IsValid(name);
            var shown = JsonSerializer.Serialize(name);

            var stored = Record.Exception(() => store.CreateBank(name));
            Assert.True(valid ? stored is null : stored is StorageException { Error: StorageError.Invalid }, $"storage, {shown}: {stored?.Message}");

            var api = await curator.PostAsJsonAsync("v1/banks", new { name });
            Assert.True(api.StatusCode == (valid ? HttpStatusCode.Created : HttpStatusCode.BadRequest), $"API, {shown}: {api.StatusCode}");
            if (valid)
            {
                Assert.True((await curator.DeleteAsync($"c/bank/{Uri.EscapeDataString(name)}")).IsSuccessStatusCode, $"HMA delete, {shown}");
            }

            var hma = await curator.PostAsJsonAsync("c/banks", new { name });
            Assert.True(hma.StatusCode == (valid ? HttpStatusCode.Created : HttpStatusCode.BadRequest), $"HMA, {shown}: {hma.StatusCode}");

            var cli = Cli("bank", "create", name);
            Assert.True(valid ? cli.Exit == 0 : cli.Exit != 0, $"CLI, {shown}: {cli.Exit} {cli.Err}");
        }
    }

    /// <summary>For every registered type: values around 0 and its maximum, and a few inside.</summary>
    private static IEnumerable<(ISignalType Type, int Value)> ThresholdCases()
    {
        var random = new Random(13);
        foreach (var type in SignalTypes.All)
        {
            foreach (var value in new[] { -1, 0, type.MaxThreshold, type.MaxThreshold + 1, random.Next(0, type.MaxThreshold + 1), random.Next(type.MaxThreshold + 2, 1000), int.MinValue })
            {
                yield return (type, value);
            }
        }
    }

    [Fact]
    public async Task Api_cli_and_storage_apply_the_same_threshold_rule_per_signal_type()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var curator = server.Client(Role.Curator);
        using var store = BankStore.Open(Path.Combine(_dir, "store.db"));
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "base" }), HttpStatusCode.Created);
        var i = 0;
        foreach (var (type, value) in ThresholdCases())
        {
            var valid = BankThresholds.Check(type, value) is null;
            Assert.Equal(value >= 0 && value <= type.MaxThreshold, valid);
            var name = string.Create(CultureInfo.InvariantCulture, $"t{i++}");
            var what = $"{type.Name}={value}";

            var stored = Record.Exception(() => store.CreateBank(name, thresholds: new Dictionary<string, int> { [type.Name] = value }));
            Assert.True(valid ? stored is null : stored is StorageException { Error: StorageError.Invalid }, $"storage, {what}: {stored?.Message}");
            if (valid)
            {
                Assert.Equal(value, store.RequireBank(name).ThresholdFor(type));
            }

            var api = await curator.PostAsJsonAsync("v1/banks", new { name, thresholds = new Dictionary<string, int> { [type.Name] = value } });
            Assert.True(api.StatusCode == (valid ? HttpStatusCode.Created : HttpStatusCode.BadRequest), $"API create, {what}: {api.StatusCode}");
            if (valid)
            {
                var shown = await HttpAssert.Json(await curator.GetAsync($"v1/banks/{name}"));
                Assert.Equal(value, shown.GetProperty("thresholds").GetProperty(type.Name).GetInt32());
                var cleared = await HttpAssert.Json(await curator.PatchAsJsonAsync($"v1/banks/{name}", new { thresholds = new Dictionary<string, int?> { [type.Name] = null } }));
                Assert.False(cleared.GetProperty("thresholds").TryGetProperty(type.Name, out _));
            }

            var patched = await curator.PatchAsJsonAsync("v1/banks/" + (valid ? name : "base"), new { thresholds = new Dictionary<string, int> { [type.Name] = value } });
            Assert.True(patched.StatusCode == (valid ? HttpStatusCode.OK : HttpStatusCode.BadRequest), $"API update, {what}: {patched.StatusCode}");

            var cli = Cli("bank", "create", name, "--threshold", what, "-f", "jsonl");
            Assert.True(valid ? cli.Exit == 0 : cli.Exit != 0, $"CLI, {what}: {cli.Exit} {cli.Err}");
            if (valid)
            {
                Assert.Equal(value, JsonDocument.Parse(cli.Out).RootElement.GetProperty("thresholds").GetProperty(type.Name).GetInt32());
            }

            if (type == SignalTypes.Pdq)
            {
                // The pdq_threshold shorthand is the same rule.
                var shorthand = await curator.PostAsJsonAsync("v1/banks", new { name = name + "p", pdq_threshold = value });
                Assert.True(shorthand.StatusCode == (valid ? HttpStatusCode.Created : HttpStatusCode.BadRequest), $"API pdq_threshold, {value}: {shorthand.StatusCode}");
                var cliShorthand = Cli("bank", "create", name + "p", "--pdq-threshold", value.ToString(CultureInfo.InvariantCulture));
                Assert.True(valid ? cliShorthand.Exit == 0 : cliShorthand.Exit != 0, $"CLI --pdq-threshold {value}: {cliShorthand.Exit}");
            }
        }

        // An unknown type is refused everywhere.
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.PostAsJsonAsync("v1/banks", new { name = "u", thresholds = new Dictionary<string, int> { ["photodna"] = 1 } })).StatusCode);
        Assert.NotEqual(0, Cli("bank", "create", "u", "--threshold", "photodna=1").Exit);
        Assert.NotEqual(0, Cli("bank", "create", "u2", "--threshold", "pdq").Exit);
        Assert.Equal(StorageError.Invalid, Assert.Throws<StorageException>(() => store.CreateBank("u", thresholds: new Dictionary<string, int> { ["photodna"] = 1 })).Error);
    }

    [Fact]
    public async Task Bank_kind_words_are_the_same_in_api_cli_and_core()
    {
        foreach (var kind in Enum.GetValues<BankKind>())
        {
            Assert.True(BankKinds.TryParse(BankKinds.Name(kind), out var back));
            Assert.Equal(kind, back);
            Assert.True(BankKinds.TryParse($" {BankKinds.Name(kind).ToUpperInvariant()}LIST ", out back));
            Assert.Equal(kind, back);
        }

        Assert.False(BankKinds.TryParse("deny", out _));
        Assert.Equal(Enum.GetValues<BankKind>().Length, BankKinds.Names.Count);

        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var curator = server.Client(Role.Curator);
        foreach (var word in BankKinds.Names)
        {
            var api = await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "api-" + word, kind = word.ToUpperInvariant() }), HttpStatusCode.Created);
            Assert.Equal(word, api.GetProperty("kind").GetString());
            var cli = Cli("bank", "create", "cli-" + word, "--kind", word, "-f", "jsonl");
            Assert.True(cli.Exit == 0, cli.Err);
            Assert.Equal(word, JsonDocument.Parse(cli.Out).RootElement.GetProperty("kind").GetString());
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await curator.PostAsJsonAsync("v1/banks", new { name = "k", kind = "deny" })).StatusCode);
        Assert.NotEqual(0, Cli("bank", "create", "k", "--kind", "deny").Exit);
    }
}
