using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;
using Warden.Core.Hashing.Video;

namespace Warden.Core.Exchanges.Ncmec;

/// <summary>
/// NCMEC Hash Sharing v2 as an exchange type. Reads <c>GET /v2/entries?from&amp;to</c> window by window, following
/// <c>paging/next</c>; the checkpoint moves to a window's <c>to</c> only once the window is read to its end
/// (entries within a window are not in time order), and a saved <c>next</c> is replayed only with the exact window
/// that produced it. Entries are keyed by (member id, entry id); an entry's records are its tombstone followed by its
/// fingerprints, so an update replaces the stored entry. Page parsing is <see cref="BankFileReader"/>'s NCMEC reader.
/// </summary>
public sealed class NcmecExchangeType : IExchangeType
{
    /// <summary>Config field names.</summary>
    public static IReadOnlyList<string> FieldNames { get; } =
        ["environment", "base_url", "credentials_env", "credentials_file", "only_esp_ids", "start_time", "adaptive_windows", "window_seconds", "end_lag_seconds", "feedback_reason"];

    /// <inheritdoc />
    public string Name => "ncmec";

    /// <inheritdoc />
    public string Description => "NCMEC Hash Sharing API v2 (every environment): entries, updates and deletions by time window; feedback (affirmative / negative with a reason).";

    /// <inheritdoc />
    public ExchangeSchema Schema { get; } = new(
        [
            new("environment", "enum", true, null, "Which NCMEC database to read.", NcmecEnvironments.Names),
            new("base_url", "string", false, null, "The environment's root URL; defaults to the environment's (set it for a proxy or a test server)."),
            new("credentials_env", "string", false, null, "Name of the environment variable that holds user:password (never the value)."),
            new("credentials_file", "string", false, null, "A file whose first line is user:password (when no variable is named)."),
            new("only_esp_ids", "list_of_number", false, "[]", "Only take entries from these electronic service provider (member) ids."),
            new("start_time", "string", false, "\"1970-01-01T00:00:00Z\"", "Where a first sync starts (ISO 8601, UTC)."),
            new("adaptive_windows", "boolean", false, "true", "Shrink busy windows and grow quiet ones, as python-threatexchange does."),
            new("window_seconds", "number", false, "0", "First window length in seconds (0: up to now)."),
            new("end_lag_seconds", "number", false, "5", "A window ends this many seconds before now."),
            new("feedback_reason", "string", false, null, "Reason sent with a reviewer's false positive: a GUID or a reason's name from GET /v2/feedback/{TYPE}/reasons (none: the only reason listed)."),
        ],
        [
            new("user", "string", true, null, "NCMEC hash sharing API username (read from credentials_env / credentials_file)."),
            new("password", "string", true, null, "NCMEC hash sharing API password (read from credentials_env / credentials_file)."),
        ]);

    /// <inheritdoc />
    public JsonElement Validate(JsonElement config) => NcmecConfig.Parse(config).ToJson();

    /// <inheritdoc />
    public IExchangeFetcher CreateFetcher(JsonElement config, ExchangeRuntime runtime) => new NcmecFetcher(NcmecConfig.Parse(config), runtime);

    /// <inheritdoc />
    public IExchangeFeedbackWriter? CreateFeedbackWriter(JsonElement config, ExchangeRuntime runtime) => new NcmecFeedbackWriter(NcmecConfig.Parse(config), runtime);

    /// <inheritdoc />
    public string? FeedbackEntryId(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);

        // Entries are keyed by (member, entry): both labels are needed, and the member must be a number (as the writer checks).
        return labels.TryGetValue("ncmec_member", out var member) && labels.TryGetValue("ncmec_entry_id", out var entry)
            && member.Length is > 0 and <= 20 && !member.AsSpan().ContainsAnyExceptInRange('0', '9')
            && entry.Length is > 0 and <= 256 && !entry.AsSpan().ContainsAny('/', '?', '#')
            ? member + "-" + entry
            : null;
    }

    internal static NcmecHashClient Client(NcmecConfig config, ExchangeRuntime runtime)
    {
        var (user, password) = ExchangeCredentials.UserPassword(config.CredentialsEnv, config.CredentialsFile, runtime);
        return new NcmecHashClient(config.BaseUrl, user, password, runtime);
    }

    /// <summary>Warden signal type → NCMEC fingerprint type (the feedback path's TYPE).</summary>
    public static string? FingerprintType(string signalType) => signalType.ToUpperInvariant() switch
    {
        "MD5" or "VIDEO_MD5" => "MD5",
        "SHA1" => "SHA1",
        "PDQ" => "PDQ",
        "TMK_PDQF" => "TMK_PDQF",
        _ => null,
    };
}

/// <summary>
/// NCMEC's checkpoint: <see cref="From"/> is the start of the first window not yet read to its end; while a window is
/// being paged, <see cref="To"/>, <see cref="Next"/> and <see cref="SavedAt"/> say how to resume it (one atomic value:
/// a saved link is never combined with another window's end).
/// </summary>
/// <param name="From">Unix seconds: everything at or before it is committed.</param>
/// <param name="To">Unix seconds: the end of the window being paged (with <paramref name="Next"/>).</param>
/// <param name="Next">The unescaped <c>paging/next</c> link to resume with.</param>
/// <param name="SavedAt">Unix seconds the link was saved (links are used at most 12 h later).</param>
/// <param name="Window">The adaptive window length reached (seconds), so the next run starts there.</param>
public sealed record NcmecCheckpoint(long From, long? To = null, string? Next = null, long? SavedAt = null, long? Window = null)
{
    /// <summary>How long a saved paging link is trusted.</summary>
    public static readonly TimeSpan LinkLifetime = TimeSpan.FromHours(12);

    /// <summary>The JSON form stored by the caller.</summary>
    public string Serialize()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("from", From);
            if (Next is not null)
            {
                w.WriteNumber("to", To ?? From);
                w.WriteString("next", Next);
                w.WriteNumber("saved_at", SavedAt ?? 0);
            }

            if (Window is { } win)
            {
                w.WriteNumber("window", win);
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Reads a stored checkpoint; <see cref="ExchangeException"/> when it is not one of ours.</summary>
    public static NcmecCheckpoint Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var r = doc.RootElement;
            var from = r.GetProperty("from").GetInt64();
            long? to = r.TryGetProperty("to", out var t) ? t.GetInt64() : null;
            var next = r.TryGetProperty("next", out var n) ? n.GetString() : null;
            long? saved = r.TryGetProperty("saved_at", out var s) ? s.GetInt64() : null;
            long? window = r.TryGetProperty("window", out var w) ? w.GetInt64() : null;
            return new NcmecCheckpoint(from, to, next, saved, window);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ExchangeException("The stored NCMEC checkpoint is not readable; remove and re-add the exchange to start over.", ex);
        }
    }
}

/// <summary>One sync pass over NCMEC Hash Sharing v2.</summary>
internal sealed class NcmecFetcher(NcmecConfig config, ExchangeRuntime runtime) : IExchangeFetcher
{
    private const int ShrinkFactor = 4;
    private const long EntriesPerPage = 1000;
    private const long MaxFetchSize = 400_000;

    /// <summary>Warden's signal type for a fetched TMK+PDQF file.</summary>
    private const string TmkSignalType = "tmk_pdqf";

    /// <summary>Fetched large-fingerprint text held before it goes out as a delta (64 MB of UTF-16).</summary>
    private const long MaxLargeCharsPerDelta = 32L << 20;

    /// <summary>Large fingerprints fetched through their link; others (videntifier, …) are counted as unsupported.</summary>
    private static readonly IReadOnlySet<string> FetchedLargeFingerprints = new HashSet<string>(StringComparer.Ordinal) { "tmk-pdqf" };

    /// <summary>The parameters every TMK file Warden matches against was made with.</summary>
    private static readonly TmkFeatures Reference = TmkFeatures.CreatePoullot();

    public DateTimeOffset? ProgressOf(string? checkpoint) =>
        checkpoint is null ? null : DateTimeOffset.FromUnixTimeSeconds(NcmecCheckpoint.Parse(checkpoint).From);

    public async IAsyncEnumerable<ExchangeDelta> FetchAsync(string? checkpoint, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var client = NcmecExchangeType.Client(config, runtime);
        var saved = checkpoint is null ? null : NcmecCheckpoint.Parse(checkpoint);
        var now = runtime.Clock().ToUnixTimeSeconds();
        var end = now - config.EndLagSeconds;
        var start = saved?.From ?? config.StartTime.ToUnixTimeSeconds();
        var duration = (config.AdaptiveWindows ? saved?.Window : null) ?? (config.WindowSeconds > 0 ? config.WindowSeconds : end - start);
        int low = 0, high = 0;

        // The checkpoint the host holds: what a delta that moves nothing carries.
        var stored = checkpoint ?? new NcmecCheckpoint(start).Serialize();
        var members = config.OnlyEspIds.Count == 0 ? null : config.OnlyEspIds.Select(i => i.ToString(CultureInfo.InvariantCulture)).ToHashSet(StringComparer.Ordinal);

        // A saved link is replayed once, with its own window, only while fresh and inside this pass's range.
        string? resumeNext = null;
        long resumeTo = 0;
        if (saved?.Next is { } link)
        {
            var fresh = saved.SavedAt is { } at && now - at <= (long)NcmecCheckpoint.LinkLifetime.TotalSeconds;
            if (fresh && saved.To is { } to && to > start && to <= end)
            {
                (resumeNext, resumeTo) = (link, to);
            }
            else
            {
                runtime.Log($"NCMEC: the saved paging link is stale; re-reading the window from {Time(start)}");
            }
        }

        while (start < end)
        {
            duration = Math.Max(1, duration);
            var to = Math.Min(end, start + duration);
            var probe = config.AdaptiveWindows;
            Uri uri;
            if (resumeNext is not null)
            {
                to = resumeTo;
                uri = client.NextUri(resumeNext);
                probe = false;
                runtime.Log($"NCMEC: resuming mid-window {Time(start)} .. {Time(to)}");
                resumeNext = null;
            }
            else
            {
                uri = client.EntriesUri(DateTimeOffset.FromUnixTimeSeconds(start), DateTimeOffset.FromUnixTimeSeconds(to));
            }

            long total = 0;
            var first = true;
            var restart = false;

            // NCMEC's paging is an offset into the window's result list. An old window's list can only shrink (an
            // update or deletion moves the entry to a new timestamp), and a shrink under the cursor would skip
            // entries: `max` (the list's length) and the page counts show any change, and the window is read again.
            (long Consumed, long? Total) cursor = uri.Query.Contains("start=", StringComparison.Ordinal) ? Cursor(uri.Query) : (0, null);
            while (true)
            {
                var bytes = await client.GetAsync(uri, cancellationToken);
                var (records, report, filtered, large) = ReadPage(bytes, members, uri);
                var page = report.NcmecPage!;
                if (first && probe && to - start > 1 && page.Next is not null)
                {
                    var span = to - start;
                    var guess = page.MaxTimestamp is { } max ? max.ToUnixTimeSeconds() - start : span;
                    if (span > 60 || guess < span / ShrinkFactor)
                    {
                        // Too much in this window: throw the page away and ask for a shorter one (a fresh cursor is
                        // cheap on an empty range, costly on a full one).
                        duration = Math.Min(span / ShrinkFactor / (1L << Math.Min(high, 20)), guess - 1);
                        high++;
                        low = 0;
                        restart = true;
                        break;
                    }
                }
                else if (first)
                {
                    high = 0;
                }

                first = false;
                var count = page.Entries + page.Tombstones;
                total += count;
                var next = page.Next; // XmlReader has already unescaped the XML entities.
                Uri? nextUri = next is null ? null : client.NextUri(next); // a link off the server is refused before it is saved
                var shrank = false;
                if (next is not null)
                {
                    var c = Cursor(next);
                    shrank = cursor.Total is { } was && c.Total != was;
                    cursor = c;
                }
                else
                {
                    shrank = cursor.Total is { } was && cursor.Consumed + count != was;
                }

                NcmecCheckpoint after;
                if (shrank)
                {
                    runtime.Log($"NCMEC: the window {Time(start)} .. {Time(to)} changed while it was paged; reading it again");
                    after = new NcmecCheckpoint(start, Window: duration);
                }
                else
                {
                    after = next is null
                        ? new NcmecCheckpoint(to, Window: duration)
                        : new NcmecCheckpoint(start, to, next, runtime.Clock().ToUnixTimeSeconds(), duration);
                }

                var unsupported = report.UnsupportedTypes.ToDictionary(StringComparer.Ordinal);
                if (large.Count > 0)
                {
                    // Large fingerprints are fetched one by one, after the probe has kept the page. A page of videos
                    // can carry a thousand 263 KB TMK files: past a bound, what is fetched so far goes out as a delta
                    // under the checkpoint already stored (it moves nothing), so memory stays bounded.
                    var merged = new List<BankEntryRecord>(records.Count + large.Count);
                    var at = 0;
                    long chars = 0;
                    foreach (var (index, fingerprint) in large)
                    {
                        merged.AddRange(records.GetRange(at, index - at));
                        at = index;
                        if (await FetchLargeAsync(client, fingerprint, unsupported, cancellationToken) is { } record)
                        {
                            merged.Add(record);
                            chars += record.Signal.Length;
                        }

                        if (chars >= MaxLargeCharsPerDelta)
                        {
                            yield return new ExchangeDelta(merged, stored, 0, 0, 0, new Dictionary<string, long>(StringComparer.Ordinal), 0);
                            merged = new List<BankEntryRecord>(records.Count - at + large.Count);
                            chars = 0;
                        }
                    }

                    merged.AddRange(records.GetRange(at, records.Count - at));
                    records = merged;
                }

                stored = after.Serialize();
                yield return new ExchangeDelta(records, stored, page.Entries, page.Tombstones, filtered, unsupported, report.ErrorCount);
                if (shrank)
                {
                    uri = client.EntriesUri(DateTimeOffset.FromUnixTimeSeconds(start), DateTimeOffset.FromUnixTimeSeconds(to));
                    cursor = (0, null);
                    continue;
                }

                if (nextUri is null)
                {
                    break;
                }

                uri = nextUri;
            }

            if (restart)
            {
                continue;
            }

            if (total < EntriesPerPage * 2)
            {
                if (++low >= ShrinkFactor && config.AdaptiveWindows)
                {
                    duration *= ShrinkFactor / 2;
                    low = 0;
                }
            }
            else if (total > MaxFetchSize / ShrinkFactor && config.AdaptiveWindows)
            {
                duration /= ShrinkFactor;
                low = 0;
            }
            else
            {
                low = 0;
            }

            start = to;
        }
    }

    private (List<BankEntryRecord> Records, ImportReport Report, long Filtered, List<(int Index, NcmecLargeFingerprint Fingerprint)> Large) ReadPage(byte[] bytes, HashSet<string>? members, Uri uri)
    {
        var report = new ImportReport();
        var records = new List<BankEntryRecord>();
        var large = new List<(int Index, NcmecLargeFingerprint Fingerprint)>();
        var options = new ImportOptions(BankFileFormat.NcmecXml, SkipBadLines: true, SourceName: uri.GetLeftPart(UriPartial.Path))
        {
            OnError = e => runtime.Log("NCMEC: skipped " + e),

            // Handed over right after the entry's records: its place in the page is the list's current end.
            LargeFingerprints = new NcmecLargeFingerprintHandler(FetchedLargeFingerprints, fp =>
            {
                if (members is null || members.Contains(fp.MemberId))
                {
                    large.Add((records.Count, fp));
                }
            }),
        };
        long filtered = 0;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            foreach (var r in BankFileReader.Read(stream, options, report))
            {
                if (members is not null && (!r.Labels.TryGetValue("ncmec_member", out var m) || !members.Contains(m)))
                {
                    filtered++;
                    continue;
                }

                records.Add(r);
            }
        }
        catch (BankFormatException ex)
        {
            // A page that cannot be read whole is never half-applied: nothing of it is committed.
            throw new ExchangeException($"NCMEC sent a page Warden cannot read ({uri.GetLeftPart(UriPartial.Path)}): {ex.Message}", ex);
        }

        return (records, report, filtered, large);
    }

    /// <summary>
    /// GETs one TMK+PDQF large fingerprint and returns its record, or null when it is counted as unsupported with the
    /// reason (gone, not a whole TMK feature file, other TMK parameters, non-finite values). Auth failures and errors
    /// left after the retries fail the pass, so the page is read again next time. The link is never stored or logged.
    /// </summary>
    private async Task<BankEntryRecord?> FetchLargeAsync(NcmecHashClient client, NcmecLargeFingerprint fp, Dictionary<string, long> unsupported, CancellationToken cancellationToken)
    {
        var what = $"the {fp.Name} fingerprint of entry {fp.MemberId}-{fp.EntryId}";
        string? reason = null;
        string? signal = null;
        Uri? uri = null;
        try
        {
            uri = client.LargeFingerprintUri(fp.Href);
        }
        catch (ExchangeException)
        {
            reason = "link not on the server";
        }

        if (reason is null)
        {
            var body = await client.GetLargeFingerprintAsync(uri!, what, cancellationToken);
            if (body is null)
            {
                reason = "gone (404/410)";
            }
            else if (ReadTmk(body, out var why) is { } features)
            {
                signal = TmkHasher.ToSignal(features);
            }
            else
            {
                reason = why;
            }
        }

        if (signal is not null)
        {
            return new BankEntryRecord(TmkSignalType, signal, fp.Labels, ExternalId: $"{fp.MemberId}-{fp.EntryId}-{TmkSignalType}");
        }

        // Counted under the element name with the reason, e.g. "tmk-pdqf (not a TMK+PDQF feature file)": never dropped silently.
        var key = $"{fp.Name} ({reason})";
        unsupported[key] = unsupported.GetValueOrDefault(key) + 1;
        runtime.Log($"NCMEC: {what} is not stored: {reason}");
        return null;
    }

    /// <summary>Parses a body as the reference's `.tmk` feature file, whole; null with the reason when it is not one Warden can match.</summary>
    internal static TmkFeatures? ReadTmk(ReadOnlySpan<byte> body, out string reason)
    {
        TmkFeatures features;
        try
        {
            features = TmkFeatures.FromBytes(body);
        }
        catch (InvalidDataException)
        {
            reason = "not a TMK+PDQF feature file";
            return null;
        }

        if (!TmkFeatures.Compatible(features, Reference))
        {
            reason = "TMK parameters other than the reference's";
            return null;
        }

        if (!AllFinite(features.PureAverage) || !AllFinite(features.Cos) || !AllFinite(features.Sin) || features.FrameCount <= 0)
        {
            reason = "TMK values not finite, or no frames";
            return null;
        }

        reason = string.Empty;
        return features;
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A paging link's cursor: entries before it (start - 1) and the window's list length (max).</summary>
    private static (long Consumed, long? Total) Cursor(string link)
    {
        var q = link.Contains('?', StringComparison.Ordinal) ? link[(link.IndexOf('?', StringComparison.Ordinal) + 1)..] : link;
        long start = 1;
        long? max = null;
        foreach (var part in q.Split('&'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            var value = part[(eq + 1)..];
            if (part.AsSpan(0, eq).SequenceEqual("start") && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var s))
            {
                start = s;
            }
            else if (part.AsSpan(0, eq).SequenceEqual("max") && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var m))
            {
                max = m;
            }
        }

        return (Math.Max(0, start - 1), max);
    }

    private static string Time(long unix) => NcmecHashClient.Format(DateTimeOffset.FromUnixTimeSeconds(unix));
}

/// <summary>Writes opinions as NCMEC feedback.</summary>
internal sealed class NcmecFeedbackWriter(NcmecConfig config, ExchangeRuntime runtime) : IExchangeFeedbackWriter
{
    public async Task SendAsync(ExchangeOpinion opinion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(opinion);
        if (opinion.Kind == OpinionKind.Seen)
        {
            return; // NCMEC has no "seen".
        }

        var dash = opinion.ExternalId.IndexOf('-', StringComparison.Ordinal);
        if (dash <= 0 || dash == opinion.ExternalId.Length - 1 || opinion.ExternalId.AsSpan(0, dash).ContainsAnyExceptInRange('0', '9'))
        {
            throw new ExchangeException($"'{opinion.ExternalId}' is not an NCMEC entry id (MEMBER-ENTRY, MEMBER a number).") { Permanent = true };
        }

        var type = NcmecExchangeType.FingerprintType(opinion.SignalType)
            ?? throw new ExchangeException($"NCMEC takes no feedback on {opinion.SignalType} fingerprints.") { Permanent = true };
        var client = NcmecExchangeType.Client(config, runtime);
        var reason = opinion.Kind == OpinionKind.FalsePositive ? opinion.ReasonId ?? config.FeedbackReason : null;
        if (opinion.Kind == OpinionKind.FalsePositive && (string.IsNullOrEmpty(reason) || !Guid.TryParse(reason, out _)))
        {
            // No reason, or the config names one by its name: NCMEC's list for this fingerprint type decides.
            var reasons = await client.FeedbackReasonsAsync(type, cancellationToken);
            var named = string.IsNullOrEmpty(reason) ? [] : reasons.Where(r => string.Equals(r.Value.Trim(), reason.Trim(), StringComparison.OrdinalIgnoreCase)).Select(r => r.Key).ToList();
            reason = named.Count == 1 ? named[0]
                : string.IsNullOrEmpty(reason) && reasons.Count == 1 ? reasons.Keys.First()
                : throw new ExchangeException($"{(string.IsNullOrEmpty(reason) ? "Pick a reason" : $"No single reason named '{reason}'")} for negative {type} feedback: {string.Join(", ", reasons.Select(r => $"{r.Key} ({r.Value})"))}.") { Permanent = true };
        }

        await client.SubmitFeedbackAsync(opinion.ExternalId[..dash], opinion.ExternalId[(dash + 1)..], type, opinion.Kind == OpinionKind.TruePositive, reason, cancellationToken);
    }
}
