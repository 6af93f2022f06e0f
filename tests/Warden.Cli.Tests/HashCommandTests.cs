using System.Diagnostics;
using System.Text.Json;
using NetVips;

namespace Warden.Cli.Tests;

/// <summary>`warden hash` end to end, on a temp folder of benign images the test makes.</summary>
public sealed class HashCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-cli-").FullName;

    public HashCommandTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        Write("b.png", "png", 1);
        Write("a.jpg", "jpg", 2);
        Write("sub/c.webp", "webp", 3);
        Write("sub/d.gif", "gif", 4);
        Write("sub/e.tif", "tif", 5);
        File.WriteAllText(Path.Combine(_dir, "notes.txt"), "not an image");
        File.WriteAllBytes(Path.Combine(_dir, "sub", "empty.jpg"), []);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Write(string name, string format, int seed)
    {
        var rng = new Random(seed);
        var px = new byte[160 * 120 * 3];
        for (var i = 0; i < px.Length; i++)
        {
            px[i] = (byte)((i / 3 % 160) + (rng.Next(32) * (i % 3)));
        }

        using var image = Image.NewFromMemory(px, 160, 120, 3, Enums.BandFormat.Uchar);
        File.WriteAllBytes(Path.Combine(_dir, name), image.WriteToBuffer("." + format));
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Folder_is_hashed_recursively_in_sorted_order_with_errors_on_stderr()
    {
        var (exit, output, error) = Run("hash", "--format", "jsonl", _dir);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["a.jpg", "b.png", "sub/c.webp", "sub/d.gif", "sub/e.tif"], rows.Select(r => Path.GetRelativePath(_dir, r.GetProperty("path").GetString()!)));
        Assert.All(rows, r =>
        {
            Assert.Matches("^[0-9a-f]{64}$", r.GetProperty("pdq").GetString());
            Assert.Matches("^[0-9a-f]{32}$", r.GetProperty("md5").GetString());
            Assert.Matches("^[0-9a-f]{40}$", r.GetProperty("sha1").GetString());
            Assert.Matches("^[0-9a-f]{64}$", r.GetProperty("sha256").GetString());
            Assert.Equal(160, r.GetProperty("width").GetInt32());
            Assert.Equal(120, r.GetProperty("height").GetInt32());
            Assert.InRange(r.GetProperty("quality").GetInt32(), 0, 100);
        });
        Assert.Equal(WardenCli.SomeFailed, exit);
        Assert.Contains("notes.txt: unsupported", error, StringComparison.Ordinal);
        Assert.Contains("empty.jpg: empty", error, StringComparison.Ordinal);
        Assert.Contains("hashed 5 of 7 files", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Output_is_identical_across_thread_counts()
    {
        var one = Run("hash", "--format", "csv", "--threads", "1", _dir);
        var many = Run("hash", "--format", "csv", "--threads", "8", _dir);
        Assert.Equal(one.Out, many.Out);
    }

    [Fact]
    public void Sha256_matches_the_file_and_pdq_matches_the_core()
    {
        var file = Path.Combine(_dir, "b.png");
        var (exit, output, _) = Run("hash", "-f", "jsonl", file);
        Assert.Equal(WardenCli.Ok, exit);
        var row = JsonDocument.Parse(output).RootElement;
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file))), row.GetProperty("sha256").GetString());
        var core = new Warden.Core.Hashing.Pdq.PdqImageHasher().Hash(File.ReadAllBytes(file));
        Assert.Equal(core.Pdq.Hash.ToString(), row.GetProperty("pdq").GetString());
    }

    [Fact]
    public void Csv_has_a_header_and_dihedral_columns()
    {
        var (exit, output, _) = Run("hash", "--format", "csv", "--dihedral", Path.Combine(_dir, "a.jpg"));
        Assert.Equal(0, exit);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("path,format,width,height,pdq,quality,md5,sha1,sha256,pdq_rot90,pdq_rot180,pdq_rot270,pdq_flipx,pdq_flipy,pdq_flipplus1,pdq_flipminus1", lines[0]);
        Assert.Equal(16, lines[1].Split(',').Length);
        Assert.Contains(",jpeg,160,120,", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Table_is_the_default()
    {
        var (exit, output, _) = Run("hash", Path.Combine(_dir, "b.png"));
        Assert.Equal(0, exit);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("pdq ", lines[0], StringComparison.Ordinal);
        Assert.EndsWith("b.png", lines[1].TrimEnd(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hash")]
    [InlineData("hash", "--format", "xml", "x")]
    [InlineData("hash", "--threads", "0", "x")]
    [InlineData("frobnicate")]
    public void Bad_command_lines_exit_2_with_a_message(params string[] args)
    {
        var (exit, _, error) = Run(args);
        Assert.Equal(WardenCli.UsageError, exit);
        Assert.False(string.IsNullOrWhiteSpace(error));
    }

    [Fact]
    public void Help_explains_the_command()
    {
        var (exit, output, _) = Run("hash", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("--format", output, StringComparison.Ordinal);
        Assert.Contains("--dihedral", output, StringComparison.Ordinal);
        Assert.Contains("Examples", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_real_executable_runs_as_a_process()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "warden.dll");
        var psi = new ProcessStartInfo("dotnet", [dll, "hash", "--format", "jsonl", "--no-progress", _dir])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdout = p.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = p.StandardError.ReadToEndAsync(timeout.Token);
        await p.WaitForExitAsync(timeout.Token);
        Assert.Equal(1, p.ExitCode);
        Assert.Equal(5, (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("notes.txt", await stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("VIPS-WARNING", await stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Standard_input_is_hashed_when_the_path_is_a_dash()
    {
        var file = Path.Combine(_dir, "a.jpg");
        var dll = Path.Combine(AppContext.BaseDirectory, "warden.dll");
        var psi = new ProcessStartInfo("dotnet", [dll, "hash", "-f", "jsonl", "-"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.StandardInput.BaseStream.WriteAsync(await File.ReadAllBytesAsync(file, timeout.Token), timeout.Token);
        p.StandardInput.Close();
        var stdout = await p.StandardOutput.ReadToEndAsync(timeout.Token);
        await p.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, p.ExitCode);
        var row = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("-", row.GetProperty("path").GetString());
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file))), row.GetProperty("sha256").GetString());
    }
}
