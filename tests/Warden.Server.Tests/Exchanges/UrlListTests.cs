using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Xunit;
using Warden.Core.Exchanges;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Exchanges;

/// <summary>
/// A list file served over HTTP on 127.0.0.1 the way static file servers and CDNs do: a strong ETag,
/// Last-Modified, 304 on a matching If-None-Match, and faults on demand. Written from HTTP's conditional-GET rules.
/// </summary>
internal sealed class FakeListServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private volatile string _body = string.Empty;
    private volatile string _etag = "\"0\"";
    private int _version;

    public FakeListServer()
    {
        for (var attempt = 0; ; attempt++)
        {
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                Port = ((IPEndPoint)probe.LocalEndpoint).Port;
            }

            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try
            {
                _listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
            }
        }

        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    /// <summary>Requests: path, If-None-Match sent, status answered.</summary>
    public ConcurrentQueue<(string Path, string? IfNoneMatch, int Status)> Requests { get; } = new();

    /// <summary>A status to answer the next request with (503, 429, 302 ...), with Retry-After seconds.</summary>
    public ConcurrentQueue<(int Status, int? RetryAfter)> Faults { get; } = new();

    public string Url(string file) => $"http://127.0.0.1:{Port}/lists/{file}";

    public void Publish(string body)
    {
        _body = body;
        _etag = $"\"v{Interlocked.Increment(ref _version)}\"";
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var inm = ctx.Request.Headers["If-None-Match"];
            int status;
            if (Faults.TryDequeue(out var fault))
            {
                status = fault.Status;
                if (fault.RetryAfter is { } ra)
                {
                    ctx.Response.Headers["Retry-After"] = ra.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                if (status is >= 300 and < 400)
                {
                    ctx.Response.Headers["Location"] = "http://192.0.2.1/elsewhere.csv";
                }
            }
            else
            {
                status = inm == _etag ? 304 : 200;
            }

            Requests.Enqueue((ctx.Request.Url!.AbsolutePath, inm, status));
            ctx.Response.StatusCode = status;
            ctx.Response.Headers["ETag"] = _etag;
            ctx.Response.Headers["Last-Modified"] = "Mon, 07 Dec 2026 00:00:00 GMT";
            if (status == 200)
            {
                var bytes = Encoding.UTF8.GetBytes(_body);
                ctx.Response.ContentLength64 = bytes.Length;
                await ctx.Response.OutputStream.WriteAsync(bytes);
            }

            ctx.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
    }
}

/// <summary>The url_list exchange: a list file mirrored into a bank as a snapshot, refreshed with ETag.</summary>
public sealed class UrlListTests
{
    private static readonly string[] Pool = [.. Enumerable.Range(0, 40).Select(i => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)))[..32])];

    private static string Render(string format, IReadOnlyList<string> md5s) => format switch
    {
        "csv" => "signal_type,signal,category\n" + string.Concat(md5s.Select(h => $"md5,{h},test\n")),
        "jsonl" => string.Concat(md5s.Select(h => "{\"signal_type\":\"md5\",\"signal\":\"" + h + "\",\"labels\":{\"category\":\"test\"}}\n")),
        _ => "# a plain list\n" + string.Concat(md5s.Select(h => h + "\n")),
    };

    private static (BankStore Banks, ExchangeStore Exchanges, Exchange X) Open(TestDatabase db, string url, string format = "auto")
    {
        var banks = BankStore.Open(db.Target);
        var exchanges = ExchangeStore.Open(banks.Database);
        var bank = banks.CreateBank("list-" + Guid.NewGuid().ToString("N")[..8]);
        var config = ExchangeTypes.UrlList.Validate(JsonDocument.Parse($$"""{"url":"{{url}}","format":"{{format}}","signal_type":"md5"}""").RootElement);
        return (banks, exchanges, exchanges.Create("list-" + bank.Name, "url_list", bank.Id, config.GetRawText()));
    }

    private static async Task<ExchangeSyncResult> SyncAsync(BankStore banks, ExchangeStore exchanges, Exchange x, HttpClient http) =>
        await new ExchangeSync(banks, exchanges).RunAsync(x, ExchangeRuntime.Default(http) with { Delay = (_, _) => Task.CompletedTask }, "test", CancellationToken.None);

    private static HashSet<string> Live(BankStore banks, Exchange x) =>
        [.. banks.ExportEntries(x.BankId).Select(e => e.SignalType + ":" + e.Signal)];

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_list_is_mirrored_refreshed_with_ETag_and_removed_lines_are_tombstoned(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeListServer();
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        var (banks, exchanges, x) = Open(db, server.Url("hashes.csv"));

        server.Publish(Render("csv", Pool[..10]) + "md5,not-a-hash,test\n");
        var first = await SyncAsync(banks, exchanges, x, http);
        Assert.Equal(10, first.Entries);
        Assert.Equal(1, first.Errors); // the bad line is counted, never silently dropped
        Assert.Equal(Pool[..10].Select(h => "md5:" + h).ToHashSet(), Live(banks, x));
        Assert.All(banks.ExportEntries(x.BankId), e => Assert.Equal("test", e.Labels["category"]));

        // Unchanged: one conditional GET, a 304, nothing written.
        var seq = banks.ChangeSequence();
        var again = await SyncAsync(banks, exchanges, x, http);
        Assert.Equal(0, again.Entries);
        Assert.Equal(seq, banks.ChangeSequence());
        Assert.Equal((304, "\"v1\""), server.Requests.Last() is var r ? (r.Status, r.IfNoneMatch) : default);

        // Changed: five lines removed, five added; the removed ones become tombstones, the rest are untouched.
        server.Publish(Render("csv", Pool[5..15]));
        var changed = await SyncAsync(banks, exchanges, x, http);
        Assert.Equal(5, changed.Tombstones);
        Assert.Equal(Pool[5..15].Select(h => "md5:" + h).ToHashSet(), Live(banks, x));

        // A hand-added entry in the same bank is not the list's: a refresh leaves it alone.
        banks.Import(x.BankId, [new Warden.Core.Banks.BankEntryRecord("md5", Pool[39], new Dictionary<string, string>())], "manual");
        server.Publish(Render("csv", Pool[5..14]));
        await SyncAsync(banks, exchanges, x, http);
        Assert.Equal(Pool[5..14].Append(Pool[39]).Select(h => "md5:" + h).ToHashSet(), Live(banks, x));

        // 503 with Retry-After, and a redirect, fail the pass (the scheduler backs off); nothing changes.
        server.Publish(Render("csv", Pool[..3]));
        server.Faults.Enqueue((503, 7));
        var busy = await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, http));
        Assert.Equal(TimeSpan.FromSeconds(7), busy.RetryAfter);
        server.Faults.Enqueue((302, null));
        var moved = await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, http));
        Assert.Contains("redirect", moved.Message, StringComparison.Ordinal);
        Assert.Equal(Pool[5..14].Append(Pool[39]).Select(h => "md5:" + h).ToHashSet(), Live(banks, x));
        Assert.False(exchanges.State(x.Id).LastSucceeded);

        // A truncated / malformed file is counted; an empty list empties the list's part of the bank.
        server.Publish("signal_type,signal\n");
        await SyncAsync(banks, exchanges, x, http);
        Assert.Equal(new HashSet<string> { "md5:" + Pool[39] }, Live(banks, x));
    }

    [Property(MaxTest = 25)]
    public void Any_sequence_of_list_versions_leaves_the_bank_equal_to_the_latest_list(NonEmptyArray<Tuple<ulong, byte>> versions)
    {
        using var db = TestDatabases.CreateSqlite();
        var server = new FakeListServer();
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
            var (banks, exchanges, x) = Open(db, server.Url("feed"), "auto");
            foreach (var (mask, pick) in versions.Get.Take(6))
            {
                var listed = Pool.Where((_, i) => ((mask >> i) & 1) == 1).ToList();
                var format = new[] { "csv", "jsonl", "plain" }[pick % 3];
                if (pick % 5 != 0)
                {
                    server.Publish(Render(format, listed)); // else: the same list again (a 304)
                }
                else
                {
                    listed = [.. Live(banks, x).Select(s => s["md5:".Length..])];
                    if (server.Requests.IsEmpty)
                    {
                        server.Publish(Render(format, listed));
                    }
                }

                SyncAsync(banks, exchanges, x, http).GetAwaiter().GetResult();
                Assert.Equal(listed.Select(h => "md5:" + h).ToHashSet(), Live(banks, x));
            }
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Theory]
    [InlineData("""{"url":"http://example.org/list.csv"}""", "https")] // plain http beyond loopback
    [InlineData("""{"url":"https://user:pw@example.org/list.csv"}""", "user info")]
    [InlineData("""{"url":"ftp://example.org/list.csv"}""", "https")]
    [InlineData("""{}""", "url is required")]
    [InlineData("""{"url":"https://example.org/l","format":"xlsx"}""", "format")]
    [InlineData("""{"url":"https://example.org/l","signal_type":"crc32"}""", "signal_type")]
    [InlineData("""{"url":"https://example.org/l","labels":{"a":1}}""", "labels")]
    [InlineData("""{"url":"https://example.org/l","surprise":true}""", "Unknown")]
    [InlineData("""{"url":7}""", "string")]
    [InlineData("""[]""", "object")]
    public void Bad_configs_are_refused_naming_the_field(string json, string expected)
    {
        var ex = Assert.Throws<ExchangeConfigException>(() => ExchangeTypes.UrlList.Validate(JsonDocument.Parse(json).RootElement));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
