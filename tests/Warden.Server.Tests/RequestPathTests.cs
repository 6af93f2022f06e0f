using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>
/// The request path's settings (issue 16 §6): Kestrel reading straight into receive buffers without a zero-byte
/// wait reads every body the same, however the client splits it over TCP segments and keep-alive requests; and
/// /metrics keeps the runtime's and Npgsql's meters while it drops ASP.NET's per-request ones.
/// </summary>
public sealed class RequestPathTests
{
    [Theory]
    [InlineData(false, 32 * 1024)]
    [InlineData(true, 32 * 1024)]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 4096)]
    [InlineData(false, 6001)]
    [InlineData(false, 1 << 20)]
    public async Task Bodies_split_at_random_over_tcp_segments_and_keep_alive_requests_hash_to_the_bytes_sent(bool waitForData, int receiveBlock)
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite, o => (o.SocketWaitForData, o.ReceiveBlockBytes) = (waitForData, receiveBlock));
        var key = server.Key(Role.Submitter);
        var random = new Random((waitForData ? 16_06 : 16_07) + receiveBlock);
        var pools = server.App.Services.GetRequiredService<IMemoryPoolFactory<byte>>();
        Assert.Equal(receiveBlock > 0, pools is ReceiveBlockPoolFactory);

        // Several connections, each sending several requests back to back, each body in randomly sized writes
        // (1 byte to 20 KiB), sometimes with a pause between writes so the server's reads see partial blocks.
        for (var connection = 0; connection < 4; connection++)
        {
            using var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
            var stream = tcp.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII, false, 1, leaveOpen: true);
            for (var request = 0; request < 6; request++)
            {
                var block = receiveBlock > 0 ? Math.Clamp(receiveBlock, 4096, 1 << 20) : 4096;
                var body = new byte[random.Next(0, 6) switch { 0 => random.Next(1, 64), 1 => random.Next(4090, 4200), 2 => Math.Max(1, random.Next(block - 300, block + 300)), _ => random.Next(1, 250_000) }];
                random.NextBytes(body);
                var head = Encoding.ASCII.GetBytes($"POST /v1/hash HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/octet-stream\r\nContent-Length: {body.Length}\r\n\r\n");
                var wire = new byte[head.Length + body.Length];
                head.CopyTo(wire, 0);
                body.CopyTo(wire, head.Length);
                for (var sent = 0; sent < wire.Length;)
                {
                    var n = Math.Min(wire.Length - sent, random.Next(0, 3) == 0 ? random.Next(1, 16) : random.Next(1, 20_000));
                    await stream.WriteAsync(wire.AsMemory(sent, n));
                    sent += n;
                    if (random.Next(0, 8) == 0)
                    {
                        await Task.Delay(random.Next(1, 5));
                    }
                }

                var (status, json) = await ReadResponseAsync(reader);
                Assert.Equal(200, status);
                using var doc = JsonDocument.Parse(json);
                Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), doc.RootElement.GetProperty("sha256").GetString());
                Assert.Equal(body.Length, doc.RootElement.GetProperty("length").GetInt64());
            }
        }
    }

    [Fact]
    public async Task Metrics_keep_the_runtime_meters_and_drop_aspnet_per_request_meters()
    {
        // A process of its own: the meter adapter is configured once per process, before the first metric.
        await using var db = await TestDatabases.CreateAsync(SqlDialect.Sqlite);
        string admin;
        using (var database = WardenDatabase.Open(db.Target))
        {
            var store = new ServerStore(database);
            store.Migrate();
            admin = store.CreateKey("metrics", Role.Admin).Key;
        }

        using var server = await ServerProcess.StartAsync(db.Target);
        using var client = server.Client(admin);
        for (var i = 0; i < 20; i++)
        {
            using var r = await client.GetAsync("v1/match?signal_type=md5&signal=" + new string('d', 32));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        // The runtime's meters are published on their own schedule: wait for the first reading.
        string metrics = string.Empty;
        for (var attempt = 0; attempt < 50 && !metrics.Contains("dotnet_gc_heap_total_allocated", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(200);
            metrics = await client.GetStringAsync("metrics");
        }

        var names = metrics.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('{', ' ')[0]).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("http_request_duration_seconds_count", names); // prometheus-net's own request histogram stays
        Assert.Contains(names, n => n.EndsWith("dotnet_gc_heap_total_allocated_bytes_total", StringComparison.Ordinal) || n.Contains("dotnet_gc_heap_total_allocated", StringComparison.Ordinal));
        Assert.Contains(names, n => n.Contains("warden_lookups_total", StringComparison.Ordinal));
        foreach (var dropped in new[] { "http_server_request_duration", "aspnetcore_routing", "aspnetcore_authentication", "aspnetcore_authorization", "aspnetcore_rate_limiting", "aspnetcore_memory_pool", "http_server_active_requests" })
        {
            Assert.DoesNotContain(names, n => n.Contains(dropped, StringComparison.Ordinal));
        }
    }

    private static async Task<(int Status, string Body)> ReadResponseAsync(StreamReader reader)
    {
        var statusLine = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) ?? throw new IOException("connection closed");
        var status = int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var length = -1;
        var chunked = false;
        string? line;
        while (!string.IsNullOrEmpty(line = await reader.ReadLineAsync()))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && line.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                chunked = true;
            }
        }

        var body = new StringBuilder();
        if (chunked)
        {
            while (true)
            {
                var size = Convert.ToInt32((await reader.ReadLineAsync())!.Split(';')[0], 16);
                var chunk = new char[size];
                await reader.ReadBlockAsync(chunk, 0, size);
                await reader.ReadLineAsync();
                if (size == 0)
                {
                    break;
                }

                body.Append(chunk);
            }
        }
        else
        {
            var chars = new char[Math.Max(0, length)];
            await reader.ReadBlockAsync(chars, 0, chars.Length);
            body.Append(chars);
        }

        return (status, body.ToString());
    }
}
