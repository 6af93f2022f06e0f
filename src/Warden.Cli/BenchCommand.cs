using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Warden.Core.ModelFiles;

namespace Warden.Cli;

/// <summary>`warden bench models`: the near-tier index at bank scale, and model hashing throughput (numbers in docs/models.md).</summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var models = new Option<int>("--models") { Description = "Registered models in the synthetic bank.", DefaultValueFactory = _ => 100_000 };
        var queries = new Option<int>("--queries") { Description = "Queries timed (the median is reported).", DefaultValueFactory = _ => 9 };
        var tensors = new Option<int>("--query-tensors") { Description = "Tensors of the query fingerprint (an SD 1.x checkpoint has ~1,100).", DefaultValueFactory = _ => 1100 };
        var rows = new Option<int>("--query-rows") { Description = "Sampled row hashes of the query (a 2 GB fp16 SD 1.x checkpoint keeps ~12,000).", DefaultValueFactory = _ => 12_000 };
        var hashGb = new Option<double>("--hash-gb") { Description = "Also write a safetensors file of this many GB to the temp folder, fingerprint it and report GB/s (0: skip).", DefaultValueFactory = _ => 0 };
        var command = new Command("models", "Near-tier index at scale: builds the index over a synthetic bank (fine-tune families, sketches and row hashes generated\n" +
            "from the record number, so the bank is never held in memory), then times near-matching one checkpoint-sized fingerprint.\n\n" +
            "Example:\n  warden bench models --models 100000 --hash-gb 2")
        {
            models, queries, tensors, rows, hashGb,
        };
        command.SetAction(p =>
        {
            var n = p.GetValue(models);
            if (n < 1 || p.GetValue(queries) < 1 || p.GetValue(tensors) < 0 || p.GetValue(rows) < 0 || p.GetValue(hashGb) < 0)
            {
                error.WriteLine("warden bench models: --models and --queries must be ≥ 1, the others ≥ 0");
                return 2;
            }

            Models(output, n, p.GetValue(queries), Math.Max(1, p.GetValue(tensors)), p.GetValue(rows));
            if (p.GetValue(hashGb) > 0)
            {
                Hashing(output, p.GetValue(hashGb));
            }

            return 0;
        });
        return new Command("bench", "Benchmarks (not tests): print timings and memory for the docs.") { command };
    }

    private static void Models(TextWriter output, int n, int queries, int tensors, int rows)
    {
        var options = new SyntheticBankOptions(Tensors: tensors);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var watch = Stopwatch.StartNew();
        var index = NearIndex.Build(n, i => SyntheticModels.Record(i, options), i => SyntheticModels.Record(i, options, probesOnly: true));
        var build = watch.Elapsed;
        var after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(index);
        output.WriteLine(FormattableString.Invariant($"bank: {n} synthetic models ({options.Families} architectures × {options.BasesPerFamily} bases, {options.Tensors} sketched tensors ({NearIndex.ProbeTensors} of them indexed) and {3 * options.RowsPerComponent} row hashes each; ~{n / (options.Families * options.BasesPerFamily)} fine-tunes per base)"));
        output.WriteLine(FormattableString.Invariant($"index build: {build.TotalSeconds:F2} s wall, {Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:F1} s CPU (including generating every record), {index.Postings:N0} postings, {index.Bytes / 1048576.0:F1} MiB arrays, managed heap +{(after - before) / 1048576.0:F1} MiB, process peak {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F0} MiB"));

        // Lookup (the index) and check (loading each candidate and scoring it, as a scan would score it) are timed
        // apart: here a candidate is regenerated from its number, where a server reads its record file.
        var lookups = new List<double>();
        var checks = new List<double>();
        var cpu = new List<double>();
        var candidates = new List<int>();
        var found = 0;
        var process = Process.GetCurrentProcess();
        for (var q = 0; q < queries; q++)
        {
            var of = SyntheticModels.Record((int)((q * 7919L) % n), options);
            var fp = SyntheticModels.Candidate(of, 0.02, TensorDType.F32, 0, rows, 0.8, q);
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            watch.Restart();
            var sketch = index.SketchCandidates(fp);
            var row = index.RowCandidates(fp);
            lookups.Add(watch.Elapsed.TotalMilliseconds);
            watch.Restart();
            var similar = NearMatcher.Similar(fp, [.. sketch.Select(i => SyntheticModels.Record(i, options))]);
            var contained = NearMatcher.Contained(fp, [.. row.Select(i => SyntheticModels.Record(i, options))]);
            checks.Add(watch.Elapsed.TotalMilliseconds);
            process.Refresh();
            cpu.Add((process.TotalProcessorTime - cpu0).TotalMilliseconds);
            candidates.Add(sketch.Count + row.Count);
            if (similar.Any(h => h.Record.Id == of.Id) && contained.Any(h => h.Record.Id == of.Id))
            {
                found++;
            }
        }

        static double Median(List<double> v)
        {
            v.Sort();
            return v[v.Count / 2];
        }

        candidates.Sort();
        output.WriteLine(FormattableString.Invariant($"near match of one {tensors}-tensor, {rows}-row fingerprint (R/T4 + T3), median of {queries}: index lookup {Median(lookups):F1} ms, candidate check {Median(checks):F1} ms (CPU {Median(cpu):F0} ms in all); median {candidates[candidates.Count / 2]} candidates of {n}; the source model found {found}/{queries}"));
    }

    private static void Hashing(TextWriter output, double gb)
    {
        var dir = Path.Combine(Path.GetTempPath(), "warden-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "model.safetensors");
            var tensorBytes = 64L << 20;
            var count = (int)Math.Max(1, Math.Round(gb * 1e9 / tensorBytes));
            var watch = Stopwatch.StartNew();
            WriteSafetensors(path, count, tensorBytes);
            output.WriteLine(FormattableString.Invariant($"hash file: {count * tensorBytes / 1e9:F2} GB fp16 safetensors ({count} tensors) written in {watch.Elapsed.TotalSeconds:F1} s"));
            var doc = ModelReader.Read(path);
            var passes = new (string Name, FingerprintOptions Options)[]
            {
                ("fingerprint, as `warden model scan` (SHA-256/AutoV1/AutoV2/AutoV3/CRC32 + MFv1 tensor hashes, sketches, rows)", new FingerprintOptions { AutoV3AllFormats = false }),
                ("fingerprint, as `warden model hash` (the same + BLAKE3)", new FingerprintOptions { Blake3 = true }),
                ("fingerprint, MFv1 tensors alone (no file hashes)", new FingerprintOptions { FileHashes = false }),
            };
            foreach (var (name, options) in passes)
            {
                // Best of two, the first after the write (page cache warm).
                var best = double.MaxValue;
                var bestCpu = double.MaxValue;
                long bytes = 0;
                for (var pass = 0; pass < 2; pass++)
                {
                    var process = Process.GetCurrentProcess();
                    process.Refresh();
                    var cpu0 = process.TotalProcessorTime;
                    watch.Restart();
                    var fp = Fingerprinter.Compute(doc, options);
                    best = Math.Min(best, watch.Elapsed.TotalSeconds);
                    process.Refresh();
                    bestCpu = Math.Min(bestCpu, (process.TotalProcessorTime - cpu0).TotalSeconds);
                    bytes = fp.BytesRead;
                }

                output.WriteLine(FormattableString.Invariant($"{name}: {best:F2} s wall, {bytes / 1e9 / best:F2} GB/s, {bestCpu / (bytes / 1e9):F2} CPU-s per GB (best of 2), on {Environment.ProcessorCount} cores (page cache warm); load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // Benign synthetic weights: a deterministic fp16 ramp, nothing from any real model.
    private static void WriteSafetensors(string path, int count, long tensorBytes)
    {
        var rowsOf = tensorBytes / 2 / 4096;
        var header = "{" + string.Join(',', Enumerable.Range(0, count).Select(i => string.Create(CultureInfo.InvariantCulture, $"\"model.diffusion_model.input_blocks.{i}.0.weight\":{{\"dtype\":\"F16\",\"shape\":[{rowsOf},4096],\"data_offsets\":[{i * tensorBytes},{(i + 1) * tensorBytes}]}}"))) + "}";
        var h = System.Text.Encoding.UTF8.GetBytes(header);
        var padded = (h.Length + 7) / 8 * 8;
        using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        f.Write(BitConverter.GetBytes((ulong)padded));
        f.Write(h);
        f.Write(System.Text.Encoding.ASCII.GetBytes(new string(' ', padded - h.Length)));
        var chunk = new byte[4 << 20];
        var rng = new Random(7);
        for (var i = 0; i < count; i++)
        {
            for (long w = 0; w < tensorBytes; w += chunk.Length)
            {
                var span = chunk.AsSpan(0, (int)Math.Min(chunk.Length, tensorBytes - w));
                for (var k = 0; k + 1 < span.Length; k += 2)
                {
                    BitConverter.TryWriteBytes(span[k..], (Half)((rng.Next(2001) - 1000) * 1e-5));
                }

                f.Write(span);
            }
        }
    }
}
