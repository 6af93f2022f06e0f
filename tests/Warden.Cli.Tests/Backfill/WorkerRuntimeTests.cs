using System.Diagnostics;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Runtime;

namespace Warden.Cli.Tests.Backfill;

/// <summary>
/// `warden worker` re-executes itself (same pid, same arguments) with dynamic PGO off, unless the operator set
/// DOTNET_TieredPGO; the command line it re-reads from /proc is split exactly, empty and odd arguments included.
/// </summary>
public sealed class WorkerRuntimeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-wrt-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [SkippableTheory]
    [InlineData(null, "0", false)]
    [InlineData("1", "1", false)]
    [InlineData("0", "0", false)]
    [InlineData("2", "2", false)]
    [InlineData("1", null, true)]
    public void Worker_runs_without_dynamic_pgo_unless_the_operator_says_otherwise(string? operatorValue, string? expected, bool legacyName)
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        Skip.IfNot(OperatingSystem.IsLinux(), "re-execution reads /proc (Linux)");
        using var nats = NatsProcess.Start(Path.Combine(_dir, "js-" + (operatorValue ?? "unset")));
        var db = Path.Combine(_dir, $"w-{operatorValue}-{legacyName}.db");
        using (Warden.Storage.BankStore.Open(db))
        {
            // The worker refuses a database that is not there: it must stay up until it has connected.
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        // Arguments with spaces and non-ASCII text survive the re-execution unchanged.
        var name = "w ü " + (operatorValue ?? "unset");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [Path.Combine(AppContext.BaseDirectory, "warden.dll"), "worker", "--db", db, "--nats", nats.Url, "--queue", "RT", "--name", name, "--exit-when-idle", "4"];
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment.Remove("DOTNET_TieredPGO");
        info.Environment.Remove("COMPlus_TieredPGO");
        if (operatorValue is not null)
        {
            info.Environment[legacyName ? "COMPlus_TieredPGO" : "DOTNET_TieredPGO"] = operatorValue;
        }

        using var p = Process.Start(info)!;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            // Once re-executed, the same pid has the setting in its environment (the kernel's copy, as exec left it).
            // With the older COMPlus_ name set there is nothing to wait for: once the worker is up (its NATS
            // connection open, well after the point where it would have re-executed), no DOTNET_ name was added.
            var env = expected is null
                ? Workers.WaitFor(() => Connected(p.Id, nats.Port) ? Environ(p.Id) : null, 30)
                : Workers.WaitFor(() => Environ(p.Id) is { } e && e.Any(v => v.StartsWith("DOTNET_TieredPGO=", StringComparison.Ordinal)) ? e : null, 30);
            Assert.Equal(expected is null ? [] : ["DOTNET_TieredPGO=" + expected], env.Where(v => v.StartsWith("DOTNET_TieredPGO=", StringComparison.Ordinal)));
            var argv = ProcessImage.SplitCommandLine(File.ReadAllBytes($"/proc/{p.Id}/cmdline")).Select(b => Encoding.UTF8.GetString(b)).ToList();
            Assert.Equal(args, argv.Skip(1));
            Assert.Equal("dotnet", File.ReadAllText($"/proc/{p.Id}/comm").Trim());
            Assert.True(Workers.WaitFor(() => Connected(p.Id, nats.Port), 30), "the worker connected to NATS after re-executing");
        }
        finally
        {
            p.Kill();
            p.WaitForExit();
        }
    }

    [Property(MaxTest = 300)]
    public Property Command_line_splits_into_the_arguments_it_was_made_of() =>
        Prop.ForAll(
            Gen.ListOf(Gen.ArrayOf(Gen.Choose(1, 255).Select(b => (byte)b))).ToArbitrary(),
            parts =>
            {
                // /proc/PID/cmdline: every argument followed by a NUL (an empty argument is a lone NUL).
                var joined = parts.SelectMany(a => a.Append((byte)0)).ToArray();
                var split = ProcessImage.SplitCommandLine(joined);
                return split.Count == parts.Count && split.Zip(parts).All(x => x.First.AsSpan().SequenceEqual(x.Second));
            });

    [Fact]
    public void A_command_line_cut_short_keeps_its_last_argument()
    {
        // No trailing NUL (a process that rewrote its arguments): the last argument is what is there.
        var split = ProcessImage.SplitCommandLine("dotnet\0warden.dll\0wor"u8);
        Assert.Equal(["dotnet", "warden.dll", "wor"], split.Select(b => Encoding.UTF8.GetString(b)));
        Assert.Empty(ProcessImage.SplitCommandLine([]));
    }

    /// <summary>
    /// True once the process holds a TCP connection to <paramref name="port"/> (the worker's NATS connection, made
    /// long after the point in Main where it would have re-executed): its socket inodes against /proc/net/tcp.
    /// </summary>
    private static bool Connected(int pid, int port)
    {
        try
        {
            var inodes = Directory.EnumerateFiles($"/proc/{pid}/fd").Select(fd => new FileInfo(fd).LinkTarget).OfType<string>()
                .Where(t => t.StartsWith("socket:[", StringComparison.Ordinal)).Select(t => t[8..^1]).ToHashSet();
            var remote = ":" + port.ToString("X4", System.Globalization.CultureInfo.InvariantCulture);
            return new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists).SelectMany(File.ReadLines).Skip(1)
                .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Any(f => f.Length > 9 && f[2].EndsWith(remote, StringComparison.Ordinal) && inodes.Contains(f[9]));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static List<string>? Environ(int pid)
    {
        try
        {
            return ProcessImage.SplitCommandLine(File.ReadAllBytes($"/proc/{pid}/environ")).Select(b => Encoding.UTF8.GetString(b)).ToList();
        }
        catch (IOException)
        {
            return null;
        }
    }
}
