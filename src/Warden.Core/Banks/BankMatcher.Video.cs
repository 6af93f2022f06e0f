using System.Globalization;
using System.Text;
using Warden.Core.Hashing.Video;
using Warden.Core.Matching;
using Warden.Core.Signals;

namespace Warden.Core.Banks;

/// <summary>What a video offers for matching besides its file digests.</summary>
/// <param name="Vpdq">Its vPDQ hash, if computed.</param>
/// <param name="Tmk">Its TMK+PDQF features, if computed.</param>
public sealed record VideoSignals(VpdqHash? Vpdq, TmkFeatures? Tmk);

/// <summary>The video part of the matcher: vpdq and tmk_pdqf entries in a <see cref="VideoIndex"/>.</summary>
public sealed partial class BankMatcher
{
    private const string VideoFile = "video.idx";

    private readonly VideoIndex _video = new();

    // The entries' text, kept for the snapshot (video banks are small next to PDQ banks).
    private readonly List<(long Id, string Type, string Signal)> _videoEntries = [];

    // The video index is small and not built for concurrent writers: a live server adds and removes entries
    // while queries run, so video operations share one reader-writer lock. Removal is a tombstone filter.
    private readonly ReaderWriterLockSlim _videoLock = new(LockRecursionPolicy.SupportsRecursion);
    private readonly HashSet<long> _removedVideo = [];
    private readonly HashSet<(long Id, string Type)> _videoIds = [];

    /// <summary>True when some enabled bank holds vpdq, tmk_pdqf or video_md5 entries (scans then hash videos).</summary>
    public bool HasVideoSignals => _video.VpdqCount > 0 || _video.TmkCount > 0 || _exact[SignalTypes.VideoMd5.Name].Count > 0;

    /// <summary>True when some enabled bank holds tmk_pdqf entries (scans then compute TMK too).</summary>
    public bool HasTmk => _video.TmkCount > 0;

    private bool AddVideo(long id, string signalType, string signal)
    {
        if (signalType != SignalTypes.Vpdq.Name && signalType != SignalTypes.TmkPdqf.Name)
        {
            return false;
        }

        _videoLock.EnterWriteLock();
        try
        {
            // Re-adding a removed entry (a live index applies every change as remove + add) revives it; its
            // frames are still indexed under the same id, and matches are reported once per id.
            if (_removedVideo.Remove(id) && _videoIds.Contains((id, signalType)))
            {
                return true;
            }

            return AddVideoLocked(id, signalType, signal);
        }
        finally
        {
            _videoLock.ExitWriteLock();
        }
    }

    private bool RemoveVideo(long id, string signalType)
    {
        _videoLock.EnterWriteLock();
        try
        {
            return _videoIds.Contains((id, signalType)) && _removedVideo.Add(id);
        }
        finally
        {
            _videoLock.ExitWriteLock();
        }
    }

    private bool AddVideoLocked(long id, string signalType, string signal)
    {
        if (signalType == SignalTypes.Vpdq.Name)
        {
            if (!VpdqHash.TryParse(signal, out var hash, out _) || !_video.AddVpdq(id, hash))
            {
                return false;
            }
        }
        else if (signalType == SignalTypes.TmkPdqf.Name)
        {
            if (!TmkHasher.TryParseSignal(signal, out var features, out _))
            {
                return false;
            }

            _video.AddTmk(id, features!);
        }
        else
        {
            return false;
        }

        _videoEntries.Add((id, signalType, signal));
        _videoIds.Add((id, signalType));
        return true;
    }

    private void MatchVideo(VideoSignals? video, List<MatchHit> hits)
    {
        if (video is null || (_video.VpdqCount == 0 && _video.TmkCount == 0))
        {
            return;
        }

        List<VideoMatch> matches;
        _videoLock.EnterReadLock();
        try
        {
            matches = _video.Match(video.Vpdq, video.Tmk);
            matches.RemoveAll(m => _removedVideo.Contains(m.Id));
        }
        finally
        {
            _videoLock.ExitReadLock();
        }

        foreach (var m in matches.GroupBy(m => (m.Id, m.SignalType)).Select(g => g.First()))
        {
            var summary = m.SignalType == SignalTypes.Vpdq.Name
                ? string.Create(CultureInfo.InvariantCulture, $"query {m.QueryMatchPercent:F1}% / compared {m.ComparedMatchPercent:F1}%")
                : string.Create(CultureInfo.InvariantCulture, $"level1 {m.Level1:F4} / level2 {m.Level2:F4}");
            hits.Add(new MatchHit(m.SignalType, summary, _banks[(int)(m.Id >> BankShift)], m.Id & EntryMask, 0, "original", Suppressed: false, m));
        }
    }

    private void SaveVideo(string directory)
    {
        var path = Path.Combine(directory, VideoFile);
        using var w = new StreamWriter(path, false, new UTF8Encoding(false));
        foreach (var (id, type, signal) in _videoEntries.Where(e => !_removedVideo.Contains(e.Id)))
        {
            w.Write(id.ToString(CultureInfo.InvariantCulture));
            w.Write('\t');
            w.Write(type);
            w.Write('\t');
            w.Write(signal);
            w.Write('\n');
        }
    }

    private void LoadVideo(string directory)
    {
        var path = Path.Combine(directory, VideoFile);
        if (!File.Exists(path))
        {
            return;
        }

        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split('\t', 3);
            if (parts.Length != 3 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id) || !AddVideo(id, parts[1], parts[2]))
            {
                throw new InvalidDataException($"{path}: damaged video entry.");
            }

            Interlocked.Increment(ref _count);
        }
    }
}
