using System.Text.Json;
using Warden.Core.Tests;

namespace Warden.Cli.Tests;

/// <summary>
/// A folder Warden walks may hold things that are not files: a named pipe (opening it for reading waits for a
/// writer that never comes), a link to /dev/zero (never ends), a Unix socket. Before, `warden hash DIR` with a FIFO
/// in it waited for ever. Every command that walks folders, and every source of unbounded input, must finish, report
/// each such entry by name, and still process the real files beside them.
/// </summary>
public sealed class NonRegularFilesTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-nonregular-").FullName;
    private readonly List<IDisposable> _sockets = [];

    public void Dispose()
    {
        foreach (var s in _sockets)
        {
            s.Dispose();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        // In a task with a deadline: the failure this guards against is a command that never returns.
        var run = Task.Run(() =>
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            var exit = WardenCli.Run(args, output, error);
            return (exit, output.ToString(), error.ToString());
        });
        Assert.True(run.Wait(Limit), $"warden {string.Join(' ', args)} did not finish in {Limit.TotalSeconds} s");
        return run.Result;
    }

    /// <summary>A folder with one real picture and, in a subfolder too, every kind of non-regular entry.</summary>
    private (string Folder, string[] Special) Folder()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "uploads")).FullName;
        var nested = Directory.CreateDirectory(Path.Combine(folder, "nested")).FullName;
        File.WriteAllBytes(Path.Combine(folder, "photo.png"), SyntheticImages.Encode(SyntheticImages.Blobs(96, 96, 3), 96, 96, "png"));
        var special = new[]
        {
            Path.Combine(folder, "a-pipe.jpg"),
            Path.Combine(folder, "b-zero.jpg"),
            Path.Combine(folder, "c-socket.jpg"),
            Path.Combine(nested, "d-pipe.png"),
            Path.Combine(nested, "e-null.png"),
        };
        SpecialFiles.Fifo(special[0]);
        File.CreateSymbolicLink(special[1], "/dev/zero");
        _sockets.Add(SpecialFiles.Socket(special[2]));
        SpecialFiles.Fifo(special[3]);
        File.CreateSymbolicLink(special[4], "/dev/null");
        return (folder, special);
    }

    private static void AssertEachReported(string err, string[] special)
    {
        foreach (var s in special)
        {
            Assert.Contains($"{s}: ", err, StringComparison.Ordinal);
        }

        Assert.Contains("a named pipe (FIFO), not a regular file", err, StringComparison.Ordinal);
        Assert.Contains("a character device, not a regular file", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Hash_walks_past_pipes_devices_and_sockets_and_hashes_the_real_file()
    {
        var (folder, special) = Folder();
        var r = Run("hash", "-f", "jsonl", folder);
        Assert.Equal(WardenCli.SomeFailed, r.Exit);
        AssertEachReported(r.Err, special);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var photo = Assert.Single(lines, l => l.GetProperty("path").GetString()!.EndsWith("photo.png", StringComparison.Ordinal));
        Assert.Equal(64, photo.GetProperty("pdq").GetString()!.Length);
    }

    [Fact]
    public void Scan_and_provenance_walk_past_them_too()
    {
        var (folder, special) = Folder();
        var db = Path.Combine(_dir, "w.db");
        Assert.Equal(0, Run("bank", "create", "b", "--db", db).Exit);
        var scan = Run("scan", "-f", "jsonl", folder, "--db", db);
        Assert.Equal(WardenCli.SomeFailed, scan.Exit);
        AssertEachReported(scan.Err, special);
        Assert.Contains("scanned 1 of 6 files", scan.Err, StringComparison.Ordinal); // the picture, and the five reported

        var provenance = Run("provenance", folder);
        Assert.Equal(WardenCli.SomeFailed, provenance.Exit);
        AssertEachReported(provenance.Err, special);
    }

    [Fact]
    public void Model_scan_refuses_pipes_and_devices_named_or_found()
    {
        var (folder, special) = Folder();
        var db = Path.Combine(_dir, "w.db");
        Assert.Equal(0, Run("bank", "create", "b", "--db", db).Exit);
        foreach (var path in new[] { special[0], special[1], folder })
        {
            var r = Run("model", "scan", path, "--db", db);
            Assert.True(r.Exit != 0, $"{path}: exit 0");
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        }

        var named = Run("model", "scan", special[0], "--db", db);
        Assert.Contains("is a named pipe (FIFO), not a regular file", named.Err, StringComparison.Ordinal);

        // A model folder (config.json beside the weights) whose sidecar files are a FIFO and /dev/zero: flagged, not read.
        var model = Directory.CreateDirectory(Path.Combine(_dir, "model")).FullName;
        SpecialFiles.Fifo(Path.Combine(model, "config.json"));
        File.CreateSymbolicLink(Path.Combine(model, "model.safetensors.index.json"), "/dev/zero");
        SpecialFiles.Fifo(Path.Combine(model, "model.safetensors"));
        var folderScan = Run("model", "scan", model, "--db", db);
        Assert.True(folderScan.Exit != 0, folderScan.Out);
    }

    [Fact]
    public void Unbounded_inputs_stop_at_their_limit()
    {
        // provenance of /dev/zero: refused at the file limit (256 MiB), not read until memory runs out.
        var provenance = Run("provenance", "/dev/zero");
        Assert.Equal(WardenCli.SomeFailed, provenance.Exit);
        Assert.Contains("the limit is", provenance.Err, StringComparison.Ordinal);

        // backfill --list with a source that never sends a newline: one error, before any queue is contacted.
        var backfill = Run("backfill", "--list", "/dev/zero", "--nats", "nats://127.0.0.1:1");
        Assert.NotEqual(0, backfill.Exit);
        Assert.Contains("longer than 65,536 characters", backfill.Err, StringComparison.Ordinal);
    }
}
