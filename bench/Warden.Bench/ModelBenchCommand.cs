using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Warden.Core.ModelFiles;

namespace Warden.Bench;

/// <summary>
/// `model [--gib N] [--passes N] [--keep PATH]`: writes a synthetic fp16 safetensors checkpoint of N GiB to /tmp
/// (SD-like names, 4 MiB tensors, random values), warms the page cache, then times <see cref="Fingerprinter"/>
/// pinned to one core and to two (process affinity): file hashes only, scan (file hashes + MFv1 per-tensor
/// hashing + sketches) and add (+ BLAKE3 + three cast paths). Deletes the file afterwards.
/// </summary>
internal static class ModelBenchCommand
{
    public static int Run(string[] args)
    {
        var gib = Option(args, "--gib", 2);
        var passes = Option(args, "--passes", 2);
        var path = Path.Combine(Path.GetTempPath(), $"warden-bench-{Environment.ProcessId}.safetensors");
        try
        {
            var sw = Stopwatch.StartNew();
            Write(path, gib);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {new FileInfo(path).Length / 1e9:F2} GB in {sw.Elapsed.TotalSeconds:F1} s; cpus={Environment.ProcessorCount}"));
            var doc = ModelReader.Read(path);
            Fingerprinter.HashFile(path, blake3: false); // warm the page cache

            var memory = new byte[256 << 20];
            var cases = new (string Name, Func<object> Work)[]
            {
                ("calibration: SHA-256 of 256 MiB in memory (x8)", () =>
                {
                    for (var i = 0; i < 8; i++)
                    {
                        System.Security.Cryptography.SHA256.HashData(memory);
                    }

                    return memory;
                }),
                ("file hashes (SHA-256, AutoV1/V3, CRC32)", () => Fingerprinter.HashFile(path, blake3: false)),
                ("scan: file hashes + MFv1 tensors + sketches", () => Fingerprinter.Compute(doc, new FingerprintOptions())),
                ("MFv1 tensors only (no file hashes)", () => Fingerprinter.Compute(doc, new FingerprintOptions { FileHashes = false })),
                ("add: + BLAKE3 + fp16/bf16/bf16(fp16) cast paths", () => Fingerprinter.Compute(doc, new FingerprintOptions { Blake3 = true, CastPaths = true })),
            };
            foreach (var cores in new[] { 1, 2 })
            {
                if (cores > Environment.ProcessorCount)
                {
                    continue;
                }

                Pin((1 << cores) - 1);
                foreach (var (name, work) in cases)
                {
                    var best = double.MaxValue;
                    var cpu = double.MaxValue;
                    for (var p = 0; p < passes; p++)
                    {
                        var c0 = Process.GetCurrentProcess().TotalProcessorTime;
                        var t = Stopwatch.StartNew();
                        work();
                        best = Math.Min(best, t.Elapsed.TotalSeconds);
                        cpu = Math.Min(cpu, (Process.GetCurrentProcess().TotalProcessorTime - c0).TotalSeconds);
                    }

                    var bytes = name.StartsWith("calibration", StringComparison.Ordinal) ? 8L * memory.Length : new FileInfo(path).Length;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{cores} core{(cores > 1 ? "s" : " ")}  {name,-50} {bytes / 1e9 / best,6:F2} GB/s  ({best:F2} s, best of {passes}; {cpu / (bytes / 1e9):F2} CPU-s/GB)"));
                }
            }

            Pin((1 << Environment.ProcessorCount) - 1);
        }
        finally
        {
            File.Delete(path);
        }

        return 0;
    }

    private static void Write(string path, int gib)
    {
        const int rows = 2048, cols = 1024; // 4 MiB of fp16 per tensor
        var count = gib * 256;
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long at = 0;
        for (var i = 0; i < count; i++)
        {
            header.Append(CultureInfo.InvariantCulture, $",\"model.diffusion_model.blocks.{i}.weight\":{{\"dtype\":\"F16\",\"shape\":[{rows},{cols}],\"data_offsets\":[{at},{at + (rows * cols * 2L)}]}}");
            at += rows * cols * 2L;
        }

        header.Append('}');
        while ((8 + header.Length) % 8 != 0)
        {
            header.Append(' ');
        }

        var rng = new Random(1);
        var block = new byte[rows * cols * 2];
        for (var i = 0; i < block.Length; i += 2)
        {
            BinaryPrimitives.WriteHalfLittleEndian(block.AsSpan(i), (Half)((rng.NextDouble() - 0.5) * 0.1));
        }

        using var f = File.Create(path);
        var n = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)header.Length);
        f.Write(n);
        f.Write(Encoding.ASCII.GetBytes(header.ToString()));
        for (var i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(block, i); // every tensor distinct
            f.Write(block);
        }
    }

    private static void Pin(int mask)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows())
        {
            Process.GetCurrentProcess().ProcessorAffinity = mask;
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
