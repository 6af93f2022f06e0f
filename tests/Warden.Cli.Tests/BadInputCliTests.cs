using System.Security.Cryptography;

namespace Warden.Cli.Tests;

/// <summary>
/// Bad files, unknown formats and impossible options give one line on stderr naming the problem (or the fix) and a
/// non-zero exit, never a stack trace: `warden bank import` above all, and every command that reads files.
/// </summary>
public sealed class BadInputCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-badinput-").FullName;

    private string Db => Path.Combine(_dir, "warden.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private string File(string name, byte[] content)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllBytes(path, content);
        return path;
    }

    private string File(string name, string content) => File(name, System.Text.Encoding.UTF8.GetBytes(content));

    private static void AssertOneLineError((int Exit, string Out, string Err) r, int exit, string? mention = null)
    {
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(r.Exit == exit, $"exit {r.Exit}, expected {exit}: {r.Err}");
        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.StartsWith("warden:", l, StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", r.Err, StringComparison.Ordinal);
        if (mention is not null)
        {
            Assert.Contains(mention, r.Err, StringComparison.Ordinal);
        }
    }

    private static string Hex(int bytes, int seed) => Convert.ToHexStringLower(SHA256.HashData(BitConverter.GetBytes(seed))[..bytes]);

    [Fact]
    public void A_plain_list_whose_type_cannot_be_told_asks_for_signal_type()
    {
        Assert.Equal(0, Run("bank", "create", "b", "--db", Db).Exit);
        var sha256s = string.Join('\n', Enumerable.Range(0, 50).Select(i => Hex(32, i)));
        var mixed = "# a list\n" + Hex(16, 1) + "\n" + Hex(32, 2) + "\n";
        foreach (var (name, content) in new[] { ("list.txt", sha256s), ("mixed.txt", mixed), ("odd.txt", "abc\nxyz\n") })
        {
            var path = File(name, content);
            AssertOneLineError(Run("bank", "import", "b", path, "--list-format", "plain", "--db", Db), 2, "--signal-type");
            AssertOneLineError(Run("bank", "import", "b", path, "--db", Db), 2, "--");
        }

        AssertOneLineError(Run("bank", "import", "b", File("list2.txt", sha256s), "--db", Db), 2, "--signal-type");

        // An unknown signal type is a usage error too.
        AssertOneLineError(Run("bank", "import", "b", File("x.txt", sha256s), "--list-format", "plain", "--signal-type", "photodna9", "--db", Db), 2, "photodna9");

        // Told, or telling by itself (md5 and sha1 by length), the same lists import.
        Assert.Equal(0, Run("bank", "import", "b", File("y.txt", sha256s), "--list-format", "plain", "--signal-type", "sha256", "--db", Db).Exit);
        var md5s = string.Join('\n', Enumerable.Range(0, 20).Select(i => Hex(16, i))) + "\n" + Hex(20, 99) + "\n";
        var imported = Run("bank", "import", "b", File("md5.txt", md5s), "--list-format", "plain", "--db", Db);
        Assert.True(imported.Exit == 0, imported.Err);
        Assert.Contains("21 added", imported.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_files_and_unknown_formats_are_one_line_errors()
    {
        Assert.Equal(0, Run("bank", "create", "b", "--db", Db).Exit);
        var random = new byte[5000];
        new Random(3).NextBytes(random);
        var missing = Path.Combine(_dir, "missing.csv");
        var directory = Directory.CreateDirectory(Path.Combine(_dir, "folder")).FullName;
        var binary = File("blob.bin", random);
        var empty = File("empty.csv", []);

        AssertOneLineError(Run("bank", "import", "b", missing, "--db", Db), 1, "missing.csv");
        AssertOneLineError(Run("bank", "import", "b", directory, "--db", Db), 1);
        Assert.NotEqual(0, Run("bank", "import", "b", binary, "--db", Db).Exit);
        AssertOneLineError(Run("bank", "import", "b", binary, "--db", Db), Run("bank", "import", "b", binary, "--db", Db).Exit);
        foreach (var format in new[] { "csv", "jsonl", "ncmec" })
        {
            var r = Run("bank", "import", "b", binary, "--list-format", format, "--db", Db);
            Assert.NotEqual(0, r.Exit);
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("internal error", r.Err, StringComparison.Ordinal);
        }

        var e = Run("bank", "import", "b", empty, "--list-format", "csv", "--db", Db);
        Assert.DoesNotContain("   at ", e.Err, StringComparison.Ordinal);
        AssertOneLineError(Run("bank", "export", "b", "-o", Path.Combine(_dir, "no", "such", "dir", "x.csv"), "--db", Db), 1);
    }

    /// <summary>Every command that reads files, fed missing files, folders of junk, empty and random files: no stack traces.</summary>
    [Fact]
    public void File_reading_commands_never_print_a_stack_trace()
    {
        var random = new byte[3000];
        new Random(5).NextBytes(random);
        var junk = Directory.CreateDirectory(Path.Combine(_dir, "junk")).FullName;
        System.IO.File.WriteAllBytes(Path.Combine(junk, "random.jpg"), random);
        System.IO.File.WriteAllBytes(Path.Combine(junk, "empty.png"), []);
        System.IO.File.WriteAllText(Path.Combine(junk, "text.gif"), "GIF89a but not really");
        System.IO.File.WriteAllBytes(Path.Combine(junk, "cut.bmp"), [(byte)'B', (byte)'M', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
        var missing = Path.Combine(_dir, "nothing-here.jpg");
        Assert.Equal(0, Run("bank", "create", "b", "--db", Db).Exit);
        foreach (var target in new[] { junk, missing, Path.Combine(junk, "random.jpg"), Path.Combine(junk, "empty.png") })
        {
            foreach (var args in new[] { new[] { "hash", target }, ["scan", target, "--db", Db], ["provenance", target] })
            {
                var r = Run(args);
                Assert.True(r.Exit is 0 or 1 or 2, $"{string.Join(' ', args)}: exit {r.Exit}");
                Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
                Assert.DoesNotContain("Unhandled", r.Err, StringComparison.Ordinal);
                Assert.DoesNotContain("internal error", r.Err, StringComparison.Ordinal);
            }
        }
    }
}
