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
/// recorded), from a separate server process on loopback. Two modes: a fixed request rate (open loop; latency
/// counted from each request's scheduled start, so a stalled server cannot hide its queueing) and a closed
/// loop with N connections (the most it sustains). Prints per-interval rate, p99 and the server's RSS.
/// </summary>
internal static partial class LoadCommand
{
    public static int Run(string[] args)
    {
        var entries = 1_000_000;
        var seconds = 60;
        var rate = 300.0;
        var connections = 16;
        var imageCount = 64;
        var dir = Path.Combine(Path.GetTempPath(), "warden-load");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--entries": entries = ParseCount(args[++i]); break;
                case "--duration": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rate": rate = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--connections": connections = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--images": imageCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--dir": dir = args[++i]; break;
                default: Console.Error.WriteLine($"load: unknown option {args[i]}"); return 2;
            }
        }

        Directory.CreateDirectory(dir);
        var images = Enumerable.Range(0, imageCount).Select(Jpeg).ToArray();
        Console.WriteLine($"images: {images.Length} JPEGs, 640x480, mean {images.Average(b => b.Length) / 1024:F0} KiB");
        var db = Path.Combine(dir, $"load-{entries}.db");
        var key = Prepare(db, entries, images);
        var port = FreePort();
        using var server = StartServer(db, port);
        try
        {
            using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(connections, 64), PooledConnectionLifetime = TimeSpan.FromMinutes(30) };
            using var client = new HttpClient(handler) { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            WaitReady(client, server);
            Console.WriteLine($"server pid {server.Id}: ready, RSS {Rss(server.Id) / 1048576.0:F0} MiB");

            Console.WriteLine("warm-up 5 s ...");
            RunClosed(client, images, connections, 5, server.Id, quiet: true);
            if (rate > 0)
            {
                Console.WriteLine($"\n== fixed rate {rate:F0} req/s for {seconds} s (open loop)");
                RunOpen(client, images, rate, seconds, server.Id);
            }

            Console.WriteLine($"\n== closed loop, {connections} connections, {Math.Min(seconds, 30)} s (the most it sustains)");
            RunClosed(client, images, connections, Math.Min(seconds, 30), server.Id, quiet: false);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }

        return 0;
    }

    private static int ParseCount(string s) => s.EndsWith('m') ? int.Parse(s[..^1], CultureInfo.InvariantCulture) * 1_000_000
        : s.EndsWith('k') ? int.Parse(s[..^1], CultureInfo.InvariantCulture) * 1000 : int.Parse(s, CultureInfo.InvariantCulture);

    // Photo-like content: a small random image blown up smoothly (blobs), plus grain; q85 is ~100 KB.
    private static byte[] Jpeg(int seed)
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

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    private static Process StartServer(string db, int port)
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
        while (watch.Elapsed < TimeSpan.FromMinutes(5))
        {
            if (server.HasExited)
            {
                throw new InvalidOperationException("the server exited");
            }

            try
            {
                if (client.GetAsync("readyz").GetAwaiter().GetResult().IsSuccessStatusCode)
                {
                    Console.WriteLine($"server ready after {watch.Elapsed.TotalSeconds:F1} s (index built from the database)");
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

    private sealed class Stats
    {
        private readonly List<double> _latencies = new(1 << 20);
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

        public (int Count, long Errors, long Matched, double P50, double P90, double P99, double P999, double Max) Take()
        {
            List<double> copy;
            lock (_latencies)
            {
                copy = [.. _latencies];
                _latencies.Clear();
            }

            var errors = Interlocked.Exchange(ref _errors, 0);
            var matched = Interlocked.Exchange(ref _matched, 0);
            if (copy.Count == 0)
            {
                return (0, errors, matched, 0, 0, 0, 0, 0);
            }

            copy.Sort();
            double P(double q) => copy[Math.Min(copy.Count - 1, (int)(q * copy.Count))];
            return (copy.Count, errors, matched, P(0.5), P(0.9), P(0.99), P(0.999), copy[^1]);
        }
    }

    private static async Task<(bool Ok, bool Matched)> SendAsync(HttpClient client, byte[] image)
    {
        try
        {
            using var content = new ByteArrayContent(image);
            content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
            using var response = await client.PostAsync("v1/match", content).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            return (response.IsSuccessStatusCode, body.Contains("\"matched\":true", StringComparison.Ordinal));
        }
        catch (HttpRequestException)
        {
            return (false, false);
        }
        catch (TaskCanceledException)
        {
            return (false, false);
        }
    }

    private static void Report(string label, Stats stats, TimeSpan elapsed, int pid, List<(int Count, long Errors, long Matched, double P50, double P90, double P99, double P999, double Max)>? all)
    {
        var s = stats.Take();
        all?.Add(s);
        Console.WriteLine($"{label,8}  {s.Count / elapsed.TotalSeconds,7:F1} req/s  p50 {s.P50,6:F1} ms  p99 {s.P99,6:F1} ms  max {s.Max,7:F1} ms  errors {s.Errors}  matched {s.Matched}  server RSS {Rss(pid) / 1048576.0:F0} MiB");
    }

    private static void RunOpen(HttpClient client, byte[][] images, double rate, int seconds, int pid)
    {
        var stats = new Stats();
        var overall = new Stats();
        var total = (int)(rate * seconds);
        var start = Stopwatch.GetTimestamp();
        var inflight = new List<Task>(total);
        var nextReport = 10.0;
        var lastReport = Stopwatch.GetTimestamp();
        for (var i = 0; i < total; i++)
        {
            var due = i / rate;
            while (true)
            {
                var now = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (now >= nextReport)
                {
                    Report($"{nextReport:F0} s", stats, Stopwatch.GetElapsedTime(lastReport), pid, null);
                    lastReport = Stopwatch.GetTimestamp();
                    nextReport += 10;
                }

                if (now >= due)
                {
                    break;
                }

                Thread.Sleep(TimeSpan.FromSeconds(Math.Min(0.002, due - now)));
            }

            var scheduled = start + (long)(due * Stopwatch.Frequency);
            var image = images[i % images.Length];
            inflight.Add(Task.Run(async () =>
            {
                var (ok, matched) = await SendAsync(client, image).ConfigureAwait(false);
                var ms = Stopwatch.GetElapsedTime(scheduled).TotalMilliseconds; // from the scheduled start
                stats.Add(ms, ok, matched);
                overall.Add(ms, ok, matched);
            }));
        }

        Task.WaitAll(inflight);
        var elapsed = Stopwatch.GetElapsedTime(start);
        Report($"{elapsed.TotalSeconds:F0} s", stats, Stopwatch.GetElapsedTime(lastReport), pid, null);
        var o = overall.Take();
        Console.WriteLine($"TOTAL: {o.Count} requests in {elapsed.TotalSeconds:F1} s = {o.Count / elapsed.TotalSeconds:F1} req/s; p50 {o.P50:F1} ms, p90 {o.P90:F1} ms, p99 {o.P99:F1} ms, p99.9 {o.P999:F1} ms, max {o.Max:F1} ms; errors {o.Errors}; matched {o.Matched}");
    }

    private static void RunClosed(HttpClient client, byte[][] images, int connections, int seconds, int pid, bool quiet)
    {
        var stats = new Stats();
        var overall = new Stats();
        var stop = Stopwatch.GetTimestamp() + (long)(seconds * (double)Stopwatch.Frequency);
        var counter = 0;
        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < stop)
            {
                var image = images[Interlocked.Increment(ref counter) % images.Length];
                var t = Stopwatch.GetTimestamp();
                var (ok, matched) = await SendAsync(client, image).ConfigureAwait(false);
                var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                stats.Add(ms, ok, matched);
                overall.Add(ms, ok, matched);
            }
        })).ToArray();
        var start = Stopwatch.GetTimestamp();
        var last = start;
        while (!Task.WaitAll(workers, 10_000))
        {
            if (!quiet)
            {
                Report($"{Stopwatch.GetElapsedTime(start).TotalSeconds:F0} s", stats, Stopwatch.GetElapsedTime(last), pid, null);
            }

            last = Stopwatch.GetTimestamp();
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        var o = overall.Take();
        if (!quiet)
        {
            Console.WriteLine($"TOTAL: {o.Count} requests in {elapsed.TotalSeconds:F1} s = {o.Count / elapsed.TotalSeconds:F1} req/s; p50 {o.P50:F1} ms, p90 {o.P90:F1} ms, p99 {o.P99:F1} ms, p99.9 {o.P999:F1} ms, max {o.Max:F1} ms; errors {o.Errors}; matched {o.Matched}");
        }
    }
}
