using System.Text.Json;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Video;
using Warden.Core.Signals;

namespace Warden.Storage;

/// <summary>
/// The one place the signal log meets the hashing types (<see cref="ContentHashes"/>, <see cref="VideoHashes"/>):
/// when those change shape, only this file changes. Used by the server's match path and the backfill worker.
/// </summary>
public static class SignalLogAdapter
{
    /// <summary>
    /// What the log keeps of hashed content: the PDQ variants that were matched (only at or above the match
    /// quality, as the matcher uses them), the digests, and a video's vPDQ and (when computed) TMK+PDQF.
    /// </summary>
    public static LoggedSignals From(ContentHashes hashes, VideoHashes? video = null, IEnumerable<(string Type, string Value)>? more = null)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        var pdq = hashes.Image?.Pdq;
        var trimmed = hashes.Image?.Trimmed;
        var usable = pdq is not null && pdq.Quality >= PdqSignalType.MinQuality;
        var exact = new List<(string, string)>
        {
            (SignalTypes.Md5.Name, hashes.Exact.Md5Hex),
            (SignalTypes.Sha1.Name, hashes.Exact.Sha1Hex),
            (SignalTypes.Sha256.Name, hashes.Exact.Sha256Hex),
        };
        if (video is not null)
        {
            exact.Add((SignalTypes.VideoMd5.Name, hashes.Exact.Md5Hex));
        }

        if (more is not null)
        {
            exact.AddRange(more);
        }

        // Video similarity signals for retroactive search: vPDQ always, TMK+PDQF when it was computed (a bank holds
        // TMK entries, the caller asked, or Warden__SignalLogTmk); TMK is ~350 KB of base64 per video.
        var videoSignals = new Dictionary<string, string>(StringComparer.Ordinal);
        if (video?.Vpdq is { } vpdq)
        {
            videoSignals[SignalTypes.Vpdq.Name] = vpdq.ToSignal();
        }

        if (video?.Tmk is { } tmk)
        {
            videoSignals[SignalTypes.TmkPdqf.Name] = TmkHasher.ToSignal(tmk);
        }

        var extra = videoSignals.Count > 0 ? JsonSerializer.Serialize(videoSignals) : null;

        return new LoggedSignals(
            usable ? [.. pdq!.Dihedral ?? [pdq.Hash]] : null,
            pdq?.Quality ?? 0,
            usable && trimmed is not null && trimmed.Quality >= PdqSignalType.MinQuality ? [.. trimmed.Dihedral ?? [trimmed.Hash]] : null,
            exact,
            extra);
    }
}
