using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Exchanges.UrlList;

/// <summary>
/// A hash list published as one file at a URL (CSV, JSON Lines, plain, or NCMEC XML), fetched whole and kept in
/// sync as a <b>snapshot</b>: what the file lists is live, what it no longer lists is tombstoned. Refreshes ask
/// with <c>If-None-Match</c> / <c>If-Modified-Since</c>, so an unchanged list costs one 304. HTTPS only, except on
/// the loopback address (a local mirror or a test server); redirects are not followed.
/// </summary>
public sealed class UrlListExchangeType : IExchangeType
{
    /// <summary>Largest list fetched (bytes), so a hostile or broken server cannot exhaust memory or disk.</summary>
    public const long MaxBytes = 4L << 30;

    internal static readonly string[] FieldNames = ["url", "format", "signal_type", "labels"];

    /// <inheritdoc />
    public string Name => "url_list";

    /// <inheritdoc />
    public string Description => "A CSV / JSON Lines / plain / NCMEC XML hash list at an HTTPS URL, refreshed with ETag; the bank mirrors the list (removed lines are tombstoned).";

    /// <inheritdoc />
    public ExchangeSchema Schema { get; } = new(
        [
            new("url", "string", true, null, "The list's URL: https, or http on the loopback address only."),
            new("format", "enum", false, "\"auto\"", "The list's format; auto: from the URL's extension, else from the first bytes.", ["auto", .. BankFileFormats.Names]),
            new("signal_type", "string", false, "\"auto\"", "Plain lists: the type of every line (auto tells MD5 and SHA-1 apart by length); CSV / JSON Lines: the type of rows without one."),
            new("labels", "object", false, "{}", "Labels given to every entry (a row's own labels win)."),
        ],
        null);

    /// <inheritdoc />
    public JsonElement Validate(JsonElement config) => UrlListConfig.Parse(config).ToJson();

    /// <inheritdoc />
    public IExchangeFetcher CreateFetcher(JsonElement config, ExchangeRuntime runtime) => new UrlListFetcher(UrlListConfig.Parse(config), runtime);

    /// <inheritdoc />
    public IExchangeFeedbackWriter? CreateFeedbackWriter(JsonElement config, ExchangeRuntime runtime) => null;

    /// <inheritdoc />
    public string? FeedbackEntryId(IReadOnlyDictionary<string, string> labels) => null;

    /// <summary>The external id a list entry is stored under: one per (type, signal), so a snapshot can retire it alone.</summary>
    public static string ExternalId(string signalType, string signal) => "list:" + signalType + ":" + signal;
}

/// <summary>A URL list exchange's config.</summary>
public sealed record UrlListConfig
{
    /// <summary>The list's URL.</summary>
    public required Uri Url { get; init; }

    /// <summary>The format, or null for auto.</summary>
    public BankFileFormat? Format { get; init; }

    /// <summary>Signal type for plain lists (and rows without one).</summary>
    public string SignalType { get; init; } = ImportOptions.AutoSignalType;

    /// <summary>Labels on every entry.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Canonical JSON.</summary>
    public JsonElement ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("url", Url.AbsoluteUri);
            w.WriteString("format", Format is { } f ? BankFileFormats.Name(f) : "auto");
            w.WriteString("signal_type", SignalType);
            w.WriteStartObject("labels");
            foreach (var (k, v) in Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                w.WriteString(k, v);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    /// <summary>Reads and checks a config; <see cref="ExchangeConfigException"/> names the bad field.</summary>
    public static UrlListConfig Parse(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            throw new ExchangeConfigException("A url_list config is a JSON object.");
        }

        string? url = null, format = null, signalType = null;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in json.EnumerateObject())
        {
            switch (p.Name)
            {
                case "url":
                    url = Str(p);
                    break;
                case "format":
                    format = Str(p);
                    break;
                case "signal_type":
                    signalType = Str(p);
                    break;
                case "labels":
                    if (p.Value.ValueKind == JsonValueKind.Null)
                    {
                        break;
                    }

                    if (p.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw new ExchangeConfigException("labels must be an object of string values.");
                    }

                    foreach (var l in p.Value.EnumerateObject())
                    {
                        if (l.Value.ValueKind != JsonValueKind.String || l.Name.Length is 0 or > 64 || l.Value.GetString()!.Length > 1024)
                        {
                            throw new ExchangeConfigException($"labels.{l.Name}: a label is a name (1-64 characters) with a string value (up to 1024).");
                        }

                        labels[l.Name] = l.Value.GetString()!;
                    }

                    break;
                case "name" or "api" or "enabled" or "bank":
                    break;
                default:
                    throw new ExchangeConfigException($"Unknown url_list config field '{p.Name}'; known: {string.Join(", ", UrlListExchangeType.FieldNames)}.");
            }
        }

        if (string.IsNullOrWhiteSpace(url) || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri))
        {
            throw new ExchangeConfigException("url is required: the list's https URL.");
        }

        if (!string.IsNullOrEmpty(uri.UserInfo) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new ExchangeConfigException("url must not carry user info or a fragment (credentials never go in a stored config).");
        }

        if (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && IsLoopback(uri)))
        {
            throw new ExchangeConfigException($"url '{uri}' must be https (http only on the loopback address).");
        }

        BankFileFormat? parsed = null;
        if (!string.IsNullOrWhiteSpace(format) && !string.Equals(format.Trim(), "auto", StringComparison.OrdinalIgnoreCase))
        {
            parsed = BankFileFormats.TryParse(format.Trim(), out var f) ? f : throw new ExchangeConfigException($"format '{format}' is not one of auto, {string.Join(", ", BankFileFormats.Names)}.");
        }

        var type = string.IsNullOrWhiteSpace(signalType) ? ImportOptions.AutoSignalType : signalType.Trim().ToLowerInvariant();
        if (type != ImportOptions.AutoSignalType && !Signals.SignalTypes.TryGet(type, out _))
        {
            throw new ExchangeConfigException($"signal_type '{signalType}' is not a known signal type (or auto).");
        }

        return new UrlListConfig { Url = uri, Format = parsed, SignalType = type, Labels = labels };
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var ip) && IPAddress.IsLoopback(ip));

    private static string? Str(JsonProperty p) => p.Value.ValueKind switch
    {
        JsonValueKind.String => p.Value.GetString(),
        JsonValueKind.Null => null,
        _ => throw new ExchangeConfigException($"{p.Name} must be a string."),
    };
}

/// <summary>One refresh of a URL list: a conditional GET, then the whole list as one snapshot.</summary>
internal sealed class UrlListFetcher(UrlListConfig config, ExchangeRuntime runtime) : IExchangeFetcher
{
    private const int Batch = 5_000;

    public DateTimeOffset? ProgressOf(string? checkpoint) => Checkpoint.Read(checkpoint)?.FetchedAt;

    public async IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var previous = Checkpoint.Read(checkpoint);
        using var request = new HttpRequestMessage(HttpMethod.Get, config.Url);
        if (previous?.ETag is { Length: > 0 } etag && EntityTagHeaderValueTryParse(etag) is { } tag)
        {
            request.Headers.IfNoneMatch.Add(tag);
        }
        else if (previous?.LastModified is { } modified)
        {
            request.Headers.IfModifiedSince = modified;
        }

        using var response = await runtime.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        var now = runtime.Clock();
        if (response.StatusCode == HttpStatusCode.NotModified)
        {
            // Unchanged: nothing to write; the checkpoint's time moves so status shows the list is current.
            yield return new ExchangeDelta([], (previous! with { FetchedAt = now }).Write(), 0, 0, 0, new Dictionary<string, long>(), 0);
            yield break;
        }

        if (!response.IsSuccessStatusCode)
        {
            var code = (int)response.StatusCode;
            var retry = response.Headers.RetryAfter is { } ra ? ra.Delta ?? (ra.Date is { } d ? d - now : null) : null;
            throw new ExchangeException(code is >= 300 and < 400
                ? $"The list's server answered {code} (a redirect); redirects are not followed: set url to the final address."
                : $"The list's server answered {code}.")
            { StatusCode = code, RetryAfter = retry is { } r && r > TimeSpan.Zero ? r : null, Permanent = code is 404 or 410 };
        }

        if (response.Content.Headers.ContentLength is > UrlListExchangeType.MaxBytes)
        {
            throw new ExchangeException($"The list is larger than {UrlListExchangeType.MaxBytes} bytes.") { Permanent = true };
        }

        var next = new Checkpoint(response.Headers.ETag?.ToString(), response.Content.Headers.LastModified, now);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using var stream = new BufferedStream(body, 1 << 16);

        // The format: set, or from the URL's extension, or from the first bytes.
        var head = new byte[4096];
        var got = 0;
        while (got < head.Length && await stream.ReadAsync(head.AsMemory(got), cancellationToken).ConfigureAwait(false) is > 0 and var n)
        {
            got += n;
        }

        var format = config.Format ?? BankFileFormats.Detect(config.Url.AbsolutePath, head.AsSpan(0, got))
            ?? (got < head.Length && IsBlank(head.AsSpan(0, got)) ? BankFileFormat.Plain : (BankFileFormat?)null) // an empty list (blank lines, comments) is a list
            ?? throw new ExchangeException("Cannot tell the list's format from its URL or first bytes; set format.") { Permanent = true };
        long errors = 0;
        var report = new ImportReport();
        var options = new ImportOptions(format, config.SignalType, SkipBadLines: true, SourceName: config.Url.GetLeftPart(UriPartial.Path))
        {
            DefaultLabels = config.Labels,
            OnError = _ => errors++,
            MaxXmlCharacters = UrlListExchangeType.MaxBytes,
        };
        using var whole = new PrefixedStream(head.AsMemory(0, got), stream, UrlListExchangeType.MaxBytes);
        var records = new List<BankEntryRecord>(Batch);
        long entries = 0;
        using var reader = BankFileReader.Read(whole, options, report).GetEnumerator();
        while (true)
        {
            // A list the reader refuses whole (a CSV header naming a column twice, a broken XML page) ends the pass
            // as an exchange failure: the sync host handles ExchangeException, not the reader's own refusal.
            try
            {
                if (!reader.MoveNext())
                {
                    break;
                }
            }
            catch (BankFormatException ex)
            {
                throw new ExchangeException($"The list cannot be read: {ex.Message}", ex) { Permanent = true };
            }

            var r = reader.Current;
            cancellationToken.ThrowIfCancellationRequested();
            if (r.Deleted)
            {
                continue; // a snapshot: only what is listed is live
            }

            var labels = r.ExternalId is { Length: > 0 } own && !r.Labels.ContainsKey("list_id")
                ? new Dictionary<string, string>(r.Labels, StringComparer.Ordinal) { ["list_id"] = own }
                : r.Labels;
            records.Add(r with { ExternalId = UrlListExchangeType.ExternalId(r.SignalType, r.Signal), Labels = labels });
            entries++;
            if (records.Count >= Batch)
            {
                // Mid-snapshot pieces keep the old checkpoint: a pass cut short re-reads the list.
                yield return new ExchangeDelta(records, checkpoint ?? Checkpoint.Empty, records.Count, 0, 0, new Dictionary<string, long>(), 0) { Snapshot = true };
                records = new List<BankEntryRecord>(Batch);
            }
        }

        var unsupported = report.UnsupportedTypes.ToDictionary(k => k.Key, k => k.Value, StringComparer.Ordinal);
        yield return new ExchangeDelta(records, next.Write(), records.Count, 0, 0, unsupported, errors) { Snapshot = true, SnapshotEnd = true };
        runtime.Log(string.Create(CultureInfo.InvariantCulture, $"url_list: {entries} entries, {errors} bad lines"));
    }

    private static bool IsBlank(ReadOnlySpan<byte> text)
    {
        foreach (var line in System.Text.Encoding.UTF8.GetString(text).Split('\n'))
        {
            var t = line.Trim().TrimStart('\uFEFF');
            if (t.Length > 0 && t[0] != '#')
            {
                return false;
            }
        }

        return true;
    }

    private static System.Net.Http.Headers.EntityTagHeaderValue? EntityTagHeaderValueTryParse(string text) =>
        System.Net.Http.Headers.EntityTagHeaderValue.TryParse(text, out var tag) ? tag : null;

    internal sealed record Checkpoint(string? ETag, DateTimeOffset? LastModified, DateTimeOffset FetchedAt)
    {
        public const string Empty = "{}";

        public static Checkpoint? Read(string? text)
        {
            if (string.IsNullOrEmpty(text) || text == Empty)
            {
                return null;
            }

            try
            {
                using var doc = JsonDocument.Parse(text);
                var r = doc.RootElement;
                return new Checkpoint(
                    r.TryGetProperty("etag", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null,
                    r.TryGetProperty("last_modified", out var m) && m.ValueKind == JsonValueKind.Number ? DateTimeOffset.FromUnixTimeSeconds(m.GetInt64()) : null,
                    r.TryGetProperty("fetched_at", out var f) && f.ValueKind == JsonValueKind.Number ? DateTimeOffset.FromUnixTimeSeconds(f.GetInt64()) : DateTimeOffset.UnixEpoch);
            }
            catch (JsonException)
            {
                return null; // an unreadable checkpoint only costs a full fetch
            }
        }

        public string Write() => JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["etag"] = ETag,
            ["last_modified"] = LastModified?.ToUnixTimeSeconds(),
            ["fetched_at"] = FetchedAt.ToUnixTimeSeconds(),
        });
    }
}

/// <summary>Bytes already read, then the rest of a stream, capped at a total length (read-only, forward-only).</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest, long max) : Stream
{
    private ReadOnlyMemory<byte> _prefix = prefix;
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n;
        if (!_prefix.IsEmpty)
        {
            n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
        }
        else
        {
            n = rest.Read(buffer);
        }

        _read += n;
        return _read > max ? throw new ExchangeException($"The list is larger than {max} bytes.") { Permanent = true } : n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
