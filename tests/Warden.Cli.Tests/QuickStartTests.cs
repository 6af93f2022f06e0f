using System.Text.Json;

namespace Warden.Cli.Tests;

/// <summary>The README's quick starts, on the repository's own samples.</summary>
public sealed class QuickStartTests : IDisposable
{
    private static readonly string RepoRoot = Warden.Core.Tests.TestData.RepoRoot;
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-quickstart-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }


    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        return (WardenCli.Run(args, output, error), output.ToString(), error.ToString());
    }

    [Fact]
    public void Hash_quick_start_hashes_every_sample()
    {
        var (exit, output, error) = Run("hash", "-f", "jsonl", Path.Combine(RepoRoot, "samples", "images"));
        Assert.Equal(0, exit);
        Assert.Equal(6, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("0 failed", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Scan_quick_start_finds_every_edited_copy_and_not_the_unrelated_picture()
    {
        var db = Path.Combine(_dir, "warden.db");
        Assert.Equal(0, Run("bank", "create", "demo", "--db", db).Exit);
        Assert.Equal(0, Run("bank", "import", "demo", Path.Combine(RepoRoot, "samples", "demo-bank.csv"), "--db", db).Exit);
        var (exit, output, _) = Run("scan", "-f", "jsonl", "--fail-on-match", Path.Combine(RepoRoot, "samples", "uploads"), "--db", db);
        Assert.Equal(3, exit);
        var matched = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => Path.GetFileName(JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()!))
            .ToHashSet();
        var expected = Directory.GetFiles(Path.Combine(RepoRoot, "samples", "uploads")).Select(f => Path.GetFileName(f)).Where(f => f != "unrelated-plasma.jpg").ToHashSet();
        Assert.Equal(expected, matched);
    }

    [Fact]
    public void Hash_reports_the_trimmed_hash_of_a_framed_copy()
    {
        var (_, framed, _) = Run("hash", "-f", "jsonl", Path.Combine(RepoRoot, "samples", "uploads", "sunset-framed.jpg"));
        var (_, original, _) = Run("hash", "-f", "jsonl", Path.Combine(RepoRoot, "samples", "images", "sunset-plasma.jpg"));
        var trimmed = JsonDocument.Parse(framed).RootElement.GetProperty("trimmed");
        Assert.Equal((60, 60, 640, 480), (trimmed.GetProperty("x").GetInt32(), trimmed.GetProperty("y").GetInt32(), trimmed.GetProperty("width").GetInt32(), trimmed.GetProperty("height").GetInt32()));
        var a = Warden.Core.Hashing.Pdq.PdqHash.Parse(trimmed.GetProperty("pdq").GetString());
        var b = Warden.Core.Hashing.Pdq.PdqHash.Parse(JsonDocument.Parse(original).RootElement.GetProperty("pdq").GetString());
        Assert.InRange(a.DistanceTo(b), 0, 8);
        Assert.False(JsonDocument.Parse(original).RootElement.TryGetProperty("trimmed", out _));
    }

    [Fact]
    public void An_ncmec_feed_imported_into_a_bank_finds_the_synthetic_images_it_lists()
    {
        // The constructed Hash Sharing v2 pages list fingerprints of our synthetic test PNGs.
        var db = Path.Combine(_dir, "warden.db");
        var feed = Path.Combine(RepoRoot, "tests", "Warden.Core.Tests", "TestData", "ncmec-hashsharing", "scenario");
        Run("bank", "create", "ncmec", "--db", db);
        var page1 = Run("bank", "import", "ncmec", Path.Combine(feed, "entries-window1-page1.xml"), "-f", "jsonl", "--db", db);
        Assert.Equal(0, page1.Exit);
        Assert.True(JsonDocument.Parse(page1.Out).RootElement.GetProperty("added").GetInt32() > 0);
        var image = Path.Combine(RepoRoot, "tests", "Warden.Core.Tests", "TestData", "pdq-synthetic", "gradient-64x64.png");
        List<JsonElement> Scan() => Run("scan", "-f", "jsonl", image, "--db", db).Out
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

        var hits = Scan();
        Assert.Contains(hits, h => h.GetProperty("signal_type").GetString() == "md5" && h.GetProperty("labels").GetProperty("classification").GetString() == "A1");
        Assert.Contains(hits, h => h.GetProperty("signal_type").GetString() == "pdq" && h.GetProperty("distance").GetInt32() == 0);

        // Page 2 carries a tombstone for that entry (img-0001): the image stops matching.
        Assert.Equal(0, Run("bank", "import", "ncmec", Path.Combine(feed, "entries-window1-page2.xml"), "--db", db).Exit);
        Assert.Empty(Scan());
    }
}
