using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Warden.Core.Banks;

namespace Warden.Core.Exchanges.StopNcii;

/// <summary>
/// StopNCII.org's hash exchange API, as python-threatexchange's client speaks it
/// (<c>exchanges/clients/stopncii/api.py</c>): <c>GET {base}/FetchHashes?startTimestamp&amp;pageSize[&amp;nextPageToken]</c>
/// with the <c>x-functions-key</c> and <c>Ocp-Apim-Subscription-Key</c> headers, paged by <c>nextPageToken</c> while
/// <c>hasMoreRecords</c>, the checkpoint moving to the last page's <c>nextSetTimestamp</c>. A record is the current
/// state of one (signalType, hashValue): it replaces what was stored, and a <c>hashStatus</c> of Withdrawn or Deleted
/// is a tombstone. Feedback is <c>POST {base}/SubmitFeedback</c> with its own function key.
/// </summary>
public sealed class StopNciiExchangeType : IExchangeType
{
    /// <summary>StopNCII's API root.</summary>
    public const string DefaultBaseUrl = "https://api.stopncii.org/v1";

    /// <summary>python-threatexchange's first-fetch start (StopNCII's DEFAULT_START_TIME).</summary>
    public const long DefaultStartTimestamp = 10;

    internal static readonly string[] FieldNames = ["base_url", "credentials_env", "credentials_file", "feedback_key_env", "feedback_key_file", "start_timestamp", "page_size", "feedback_tags"];

    /// <inheritdoc />
    public string Name => "stopncii";

    /// <inheritdoc />
    public string Description => "StopNCII.org hash exchange (FetchHashes by timestamp and page token; withdrawn and deleted hashes tombstoned); feedback Blocked / NotBlocked.";

    /// <inheritdoc />
    public ExchangeSchema Schema { get; } = new(
        [
            new("base_url", "string", false, "\"" + DefaultBaseUrl + "\"", "The API root (set it for a proxy or a test server)."),
            new("credentials_env", "string", false, null, "Name of the environment variable holding fetch_function_key,subscription_key (python-threatexchange's TX_STOPNCII_KEYS form)."),
            new("credentials_file", "string", false, null, "A file whose first line is fetch_function_key,subscription_key (when no variable is named)."),
            new("feedback_key_env", "string", false, null, "Name of the environment variable holding the SubmitFeedback function key (needed for feedback only)."),
            new("feedback_key_file", "string", false, null, "A file whose first line is the SubmitFeedback function key."),
            new("start_timestamp", "number", false, "10", "Where a first sync starts (Unix seconds)."),
            new("page_size", "number", false, "800", "Records per FetchHashes page."),
            new("feedback_tags", "list_of_string", false, "[]", "Tags sent with every feedback."),
        ],
        [
            new("fetch_function_key", "string", true, null, "Function key of the FetchHashes endpoint (read from credentials_env / credentials_file)."),
            new("subscription_key", "string", true, null, "Azure API Management subscription key (read from credentials_env / credentials_file)."),
        ]);

    /// <inheritdoc />
    public JsonElement Validate(JsonElement config) => StopNciiConfig.Parse(config).ToJson();

    /// <inheritdoc />
    public IExchangeFetcher CreateFetcher(JsonElement config, ExchangeRuntime runtime) => new StopNciiFetcher(StopNciiConfig.Parse(config), runtime);

    /// <inheritdoc />
    public IExchangeFeedbackWriter? CreateFeedbackWriter(JsonElement config, ExchangeRuntime runtime) => new StopNciiFeedbackWriter(StopNciiConfig.Parse(config), runtime);

    /// <inheritdoc />
    public bool CanWithdrawOpinion => true; // PendingReview

    /// <inheritdoc />
    public string? FeedbackEntryId(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return labels.TryGetValue(TypeLabel, out var type) && labels.TryGetValue(HashLabel, out var hash) && type.Length is > 0 and <= 32 && hash.Length is > 0 and <= 4096
            ? ExternalId(type, hash)
            : null;
    }

    /// <summary>Label holding StopNCII's signal type name (ImagePDQ, VideoMD5, ...).</summary>
    public const string TypeLabel = "stopncii_signal_type";

    /// <summary>Label holding the hash exactly as StopNCII sent it (feedback names it so).</summary>
    public const string HashLabel = "stopncii_hash";

    /// <summary>The external id of a (signalType, hashValue) record: StopNCII's own key.</summary>
    public static string ExternalId(string stopNciiType, string hashValue) => "stopncii:" + stopNciiType + ":" + hashValue;

    /// <summary>StopNCII signal type → Warden signal type; null when Warden does not match it (counted as unsupported).</summary>
    public static string? WardenType(string stopNciiType) => stopNciiType switch
    {
        "ImagePDQ" => "pdq",
        "VideoMD5" => "video_md5",
        "VideoTMK" => "tmk_pdqf", // kept only when the value is in Warden's TMK form; else counted as unsupported
        _ => null,
    };
}

/// <summary>A StopNCII exchange's config (no keys: only where to read them).</summary>
public sealed record StopNciiConfig
{
    public required string BaseUrl { get; init; }

    public string? CredentialsEnv { get; init; }

    public string? CredentialsFile { get; init; }

    public string? FeedbackKeyEnv { get; init; }

    public string? FeedbackKeyFile { get; init; }

    public long StartTimestamp { get; init; } = StopNciiExchangeType.DefaultStartTimestamp;

    public int PageSize { get; init; } = 800;

    public IReadOnlyList<string> FeedbackTags { get; init; } = [];

    /// <summary>Canonical JSON.</summary>
    public JsonElement ToJson() => ConfigReader.Write(
    [
        new("base_url", BaseUrl),
        new("credentials_env", CredentialsEnv),
        new("credentials_file", CredentialsFile),
        new("feedback_key_env", FeedbackKeyEnv),
        new("feedback_key_file", FeedbackKeyFile),
        new("start_timestamp", StartTimestamp),
        new("page_size", PageSize),
        new("feedback_tags", FeedbackTags),
    ]);

    /// <summary>Reads and checks a config; <see cref="ExchangeConfigException"/> names the bad field.</summary>
    public static StopNciiConfig Parse(JsonElement json)
    {
        var f = ConfigReader.Fields(json, "stopncii", StopNciiExchangeType.FieldNames);
        var env = ConfigReader.EnvName(ConfigReader.Str(f, "credentials_env"), "credentials_env", ",:");
        var file = ConfigReader.Str(f, "credentials_file");
        if (env is null && file is null)
        {
            throw new ExchangeConfigException("StopNCII needs keys: set credentials_env (an environment variable holding fetch_function_key,subscription_key) or credentials_file.");
        }

        return new StopNciiConfig
        {
            BaseUrl = ConfigReader.BaseUrl(ConfigReader.Str(f, "base_url"), "base_url", StopNciiExchangeType.DefaultBaseUrl),
            CredentialsEnv = env,
            CredentialsFile = file,
            FeedbackKeyEnv = ConfigReader.EnvName(ConfigReader.Str(f, "feedback_key_env"), "feedback_key_env", ",:"),
            FeedbackKeyFile = ConfigReader.Str(f, "feedback_key_file"),
            StartTimestamp = ConfigReader.Int(f, "start_timestamp", 0, 32503680000, StopNciiExchangeType.DefaultStartTimestamp),
            PageSize = (int)ConfigReader.Int(f, "page_size", 1, 10_000, 800),
            FeedbackTags = ConfigReader.Strings(f, "feedback_tags"),
        };
    }

    /// <summary>The fetch keys from where the config points: (fetch function key, subscription key).</summary>
    internal (string FetchKey, string SubscriptionKey) Keys(ExchangeRuntime runtime)
    {
        var text = ExchangeSecrets.Read(CredentialsEnv, CredentialsFile, runtime, "StopNCII keys");
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            // python-threatexchange's third part (a base URL) is the config's base_url here.
            throw new ExchangeException("The StopNCII keys must be fetch_function_key,subscription_key (set base_url in the config, not in the keys).") { Permanent = true };
        }

        return (parts[0], parts[1]);
    }
}

/// <summary>
/// StopNCII's checkpoint: <see cref="Start"/> is the startTimestamp of the listing being read; while it is paged,
/// <see cref="Token"/> (with <see cref="SavedAt"/>) resumes it. Tokens are "not valid over long periods of time": one
/// older than an hour, or refused, re-reads the listing from <see cref="Start"/> (records replace, so that is harmless).
/// </summary>
internal sealed record StopNciiCheckpoint(long Start, string? Token = null, long? SavedAt = null)
{
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromHours(1);

    public string Serialize() => JsonSerializer.Serialize(new Dictionary<string, object?> { ["start"] = Start, ["token"] = Token, ["saved_at"] = SavedAt });

    public static StopNciiCheckpoint Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var r = doc.RootElement;
            return new StopNciiCheckpoint(
                r.GetProperty("start").GetInt64(),
                r.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null,
                r.TryGetProperty("saved_at", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : null);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ExchangeException("The stored StopNCII checkpoint is not readable; remove and re-add the exchange to start over.", ex);
        }
    }
}

internal sealed class StopNciiFetcher(StopNciiConfig config, ExchangeRuntime runtime) : IExchangeFetcher
{
    private const int MaxPages = 10_000_000;

    public DateTimeOffset? ProgressOf(string? checkpoint) =>
        checkpoint is null ? null : DateTimeOffset.FromUnixTimeSeconds(StopNciiCheckpoint.Parse(checkpoint).Start);

    public async IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (fetchKey, subscriptionKey) = config.Keys(runtime);
        var http = new ExchangeHttp("StopNCII", runtime);
        void Authorize(HttpRequestMessage r)
        {
            r.Headers.Add("x-functions-key", fetchKey);
            r.Headers.Add("Ocp-Apim-Subscription-Key", subscriptionKey);
        }

        var saved = checkpoint is null ? null : StopNciiCheckpoint.Parse(checkpoint);
        var start = saved?.Start ?? config.StartTimestamp;
        var now = runtime.Clock().ToUnixTimeSeconds();
        var token = saved?.Token is { Length: > 0 } t && saved.SavedAt is { } at && now - at <= (long)StopNciiCheckpoint.TokenLifetime.TotalSeconds ? t : null;
        var resumed = token is not null;

        // A resumed token finishes a listing fixed when it began; a fresh listing then brings the pass up to date.
        var again = resumed;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var page = 0; page < MaxPages; page++)
        {
            var uri = new Uri(string.Create(CultureInfo.InvariantCulture, $"{config.BaseUrl}/FetchHashes?startTimestamp={start}&pageSize={config.PageSize}")
                + (token is null ? string.Empty : "&nextPageToken=" + Uri.EscapeDataString(token)));
            JsonDocument? doc;
            try
            {
                doc = await http.GetJsonAsync(uri, Authorize, cancellationToken).ConfigureAwait(false);
            }
            catch (ExchangeException ex) when (resumed && ex.StatusCode is 400 or 404 or 410)
            {
                // A saved token the server no longer takes: read the listing again from its start.
                runtime.Log($"StopNCII: the saved page token was refused (HTTP {ex.StatusCode}); re-reading from {start}");
                token = null;
                resumed = again = false;
                continue;
            }

            resumed = false;
            using (doc)
            {
                var (delta, next, more) = ReadPage(doc!.RootElement, start, now);
                if (more)
                {
                    if (string.IsNullOrEmpty(next) || !seen.Add(next))
                    {
                        throw new ExchangeException("StopNCII said it has more records but sent no new nextPageToken; stopping rather than loop.");
                    }

                    token = next;
                    yield return delta with { Checkpoint = new StopNciiCheckpoint(start, token, runtime.Clock().ToUnixTimeSeconds()).Serialize() };
                    continue;
                }

                yield return delta;
                if (!again)
                {
                    yield break;
                }

                again = false;
                start = StopNciiCheckpoint.Parse(delta.Checkpoint).Start;
                token = null;
                seen.Clear();
            }
        }

        throw new ExchangeException("StopNCII: too many pages in one pass.");
    }

    /// <summary>One FetchHashes body: records, the token and whether there are more (the checkpoint when there are not).</summary>
    private (ExchangeDelta Delta, string? Next, bool More) ReadPage(JsonElement root, long start, long now)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("hasMoreRecords", out var moreEl) || moreEl.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            throw new ExchangeException("StopNCII sent a FetchHashes answer without hasMoreRecords.");
        }

        var more = moreEl.GetBoolean();
        var next = root.TryGetProperty("nextPageToken", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        long? setTimestamp = root.TryGetProperty("nextSetTimestamp", out var ts) && ts.ValueKind == JsonValueKind.Number && ts.TryGetInt64(out var v) && v >= 0 ? v : null;
        if (!more && setTimestamp is null)
        {
            throw new ExchangeException("StopNCII ended a listing without nextSetTimestamp.");
        }

        var records = new List<BankEntryRecord>();
        var unsupported = new Dictionary<string, long>(StringComparer.Ordinal);
        long entries = 0, tombstones = 0, errors = 0;
        if (root.TryGetProperty("hashRecords", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var r in list.EnumerateArray())
            {
                switch (ReadRecord(r, records, unsupported))
                {
                    case RecordKind.Entry:
                        entries++;
                        break;
                    case RecordKind.Tombstone:
                        tombstones++;
                        break;
                    case RecordKind.Error:
                        errors++;
                        break;
                }
            }
        }
        else if (root.TryGetProperty("hashRecords", out var bad) && bad.ValueKind != JsonValueKind.Null)
        {
            throw new ExchangeException("StopNCII sent hashRecords that is not a list.");
        }

        // The checkpoint moves only forward, and only when the listing is read to its end.
        var done = new StopNciiCheckpoint(Math.Max(start, Math.Min(setTimestamp ?? start, now))).Serialize();
        return (new ExchangeDelta(records, done, entries, tombstones, 0, unsupported, errors), next, more);
    }

    private enum RecordKind
    {
        Entry,
        Tombstone,
        Unsupported,
        Error,
    }

    private RecordKind ReadRecord(JsonElement r, List<BankEntryRecord> records, Dictionary<string, long> unsupported)
    {
        string? Text(string name) => r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        var type = Text("signalType");
        var hash = Text("hashValue");
        var status = Text("hashStatus");
        if (string.IsNullOrEmpty(type) || string.IsNullOrEmpty(hash) || hash.Length > 4096 || type.Length > 32)
        {
            runtime.Log("StopNCII: skipped a record without signalType or hashValue");
            return RecordKind.Error;
        }

        var external = StopNciiExchangeType.ExternalId(type, hash);
        if (status is "Withdrawn" or "Deleted")
        {
            // Withdrawn and deleted hashes must be deleted by the client (python-threatexchange's api.py).
            records.Add(new BankEntryRecord(string.Empty, string.Empty, new Dictionary<string, string>(), ExternalId: external, Deleted: true));
            return RecordKind.Tombstone;
        }

        var wardenType = StopNciiExchangeType.WardenType(type);
        if (wardenType is null || !Signals.SignalTypes.TryGet(wardenType, out var signalType) || !signalType.TryNormalize(hash, out var normalized, out _))
        {
            if (wardenType is not null && wardenType != "tmk_pdqf")
            {
                runtime.Log($"StopNCII: skipped a malformed {type} hash");
                return RecordKind.Error;
            }

            unsupported[type] = unsupported.GetValueOrDefault(type) + 1;
            return RecordKind.Unsupported;
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [StopNciiExchangeType.TypeLabel] = type,
            [StopNciiExchangeType.HashLabel] = hash,
            ["category"] = "ncii",
        };
        if (status is { Length: > 0 and <= 32 })
        {
            labels["stopncii_status"] = status;
        }

        if (r.TryGetProperty("lastModtimestamp", out var mod) && mod.ValueKind == JsonValueKind.Number && mod.TryGetInt64(out var modified))
        {
            labels["stopncii_modified"] = modified.ToString(CultureInfo.InvariantCulture);
        }

        if (r.TryGetProperty("caseNumbers", out var cases) && cases.ValueKind == JsonValueKind.Object)
        {
            labels["stopncii_cases"] = cases.EnumerateObject().Count().ToString(CultureInfo.InvariantCulture);
        }

        if (r.TryGetProperty("CSPFeedbacks", out var feedbacks) && feedbacks.ValueKind == JsonValueKind.Array)
        {
            // Other platforms' verdicts, by source, as python-threatexchange summarises them (+blocked, -not blocked).
            var blocked = new SortedSet<string>(StringComparer.Ordinal);
            var notBlocked = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var fb in feedbacks.EnumerateArray())
            {
                if (fb.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                var source = fb.TryGetProperty("source", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : string.Empty;
                var value = fb.TryGetProperty("feedbackValue", out var fv) && fv.ValueKind == JsonValueKind.String ? fv.GetString() : null;
                if (source.Length is 0 or > 64)
                {
                    continue;
                }

                (value == "Blocked" ? blocked : value == "NotBlocked" ? notBlocked : null)?.Add(source);
            }

            if (blocked.Count > 0)
            {
                labels["stopncii_blocked_by"] = string.Join(",", blocked);
            }

            if (notBlocked.Count > 0)
            {
                labels["stopncii_not_blocked_by"] = string.Join(",", notBlocked);
            }
        }

        // A record is the hash's whole current state: the upsert replaces the stored labels.
        records.Add(new BankEntryRecord(signalType.Name, normalized, labels, ExternalId: external));
        return RecordKind.Entry;
    }
}

/// <summary>Opinions as StopNCII CSP feedback: confirmed → Blocked, false positive → NotBlocked, seen → PendingReview.</summary>
internal sealed class StopNciiFeedbackWriter(StopNciiConfig config, ExchangeRuntime runtime) : IExchangeFeedbackWriter
{
    public async Task SendAsync(ExchangeOpinion opinion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(opinion);
        const string prefix = "stopncii:";
        var colon = opinion.ExternalId.StartsWith(prefix, StringComparison.Ordinal) ? opinion.ExternalId.IndexOf(':', prefix.Length) : -1;
        if (colon < 0 || colon == opinion.ExternalId.Length - 1)
        {
            throw new ExchangeException($"'{opinion.ExternalId}' is not a StopNCII entry id (stopncii:TYPE:HASH).") { Permanent = true };
        }

        if (config.FeedbackKeyEnv is null && config.FeedbackKeyFile is null)
        {
            throw new ExchangeException("StopNCII feedback needs the SubmitFeedback function key: set feedback_key_env or feedback_key_file.") { Permanent = true };
        }

        var hash = opinion.ExternalId[(colon + 1)..];
        var value = opinion.Kind switch
        {
            OpinionKind.TruePositive => "Blocked",
            OpinionKind.FalsePositive => "NotBlocked",
            _ => "PendingReview",
        };
        var tags = config.FeedbackTags.ToList();
        if (opinion.Kind == OpinionKind.FalsePositive && opinion.ReasonId is { Length: > 0 } reason && !tags.Contains(reason))
        {
            tags.Add(reason); // StopNCII has no reason ids: a reason travels as a tag
        }

        var (_, subscriptionKey) = config.Keys(runtime);
        var feedbackKey = ExchangeSecrets.Read(config.FeedbackKeyEnv, config.FeedbackKeyFile, runtime, "StopNCII SubmitFeedback key");
        var body = new Dictionary<string, object>
        {
            ["count"] = 1,
            ["hashFeedbacks"] = new[] { new Dictionary<string, object> { ["tags"] = tags, ["feedbackValue"] = value, ["hashValue"] = hash } },
        };
        await new ExchangeHttp("StopNCII", runtime).SendJsonAsync(HttpMethod.Post, new Uri(config.BaseUrl + "/SubmitFeedback"), body, r =>
        {
            r.Headers.Add("x-functions-key", feedbackKey);
            r.Headers.Add("Ocp-Apim-Subscription-Key", subscriptionKey);
        }, cancellationToken).ConfigureAwait(false);
    }
}
