using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NetVips;
using Warden.Review;
using Warden.Review.Users;
using Warden.Server;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;

namespace Warden.Bench;

/// <summary>
/// `console [--uploads N]`: what the review console adds to <c>warden serve</c>: latency of a matched upload
/// (100 KB JPEG) with no review intake (no hit), with intake into a case (signals only) and with evidence
/// preservation (sealed into the vault); the start-up replay of the case log; one password hash (login).
/// </summary>
internal static class ConsoleCommand
{
    public static int Run(string[] args)
    {
        var uploads = args.SkipWhile(a => a != "--uploads").Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(300);
        var sw = Stopwatch.StartNew();
        PasswordHashing.Hash("bench password 12345");
        Console.WriteLine($"password hash (PBKDF2-SHA256, 600k iterations): {sw.Elapsed.TotalMilliseconds:F0} ms");
        foreach (var preserve in new[] { false, true })
        {
            RunAsync(uploads, preserve).GetAwaiter().GetResult();
        }

        return 0;
    }

    private static async Task RunAsync(int uploads, bool preserve)
    {
        var dir = Directory.CreateTempSubdirectory("warden-console-bench-").FullName;
        try
        {
            var app = WardenServer.Build(["--urls", "http://127.0.0.1:0"], o =>
            {
                o.Database = Path.Combine(dir, "warden.db");
                o.IndexPollMilliseconds = 100;
                o.FloodMinMatches = int.MaxValue; // one image uploaded over and over would be flood-quarantined
                o.Review.Database = Path.Combine(dir, "review.db");
                if (preserve)
                {
                    o.Review.EvidenceDirectory = Path.Combine(dir, "evidence");
                    o.Review.MasterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
                }
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using var http = new HttpClient { BaseAddress = new Uri(address.TrimEnd('/') + "/") };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Services.GetRequiredService<ServerStore>().CreateKey("bench", Role.Admin).Key);
            var known = Jpeg(1);
            var other = Jpeg(2);
            (await http.PostAsJsonAsync("v1/banks", new { name = "known" })).EnsureSuccessStatusCode();
            using (var h = await http.PostAsync("v1/hash", new ByteArrayContent(known)))
            {
                var pdq = JsonDocument.Parse(await h.Content.ReadAsStringAsync()).RootElement.GetProperty("pdq").GetProperty("hash").GetString();
                (await http.PostAsJsonAsync("v1/banks/known/entries", new { signal_type = "pdq", signal = pdq })).EnsureSuccessStatusCode();
            }

            await Task.Delay(1000);
            var miss = await Time(http, other, uploads, expectMatch: false);
            var hit = await Time(http, known, uploads, expectMatch: true);
            Console.WriteLine($"preservation {(preserve ? "on " : "off")}: {known.Length / 1024} KB JPEG, {uploads} sequential uploads: no hit p50 {miss.P50:F2} ms p99 {miss.P99:F2} ms; matched + case intake p50 {hit.P50:F2} ms p99 {hit.P99:F2} ms");
            await app.StopAsync();
            await app.DisposeAsync();

            // Start-up: replay of the case log (uploads events over uploads/10 uploaders).
            var options = new ServerOptions { Database = Path.Combine(dir, "warden.db") };
            options.Review.Database = Path.Combine(dir, "review.db");
            using var banks = BankStore.Open(options.Database);
            var sw = Stopwatch.StartNew();
            using var review = new ReviewService(options.Review, options.Database, banks, NullLogger<ReviewService>.Instance);
            Console.WriteLine($"start and read back every case ({review.Cases.Cases.Sum(c => c.ItemCount)} items, materialised from the database): {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<(double P50, double P99)> Time(HttpClient http, byte[] image, int n, bool expectMatch)
    {
        var times = new double[n];
        for (var i = 0; i < n; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using var r = await http.PostAsync($"v1/match?uploader_id=u{i % Math.Max(1, n / 10)}&uploader_ip=192.0.2.1", new ByteArrayContent(image));
            r.EnsureSuccessStatusCode();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (i == 0 && JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("matched").GetBoolean() != expectMatch)
            {
                throw new InvalidOperationException("unexpected match result");
            }
        }

        Array.Sort(times);
        return (times[n / 2], times[Math.Min(n - 1, (int)(n * 0.99))]);
    }

    private static byte[] Jpeg(int seed)
    {
        using var small = Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed)
            .Bandjoin(Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 1000), Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 2000));
        using var stretched = small.Resize(640 / 16.0, vscale: 480 / 12.0, kernel: Enums.Kernel.Cubic);
        using var grain = Image.Gaussnoise(640, 480, sigma: 10, mean: 0, seed: seed + 3000);
        using var grainy = stretched + grain;
        using var rgb = grainy.Cast(Enums.BandFormat.Uchar);
        return rgb.JpegsaveBuffer(q: 90);
    }
}
