using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;

namespace Warden.Core.Tests.Models;

/// <summary>What one CPython unpickler did with an input (tests/pickle-oracle/oracle.py).</summary>
/// <param name="Ok">Parsed to STOP.</param>
/// <param name="Error">Why it stopped otherwise.</param>
/// <param name="Globals">Globals find_class resolved, as (module, name) after CPython's own mapping.</param>
/// <param name="Imports">Modules find_class imported (also those whose attribute then failed).</param>
public sealed record OracleRun(bool Ok, string Error, IReadOnlyList<(string Module, string Name)> Globals, IReadOnlyList<string> Imports);

/// <summary>The C unpickler (what pickle.load uses) and the pure-Python one.</summary>
public sealed record OracleVerdict(OracleRun C, OracleRun Py);

/// <summary>
/// One long-running python3 running CPython's own unpicklers with an inert find_class (nothing imported or
/// called): inputs go over stdin length-prefixed, JSON comes back length-prefixed.
/// </summary>
public sealed class PickleOracle : IDisposable
{
    private readonly Process _process;
    private readonly Stream _in;
    private readonly Stream _out;

    private PickleOracle(Process process)
    {
        _process = process;
        _in = process.StandardInput.BaseStream;
        _out = process.StandardOutput.BaseStream;
    }

    public static string Script => Path.Combine(TestData.RepoRoot, "tests", "pickle-oracle", "oracle.py");

    /// <summary>python3 on PATH, or null.</summary>
    public static string? Python { get; } = FindPython();

    public const string Missing = "python3 is not on PATH: the CPython differential oracle (tests/pickle-oracle/oracle.py) cannot run here.";

    public static PickleOracle Start()
    {
        Skip.If(Python is null, Missing);
        var psi = new ProcessStartInfo(Python!, [Script, "--serve"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var p = Process.Start(psi) ?? throw new InvalidOperationException("python3 did not start");
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        return new PickleOracle(p);
    }

    /// <summary>Judges a batch; the writer runs beside the reader so neither pipe fills up.</summary>
    public IReadOnlyList<OracleVerdict> Judge(IReadOnlyList<byte[]> inputs)
    {
        var writer = Task.Run(() =>
        {
            Span<byte> head = stackalloc byte[4];
            foreach (var input in inputs)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(head, (uint)input.Length);
                _in.Write(head);
                _in.Write(input);
            }

            _in.Flush();
        });
        var results = new List<OracleVerdict>(inputs.Count);
        var len = new byte[4];
        for (var i = 0; i < inputs.Count; i++)
        {
            _out.ReadExactly(len);
            var body = new byte[BinaryPrimitives.ReadUInt32LittleEndian(len)];
            _out.ReadExactly(body);
            using var doc = JsonDocument.Parse(body);
            results.Add(new OracleVerdict(Parse(doc.RootElement.GetProperty("c")), Parse(doc.RootElement.GetProperty("py"))));
        }

        writer.GetAwaiter().GetResult();
        return results;
    }

    public void Dispose()
    {
        try
        {
            _in.Write([0xff, 0xff, 0xff, 0xff]);
            _in.Flush();
            _in.Close();
            if (!_process.WaitForExit(5000))
            {
                _process.Kill();
            }
        }
        catch (IOException)
        {
            _process.Kill();
        }

        _process.Dispose();
    }

    private static OracleRun Parse(JsonElement e) => new(
        e.GetProperty("ok").GetBoolean(),
        e.GetProperty("err").GetString() ?? string.Empty,
        [.. e.GetProperty("globals").EnumerateArray().Select(g => (g[0].GetString()!, g[1].GetString()!))],
        [.. e.GetProperty("imports").EnumerateArray().Select(m => m.GetString()!)]);

    private static string? FindPython()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            var candidate = Path.Combine(dir, "python3");
            if (dir.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
