using System.Net;
using System.Security.Cryptography;
using System.Text;
using Warden.Cli;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Tests.Formats;

/// <summary>
/// The list-format plug-in proof: <see cref="ToyListFormat"/>, defined only in this project, is parsed by name and
/// alias, detected by extension and content, read and written by the core, and imported and exported through the
/// API and the CLI, by registering it in a <see cref="ListFormatRegistry"/> and nothing else.
/// </summary>
public sealed class ToyListFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-toylist-").FullName;

    private static ListFormatRegistry Registry() => ListFormatRegistry.CreateDefault().Register(new ToyListFormat());

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Generated records: md5 or sha256 digests of the index, 0-3 random labels (some well-known).</summary>
    private static List<BankEntryRecord> Records(int count, int seed)
    {
        var random = new Random(seed);
        var records = new List<BankEntryRecord>();
        for (var i = 0; i < count; i++)
        {
            var bytes = BitConverter.GetBytes((seed * 100_000) + i);
            var (type, signal) = random.Next(2) == 0 ? ("md5", Convert.ToHexStringLower(SHA256.HashData(bytes))[..32]) : ("sha256", Convert.ToHexStringLower(SHA256.HashData(bytes)));
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var l = random.Next(4); l > 0; l--)
            {
                switch (random.Next(3))
                {
                    case 0: labels[WellKnownLabels.Classification] = WellKnownLabels.Classifications.ElementAt(random.Next(4)); break;
                    case 1: labels["category"] = "c" + random.Next(10); break;
                    default: labels["tag" + random.Next(5)] = "v" + random.Next(100); break;
                }
            }

            records.Add(new BankEntryRecord(type, signal, labels));
        }

        return records;
    }

    private static string Write(BankFileFormat format, IEnumerable<BankEntryRecord> records)
    {
        var writer = new StringWriter();
        BankFileWriter.Write(writer, format, records);
        return writer.ToString();
    }

    private static void AssertSame(List<BankEntryRecord> expected, List<BankEntryRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].SignalType, actual[i].SignalType);
            Assert.Equal(expected[i].Signal, actual[i].Signal);
            Assert.Equal(expected[i].Labels.OrderBy(p => p.Key, StringComparer.Ordinal), actual[i].Labels.OrderBy(p => p.Key, StringComparer.Ordinal));
        }
    }

    [Fact]
    public void Core_names_detects_reads_and_writes_the_plug_in()
    {
        var registry = Registry();
        Assert.False(ListFormatRegistry.Default.TryGet(ToyListFormat.FormatName, out _));
        Assert.True(registry.TryGet(" TOY-LIST ", out var toy));
        Assert.Equal(ToyListFormat.FormatName, toy.Name);
        Assert.Contains(ToyListFormat.FormatName, registry.Names);
        Assert.Contains(toy, registry.Writable);

        // The registry refuses a taken name or alias, a bad name, and changes to the default.
        Assert.Throws<InvalidOperationException>(() => ListFormatRegistry.Default.Register(new ToyListFormat()));
        Assert.Throws<ArgumentException>(() => Registry().Register(new ToyListFormat()));

        for (var seed = 1; seed <= 20; seed++)
        {
            var records = Records(50 + seed, seed);
            var text = Write(toy, records);
            var head = Encoding.UTF8.GetBytes(text[..Math.Min(text.Length, 4096)]);
            Assert.Same(toy, registry.Detect("list.TOYLIST", default));
            Assert.Same(toy, registry.Detect("-", head));
            Assert.Null(ListFormatRegistry.Default.Detect("-", head));

            using (ListFormatRegistry.Use(registry))
            {
                // Through the static shortcuts the CLI and the API use.
                Assert.True(BankFileFormats.TryParse("toylist", out var parsed));
                Assert.Same(toy, BankFileFormats.Detect(null, head));
                var report = new ImportReport();
                var back = BankFileReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(text)), new ImportOptions(parsed, SourceName: "gen.toylist"), report).ToList();
                AssertSame(records, back);
                Assert.Equal(records.Count, report.Imported);

                // And into the built-in formats and back: the plug-in's records are ordinary records.
                var jsonl = Write(BankFileFormat.JsonLines, back);
                var again = BankFileReader.Read(new StringReader(jsonl), new ImportOptions(BankFileFormat.JsonLines), new ImportReport()).ToList();
                Assert.Equal(text, Write(toy, again));
            }
        }
    }

    [Fact]
    public void Core_reports_the_plug_ins_bad_lines_as_file_line_reason()
    {
        var toy = Registry().All.Single(f => f.Name == ToyListFormat.FormatName);
        var good = Convert.ToHexStringLower(SHA256.HashData([1]))[..32];
        var text = $"{ToyListFormat.Header}\nmd5\t{good}\nmd5\tnothex\nphotodna\t{good}\nmd5\t{good}\tnolabel\nmd5\t{good}\tclassification=Z9\n";
        var report = new ImportReport();
        var records = BankFileReader.Read(new StringReader(text), new ImportOptions(toy, SkipBadLines: true, SourceName: "bad.toylist"), report).ToList();
        Assert.Single(records);
        Assert.Equal(4, report.ErrorCount);
        Assert.Equal([3L, 4L, 5L, 6L], report.Errors.Select(e => e.Line));
        Assert.All(report.Errors, e => Assert.StartsWith("bad.toylist:", e.ToString(), StringComparison.Ordinal));

        var abort = Assert.Throws<BankFormatException>(() => BankFileReader.Read(new StringReader(text), new ImportOptions(toy, SourceName: "bad.toylist"), new ImportReport()).ToList());
        Assert.Equal(3, abort.Line);
        var headerless = Assert.Throws<BankFormatException>(() => BankFileReader.Read(new StringReader("md5\tx\n"), new ImportOptions(toy, SkipBadLines: true), new ImportReport()).ToList());
        Assert.Equal(1, headerless.Line);
    }

    [Fact]
    public async Task Api_imports_and_exports_the_plug_in()
    {
        var registry = Registry();
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite, o => o.ListFormats = registry);
        using var curator = server.Client(Role.Curator);
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "toys" }), HttpStatusCode.Created);
        var records = Records(40, 7);
        var toy = registry.All.Single(f => f.Name == ToyListFormat.FormatName);
        var text = Write(toy, records);

        // Named, then detected from the content: the second import adds nothing.
        var named = await HttpAssert.Json(await curator.PostAsync("v1/banks/toys/import?format=toy-list", new StringContent(text, Encoding.UTF8, "text/plain")));
        Assert.Equal(records.Count, named.GetProperty("added").GetInt64());
        var detected = await HttpAssert.Json(await curator.PostAsync("v1/banks/toys/import", new StringContent(text, Encoding.UTF8, "text/plain")));
        Assert.Equal(records.Count, detected.GetProperty("unchanged").GetInt64());

        var export = await curator.GetAsync("v1/banks/toys/export?format=toylist");
        Assert.Equal(HttpStatusCode.OK, export.StatusCode);
        Assert.Equal(toy.MimeType, export.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith(".toylist", export.Content.Headers.ContentDisposition?.FileName?.Trim('"'), StringComparison.Ordinal);
        var body = await export.Content.ReadAsStringAsync();
        var back = BankFileReader.Read(new StringReader(body), new ImportOptions(toy), new ImportReport()).ToList();
        AssertSame(records.OrderBy(r => r.SignalType, StringComparer.Ordinal).ThenBy(r => r.Signal, StringComparer.Ordinal).ToList(),
            back.OrderBy(r => r.SignalType, StringComparer.Ordinal).ThenBy(r => r.Signal, StringComparer.Ordinal).ToList());

        // A read-only or unknown format is a 400, not a crash.
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.GetAsync("v1/banks/toys/export?format=ncmec")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.GetAsync("v1/banks/toys/export?format=yaml")).StatusCode);
    }

    [Fact]
    public async Task Api_without_the_plug_in_refuses_its_name()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var curator = server.Client(Role.Curator);
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "toys" }), HttpStatusCode.Created);
        var refused = await curator.PostAsync("v1/banks/toys/import?format=toylist", new StringContent(ToyListFormat.Header + "\n", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await curator.GetAsync("v1/banks/toys/export?format=toylist")).StatusCode);
    }

    [Fact]
    public void Cli_imports_and_exports_the_plug_in()
    {
        var db = Path.Combine(_dir, "warden.db");
        var records = Records(30, 3);
        var registry = Registry();
        var toy = registry.All.Single(f => f.Name == ToyListFormat.FormatName);
        var file = Path.Combine(_dir, "list.toylist");
        File.WriteAllText(file, Write(toy, records));

        (int Exit, string Out, string Err) Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var exit = WardenCli.Run([.. args, "--db", db], output, error);
            return (exit, output.ToString(), error.ToString());
        }

        Assert.Equal(0, Run("bank", "create", "toys").Exit);

        // Without the plug-in the CLI cannot tell the format, nor accept its name.
        Assert.NotEqual(0, Run("bank", "import", "toys", file).Exit);
        Assert.NotEqual(0, Run("bank", "import", "toys", file, "--list-format", "toylist").Exit);

        using (ListFormatRegistry.Use(registry))
        {
            var detected = Run("bank", "import", "toys", file);
            Assert.True(detected.Exit == 0, detected.Err);
            Assert.Contains("(toylist)", detected.Out, StringComparison.Ordinal);
            var named = Run("bank", "import", "toys", file, "--list-format", "toy-list");
            Assert.True(named.Exit == 0, named.Err);

            var exported = Run("bank", "export", "toys", "-f", "toylist");
            Assert.True(exported.Exit == 0, exported.Err);
            var back = BankFileReader.Read(new StringReader(exported.Out), new ImportOptions(toy), new ImportReport()).ToList();
            Assert.Equal(records.Count, back.Count);
            Assert.Equal(records.Select(r => r.Signal).Order(StringComparer.Ordinal), back.Select(r => r.Signal).Order(StringComparer.Ordinal));
        }
    }
}
