using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Xml;

namespace Warden.Core.Tests.Exchanges;

/// <summary>One entry of the fake feed, in its latest state.</summary>
/// <param name="Member">Member (ESP) id.</param>
/// <param name="Id">Entry id (unique per member only).</param>
/// <param name="Video">Video entry (else image).</param>
/// <param name="Timestamp">Last change, Unix seconds.</param>
/// <param name="Classification">A1/A2/B1/B2 or null.</param>
/// <param name="Fingerprints">Element name → value (md5, sha1, pdq, pdna); a null value is a large fingerprint (href).</param>
/// <param name="Deleted">Tombstone.</param>
/// <param name="LargeBodies">Element name → the raw bytes its href serves (a large fingerprint without one answers 404).</param>
public sealed record FakeEntry(long Member, string Id, bool Video, long Timestamp, string? Classification, IReadOnlyDictionary<string, string?> Fingerprints, bool Deleted = false, IReadOnlyDictionary<string, byte[]>? LargeBodies = null);

/// <summary>
/// A local NCMEC Hash Sharing v2 server on 127.0.0.1, written from the wire format (NCMEC's documentation as
/// python-threatexchange's client speaks it, and ../shared/testdata/ncmec/hashsharing), not from Warden's reader:
/// Basic auth; <c>GET /v2/entries?from&amp;to</c> (from exclusive, to inclusive) in a scrambled, non-time order,
/// paged by <c>start</c>/<c>size</c>/<c>max</c> with an XML-escaped <c>paging/next</c> link; tombstones as
/// <c>deletedImage</c>/<c>deletedVideo</c>; <c>GET /v2/feedback/{TYPE}/reasons</c>; feedback <c>PUT</c>s recorded.
/// Faults (503, 429 with Retry-After) can be queued; fixed answers can be mapped by path and query.
/// </summary>
public sealed class FakeNcmecServer : IAsyncDisposable
{
    public const string Ns = "https://hashsharing.ncmec.org/hashsharing/v2";
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private readonly Dictionary<string, FakeEntry> _entries = new(StringComparer.Ordinal);
    private FakeEntry[]? _byTime;
    private readonly ConcurrentQueue<(int Status, int? RetryAfter)> _faults = new();
    private readonly ConcurrentQueue<(int Status, int? RetryAfter)> _largeFaults = new();
    private int _inFlight;

    public FakeNcmecServer(string user = "warden_test", string password = "s3cret-pass")
    {
        User = user;
        Password = password;
        for (var attempt = 0; ; attempt++)
        {
            var port = FreePort();
            BaseUrl = $"http://127.0.0.1:{port}/hashsharing";
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
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

    public string User { get; }

    public string Password { get; }

    /// <summary>The environment root (what a client's base_url is).</summary>
    public string BaseUrl { get; private set; }

    /// <summary>Entries per page (NCMEC uses 1000).</summary>
    public int PageSize { get; set; } = 1000;

    /// <summary>Pause before answering each entries page (to catch a fetch mid-way).</summary>
    public TimeSpan PageDelay { get; set; }

    /// <summary>Fixed answers by path-and-query (after the environment root), checked before the feed.</summary>
    public ConcurrentDictionary<string, string> Fixed { get; } = new(StringComparer.Ordinal);

    /// <summary>Every request: method, path-and-query after the root, time.</summary>
    public ConcurrentQueue<(string Method, string PathAndQuery, DateTimeOffset At, int Status)> Requests { get; } = new();

    /// <summary>Feedback PUTs: path after the root, body.</summary>
    public ConcurrentQueue<(string Path, string Body)> Feedback { get; } = new();

    /// <summary>Answers the next request with <paramref name="status"/> (and a Retry-After in seconds).</summary>
    public void Fail(int status, int? retryAfterSeconds = null) => _faults.Enqueue((status, retryAfterSeconds));

    /// <summary>Queues a fault answered to the next large-fingerprint GET only (after authentication).</summary>
    public void FailLarge(int status, int? retryAfterSeconds = null) => _largeFaults.Enqueue((status, retryAfterSeconds));

    /// <summary>Raw bodies served by path (large fingerprints of fixed pages).</summary>
    public ConcurrentDictionary<string, byte[]> FixedBytes { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The href a large fingerprint of an entry is served at. Opaque to clients (NCMEC asks them not to derive
    /// meaning from it or store it); here it names the entry so the fake serves its latest body.
    /// </summary>
    public static string LargePath(long member, string id, string name) =>
        $"/v2/entries/{member.ToString(CultureInfo.InvariantCulture)}/{Uri.EscapeDataString(id)}/fingerprints/{name.ToUpperInvariant().Replace('-', '_')}";

    /// <summary>Adds or replaces an entry (its latest state).</summary>
    public void Put(FakeEntry entry)
    {
        lock (_gate)
        {
            _entries[entry.Member + "-" + entry.Id] = entry;
            _byTime = null;
        }
    }

    /// <summary>Turns an entry into a tombstone at <paramref name="timestamp"/>.</summary>
    public void Delete(long member, string id, long timestamp)
    {
        lock (_gate)
        {
            var key = member + "-" + id;
            var video = _entries.TryGetValue(key, out var e) && e.Video;
            _entries[key] = new FakeEntry(member, id, video, timestamp, null, new Dictionary<string, string?>(), Deleted: true);
            _byTime = null;
        }
    }

    /// <summary>The live set: "member-id" → entry.</summary>
    public IReadOnlyDictionary<string, FakeEntry> Live()
    {
        lock (_gate)
        {
            return _entries.Where(e => !e.Value.Deleted).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        }
    }

    /// <summary>The most entries requests ever answered at once (one fetcher pages one request at a time).</summary>
    public int MaxInFlight { get; private set; }

    /// <summary>Entries pages served.</summary>
    public int EntriesPagesServed => Requests.Count(r => r.Method == "GET" && r.PathAndQuery.StartsWith("/v2/entries?", StringComparison.Ordinal) && r.Status == 200);

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
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

            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        var raw = ctx.Request.RawUrl ?? "/";
        var rel = raw.StartsWith("/hashsharing", StringComparison.Ordinal) ? raw["/hashsharing".Length..] : raw;
        var status = 200;
        var recorded = false;

        // Logged before the response is written: a client that has its answer may go on (and a test may clear the
        // log) before this task runs again, so logging afterwards could land a finished pass's request in the next.
        void Record(int code)
        {
            if (!recorded)
            {
                recorded = true;
                Requests.Enqueue((ctx.Request.HttpMethod, rel, DateTimeOffset.UtcNow, code));
            }
        }

        Task Respond(int code, string body)
        {
            Record(code);
            return WriteAsync(ctx, code, body);
        }

        try
        {
            var auth = ctx.Request.Headers["Authorization"];
            var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(User + ":" + Password));
            if (auth != expected)
            {
                status = 401;
                await Respond(401, "<error>Authentication Required</error>");
                return;
            }

            if (_faults.TryDequeue(out var fault))
            {
                status = fault.Status;
                if (fault.RetryAfter is { } ra)
                {
                    ctx.Response.Headers["Retry-After"] = ra.ToString(CultureInfo.InvariantCulture);
                }

                await Respond(fault.Status, "<error>try later</error>");
                return;
            }

            if (Fixed.TryGetValue(rel, out var body))
            {
                await Respond(200, body);
                return;
            }

            var path = rel.Split('?')[0];
            if (ctx.Request.HttpMethod == "GET" && path.Contains("/fingerprints/", StringComparison.Ordinal))
            {
                // A large fingerprint: raw binary, as NCMEC's large-fingerprints page says.
                if (_largeFaults.TryDequeue(out var largeFault))
                {
                    status = largeFault.Status;
                    if (largeFault.RetryAfter is { } lra)
                    {
                        ctx.Response.Headers["Retry-After"] = lra.ToString(CultureInfo.InvariantCulture);
                    }

                    await Respond(largeFault.Status, "<error>try later</error>");
                    return;
                }

                var largeBody = FixedBytes.TryGetValue(path, out var fixedBytes) ? fixedBytes : LargeBody(path);
                if (largeBody is null)
                {
                    status = 404;
                    await Respond(404, "<error>not found</error>");
                    return;
                }

                Record(200);
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "application/octet-stream";
                ctx.Response.ContentLength64 = largeBody.Length;
                await ctx.Response.OutputStream.WriteAsync(largeBody);
                ctx.Response.Close();
                return;
            }

            if (ctx.Request.HttpMethod == "PUT" && path.StartsWith("/v2/entries/", StringComparison.Ordinal) && path.EndsWith("/feedback", StringComparison.Ordinal))
            {
                using var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8);
                Feedback.Enqueue((path, await reader.ReadToEndAsync()));
                await Respond(200, string.Empty);
                return;
            }

            if (ctx.Request.HttpMethod == "GET" && path == "/v2/entries")
            {
                var inFlight = Interlocked.Increment(ref _inFlight);
                lock (_gate)
                {
                    MaxInFlight = Math.Max(MaxInFlight, inFlight);
                }

                try
                {
                    if (PageDelay > TimeSpan.Zero)
                    {
                        await Task.Delay(PageDelay);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _inFlight);
                }

                var q = System.Web.HttpUtility.ParseQueryString(rel.Contains('?', StringComparison.Ordinal) ? rel[(rel.IndexOf('?', StringComparison.Ordinal) + 1)..] : string.Empty);
                if (!TryTime(q["from"], out var from) || !TryTime(q["to"], out var to))
                {
                    status = 400;
                    await Respond(400, "<error>from and to are required</error>");
                    return;
                }

                var start = int.TryParse(q["start"], CultureInfo.InvariantCulture, out var s) ? s : 1;
                var size = int.TryParse(q["size"], CultureInfo.InvariantCulture, out var z) ? z : PageSize;
                await Respond(200, EntriesPage(from, to, start, size));
                return;
            }

            status = 404;
            await Respond(404, "<error>not found</error>");
        }
        catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException)
        {
            status = -1;
        }
        finally
        {
            Record(status);
        }
    }

    private byte[]? LargeBody(string path)
    {
        lock (_gate)
        {
            foreach (var e in _entries.Values)
            {
                if (!e.Deleted && e.LargeBodies is { } bodies)
                {
                    foreach (var (name, bytes) in bodies)
                    {
                        if (LargePath(e.Member, e.Id, name) == path)
                        {
                            return bytes;
                        }
                    }
                }
            }
        }

        return null;
    }

    private static bool TryTime(string? text, out long unix)
    {
        unix = 0;
        if (text is null || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            return false;
        }

        unix = t.ToUnixTimeSeconds();
        return true;
    }

    private static string Iso(long unix) => DateTimeOffset.FromUnixTimeSeconds(unix).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string IsoMillis(long unix) => DateTimeOffset.FromUnixTimeSeconds(unix).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'.000Z'", CultureInfo.InvariantCulture);

    private static int LowerBound(FakeEntry[] sorted, long timestamp)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid].Timestamp < timestamp)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private string EntriesPage(long from, long to, int start, int size)
    {
        List<FakeEntry> all;
        lock (_gate)
        {
            // Not in time order: a stable scramble of the window's entries (NCMEC's order is its own).
            // The window's entries by binary search over a time-sorted copy (rebuilt after a change), so a page of a
            // large feed costs its window, not the whole feed (the bench measures Warden, not the fake).
            _byTime ??= [.. _entries.Values.OrderBy(e => e.Timestamp)];
            var lo = LowerBound(_byTime, from + 1);
            var hi = LowerBound(_byTime, to + 1);
            all = _byTime.Skip(lo).Take(hi - lo)
                .OrderBy(e => (uint)StringComparer.Ordinal.GetHashCode(e.Member + "-" + e.Id) ^ (uint)e.Timestamp * 2654435761u)
                .ThenBy(e => e.Member).ThenBy(e => e.Id, StringComparer.Ordinal)
                .ToList();
        }

        var page = all.Skip(Math.Max(0, start - 1)).Take(Math.Max(1, size)).ToList();
        var sb = new StringBuilder();
        using (var w = XmlWriter.Create(sb, new XmlWriterSettings { Indent = true, OmitXmlDeclaration = true }))
        {
            w.WriteStartElement("queryResult", Ns);
            foreach (var video in new[] { false, true })
            {
                var block = page.Where(e => e.Video == video).ToList();
                w.WriteStartElement(video ? "videos" : "images", Ns);
                w.WriteAttributeString("count", block.Count.ToString(CultureInfo.InvariantCulture));
                if (block.Count > 0)
                {
                    w.WriteAttributeString("maxTimestamp", Iso(block.Max(e => e.Timestamp)));
                }

                foreach (var e in block)
                {
                    w.WriteStartElement(e.Deleted ? (video ? "deletedVideo" : "deletedImage") : (video ? "video" : "image"), Ns);
                    w.WriteStartElement("member", Ns);
                    w.WriteAttributeString("id", e.Member.ToString(CultureInfo.InvariantCulture));
                    w.WriteString("Example Member " + e.Member.ToString(CultureInfo.InvariantCulture));
                    w.WriteEndElement();
                    w.WriteElementString("timestamp", Ns, Iso(e.Timestamp));
                    w.WriteElementString("id", Ns, e.Id);
                    if (!e.Deleted)
                    {
                        if (e.Classification is not null)
                        {
                            w.WriteElementString("classification", Ns, e.Classification);
                        }

                        w.WriteStartElement("fingerprints", Ns);
                        foreach (var (name, value) in e.Fingerprints)
                        {
                            w.WriteStartElement(name, Ns);
                            if (value is null)
                            {
                                w.WriteAttributeString("rel", "self");
                                w.WriteAttributeString("href", LargePath(e.Member, e.Id, name));
                            }
                            else
                            {
                                w.WriteString(value);
                            }

                            w.WriteEndElement();
                        }

                        w.WriteEndElement();
                    }

                    w.WriteEndElement();
                }

                w.WriteEndElement();
            }

            if (start - 1 + page.Count < all.Count)
            {
                w.WriteStartElement("paging", Ns);
                var next = string.Create(CultureInfo.InvariantCulture, $"/v2/entries?from={Uri.EscapeDataString(IsoMillis(from))}&to={Uri.EscapeDataString(IsoMillis(to))}&start={start + page.Count}&size={size}&max={all.Count}");
                w.WriteElementString("next", Ns, next); // XmlWriter escapes & as &amp;, as NCMEC's pages do
                w.WriteEndElement();
            }

            w.WriteEndElement();
        }

        return "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n" + sb;
    }

    private static async Task WriteAsync(HttpListenerContext ctx, int status, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/xml;charset=UTF-8";
        ctx.Response.ContentLength64 = bytes.Length;
        await ctx.Response.OutputStream.WriteAsync(bytes);
        ctx.Response.Close();
    }

    public async ValueTask DisposeAsync()
    {
        // Close only (Stop then Close makes the managed listener look its endpoint up again, re-binding the port,
        // which fails with "address in use" once a parallel test has taken that port).
        try
        {
            _listener.Close();
        }
        catch (HttpListenerException)
        {
        }

        try
        {
            await _loop;
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
