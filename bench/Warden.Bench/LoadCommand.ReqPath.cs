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
        var variants = "full,noprov,nodihedral,hash,health";
        var intake = true;
        var dir = Path.Combine(Path.GetTempPath(), "warden-load");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--entries": entries = ParseCount(args[++i]); break;
                case "--duration": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--connections": connections = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--variants": variants = args[++i]; break;
                case "--intake": intake = args[++i] != "off"; break;
                case "--dir": dir = args[++i]; break;
                default: Console.Error.WriteLine($"reqpath: unknown option {args[i]}"); return 2;
            }
        }

        // The server inherits this process's environment, so DOTNET_EnableAVX512=0 here holds there too.
        Console.WriteLine($"this runtime: Vector512 accelerated {Vector512.IsHardwareAccelerated}, Avx512F {System.Runtime.Intrinsics.X86.Avx512F.IsSupported}, Vector256 {Vector256.IsHardwareAccelerated}; DOTNET_EnableAVX512={Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") ?? "(unset)"} (.NET 10 reads this knob; DOTNET_EnableAVX512F is ignored)");
        Directory.CreateDirectory(dir);
        var images = Enumerable.Range(0, 64).Select(Jpeg).ToArray();
        var db = Path.Combine(dir, $"load-{entries}.db");
        var key = Prepare(db, entries, images);
        var port = FreePort();
        var isaFile = Path.Combine(dir, $"jit-{Environment.ProcessId}.txt");
        using var server = StartReqPathServer(db, port, intake, isaFile);
        try
        {
            using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(connections, 64), PooledConnectionLifetime = TimeSpan.FromMinutes(30), UseProxy = false, UseCookies = false, AllowAutoRedirect = false };
            using var client = new HttpClient(handler) { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            WaitReady(client, server);
            // Warm-up long enough for tiered compilation to finish: under a 5 s warm-up a profile still showed 11 % of
            // the server's CPU in the JIT.
            Closed(client, images, "v1/match", connections, warmup, server.Id);
            Console.WriteLine($"server ISA (from its JIT): {ServerIsa(isaFile)}");
            Console.WriteLine($"case intake {(intake ? "on" : "off")}, {entries:N0} entries, {connections} connections, {seconds} s a variant, load average {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine($"{"variant",-11} {"req/s",8} {"p50 ms",7} {"p99 ms",7} {"server CPU µs/req",18} {"client CPU µs/req",18} {"errors",6}");
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
                var r = Closed(client, images, path, connections, seconds, server.Id);
                Console.WriteLine($"{variant,-11} {r.Rate,8:F1} {r.P50,7:F1} {r.P99,7:F1} {r.ServerCpuUs,18:F0} {r.ClientCpuUs,18:F0} {r.Errors,6}");
            }
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            File.Delete(isaFile);
        }

        return 0;
    }

    private static Process StartReqPathServer(string db, int port, bool intake, string isaFile)
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "warden.dll"));
        foreach (var a in new[] { "serve", "--db", db, "--urls", $"http://127.0.0.1:{port}" })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["Warden__RateLimitPerSecond"] = "1000000";
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        info.Environment["Warden__FloodMinMatches"] = "1000000000";
        info.Environment["Warden__Review__CaseIntake"] = intake ? "true" : "false";

        // The JIT names the instruction sets it compiled for in a disassembly header: proof of what the server ran.
        info.Environment["DOTNET_JitStdOutFile"] = isaFile;
        info.Environment["DOTNET_JitDisasm"] = "Dct64To16";
        info.Environment["DOTNET_JitDisasmSummary"] = "0";
        var p = Process.Start(info)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine("server: " + e.Data); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

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

    private static (double Rate, double P50, double P99, double ServerCpuUs, double ClientCpuUs, long Errors) Closed(HttpClient client, byte[][] images, string path, int connections, int seconds, int pid)
    {
        var stats = new Stats();
        var get = path == "healthz";
        var counter = 0;
        var ticks0 = ServerCpuTicks(pid);
        var client0 = Process.GetCurrentProcess().TotalProcessorTime;
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
        var s = stats.Take();
        var n = Math.Max(1, s.Count);
        return (s.Count / elapsed, s.P50, s.P99, ticks * 1e6 / ClockTicksPerSecond / n, clientCpu / n, s.Errors);
    }

    // USER_HZ: 100 on every Linux build .NET runs on (sysconf(_SC_CLK_TCK)).
    private const double ClockTicksPerSecond = 100;
}
