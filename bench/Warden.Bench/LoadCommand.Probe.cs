using System.Globalization;
using System.Text;
using Npgsql;

namespace Warden.Bench;

internal static partial class LoadCommand
{
    /// <summary>
    /// What each node's runtime and the database did in an interval, printed under the latency line so a
    /// spike or an RSS step can be matched to its cause: the managed heap (size after the last GC, by
    /// generation, its fragmentation and the GC's committed memory), GCs and their pause time, threads, the
    /// Npgsql pool, and PostgreSQL's checkpoints, autovacuum/autoanalyze runs and WAL written. Reads each
    /// node's /metrics (an admin key) and, when the database is PostgreSQL, its statistics views; a reading that
    /// fails prints "?" and never stops the run.
    /// </summary>
    private sealed class Probe(HttpClient[] clients, int[] pids, string adminKey, string? postgres)
    {
        private readonly Dictionary<string, double>[] _last = [.. clients.Select(_ => new Dictionary<string, double>(StringComparer.Ordinal))];
        private PgReading? _pgLast;
        private Task _pending = Task.CompletedTask;

        /// <summary>
        /// Prints <see cref="Lines"/> off the caller's thread, in order: the open loop's sender must not stop to
        /// scrape (a pause there would delay the requests due meanwhile and count as their latency).
        /// </summary>
        public void Print() => _pending = _pending.ContinueWith(_ => Console.Write(Lines()), TaskScheduler.Default);

        /// <summary>Waits for the lines being printed (before a run's totals).</summary>
        public void Flush() => _pending.Wait();

        /// <summary>Takes the first readings, so the first interval prints deltas.</summary>
        public void Start()
        {
            for (var n = 0; n < clients.Length; n++)
            {
                _last[n] = Scrape(clients[n]) ?? _last[n];
            }

            _pgLast = ReadPostgres();
        }

        /// <summary>One line per node ("gc …") and one for PostgreSQL ("pg …"), each indented under the interval line.</summary>
        public string Lines()
        {
            var sb = new StringBuilder();
            for (var n = 0; n < clients.Length; n++)
            {
                var now = Scrape(clients[n]);
                var who = clients.Length > 1 ? $"node {n + 1} " : string.Empty;
                if (now is null)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"          {who}gc ?\n");
                    continue;
                }

                var last = _last[n];
                // By the name's ending: the meter adapter prefixes the meter's name ("system_runtime_", "npgsql_").
                double Sum(Dictionary<string, double> m, string name, string? label = null) =>
                    m.Where(kv => MetricName(kv.Key).EndsWith(name, StringComparison.Ordinal) && (label is null || kv.Key.Contains(label, StringComparison.Ordinal))).Sum(kv => kv.Value);
                double Delta(string name, string? label = null) => Sum(now, name, label) - Sum(last, name, label);
                const double MiB = 1048576.0;
                sb.Append(CultureInfo.InvariantCulture,
                    $"          {who}gc heap {Sum(now, "dotnet_gc_last_collection_heap_size") / MiB:F0} MiB " +
                    $"(gen0 {Sum(now, "dotnet_gc_last_collection_heap_size", "\"gen0\"") / MiB:F0} gen1 {Sum(now, "dotnet_gc_last_collection_heap_size", "\"gen1\"") / MiB:F0} " +
                    $"gen2 {Sum(now, "dotnet_gc_last_collection_heap_size", "\"gen2\"") / MiB:F0} loh {Sum(now, "dotnet_gc_last_collection_heap_size", "\"loh\"") / MiB:F0} " +
                    $"poh {Sum(now, "dotnet_gc_last_collection_heap_size", "\"poh\"") / MiB:F0}), frag {Sum(now, "dotnet_gc_last_collection_heap_fragmentation_size") / MiB:F0}, " +
                    $"committed {Sum(now, "dotnet_gc_last_collection_memory_committed_size") / MiB:F0} MiB; " +
                    $"GCs +{Delta("dotnet_gc_collections", "\"gen0\""):F0}/+{Delta("dotnet_gc_collections", "\"gen1\""):F0}/+{Delta("dotnet_gc_collections", "\"gen2\""):F0} " +
                    $"pause {Delta("dotnet_gc_pause_time") * 1000:F0} ms, allocated {Delta("dotnet_gc_heap_total_allocated") / MiB:F0} MiB; " +
                    $"threads {Sum(now, "dotnet_thread_pool_thread_count"):F0} pool / {Sum(now, "process_num_threads"):F0}; " +
                    $"npgsql {Sum(now, "db_client_connection_count", "\"used\""):F0} used {Sum(now, "db_client_connection_count", "\"idle\""):F0} idle; " +
                    $"native: {NativeBreakdown(pids[n], now)}\n");
                _last[n] = now;
            }

            var pg = ReadPostgres();
            if (pg is { } p && _pgLast is { } q)
            {
                sb.Append(CultureInfo.InvariantCulture,
                    $"          pg checkpoints +{p.CheckpointsTimed - q.CheckpointsTimed} timed +{p.CheckpointsRequested - q.CheckpointsRequested} requested " +
                    $"({(p.CheckpointBuffers - q.CheckpointBuffers) * 8 / 1024.0:F0} MiB written, {p.CheckpointWriteMs - q.CheckpointWriteMs:F0} ms), " +
                    $"WAL {(p.WalBytes - q.WalBytes) / 1048576.0:F1} MiB, autovacuum {Runs(p.Vacuums, q.Vacuums)}, autoanalyze {Runs(p.Analyzes, q.Analyzes)}\n");
            }

            _pgLast = pg ?? _pgLast;
            return sb.ToString();
        }

        /// <summary>
        /// Where the node's resident memory is (<see cref="Warden.Core.Runtime.ProcessMemory"/>, from /proc/PID/smaps)
        /// and what glibc malloc holds (the node's <c>warden_native_heap_bytes</c>, from mallinfo2), in MiB.
        /// </summary>
        private static string NativeBreakdown(int pid, Dictionary<string, double> metrics)
        {
            double Held(string state) => metrics.GetValueOrDefault($"warden_native_heap_bytes{{state=\"{state}\"}}", double.NaN) / 1048576.0;
            var memory = Warden.Core.Runtime.ProcessMemory.Read(pid);
            return string.Create(CultureInfo.InvariantCulture, $"{(memory is null ? "?" : memory.ToString())}; malloc in use {Held("arena_in_use"):F0} free {Held("arena_free"):F0} mapped {Held("mapped"):F0}");
        }

        private static string MetricName(string key) => key.IndexOf('{', StringComparison.Ordinal) is var brace and >= 0 ? key[..brace] : key;

        // "+2 (case_events, cases)": which tables autovacuum visited in the interval.
        private static string Runs(Dictionary<string, long> now, Dictionary<string, long> last)
        {
            var tables = now.Where(kv => kv.Value > last.GetValueOrDefault(kv.Key)).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            var total = tables.Sum(t => now[t] - last.GetValueOrDefault(t));
            return tables.Count == 0 ? "+0" : $"+{total} ({string.Join(", ", tables)})";
        }

        private Dictionary<string, double>? Scrape(HttpClient client) => ScrapeMetrics(client, adminKey);

        private sealed record PgReading(long CheckpointsTimed, long CheckpointsRequested, long CheckpointBuffers, double CheckpointWriteMs, long WalBytes, Dictionary<string, long> Vacuums, Dictionary<string, long> Analyzes);

        private PgReading? ReadPostgres()
        {
            if (postgres is null)
            {
                return null;
            }

            try
            {
                using var c = new NpgsqlConnection(postgres);
                c.Open();
                long timed, requested, buffers, wal;
                double writeMs;
                using (var cmd = new NpgsqlCommand("SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, checkpoint_write_time + checkpoint_sync_time, pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_bgwriter", c))
                using (var r = cmd.ExecuteReader())
                {
                    r.Read();
                    (timed, requested, buffers, writeMs, wal) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetDouble(3), (long)r.GetDecimal(4));
                }

                var vacuums = new Dictionary<string, long>(StringComparer.Ordinal);
                var analyzes = new Dictionary<string, long>(StringComparer.Ordinal);
                using (var cmd = new NpgsqlCommand("SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables", c))
                using (var r = cmd.ExecuteReader())
                {
                    while (r.Read())
                    {
                        vacuums[r.GetString(0)] = r.GetInt64(1);
                        analyzes[r.GetString(0)] = r.GetInt64(2);
                    }
                }

                return new PgReading(timed, requested, buffers, writeMs, wal, vacuums, analyzes);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                return null;
            }
        }
    }
}
