using System.Diagnostics;
using System.Globalization;
using Warden.Core.Hashing.Pdq;
using Warden.FakeCyberTipline;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Evidence;
using Warden.Review.Reporting;
using Warden.Review.Storage;

namespace Warden.Bench;

/// <summary>
/// `review [--items N]`: the review back end's costs: case clustering of a flood of near-identical images and of
/// many distinct groups, evidence vault seal+write and read+open of 256 KiB items, audit appends (fsync per
/// record) and chain verification, and end-to-end CyberTipline deliveries to the local fake server.
/// </summary>
internal static class ReviewCommand
{
    public static int Run(string[] args)
    {
        var items = args.SkipWhile(a => a != "--items").Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(100_000);
        var dir = Directory.CreateTempSubdirectory("warden-review-bench-").FullName;
        try
        {
            Clustering(items);
            Vault(dir).GetAwaiter().GetResult();
            Audit(dir);
            Delivery(dir).GetAwaiter().GetResult();
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }

        return 0;
    }

    private static PdqHash Random256(Random rng) => new((ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64());

    private static PdqHash Near(PdqHash h, Random rng) =>
        new(h.W0 ^ (1UL << rng.Next(64)), h.W1 ^ (1UL << rng.Next(64)), h.W2, h.W3);

    private static MatchedSubmission Item(int i, string uploader, PdqHash pdq) =>
        new($"s{i}", uploader, DateTimeOffset.UnixEpoch, pdq, new Dictionary<string, string>(), [], new UploadContext());

    private static void Clustering(int n)
    {
        var rng = new Random(1);
        var center = Random256(rng);
        var flood = Enumerable.Range(0, n).Select(i => Item(i, "u", Near(center, rng))).ToList();
        var sw = Stopwatch.StartNew();
        var b = new CaseBuilder();
        foreach (var s in flood)
        {
            b.Add(s);
        }

        Report($"cluster flood: {n:N0} near-identical items, 1 uploader → {b.Cases.Single().Clusters.Count} cluster", n, sw.Elapsed);

        foreach (var groups in new[] { 100, 1000 })
        {
            var centers = Enumerable.Range(0, groups).Select(_ => Random256(rng)).ToList();
            var distinct = Enumerable.Range(0, n).Select(i => Item(i, "u", Near(centers[i % groups], rng))).ToList();
            sw.Restart();
            var b2 = new CaseBuilder();
            foreach (var s in distinct)
            {
                b2.Add(s);
            }

            Report($"cluster groups: {n:N0} items in {groups:N0} groups, 1 uploader → {b2.Cases.Single().Clusters.Count} clusters", n, sw.Elapsed);
        }
    }

    private static async Task Vault(string dir)
    {
        var db = ReviewDatabase.Open(Path.Combine(dir, "vault.db"));
        var vault = new EvidenceVault(new FileSystemBlobStore(Path.Combine(dir, "vault")), new DbEvidenceCatalog(db), new VaultKeyRing(new Dictionary<string, byte[]> { ["k"] = new byte[32] }, "k"));
        var media = new byte[256 * 1024];
        new Random(2).NextBytes(media);
        const int n = 200;
        var ids = new List<string>();
        var actor = EvidenceActor.Component("bench");
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            ids.Add(await vault.StoreAsync(media, new Dictionary<string, string> { ["i"] = "x" }, null, actor));
        }

        Report($"vault store: {n} × 256 KiB (seal + fsync'd write + catalogue row)", n, sw.Elapsed);
        sw.Restart();
        foreach (var id in ids)
        {
            await vault.ReadAsync(id, new EvidenceAccess(actor, "bench"));
        }

        Report($"vault read: {n} × 256 KiB (read + open + view row)", n, sw.Elapsed);
    }

    private static void Audit(string dir)
    {
        var log = new AuditLog(new DbAuditStore(ReviewDatabase.Open(Path.Combine(dir, "audit.db"))));
        const int n = 2000;
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            log.Append(new AuditEntry("user:bench", "evidence.view", "evidence:x", new Dictionary<string, string> { ["purpose"] = "bench" }));
        }

        Report($"audit append: {n:N0} records (one transaction + fsync each)", n, sw.Elapsed);
        sw.Restart();
        var v = log.Verify();
        Report($"audit verify: {v.RecordsChecked:N0} records, ok={v.Ok}", (int)v.RecordsChecked, sw.Elapsed);
    }

    private static async Task Delivery(string dir)
    {
        await using var server = await FakeCyberTiplineServer.StartAsync(new FakeCyberTiplineOptions { Validate = false });
        var store = new DbDeliveryStore(ReviewDatabase.Open(Path.Combine(dir, "outbox.db")));
        var media = new MemoryMedia();
        using var client = new CyberTiplineClient(new CyberTiplineOptions { BaseUri = server.BaseUri, Username = server.Username, Password = server.Password });
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), media);
        const int reports = 50, files = 3;
        var report = new CyberTipReport(new IncidentSummary(CyberTipVocabulary.ChildPornography, DateTimeOffset.UtcNow.AddHours(-1)),
            new ReporterInfo(new CyberTipPerson(Emails: ["bench@example.com"])));
        var ids = new List<long>();
        for (var r = 0; r < reports; r++)
        {
            var list = new List<ReportFile>();
            for (var f = 0; f < files; f++)
            {
                var bytes = new byte[64 * 1024];
                new Random((r * 10) + f).NextBytes(bytes);
                media.Items[$"e{r}-{f}"] = bytes;
                list.Add(new ReportFile($"s{f}", $"e{r}-{f}", $"{f}.png", new CyberTipFile(FileViewedByEsp: false)));
            }

            ids.Add(CaseReportBuilder.EnqueueForNcmec(store, new ReportPackage($"case-{r}", report, list, []), CyberTiplineEnvironment.Test, DateTimeOffset.UtcNow).Id);
        }

        var sw = Stopwatch.StartNew();
        foreach (var id in ids)
        {
            await deliverer.DeliverAsync(id);
        }

        Report($"delivery: {reports} reports × {files} files of 64 KiB to the local fake (8 calls, 9 fsync'd saves per report)", reports, sw.Elapsed);
    }

    private static void Report(string what, int n, TimeSpan t) =>
        Console.WriteLine($"{what}: {t.TotalMilliseconds:N0} ms, {n / t.TotalSeconds:N0}/s, {t.TotalMicroseconds / n:N1} µs each");

    private sealed class MemoryMedia : IDeliveryMedia
    {
        public Dictionary<string, byte[]> Items { get; } = [];

        public Task<byte[]?> ReadAsync(string caseId, string evidenceRef, CancellationToken cancellationToken) =>
            Task.FromResult(Items.TryGetValue(evidenceRef, out var b) ? b : null);
    }
}
