using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Warden.Core.Tests.Exchanges;

/// <summary>An HTTP server on 127.0.0.1 (a free port) whose answers a subclass writes; faults can be queued.</summary>
public abstract class FakeHttpServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;

    protected FakeHttpServer(string root)
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

        BaseUrl = $"http://127.0.0.1:{Port}{root}";
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    /// <summary>What a client's base_url is.</summary>
    public string BaseUrl { get; }

    /// <summary>Statuses to answer the next requests with (503, 429 ...), with Retry-After seconds.</summary>
    public ConcurrentQueue<(int Status, int? RetryAfter)> Faults { get; } = new();

    /// <summary>Every request: method, path and query, status answered.</summary>
    public ConcurrentQueue<(string Method, string PathAndQuery, int Status)> Requests { get; } = new();

    /// <summary>Answers one request: status and JSON body (null: none).</summary>
    protected abstract (int Status, JsonNode? Body) Handle(HttpListenerRequest request, string body);

    protected static Dictionary<string, string> Query(HttpListenerRequest request)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var q = request.Url!.Query.TrimStart('?');
        foreach (var part in q.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
            result[key] = eq < 0 ? string.Empty : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
        }

        return result;
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

            _ = Task.Run(async () =>
            {
                try
                {
                    string body;
                    using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8))
                    {
                        body = await reader.ReadToEndAsync();
                    }

                    int status;
                    JsonNode? json;
                    if (Faults.TryDequeue(out var fault))
                    {
                        (status, json) = (fault.Status, new JsonObject { ["error"] = "busy" });
                        if (fault.RetryAfter is { } ra)
                        {
                            ctx.Response.Headers["Retry-After"] = ra.ToString(CultureInfo.InvariantCulture);
                        }
                    }
                    else
                    {
                        (status, json) = Handle(ctx.Request, body);
                    }

                    Requests.Enqueue((ctx.Request.HttpMethod, ctx.Request.Url!.PathAndQuery, status));
                    ctx.Response.StatusCode = status;
                    if (json is not null)
                    {
                        var bytes = Encoding.UTF8.GetBytes(json.ToJsonString());
                        ctx.Response.ContentType = "application/json";
                        ctx.Response.ContentLength64 = bytes.Length;
                        await ctx.Response.OutputStream.WriteAsync(bytes);
                    }

                    ctx.Response.Close();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException or IOException)
                {
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
        GC.SuppressFinalize(this);
    }
}

/// <summary>One StopNCII hash record in its latest state.</summary>
public sealed record StopNciiRecord(string SignalType, string Hash, long Modified, string Status, IReadOnlyList<(string Source, string Value)> Feedbacks);

/// <summary>
/// StopNCII's API as python-threatexchange's client speaks it (<c>exchanges/clients/stopncii/api.py</c> and its
/// tests): <c>GET /v1/FetchHashes?startTimestamp&amp;pageSize[&amp;nextPageToken]</c> with the <c>x-functions-key</c> and
/// <c>Ocp-Apim-Subscription-Key</c> headers (401 otherwise); the listing is the records modified at or after
/// startTimestamp, fixed when its first page is asked for, paged by an opaque base64 token that can be expired;
/// <c>nextSetTimestamp</c> is the newest modification time in the listing; <c>POST /v1/SubmitFeedback</c> with its own
/// function key records the feedback.
/// </summary>
public sealed class FakeStopNcii : FakeHttpServer
{
    private readonly object _gate = new();
    private readonly Dictionary<(string, string), StopNciiRecord> _records = [];
    private readonly Dictionary<string, List<StopNciiRecord>> _listings = new(StringComparer.Ordinal);

    public FakeStopNcii()
        : base("/v1")
    {
    }

    public string FetchKey { get; } = "fetch-" + Guid.NewGuid().ToString("N")[..12];

    public string SubscriptionKey { get; } = "sub-" + Guid.NewGuid().ToString("N")[..12];

    public string FeedbackKey { get; } = "feedback-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Feedback bodies received.</summary>
    public ConcurrentQueue<JsonNode> Feedback { get; } = new();

    /// <summary>Pause before each page (to catch a fetch mid-way).</summary>
    public TimeSpan PageDelay { get; set; }

    public void Put(StopNciiRecord record)
    {
        lock (_gate)
        {
            _records[(record.SignalType, record.Hash)] = record;
        }
    }

    /// <summary>Records whose status is live (neither Withdrawn nor Deleted).</summary>
    public IReadOnlyList<StopNciiRecord> Live()
    {
        lock (_gate)
        {
            return [.. _records.Values.Where(r => r.Status is not ("Withdrawn" or "Deleted"))];
        }
    }

    /// <summary>Every page token issued so far stops working (StopNCII's tokens are not valid for long).</summary>
    public void ExpireTokens()
    {
        lock (_gate)
        {
            _listings.Clear();
        }
    }

    protected override (int Status, JsonNode? Body) Handle(HttpListenerRequest request, string body)
    {
        var path = request.Url!.AbsolutePath;
        if (request.Headers["Ocp-Apim-Subscription-Key"] != SubscriptionKey)
        {
            return (401, new JsonObject { ["statusCode"] = 401, ["message"] = "Access denied due to missing subscription key." });
        }

        if (path == "/v1/SubmitFeedback" && request.HttpMethod == "POST")
        {
            if (request.Headers["x-functions-key"] != FeedbackKey)
            {
                return (401, null);
            }

            Feedback.Enqueue(JsonNode.Parse(body)!);
            return (200, new JsonObject { ["status"] = "ok" });
        }

        if (path != "/v1/FetchHashes" || request.HttpMethod != "GET")
        {
            return (404, null);
        }

        if (request.Headers["x-functions-key"] != FetchKey)
        {
            return (401, null);
        }

        if (PageDelay > TimeSpan.Zero)
        {
            Thread.Sleep(PageDelay);
        }

        var q = Query(request);
        if (!long.TryParse(q.GetValueOrDefault("startTimestamp"), out var start) || !int.TryParse(q.GetValueOrDefault("pageSize"), out var size) || size < 1)
        {
            return (400, new JsonObject { ["message"] = "startTimestamp and pageSize are required" });
        }

        lock (_gate)
        {
            string listingId;
            int offset;
            if (q.TryGetValue("nextPageToken", out var token) && token.Length > 0)
            {
                var parts = Encoding.UTF8.GetString(Convert.FromBase64String(token)).Split('#');
                listingId = parts[0];
                offset = int.Parse(parts[1], CultureInfo.InvariantCulture);
                if (!_listings.ContainsKey(listingId))
                {
                    return (400, new JsonObject { ["message"] = "The continuation token has expired." });
                }
            }
            else
            {
                // Not in time order: the order of the store, fixed for the listing.
                listingId = Guid.NewGuid().ToString("N");
                _listings[listingId] = [.. _records.Values.Where(r => r.Modified >= start).OrderBy(r => r.Hash, StringComparer.Ordinal)];
                offset = 0;
            }

            var listing = _listings[listingId];
            var page = listing.Skip(offset).Take(size).ToList();
            var more = offset + page.Count < listing.Count;
            var records = new JsonArray();
            foreach (var r in page)
            {
                var o = new JsonObject
                {
                    ["lastModtimestamp"] = r.Modified,
                    ["hashValue"] = r.Hash,
                    ["hashStatus"] = r.Status,
                    ["caseNumbers"] = new JsonObject { [Guid.NewGuid().ToString()] = r.Status },
                    ["signalType"] = r.SignalType,
                };
                if (r.Feedbacks.Count > 0)
                {
                    o["CSPFeedbacks"] = new JsonArray([.. r.Feedbacks.Select(f => (JsonNode)new JsonObject { ["source"] = f.Source, ["feedbackValue"] = f.Value, ["tags"] = new JsonArray() })]);
                }

                records.Add(o);
            }

            return (200, new JsonObject
            {
                ["count"] = page.Count,
                ["nextSetTimestamp"] = listing.Count == 0 ? start : listing.Max(r => r.Modified),
                ["nextPageToken"] = more ? Convert.ToBase64String(Encoding.UTF8.GetBytes($"{listingId}#{offset + page.Count}")) : null,
                ["hasMoreRecords"] = more,
                ["hashRecords"] = records,
            });
        }
    }
}

/// <summary>One ThreatExchange indicator in its latest state.</summary>
public sealed record TeIndicator(long Id, string Type, string Indicator, long Updated, bool Deleted, IReadOnlyList<string> Tags);

/// <summary>
/// ThreatExchange's Graph API <c>/{privacy_group}/threat_updates/</c> as python-threatexchange reads it:
/// <c>access_token</c> required (an OAuthException 400 otherwise), updates with <c>last_updated &gt;= start_time</c> in
/// time order, <c>limit</c> per page, an absolute <c>paging.next</c> link (carrying the token and an <c>after</c>
/// cursor), <c>should_delete</c> tombstones, descriptors with owner, status and tags as <c>{data: [{text}]}</c>.
/// </summary>
public sealed class FakeThreatExchange : FakeHttpServer
{
    private readonly object _gate = new();
    private readonly Dictionary<long, TeIndicator> _indicators = [];

    public FakeThreatExchange(long privacyGroup)
        : base("/v21.0")
    {
        PrivacyGroup = privacyGroup;
    }

    public long PrivacyGroup { get; }

    public string Token { get; } = "1234567890|" + Guid.NewGuid().ToString("N");

    /// <summary>A next link to this host (false: to another host, which a client must refuse).</summary>
    public string? NextHostOverride { get; set; }

    public void Put(TeIndicator indicator)
    {
        lock (_gate)
        {
            _indicators[indicator.Id] = indicator;
        }
    }

    public IReadOnlyList<TeIndicator> Live()
    {
        lock (_gate)
        {
            return [.. _indicators.Values.Where(i => !i.Deleted)];
        }
    }

    protected override (int Status, JsonNode? Body) Handle(HttpListenerRequest request, string body)
    {
        var q = Query(request);
        if (q.GetValueOrDefault("access_token") != Token)
        {
            return (400, new JsonObject { ["error"] = new JsonObject { ["message"] = "Invalid OAuth access token.", ["type"] = "OAuthException", ["code"] = 190 } });
        }

        if (request.Url!.AbsolutePath.TrimEnd('/') != $"/v21.0/{PrivacyGroup}/threat_updates")
        {
            return (404, new JsonObject { ["error"] = new JsonObject { ["message"] = "Unsupported get request." } });
        }

        var start = long.TryParse(q.GetValueOrDefault("start_time"), out var s) ? s : 0;
        var limit = int.TryParse(q.GetValueOrDefault("limit"), out var l) ? l : 25;
        var after = q.TryGetValue("after", out var a) ? long.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(a)), CultureInfo.InvariantCulture) : 0;
        var types = q.TryGetValue("types", out var t) ? t.Split(',').ToHashSet(StringComparer.Ordinal) : null;
        lock (_gate)
        {
            var all = _indicators.Values.Where(i => i.Updated >= start && (types is null || types.Contains(i.Type))).OrderBy(i => i.Updated).ThenBy(i => i.Id).ToList();
            var page = all.Skip((int)after).Take(limit).ToList();
            var data = new JsonArray();
            foreach (var i in page)
            {
                var o = new JsonObject
                {
                    ["id"] = i.Id.ToString(CultureInfo.InvariantCulture),
                    ["indicator"] = i.Indicator,
                    ["type"] = i.Type,
                    ["last_updated"] = i.Updated,
                    ["should_delete"] = i.Deleted,
                };
                if (!i.Deleted)
                {
                    o["descriptors"] = new JsonObject
                    {
                        ["data"] = new JsonArray(new JsonObject
                        {
                            ["id"] = (i.Id * 10).ToString(CultureInfo.InvariantCulture),
                            ["owner"] = new JsonObject { ["id"] = "616912251743987" },
                            ["status"] = "MALICIOUS",
                            ["tags"] = new JsonObject { ["data"] = new JsonArray([.. i.Tags.Select(tag => (JsonNode)new JsonObject { ["text"] = tag })]) },
                        }),
                    };
                }

                data.Add(o);
            }

            var result = new JsonObject { ["data"] = data };
            if (after + page.Count < all.Count)
            {
                var host = NextHostOverride ?? $"127.0.0.1:{Port}";
                var cursor = Convert.ToBase64String(Encoding.UTF8.GetBytes((after + page.Count).ToString(CultureInfo.InvariantCulture)));
                var query = string.Join("&", q.Where(kv => kv.Key != "after").Select(kv => kv.Key + "=" + Uri.EscapeDataString(kv.Value)));
                result["paging"] = new JsonObject { ["cursors"] = new JsonObject { ["after"] = cursor }, ["next"] = $"http://{host}/v21.0/{PrivacyGroup}/threat_updates?{query}&after={Uri.EscapeDataString(cursor)}" };
            }

            return (200, result);
        }
    }
}

/// <summary>One HMA bank content item.</summary>
public sealed record HmaContent(long Id, string Bank, bool Enabled, IReadOnlyDictionary<string, string> Signals);

/// <summary>
/// HMA's curation routes as OpenMediaMatch's <c>blueprints/curation.py</c> serves them: <c>GET /c/bank/&lt;name&gt;</c>
/// (404 JSON for an unknown bank) and <c>GET /c/bank/&lt;name&gt;/content/&lt;int:id&gt;?include_signals=true</c>, which
/// answers for any content id whatever bank the path names (HMA does not check), with <c>bank</c>,
/// <c>disable_until_ts</c> (1 enabled, 0 disabled) and <c>signals</c>; 404 for a missing id. No authentication.
/// </summary>
public sealed class FakeHma : FakeHttpServer
{
    private readonly ConcurrentDictionary<long, HmaContent> _content = new();

    public FakeHma()
        : base(string.Empty)
    {
    }

    public HashSet<string> Banks { get; } = new(StringComparer.Ordinal);

    public void Put(HmaContent c) => _content[c.Id] = c;

    public void Remove(long id) => _content.TryRemove(id, out _);

    public IReadOnlyList<HmaContent> All => [.. _content.Values];

    protected override (int Status, JsonNode? Body) Handle(HttpListenerRequest request, string body)
    {
        var parts = request.Url!.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 3 || parts[0] != "c" || parts[1] != "bank" || !Banks.Contains(Uri.UnescapeDataString(parts[2])))
        {
            return (404, new JsonObject { ["message"] = "bank not found" });
        }

        if (parts.Length == 3)
        {
            return (200, new JsonObject { ["name"] = parts[2], ["matching_enabled_ratio"] = 1.0, ["is_allowlist"] = false });
        }

        if (parts.Length != 5 || parts[3] != "content" || !long.TryParse(parts[4], out var id) || !_content.TryGetValue(id, out var c))
        {
            return (404, new JsonObject { ["message"] = "content not found" });
        }

        var o = new JsonObject
        {
            ["id"] = c.Id,
            ["disable_until_ts"] = c.Enabled ? 1 : 0,
            ["original_media_uri"] = null,
            ["bank"] = new JsonObject { ["name"] = c.Bank, ["matching_enabled_ratio"] = 1.0 },
        };
        if (Query(request).GetValueOrDefault("include_signals") == "true")
        {
            var signals = new JsonObject();
            foreach (var (k, v) in c.Signals)
            {
                signals[k] = v;
            }

            o["signals"] = signals;
        }

        return (200, o);
    }
}
