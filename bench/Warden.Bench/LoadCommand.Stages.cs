using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;
using Warden.Core.Provenance;

namespace Warden.Bench;

/// <summary>
/// <c>reqpath stages</c>: the CPU cost of each stage of a <c>POST /v1/match</c>, in process on one thread, over
/// the load bench's 64 JPEGs: digests, decode (DCT-scaled, as the fast path asks), PDQ with the 8 dihedral
/// variants and border trimming (decode + hash less decode), the whole ContentHasher as the server calls it, the
/// index search of every signal against an N-entry PDQ bank, provenance (read, link, JSON) and the response's
/// JSON. Process CPU time per call (JIT and GC threads included), after a warm-up.
/// </summary>
internal static partial class LoadCommand
{
    private static int Stages(string[] args)
    {
        var entries = 1_000_000;
        var iterations = 2000;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--entries": entries = ParseCount(args[++i]); break;
                case "--iterations": iterations = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"reqpath stages: unknown option {args[i]}"); return 2;
            }
        }

        var images = Enumerable.Range(0, 64).Select(Jpeg).ToArray();
        using var hasher = new ContentHasher();
        var pdq = new PdqImageHasher();
        var bank = new Bank(1, "load", BankKind.BlockList, true, null, null, DateTimeOffset.UnixEpoch);
        using var matcher = new BankMatcher([bank]);
        var random = new Random(12345);
        for (var i = 0; i < entries; i++)
        {
            matcher.Add(i + 1, 1, "pdq", new PdqHash((ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64()).ToString());
        }

        // As the load bench: every 8th image is in the bank, so one request in eight has a hit.
        for (var i = 0; i < images.Length; i += 8)
        {
            matcher.Add(entries + i + 1, 1, "pdq", HashMem(hasher, images[i]).Image!.Pdq.Hash.ToString());
        }

        var hashed = images.Select(b => HashMem(hasher, b, dihedral: true)).ToArray();
        var signals = hashed.Select(h => h.ToSignals()).ToArray();
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        Console.WriteLine($"{entries:N0} entries, {iterations} calls a stage over 64 JPEGs (mean {images.Average(b => b.Length) / 1024:F0} KiB), load average {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"Vector512 accelerated {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}; DOTNET_EnableAVX512={Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") ?? "(unset)"} (.NET 10 reads this knob; DOTNET_EnableAVX512F is ignored)");
        Console.WriteLine($"{"stage",-34} {"CPU µs/call",12} {"wall µs/call",13}");
        Stage("digests (MD5+SHA-1+SHA-256)", iterations, i => ExactHashes.Compute(images[i % 64]).Md5.Length);
        Stage("decode (DCT-scaled JPEG)", iterations, i =>
        {
            using var d = ImageDecoder.Decode(images[i % 64], null, (w, h) => PdqHasher.FastScale(w, h));
            return d.PixelWidth;
        });
        Stage("decode + PDQ, 8 variants, trim", iterations, i => pdq.Hash(images[i % 64], dihedral: true).Width);

        // PDQ alone on pixels decoded once: the difference of the two rows above carries the decoder's noise.
        var decoded = images.Select(b => ImageDecoder.Decode(b, null, (w, h) => PdqHasher.FastScale(w, h))).ToArray();
        var core = new PdqHasher();
        Stage("PDQ on decoded pixels, 8 variants", iterations, i =>
        {
            var d = decoded[i % 64];
            return core.Hash(d.Pixels, d.PixelWidth, d.PixelHeight, d.Stride, d.BytesPerPixel, PdqResize.Fast, dihedral: true, originalWidth: d.Width, originalHeight: d.Height).Quality;
        });
        Stage("PDQ on decoded pixels, 1 variant", iterations, i =>
        {
            var d = decoded[i % 64];
            return core.Hash(d.Pixels, d.PixelWidth, d.PixelHeight, d.Stride, d.BytesPerPixel, PdqResize.Fast, dihedral: false, originalWidth: d.Width, originalHeight: d.Height).Quality;
        });
        foreach (var d in decoded)
        {
            d.Dispose();
        }

        Stage("ContentHasher as the server calls", iterations, i => (int)HashMem(hasher, images[i % 64], dihedral: true).Length);
        Stage("ToSignals", iterations, i => hashed[i % 64].ToSignals().Count);
        Stage("index search (all signals)", iterations, i => matcher.Match(signals[i % 64]).Count);
        Stage("provenance (read, link, JSON)", iterations, i =>
        {
            var report = ProvenanceReader.ReadLenient(images[i % 64], ProvenanceOptions.Default, hashed[i % 64].Exact.Sha256Hex, out _);
            ModelLinker.Link(report, matcher);
            return Warden.Server.Api.MatchService.ProvenanceToJson(report).ValueKind == JsonValueKind.Object ? 1 : 0;
        });
        Stage("hex digests x5 + PDQ strings x9", iterations, i =>
        {
            var h = hashed[i % 64];
            var n = h.Exact.Md5Hex.Length + h.Exact.Sha1Hex.Length + h.Exact.Sha256Hex.Length + h.Exact.Sha256Hex.Length + h.Exact.Md5Hex.Length;
            foreach (var v in h.Image!.Pdq.Dihedral!)
            {
                n += v.ToString().Length;
            }

            return n + h.Image.Pdq.Hash.ToString().Length;
        });
        var response = new Dictionary<string, object?>
        {
            ["signals"] = new { length = 93000, md5 = hashed[0].Exact.Md5Hex, sha1 = hashed[0].Exact.Sha1Hex, sha256 = hashed[0].Exact.Sha256Hex, pdq = new { hash = hashed[0].Image!.Pdq.Hash.ToString(), quality = 100, dihedral = hashed[0].Image!.Pdq.Dihedral!.Select((h, k) => (k.ToString(CultureInfo.InvariantCulture), h.ToString())).ToDictionary() } },
            ["matched"] = false,
            ["action"] = "none",
            ["hits"] = Array.Empty<object>(),
        };
        Stage("response JSON (reflection, anon)", iterations, _ => JsonSerializer.SerializeToUtf8Bytes(response, json).Length);
        return 0;
    }

    // As MatchService hashes an upload.
    private static ContentHashes HashMem(ContentHasher hasher, byte[] data, bool dihedral = false) => hasher.HashBytes(data, dihedral);

    private static double Stage(string name, int iterations, Func<int, int> body)
    {
        var sink = 0;
        for (var i = 0; i < Math.Min(iterations, 200); i++)
        {
            sink += body(i);
        }

        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < iterations; i++)
        {
            sink += body(i);
        }

        var wall = Stopwatch.GetElapsedTime(start).TotalMicroseconds / iterations;
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpu0).TotalMicroseconds / iterations;
        Console.WriteLine($"{name,-34} {cpu,12:F1} {wall,13:F1}{(sink == int.MinValue ? " " : string.Empty)}");
        return cpu;
    }
}
