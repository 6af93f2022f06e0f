using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.ObjectPool;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Imaging;
using Warden.Core.Provenance;
using Warden.Core.Signals;
using Warden.Review;
using Warden.Server.Actions;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.Api;

/// <summary>Who asked, for the match record and the webhook.</summary>
/// <param name="KeyId">The API key.</param>
/// <param name="UploaderId">The platform's id of the uploading user, if given.</param>
public sealed record MatchContext(long? KeyId, string? UploaderId)
{
    /// <summary>The upload's context (URL, original time), for the signal log.</summary>
    public UploaderContext? Upload { get; init; }
}

/// <summary>
/// Hashing and matching for the API: hashes uploads (in memory), queries the live index and hands the hits to
/// <see cref="MatchActions"/> (flood control, bank actions, webhooks, the match record), then labels them.
/// </summary>
public sealed partial class MatchService : IDisposable
{
    private readonly LiveIndex _index;
    private readonly MatchActions _actions;
    private readonly SemaphoreSlim _hashing;
    private readonly SemaphoreSlim _videos;
    private readonly ServerOptions _options;
    private readonly ObjectPool<ContentHasher> _hashers;
    private readonly ILogger<MatchService> _logger;
    private readonly SignalLog.IUploadRecorder? _recorder;

    /// <summary>Creates the service; <paramref name="recorder"/> is the signal log when it is on.</summary>
    public MatchService(LiveIndex index, MatchActions actions, ServerOptions options, ILogger<MatchService> logger, SignalLog.IUploadRecorder? recorder = null)
    {
        _recorder = recorder;
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger;
        _index = index;
        _actions = actions;
        _hashing = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentHashing));
        _videos = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentVideos));
        _options = options;
        var limits = options.ImageLimits;
        _hashers = new DefaultObjectPool<ContentHasher>(new HasherPolicy(limits, options.SignalTypes), Math.Max(4, options.MaxConcurrentHashing));
    }

    /// <summary>
    /// Hashes content. Never fails on what the content is: the digests are always computed, and an image that
    /// cannot be decoded (unsupported, truncated, corrupt, over the pixel limit) leaves <see cref="ContentHashes.Image"/>
    /// null with the reason in <see cref="ContentHashes.Error"/> (see <see cref="ImageWarnings"/>).
    /// </summary>
    public async Task<ContentHashes> HashAsync(byte[] data, bool dihedral, CancellationToken cancellationToken)
    {
        await _hashing.WaitAsync(cancellationToken).ConfigureAwait(false);
        var hasher = _hashers.Get();
        var started = Stopwatch.GetTimestamp();
        try
        {
            return hasher.HashBytes(data, dihedral);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            // A decoder bug must not let the file escape digest matching: log it, keep the digests.
            LogHashFailure(_logger, ex);
            return new ContentHashes(ExactHashes.Compute(data), data.Length, null, new ImageDecodeException(ImageDecodeError.Corrupt, "The image decoder failed on this file (logged)."));
        }
        finally
        {
            Metrics.HashSeconds.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            _hashers.Return(hasher);
            _hashing.Release();
        }
    }

    /// <summary>The warnings for an image that was not hashed perceptually (none when it was, or when <paramref name="video"/> says it is a video).</summary>
    public static List<WarningDto> ImageWarnings(ContentHashes hashes, bool video = false)
    {
        var warnings = new List<WarningDto>();
        if (hashes.Error is { } error && !(video && error.Error == ImageDecodeError.UnsupportedFormat))
        {
            var code = error.Error switch
            {
                ImageDecodeError.UnsupportedFormat => ErrorCodes.UnsupportedFormat,
                ImageDecodeError.Truncated => ErrorCodes.TruncatedImage,
                ImageDecodeError.TooManyPixels or ImageDecodeError.TooManyBytes => ErrorCodes.ImageTooLarge,
                _ => ErrorCodes.CorruptImage,
            };
            var message = error.Error == ImageDecodeError.UnsupportedFormat
                ? "Not an image or video format Warden hashes perceptually; only the digests (MD5, SHA-1, SHA-256) were computed and matched."
                : error.Message + " Only the digests were computed and matched.";
            warnings.Add(new WarningDto("image", code, message));
        }

        return warnings;
    }

    /// <summary>
    /// Hashes an upload of any kind: images as <see cref="HashAsync"/>; videos (recognised by content) also get
    /// vPDQ — and TMK+PDQF when <paramref name="tmk"/> or a bank holds TMK entries — from ffmpeg reading the
    /// upload through an in-memory file, so the video is never written to disk. Nothing the content is makes this
    /// fail: what could not be read is in the warnings, and the digests are always there.
    /// </summary>
    public async Task<(ContentHashes Hashes, VideoHashes? Video, List<WarningDto> Warnings)> HashAnyAsync(byte[] data, bool dihedral, bool tmk, CancellationToken cancellationToken)
    {
        var hashes = await HashAsync(data, dihedral, cancellationToken).ConfigureAwait(false);
        if (hashes.Image is not null || !VideoSniffer.IsVideo(data.AsSpan(0, Math.Min(data.Length, VideoSniffer.HeaderBytes))))
        {
            return (hashes, null, ImageWarnings(hashes));
        }

        var warnings = ImageWarnings(hashes, video: true);
        if (!FfmpegTools.Available || !MemoryFile.Supported)
        {
            warnings.Add(new WarningDto("video", ErrorCodes.Unavailable, "This server cannot hash videos (ffmpeg and ffprobe are not installed); only the digests were computed and matched."));
            return (hashes, null, warnings);
        }

        var options = new VideoHashOptions(
            new VpdqOptions(1, string.Equals(_options.VideoMode, "fast", StringComparison.OrdinalIgnoreCase) ? VideoHashMode.Fast : VideoHashMode.Exact),
            tmk || (_index.Current?.Matcher.HasEntries(SignalTypes.TmkPdqf) ?? false),
            VideoLimits.Default with { MaxDurationSeconds = _options.MaxVideoSeconds });
        await _videos.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var file = MemoryFile.Create(data);
            var video = await Task.Run(() => VideoHasher.Hash(file.Path, options, cancel: cancellationToken), cancellationToken).ConfigureAwait(false);
            return (hashes, video, warnings);
        }
        catch (VideoDecodeException ex) when (ex.Error is VideoDecodeError.AudioOnly or VideoDecodeError.NotVideo)
        {
            return (hashes, null, warnings); // not a video after all: its digests still count
        }
        catch (VideoDecodeException ex)
        {
            var (_, code, detail) = Problems.Map(ex);
            warnings.Add(new WarningDto("video", code, detail + " Only the digests were computed and matched."));
            return (hashes, null, warnings);
        }
        catch (IOException ex)
        {
            warnings.Add(new WarningDto("video", ErrorCodes.Unavailable, "The video could not be handed to ffmpeg (" + ex.Message + "); only the digests were computed and matched."));
            return (hashes, null, warnings);
        }
        finally
        {
            _videos.Release();
        }
    }

    /// <summary>The current index or a 503.</summary>
    public IndexState RequireIndex() => _index.Current ?? throw new ApiException(503, ErrorCodes.Unavailable, "The match index is still loading; retry shortly.");

    /// <summary>
    /// Matches hashed content and acts on the hits. With <paramref name="data"/>, the file's provenance is read
    /// too (metadata only: about 0.5 % of hashing time) and every model it names is looked up in the banks; a
    /// model hit is a hit like any other, so AI provenance adds links and never lowers severity.
    /// </summary>
    public MatchResponse MatchContent(ContentHashes hashes, MatchContext context, byte[]? data = null, VideoHashes? video = null, bool includeTmk = false, IReadOnlyList<WarningDto>? warnings = null)
    {
        var state = RequireIndex();
        Metrics.Lookups.WithLabels("content").Inc();
        var signals = hashes.ToSignals(video);
        var hits = state.Matcher.Match(signals).ToList();
        var all = new List<WarningDto>(warnings ?? ImageWarnings(hashes, video is not null));
        System.Text.Json.JsonElement? provenance = null;
        List<(string, string)>? modelSignals = null;
        if (data is not null)
        {
            var report = ReadProvenance(data, hashes.Exact.Sha256Hex, state.Matcher, all);

            // The models the file names are logged as exact signals, so a model banked later finds it retroactively.
            modelSignals = [.. Warden.Core.Provenance.ModelReferenceSignals.From(report).Select(s => (s.Signal.Type.Name, s.Signal.Value))];
            foreach (var m in report.ModelMatches)
            {
                var model = report.ModelRefs[m.ModelIndex];
                hits.Add(m.Hit with { Variant = $"provenance:{model.Role}:{model.Name}" });
            }

            provenance = ProvenanceToJson(report);
        }

        var hashWarnings = all.Where(w => w.Stage != "provenance").ToList();
        _recorder?.Record(
            SignalLogAdapter.From(hashes, video, modelSignals),
            new UploadRecord(context.UploaderId, null, context.Upload?.Url, context.Upload?.UploadedAt ?? DateTimeOffset.UtcNow, "api", _index.Sequence));
        return Act(SignalsDto.From(hashes, video, includeTmk, hashWarnings, signals), hits, hashes.Exact.Sha256Hex, context) with { Provenance = provenance, Warnings = all };
    }

    /// <summary>
    /// Reads provenance (metadata only) and links model references to banks. Never throws for the content: a file
    /// provenance cannot read gives a report that says so, and a warning in <paramref name="warnings"/>.
    /// </summary>
    public ProvenanceReport ReadProvenance(byte[] data, string sha256, BankMatcher matcher, List<WarningDto> warnings)
    {
        ArgumentNullException.ThrowIfNull(warnings);
        ProvenanceReport report;
        try
        {
            report = ProvenanceReader.ReadLenient(data, ProvenanceOptions.Default, sha256, out var failure);
            if (failure is not null)
            {
                warnings.Add(new WarningDto("provenance", "unreadable", "Provenance not read: " + failure + "."));
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            // A reader bug: the match must go on (logged for a fix), and the client is told provenance is missing.
            LogProvenanceFailure(_logger, ex);
            warnings.Add(new WarningDto("provenance", ErrorCodes.Internal, "The provenance reader failed on this file (logged); provenance is missing."));
            report = ProvenanceReader.Unread(data.Length, sha256, "the reader failed on this file");
        }

        ModelLinker.Link(report, matcher);
        return report;
    }

    /// <summary>The provenance report as JSON (the schema of docs/provenance.md).</summary>
    public static System.Text.Json.JsonElement ProvenanceToJson(ProvenanceReport report)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            ProvenanceJson.WriteProperties(json, report, null);
            json.WriteEndObject();
        }

        using var doc = System.Text.Json.JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    /// <summary>Matches one signal given by value (no content) and acts on the hits.</summary>
    public MatchResponse MatchSignal(string signalType, string signal, MatchContext context)
    {
        var (type, normalized) = Normalize(signalType, signal);
        var state = RequireIndex();
        Metrics.Lookups.WithLabels("signal").Inc();
        return Act(null, state.Matcher.MatchSignal(type.Name, normalized), null, context);
    }

    /// <summary>
    /// Matches several signals of one piece of content given by value (a model file's identity hashes and
    /// lineage pointers) and acts on the hits as one request; <c>Variant</c> says which part each signal names.
    /// </summary>
    public MatchResponse MatchSignals(IEnumerable<(string Type, string Value, string Variant)> signals, string? sha256, MatchContext context)
    {
        var state = RequireIndex();
        Metrics.Lookups.WithLabels("model").Inc();
        var hits = new List<MatchHit>();
        foreach (var (type, value, variant) in signals)
        {
            hits.AddRange(state.Matcher.MatchSignal(type, value).Select(h => h with { Variant = variant }));
        }

        return Act(null, hits, sha256, context);
    }

    /// <summary>Raw hits of one signal (HMA's raw lookup: no actions, no records).</summary>
    public IReadOnlyList<MatchHit> Lookup(string signalType, string signal)
    {
        var (type, normalized) = Normalize(signalType, signal);
        Metrics.Lookups.WithLabels("signal").Inc();
        return RequireIndex().Matcher.MatchSignal(type.Name, normalized);
    }

    /// <summary>Checks and normalises a signal given by value (400 unknown_signal_type / invalid_signal).</summary>
    public static (ISignalType Type, string Normalized) Normalize(string? signalType, string? signal)
    {
        if (!SignalTypes.TryGet(signalType, out var type))
        {
            throw ApiException.BadRequest(ErrorCodes.UnknownSignalType, $"Unknown signal type '{signalType}'; known types: {string.Join(", ", SignalTypes.All.Select(t => t.Name))}.");
        }

        if (string.IsNullOrWhiteSpace(signal))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidSignal, "The signal is empty.");
        }

        if (!type.TryNormalize(signal, out var normalized, out var reason))
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidSignal, reason ?? "Invalid signal.");
        }

        return (type, normalized);
    }

    private MatchResponse Act(SignalsDto? signals, IReadOnlyList<MatchHit> hits, string? sha256, MatchContext context)
    {
        var decision = _actions.Act(hits, sha256, context.KeyId, context.UploaderId, signals is null || hits.Count == 0 ? null : new WebhookContent(signals.Sha256, signals.Md5, signals.Pdq?.Hash));
        var dtos = new List<HitDto>(decision.Hits.Count);
        foreach (var acted in decision.Hits)
        {
            var (hit, entry) = (acted.Hit, acted.Entry);
            dtos.Add(new HitDto(
                hit.Bank.Name, hit.Bank.Id, BankDto.KindName(hit.Bank.Kind), hit.EntryId, hit.SignalType, hit.Signal, hit.Distance,
                SignalTypes.TryGet(hit.SignalType, out var hitType) ? hit.Bank.ThresholdFor(hitType) : 0,
                hit.Variant, entry?.Labels ?? new Dictionary<string, string>(), NullIfEmpty(entry?.ExternalId), entry?.Source, hit.Suppressed, acted.Flooded,
                hit.Video?.QueryMatchPercent, hit.Video?.ComparedMatchPercent, hit.Video?.Ranges.Select(r => new TimeRangeDto(r.Start, r.End)).ToList())
            { Outcome = acted.Outcome });
        }

        return new MatchResponse(signals, decision.Matched, decision.Action.Name(), decision.Notified, dtos, Warnings: []);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _hashing.Dispose();
        _videos.Dispose();
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    [LoggerMessage(Level = LogLevel.Error, Message = "Image hashing failed unexpectedly; the upload's digests were still matched")]
    private static partial void LogHashFailure(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The provenance reader failed unexpectedly; the match went on without provenance")]
    private static partial void LogProvenanceFailure(ILogger logger, Exception exception);

    private sealed class HasherPolicy(ImageLimits limits, SignalTypeRegistry registry) : PooledObjectPolicy<ContentHasher>
    {
        public override ContentHasher Create() => new(PdqResize.Fast, limits, registry);

        public override bool Return(ContentHasher obj) => true;
    }
}
