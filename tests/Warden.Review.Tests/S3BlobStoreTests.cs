using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Warden.Review.Evidence;

namespace Warden.Review.Tests;

/// <summary>A minimal S3-compatible object server (path style: PUT, GET, HEAD, DELETE) on 127.0.0.1.</summary>
internal sealed class FakeS3 : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeS3(WebApplication app) => _app = app;

    public ConcurrentDictionary<string, byte[]> Objects { get; } = new();

    public ConcurrentQueue<string> Requests { get; } = new();

    public Uri Url { get; private set; } = null!;

    public static async Task<FakeS3> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var s3 = new FakeS3(app);
        app.Run(s3.Handle);
        await app.StartAsync();
        s3.Url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return s3;
    }

    private async Task Handle(HttpContext ctx)
    {
        var key = Uri.UnescapeDataString(ctx.Request.Path.Value!.TrimStart('/'));
        Requests.Enqueue($"{ctx.Request.Method} {key}");
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=test-access/", ctx.Request.Headers.Authorization.ToString(), StringComparison.Ordinal);
        switch (ctx.Request.Method)
        {
            case "PUT":
                using (var ms = new MemoryStream())
                {
                    await ctx.Request.Body.CopyToAsync(ms);
                    Objects[key] = ms.ToArray();
                    ctx.Response.Headers.ETag = ETag(Objects[key]);
                }

                return;
            case "GET" or "HEAD" when Objects.TryGetValue(key, out var data):
                ctx.Response.ContentLength = data.Length;
                ctx.Response.ContentType = "application/octet-stream";
                ctx.Response.Headers.ETag = ETag(data);
                if (ctx.Request.Method == "GET")
                {
                    await ctx.Response.Body.WriteAsync(data);
                }

                return;
            case "GET" or "HEAD":
                ctx.Response.StatusCode = 404;
                if (ctx.Request.Method == "GET")
                {
                    ctx.Response.ContentType = "application/xml";
                    await ctx.Response.WriteAsync($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>{key}</Key></Error>");
                }

                return;
            case "DELETE":
                Objects.TryRemove(key, out _);
                ctx.Response.StatusCode = 204;
                return;
            default:
                ctx.Response.StatusCode = 405;
                return;
        }
    }

#pragma warning disable CA5351 // S3's ETag of a single-part object is the MD5 of its bytes; the SDK checks it.
    private static string ETag(byte[] data) => "\"" + Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(data)) + "\"";
#pragma warning restore CA5351

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

public sealed class S3BlobStoreTests : IAsyncLifetime, IDisposable
{
    private readonly TempDir _dir = new();
    private FakeS3 _s3 = null!;
    private S3BlobStore _store = null!;

    public async Task InitializeAsync()
    {
        _s3 = await FakeS3.StartAsync();
        _store = new S3BlobStore(new S3BlobStoreOptions { ServiceUrl = _s3.Url, Bucket = "evidence-bucket", AccessKey = "test-access", SecretKey = "test-secret" });
    }

    public async Task DisposeAsync() => await _s3.DisposeAsync();

    public void Dispose()
    {
        _store?.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Objects_round_trip_under_prefixed_keys_and_deletes_report_absence()
    {
        var id = IBlobStore.NewId();
        Assert.Null(await _store.ReadAsync(id));
        await _store.WriteAsync(id, new byte[] { 1, 2, 3 });
        await _store.WriteAsync(id, new byte[] { 9, 8 });
        Assert.Equal(new byte[] { 9, 8 }, await _store.ReadAsync(id));
        Assert.Equal($"evidence-bucket/evidence/{id[..2]}/{id}", Assert.Single(_s3.Objects.Keys));
        Assert.True(await _store.DeleteAsync(id));
        Assert.False(await _store.DeleteAsync(id));
        Assert.Empty(_s3.Objects);
        await Assert.ThrowsAsync<ArgumentException>(() => _store.ReadAsync("../x"));
    }

    [Fact]
    public async Task The_vault_over_s3_keeps_only_ciphertext_in_the_bucket_and_detects_tampering()
    {
        var db = _dir.OpenDatabase();
        var vault = new EvidenceVault(_store, new DbEvidenceCatalog(db), new VaultKeyRing(new Dictionary<string, byte[]> { ["k1"] = new byte[32] }, "k1"));
        var media = new byte[10_000];
        new Random(3).NextBytes(media);
        var actor = EvidenceActor.Person("user:alice");
        var id = await vault.StoreAsync(media, new Dictionary<string, string> { ["originalFileName"] = "beach.jpg" }, null, actor);
        Assert.Equal(media, (await vault.ReadAsync(id, new EvidenceAccess(actor, "review"))).Media);

        var stored = Assert.Single(_s3.Objects).Value;
        Assert.Equal(-1, stored.AsSpan().IndexOf(media.AsSpan(100, 32)));
        Assert.Equal(-1, stored.AsSpan().IndexOf("beach.jpg"u8));

        var key = _s3.Objects.Keys.Single();
        _s3.Objects[key] = [.. stored[..^1], (byte)(stored[^1] ^ 1)];
        Assert.Equal(EvidenceError.Tampered, (await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(actor, "review")))).Error);

        Assert.True(await vault.DestroyAsync(id, "user:admin", "test"));
        Assert.Empty(_s3.Objects);
    }
}
