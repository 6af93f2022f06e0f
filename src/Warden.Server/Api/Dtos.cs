using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Signals;

namespace Warden.Server.Api;

/// <summary>A PDQ hash with its quality and, on request, the 8 dihedral variants.</summary>
/// <param name="Hash">64 hex digits (Meta's reference encoding).</param>
/// <param name="Quality">0–100; under 50 the hash is too featureless to match.</param>
/// <param name="Dihedral">Variant name → hash, when asked for with <c>dihedral=true</c>.</param>
public sealed record PdqDto(string Hash, int Quality, IReadOnlyDictionary<string, string>? Dihedral);

/// <summary>Facts about a decoded image.</summary>
/// <param name="Format">jpeg, png, webp, gif, tiff, bmp…</param>
/// <param name="Width">Pixels.</param>
/// <param name="Height">Pixels.</param>
/// <param name="TrimmedPdq">PDQ of the image with uniform borders cut off, when it has them.</param>
public sealed record ImageDto(string Format, int Width, int Height, PdqDto? TrimmedPdq);

/// <summary>
/// A part of the pipeline that could not read the content. The request still succeeds: the digests are always
/// computed and matched, so a file that defeats one reader (an unsupported, damaged or hostile format) cannot evade
/// matching by the others.
/// </summary>
/// <param name="Stage"><c>image</c> (decoding and PDQ), <c>video</c> (vPDQ/TMK) or <c>provenance</c>.</param>
/// <param name="Code">Stable code: unsupported_format, truncated_image, corrupt_image, image_too_large, corrupt_video, video_too_long, timeout, unavailable, unreadable, internal.</param>
/// <param name="Message">What went wrong, for people.</param>
public sealed record WarningDto(string Stage, string Code, string Message);

/// <summary>Every signal of uploaded content.</summary>
/// <param name="Length">Bytes.</param>
/// <param name="Md5">Hex.</param>
/// <param name="Sha1">Hex.</param>
/// <param name="Sha256">Hex.</param>
/// <param name="Pdq">For images; null otherwise.</param>
/// <param name="Image">For images; null otherwise.</param>
/// <param name="ContentKind"><c>image</c>, <c>video</c>, or <c>other</c> for content that is neither (only the digests are computed).</param>
/// <param name="Video">For videos: stream facts, the vPDQ hash and (on request) TMK+PDQF.</param>
/// <param name="Warnings">What could not be read (see <see cref="WarningDto"/>); empty when everything was.</param>
/// <param name="Signals">Every other signal type the content has (plug-in types), type name → value; null when none.</param>
public sealed record SignalsDto(long Length, string Md5, string Sha1, string Sha256, PdqDto? Pdq, ImageDto? Image, string ContentKind, VideoDto? Video = null, IReadOnlyList<WarningDto>? Warnings = null, IReadOnlyDictionary<string, string>? Signals = null)
{
    // The types with a field of their own above; every other type of the content is listed in Signals.
    private static readonly HashSet<string> OwnFields = new(
        [SignalTypes.Md5.Name, SignalTypes.Sha1.Name, SignalTypes.Sha256.Name, SignalTypes.Pdq.Name, SignalTypes.Vpdq.Name, SignalTypes.TmkPdqf.Name, SignalTypes.VideoMd5.Name], StringComparer.Ordinal);

    internal static SignalsDto From(ContentHashes hashes, Warden.Core.Hashing.Video.VideoHashes? video, bool includeTmk, IReadOnlyList<WarningDto>? warnings = null, SignalSet? signals = null)
    {
        var dto = From(hashes) with { Warnings = warnings ?? [], Signals = Others(signals ?? hashes.ToSignals(video)) };
        if (video is null)
        {
            return dto;
        }

        var i = video.Info;
        return dto with
        {
            ContentKind = "video",
            Video = new VideoDto(
                i.Codec, i.Width, i.Height, i.FrameRate, video.Vpdq?.Frames.Count ?? 0, video.Vpdq?.ToSignal(),
                includeTmk && video.Tmk is { } tmk ? Warden.Core.Hashing.Video.TmkHasher.ToSignal(tmk) : null, video.Elapsed.TotalSeconds),
        };
    }

    internal static SignalsDto From(ContentHashes hashes)
    {
        var img = hashes.Image;
        return new SignalsDto(
            hashes.Length,
            hashes.Exact.Md5Hex,
            hashes.Exact.Sha1Hex,
            hashes.Exact.Sha256Hex,
            img is null ? null : ToPdq(img.Pdq),
            img is null ? null : new ImageDto(img.Format.ToString().ToLowerInvariant(), img.Width, img.Height, img.Trimmed is null ? null : ToPdq(img.Trimmed)),
            img is null ? "other" : "image");
    }

    private static PdqDto ToPdq(PdqResult r) => new(
        r.Hash.ToString(),
        r.Quality,
        r.Dihedral is { } d ? d.Select((h, i) => (VariantNames.Name(i), h.ToString())).ToDictionary(p => p.Item1, p => p.Item2) : null);

    private static Dictionary<string, string>? Others(SignalSet signals)
    {
        Dictionary<string, string>? others = null;
        foreach (var s in signals)
        {
            if (s.Prefix.Length == 0 && s.Type.InSummaries && !OwnFields.Contains(s.Type.Name))
            {
                (others ??= new(StringComparer.Ordinal))[s.Type.Name] = s.Value;
            }
        }

        return others;
    }
}

/// <summary>Facts and signals of a video upload.</summary>
/// <param name="Codec">Video codec.</param>
/// <param name="Width">Pixels.</param>
/// <param name="Height">Pixels.</param>
/// <param name="FrameRate">Average frames per second.</param>
/// <param name="Frames">vPDQ frames hashed.</param>
/// <param name="Vpdq">The vPDQ hash in Warden's signal form (docs/formats.md): frame,quality,pdq,seconds;…</param>
/// <param name="TmkPdqf">TMK+PDQF (<c>tmk1:</c> base64), when asked for with <c>tmk=true</c> or needed to match.</param>
/// <param name="Seconds">Time spent hashing.</param>
public sealed record VideoDto(string Codec, int Width, int Height, double FrameRate, int Frames, string? Vpdq, string? TmkPdqf, double Seconds);

/// <summary>Where a video hit lies in the upload.</summary>
/// <param name="Start">Seconds.</param>
/// <param name="End">Seconds.</param>
public sealed record TimeRangeDto(double Start, double End);

/// <summary>One hit against a bank entry.</summary>
/// <param name="Bank">Bank name.</param>
/// <param name="BankId">Bank id.</param>
/// <param name="BankKind"><c>block</c> or <c>allow</c>.</param>
/// <param name="EntryId">Entry id (stable; use it to fetch, disable or delete the entry).</param>
/// <param name="SignalType">pdq, md5, sha1, sha256, …</param>
/// <param name="Signal">The query's signal that matched (for PDQ, the variant's hash).</param>
/// <param name="Distance">Hamming distance for PDQ, 0 for exact types. A number.</param>
/// <param name="Threshold">The bank's PDQ threshold that admitted it (0 for exact types).</param>
/// <param name="Variant"><c>original</c>, a dihedral variant, or <c>trimmed:…</c>.</param>
/// <param name="Labels">The entry's labels.</param>
/// <param name="ExternalId">The source's id of the entry (e.g. NCMEC member entry id).</param>
/// <param name="Source">Where the entry came from.</param>
/// <param name="Suppressed">An allow-list bank matched the same content: not acted on.</param>
/// <param name="FloodQuarantined">Flood control quarantined this entry: reported, not acted on.</param>
/// <param name="QueryMatchPercent">Video hits (vpdq): share of the upload's frames that matched.</param>
/// <param name="ComparedMatchPercent">Video hits (vpdq): share of the bank video's frames that matched.</param>
/// <param name="TimeRanges">Video hits: the parts of the upload that matched, so a reviewer can jump there.</param>
public sealed record HitDto(
    string Bank, long BankId, string BankKind, long EntryId, string SignalType, string Signal, int Distance, int Threshold, string Variant,
    IReadOnlyDictionary<string, string> Labels, string? ExternalId, string? Source, bool Suppressed, bool FloodQuarantined,
    double? QueryMatchPercent = null, double? ComparedMatchPercent = null, IReadOnlyList<TimeRangeDto>? TimeRanges = null)
{
    /// <summary>What the hit set off, typed (not serialised: the wire has <see cref="BankKind"/>, <see cref="Suppressed"/> and <see cref="FloodQuarantined"/>).</summary>
    internal Actions.HitOutcome Outcome { get; init; }
}

/// <summary>The answer to a match request.</summary>
/// <param name="Signals">The upload's signals (null when matching a signal given by value).</param>
/// <param name="Matched">True when at least one hit is actionable (block-list, not suppressed, not flood-quarantined).</param>
/// <param name="Action"><c>none</c>, <c>record</c> (a hit, recorded) or <c>quarantine</c> (hold the content).</param>
/// <param name="Notified">A signed webhook was queued for this match.</param>
/// <param name="Hits">Every hit, including suppressed and flood-quarantined ones. Model files that the upload's
/// provenance names and that a bank holds are hits too (variant <c>provenance:ROLE:NAME</c>).</param>
/// <param name="Provenance">What the file says about how it was made (docs/provenance.md), for uploads; null when
/// matching a signal by value or when asked not to (<c>provenance=false</c>).</param>
/// <param name="Warnings">Every part of the pipeline that could not read the upload (hashing and provenance); the
/// digests were matched regardless. Empty when nothing failed.</param>
public sealed record MatchResponse(SignalsDto? Signals, bool Matched, string Action, bool Notified, IReadOnlyList<HitDto> Hits, System.Text.Json.JsonElement? Provenance = null, IReadOnlyList<WarningDto>? Warnings = null);

/// <summary>A bank as the API shows it.</summary>
/// <param name="Id">Id.</param>
/// <param name="Name">Unique name.</param>
/// <param name="Kind"><c>block</c> or <c>allow</c>.</param>
/// <param name="Enabled">Disabled banks are not matched.</param>
/// <param name="PdqThreshold">This bank's PDQ match distance (null: the signal type's default); the <c>pdq</c> entry of <paramref name="Thresholds"/>.</param>
/// <param name="Description">Free text.</param>
/// <param name="Entries">Live entries.</param>
/// <param name="Action">What its matches set off.</param>
/// <param name="CreatedAt">Creation time.</param>
/// <param name="Thresholds">This bank's own thresholds per signal type (types not named use their default).</param>
public sealed record BankDto(long Id, string Name, string Kind, bool Enabled, int? PdqThreshold, string? Description, long Entries, ActionDto Action, DateTimeOffset CreatedAt, IReadOnlyDictionary<string, int>? Thresholds = null)
{
    internal static string KindName(BankKind kind) => BankKinds.Name(kind);
}

/// <summary>A bank's action rule: matches are always recorded; optionally quarantine and notify.</summary>
/// <param name="Quarantine">Tell the caller to hold matching content.</param>
/// <param name="Notify">Send signed webhooks.</param>
public sealed record ActionDto(bool Quarantine, bool Notify);

/// <summary>Create a bank.</summary>
/// <param name="Name">Letters, digits, '_', '-', '.'; unique.</param>
/// <param name="Kind"><c>block</c> (default) or <c>allow</c>.</param>
/// <param name="PdqThreshold">Shorthand for <c>thresholds.pdq</c>: 0–64; default 31.</param>
/// <param name="Description">Free text.</param>
/// <param name="Action">Action rule; default record only.</param>
/// <param name="Thresholds">Per signal type thresholds (type name → distance, 0 to the type's maximum).</param>
public sealed record CreateBankRequest(string Name, string? Kind, int? PdqThreshold, string? Description, ActionDto? Action, Dictionary<string, int>? Thresholds = null);

/// <summary>Change a bank; absent members stay as they are.</summary>
/// <param name="Enabled">Enable or disable.</param>
/// <param name="Kind"><c>block</c> or <c>allow</c>.</param>
/// <param name="PdqThreshold">New threshold.</param>
/// <param name="ClearPdqThreshold">Back to the default threshold.</param>
/// <param name="Description">New description.</param>
/// <param name="Action">New action rule.</param>
/// <param name="Thresholds">Per signal type thresholds to set (null: back to the type's default); types not named keep theirs.</param>
public sealed record UpdateBankRequest(bool? Enabled, string? Kind, int? PdqThreshold, bool? ClearPdqThreshold, string? Description, ActionDto? Action, Dictionary<string, int?>? Thresholds = null);

/// <summary>An entry as the API shows it.</summary>
/// <param name="Id">Id.</param>
/// <param name="Bank">Bank name.</param>
/// <param name="SignalType">Type.</param>
/// <param name="Signal">Normalised value.</param>
/// <param name="Labels">Labels.</param>
/// <param name="Source">Source.</param>
/// <param name="ExternalId">Source id.</param>
/// <param name="Enabled">Matched only when enabled.</param>
/// <param name="Note">Free text.</param>
/// <param name="Deleted">Tombstone.</param>
/// <param name="UpdatedAt">Last change.</param>
public sealed record EntryDto(long Id, string Bank, string SignalType, string Signal, IReadOnlyDictionary<string, string> Labels, string? Source, string? ExternalId, bool Enabled, string? Note, bool Deleted, DateTimeOffset UpdatedAt);

/// <summary>Add one entry.</summary>
/// <param name="SignalType">Type (pdq, md5, sha1, sha256, …).</param>
/// <param name="Signal">Value.</param>
/// <param name="Labels">Labels.</param>
/// <param name="ExternalId">Source id.</param>
/// <param name="Note">Free text.</param>
public sealed record AddEntryRequest(string SignalType, string Signal, IReadOnlyDictionary<string, string>? Labels, string? ExternalId, string? Note);

/// <summary>Change an entry.</summary>
/// <param name="Enabled">Enable or disable matching of this entry.</param>
public sealed record UpdateEntryRequest(bool? Enabled);

/// <summary>What an import did.</summary>
/// <param name="Processed">Records read.</param>
/// <param name="Added">New entries.</param>
/// <param name="Updated">Changed entries.</param>
/// <param name="Unchanged">Identical re-imports.</param>
/// <param name="Deleted">Tombstoned.</param>
/// <param name="Skipped">Bad records skipped (with <c>on_error=skip</c>).</param>
/// <param name="Errors">The first bad records: line and reason.</param>
public sealed record ImportResponse(long Processed, long Added, long Updated, long Unchanged, long Deleted, long Skipped, IReadOnlyList<string> Errors);

/// <summary>Create an API key.</summary>
/// <param name="Name">Who or what uses it.</param>
/// <param name="Role">submitter, curator, reviewer or admin.</param>
public sealed record CreateKeyRequest(string Name, string Role);

/// <summary>A key (the secret only in the creation response).</summary>
/// <param name="Id">Id.</param>
/// <param name="PublicId">Shown in logs.</param>
/// <param name="Name">Name.</param>
/// <param name="Role">Role.</param>
/// <param name="CreatedAt">Created.</param>
/// <param name="RevokedAt">Revoked.</param>
/// <param name="Key">The secret, shown once.</param>
public sealed record KeyDto(long Id, string PublicId, string Name, string Role, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt, string? Key);

/// <summary>Subscribe a webhook.</summary>
/// <param name="Url">http(s) URL receiving POSTs.</param>
/// <param name="Secret">HMAC secret (≥ 16 characters); generated when absent and shown once.</param>
public sealed record CreateWebhookRequest(string Url, string? Secret);

/// <summary>A webhook subscription.</summary>
/// <param name="Id">Id.</param>
/// <param name="Url">URL.</param>
/// <param name="Enabled">Enabled.</param>
/// <param name="CreatedAt">Created.</param>
/// <param name="Secret">Shown once at creation.</param>
public sealed record WebhookDto(long Id, string Url, bool Enabled, DateTimeOffset CreatedAt, string? Secret);
