using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Warden.Cli.Tests;

/// <summary>
/// Docs that run: every fenced block marked <c>```sh runnable</c> in README.md and docs/*.md is executed with
/// bash, in order per file in one temporary folder (later blocks may use what earlier ones made, as a reader
/// would), with <c>out/warden</c> the CLI these tests built and <c>samples/</c> the repository's. The fixed demo
/// ports (8080, 8091) are swapped for free ones; background jobs a block starts are stopped (SIGTERM) when it
/// ends, and a job that ignores SIGTERM fails the block by timing out.
/// </summary>
public sealed partial class DocsRunTests
{
    private static readonly string RepoRoot = Warden.Core.Tests.TestData.RepoRoot;

    [GeneratedRegex(@"^```sh runnable\s*$")]
    private static partial Regex RunnableFence();

    internal sealed record Block(string File, int Line, string Text);

    internal static IReadOnlyList<Block> Blocks(string file)
    {
        var blocks = new List<Block>();
        var lines = File.ReadAllLines(file);
        for (var i = 0; i < lines.Length; i++)
        {
            if (!RunnableFence().IsMatch(lines[i]))
            {
                continue;
            }

            var start = i + 1;
            var end = start;
            while (end < lines.Length && !lines[end].StartsWith("```", StringComparison.Ordinal))
            {
                end++;
            }

            Assert.True(end < lines.Length, $"{file}:{i + 1}: a runnable block is not closed");
            blocks.Add(new Block(Path.GetRelativePath(RepoRoot, file), i + 1, string.Join('\n', lines[start..end])));
            i = end;
        }

        return blocks;
    }

    private static IEnumerable<string> DocumentNames() =>
        new[] { Path.Combine(RepoRoot, "README.md") }.Concat(Directory.GetFiles(Path.Combine(RepoRoot, "docs"), "*.md").Order(StringComparer.Ordinal))
            .Where(f => Blocks(f).Count > 0)
            .Select(f => Path.GetRelativePath(RepoRoot, f));

    public static TheoryData<string> Documents() => [.. DocumentNames()];

    [Fact]
    public void The_quick_starts_and_the_review_walkthrough_are_runnable_and_wait_for_readiness()
    {
        var all = DocumentNames().SelectMany(d => Blocks(Path.Combine(RepoRoot, d))).ToList();
        Assert.Contains(all, b => b.File == "README.md" && b.Text.Contains("warden scan", StringComparison.Ordinal));
        Assert.Contains(all, b => b.File == "README.md" && b.Text.Contains("warden serve", StringComparison.Ordinal));
        Assert.Contains(all, b => b.File == Path.Combine("docs", "review.md") && b.Text.Contains("seed-demo", StringComparison.Ordinal));

        // A block that starts a server in the background waits for /readyz before it uses it.
        foreach (var block in all)
        {
            var lines = block.Text.Split('\n');
            var serve = Array.FindIndex(lines, l => Regex.IsMatch(l, @"warden serve\b.*&\s*(#.*)?$"));
            if (serve >= 0)
            {
                Assert.True(lines.Skip(serve + 1).FirstOrDefault(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#') && !l.TrimStart().StartsWith("export ", StringComparison.Ordinal))?.Contains("/readyz", StringComparison.Ordinal) == true,
                    $"{block.File}:{block.Line}: 'warden serve &' is not followed by a wait on /readyz");
            }
        }
    }

    [GeneratedRegex(@"^\s*(\$ )?(warden|curl|scripts/|dotnet|sudo|docker|podman|export|nats-server|kill|cd|npx|kiota|systemctl)\b")]
    private static partial Regex CommandLine();

    /// <summary>
    /// Every command block in README.md and docs/*.md is either executed (<c>```sh runnable</c>) or says why not
    /// (<c>```sh not-run: REASON</c>: credentials, a service, minutes of benchmark, your own files): an unmarked
    /// block, or an untyped fence whose first line is a command, fails, so no new example escapes the runner silently.
    /// </summary>
    [Fact]
    public void Every_command_block_is_runnable_or_says_why_not()
    {
        var problems = new List<string>();
        var runnable = 0;
        var files = new[] { Path.Combine(RepoRoot, "README.md") }.Concat(Directory.GetFiles(Path.Combine(RepoRoot, "docs"), "*.md").Order(StringComparer.Ordinal));
        foreach (var file in files)
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                if (!lines[i].StartsWith("```", StringComparison.Ordinal))
                {
                    continue;
                }

                var info = lines[i][3..].Trim();
                var end = i + 1;
                while (end < lines.Length && !lines[end].StartsWith("```", StringComparison.Ordinal))
                {
                    end++;
                }

                var first = lines[(i + 1)..Math.Min(end, lines.Length)].FirstOrDefault(l => l.Trim().Length > 0) ?? "";
                var where = $"{Path.GetRelativePath(RepoRoot, file)}:{i + 1}";
                var lang = info.Split(' ', 2)[0];
                if (lang is "sh" or "bash" or "shell" or "console" || (lang.Length == 0 && CommandLine().IsMatch(first)))
                {
                    if (info == "sh runnable")
                    {
                        runnable++;
                    }
                    else if (!(info.StartsWith("sh not-run: ", StringComparison.Ordinal) && info.Length >= "sh not-run: ".Length + 12))
                    {
                        problems.Add($"{where}: '```{info}' (first line: {first.Trim()})");
                    }
                }

                i = end;
            }
        }

        Assert.True(problems.Count == 0, "Mark each command block '```sh runnable' (executed by Every_runnable_block_runs) or '```sh not-run: WHY':\n" + string.Join('\n', problems));
        Assert.True(runnable >= 6, $"only {runnable} runnable blocks");
    }

    [SkippableTheory]
    [MemberData(nameof(Documents))]
    public async Task Every_runnable_block_runs(string document)
    {
        Skip.If(OperatingSystem.IsWindows(), "The docs' blocks are bash.");
        var dir = Directory.CreateTempSubdirectory("warden-docs-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "out"));
            File.CreateSymbolicLink(Path.Combine(dir, "samples"), Path.Combine(RepoRoot, "samples"));
            var launcher = Path.Combine(dir, "out", "warden");
            File.WriteAllText(launcher, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "warden.dll")}' \"$@\"\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(launcher, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var ports = new Dictionary<string, string>(StringComparer.Ordinal) { ["8080"] = FreePort(), ["8091"] = FreePort() };
            foreach (var block in Blocks(Path.Combine(RepoRoot, document)))
            {
                var text = Regex.Replace(block.Text, @"(?<=(:|--port\s+))(8080|8091)\b", m => ports[m.Value]);
                var (code, output) = await RunAsync(dir, text, TimeSpan.FromSeconds(60));
                Assert.True(code == 0, $"{block.File}:{block.Line} exited {code}:\n{text}\n--- output ---\n{output}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_client_command_says_in_one_line_that_the_server_is_not_up()
    {
        var port = FreePort(); // nothing listens there
        var dir = Directory.CreateTempSubdirectory("warden-docs-").FullName;
        try
        {
            var (code, output) = await RunAsync(dir, $"dotnet '{Path.Combine(AppContext.BaseDirectory, "warden.dll")}' review seed-demo --url http://127.0.0.1:{port} --key wdn_x 2>&1 >/dev/null", TimeSpan.FromSeconds(60), errexit: false);
            Assert.Equal(1, code);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, output);
            Assert.Contains("cannot reach the server", lines[0], StringComparison.Ordinal);
            Assert.Contains("/readyz", lines[0], StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<(int Code, string Output)> RunAsync(string dir, string script, TimeSpan timeout, bool errexit = true)
    {
        // Background jobs are stopped politely when the block ends; 'wait' then hangs on one that ignores SIGTERM.
        var wrapped = new StringBuilder()
            .AppendLine(errexit ? "set -eo pipefail" : "set +e")
            .AppendLine("stop_jobs() { local code=$?; for j in $(jobs -p); do kill \"$j\" 2>/dev/null; done; wait; exit $code; }")
            .AppendLine("trap stop_jobs EXIT")
            .AppendLine(script)
            .ToString();
        var start = new ProcessStartInfo("bash") { WorkingDirectory = dir, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(wrapped);
        start.Environment.Remove("WARDEN_DB"); // the docs' default database, warden.db in the folder
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return (-1, $"timed out after {timeout.TotalSeconds} s\n{await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
