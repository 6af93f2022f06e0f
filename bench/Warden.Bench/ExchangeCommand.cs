using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Warden.Core.Exchanges;
using Warden.Core.Tests.Exchanges;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// `exchange [--entries 100k] [--commit 20k] [--dir DIR]`: a first sync of an NCMEC Hash Sharing v2 feed of N image entries (md5,
/// sha1 and pdq each) from the tests' loopback fake server (in process) into a fresh SQLite bank, through
/// <see cref="ExchangeSync"/> as `warden exchange fetch` runs it. Prints time, entries/s, peak RSS and peak managed
/// heap. The fake holds the whole feed in memory, so RSS includes the feed; the managed heap before the sync is
/// printed apart, and the sync's own cost is the peak above it.
/// </summary>
internal static class ExchangeCommand
{
    private const long Start = 1_735_689_600; // 2025-01-01T00:00:00Z

    public static async Task<int> RunAsync(string[] args)
    {
        var entries = Size(Option(args, "--entries", "100k"));
        var dir = Directory.CreateDirectory(Option(args, "--dir", Path.Combine(Path.GetTempPath(), "warden-exchange-bench"))).FullName;
        var dbPath = Path.Combine(dir, "bank.db");
        foreach (var f in Directory.GetFiles(dir, "bank.db*"))
        {
            File.Delete(f);
        }

        await using var server = new FakeNcmecServer();
        var load = Stopwatch.StartNew();
        var step = 30; // seconds between entries: 1M entries span about a year, as a busy feed's history does
        for (var i = 0; i < entries; i++)
        {
            server.Put(Entry(i, Start + ((long)i * step)));
        }

        GC.Collect();
        var baseline = GC.GetTotalMemory(true);
        Console.WriteLine($"entries={entries:N0} (md5+sha1+pdq each) feed built in {load.Elapsed.TotalSeconds:F1} s; managed heap with the feed {baseline / 1048576.0:F0} MiB; RSS {Environment.WorkingSet / 1048576.0:F0} MiB");

        using var banks = BankStore.Open(dbPath);
        var exchanges = ExchangeStore.Open(banks.Database);
        var bank = banks.CreateBank("ncmec");
        var config = $$"""{"environment":"test_Industry","base_url":"{{server.BaseUrl}}","credentials_env":"WARDEN_BENCH_NCMEC","start_time":"2024-12-31T00:00:00Z"}""";
        var exchange = exchanges.Create("ncmec-bench", "ncmec", bank.Id, ExchangeTypes.Ncmec.Validate(System.Text.Json.JsonDocument.Parse(config).RootElement).GetRawText());
        using var http = new HttpClient();
        var now = DateTimeOffset.FromUnixTimeSeconds(Start + ((long)entries * step) + 3600);
        var runtime = new ExchangeRuntime(http, () => now, m => Console.Error.WriteLine(m), _ => server.User + ":" + server.Password);

        long peakManaged = 0;
        using var sampler = new Timer(_ => InterlockedMax(ref peakManaged, GC.GetTotalMemory(false)), null, 0, 50);
        var sync = new ExchangeSync(banks, exchanges) { CommitRecords = Size(Option(args, "--commit", "20k")) };
        var clock = Stopwatch.StartNew();
        var result = await sync.RunAsync(exchange, runtime, LeaseOwner.Create(), CancellationToken.None);
        clock.Stop();
        InterlockedMax(ref peakManaged, GC.GetTotalMemory(false));
        using var process = Process.GetCurrentProcess();
        process.Refresh();

        if (args.Contains("--requests"))
        {
            foreach (var r in server.Requests.OrderBy(r => r.At))
            {
                Console.WriteLine($"  {r.At:HH:mm:ss.fff} {r.Status} {r.PathAndQuery}");
            }
        }

        var live = banks.ExportEntries(bank.Id).LongCount();
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"first sync: {seconds:F1} s, {result.Entries / seconds:N0} entries/s ({result.Entries:N0} entries, {result.Tombstones:N0} tombstones, {result.Commits} commits, {server.EntriesPagesServed:N0} pages)");
        Console.WriteLine($"bank: {live:N0} live fingerprints (expected {entries * 3L:N0}); database {new FileInfo(dbPath).Length / 1048576.0:F0} MiB");
        Console.WriteLine($"peak RSS {process.PeakWorkingSet64 / 1048576.0:F0} MiB (feed included); peak managed heap {peakManaged / 1048576.0:F0} MiB, {(peakManaged - baseline) / 1048576.0:F0} MiB above the feed");
        return live == entries * 3L ? 0 : 1;
    }

    private static FakeEntry Entry(int i, long timestamp)
    {
        // Benign stand-ins of the right lengths (hex of SHA-256 over the index and a per-type tag), distinct per entry.
        var md5 = Hex(i, 1)[..32];
        var sha1 = Hex(i, 2)[..40];
        var pdq = Hex(i, 3);
        var fingerprints = new Dictionary<string, string?>(3, StringComparer.Ordinal) { ["md5"] = md5, ["sha1"] = sha1, ["pdq"] = pdq };
        string[] classes = ["A1", "A2", "B1", "B2"];
        return new FakeEntry(9000 + (i % 7), string.Create(CultureInfo.InvariantCulture, $"img-{i:d8}"), Video: false, timestamp, classes[i % 4], fingerprints);
    }

    private static string Hex(int i, int tag)
    {
        Span<byte> seed = stackalloc byte[8];
        BitConverter.TryWriteBytes(seed, i);
        BitConverter.TryWriteBytes(seed[4..], tag);
        return Convert.ToHexStringLower(SHA256.HashData(seed));
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                break;
            }

            current = seen;
        }
    }

    private static int Size(string s) => s.ToLowerInvariant() switch
    {
        var x when x.EndsWith('m') => (int)(double.Parse(x[..^1], CultureInfo.InvariantCulture) * 1_000_000),
        var x when x.EndsWith('k') => (int)(double.Parse(x[..^1], CultureInfo.InvariantCulture) * 1_000),
        var x => int.Parse(x, CultureInfo.InvariantCulture),
    };

    private static string Option(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
