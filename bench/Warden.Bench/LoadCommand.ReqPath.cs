using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.Intrinsics;

namespace Warden.Bench;

/// <summary>
/// <c>reqpath</c>: what one <c>POST /v1/match</c> costs the server in CPU time, not wall time (the machine is
/// shared, so wall time says more about the neighbours than about Warden). One server process on the load
/// bench's SQLite bank; each variant is a closed loop whose server CPU (utime + stime from /proc) is divided by
/// the requests it served. Variants switch stages off one at a time, so their differences are the stages' shares:
/// <c>full</c> (the load bench's request), <c>noprov</c> (provenance=false), <c>nodihedral</c> (dihedral=false:
/// one PDQ variant searched instead of 8), <c>hash</c> (POST /v1/hash?dihedral=true: no search, actions, records
/// or provenance), <c>health</c> (GET /healthz: the HTTP and auth floor without a body).
/// </summary>
internal static partial class LoadCommand
{
    public static int ReqPath(string[] args)
    {
        if (args.FirstOrDefault() == "stages")
        {
            return Stages(args[1..]);
        }

        var entries = 1_000_000;
        var seconds = 20;
        var warmup = 15;
        var connections = 16;
        var rounds = 0;
        var variants = "full,noprov,nodihedral,hash,health";
        var intake = true;
        string? postgres = null;
        string? bDll = null;
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        var bEnv = new Dictionary<string, string>(StringComparer.Ordinal);
        var dir = Path.Combine(Path.GetTempPath(), "warden-load");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--entries": entries = ParseCount(args[++i]); break;
                case "--duration": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--connections": connections = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--variants": variants = args[++i]; break;
                case "--intake": intake = args[++i] != "off"; break;
                case "--dir": dir = args[++i]; break;
                case "--postgres": postgres = args[++i]; break;
                case "--pg": return WithThrowawayPostgres("reqpath", args);
                case "--server-env" or "--b-env":
                    var which = args[i] == "--b-env" ? bEnv : env;
                    var kv = args[++i].Split('=', 2);
                    which[kv[0]] = kv.Length > 1 ? kv[1] : string.Empty;
                    break;
                case "--b-dll": bDll = Path.GetFullPath(args[++i]); break;
                default: Console.Error.WriteLine($"reqpath: unknown option {args[i]}"); return 2;
            }
        }

        // A second server (B) runs beside A when it differs by environment or build; the two are measured in
        // alternating rounds (A B, B A, ...) so both see the same minutes of a shared machine.
        var ab = bEnv.Count > 0 || bDll is not null;
        rounds = rounds > 0 ? rounds : ab ? 3 : 1;

        // The server inherits this process's environment, so DOTNET_EnableAVX512=0 here holds there too.
        Console.WriteLine($"this runtime: Vector512 accelerated {Vector512.IsHardwareAccelerated}, Avx512F {System.Runtime.Intrinsics.X86.Avx512F.IsSupported}, Vector256 {Vector256.IsHardwareAccelerated}; DOTNET_EnableAVX512={Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") ?? "(unset)"} (.NET 10 reads this knob; DOTNET_EnableAVX512F is ignored)");
        Directory.CreateDirectory(dir);
        var images = Enumerable.Range(0, 64).Select(Jpeg).ToArray();
        var db = postgres ?? Path.Combine(dir, $"load-{entries}.db");
        var key = Prepare(db, entries, images);
        var adminKey = MetricsKey(db);
        if (postgres is not null)
        {
            Settle(postgres);
        }

        var postmaster = postgres is null ? 0 : PostmasterPid(postgres);
        var servers = new List<ReqPathServer>();
        try
        {
            var isaFile = Path.Combine(dir, $"jit-{Environment.ProcessId}.txt");
            servers.Add(ReqPathServer.Start("A", null, db, intake, env, isaFile, connections, key));
            if (ab)
            {
                servers.Add(ReqPathServer.Start("B", bDll, db, intake, new Dictionary<string, string>(env.Concat(bEnv).GroupBy(kv => kv.Key).Select(g => g.Last()), StringComparer.Ordinal), null, connections, key));
                Console.WriteLine($"A: {Describe(null, env)}");
                Console.WriteLine($"B: {Describe(bDll, new Dictionary<string, string>(env.Concat(bEnv).GroupBy(kv => kv.Key).Select(g => g.Last()), StringComparer.Ordinal))}");
            }

            foreach (var s in servers)
            {
                WaitReady(s.Client, s.Process);

                // Warm-up long enough for tiered compilation to finish: under a 5 s warm-up a profile still showed 11 % of
                // the server's CPU in the JIT.
                Closed(s.Client, images, "v1/match", connections, warmup, s.Process.Id, 0);
            }

            Console.WriteLine($"server ISA (from its JIT): {ServerIsa(isaFile)}");
            File.Delete(isaFile);
            Console.WriteLine($"case intake {(intake ? "on" : "off")}, {(postgres is null ? "SQLite" : "PostgreSQL")}, {entries:N0} entries, {connections} connections, {seconds} s a variant, {rounds} round(s), load average {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine($"{"variant",-11} {"srv",3} {"req/s",8} {"p50 ms",7} {"p99 ms",7} {"server CPU µs/req",18} {"PG CPU µs/req",14} {"client CPU µs/req",18} {"alloc KiB/req",13} {"GCs/1k req (0/1/2)",19} {"errors",6}");
            var results = new Dictionary<(string Variant, string Server), List<double>>();
            foreach (var variant in variants.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var path = variant switch
                {
                    "full" => "v1/match",
                    "noprov" => "v1/match?provenance=false",
                    "nodihedral" => "v1/match?dihedral=false",
                    "hash" => "v1/hash?dihedral=true",
                    "health" => "healthz",
                    _ => throw new ArgumentException($"unknown variant {variant}"),
                };
                for (var round = 0; round < rounds; round++)
                {
                    var order = round % 2 == 0 ? servers : Enumerable.Reverse(servers);
                    foreach (var s in order)
                    {
                        var before = ScrapeMetrics(s.Client, adminKey);
                        var r = Closed(s.Client, images, path, connections, seconds, s.Process.Id, postmaster);
                        var after = ScrapeMetrics(s.Client, adminKey);
                        var n = Math.Max(1.0, r.Requests);
                        double D(string name, string? label = null) => before is null || after is null ? double.NaN : SumMetric(after, name, label) - SumMetric(before, name, label);
                        var alloc = D("dotnet_gc_heap_total_allocated") / 1024 / n;
                        var gcs = $"{D("dotnet_gc_collections", "\"gen0\"") * 1000 / n:F1}/{D("dotnet_gc_collections", "\"gen1\"") * 1000 / n:F1}/{D("dotnet_gc_collections", "\"gen2\"") * 1000 / n:F1}";
                        Console.WriteLine($"{variant,-11} {s.Name,3} {r.Rate,8:F1} {r.P50,7:F1} {r.P99,7:F1} {r.ServerCpuUs,18:F0} {(postmaster > 0 ? r.PostgresCpuUs.ToString("F0", CultureInfo.InvariantCulture) : "-"),14} {r.ClientCpuUs,18:F0} {alloc,13:F1} {gcs,19} {r.Errors,6}");
                        ListFor(results, (variant, s.Name)).Add(r.ServerCpuUs);
                    }
                }
            }

            if (ab || rounds > 1)
            {
                Console.WriteLine($"summary: server CPU µs per request, median of {rounds} round(s) (load average now {File.ReadAllText("/proc/loadavg").Trim()})");
                foreach (var variant in results.Keys.Select(k => k.Variant).Distinct())
                {
                    var a = Median(results[(variant, "A")]);
                    var line = $"  {variant,-11} A {a,7:F0}";
                    if (ab)
                    {
                        var b = Median(results[(variant, "B")]);
                        line += $"   B {b,7:F0}   B-A {b - a,+7:F0} ({(b - a) / a * 100:+0.0;-0.0} %)";
                    }

                    Console.WriteLine(line);
                }
            }
        }
        finally
        {
            foreach (var s in servers)
            {
                s.Dispose();
            }
        }

        return 0;
    }

    private static List<double> ListFor(Dictionary<(string, string), List<double>> d, (string, string) key)
    {
        if (!d.TryGetValue(key, out var list))
        {
            d[key] = list = [];
        }

        return list;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Describe(string? dll, Dictionary<string, string> env) =>
        (dll ?? Path.Combine(AppContext.BaseDirectory, "warden.dll")) + (env.Count == 0 ? " (default environment)" : " with " + string.Join(' ', env.Select(kv => kv.Key + "=" + kv.Value)));

    /// <summary>One server under test with its own client (connections are not shared between A and B).</summary>
    private sealed class ReqPathServer : IDisposable
    {
        private readonly SocketsHttpHandler _handler;

        private ReqPathServer(string name, Process process, SocketsHttpHandler handler, HttpClient client)
        {
            Name = name;
            Process = process;
            _handler = handler;
            Client = client;
        }

        public string Name { get; }

        public Process Process { get; }

        public HttpClient Client { get; }

        public static ReqPathServer Start(string name, string? dll, string db, bool intake, Dictionary<string, string> env, string? isaFile, int connections, string key)
        {
            var port = FreePort();
            var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(dll ?? Path.Combine(AppContext.BaseDirectory, "warden.dll"));
            foreach (var a in new[] { "serve", "--db", db, "--urls", $"http://127.0.0.1:{port}" })
            {
                info.ArgumentList.Add(a);
            }

            info.Environment["Warden__RateLimitPerSecond"] = "1000000";
            info.Environment["Logging__LogLevel__Default"] = "Warning";
            info.Environment["Warden__FloodMinMatches"] = "1000000000";
            info.Environment["Warden__Review__CaseIntake"] = intake ? "true" : "false";
            if (isaFile is not null)
            {
                // The JIT names the instruction sets it compiled for in a disassembly header: proof of what the server ran.
                info.Environment["DOTNET_JitStdOutFile"] = isaFile;
                info.Environment["DOTNET_JitDisasm"] = "Dct64To16";
                info.Environment["DOTNET_JitDisasmSummary"] = "0";
            }

            foreach (var (n, v) in env)
            {
                info.Environment[n] = v;
            }

            var p = Process.Start(info)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"server {name}: " + e.Data); } };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(connections, 64), PooledConnectionLifetime = TimeSpan.FromMinutes(30), UseProxy = false, UseCookies = false, AllowAutoRedirect = false };
            var client = new HttpClient(handler) { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return new ReqPathServer(name, p, handler, client);
        }

        public void Dispose()
        {
            try
            {
                Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            Process.Dispose();
            Client.Dispose();
            _handler.Dispose();
        }
    }

    /// <summary>The server's /metrics as name-with-labels → value (null when it cannot be read).</summary>
    private static Dictionary<string, double>? ScrapeMetrics(HttpClient client, string adminKey)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "metrics");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
            using var response = client.SendAsync(request).GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var line in response.Content.ReadAsStringAsync().GetAwaiter().GetResult().Split('\n'))
            {
                var space = line.LastIndexOf(' ');
                if (line.Length > 0 && line[0] != '#' && space > 0 && double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                {
                    values[line[..space]] = v;
                }
            }

            return values;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    private static double SumMetric(Dictionary<string, double> m, string name, string? label) =>
        m.Where(kv => (kv.Key.IndexOf('{', StringComparison.Ordinal) is var brace and >= 0 ? kv.Key[..brace] : kv.Key).EndsWith(name, StringComparison.Ordinal) && (label is null || kv.Key.Contains(label, StringComparison.Ordinal))).Sum(kv => kv.Value);

    private static string ServerIsa(string file)
    {
        try
        {
            var lines = File.ReadAllLines(file).Where(l => l.Contains("Emitting", StringComparison.Ordinal) || l.Contains("Tier1", StringComparison.Ordinal) || l.Contains("optimized code", StringComparison.Ordinal)).Distinct().ToList();
            var avx512 = File.ReadAllText(file).Contains("zmm", StringComparison.Ordinal);
            return (lines.Count == 0 ? "(no JIT header)" : string.Join(" | ", lines.Select(l => l.TrimStart(';', ' ')))) + (avx512 ? "; uses zmm registers" : "; no zmm registers");
        }
        catch (IOException)
        {
            return "(no JIT output)";
        }
    }

    private static long ServerCpuTicks(int pid)
    {
        // utime and stime (fields 14 and 15) in clock ticks; the command name (field 2) may hold spaces, so count after ')'.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private static (double Rate, double P50, double P99, double ServerCpuUs, double ClientCpuUs, double PostgresCpuUs, long Requests, long Errors) Closed(HttpClient client, byte[][] images, string path, int connections, int seconds, int pid, int postmaster)
    {
        var stats = new Stats();
        var get = path == "healthz";
        var counter = 0;
        var ticks0 = ServerCpuTicks(pid);
        var client0 = Process.GetCurrentProcess().TotalProcessorTime;
        var pg0 = postmaster > 0 ? IntakeCommand.ServerCpu(postmaster) : TimeSpan.Zero;
        var start = Stopwatch.GetTimestamp();
        var stop = start + (long)(seconds * (double)Stopwatch.Frequency);
        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < stop)
            {
                var image = images[Interlocked.Increment(ref counter) % images.Length];
                var t = Stopwatch.GetTimestamp();
                var ok = false;
                try
                {
                    if (get)
                    {
                        using var response = await client.GetAsync(path).ConfigureAwait(false);
                        ok = response.IsSuccessStatusCode;
                    }
                    else
                    {
                        using var content = new ByteArrayContent(image);
                        content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
                        using var response = await client.PostAsync(path, content).ConfigureAwait(false);
                        await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                        ok = response.IsSuccessStatusCode;
                    }
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException)
                {
                }

                stats.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds, ok, false);
            }
        })).ToArray();
        Task.WaitAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var ticks = ServerCpuTicks(pid) - ticks0;
        var clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - client0).TotalMicroseconds;
        var pgCpu = postmaster > 0 ? (IntakeCommand.ServerCpu(postmaster) - pg0).TotalMicroseconds : 0;
        var s = stats.Take();
        var n = Math.Max(1, s.Count);
        return (s.Count / elapsed, s.P50, s.P99, ticks * 1e6 / ClockTicksPerSecond / n, clientCpu / n, pgCpu / n, s.Count, s.Errors);
    }

    // USER_HZ: 100 on every Linux build .NET runs on (sysconf(_SC_CLK_TCK)).
    private const double ClockTicksPerSecond = 100;
}
