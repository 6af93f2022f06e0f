using System.Diagnostics;
using System.Globalization;
using Warden.Core.Banks;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// `storage [--db TARGET] [--rows 1m]`: the bank store on one database (default: a new SQLite file in a temp
/// folder; a PostgreSQL connection string works on a database of its own): import of N md5 rows into a new
/// bank, the same import again (all unchanged), reading the index (ReadIndex), tailing the whole change feed
/// in pages of 10,000, and single-entry writes (enable/disable) per second. Besides wall time it reports CPU
/// seconds (this process plus, for a PostgreSQL server on this machine, the server's processes as listed in
/// pg_stat_activity), which say more than wall time on a shared machine.
/// </summary>
internal static class StorageCommand
{
    public static int Run(string[] args)
    {
        var rows = ParseSize(Option(args, "--rows", "1m"));
        var target = Option(args, "--db", string.Empty);
        string? tempDir = null;
        if (target.Length == 0)
        {
            tempDir = Directory.CreateTempSubdirectory("warden-bench-").FullName;
            target = Path.Combine(tempDir, "bench.db");
        }

        try
        {
            using var store = BankStore.Open(target);
            Console.WriteLine($"database={store.Database.Dialect} ({store.Path}) rows={rows:N0} cpus={Environment.ProcessorCount}");
            if (store.Database.Dialect == SqlDialect.Postgres)
            {
                Cpu.ServerPids = () =>
                {
                    using var c = store.Database.OpenConnection();
                    using var cmd = c.CreateCommand();
                    cmd.CommandText = "SELECT pid FROM pg_stat_activity";
                    using var r = cmd.ExecuteReader();
                    var pids = new List<int>();
                    while (r.Read())
                    {
                        pids.Add(r.GetInt32(0));
                    }

                    return pids;
                };
            }

            var bank = store.CreateBank("bench-" + Guid.NewGuid().ToString("N")[..8]);

            var sw = Stopwatch.StartNew();
            Cpu.Mark();
            var first = store.Import(bank.Id, Records(rows), "bench");
            Report("import (new rows)", rows, sw.Elapsed, $"added {first.Added:N0}");

            sw.Restart();
            Cpu.Mark();
            var again = store.Import(bank.Id, Records(rows), "bench");
            Report("re-import (unchanged)", rows, sw.Elapsed, $"unchanged {again.Unchanged:N0}");

            sw.Restart();
            Cpu.Mark();
            long n = 0;
            var seq = store.ReadIndex(_ => n++);
            Report("ReadIndex", n, sw.Elapsed, $"seq {seq:N0}");

            sw.Restart();
            Cpu.Mark();
            long seen = 0, mark = 0;
            ChangeBatch page;
            do
            {
                page = store.ChangesSince(mark, 10_000);
                seen += page.Entries.Count;
                mark = page.HighWater;
            }
            while (page.HasMore);
            Report("ChangesSince, pages of 10k", seen, sw.Elapsed, string.Empty);

            var ids = store.ExportEntries(bank.Id).Take(2000).Select(e => e.Id).ToArray();
            sw.Restart();
            Cpu.Mark();
            foreach (var id in ids)
            {
                store.SetEntryEnabled(id, false);
            }

            Report("SetEntryEnabled (one per transaction)", ids.Length, sw.Elapsed, string.Empty);

            sw.Restart();
            Cpu.Mark();
            page = store.ChangesSince(mark, 10_000);
            Console.WriteLine($"  tail of those {page.Entries.Count:N0} changes: {sw.Elapsed.TotalMilliseconds:F1} ms");
            return 0;
        }
        finally
        {
            if (tempDir is not null)
            {
                Directory.Delete(tempDir, recursive: true);
            }
        }
    }

    /// <summary>Distinct md5-shaped signals (a 64-bit mix of i, twice), generated as the import reads them.</summary>
    private static IEnumerable<BankEntryRecord> Records(long count)
    {
        var labels = new Dictionary<string, string> { [WellKnownLabels.Classification] = "A1" };
        for (long i = 0; i < count; i++)
        {
            var a = Mix((ulong)i);
            var b = Mix(a ^ 0x9E3779B97F4A7C15);
            yield return new BankEntryRecord("md5", string.Create(CultureInfo.InvariantCulture, $"{a:x16}{b:x16}"), labels);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    private static void Report(string what, long n, TimeSpan t, string note)
    {
        var cpu = Cpu.Since();
        Console.WriteLine($"  {what,-40} {n,10:N0} in {t.TotalSeconds,7:F2} s = {n / t.TotalSeconds,10:N0}/s  cpu {cpu.Own:F2} s + server {cpu.Server:F2} s = {n / (cpu.Own + cpu.Server),10:N0}/cpu-s  {note}");
    }

    /// <summary>CPU seconds used by this process and by the database server's processes (Linux /proc).</summary>
    private static class Cpu
    {
        public static Func<IReadOnlyList<int>>? ServerPids { get; set; }

        private static double _own;
        private static double _server;

        public static void Mark() => (_own, _server) = Read();

        public static (double Own, double Server) Since()
        {
            var (own, server) = Read();
            return (own - _own, server - _server);
        }

        private static (double Own, double Server) Read()
        {
            var own = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
            double server = 0;
            foreach (var pid in ServerPids?.Invoke() ?? [])
            {
                try
                {
                    var stat = File.ReadAllText($"/proc/{pid}/stat");
                    var close = stat.LastIndexOf(')');

                    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15 (clock ticks, 100/s).
                    var fields = stat[(close + 2)..].Split(' ');
                    server += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
                {
                    // The process ended or is not ours to read.
                }
            }

            return (own, server);
        }
    }

    private static string Option(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    private static long ParseSize(string s) => s.ToUpperInvariant() switch
    {
        var m when m.EndsWith('M') => long.Parse(m[..^1], CultureInfo.InvariantCulture) * 1_000_000,
        var k when k.EndsWith('K') => long.Parse(k[..^1], CultureInfo.InvariantCulture) * 1_000,
        var plain => long.Parse(plain, CultureInfo.InvariantCulture),
    };
}
