using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Warden.Core.Banks;

namespace Warden.Core.Exchanges.Peer;

/// <summary>
/// Mirrors a bank of another Warden or of a Meta HMA instance through its API (federation between instances).
/// <list type="bullet">
/// <item><b>warden</b>: <c>GET {base}/v1/banks/{bank}/changes?after_seq=N</c>, the peer's change feed of that bank
/// (entries, tombstones, disabled entries in sequence order): a true delta with a checkpoint. A peer whose database
/// was replaced (another <c>database_id</c>) is read again whole, as a snapshot.</item>
/// <item><b>hma</b>: HMA serves no listing of a bank (its <c>/c/bank/&lt;name&gt;/content</c> is a POST; only
/// <c>GET /c/bank/&lt;name&gt;/content/&lt;id&gt;?include_signals=true</c> reads one item), so every pass walks content ids
/// upward until <c>max_id_gap</c> ids in a row are missing, keeps the items of that bank that are enabled, and
/// treats the walk as a snapshot: what the bank no longer holds is tombstoned here.</item>
/// </list>
/// </summary>
public sealed class PeerExchangeType : IExchangeType
{
    internal static readonly string[] FieldNames = ["flavor", "base_url", "remote_bank", "api_key_env", "api_key_file", "page_size", "max_id_gap", "parallel"];

    /// <inheritdoc />
    public string Name => "peer";

    /// <inheritdoc />
    public string Description => "Another Warden's bank (its change feed, a delta with a checkpoint) or an HMA bank (walked item by item, a snapshot).";

    /// <inheritdoc />
    public ExchangeSchema Schema { get; } = new(
        [
            new("flavor", "enum", false, "\"warden\"", "What the peer is: warden (GET /v1/banks/{bank}/changes) or hma (GET /c/bank/{bank}/content/{id}).", ["warden", "hma"]),
            new("base_url", "string", true, null, "The peer's root URL (https; http only on the loopback address)."),
            new("remote_bank", "string", true, null, "The peer's bank to mirror."),
            new("api_key_env", "string", false, null, "Name of the environment variable holding the peer's API key (sent as a Bearer token; Warden peers need a curator key, HMA none)."),
            new("api_key_file", "string", false, null, "A file whose first line is the peer's API key."),
            new("page_size", "number", false, "1000", "warden: changes per page."),
            new("max_id_gap", "number", false, "1000", "hma: missing content ids in a row that end the walk."),
            new("parallel", "number", false, "8", "hma: content items requested at once."),
        ],
        [new("api_key", "string", false, null, "The peer's API key (read from api_key_env / api_key_file).")]);

    /// <inheritdoc />
    public JsonElement Validate(JsonElement config) => PeerConfig.Parse(config).ToJson();

    /// <inheritdoc />
    public IExchangeFetcher CreateFetcher(JsonElement config, ExchangeRuntime runtime)
    {
        var c = PeerConfig.Parse(config);
        return c.Flavor == "hma" ? new HmaPeerFetcher(c, runtime) : new WardenPeerFetcher(c, runtime);
    }

    /// <inheritdoc />
    public IExchangeFeedbackWriter? CreateFeedbackWriter(JsonElement config, ExchangeRuntime runtime) => null;

    /// <inheritdoc />
    public string? FeedbackEntryId(IReadOnlyDictionary<string, string> labels) => null;
}

/// <summary>A peer exchange's config.</summary>
public sealed record PeerConfig
{
    public required string Flavor { get; init; }

    public required string BaseUrl { get; init; }

    public required string RemoteBank { get; init; }

    public string? ApiKeyEnv { get; init; }

    public string? ApiKeyFile { get; init; }

    public int PageSize { get; init; } = 1000;

    public int MaxIdGap { get; init; } = 1000;

    public int Parallel { get; init; } = 8;

    /// <summary>Canonical JSON.</summary>
    public JsonElement ToJson() => ConfigReader.Write(
    [
        new("flavor", Flavor),
        new("base_url", BaseUrl),
        new("remote_bank", RemoteBank),
        new("api_key_env", ApiKeyEnv),
        new("api_key_file", ApiKeyFile),
        new("page_size", PageSize),
        new("max_id_gap", MaxIdGap),
        new("parallel", Parallel),
    ]);

    /// <summary>Reads and checks a config.</summary>
    public static PeerConfig Parse(JsonElement json)
    {
        var f = ConfigReader.Fields(json, "peer", PeerExchangeType.FieldNames);
        var flavor = (ConfigReader.Str(f, "flavor") ?? "warden").ToLowerInvariant();
        if (flavor is not ("warden" or "hma"))
        {
            throw new ExchangeConfigException($"flavor '{flavor}' is not warden or hma.");
        }

        var bank = ConfigReader.Str(f, "remote_bank", 200) ?? throw new ExchangeConfigException("remote_bank is required: the peer's bank to mirror.");
        if (bank.AsSpan().ContainsAny('/', '?', '#') || bank.Contains("..", StringComparison.Ordinal))
        {
            throw new ExchangeConfigException($"remote_bank '{bank}' is not a bank name.");
        }

        return new PeerConfig
        {
            Flavor = flavor,
            BaseUrl = ConfigReader.BaseUrl(ConfigReader.Str(f, "base_url"), "base_url", null),
            RemoteBank = bank,
            ApiKeyEnv = ConfigReader.EnvName(ConfigReader.Str(f, "api_key_env"), "api_key_env", string.Empty),
            ApiKeyFile = ConfigReader.Str(f, "api_key_file"),
            PageSize = (int)ConfigReader.Int(f, "page_size", 1, 10_000, 1000),
            MaxIdGap = (int)ConfigReader.Int(f, "max_id_gap", 1, 1_000_000, 1000),
            Parallel = (int)ConfigReader.Int(f, "parallel", 1, 64, 8),
        };
    }

    /// <summary>Adds the API key (when configured) as a Bearer token.</summary>
    internal Action<HttpRequestMessage> Authorizer(ExchangeRuntime runtime)
    {
        if (ApiKeyEnv is null && ApiKeyFile is null)
        {
            return _ => { };
        }

        var key = ExchangeSecrets.Read(ApiKeyEnv, ApiKeyFile, runtime, "peer API key");
        return r => r.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
    }

    internal string BankPath => Uri.EscapeDataString(RemoteBank);
}

/// <summary>A Warden peer's checkpoint: the peer database and the last change sequence committed here.</summary>
internal sealed record WardenPeerCheckpoint(string? DatabaseId, long AfterSeq)
{
    public string Serialize() => JsonSerializer.Serialize(new Dictionary<string, object?> { ["database_id"] = DatabaseId, ["after_seq"] = AfterSeq });

    public static WardenPeerCheckpoint? Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(text);
            var r = doc.RootElement;
            return new WardenPeerCheckpoint(r.TryGetProperty("database_id", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null, r.GetProperty("after_seq").GetInt64());
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ExchangeException("The stored peer checkpoint is not readable; remove and re-add the exchange to start over.", ex);
        }
    }
}

internal sealed class WardenPeerFetcher(PeerConfig config, ExchangeRuntime runtime) : IExchangeFetcher
{
    // A change feed has no time; status shows when the checkpoint was last moved (the host stores it with the commit).
    public DateTimeOffset? ProgressOf(string? checkpoint) => checkpoint is null ? null : runtime.Clock();

    public async IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var authorize = config.Authorizer(runtime);
        var http = new ExchangeHttp("Peer " + config.BaseUrl, runtime);
        var saved = WardenPeerCheckpoint.Parse(checkpoint);
        var after = saved?.AfterSeq ?? 0;
        var snapshot = false;
        var first = true;
        var pages = 0;
        while (true)
        {
            var uri = new Uri(string.Create(CultureInfo.InvariantCulture, $"{config.BaseUrl}/v1/banks/{config.BankPath}/changes?after_seq={after}&limit={config.PageSize}"));
            using var doc = await http.GetJsonAsync(uri, authorize, cancellationToken).ConfigureAwait(false);
            var root = doc!.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("high_water", out var hw) || hw.ValueKind != JsonValueKind.Number || !hw.TryGetInt64(out var high)
                || !root.TryGetProperty("entries", out var list) || list.ValueKind != JsonValueKind.Array
                || !root.TryGetProperty("has_more", out var hm) || hm.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                throw new ExchangeException("The peer sent a changes page without high_water, has_more and entries.");
            }

            var database = root.TryGetProperty("database_id", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            if (first && saved is not null && saved.DatabaseId is not null && database != saved.DatabaseId && !snapshot)
            {
                // Another database behind the same URL (a restore, a rebuild): its sequence numbers mean nothing here.
                runtime.Log("Peer: the peer's database changed; reading the bank again whole");
                snapshot = true;
                after = 0;
                continue;
            }

            first = false;
            if (high < after)
            {
                throw new ExchangeException("The peer's change sequence went backwards; refusing to move the checkpoint.");
            }

            if (++pages > 10_000_000 || (high == after && hm.GetBoolean()))
            {
                throw new ExchangeException("The peer said it has more changes but its high_water did not move; stopping rather than loop.");
            }

            var records = new List<BankEntryRecord>(list.GetArrayLength());
            var unsupported = new Dictionary<string, long>(StringComparer.Ordinal);
            long entries = 0, tombstones = 0, errors = 0;
            foreach (var e in list.EnumerateArray())
            {
                switch (PeerRecords.FromWarden(e, records, unsupported))
                {
                    case 1:
                        entries++;
                        break;
                    case 2:
                        tombstones++;
                        break;
                    case 3:
                        errors++;
                        break;
                }
            }

            after = high;
            var more = hm.GetBoolean();
            var next = new WardenPeerCheckpoint(database, high).Serialize();

            // In a snapshot, pieces before the last keep the old checkpoint: a pass cut short reads the bank again.
            yield return new ExchangeDelta(records, snapshot && more ? checkpoint ?? "{}" : next, entries, tombstones, 0, unsupported, errors)
            {
                Snapshot = snapshot,
                SnapshotEnd = snapshot && !more,
            };
            if (!more)
            {
                yield break;
            }
        }
    }
}

/// <summary>Turning a peer's items into this bank's records.</summary>
internal static class PeerRecords
{
    /// <summary>One change of a Warden peer: 1 entry, 2 tombstone, 3 error, 0 unsupported.</summary>
    public static int FromWarden(JsonElement e, List<BankEntryRecord> records, Dictionary<string, long> unsupported)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("id", out var idEl) || idEl.ValueKind != JsonValueKind.Number || !idEl.TryGetInt64(out var id) || id <= 0)
        {
            return 3;
        }

        var external = "peer-" + id.ToString(CultureInfo.InvariantCulture);
        var deleted = e.TryGetProperty("deleted", out var del) && del.ValueKind == JsonValueKind.True;
        var enabled = !e.TryGetProperty("enabled", out var en) || en.ValueKind != JsonValueKind.False;
        if (deleted || !enabled)
        {
            // A disabled entry matches nothing on the peer: it matches nothing here either until enabled again.
            records.Add(new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: external, Deleted: true));
            return 2;
        }

        var type = e.TryGetProperty("signal_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var signal = e.TryGetProperty("signal", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        if (string.IsNullOrEmpty(type) || string.IsNullOrEmpty(signal))
        {
            return 3;
        }

        if (!Signals.SignalTypes.TryGet(type, out var signalType))
        {
            unsupported[type] = unsupported.GetValueOrDefault(type) + 1;
            return 0;
        }

        if (!signalType.TryNormalize(signal, out var normalized, out _))
        {
            return 3;
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (e.TryGetProperty("labels", out var l) && l.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in l.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.String && p.Name.Length is > 0 and <= 64 && p.Value.GetString()!.Length <= 1024 && labels.Count < 64)
                {
                    labels[p.Name] = p.Value.GetString()!;
                }
            }
        }

        labels["peer_entry_id"] = id.ToString(CultureInfo.InvariantCulture);
        if (e.TryGetProperty("external_id", out var x) && x.ValueKind == JsonValueKind.String && x.GetString() is { Length: > 0 and <= 256 } ext)
        {
            labels["peer_external_id"] = ext;
        }

        var note = e.TryGetProperty("note", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        records.Add(new BankEntryRecord(signalType.Name, normalized, labels, note is { Length: <= 4096 } ? note : null, external));
        return 1;
    }
}

/// <summary>An HMA peer's checkpoint: the highest content id seen in the last complete walk.</summary>
internal sealed record HmaPeerCheckpoint(long MaxId, long FetchedAt)
{
    public string Serialize() => JsonSerializer.Serialize(new Dictionary<string, long> { ["max_id"] = MaxId, ["fetched_at"] = FetchedAt });

    public static HmaPeerCheckpoint? Parse(string? text)
    {
        if (string.IsNullOrEmpty(text) || text == "{}")
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(text);
            return new HmaPeerCheckpoint(doc.RootElement.GetProperty("max_id").GetInt64(), doc.RootElement.GetProperty("fetched_at").GetInt64());
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null; // an unreadable checkpoint only costs a full walk, which every pass is anyway
        }
    }
}

internal sealed class HmaPeerFetcher(PeerConfig config, ExchangeRuntime runtime) : IExchangeFetcher
{
    private const int Batch = 5_000;

    // A peer that answers 200 for every id would otherwise be walked for ever.
    private const long MaxContentId = 1_000_000_000;

    public DateTimeOffset? ProgressOf(string? checkpoint) =>
        HmaPeerCheckpoint.Parse(checkpoint) is { } c ? DateTimeOffset.FromUnixTimeSeconds(c.FetchedAt) : null;

    public async IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var authorize = config.Authorizer(runtime);
        var http = new ExchangeHttp("HMA peer " + config.BaseUrl, runtime);
        var previous = HmaPeerCheckpoint.Parse(checkpoint);
        var started = runtime.Clock().ToUnixTimeSeconds();

        // The bank must exist: a 404 here fails the pass rather than emptying the mirror.
        using (await http.GetJsonAsync(new Uri($"{config.BaseUrl}/c/bank/{config.BankPath}"), authorize, cancellationToken).ConfigureAwait(false))
        {
        }

        var records = new List<BankEntryRecord>(Batch);
        var unsupported = new Dictionary<string, long>(StringComparer.Ordinal);
        long entries = 0, errors = 0, filtered = 0, maxId = 0;
        var gap = 0;
        var next = 1L;

        // Walk at least past the last walk's end, so a run of deleted items cannot end the walk early.
        var floor = previous?.MaxId ?? 0;
        while ((gap < config.MaxIdGap || next <= floor) && next < MaxContentId)
        {
            var ids = Enumerable.Range(0, config.Parallel).Select(i => next + i).ToList();
            next += ids.Count;
            var answers = await Task.WhenAll(ids.Select(id => http.GetJsonAsync(
                new Uri(string.Create(CultureInfo.InvariantCulture, $"{config.BaseUrl}/c/bank/{config.BankPath}/content/{id}?include_signals=true")),
                authorize,
                cancellationToken,
                allowNotFound: true))).ConfigureAwait(false);
            for (var i = 0; i < ids.Count; i++)
            {
                using var doc = answers[i];
                if (doc is null)
                {
                    gap++;
                    continue;
                }

                gap = 0;
                maxId = ids[i];
                switch (Read(doc.RootElement, ids[i], started, records, unsupported))
                {
                    case 1:
                        entries++;
                        break;
                    case 3:
                        errors++;
                        break;
                    case 4:
                        filtered++;
                        break;
                }
            }

            if (records.Count >= Batch)
            {
                yield return new ExchangeDelta(records, checkpoint ?? "{}", entries, 0, filtered, unsupported, errors) { Snapshot = true };
                records = new List<BankEntryRecord>(Batch);
                unsupported = new Dictionary<string, long>(StringComparer.Ordinal);
                entries = errors = filtered = 0;
            }
        }

        yield return new ExchangeDelta(records, new HmaPeerCheckpoint(maxId, started).Serialize(), entries, 0, filtered, unsupported, errors) { Snapshot = true, SnapshotEnd = true };
    }

    /// <summary>One content item: 1 kept, 3 malformed, 4 another bank's or disabled.</summary>
    private int Read(JsonElement c, long id, long now, List<BankEntryRecord> records, Dictionary<string, long> unsupported)
    {
        if (c.ValueKind != JsonValueKind.Object)
        {
            return 3;
        }

        // HMA answers for any content id whatever bank the path names: keep only this bank's items.
        if (!c.TryGetProperty("bank", out var bank) || bank.ValueKind != JsonValueKind.Object || !bank.TryGetProperty("name", out var bn)
            || bn.ValueKind != JsonValueKind.String || bn.GetString() != config.RemoteBank)
        {
            return 4;
        }

        // HMA's disable_until_ts: 1 (ENABLED) or a time in the past is live; 0 (DISABLED) or a future time is not.
        if (c.TryGetProperty("disable_until_ts", out var du) && du.ValueKind == JsonValueKind.Number && du.TryGetInt64(out var until) && (until == 0 || until > now))
        {
            return 4;
        }

        if (!c.TryGetProperty("signals", out var signals) || signals.ValueKind != JsonValueKind.Object)
        {
            return 3;
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["hma_content_id"] = id.ToString(CultureInfo.InvariantCulture) };
        if (c.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty("collab", out var collab) && collab.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in collab.EnumerateObject().Take(16))
            {
                if (p.Value.ValueKind == JsonValueKind.Array && p.Name.Length <= 48)
                {
                    var values = string.Join(",", p.Value.EnumerateArray().Where(v => v.ValueKind == JsonValueKind.String).Select(v => v.GetString()));
                    if (values.Length <= 1024)
                    {
                        labels["hma_collab_" + p.Name] = values;
                    }
                }
            }
        }

        var note = c.TryGetProperty("note", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        var kept = 0;
        foreach (var s in signals.EnumerateObject())
        {
            if (s.Value.ValueKind != JsonValueKind.String || s.Value.GetString() is not { Length: > 0 } value)
            {
                continue;
            }

            if (!Signals.SignalTypes.TryGet(s.Name, out var type))
            {
                unsupported[s.Name] = unsupported.GetValueOrDefault(s.Name) + 1;
                continue;
            }

            if (!type.TryNormalize(value, out var normalized, out _))
            {
                runtime.Log(string.Create(CultureInfo.InvariantCulture, $"HMA peer: skipped content {id}: a malformed {s.Name}"));
                continue;
            }

            // One entry per (content, signal type); a tombstone of "hma-{id}" would take all of them.
            records.Add(new BankEntryRecord(type.Name, normalized, labels, note, string.Create(CultureInfo.InvariantCulture, $"hma-{id}-{type.Name}")));
            kept++;
        }

        return kept > 0 ? 1 : 3;
    }
}
