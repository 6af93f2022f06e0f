using System.Collections.Concurrent;
using System.Globalization;
using System.Security;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Warden.Cli.Backfill;
using Warden.Core.Tests;
using Warden.Storage;

namespace Warden.Cli.Tests.Backfill;

/// <summary>
/// `warden backfill s3://BUCKET/PREFIX/` against an S3-compatible service on 127.0.0.1 (a small stand-in speaking
/// the two calls Warden makes, ListObjectsV2 with continuation tokens and GetObject, path-style, through the real
/// AWS SDK): every object under the prefix is listed across pages, read by a worker and logged once; an object over
/// the size limit and one deleted after listing are dead-lettered with the reason; objects outside the prefix and
/// "folder" keys are not queued.
/// </summary>
public sealed class S3BackfillTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-s3-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A bucket in memory served over HTTP, listing two keys per page so continuation is exercised.</summary>
    private sealed class FakeS3 : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private FakeS3(WebApplication app) => _app = app;

        public ConcurrentDictionary<string, byte[]> Objects { get; } = new(StringComparer.Ordinal);

        public ConcurrentBag<string> Requests { get; } = [];

        /// <summary>Serve objects as a broken or hostile service would: "etag" (not hex), "short" (body cut), "xml" (an error body that is not XML).</summary>
        public string? Broken { get; set; }

        public string Url => _app.Urls.First();

        public static async Task<FakeS3> StartAsync(string bucket)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var s3 = new FakeS3(app);
            app.Run(async context =>
            {
                var path = context.Request.Path.Value ?? "/";
                s3.Requests.Add(context.Request.Method + " " + path + context.Request.QueryString);
                var parts = path.TrimStart('/').Split('/', 2);
                if (parts[0] != bucket)
                {
                    await Error(context, 404, "NoSuchBucket");
                    return;
                }

                if (parts.Length == 1 || parts[1].Length == 0)
                {
                    await s3.ListAsync(context, bucket);
                    return;
                }

                var key = Uri.UnescapeDataString(parts[1]);
                if (!s3.Objects.TryGetValue(key, out var data))
                {
                    await Error(context, 404, "NoSuchKey");
                    return;
                }

                if (s3.Broken == "xml")
                {
                    context.Response.StatusCode = 500;
                    await context.Response.WriteAsync("<Error><Code>Internal");
                    return;
                }

                context.Response.ContentType = "application/octet-stream";
                context.Response.ContentLength = data.Length;
                context.Response.Headers.LastModified = "Mon, 01 Jan 2024 00:00:00 GMT";
                context.Response.Headers.ETag = s3.Broken == "etag" ? "\"e\"" : $"\"{Etag(data)}\"";
                if (s3.Broken == "short")
                {
                    await context.Response.Body.WriteAsync(data.AsMemory(0, data.Length / 2));
                    context.Abort(); // the connection ends before the declared length
                    return;
                }

                await context.Response.Body.WriteAsync(data);
            });
            await app.StartAsync();
            return s3;
        }

        private async Task ListAsync(HttpContext context, string bucket)
        {
            var q = context.Request.Query;
            var prefix = q["prefix"].ToString();
            var after = q["continuation-token"].ToString();
            var urlEncoded = q["encoding-type"] == "url";
            var keys = Objects.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal)
                .Where(k => after.Length == 0 || string.CompareOrdinal(k, after) > 0).ToList();
            var page = keys.Take(2).ToList();
            var truncated = keys.Count > 2;
            var xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
            xml.Append(CultureInfo.InvariantCulture, $"<Name>{bucket}</Name><Prefix>{SecurityElement.Escape(prefix)}</Prefix><KeyCount>{page.Count}</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>{(truncated ? "true" : "false")}</IsTruncated>");
            if (urlEncoded)
            {
                xml.Append("<EncodingType>url</EncodingType>");
            }

            foreach (var k in page)
            {
                var shown = urlEncoded ? Uri.EscapeDataString(k) : SecurityElement.Escape(k);
                xml.Append(CultureInfo.InvariantCulture, $"<Contents><Key>{shown}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>{Objects[k].Length}</Size><StorageClass>STANDARD</StorageClass></Contents>");
            }

            if (truncated)
            {
                xml.Append(CultureInfo.InvariantCulture, $"<NextContinuationToken>{SecurityElement.Escape(page[^1])}</NextContinuationToken>");
            }

            xml.Append("</ListBucketResult>");
            context.Response.ContentType = "application/xml";
            await context.Response.WriteAsync(xml.ToString());
        }

#pragma warning disable CA5351 // S3's ETag of a single-part object is its MD5; this is the service's format, not a security use
        private static string Etag(byte[] data) => Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(data));
#pragma warning restore CA5351

        private static async Task Error(HttpContext context, int status, string code)
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/xml";
            await context.Response.WriteAsync($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message><RequestId>1</RequestId></Error>");
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    [SkippableFact]
    public async Task A_bucket_prefix_is_listed_across_pages_read_by_a_worker_and_logged_once()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        await using var s3 = await FakeS3.StartAsync("media");
        var pictures = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var key = i == 3 ? "uploads/2024/with space & ampersand+plus.png" : $"uploads/2024/p{i}.png";
            s3.Objects[key] = SyntheticImages.Encode(SyntheticImages.Blobs(64, 64, 20 + i), 64, 64, "png");
            pictures.Add(key);
        }

        s3.Objects["uploads/2024/big.bin"] = new byte[(1 << 20) + 1]; // over the worker's 1 MiB limit below
        s3.Objects["uploads/2024/gone.png"] = [1, 2, 3]; // deleted after listing
        s3.Objects["uploads/2024/sub/"] = []; // a "folder" marker: not an object to scan
        s3.Objects["other/p9.png"] = [9]; // outside the prefix

        var db = Path.Combine(_dir, "w.db");
        using (var s = BankStore.Open(db))
        {
            s.CreateBank("empty");
        }

        const string Queue = "S3";
        (int Exit, string Out, string Err) enqueue;
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", s3.Url); // read only by the S3 code (see BackfillQueueTests)
        try
        {
            enqueue = Cli.Run("backfill", "s3://media/uploads/2024/", "--nats", nats.Url, "--queue", Queue);
            Assert.True(enqueue.Exit == 0, enqueue.Err);
            Assert.Contains("queued 7 items", enqueue.Out, StringComparison.Ordinal);
            Assert.True(s3.Requests.Count(r => r.StartsWith("GET /media", StringComparison.Ordinal) && r.Contains("list-type=2", StringComparison.Ordinal)) >= 4, string.Join('\n', s3.Requests));
            s3.Objects.TryRemove("uploads/2024/gone.png", out _);

            using var store = BankStore.Open(db);
            var log = new SignalLog(store.Database, Path.Combine(_dir, "snap"));
            await using var queue = new NatsWorkQueue(nats.Url, TimeSpan.FromSeconds(5), 3, "test", Queue);
            await queue.EnsureAsync(CancellationToken.None);
            var output = new StringWriter();
            using var worker = new BackfillWorker(queue, store, log, new WorkerOptions("w", TimeSpan.FromSeconds(1), TimeSpan.Zero, 1 << 20, 3, TimeSpan.FromSeconds(60)), output, TextWriter.Null);
            await worker.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));

            var done = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.GetProperty("event").GetString() == "done").Select(e => e.GetProperty("outcome").GetString()).Order().ToList();
            Assert.Equal(["dead", "dead", "logged", "logged", "logged", "logged", "logged"], done);
            Assert.Equal(5, log.Partitions().Sum(log.Count));
            foreach (var key in pictures)
            {
                Assert.Contains(s3.Requests, r => r == "GET /media/" + Uri.EscapeDataString(key).Replace("%2F", "/", StringComparison.Ordinal) || Uri.UnescapeDataString(r) == "GET /media/" + key);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", null);
        }

        var (code, dead, _) = Cli.Run("backfill", "dead", "--nats", nats.Url, "--queue", Queue);
        Assert.Equal(0, code);
        var reasons = dead.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("reason").GetString()!).Order().ToList();
        Assert.Equal(2, reasons.Count);
        Assert.Contains(reasons, r => r.StartsWith("s3://media/uploads/2024/big.bin", StringComparison.Ordinal) && r.Contains("larger than 1048576 bytes", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.StartsWith("s3://media/uploads/2024/gone.png", StringComparison.Ordinal) && r.Contains("S3 404", StringComparison.Ordinal));
    }

    [SkippableTheory]
    [InlineData("etag")]
    [InlineData("short")]
    [InlineData("xml")]
    public async Task A_broken_service_fails_items_never_the_worker(string broken)
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        await using var s3 = await FakeS3.StartAsync("media");
        for (var i = 0; i < 3; i++)
        {
            s3.Objects[$"p/{i}.png"] = SyntheticImages.Encode(SyntheticImages.Blobs(64, 64, 40 + i), 64, 64, "png");
        }

        var db = Path.Combine(_dir, "w.db");
        using (var s = BankStore.Open(db))
        {
            s.CreateBank("empty");
        }

        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", s3.Url);
        try
        {
            Assert.Equal(0, Cli.Run("backfill", "s3://media/p/", "--nats", nats.Url, "--queue", "BROKEN").Exit);
            s3.Broken = broken;
            using var store = BankStore.Open(db);
            var log = new SignalLog(store.Database, Path.Combine(_dir, "snap"));
            await using var queue = new NatsWorkQueue(nats.Url, TimeSpan.FromSeconds(5), 2, "test", "BROKEN");
            await queue.EnsureAsync(CancellationToken.None);
            var output = new StringWriter();
            using var worker = new BackfillWorker(queue, store, log, new WorkerOptions("w", TimeSpan.FromSeconds(1), TimeSpan.Zero, 1 << 20, 2, TimeSpan.FromSeconds(60)), output, TextWriter.Null);
            await worker.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(3));
            var done = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.GetProperty("event").GetString() == "done").Select(e => e.GetProperty("outcome").GetString()).ToList();
            Assert.Equal(["dead", "dead", "dead"], done);
            Assert.Equal(0, log.Partitions().Sum(log.Count));
        }
        finally
        {
            Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", null);
        }
    }
}
