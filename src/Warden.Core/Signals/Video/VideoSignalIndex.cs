using System.Globalization;
using System.Text;
using Warden.Core.Hashing.Video;
using Warden.Core.Matching;

namespace Warden.Core.Signals;

/// <summary>
/// vpdq or tmk_pdqf entries in a <see cref="VideoIndex"/>. The video index is small and not built for concurrent
/// writers: a live server adds and removes entries while queries run, so operations share one reader-writer lock,
/// and removal is a tombstone filter. The entries' text is kept for the snapshot (video banks are small next to
/// PDQ banks).
/// </summary>
internal sealed class VideoSignalIndex(ISignalType type) : ISignalIndex
{
    private readonly bool _tmk = type is TmkPdqfSignalType;
    private readonly VideoIndex _video = new();
    private readonly List<(long Id, string Signal)> _entries = [];
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.SupportsRecursion);
    private readonly HashSet<long> _removed = [];
    private readonly HashSet<long> _ids = [];
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public bool Add(long id, string normalized)
    {
        _lock.EnterWriteLock();
        try
        {
            // Re-adding a removed entry (a live index applies every change as remove + add) revives it; its
            // frames are still indexed under the same id, and matches are reported once per id.
            if (_removed.Remove(id) && _ids.Contains(id))
            {
                Interlocked.Increment(ref _count);
                return true;
            }

            if (_tmk)
            {
                if (!TmkHasher.TryParseSignal(normalized, out var features, out _))
                {
                    return false;
                }

                _video.AddTmk(id, features!);
            }
            else if (!VpdqHash.TryParse(normalized, out var hash, out _) || !_video.AddVpdq(id, hash))
            {
                return false;
            }

            _entries.Add((id, normalized));
            _ids.Add(id);
            Interlocked.Increment(ref _count);
            return true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Remove(long id)
    {
        _lock.EnterWriteLock();
        try
        {
            if (_ids.Contains(id) && _removed.Add(id))
            {
                Interlocked.Decrement(ref _count);
                return true;
            }

            return false;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Search(Signal query, int maxDistance, List<IndexHit> hits)
    {
        VpdqHash? vpdq = null;
        TmkFeatures? tmk = null;
        if (_tmk)
        {
            tmk = query is TmkSignal t ? t.Features : TmkHasher.TryParseSignal(query.Value, out var f, out _) ? f : null;
        }
        else
        {
            vpdq = query is VpdqSignal v ? v.Hash : VpdqHash.TryParse(query.Value, out var h, out _) ? h : null;
        }

        if (vpdq is null && tmk is null)
        {
            return;
        }

        List<VideoMatch> matches;
        _lock.EnterReadLock();
        try
        {
            matches = _video.Match(vpdq, tmk);
            matches.RemoveAll(m => _removed.Contains(m.Id));
        }
        finally
        {
            _lock.ExitReadLock();
        }

        var seen = new HashSet<long>();
        foreach (var m in matches)
        {
            if (seen.Add(m.Id))
            {
                var summary = _tmk
                    ? string.Create(CultureInfo.InvariantCulture, $"level1 {m.Level1:F4} / level2 {m.Level2:F4}")
                    : string.Create(CultureInfo.InvariantCulture, $"query {m.QueryMatchPercent:F1}% / compared {m.ComparedMatchPercent:F1}%");
                hits.Add(new IndexHit(m.Id, 0, 0, m, summary));
            }
        }
    }

    public void Save(string path)
    {
        _lock.EnterReadLock();
        try
        {
            using var w = new StreamWriter(path, false, new UTF8Encoding(false));
            foreach (var (id, signal) in _entries)
            {
                if (!_removed.Contains(id))
                {
                    w.Write(id.ToString(CultureInfo.InvariantCulture));
                    w.Write('\t');
                    w.Write(signal);
                    w.Write('\n');
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public static VideoSignalIndex Load(ISignalType type, string path)
    {
        var index = new VideoSignalIndex(type);
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                var tab = line.IndexOf('\t', StringComparison.Ordinal);
                if (tab < 1 || !long.TryParse(line.AsSpan(0, tab), NumberStyles.None, CultureInfo.InvariantCulture, out var id) || !index.Add(id, line[(tab + 1)..]))
                {
                    throw new InvalidDataException($"{path}: damaged {type.Name} entry.");
                }
            }

            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _video.Dispose();
        _lock.Dispose();
    }
}
