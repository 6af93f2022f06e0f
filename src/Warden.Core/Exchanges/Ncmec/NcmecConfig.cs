using System.Globalization;
using System.Text.Json;

namespace Warden.Core.Exchanges.Ncmec;

/// <summary>
/// An NCMEC Hash Sharing v2 exchange's config, as stored (a JSON object with these snake_case names, HMA's where HMA
/// has one). Credentials are never part of it: <see cref="CredentialsEnv"/> or <see cref="CredentialsFile"/> names
/// where <c>user:password</c> is read at fetch time.
/// </summary>
public sealed record NcmecConfig
{
    /// <summary>The environment (Industry, NGO, test_Industry, ...): which list is read.</summary>
    public required string Environment { get; init; }

    /// <summary>The environment root; defaults to the environment's known URL. A test server or proxy sets it.</summary>
    public required string BaseUrl { get; init; }

    /// <summary>Name of the environment variable that holds <c>user:password</c>.</summary>
    public string? CredentialsEnv { get; init; }

    /// <summary>A file whose first line is <c>user:password</c> (when no variable is named).</summary>
    public string? CredentialsFile { get; init; }

    /// <summary>Only entries of these member (ESP) ids; empty takes every member.</summary>
    public IReadOnlyList<long> OnlyEspIds { get; init; } = [];

    /// <summary>Where a first sync starts (UTC); the default, 1970, reads the whole list.</summary>
    public DateTimeOffset StartTime { get; init; } = DateTimeOffset.UnixEpoch;

    /// <summary>Shrink a window whose first page has more (and grow quiet ones), as python-threatexchange does.</summary>
    public bool AdaptiveWindows { get; init; } = true;

    /// <summary>The first window's length in seconds; 0 asks for everything up to now in one window.</summary>
    public long WindowSeconds { get; init; }

    /// <summary>A window ends this many seconds before now, so entries written in the current second are not split.</summary>
    public long EndLagSeconds { get; init; } = 5;

    /// <summary>The reason (a GUID, or a reason's name in NCMEC's list) sent with a false positive that names none.</summary>
    public string? FeedbackReason { get; init; }

    /// <summary>Writes the canonical JSON form.</summary>
    public JsonElement ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("environment", Environment);
            w.WriteString("base_url", BaseUrl);
            if (CredentialsEnv is not null)
            {
                w.WriteString("credentials_env", CredentialsEnv);
            }

            if (CredentialsFile is not null)
            {
                w.WriteString("credentials_file", CredentialsFile);
            }

            w.WriteStartArray("only_esp_ids");
            foreach (var id in OnlyEspIds)
            {
                w.WriteNumberValue(id);
            }

            w.WriteEndArray();
            w.WriteString("start_time", StartTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteBoolean("adaptive_windows", AdaptiveWindows);
            w.WriteNumber("window_seconds", WindowSeconds);
            w.WriteNumber("end_lag_seconds", EndLagSeconds);
            if (FeedbackReason is not null)
            {
                w.WriteString("feedback_reason", FeedbackReason);
            }

            w.WriteEndObject();
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    /// <summary>Reads and checks a config; <see cref="ExchangeConfigException"/> names the bad field.</summary>
    public static NcmecConfig Parse(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            throw new ExchangeConfigException("An ncmec config is a JSON object.");
        }

        string? environment = null, baseUrl = null, credentialsEnv = null, credentialsFile = null, reason = null;
        var ids = new List<long>();
        var start = DateTimeOffset.UnixEpoch;
        var adaptive = true;
        long window = 0, lag = 5;
        foreach (var p in json.EnumerateObject())
        {
            switch (p.Name)
            {
                case "environment":
                    environment = Str(p);
                    break;
                case "base_url":
                    baseUrl = Str(p);
                    break;
                case "credentials_env":
                    credentialsEnv = Str(p);
                    break;
                case "credentials_file":
                    credentialsFile = Str(p);
                    break;
                case "only_esp_ids":
                    if (p.Value.ValueKind == JsonValueKind.Null)
                    {
                        break;
                    }

                    if (p.Value.ValueKind != JsonValueKind.Array)
                    {
                        throw new ExchangeConfigException("only_esp_ids must be a list of member ids (numbers).");
                    }

                    foreach (var v in p.Value.EnumerateArray())
                    {
                        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= 0)
                        {
                            ids.Add(n);
                        }
                        else if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var s))
                        {
                            ids.Add(s);
                        }
                        else
                        {
                            throw new ExchangeConfigException($"only_esp_ids: '{v}' is not a member id (a non-negative integer).");
                        }
                    }

                    break;
                case "start_time":
                    var text = Str(p);
                    if (text is not null)
                    {
                        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out start))
                        {
                            throw new ExchangeConfigException($"start_time '{text}' is not an ISO 8601 time.");
                        }
                    }

                    break;
                case "adaptive_windows":
                    adaptive = p.Value.ValueKind switch
                    {
                        JsonValueKind.True => true,
                        JsonValueKind.False => false,
                        _ => throw new ExchangeConfigException("adaptive_windows must be true or false."),
                    };
                    break;
                case "window_seconds":
                    window = Int(p, 0, 10L * 366 * 24 * 3600);
                    break;
                case "end_lag_seconds":
                    lag = Int(p, 0, 3600);
                    break;
                case "feedback_reason":
                    reason = Str(p);
                    if (reason is { Length: > 200 } || (reason is not null && reason.AsSpan().ContainsAnyInRange('\0', '\x1f')))
                    {
                        throw new ExchangeConfigException("feedback_reason must be a reason GUID or name (up to 200 characters, no control characters).");
                    }

                    break;
                case "name" or "api" or "enabled" or "bank":
                    break; // HMA puts its common fields in the same object.
                default:
                    throw new ExchangeConfigException($"Unknown ncmec config field '{p.Name}'; known: {string.Join(", ", NcmecExchangeType.FieldNames)}.");
            }
        }

        if (string.IsNullOrWhiteSpace(environment))
        {
            throw new ExchangeConfigException($"environment is required: one of {string.Join(", ", NcmecEnvironments.Names)}.");
        }

        var env = NcmecEnvironments.Find(environment)
            ?? throw new ExchangeConfigException($"Unknown NCMEC environment '{environment}'; one of {string.Join(", ", NcmecEnvironments.Names)}.");
        if (string.IsNullOrWhiteSpace(baseUrl))
        {
            baseUrl = env.Url;
        }

        if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.UserInfo))
        {
            throw new ExchangeConfigException($"base_url '{baseUrl}' is not an http(s) URL without query or user info (e.g. {env.Url}).");
        }

        if (string.IsNullOrWhiteSpace(credentialsEnv) && string.IsNullOrWhiteSpace(credentialsFile))
        {
            throw new ExchangeConfigException("NCMEC needs credentials: set credentials_env (an environment variable holding user:password) or credentials_file.");
        }

        if (credentialsEnv is not null && (credentialsEnv.Length > 128 || credentialsEnv.AsSpan().IndexOfAny("=\0") >= 0 || credentialsEnv.Contains(':', StringComparison.Ordinal)))
        {
            // A value with ':' looks like the credentials themselves; refuse it rather than store a password.
            throw new ExchangeConfigException("credentials_env must be the NAME of an environment variable (no '=' or ':'), not its value.");
        }

        return new NcmecConfig
        {
            Environment = env.Name,
            BaseUrl = baseUrl.TrimEnd('/'),
            CredentialsEnv = string.IsNullOrWhiteSpace(credentialsEnv) ? null : credentialsEnv.Trim(),
            CredentialsFile = string.IsNullOrWhiteSpace(credentialsFile) ? null : credentialsFile,
            OnlyEspIds = [.. ids.Distinct().Order()],
            StartTime = start,
            AdaptiveWindows = adaptive,
            WindowSeconds = window,
            EndLagSeconds = lag,
            FeedbackReason = string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(),
        };
    }

    private static string? Str(JsonProperty p) => p.Value.ValueKind switch
    {
        JsonValueKind.String => p.Value.GetString(),
        JsonValueKind.Null => null,
        _ => throw new ExchangeConfigException($"{p.Name} must be a string."),
    };

    private static long Int(JsonProperty p, long min, long max) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out var v) && v >= min && v <= max
            ? v
            : throw new ExchangeConfigException(string.Create(CultureInfo.InvariantCulture, $"{p.Name} must be an integer from {min} to {max}."));
}

/// <summary>NCMEC's Hash Sharing environments (the names python-threatexchange and HMA use).</summary>
public static class NcmecEnvironments
{
    /// <summary>Name → root URL.</summary>
    public static IReadOnlyList<(string Name, string Url)> All { get; } =
    [
        ("Industry", "https://report.cybertip.org/hashsharing"),
        ("Industry_Exploitative", "https://report.cybertip.org/exploitative-hashsharing"),
        ("LawEnforcement", "https://lesp.ncmec.org/csam-hashsharing"),
        ("NGO", "https://hashsharing.ncmec.org/npo"),
        ("Exploitative", "https://hashsharing.ncmec.org/exploitative"),
        ("NGO_Generative_AI", "https://hashsharing.ncmec.org/generative-ai-csam"),
        ("NGO_Generative_AI_Exploitative", "https://hashsharing.ncmec.org/generative-ai-exploitative"),
        ("test_Industry", "https://exttest.cybertip.org/hashsharing"),
        ("test_Industry_Exploitative", "https://exttest.cybertip.org/exploitative-hashsharing"),
        ("test_LawEnforcement", "https://betalesp.ncmec.org/csam-hashsharing"),
        ("test_NGO", "https://hashsharing-test.ncmec.org/npo"),
        ("test_Exploitative", "https://hashsharing-test.ncmec.org/exploitative"),
        ("test_NGO_Generative_AI", "https://hashsharing-test.ncmec.org/generative-ai-csam"),
        ("test_NGO_Generative_AI_Exploitative", "https://hashsharing-test.ncmec.org/generative-ai-exploitative"),
    ];

    /// <summary>The names.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(e => e.Name)];

    /// <summary>By name (case-insensitive) or by root URL (HMA stores the URL); null when unknown.</summary>
    public static (string Name, string Url)? Find(string nameOrUrl)
    {
        ArgumentNullException.ThrowIfNull(nameOrUrl);
        var key = nameOrUrl.Trim();
        foreach (var e in All)
        {
            if (string.Equals(e.Name, key, StringComparison.OrdinalIgnoreCase) || string.Equals(e.Url, key.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
            {
                return e;
            }
        }

        return null;
    }
}
