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
    /// quality, as the matcher uses them), the digests, and a video's vPDQ for the record.
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

        string? extra = null;
        if (video?.Vpdq is { } vpdq)
        {
            extra = JsonSerializer.Serialize(new Dictionary<string, string> { ["vpdq"] = vpdq.ToSignal() });
        }

        return new LoggedSignals(
            usable ? [.. pdq!.Dihedral ?? [pdq.Hash]] : null,
            pdq?.Quality ?? 0,
            usable && trimmed is not null && trimmed.Quality >= PdqSignalType.MinQuality ? [.. trimmed.Dihedral ?? [trimmed.Hash]] : null,
            exact,
            extra);
    }
}
