using System.Text.Json;
using NetVips;

namespace Warden.Cli.Tests;

/// <summary>`warden bank …` and `warden scan` on a real SQLite file and images the test makes.</summary>
public sealed class BankAndScanCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-scan-").FullName;

    public BankAndScanCommandTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "originals"));
        Directory.CreateDirectory(Path.Combine(_dir, "uploads"));
        for (var seed = 1; seed <= 3; seed++)
        {
            using var img = Picture(seed);
            File.WriteAllBytes(Path.Combine(_dir, "originals", $"p{seed}.png"), img.WriteToBuffer(".png"));
        }

        using (var p1 = Picture(1))
        {
            File.WriteAllBytes(Path.Combine(_dir, "uploads", "p1-recompressed.jpg"), p1.JpegsaveBuffer(q: 70));
            using var rotated = p1.Rot90();
            File.WriteAllBytes(Path.Combine(_dir, "uploads", "p1-rotated.jpg"), rotated.JpegsaveBuffer(q: 85));
            using var framed = p1.Embed(40, 40, p1.Width + 80, p1.Height + 80, extend: Enums.Extend.White);
            File.WriteAllBytes(Path.Combine(_dir, "uploads", "p1-framed.jpg"), framed.JpegsaveBuffer(q: 85));
        }

        using (var p4 = Picture(4))
        {
            File.WriteAllBytes(Path.Combine(_dir, "uploads", "unrelated.jpg"), p4.JpegsaveBuffer(q: 85));
        }
    }

    private string Db => Path.Combine(_dir, "warden.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A benign photo-like picture: coloured discs on a gradient, different per seed.</summary>
    private static Image Picture(int seed)
    {
        const int w = 480, h = 360;
        var rng = new Random(seed);
        var discs = Enumerable.Range(0, 10).Select(_ => (x: rng.Next(w), y: rng.Next(h), r: rng.Next(20, 90), c: new[] { rng.Next(256), rng.Next(256), rng.Next(256) })).ToArray();
        var px = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    double v = (x * (c + 1) / 6) + (y / 3);
                    foreach (var d in discs)
                    {
                        if (((x - d.x) * (x - d.x)) + ((y - d.y) * (y - d.y)) < d.r * d.r)
                        {
                            v = d.c[c];
                        }
                    }

                    px[(((y * w) + x) * 3) + c] = (byte)Math.Clamp(v, 0, 255);
                }
            }
        }

        return Image.NewFromMemory(px, w, h, 3, Enums.BandFormat.Uchar);
    }

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = WardenCli.Run([.. args, "--db", Db], output, error);
        return (exit, output.ToString(), error.ToString());
    }

    private string WriteBankCsv()
    {
        var (_, hashes, _) = Run("hash", "-f", "jsonl", Path.Combine(_dir, "originals"));
        var csv = Path.Combine(_dir, "bank.csv");
        var lines = new List<string> { "signal_type,signal,category" };
        foreach (var line in hashes.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var row = JsonDocument.Parse(line).RootElement;
            lines.Add($"pdq,{row.GetProperty("pdq").GetString()},demo");
            lines.Add($"sha256,{row.GetProperty("sha256").GetString()},demo");
        }

        File.WriteAllLines(csv, lines);
        return csv;
    }

    private static List<JsonElement> Rows(string jsonl) =>
        jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public void Scan_finds_edited_copies_and_not_unrelated_images()
    {
        Assert.Equal(0, Run("bank", "create", "demo").Exit);
        var import = Run("bank", "import", "demo", WriteBankCsv());
        Assert.Equal(0, import.Exit);
        Assert.Contains("6 records, 6 added", import.Out, StringComparison.Ordinal);

        var (exit, output, error) = Run("scan", "-f", "jsonl", Path.Combine(_dir, "uploads"));
        Assert.Equal(0, exit);
        var hits = Rows(output);
        var files = hits.Select(h => Path.GetFileName(h.GetProperty("path").GetString()!)).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["p1-framed.jpg", "p1-recompressed.jpg", "p1-rotated.jpg"], files);
        Assert.All(hits, h =>
        {
            Assert.Equal("demo", h.GetProperty("bank").GetString());
            Assert.InRange(h.GetProperty("distance").GetInt32(), 0, 31);
            Assert.Equal("demo", h.GetProperty("labels").GetProperty("category").GetString());
            Assert.False(h.GetProperty("suppressed").GetBoolean());
        });
        Assert.StartsWith("trimmed:", hits.First(h => h.GetProperty("path").GetString()!.EndsWith("framed.jpg", StringComparison.Ordinal)).GetProperty("variant").GetString(), StringComparison.Ordinal);
        Assert.Contains("3 files matched", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Exact_copies_match_by_sha256_and_fail_on_match_exits_3()
    {
        Run("bank", "create", "demo");
        Run("bank", "import", "demo", WriteBankCsv());
        var copy = Path.Combine(_dir, "copy.png");
        File.Copy(Path.Combine(_dir, "originals", "p2.png"), copy);
        var (exit, output, _) = Run("scan", "-f", "jsonl", "--fail-on-match", copy);
        Assert.Equal(3, exit);
        Assert.Contains(Rows(output), h => h.GetProperty("signal_type").GetString() == "sha256");
    }

    [Fact]
    public void Allow_list_hits_suppress_block_list_hits()
    {
        Run("bank", "create", "block");
        Run("bank", "create", "valve", "--kind", "allow");
        var csv = WriteBankCsv();
        Run("bank", "import", "block", csv);
        Run("bank", "import", "valve", csv);
        var (exit, output, _) = Run("scan", "-f", "jsonl", "--fail-on-match", Path.Combine(_dir, "uploads", "p1-recompressed.jpg"));
        Assert.Equal(0, exit);
        var hits = Rows(output);
        Assert.Contains(hits, h => h.GetProperty("bank").GetString() == "valve" && !h.GetProperty("suppressed").GetBoolean());
        Assert.Contains(hits, h => h.GetProperty("bank").GetString() == "block" && h.GetProperty("suppressed").GetBoolean());
    }

    [Fact]
    public void Disabled_banks_and_per_bank_thresholds_are_respected()
    {
        var uploads = Path.Combine(_dir, "uploads");
        Run("bank", "create", "loose");
        Run("bank", "import", "loose", WriteBankCsv());
        var near = Rows(Run("scan", "-f", "jsonl", uploads).Out).Where(h => h.GetProperty("distance").GetInt32() > 0).MinBy(h => h.GetProperty("distance").GetInt32());
        Assert.True(near.ValueKind == JsonValueKind.Object, "expected a near-duplicate hit at a distance above 0");
        var file = near.GetProperty("path").GetString()!;
        var distance = near.GetProperty("distance").GetInt32();

        // A bank whose threshold is just below that distance does not match the file; one at it does.
        Run("bank", "create", "strict", "--pdq-threshold", (distance - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Run("bank", "create", "exact-threshold", "--pdq-threshold", distance.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Run("bank", "import", "strict", WriteBankCsv());
        Run("bank", "import", "exact-threshold", WriteBankCsv());
        var banks = Rows(Run("scan", "-f", "jsonl", file).Out).Where(h => h.GetProperty("signal_type").GetString() == "pdq").Select(h => h.GetProperty("bank").GetString()).ToHashSet();
        Assert.Contains("exact-threshold", banks);
        Assert.DoesNotContain("strict", banks);

        Assert.Equal(0, Run("bank", "disable", "loose").Exit);
        Assert.DoesNotContain(Rows(Run("scan", "-f", "jsonl", file).Out), h => h.GetProperty("bank").GetString() == "loose");
        var list = Rows(Run("bank", "list", "-f", "jsonl").Out);
        Assert.False(list.Single(b => b.GetProperty("name").GetString() == "loose").GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public void Bad_lines_abort_with_file_and_line_or_are_skipped_and_reported()
    {
        Run("bank", "create", "demo");
        var csv = Path.Combine(_dir, "bad.csv");
        File.WriteAllLines(csv, ["signal_type,signal", $"md5,{new string('a', 32)}", "md5,not-a-hash", $"md5,{new string('b', 32)}"]);

        var abort = Run("bank", "import", "demo", csv);
        Assert.Equal(1, abort.Exit);
        Assert.Contains("bad.csv:3:", abort.Err, StringComparison.Ordinal);

        var skip = Run("bank", "import", "demo", csv, "--on-error", "skip");
        Assert.Equal(1, skip.Exit);
        Assert.Contains("bad.csv:3:", skip.Err, StringComparison.Ordinal);
        Assert.Contains("1 bad lines skipped", skip.Out, StringComparison.Ordinal);
        Assert.Contains("\"entries\":2", Run("bank", "list", "-f", "jsonl").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Export_then_import_round_trips()
    {
        Run("bank", "create", "a");
        Run("bank", "import", "a", WriteBankCsv());
        var exported = Path.Combine(_dir, "a.jsonl");
        Assert.Equal(0, Run("bank", "export", "a", "-f", "jsonl", "-o", exported).Exit);
        Run("bank", "create", "b");
        var import = Run("bank", "import", "b", exported);
        Assert.Equal(0, import.Exit);
        Assert.Contains("6 added", import.Out, StringComparison.Ordinal);
        Assert.Equal(Run("bank", "export", "a", "-f", "csv").Out, Run("bank", "export", "b", "-f", "csv").Out);
    }

    [Fact]
    public void Unknown_banks_and_bad_names_are_clear_errors()
    {
        // The database exists (a missing one is refused earlier, with exit 2: FailClosedTests).
        Run("bank", "create", "other");
        var missing = Run("bank", "import", "nope", WriteBankCsv());
        Assert.Equal(1, missing.Exit);
        Assert.Contains("No bank named 'nope'", missing.Err, StringComparison.Ordinal);
        var bad = Run("bank", "create", "has space");
        Assert.Equal(1, bad.Exit);
        Assert.Contains("Invalid bank name", bad.Err, StringComparison.Ordinal);
        Run("bank", "create", "x");
        Assert.Contains("already exists", Run("bank", "create", "x").Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Storage_commands_speak_json_lines_when_asked()
    {
        var created = JsonDocument.Parse(Run("bank", "create", "j", "--kind", "allow", "-f", "jsonl").Out).RootElement;
        Assert.Equal(("j", "allow", true), (created.GetProperty("name").GetString(), created.GetProperty("kind").GetString(), created.GetProperty("enabled").GetBoolean()));
        var imported = JsonDocument.Parse(Run("bank", "import", "j", WriteBankCsv(), "-f", "jsonl").Out).RootElement;
        Assert.Equal((6, 6, "csv"), (imported.GetProperty("records").GetInt32(), imported.GetProperty("added").GetInt32(), imported.GetProperty("format").GetString()));
        var disabled = JsonDocument.Parse(Run("bank", "disable", "j", "-f", "jsonl").Out).RootElement;
        Assert.False(disabled.GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public void Index_snapshot_is_reused_while_the_database_is_unchanged_and_rebuilt_after_a_change()
    {
        MatcherCache.MinEntriesToSave = 0;
        Run("bank", "create", "demo");
        Run("bank", "import", "demo", WriteBankCsv());
        var uploads = Path.Combine(_dir, "uploads");
        var first = Run("scan", "-f", "jsonl", uploads);
        var second = Run("scan", "-f", "jsonl", uploads);
        Assert.Contains("from the database", first.Err, StringComparison.Ordinal);
        Assert.Contains("from the index snapshot", second.Err, StringComparison.Ordinal);
        Assert.Equal(first.Out, second.Out);

        Run("bank", "create", "more");
        File.WriteAllLines(Path.Combine(_dir, "more.csv"), ["signal_type,signal", $"md5,{new string('c', 32)}"]);
        Run("bank", "import", "more", Path.Combine(_dir, "more.csv"));
        Assert.Contains("from the database", Run("scan", "-f", "jsonl", uploads).Err, StringComparison.Ordinal);
        Run("bank", "disable", "more");
        Assert.Contains("from the database", Run("scan", "-f", "jsonl", uploads).Err, StringComparison.Ordinal);

        // A damaged snapshot is reported and rebuilt, never trusted.
        foreach (var f in Directory.GetFiles(Db + ".index", "*.idx"))
        {
            File.WriteAllBytes(f, [1, 2, 3]);
        }

        var damaged = Run("scan", "-f", "jsonl", uploads);
        Assert.Equal(first.Out, damaged.Out);
        Assert.Contains("unusable", damaged.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Files_that_are_not_images_still_match_by_digest()
    {
        var doc = Path.Combine(_dir, "notes.bin");
        File.WriteAllBytes(doc, [1, 2, 3, 4, 5]);
#pragma warning disable CA5351 // MD5 as a list identifier, as clearinghouses publish it
        var md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(File.ReadAllBytes(doc)));
#pragma warning restore CA5351
        File.WriteAllLines(Path.Combine(_dir, "md5.txt"), [md5]);
        Run("bank", "create", "digests");
        Assert.Equal(0, Run("bank", "import", "digests", Path.Combine(_dir, "md5.txt"), "--list-format", "plain", "--signal-type", "md5").Exit);
        var (exit, output, error) = Run("scan", "-f", "jsonl", doc);
        Assert.Equal(0, exit);
        Assert.Equal("md5", Rows(output).Single().GetProperty("signal_type").GetString());
        Assert.DoesNotContain("unsupported", error, StringComparison.Ordinal);
    }
}
