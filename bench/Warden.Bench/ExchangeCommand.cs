using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Warden.Core.Exchanges;
using Warden.Core.Tests.Exchanges;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// `exchange [--entries 100k] [--commit 100k] [--dir DIR] [--db sqlite|postgres]`: a first sync of an NCMEC Hash Sharing v2 feed of N image entries (md5,
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

        // --db postgres: a fresh database in the server WARDEN_TEST_POSTGRES names (scripts/with-postgres), dropped after.
        var postgres = Option(args, "--db", "sqlite") == "postgres";
        string target = dbPath;
        string? pgAdmin = null, pgName = null;
        if (postgres)
        {
            pgAdmin = Environment.GetEnvironmentVariable("WARDEN_TEST_POSTGRES") ?? throw new InvalidOperationException("--db postgres needs WARDEN_TEST_POSTGRES (run under scripts/with-postgres).");
            pgName = "warden_bench_" + Guid.NewGuid().ToString("N")[..12];
            await using (var admin = new Npgsql.NpgsqlConnection(pgAdmin))
            {
                await admin.OpenAsync();
                await using var create = new Npgsql.NpgsqlCommand($"CREATE DATABASE {pgName}", admin);
                await create.ExecuteNonQueryAsync();
            }

            target = new Npgsql.NpgsqlConnectionStringBuilder(pgAdmin) { Database = pgName }.ConnectionString;
        }

        try
        {
            return await SyncAsync(args, entries, step, server, target, dbPath, postgres, baseline);
        }
        finally
        {
            if (pgName is not null)
            {
                Npgsql.NpgsqlConnection.ClearAllPools();
                await using var admin = new Npgsql.NpgsqlConnection(pgAdmin);
                await admin.OpenAsync();
                await using var drop = new Npgsql.NpgsqlCommand($"DROP DATABASE IF EXISTS {pgName} WITH (FORCE)", admin);
                await drop.ExecuteNonQueryAsync();
            }
        }
    }

    private static async Task<int> SyncAsync(string[] args, int entries, int step, FakeNcmecServer server, string target, string dbPath, bool postgres, long baseline)
    {
        using var banks = BankStore.Open(target);
        var exchanges = ExchangeStore.Open(banks.Database);
        var bank = banks.CreateBank("ncmec");
        var config = $$"""{"environment":"test_Industry","base_url":"{{server.BaseUrl}}","credentials_env":"WARDEN_BENCH_NCMEC","start_time":"2024-12-31T00:00:00Z"}""";
        var exchange = exchanges.Create("ncmec-bench", "ncmec", bank.Id, ExchangeTypes.Ncmec.Validate(System.Text.Json.JsonDocument.Parse(config).RootElement).GetRawText());
        using var http = new HttpClient();
        var now = DateTimeOffset.FromUnixTimeSeconds(Start + ((long)entries * step) + 3600);
        var runtime = new ExchangeRuntime(http, () => now, m => Console.Error.WriteLine(m), _ => server.User + ":" + server.Password);

        long peakManaged = 0;
        using var sampler = new Timer(_ => InterlockedMax(ref peakManaged, GC.GetTotalMemory(false)), null, 0, 50);
        var sync = new ExchangeSync(banks, exchanges) { CommitRecords = Size(Option(args, "--commit", "100k")) };
        var pgWal = postgres ? PostgresWalBytes(banks) : 0;
        var pgPages = postgres ? PostgresBuffersWritten(banks) : 0;
        var written = ProcWriteBytes();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var result = await sync.RunAsync(exchange, runtime, LeaseOwner.Create(), CancellationToken.None);
        clock.Stop();
        InterlockedMax(ref peakManaged, GC.GetTotalMemory(false));
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpuUsed = process.TotalProcessorTime - cpu;
        var writtenBytes = ProcWriteBytes() - written;

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
        var size = postgres ? PostgresSize(banks) : Directory.GetFiles(Path.GetDirectoryName(dbPath)!, "bank.db*").Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"bank: {live:N0} live fingerprints (expected {entries * 3L:N0}); database {size / 1048576.0:F0} MiB ({(postgres ? "PostgreSQL" : "SQLite")})");
        Console.WriteLine($"CPU {cpuUsed.TotalSeconds:F1} s (this process{(postgres ? "; PostgreSQL's own CPU is not counted" : string.Empty)}); written by this process {writtenBytes / 1048576.0:F0} MiB ({(size > 0 ? writtenBytes / (double)size : 0):F1}x the database)");
        if (postgres)
        {
            // Data pages the server wrote (checkpointer, background writer, backends), after a checkpoint flushes the rest.
            try
            {
                PostgresScalar(banks, "CHECKPOINT");
            }
            catch (Exception ex) when (ex is System.Data.Common.DbException)
            {
                Console.WriteLine("(CHECKPOINT refused: data pages still in shared buffers are not counted)");
            }

            var pages = PostgresBuffersWritten(banks) - pgPages;
            Console.WriteLine($"PostgreSQL data pages written {pages * 8192 / 1048576.0:F0} MiB (pg_stat_bgwriter, whole server)");
            var wal = PostgresWalBytes(banks) - pgWal;
            Console.WriteLine($"PostgreSQL WAL generated {wal / 1048576.0:F0} MiB ({(size > 0 ? wal / (double)size : 0):F1}x the database; pg_current_wal_lsn delta)");
        }

        Console.WriteLine($"peak RSS {process.PeakWorkingSet64 / 1048576.0:F0} MiB (feed included); peak managed heap {peakManaged / 1048576.0:F0} MiB, {(peakManaged - baseline) / 1048576.0:F0} MiB above the feed");
        return live == entries * 3L ? 0 : 1;
    }

    /// <summary>Bytes this process caused to be written to storage (/proc/self/io write_bytes); 0 where unavailable.</summary>
    private static long ProcWriteBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/io"))
            {
                if (line.StartsWith("write_bytes:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(12).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    private static long PostgresWalBytes(BankStore banks) => PostgresScalar(banks, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");

    private static long PostgresBuffersWritten(BankStore banks) => PostgresScalar(banks, "SELECT buffers_checkpoint + buffers_clean + buffers_backend FROM pg_stat_bgwriter");

    private static long PostgresSize(BankStore banks) => PostgresScalar(banks, "SELECT pg_database_size(current_database())");

    private static long PostgresScalar(BankStore banks, string sql)
    {
        using var c = banks.Database.OpenConnection();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar() is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : 0;
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
