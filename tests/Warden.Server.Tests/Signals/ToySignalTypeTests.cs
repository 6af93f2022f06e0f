using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Warden.Cli;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Signals;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Tests.Signals;

/// <summary>
/// The plug-in proof: <see cref="ToySignalType"/>, defined only in this project, is hashed, imported into banks,
/// matched (with per-bank thresholds and snapshots), served by the API and used by the CLI, by registering it in
/// a <see cref="SignalTypeRegistry"/> and nothing else.
/// </summary>
public sealed class ToySignalTypeTests : IDisposable
{
    private static readonly ToySignalType Toy = new();

    private readonly string _dir = Directory.CreateTempSubdirectory("warden-toy-").FullName;

    private static SignalTypeRegistry Registry() => SignalTypeRegistry.CreateDefault().Register(Toy, new ToyHasher(Toy));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    // Flips `bits` distinct bits chosen by `seed`.
    private static uint Flip(uint value, int bits, int seed)
    {
        var random = new Random(seed);
        foreach (var bit in Enumerable.Range(0, 32).OrderBy(_ => random.Next()).Take(bits))
        {
            value ^= 1u << bit;
        }

        return value;
    }

    [Fact]
    public void Hashing_and_matching_use_the_plug_in_with_per_bank_thresholds_and_snapshots()
    {
        var registry = Registry();
        var strict = new Bank(2, "strict", BankKind.BlockList, true, new Dictionary<string, int> { [ToySignalType.TypeName] = 0 }, null, DateTimeOffset.UnixEpoch);
        var loose = new Bank(1, "loose", BankKind.BlockList, true, null, null, DateTimeOffset.UnixEpoch);
        for (var seed = 0; seed < 40; seed++)
        {
            var data = Media.Jpeg(seed % 5 + 1, 64 + seed, 48);
            data[^3] ^= (byte)seed; // a different file each round, same image kind
            using var hasher = new ContentHasher(registry: registry);
            var hashes = hasher.HashStream(new MemoryStream(data));
            var value = ToySignalType.Fnv(data);
            var toy = Assert.Single(hashes.ToSignals(), s => s.Type.Name == ToySignalType.TypeName);
            Assert.Equal(ToySignalType.Format(value), toy.Value);

            var flips = seed % 5; // 0..4 bits away
            using var matcher = new BankMatcher([loose, strict], registry);
            Assert.True(matcher.Add(10, 1, ToySignalType.TypeName, ToySignalType.Format(Flip(value, flips, seed))));
            Assert.True(matcher.Add(20, 2, ToySignalType.TypeName, ToySignalType.Format(Flip(value, flips, seed))));
            Assert.False(matcher.Add(30, 1, ToySignalType.TypeName, "not hex!"));
            Check(matcher);

            var snapshot = Path.Combine(_dir, "snap" + seed);
            matcher.Save(snapshot);
            using var loaded = BankMatcher.Load(snapshot, [loose, strict], registry);
            Assert.Equal(2, loaded.Count);
            Check(loaded);

            // Removal is the plug-in index's own.
            Assert.True(loaded.Remove(10, 1, ToySignalType.TypeName));
            Assert.DoesNotContain(loaded.Match(hashes.ToSignals()), h => h.EntryId == 10);

            void Check(BankMatcher m)
            {
                var hits = m.Match(hashes.ToSignals()).Where(h => h.SignalType == ToySignalType.TypeName).ToList();
                var expected = new List<long>();
                if (flips <= Toy.DefaultThreshold)
                {
                    expected.Add(10);
                }

                if (flips == 0)
                {
                    expected.Add(20);
                }

                Assert.Equal(expected, hits.Select(h => h.EntryId).Order());
                Assert.All(hits, h => Assert.Equal(flips, h.Distance));
                Assert.Equal(expected.Count, m.MatchSignal(ToySignalType.TypeName, toy.Value).Count);
            }
        }

        // The built-in registry does not know the toy: its entries are skipped, its name is unknown.
        using var plain = new BankMatcher([loose]);
        Assert.False(plain.Add(1, 1, ToySignalType.TypeName, "00000000"));
        Assert.False(SignalTypeRegistry.Default.TryGet(ToySignalType.TypeName, out _));
        Assert.Throws<InvalidOperationException>(() => SignalTypeRegistry.Default.Register(Toy));
        Assert.Throws<ArgumentException>(() => Registry().Register(new ToySignalType()));
    }

    [Fact]
    public void Cli_hashes_imports_and_scans_with_the_plug_in()
    {
        var db = Path.Combine(_dir, "warden.db");
        var uploads = Directory.CreateDirectory(Path.Combine(_dir, "uploads")).FullName;
        var image = Media.Jpeg(3);
        File.WriteAllBytes(Path.Combine(uploads, "a.jpg"), image);
        File.WriteAllBytes(Path.Combine(uploads, "b.jpg"), Media.Jpeg(4));
        var near = ToySignalType.Format(Flip(ToySignalType.Fnv(image), 1, 7));
        var csv = Path.Combine(_dir, "toy.csv");
        File.WriteAllText(csv, $"signal_type,signal,category\n{ToySignalType.TypeName},{near},toy\n");

        (int Exit, string Out, string Err) Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var exit = WardenCli.Run(args[0] == "hash" ? args : [.. args, "--db", db], output, error);
            return (exit, output.ToString(), error.ToString());
        }

        var created = Run("bank", "create", "toys");
        Assert.True(created.Exit == 0, created.Err);

        // Without the plug-in the CLI does not know the type: the import is refused.
        var refused = Run("bank", "import", "toys", csv);
        Assert.NotEqual(0, refused.Exit);
        Assert.Contains(ToySignalType.TypeName, refused.Err + refused.Out, StringComparison.Ordinal);

        using (SignalTypeRegistry.Use(Registry()))
        {
            var hashed = Run("hash", "-f", "jsonl", Path.Combine(uploads, "a.jpg"));
            Assert.True(hashed.Exit == 0, hashed.Err);
            var row = JsonDocument.Parse(hashed.Out).RootElement;
            Assert.Equal(ToySignalType.Format(ToySignalType.Fnv(image)), row.GetProperty("signals").GetProperty(ToySignalType.TypeName).GetString());

            var import = Run("bank", "import", "toys", csv);
            Assert.True(import.Exit == 0, import.Err);

            var scan = Run("scan", "-f", "jsonl", uploads);
            Assert.True(scan.Exit == 0, scan.Err);
            var hit = Assert.Single(scan.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement));
            Assert.Equal("a.jpg", Path.GetFileName(hit.GetProperty("path").GetString()));
            Assert.Equal(ToySignalType.TypeName, hit.GetProperty("signal_type").GetString());
            Assert.Equal(1, hit.GetProperty("distance").GetInt32());
            Assert.Equal("toy", hit.GetProperty("labels").GetProperty("category").GetString());
        }
    }

    [Fact]
    public async Task Api_hashes_imports_and_matches_with_the_plug_in()
    {
        var registry = Registry();
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite, o => o.SignalTypes = registry);
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);
        var image = Media.Jpeg(5);
        var value = ToySignalType.Fnv(image);

        var hashed = await HttpAssert.Json(await submitter.PostAsync("v1/hash", Raw(image)));
        Assert.Equal(ToySignalType.Format(value), hashed.GetProperty("signals").GetProperty(ToySignalType.TypeName).GetString());

        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "toys" }), HttpStatusCode.Created);
        var near = ToySignalType.Format(Flip(value, 2, 11));
        var far = ToySignalType.Format(Flip(value, 3, 12));
        var csv = $"signal_type,signal,category\n{ToySignalType.TypeName},{near},toy\n{ToySignalType.TypeName},{far},toy\n";
        var imported = await HttpAssert.Json(await curator.PostAsync("v1/banks/toys/import", new StringContent(csv, Encoding.UTF8, "text/csv")));
        Assert.Equal(2, imported.GetProperty("added").GetInt64());
        var bad = await curator.PostAsync("v1/banks/toys/import", new StringContent($"signal_type,signal\n{ToySignalType.TypeName},xyz\n", Encoding.UTF8, "text/csv"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(10);
        JsonElement match;
        do
        {
            match = await HttpAssert.Json(await submitter.PostAsync("v1/match", Raw(image)));
            await Task.Delay(50);
        }
        while (!match.GetProperty("matched").GetBoolean() && DateTime.UtcNow < deadline);

        var hit = Assert.Single(match.GetProperty("hits").EnumerateArray());
        Assert.Equal(ToySignalType.TypeName, hit.GetProperty("signal_type").GetString());
        Assert.Equal(2, hit.GetProperty("distance").GetInt32());
        Assert.Equal("toys", hit.GetProperty("bank").GetString());

        var byValue = await HttpAssert.Json(await submitter.GetAsync($"v1/match?signal_type={ToySignalType.TypeName}&signal={ToySignalType.Format(value)}"));
        Assert.Single(byValue.GetProperty("hits").EnumerateArray());
        var invalid = await submitter.GetAsync($"v1/match?signal_type={ToySignalType.TypeName}&signal=nothex");
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);

        var types = await HttpAssert.Json(await curator.GetAsync("c/signal_type"));
        Assert.Contains(types.EnumerateArray(), t => t.GetProperty("name").GetString() == ToySignalType.TypeName);
    }

    private static ByteArrayContent Raw(byte[] data)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        return content;
    }
}
