using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Warden.Core.Banks;

namespace Warden.Core.Exchanges.ThreatExchange;

/// <summary>
/// Meta's ThreatExchange, one privacy group, as python-threatexchange's client reads it
/// (<c>exchanges/impl/fb_threatexchange_api.py</c>, <c>clients/fb_threatexchange/api.py</c>):
/// <c>GET {base}/{privacy_group}/threat_updates/?access_token&amp;start_time&amp;limit&amp;fields</c>, following the Graph
/// API's absolute <c>paging.next</c> link (on the same host only), the checkpoint moving to the highest
/// <c>last_updated</c> seen. An update is keyed by the indicator id; <c>should_delete</c> (or no descriptors,
/// ThreatExchange #834) is a tombstone. PDQ, MD5, SHA-1, SHA-256 and video MD5 indicators are stored; other types are
/// counted as unsupported.
/// </summary>
public sealed class ThreatExchangeType : IExchangeType
{
    /// <summary>The Graph API root python-threatexchange uses.</summary>
    public const string DefaultBaseUrl = "https://graph.facebook.com/v21.0";

    /// <summary>The fields python-threatexchange asks for.</summary>
    public const string Fields = "indicator,type,last_updated,should_delete,descriptors{id,reactions,owner{id},tags,status}";

    internal static readonly string[] FieldNames = ["privacy_group", "base_url", "credentials_env", "credentials_file", "start_time", "page_size", "types"];

    /// <inheritdoc />
    public string Name => "fb_threatexchange";

    /// <inheritdoc />
    public string Description => "Meta ThreatExchange privacy group (threat_updates with a checkpoint; should_delete tombstoned); PDQ, MD5, SHA-1, SHA-256 and video MD5 indicators.";

    /// <inheritdoc />
    public ExchangeSchema Schema { get; } = new(
        [
            new("privacy_group", "number", true, null, "ThreatPrivacyGroup ID of the collaboration."),
            new("base_url", "string", false, "\"" + DefaultBaseUrl + "\"", "The Graph API root (set it for a proxy or a test server)."),
            new("credentials_env", "string", false, null, "Name of the environment variable holding the app access token (APP_ID|SECRET, python-threatexchange's TX_ACCESS_TOKEN)."),
            new("credentials_file", "string", false, null, "A file whose first line is the access token (when no variable is named)."),
            new("start_time", "number", false, "0", "Where a first sync starts (Unix seconds; 0: everything ThreatExchange keeps)."),
            new("page_size", "number", false, "100", "Updates per page (limit)."),
            new("types", "list_of_string", false, "[]", "Only these indicator types (HASH_PDQ, HASH_MD5, ...); empty: all."),
        ],
        [new("api_token", "string", true, null, "Meta app access token (read from credentials_env / credentials_file).")]);

    /// <inheritdoc />
    public JsonElement Validate(JsonElement config) => ThreatExchangeConfig.Parse(config).ToJson();

    /// <inheritdoc />
    public IExchangeFetcher CreateFetcher(JsonElement config, ExchangeRuntime runtime) => new ThreatExchangeFetcher(ThreatExchangeConfig.Parse(config), runtime);

    /// <inheritdoc />
    public IExchangeFeedbackWriter? CreateFeedbackWriter(JsonElement config, ExchangeRuntime runtime) => null;

    /// <inheritdoc />
    public string? FeedbackEntryId(IReadOnlyDictionary<string, string> labels) => null;

    /// <summary>The external id of an indicator.</summary>
    public static string ExternalId(string indicatorId) => "te-" + indicatorId;

    /// <summary>ThreatExchange indicator type → Warden signal type; null when not matched (counted as unsupported).</summary>
    public static string? WardenType(string indicatorType) => indicatorType switch
    {
        "HASH_PDQ" => "pdq",
        "HASH_MD5" => "md5",
        "HASH_SHA1" => "sha1",
        "HASH_SHA256" => "sha256",
        "HASH_VIDEO_MD5" => "video_md5",
        _ => null,
    };
}

/// <summary>A ThreatExchange exchange's config.</summary>
public sealed record ThreatExchangeConfig
{
    public required long PrivacyGroup { get; init; }

    public required string BaseUrl { get; init; }

    public string? CredentialsEnv { get; init; }

    public string? CredentialsFile { get; init; }

    public long StartTime { get; init; }

    public int PageSize { get; init; } = 100;

    public IReadOnlyList<string> Types { get; init; } = [];

    /// <summary>Canonical JSON.</summary>
    public JsonElement ToJson() => ConfigReader.Write(
    [
        new("privacy_group", PrivacyGroup),
        new("base_url", BaseUrl),
        new("credentials_env", CredentialsEnv),
        new("credentials_file", CredentialsFile),
        new("start_time", StartTime),
        new("page_size", PageSize),
        new("types", Types),
    ]);

    private static readonly System.Buffers.SearchValues<char> TypeChars = System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

    /// <summary>Reads and checks a config.</summary>
    public static ThreatExchangeConfig Parse(JsonElement json)
    {
        var f = ConfigReader.Fields(json, "fb_threatexchange", ThreatExchangeType.FieldNames);
        if (!f.ContainsKey("privacy_group"))
        {
            throw new ExchangeConfigException("privacy_group is required: the ThreatPrivacyGroup ID.");
        }

        var env = ConfigReader.EnvName(ConfigReader.Str(f, "credentials_env"), "credentials_env", "|");
        var file = ConfigReader.Str(f, "credentials_file");
        if (env is null && file is null)
        {
            throw new ExchangeConfigException("ThreatExchange needs an access token: set credentials_env (an environment variable holding APP_ID|SECRET) or credentials_file.");
        }

        var types = ConfigReader.Strings(f, "types");
        if (types.FirstOrDefault(t => t.AsSpan().ContainsAnyExcept(TypeChars)) is { } bad)
        {
            throw new ExchangeConfigException($"types: '{bad}' is not a ThreatExchange indicator type (HASH_PDQ, HASH_MD5, ...).");
        }

        return new ThreatExchangeConfig
        {
            PrivacyGroup = ConfigReader.Int(f, "privacy_group", 1, long.MaxValue, 0),
            BaseUrl = ConfigReader.BaseUrl(ConfigReader.Str(f, "base_url"), "base_url", ThreatExchangeType.DefaultBaseUrl),
            CredentialsEnv = env,
            CredentialsFile = file,
            StartTime = ConfigReader.Int(f, "start_time", 0, 32503680000, 0),
            PageSize = (int)ConfigReader.Int(f, "page_size", 1, 1000, 100),
            Types = types,
        };
    }
}

/// <summary>
/// ThreatExchange's checkpoint: the highest <c>last_updated</c> of a committed update (python-threatexchange's
/// <c>update_time</c>); a pass resumes with <c>start_time</c> = it, so the updates of that second are read again
/// (harmless: an update carries the indicator's whole state).
/// </summary>
internal sealed record ThreatExchangeCheckpoint(long UpdateTime, long LastFetchTime)
{
    public string Serialize() => JsonSerializer.Serialize(new Dictionary<string, long> { ["update_time"] = UpdateTime, ["last_fetch_time"] = LastFetchTime });

    public static ThreatExchangeCheckpoint Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return new ThreatExchangeCheckpoint(doc.RootElement.GetProperty("update_time").GetInt64(), doc.RootElement.TryGetProperty("last_fetch_time", out var l) ? l.GetInt64() : 0);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ExchangeException("The stored ThreatExchange checkpoint is not readable; remove and re-add the exchange to start over.", ex);
        }
    }
}

internal sealed class ThreatExchangeFetcher(ThreatExchangeConfig config, ExchangeRuntime runtime) : IExchangeFetcher
{
    /// <summary>ThreatExchange keeps deletions 90 days; python-threatexchange calls a checkpoint stale after 85.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromDays(85);

    public DateTimeOffset? ProgressOf(string? checkpoint) =>
        checkpoint is null ? null : DateTimeOffset.FromUnixTimeSeconds(ThreatExchangeCheckpoint.Parse(checkpoint).UpdateTime);

    public async IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var token = ExchangeSecrets.Read(config.CredentialsEnv, config.CredentialsFile, runtime, "ThreatExchange access token");
        var http = new ExchangeHttp("ThreatExchange", runtime);
        var saved = checkpoint is null ? null : ThreatExchangeCheckpoint.Parse(checkpoint);
        var now = runtime.Clock().ToUnixTimeSeconds();
        if (saved is not null && saved.LastFetchTime > 0 && now - saved.LastFetchTime > (long)StaleAfter.TotalSeconds)
        {
            // Deletions older than 90 days are gone from threat_updates: this copy may hold indicators deleted since.
            runtime.Log("ThreatExchange: the checkpoint is older than 85 days; deletions since may be missing (re-add the exchange to start over)");
        }

        var highest = saved?.UpdateTime ?? config.StartTime;
        var baseUri = new Uri(config.BaseUrl);
        var query = string.Create(CultureInfo.InvariantCulture, $"?access_token={Uri.EscapeDataString(token)}&limit={config.PageSize}&fields={Uri.EscapeDataString(ThreatExchangeType.Fields)}")
            + (highest > 0 ? string.Create(CultureInfo.InvariantCulture, $"&start_time={highest}") : string.Empty)
            + (config.Types.Count > 0 ? "&types=" + Uri.EscapeDataString(string.Join(",", config.Types)) : string.Empty);
        Uri? uri = new(string.Create(CultureInfo.InvariantCulture, $"{config.BaseUrl}/{config.PrivacyGroup}/threat_updates/") + query);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var any = false;
        while (uri is not null)
        {
            using var doc = await http.GetJsonAsync(uri, _ => { }, cancellationToken).ConfigureAwait(false);
            var root = doc!.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            {
                throw new ExchangeException("ThreatExchange sent a threat_updates page without a data list.");
            }

            var records = new List<BankEntryRecord>(data.GetArrayLength());
            var unsupported = new Dictionary<string, long>(StringComparer.Ordinal);
            long entries = 0, tombstones = 0, errors = 0, filtered = 0;
            var pageHighest = highest;
            foreach (var u in data.EnumerateArray())
            {
                switch (Read(u, records, unsupported, ref pageHighest))
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
                    case 4:
                        filtered++;
                        break;
                }
            }

            any |= data.GetArrayLength() > 0;
            highest = Math.Max(highest, Math.Min(pageHighest, now)); // never backwards, never past now
            var next = root.TryGetProperty("paging", out var paging) && paging.ValueKind == JsonValueKind.Object
                && paging.TryGetProperty("next", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            uri = next is null ? null : NextUri(baseUri, next, seen);
            yield return new ExchangeDelta(records, new ThreatExchangeCheckpoint(highest, now).Serialize(), entries, tombstones, filtered, unsupported, errors);
        }

        if (!any)
        {
            runtime.Log("ThreatExchange: no updates");
        }
    }

    /// <summary>
    /// A Graph API <c>paging.next</c> link: absolute, and followed only on the configured scheme, host and port (it
    /// carries the access token). A link seen before ends the pass with an error rather than a loop.
    /// </summary>
    private static Uri NextUri(Uri baseUri, string next, HashSet<string> seen)
    {
        if (!Uri.TryCreate(next, UriKind.Absolute, out var uri) || uri.Scheme != baseUri.Scheme || !string.Equals(uri.Host, baseUri.Host, StringComparison.OrdinalIgnoreCase)
            || uri.Port != baseUri.Port || !string.IsNullOrEmpty(uri.UserInfo))
        {
            throw new ExchangeException("ThreatExchange sent a paging link to another server; refused (it would carry the access token).");
        }

        if (!seen.Add(uri.AbsoluteUri))
        {
            throw new ExchangeException("ThreatExchange sent the same paging link twice; stopping rather than loop.");
        }

        return uri;
    }

    /// <summary>1 entry, 2 tombstone, 3 error, 4 filtered/unsupported.</summary>
    private int Read(JsonElement u, List<BankEntryRecord> records, Dictionary<string, long> unsupported, ref long highest)
    {
        if (u.ValueKind != JsonValueKind.Object)
        {
            return 3;
        }

        string? Text(string name) => u.TryGetProperty(name, out var p) ? p.ValueKind switch
        {
            JsonValueKind.String => p.GetString(),
            JsonValueKind.Number => p.GetRawText(),
            _ => null,
        } : null;
        var id = Text("id");
        var type = Text("type");
        var indicator = Text("indicator");
        if (string.IsNullOrEmpty(id) || id.Length > 32 || id.AsSpan().ContainsAnyExceptInRange('0', '9') || string.IsNullOrEmpty(type) || type.Length > 64)
        {
            runtime.Log("ThreatExchange: skipped an update without a numeric id or a type");
            return 3;
        }

        if (long.TryParse(Text("last_updated"), NumberStyles.None, CultureInfo.InvariantCulture, out var updated))
        {
            highest = Math.Max(highest, updated);
        }

        var hasDescriptors = u.TryGetProperty("descriptors", out var descriptors) && descriptors.ValueKind == JsonValueKind.Object;
        var deleted = (u.TryGetProperty("should_delete", out var del) && del.ValueKind == JsonValueKind.True) || !hasDescriptors;
        var external = ThreatExchangeType.ExternalId(id);
        if (deleted)
        {
            records.Add(new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: external, Deleted: true));
            return 2;
        }

        var wardenType = ThreatExchangeType.WardenType(type);
        if (wardenType is null || !Signals.SignalTypes.TryGet(wardenType, out var signalType))
        {
            unsupported[type] = unsupported.GetValueOrDefault(type) + 1;
            return 4;
        }

        if (string.IsNullOrEmpty(indicator) || indicator.Length > 4096 || !signalType.TryNormalize(indicator, out var normalized, out _))
        {
            runtime.Log($"ThreatExchange: skipped indicator {id}: not a valid {type}");
            return 3;
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["te_indicator_id"] = id, ["te_type"] = type };
        if (updated > 0)
        {
            labels["te_last_updated"] = updated.ToString(CultureInfo.InvariantCulture);
        }

        var tags = new SortedSet<string>(StringComparer.Ordinal);
        var statuses = new SortedSet<string>(StringComparer.Ordinal);
        var owners = new SortedSet<string>(StringComparer.Ordinal);
        if (descriptors.TryGetProperty("data", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var d in list.EnumerateArray())
            {
                if (d.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                if (d.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String && s.GetString() is { Length: > 0 and <= 32 } status)
                {
                    statuses.Add(status);
                }

                if (d.TryGetProperty("owner", out var o) && o.ValueKind == JsonValueKind.Object && o.TryGetProperty("id", out var oid) && oid.ValueKind is JsonValueKind.String or JsonValueKind.Number)
                {
                    owners.Add(oid.ValueKind == JsonValueKind.String ? oid.GetString()! : oid.GetRawText());
                }

                // Tags come as a list of strings or as {data: [{text}]} (python-threatexchange reads both).
                if (d.TryGetProperty("tags", out var t))
                {
                    var items = t.ValueKind == JsonValueKind.Array ? t : t.ValueKind == JsonValueKind.Object && t.TryGetProperty("data", out var td) && td.ValueKind == JsonValueKind.Array ? td : default;
                    if (items.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var tag in items.EnumerateArray())
                        {
                            var text = tag.ValueKind == JsonValueKind.String ? tag.GetString()
                                : tag.ValueKind == JsonValueKind.Object && tag.TryGetProperty("text", out var tx) && tx.ValueKind == JsonValueKind.String ? tx.GetString() : null;
                            if (text is { Length: > 0 and <= 64 } && tags.Count < 32)
                            {
                                tags.Add(text);
                            }
                        }
                    }
                }
            }
        }

        Put(labels, "te_tags", tags);
        Put(labels, "te_status", statuses);
        Put(labels, "te_owners", owners);

        // An indicator id always names the same indicator: the upsert replaces its labels.
        records.Add(new BankEntryRecord(signalType.Name, normalized, labels, ExternalId: external));
        return 1;
    }

    private static void Put(Dictionary<string, string> labels, string name, SortedSet<string> values)
    {
        var text = string.Join(",", values);
        if (text.Length is > 0 and <= 1024)
        {
            labels[name] = text;
        }
    }
}
