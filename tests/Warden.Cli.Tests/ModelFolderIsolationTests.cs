using System.Text.Json;
using Warden.Core.Tests.Models;

namespace Warden.Cli.Tests;

/// <summary>One file's failure is that file's error: a walked folder with a crashing file still reports the dangerous file after it, and the exit code is never 0.</summary>
public sealed class ModelFolderIsolationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("hash")]
    public void A_crashing_file_does_not_hide_a_later_dangerous_one(string command)
    {
        var rng = new Random(31);
        for (var round = 0; round < 4; round++)
        {
            using var dir = new TempDir();

            // Files sort as: crashing GGUF, absurd safetensors, hostile pickle, benign safetensors.
            long[] dims = [1L << (31 + rng.Next(0, 3)), 1L << (31 + rng.Next(0, 3))];
            dir.File("a-crash.gguf", ContainerWriters.GgufDims(dims));
            dir.File("b-absurd.safetensors", ModelWriters.RawSafetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[" + string.Join(',', dims) + "],\"data_offsets\":[0,4]}}", 4));
            var (module, name) = ContainerWriters.HostileGlobals[round];
            dir.File("c-hostile.bin", ContainerWriters.Payload(module, name));
            dir.File("d-benign.safetensors", ModelWriters.Safetensors([new FixtureTensor("w", [4], [1, 2, 3, 4])]));

            string[] args = command == "hash" ? ["model", command, "--format", "jsonl", "--no-progress", dir.Path] : ["model", command, "--format", "jsonl", dir.Path];
            var (exit, output, error) = Run(args);
            Assert.True(exit != 0, error);
            Assert.Contains("a-crash.gguf", error, StringComparison.Ordinal);
            Assert.Contains("b-absurd.safetensors", error, StringComparison.Ordinal);
            Assert.DoesNotContain("skipped", error.Split('\n').Where(l => l.Contains("a-crash", StringComparison.Ordinal)).FirstOrDefault() ?? string.Empty, StringComparison.Ordinal);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Contains(lines, l => l.GetProperty("path").GetString()!.EndsWith("d-benign.safetensors", StringComparison.Ordinal));
            if (command == "inspect")
            {
                Assert.Equal(3, exit);
                var hostile = lines.Single(l => l.GetProperty("path").GetString()!.EndsWith("c-hostile.bin", StringComparison.Ordinal));
                Assert.Equal("dangerous", hostile.GetProperty("pickle_verdict").GetString());
            }
        }
    }

    [Fact]
    public void A_folder_of_only_a_malformed_model_exits_non_zero()
    {
        _dir.File("only/x.gguf", ContainerWriters.GgufDims([1L << 31, 1L << 31]));
        var (exit, _, error) = Run("model", "inspect", Path.Combine(_dir.Path, "only"));
        Assert.True(exit != 0, error);
        Assert.Contains("x.gguf", error, StringComparison.Ordinal);
    }
}
