using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Warden.Core.Exchanges;

namespace Warden.Fuzz;

/// <summary>
/// The exchange fetchers, fed by a fake HTTP handler in process: the fuzzed input is what the remote clearinghouse
/// answers. The input is split at <see cref="Separator"/> into bodies served in turn (a page, then the next page or a
/// TMK+PDQF body a page links to; the last repeats), up to <see cref="MaxResponses"/> answers; after that every
/// request is answered 404, so a fetcher that keeps asking ends. A pass may only yield deltas or throw
/// <see cref="ExchangeException"/>.
/// </summary>
public static class ExchangeTargets
{
    /// <summary>Splits one input into the bodies of successive answers.</summary>
    public static readonly byte[] Separator = "\n=====\n"u8.ToArray();

    /// <summary>Answers served with the input before the fake server answers 404.</summary>
    public const int MaxResponses = 8;

    // A fixed "now" keeps NCMEC's time windows (and so the number of requests) the same for every input.
    private static readonly DateTimeOffset Now = new(2025, 1, 10, 19, 0, 0, TimeSpan.Zero);

    // One setup per exchange type (and peer flavour), with a config that keeps a pass to a few requests.
    private static readonly Dictionary<string, (IExchangeType Type, JsonElement Config, string MediaType, string? Secret)> Setups = new(StringComparer.Ordinal)
    {
        ["exchange-ncmec"] = Setup(ExchangeTypes.Ncmec, "application/xml", """{"environment":"test_Industry","base_url":"https://hashsharing.example.org","credentials_env":"K","start_time":"2025-01-10T18:00:00Z","window_seconds":86400,"adaptive_windows":false}""", "user:password"),
        ["exchange-stopncii"] = Setup(ExchangeTypes.StopNcii, "application/json", """{"credentials_env":"K"}""", "a,b"),
        ["exchange-threatexchange"] = Setup(ExchangeTypes.ThreatExchange, "application/json", """{"privacy_group":1,"base_url":"https://graph.example.org/v21.0","credentials_env":"K"}""", "1234567890|abc"),
        ["exchange-peer"] = Setup(ExchangeTypes.Peer, "application/json", """{"base_url":"https://peer.example.org","remote_bank":"b","api_key_env":"K","page_size":100}""", "key"),
        ["exchange-peer-hma"] = Setup(ExchangeTypes.Peer, "application/json", """{"flavor":"hma","base_url":"https://hma.example.org","remote_bank":"b","api_key_env":"K","max_id_gap":3,"parallel":1}""", "key"),
        ["exchange-url-list"] = Setup(ExchangeTypes.UrlList, "text/plain", """{"url":"https://lists.example.org/list.txt","signal_type":"md5"}""", null),
    };

    /// <summary>One target per exchange setup.</summary>
    public static IEnumerable<FuzzTarget> All() => Setups.Select(kv => new FuzzTarget(
        kv.Key,
        $"{kv.Value.Type.GetType().Name}.CreateFetcher(...).FetchAsync (the input is the server's answers)",
        nameof(ExchangeException),
        data => Fetch(kv.Key, data),
        TimeSpan.FromSeconds(10),
        ["Warden.Core.dll"]));

    /// <summary>
    /// One sync pass of target <paramref name="name"/> against a server answering <paramref name="data"/>; returns the
    /// deltas' record count. Exceptions escape (the target catches only <see cref="ExchangeException"/>).
    /// </summary>
    public static async Task<int> PassAsync(string name, byte[] data)
    {
        var (type, config, mediaType, secret) = Setups[name];
        using var http = new HttpClient(new Answers(Split(data), mediaType));
        var runtime = new ExchangeRuntime(http, () => Now, static _ => { }, _ => secret) { Delay = static (_, _) => Task.CompletedTask };
        var fetcher = type.CreateFetcher(config, runtime);
        var records = 0;
        await foreach (var delta in fetcher.FetchAsync(null, CancellationToken.None).ConfigureAwait(false))
        {
            // What the host does with a delta before committing it: the records must be whole.
            foreach (var r in delta.Records)
            {
                ArgumentNullException.ThrowIfNull(r.SignalType);
                ArgumentNullException.ThrowIfNull(r.Signal);
                records++;
            }

            _ = fetcher.ProgressOf(delta.Checkpoint);
        }

        return records;
    }

    private static (IExchangeType, JsonElement, string, string?) Setup(IExchangeType type, string mediaType, string configJson, string? secret)
    {
        using var doc = JsonDocument.Parse(configJson);
        return (type, type.Validate(doc.RootElement).Clone(), mediaType, secret);
    }

    private static void Fetch(string name, byte[] data)
    {
        try
        {
            _ = PassAsync(name, data).GetAwaiter().GetResult();
        }
        catch (ExchangeException)
        {
        }
    }

    /// <summary>The bodies <paramref name="data"/> holds, split at <see cref="Separator"/>.</summary>
    public static List<byte[]> Split(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var bodies = new List<byte[]>();
        var rest = data.AsSpan();
        while (true)
        {
            var at = rest.IndexOf(Separator);
            if (at < 0 || bodies.Count == MaxResponses - 1)
            {
                bodies.Add(rest.ToArray());
                return bodies;
            }

            bodies.Add(rest[..at].ToArray());
            rest = rest[(at + Separator.Length)..];
        }
    }

    /// <summary>Joins bodies into one input (seed corpora).</summary>
    public static byte[] Join(params byte[][] bodies) => [.. bodies.SelectMany((b, i) => i == 0 ? b : [.. Separator, .. b])];

    private sealed class Answers(List<byte[]> bodies, string mediaType) : HttpMessageHandler
    {
        private int _served;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var n = Interlocked.Increment(ref _served) - 1;
            if (n >= MaxResponses)
            {
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound) { Content = new ByteArrayContent([]) });
            }

            var body = bodies[Math.Min(n, bodies.Count - 1)];
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request });
        }
    }
}
