using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Warden.Server.Auth;
using Warden.Storage;
using static Warden.Server.Tests.HttpAssert;

namespace Warden.Server.Tests;

/// <summary>
/// The upload body is read straight into the upload's array when its length is declared, and through the
/// chunk loop when it is not: both give the same bytes, and a body that ends before its declared length is a 400.
/// </summary>
public sealed class UploadBodyTests
{
    // Sizes around the read path's edges: one byte, the old chunk size, pipe segment sizes, a JPEG, over 1 MiB.
    private static IEnumerable<byte[]> Bodies()
    {
        var random = new Random(20261207);
        foreach (var n in new[] { 1, 2, 4095, 4096, 4097, 65535, 65536, 65537, 81919, 81920, 81921, 200_001, 1_100_000 })
        {
            var b = new byte[n];
            random.NextBytes(b);
            yield return b;
        }

        for (var i = 0; i < 12; i++)
        {
            var b = new byte[random.Next(1, 300_000)];
            random.NextBytes(b);
            yield return b;
        }

        yield return Media.Jpeg(7);
    }

    [Fact]
    public async Task Declared_and_chunked_bodies_hash_to_the_bytes_sent()
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var client = server.Client(Role.Submitter);
        foreach (var body in Bodies())
        {
            var sha256 = Convert.ToHexStringLower(SHA256.HashData(body));
            using var declared = new ByteArrayContent(body); // Content-Length
            var a = await Json(await client.PostAsync("v1/hash", declared));
            using var chunked = new StreamContent(new NonSeekable(body)); // no length: chunked transfer
            var b = await Json(await client.PostAsync("v1/hash", chunked));
            Assert.Equal(sha256, a.GetProperty("sha256").GetString());
            Assert.Equal(sha256, b.GetProperty("sha256").GetString());
            Assert.Equal(body.Length, a.GetProperty("length").GetInt64());
            Assert.Equal(a.GetProperty("md5").GetString(), b.GetProperty("md5").GetString());
            Assert.Equal(a.TryGetProperty("pdq", out var pa) ? pa.ToString() : null, b.TryGetProperty("pdq", out var pb) ? pb.ToString() : null);
        }
    }

    [Theory]
    [InlineData(1000, 0)]
    [InlineData(1000, 10)]
    [InlineData(100_000, 99_999)]
    [InlineData(100_000, 65_536)]
    public async Task A_body_that_ends_before_its_declared_length_is_never_a_server_error(int declared, int sent)
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
            var stream = tcp.GetStream();
            var head = $"POST /v1/match HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nAuthorization: Bearer {server.Key(Role.Submitter)}\r\nContent-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await stream.WriteAsync(new byte[sent]);
            tcp.Client.Shutdown(SocketShutdown.Send); // the body ends early

            // Kestrel may answer 400 or drop the half-closed connection; it must never answer 5xx or hang.
            string? status = null;
            try
            {
                using var reader = new StreamReader(stream, Encoding.ASCII);
                status = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (IOException)
            {
            }

            Assert.True(status is null or "" || status.StartsWith("HTTP/1.1 4", StringComparison.Ordinal), status);
        }

        // Nothing was matched or recorded, and the server is still well.
        using var client = server.Client(Role.Submitter);
        using var ok = await client.PostAsync("v1/hash", new ByteArrayContent([1, 2, 3]));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Empty(server.App.Services.GetRequiredService<Warden.Review.ReviewService>().Store.Events());
    }

    private sealed class NonSeekable(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;
    }
}
