using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using NetVips;
using Warden.FakeCyberTipline;
using Warden.Review;
using Warden.Review.Storage;

namespace Warden.Cli;

/// <summary><c>warden review</c>: moving a legacy review file into the database, and demo helpers for the review console.</summary>
internal static class ReviewCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1.", DefaultValueFactory = _ => 8091 };
        var fake = new Command("fake-cybertipline", "Run the bundled fake of NCMEC's CyberTipline API on 127.0.0.1 (for demos; it keeps what it receives in memory).\n\n" +
            "Point the server at it: Warden__Review__CyberTipline__TestUrl=http://127.0.0.1:8091/ispws/ with user warden-test / warden-test-password.")
        {
            port,
        };
        fake.SetAction(async (p, ct) =>
        {
            await using var server = await FakeCyberTiplineServer.StartAsync(new FakeCyberTiplineOptions { Port = p.GetValue(port) }, ct).ConfigureAwait(false);
            output.WriteLine($"fake CyberTipline at {server.BaseUri} (user {server.Username}, password {server.Password}); Ctrl+C stops it");
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            foreach (var r in server.Reports)
            {
                output.WriteLine($"received report {r.ReportId}: {r.State}, {r.Files.Count} file(s)");
            }

            return WardenCli.Ok;
        });

        var migrate = Migrate(output, error);

        var url = new Option<string>("--url") { Description = "The running server.", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var key = new Option<string>("--key") { Description = "An admin API key (warden key create --role admin).", Required = true };
        var seed = new Command("seed-demo", "Create a demo case on a running server from benign synthetic images: a bank 'demo-known' with three of them, then uploads of those (one re-encoded, a near-duplicate) by uploader 'demo-user'.")
        {
            url, key,
        };
        seed.SetAction(async (p, ct) =>
        {
            using var http = new HttpClient { BaseAddress = new Uri(p.GetRequiredValue(url).TrimEnd('/') + "/") };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", p.GetRequiredValue(key));
            var bank = await http.PostAsJsonAsync("v1/banks", new { name = "demo-known", kind = "block", description = "Demo: benign synthetic images" }, ct).ConfigureAwait(false);
            if (!bank.IsSuccessStatusCode && bank.StatusCode != System.Net.HttpStatusCode.Conflict)
            {
                error.WriteLine($"warden: cannot create the bank: {(int)bank.StatusCode} {await bank.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
                return WardenCli.SomeFailed;
            }

            string[] classes = ["A1", "B1", "B2"];
            var pdqs = new List<string>();
            for (var i = 0; i < 3; i++)
            {
                using var hash = await http.PostAsync("v1/hash", new ByteArrayContent(DemoImage(i, 90)), ct).ConfigureAwait(false);
                var pdq = JsonDocument.Parse(await hash.Content.ReadAsStringAsync(ct).ConfigureAwait(false)).RootElement.GetProperty("pdq").GetProperty("hash").GetString()!;
                pdqs.Add(pdq);
                using var entry = await http.PostAsJsonAsync("v1/banks/demo-known/entries", new { signal_type = "pdq", signal = pdq, labels = new Dictionary<string, string> { ["classification"] = classes[i] } }, ct).ConfigureAwait(false);
                if (!entry.IsSuccessStatusCode && entry.StatusCode != System.Net.HttpStatusCode.Conflict)
                {
                    error.WriteLine($"warden: cannot add an entry: {(int)entry.StatusCode} {await entry.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
                    return WardenCli.SomeFailed;
                }
            }

            // The live index polls storage for new entries: wait until all three match (at most 30 s).
            for (var tries = 0; tries < 300; tries++)
            {
                var indexed = 0;
                foreach (var pdq in pdqs)
                {
                    var r = JsonDocument.Parse(await http.GetStringAsync($"v1/match?signal_type=pdq&signal={pdq}", ct).ConfigureAwait(false));
                    indexed += r.RootElement.GetProperty("matched").GetBoolean() ? 1 : 0;
                }

                if (indexed == pdqs.Count)
                {
                    break;
                }

                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            var uploads = new (int Seed, int Quality)[] { (0, 90), (0, 60), (1, 90), (2, 85) };
            var n = 0;
            foreach (var (s, q) in uploads)
            {
                var query = $"v1/match?uploader_id=demo-user&uploader_ip=192.0.2.{10 + n}&content_url=https://example.org/p/{n}&uploaded_at={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(-10 + n).ToString("O", CultureInfo.InvariantCulture))}&file_name=photo{n}.jpg";
                using var m = await http.PostAsync(query, new ByteArrayContent(DemoImage(s, q)), ct).ConfigureAwait(false);
                if (!m.IsSuccessStatusCode)
                {
                    error.WriteLine($"warden: upload {n} failed: {(int)m.StatusCode} {await m.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
                    return WardenCli.SomeFailed;
                }

                var matched = JsonDocument.Parse(await m.Content.ReadAsStringAsync(ct).ConfigureAwait(false)).RootElement.GetProperty("matched").GetBoolean();
                output.WriteLine($"upload {n}: {(matched ? "matched" : "no match")}");
                n++;
            }

            output.WriteLine($"demo case seeded; open {http.BaseAddress}review");
            return WardenCli.Ok;
        });

        return new Command("review", "Review state: move a legacy review file into the database; the bundled fake CyberTipline and a demo case.") { migrate, fake, seed };
    }

    /// <summary><c>warden review migrate</c>: moves NAME.review.db (Warden before one persistence) into --db.</summary>
    private static Command Migrate(TextWriter output, TextWriter error)
    {
        var db = CommonOptions.Db();
        var from = new Option<string?>("--from") { Description = "The legacy review file. Default: NAME.review.db beside a SQLite --db; DATABASE.review.db in the working folder for PostgreSQL." };
        var migrate = new Command("migrate", "Move the review state of an older Warden (NAME.review.db: cases, users, sessions, audit log, evidence catalogue, report outbox) into the configured database, SQLite or PostgreSQL. Verifies the audit chain before and after, then renames the old file to *.migrated.\n\nExample:\n  warden review migrate --db postgres://warden@db/warden --from warden.review.db")
        {
            db, from,
        };
        migrate.SetAction(p => CommonOptions.Guarded(error, () =>
        {
            // The target is the database the server already uses: a mistyped --db must not become a new one.
            var target = p.GetRequiredValue(db);
            if (DatabaseGuard.Refuse(target, error) is { } refused)
            {
                return refused;
            }

            var legacy = p.GetValue(from) ?? LegacyReviewFile.PathFor(target);
            if (!File.Exists(legacy))
            {
                error.WriteLine($"warden: no legacy review file at {Path.GetFullPath(legacy)}; nothing to move (pass --from).");
                return WardenCli.NoDatabase;
            }

            using var database = ReviewDatabase.Open(target);
            var result = LegacyReviewFile.Migrate(legacy, database);
            foreach (var (table, rows) in result.Rows)
            {
                output.WriteLine($"{table}\t{rows.ToString(CultureInfo.InvariantCulture)}");
            }

            error.WriteLine($"warden: moved the review state into {database.DisplayName}; audit chain verified ({result.Audit.RecordsChecked.ToString(CultureInfo.InvariantCulture)} records). The old file is kept as {result.MovedTo}.");
            return WardenCli.Ok;
        }));
        return migrate;
    }

    /// <summary>A benign synthetic picture: smooth random colour blobs (no people, nothing real).</summary>
    internal static byte[] DemoImage(int seed, int quality)
    {
        using var small = Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed)
            .Bandjoin(Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 1000), Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 2000));
        using var stretched = small.Resize(640 / 16.0, vscale: 480 / 12.0, kernel: Enums.Kernel.Cubic);
        using var rgb = stretched.Cast(Enums.BandFormat.Uchar);
        return rgb.JpegsaveBuffer(q: quality);
    }
}
