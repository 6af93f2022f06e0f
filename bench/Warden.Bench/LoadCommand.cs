using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using NetVips;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// Load run of <c>warden serve</c>: hash + match of ~100 KB JPEGs (POST /v1/match) against a PDQ bank of
/// <c>--entries</c> random hashes (plus the PDQs of some of the images, so a share of requests match and are
/// recorded and turned into case items), from separate server processes on loopback: one node on a SQLite
/// file, or <c>--nodes N</c> on one PostgreSQL database (<c>--postgres CONNSTR</c>, or <c>--pg</c> for a
/// throwaway cluster from scripts/with-postgres), requests round-robin over the nodes. Modes: a fixed request
/// rate (open loop; latency counted from each request's scheduled start, so a stalled server cannot hide its
/// queueing), a closed loop with N connections (the most it sustains), and <c>--find-max</c> (an open-loop
/// ramp: the highest rate whose p99 stays within <c>--p99-budget</c> ms with no errors). Prints per-interval
/// rate, p50/p99/p99.9, errors and each node's RSS; for soaks the RSS after <c>--rss-baseline</c> seconds and at
/// the end, and the growth; CPU per request (servers and PostgreSQL, from /proc). Under each interval: every
/// node's GC, pool and resident-memory breakdown and PostgreSQL's checkpoints and autovacuum runs (see
/// <see cref="Probe"/>), and with several nodes each node's latency; <c>--node-env N:NAME=VALUE</c> sets a
/// variable on one node, to compare runtime settings side by side under the same load.
/// </summary>
internal static partial class LoadCommand
{
    public static int Run(string[] args)
    {
        var entries = 1_000_000;
        var seconds = 60;
        var closedSeconds = 30;
        var warmupSeconds = 30;
        var rate = 300.0;
        var connections = 16;
        var imageCount = 64;
        var uploaders = 1000;
        var nodes = 1;
        var interval = 10;
        var rssBaseline = 120;
        var mode = "both";
        var p99Budget = 50.0;
        var step = 20;
        string? postgres = null;
        var serverEnv = new Dictionary<string, string>(StringComparer.Ordinal);
        var nodeEnv = new List<(int Node, string Name, string Value)>();
        var dir = Path.Combine(Path.GetTempPath(), "warden-load");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--entries": entries = ParseCount(args[++i]); break;
                case "--duration": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--closed-duration": closedSeconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rate": rate = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--connections": connections = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--images": imageCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--uploaders": uploaders = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--nodes": nodes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--interval": interval = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rss-baseline": rssBaseline = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--open": mode = "open"; break;
                case "--closed": mode = "closed"; break;
                case "--find-max": mode = "find-max"; break;
                case "--p99-budget": p99Budget = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--step": step = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--postgres": postgres = args[++i]; break;
                case "--pg": return WithThrowawayPostgres("load", args);
                case "--server-env":
                    var kv = args[++i].Split('=', 2);
                    serverEnv[kv[0]] = kv.Length > 1 ? kv[1] : string.Empty;
                    break;
                case "--node-env":
                    // "2:DOTNET_GCConserveMemory=5": one node's setting, to compare runtime settings side by side under the same load.
                    var colon = args[i + 1].IndexOf(':', StringComparison.Ordinal);
                    var nkv = args[++i][(colon + 1)..].Split('=', 2);
                    nodeEnv.Add((colon > 0 && int.TryParse(args[i].AsSpan(0, colon), CultureInfo.InvariantCulture, out var node) ? node : 0, nkv[0], nkv.Length > 1 ? nkv[1] : string.Empty));
                    break;
                case "--dir": dir = args[++i]; break;
                case "--warmup": warmupSeconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"load: unknown option {args[i]}"); return 2;
            }
        }

        if (nodes < 1 || uploaders < 1 || interval < 1 || (nodes > 1 && postgres is null) || nodeEnv.Any(e => e.Node < 1 || e.Node > nodes || e.Name.Length == 0))
        {
            Console.Error.WriteLine("load: --nodes N (N ≥ 1; more than one needs --postgres or --pg), --uploaders ≥ 1, --interval ≥ 1, --node-env N:NAME=VALUE with 1 ≤ N ≤ nodes");
            return 2;
        }

        Directory.CreateDirectory(dir);
        var images = Enumerable.Range(0, imageCount).Select(Jpeg).ToArray();
        Console.WriteLine($"images: {images.Length} JPEGs, 640x480, mean {images.Average(b => b.Length) / 1024:F0} KiB; {uploaders} uploaders round-robin");
        var db = postgres ?? Path.Combine(dir, $"load-{entries}.db");
        var key = Prepare(db, entries, images);
        var adminKey = MetricsKey(db);
        if (postgres is not null)
        {
            Settle(postgres);
        }
        var postmaster = postgres is null ? 0 : PostmasterPid(postgres);
        Console.WriteLine($"database: {(postgres is null ? "SQLite " + db : "PostgreSQL" + (postmaster > 0 ? $" (postmaster pid {postmaster}, CPU counted from /proc)" : " (not on this machine: its CPU is not counted)"))}; case intake on; {nodes} node(s)");

        // Every node's pool within the server's connections (the throwaway cluster allows 200), as in production.
        var serverDb = postgres is not null && nodes > 1 && !postgres.Contains("://", StringComparison.Ordinal) && !postgres.Contains("pool size", StringComparison.OrdinalIgnoreCase)
            ? postgres.TrimEnd(';') + $";Maximum Pool Size={Math.Max(10, 180 / nodes)}"
            : db;
        var servers = new List<Process>();
        var clients = new List<HttpClient>();
        var handlers = new List<SocketsHttpHandler>();
        try
        {
            for (var n = 0; n < nodes; n++)
            {
                var port = FreePort();
                var env = new Dictionary<string, string>(serverEnv, StringComparer.Ordinal);
                foreach (var (_, name, value) in nodeEnv.Where(e => e.Node == n + 1))
                {
                    env[name] = value;
                }

                if (env.Count > serverEnv.Count || nodeEnv.Count > 0)
                {
                    Console.WriteLine($"node {n + 1} environment: {(env.Count == 0 ? "(defaults)" : string.Join(' ', env.Select(kv => kv.Key + "=" + kv.Value)))}");
                }

                servers.Add(StartServer(serverDb, port, env));
                var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(connections, 64), PooledConnectionLifetime = TimeSpan.FromMinutes(60), UseProxy = false, UseCookies = false, AllowAutoRedirect = false };
                handlers.Add(handler);
                var client = new HttpClient(handler) { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
                clients.Add(client);
            }

            for (var n = 0; n < nodes; n++)
            {
                WaitReady(clients[n], servers[n]);
                Console.WriteLine($"node {n + 1} (pid {servers[n].Id}): ready, RSS {Rss(servers[n].Id) / 1048576.0:F0} MiB");
            }

            var target = new Target([.. clients], [.. servers.Select(p => p.Id)], postmaster, uploaders);
            // Tiered compilation keeps promoting hot methods for ~20-30 s under load (the first 10 s of a closed loop ran
            // at 60 % of the rate of its third 10 s), so the figures start after a closed-loop warm-up of that length.
            Console.WriteLine($"warm-up {warmupSeconds} s (closed loop, not counted) ...");
            RunClosed(target, images, connections, Math.Max(1, warmupSeconds), interval, quiet: true);
            target.Probe = new Probe([.. clients], [.. servers.Select(p => p.Id)], adminKey, postgres);
            target.Probe.Start();
            if (mode is "open" or "both")
            {
                Console.WriteLine($"\n== fixed rate {rate:F0} req/s for {seconds} s (open loop), {nodes} node(s)");
                RunOpen(target, images, rate, seconds, interval, rssBaseline, quiet: false);
            }

            if (mode is "closed" or "both")
            {
                Console.WriteLine($"\n== closed loop, {connections} connections, {closedSeconds} s (the most it sustains), {nodes} node(s)");
                RunClosed(target, images, connections, closedSeconds, interval, quiet: false);
            }

            if (mode == "find-max")
            {
                FindMax(target, images, rate, step, p99Budget);
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                server.Kill(entireProcessTree: true);
                server.Dispose();
            }

            foreach (var c in clients)
            {
                c.Dispose();
            }

            foreach (var h in handlers)
            {
                h.Dispose();
            }
        }

        return 0;
    }

    /// <summary>The servers under test: requests go round-robin over the nodes, uploaders round-robin over the requests.</summary>
    private sealed record Target(HttpClient[] Clients, int[] Pids, int Postmaster, int Uploaders)
    {
        // Built once: the load generator shares the cores with the server, so its per-request work is kept small.
        private readonly Uri[] _paths = [.. Enumerable.Range(0, Uploaders).Select(u => new Uri("v1/match?uploader_id=u" + u.ToString(CultureInfo.InvariantCulture), UriKind.Relative))];
        private long _next;

        /// <summary>Per-interval GC, pool and PostgreSQL readings printed under each interval line (null: none).</summary>
        public Probe? Probe { get; set; }

        /// <summary>Each node's latencies (several nodes, printed runs only), so settings compared side by side (--node-env) show their own p99.</summary>
        public Stats[] NodeStats { get; } = [.. Clients.Select(_ => new Stats())];

        public (HttpClient Client, Uri Path, int Node) Next()
        {
            var i = Interlocked.Increment(ref _next);
            var node = (int)(i % Clients.Length);
            return (Clients[node], _paths[i % Uploaders], node);
        }

        public string RssText() => string.Join(" + ", Pids.Select(p => (Rss(p) / 1048576.0).ToString("F0", CultureInfo.InvariantCulture))) + " MiB";

        public long TotalRss() => Pids.Sum(Rss);

        /// <summary>CPU of the servers, (when local) PostgreSQL and this load generator so far.</summary>
        public (TimeSpan Servers, TimeSpan Postgres, TimeSpan Client) Cpu() =>
            (TimeSpan.FromTicks(Pids.Sum(p => ProcessCpu(p).Ticks)), IntakeCommand.ServerCpu(Postmaster), Process.GetCurrentProcess().TotalProcessorTime);
    }

    /// <summary>Runs this same command again under scripts/with-postgres (a throwaway cluster), on its connection string.</summary>
    private static int WithThrowawayPostgres(string command, string[] args)
    {
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "scripts", "with-postgres")))
        {
            root = Path.GetDirectoryName(root.TrimEnd('/'));
        }

        if (root is null)
        {
            Console.Error.WriteLine("load: --pg needs scripts/with-postgres above the bench's folder; use --postgres CONNSTR");
            return 2;
        }

        // The cluster's connection string comes from the script's environment, so the child expands it.
        var rest = string.Join(' ', args.Where(a => a != "--pg").Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
        var info = new ProcessStartInfo(Path.Combine(root, "scripts", "with-postgres")) { UseShellExecute = false };
        foreach (var a in new[] { "bash", "-c", $"exec dotnet '{typeof(LoadCommand).Assembly.Location}' {command} --postgres \"$WARDEN_TEST_POSTGRES\" {rest}" })
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        p.WaitForExit();
        return p.ExitCode;
    }

    private static int ParseCount(string s) => s.EndsWith('m') ? int.Parse(s[..^1], CultureInfo.InvariantCulture) * 1_000_000
        : s.EndsWith('k') ? int.Parse(s[..^1], CultureInfo.InvariantCulture) * 1000 : int.Parse(s, CultureInfo.InvariantCulture);

    // Photo-like content: a small random image blown up smoothly (blobs), plus grain; q85 is ~100 KB.
    internal static byte[] Jpeg(int seed)
    {
        using var small = Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed)
            .Bandjoin(Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 1000), Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 2000));
        using var big = small.Resize(40, vscale: 40, kernel: Enums.Kernel.Cubic);
        using var grain = Image.Gaussnoise(640, 480, sigma: 9, mean: 0, seed: seed + 3000);
        using var sum = big + grain;
        using var rgb = sum.Cast(Enums.BandFormat.Uchar);
        return rgb.JpegsaveBuffer(q: 85);
    }

    private static string Prepare(string db, int entries, byte[][] images)
    {
        using var store = BankStore.Open(db);
        if (store.GetBank("load") is null)
        {
            var bank = store.CreateBank("load");
            var watch = Stopwatch.StartNew();
            var random = new Random(12345);
            IEnumerable<BankEntryRecord> Records()
            {
                var labels = new Dictionary<string, string>();
                for (var i = 0; i < entries; i++)
                {
                    var h = new PdqHash((ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64());
                    yield return new BankEntryRecord("pdq", h.ToString(), labels);
                }

                // Every 8th image is "known", so about one request in eight matches and is recorded.
                using var hasher = new ContentHasher();
                for (var i = 0; i < images.Length; i += 8)
                {
                    using var stream = new MemoryStream(images[i]);
                    yield return new BankEntryRecord("pdq", hasher.HashStream(stream).Image!.Pdq.Hash.ToString(), labels);
                }
            }

            var result = store.Import(bank.Id, Records(), "load");
            Console.WriteLine($"bank 'load': {result.Added} PDQ entries imported in {watch.Elapsed.TotalSeconds:F1} s");
        }

        var keys = new ServerStore(store.Database);
        keys.Migrate();

        // A previous run's flood flags would turn this run's matches into flood-quarantined hits.
        foreach (var flag in keys.ListFlags(activeOnly: true))
        {
            keys.ClearFlag(flag.EntryId, "load bench");
        }
        return keys.CreateKey("load", Role.Submitter).Key;
    }

    /// <summary>
    /// Vacuums, analyses and checkpoints a PostgreSQL database before the servers start: the bank import's
    /// aftermath (autovacuum of a million new rows, then a checkpoint writing every page it touched) otherwise
    /// lands in the run's first minutes and is measured as the soak's spikes, which a production database
    /// went through long before. CHECKPOINT needs a superuser (or pg_checkpoint); without it the run says so.
    /// </summary>
    private static void Settle(string postgres)
    {
        var watch = Stopwatch.StartNew();
        using var c = new Npgsql.NpgsqlConnection(postgres);
        c.Open();
        using (var vacuum = new Npgsql.NpgsqlCommand("VACUUM (ANALYZE)", c) { CommandTimeout = 0 })
        {
            vacuum.ExecuteNonQuery();
        }

        try
        {
            using var checkpoint = new Npgsql.NpgsqlCommand("CHECKPOINT", c) { CommandTimeout = 0 };
            checkpoint.ExecuteNonQuery();
            Console.WriteLine($"database settled (VACUUM ANALYZE, CHECKPOINT) in {watch.Elapsed.TotalSeconds:F1} s");
        }
        catch (Npgsql.PostgresException ex) when (ex.SqlState == "42501")
        {
            Console.WriteLine($"database vacuumed and analysed in {watch.Elapsed.TotalSeconds:F1} s (no CHECKPOINT: the user may not; the first checkpoint falls in the run)");
        }
    }

    // An admin key only to read each node's /metrics between intervals (the GC and pool lines).
    private static string MetricsKey(string db)
    {
        using var store = BankStore.Open(db);
        return new ServerStore(store.Database).CreateKey("load-metrics", Role.Admin).Key;
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    private static Process StartServer(string db, int port, Dictionary<string, string> env)
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "warden.dll"));
        foreach (var a in new[] { "serve", "--db", db, "--urls", $"http://127.0.0.1:{port}" })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["Warden__RateLimitPerSecond"] = "1000000";
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        info.Environment["Warden__FloodMinMatches"] = "1000000000"; // every request takes the full match-and-record path
        foreach (var (name, value) in env)
        {
            info.Environment[name] = value; // e.g. DOTNET_EnableAVX512=0 on the servers only
        }

        var p = Process.Start(info)!;
        p.OutputDataReceived += (_, e) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine("server: " + e.Data); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static void WaitReady(HttpClient client, Process server)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromMinutes(10))
        {
            if (server.HasExited)
            {
                throw new InvalidOperationException("the server exited");
            }

            try
            {
                if (client.GetAsync("readyz").GetAwaiter().GetResult().IsSuccessStatusCode)
                {
                    Console.WriteLine($"server ready after {watch.Elapsed.TotalSeconds:F1} s (index loaded)");
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Thread.Sleep(200);
        }

        throw new TimeoutException("server not ready");
    }

    private static long Rss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    private static int PostmasterPid(string target)
    {
        try
        {
            using var c = new Npgsql.NpgsqlConnection(target);
            c.Open();
            using var cmd = new Npgsql.NpgsqlCommand("SELECT pg_backend_pid()", c);
            var backend = (int)cmd.ExecuteScalar()!;
            foreach (var line in File.ReadLines($"/proc/{backend}/status"))
            {
                if (line.StartsWith("PPid:", StringComparison.Ordinal))
                {
                    return int.Parse(line.AsSpan(5).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // Not on this machine (another host): its CPU is not counted.
        }

        return 0;
    }

    private static TimeSpan ProcessCpu(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return TimeSpan.FromMilliseconds((long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 10.0);
        }
        catch (IOException)
        {
            return TimeSpan.Zero;
        }
    }

    private readonly record struct Summary(int Count, long Errors, long Matched, double P50, double P90, double P99, double P999, double Max);

    private sealed class Stats
    {
        private readonly List<double> _latencies = new(1 << 16);
        private long _errors;
        private long _matched;

        public void Add(double ms, bool ok, bool matched)
        {
            lock (_latencies)
            {
                _latencies.Add(ms);
            }

            if (!ok)
            {
                Interlocked.Increment(ref _errors);
            }

            if (matched)
            {
                Interlocked.Increment(ref _matched);
            }
        }

        public Summary Take()
        {
            double[] copy;
            lock (_latencies)
            {
                copy = [.. _latencies];
                _latencies.Clear();
            }

            var errors = Interlocked.Exchange(ref _errors, 0);
            var matched = Interlocked.Exchange(ref _matched, 0);
            if (copy.Length == 0)
            {
                return new Summary(0, errors, matched, 0, 0, 0, 0, 0);
            }

            Array.Sort(copy);
            double P(double q) => copy[Math.Min(copy.Length - 1, (int)(q * copy.Length))];
            return new Summary(copy.Length, errors, matched, P(0.5), P(0.9), P(0.99), P(0.999), copy[^1]);
        }
    }

    private static async Task<(bool Ok, bool Matched, int Node)> SendAsync(Target target, byte[] image)
    {
        var (client, path, node) = target.Next();
        try
        {
            // ByteArrayContent sends the image's own array (no copy); the header is added unparsed, and the answer
            // is read into a pooled buffer and searched as UTF-8 rather than decoded into a string.
            using var content = new ByteArrayContent(image);
            content.Headers.TryAddWithoutValidation("Content-Type", "image/jpeg");
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            var stream = await response.Content.ReadAsStreamAsync().ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
                try
                {
                    // Bodies are a few hundred bytes; a longer one grows the (pooled) buffer.
                    var n = 0;
                    int read;
                    while ((read = await stream.ReadAsync(buffer.AsMemory(n)).ConfigureAwait(false)) > 0)
                    {
                        n += read;
                        if (n == buffer.Length)
                        {
                            var bigger = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                            buffer.AsSpan(0, n).CopyTo(bigger);
                            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                            buffer = bigger;
                        }
                    }

                    return (response.IsSuccessStatusCode, buffer.AsSpan(0, n).IndexOf("\"matched\":true"u8) >= 0, node);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (HttpRequestException)
        {
            return (false, false, node);
        }
        catch (TaskCanceledException)
        {
            return (false, false, node);
        }
    }

    private static void Report(string label, Stats stats, TimeSpan elapsed, Target target)
    {
        var s = stats.Take();
        Console.WriteLine($"{label,8}  {s.Count / elapsed.TotalSeconds,7:F1} req/s  p50 {s.P50,6:F1} ms  p99 {s.P99,7:F1} ms  p99.9 {s.P999,7:F1} ms  max {s.Max,7:F1} ms  errors {s.Errors}  matched {s.Matched}  server RSS {target.RssText()}");
        if (target.Clients.Length > 1)
        {
            Console.WriteLine("          by node: " + string.Join("; ", target.NodeStats.Select((n, i) => n.Take() is var t ? $"{i + 1}: p50 {t.P50:F1} p99 {t.P99:F1} max {t.Max:F1} ms" : string.Empty)));
        }

        target.Probe?.Print();
    }

    private static void Total(string what, Summary o, TimeSpan elapsed, Target target, (TimeSpan Servers, TimeSpan Postgres, TimeSpan Client) cpu0)
    {
        target.Probe?.Flush();
        var (servers, postgres, client) = target.Cpu();
        var n = Math.Max(1, o.Count);
        var pg = target.Postmaster > 0 ? $" + PostgreSQL {(postgres - cpu0.Postgres).TotalMicroseconds / n:F0} µs" : string.Empty;
        Console.WriteLine($"{what}: {o.Count} requests in {elapsed.TotalSeconds:F1} s = {o.Count / elapsed.TotalSeconds:F1} req/s; p50 {o.P50:F1} ms, p90 {o.P90:F1} ms, p99 {o.P99:F1} ms, p99.9 {o.P999:F1} ms, max {o.Max:F1} ms; errors {o.Errors}; matched {o.Matched}");
        Console.WriteLine($"{what} CPU per request: servers {(servers - cpu0.Servers).TotalMicroseconds / n:F0} µs{pg}; load generator {(client - cpu0.Client).TotalMicroseconds / n:F0} µs; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    }

    /// <summary>Open loop at <paramref name="rate"/>: returns the whole run's summary.</summary>
    private static Summary RunOpen(Target target, byte[][] images, double rate, int seconds, int interval, int rssBaseline, bool quiet)
    {
        var stats = new Stats();
        var overall = new Stats();
        var total = (long)(rate * seconds);
        var cpu0 = target.Cpu();
        var start = Stopwatch.GetTimestamp();
        var nextReport = (double)interval;
        var lastReport = Stopwatch.GetTimestamp();
        long inflight = 0;
        using var drained = new ManualResetEventSlim(false);
        long? rssStart = null;
        var rssStartAt = 0.0;
        for (long i = 0; i < total; i++)
        {
            var due = i / rate;
            while (true)
            {
                var now = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (now >= nextReport)
                {
                    if (!quiet)
                    {
                        Report($"{nextReport:F0} s", stats, Stopwatch.GetElapsedTime(lastReport), target);
                    }
                    else
                    {
                        stats.Take();
                    }

                    if (rssStart is null && now >= Math.Min(rssBaseline, seconds / 2.0))
                    {
                        // After the warm-up minutes: the index, pools and JIT are in; growth from here is what leaks.
                        rssStart = target.TotalRss();
                        rssStartAt = now;
                    }

                    lastReport = Stopwatch.GetTimestamp();
                    nextReport += interval;
                }

                if (now >= due)
                {
                    break;
                }

                Thread.Sleep(TimeSpan.FromSeconds(Math.Min(0.002, due - now)));
            }

            var scheduled = start + (long)(due * Stopwatch.Frequency);
            var image = images[i % images.Length];
            Interlocked.Increment(ref inflight);

            // No list of tasks: a 30-minute soak is over half a million requests.
            _ = Task.Run(async () =>
            {
                var (ok, matched, node) = await SendAsync(target, image).ConfigureAwait(false);
                var ms = Stopwatch.GetElapsedTime(scheduled).TotalMilliseconds; // from the scheduled start
                stats.Add(ms, ok, matched);
                if (!quiet && target.Clients.Length > 1)
                {
                    target.NodeStats[node].Add(ms, ok, matched);
                }

                overall.Add(ms, ok, matched);
                if (Interlocked.Decrement(ref inflight) == 0)
                {
                    drained.Set();
                }
            });
        }

        while (Interlocked.Read(ref inflight) > 0)
        {
            drained.Wait(100);
            drained.Reset();
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        var o = overall.Take();
        if (!quiet)
        {
            Report($"{elapsed.TotalSeconds:F0} s", stats, Stopwatch.GetElapsedTime(lastReport), target);
            Total("TOTAL", o, elapsed, target, cpu0);
            var rssEnd = target.TotalRss();
            if (rssStart is { } a && a > 0)
            {
                Console.WriteLine($"RSS (all nodes): {a / 1048576.0:F0} MiB at {rssStartAt:F0} s -> {rssEnd / 1048576.0:F0} MiB at the end ({elapsed.TotalSeconds:F0} s): growth {100.0 * (rssEnd - a) / a:+0.0;-0.0} %");
            }
        }

        return o;
    }

    private static void RunClosed(Target target, byte[][] images, int connections, int seconds, int interval, bool quiet)
    {
        var stats = new Stats();
        var overall = new Stats();
        var cpu0 = target.Cpu();
        var stop = Stopwatch.GetTimestamp() + (long)(seconds * (double)Stopwatch.Frequency);
        var counter = 0;
        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < stop)
            {
                var image = images[Interlocked.Increment(ref counter) % images.Length];
                var t = Stopwatch.GetTimestamp();
                var (ok, matched, node) = await SendAsync(target, image).ConfigureAwait(false);
                var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                stats.Add(ms, ok, matched);
                if (!quiet && target.Clients.Length > 1)
                {
                    target.NodeStats[node].Add(ms, ok, matched);
                }

                overall.Add(ms, ok, matched);
            }
        })).ToArray();
        var start = Stopwatch.GetTimestamp();
        var last = start;
        while (!Task.WaitAll(workers, interval * 1000))
        {
            if (!quiet)
            {
                Report($"{Stopwatch.GetElapsedTime(start).TotalSeconds:F0} s", stats, Stopwatch.GetElapsedTime(last), target);
            }

            last = Stopwatch.GetTimestamp();
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        var o = overall.Take();
        if (!quiet)
        {
            Total("TOTAL", o, elapsed, target, cpu0);
        }
    }

    /// <summary>
    /// A short open-loop ramp: from <paramref name="start"/> req/s up by a quarter per step of
    /// <paramref name="step"/> s until a step's p99 exceeds the budget (or errors), or down by 40 % while
    /// it does, then bisects twice between the last pass and the first failure. Prints the highest passing rate.
    /// </summary>
    private static void FindMax(Target target, byte[][] images, double start, int step, double budget)
    {
        Console.WriteLine($"\n== find-max: open-loop steps of {step} s, p99 ≤ {budget} ms and no errors, {target.Clients.Length} node(s)");
        var pass = 0.0;
        var fail = double.PositiveInfinity;
        var rate = start;
        bool Try(double r)
        {
            var s = RunOpen(target, images, r, step, step * 2, int.MaxValue, quiet: true);
            var ok = s.Errors == 0 && s.P99 <= budget;
            Console.WriteLine($"  {r,7:F0} req/s: p50 {s.P50,6:F1} ms  p99 {s.P99,7:F1} ms  p99.9 {s.P999,7:F1} ms  errors {s.Errors}  RSS {target.RssText()}  -> {(ok ? "holds" : "over")}");
            Thread.Sleep(2000); // let a failed step's queue drain before the next
            return ok;
        }

        for (var i = 0; i < 12 && double.IsPositiveInfinity(fail); i++)
        {
            if (Try(rate))
            {
                pass = rate;
                rate *= 1.25;
            }
            else
            {
                fail = rate;
            }
        }

        // The start was already too fast: down by 40 % a step until one holds.
        for (var i = 0; i < 6 && pass == 0; i++)
        {
            rate = Math.Max(1, Math.Round(fail * 0.6));
            if (Try(rate))
            {
                pass = rate;
            }
            else
            {
                fail = rate;
            }
        }

        for (var i = 0; i < 2 && !double.IsPositiveInfinity(fail) && pass > 0; i++)
        {
            var mid = Math.Round((pass + fail) / 2);
            if (Try(mid))
            {
                pass = mid;
            }
            else
            {
                fail = mid;
            }
        }

        Console.WriteLine(pass > 0
            ? $"FIND-MAX: {pass:F0} req/s holds p99 ≤ {budget} ms on {target.Clients.Length} node(s) ({(double.IsPositiveInfinity(fail) ? "no step failed" : $"{fail:F0} req/s did not")}); load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"
            : $"FIND-MAX: no rate from {start:F0} down to {fail:F0} req/s held p99 ≤ {budget} ms on {target.Clients.Length} node(s) (a busy machine?); load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
    }
}
