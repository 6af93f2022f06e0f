using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Snapshots;

namespace Warden.Core.Matching;

/// <summary>
/// Exact Hamming range index over PDQ hashes: every stored hash within the radius is returned, nothing else
/// (the same set as <see cref="BruteForce"/>). Multi-index hashing (Norouzi, Punjani, Fleet) with a linear scan
/// where that is cheaper; incremental add and remove; snapshots that load memory-mapped.
/// </summary>
/// <remarks>
/// <para>Storage is log-structured: immutable segments of up to 2^25 hashes, each with its own multi-index tables
/// sized for its count (<see cref="MihLayout"/>), plus a 4,096-entry tail that is scanned. A full tail becomes a
/// segment; adjacent segments of similar size are merged (a binary counter), so an add costs O(log N) amortised
/// and a query visits O(log N) small segments plus the bulk ones. Removal writes a tombstone over the id; a
/// segment less than half live is rebuilt without its dead slots.</para>
/// <para>Thread safety: any number of concurrent queries, serialised writers, via a
/// <see cref="ReaderWriterLockSlim"/>. Writers hold the lock only for appends and tombstones, except when a tail
/// seal triggers a merge (rebuild time of the merged size, rare for large sizes).</para>
/// <para>Ids are any <see cref="long"/> except <see cref="long.MinValue"/> (the tombstone). An id may be added with
/// several hashes; <see cref="Remove"/> removes them all and <see cref="Search"/> reports each hash.</para>
/// </remarks>
public sealed unsafe class PdqIndex : IDisposable
{
    /// <summary>The id value reserved to mark removed slots.</summary>
    public const long Tombstone = long.MinValue;

    internal const int TailCapacity = 4096;

    private const ulong FileMagic = 0x5844_5150_4E44_5257; // "WRDNPDQX" little-endian
    private const int FileVersion = 3; // 2: compact directories, 3-byte postings, hashes sorted by table 0; 3: byte directories, 2^25 segments
    private const int FileHeaderBytes = 64;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly List<PdqSegment> _segments = [];
    private readonly PdqHash[] _tailHashes = new PdqHash[TailCapacity];
    private readonly long[] _tailIds = new long[TailCapacity];
    private readonly int _tablesOverride;
    private readonly SearchPath _path;
    private int _tailCount;
    private int _count;
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private bool _disposed;

    /// <summary>Creates an empty index.</summary>
    public PdqIndex()
    {
    }

    /// <summary>Bench/test hook: forces the number of substrings of every indexed segment and/or the search path.</summary>
    internal PdqIndex(int tablesOverride, SearchPath path = SearchPath.Auto)
    {
        _tablesOverride = tablesOverride;
        _path = path;
    }

    /// <summary>How segments are searched (tests and bench force one path; production is <see cref="Auto"/>).</summary>
    internal enum SearchPath
    {
        Auto,
        MultiIndex,
        Scan,
    }

    /// <summary>Number of live (added and not removed) hashes.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Segments, for tests and the bench (call under no concurrent writer).</summary>
    internal IReadOnlyList<PdqSegment> Segments => _segments;

    /// <summary>Adds one hash; visible to the next query.</summary>
    public void Add(in PdqHash hash, long id)
    {
        CheckId(id);
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_tailCount == TailCapacity)
            {
                SealTail();
            }

            _tailHashes[_tailCount] = hash;
            _tailIds[_tailCount++] = id;
            _count++;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Adds many hashes at once, building segments directly (the fast path for loading a bank).</summary>
    public void AddRange(ReadOnlySpan<PdqHash> hashes, ReadOnlySpan<long> ids)
    {
        if (hashes.Length != ids.Length)
        {
            throw new ArgumentException($"{hashes.Length} hashes but {ids.Length} ids.", nameof(ids));
        }

        foreach (var id in ids)
        {
            CheckId(id);
        }

        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (hashes.Length <= TailCapacity - _tailCount)
            {
                hashes.CopyTo(_tailHashes.AsSpan(_tailCount));
                ids.CopyTo(_tailIds.AsSpan(_tailCount));
                _tailCount += hashes.Length;
            }
            else
            {
                // Even chunks of at most 2^25 (a 100M load becomes 3 segments of 33.3M).
                var chunks = (hashes.Length + MihLayout.MaxSegment - 1) / MihLayout.MaxSegment;
                var per = (hashes.Length + chunks - 1) / chunks;
                for (var start = 0; start < hashes.Length; start += per)
                {
                    var n = Math.Min(per, hashes.Length - start);
                    _segments.Add(PdqSegment.Build(hashes.Slice(start, n), ids.Slice(start, n), _tablesOverride));
                    MergeNewest();
                }
            }

            _count += hashes.Length;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Removes every hash stored under <paramref name="id"/>; false if there was none.</summary>
    public bool Remove(long id)
    {
        if (id == Tombstone)
        {
            return false;
        }

        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var removed = 0;
            for (var i = _tailCount - 1; i >= 0; i--)
            {
                if (_tailIds[i] == id)
                {
                    // The tail is scanned, so order does not matter: move the last entry into the hole.
                    _tailCount--;
                    _tailHashes[i] = _tailHashes[_tailCount];
                    _tailIds[i] = _tailIds[_tailCount];
                    removed++;
                }
            }

            for (var s = _segments.Count - 1; s >= 0; s--)
            {
                var seg = _segments[s];
                var n = seg.Remove(id);
                if (n == 0)
                {
                    continue;
                }

                removed += n;
                if (seg.Live == 0)
                {
                    _segments.RemoveAt(s);
                    seg.Dispose();
                }
                else if (seg.Live < seg.Count / 2)
                {
                    _segments[s] = Compact(seg, null);
                }
            }

            _count -= removed;
            return removed > 0;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// Appends every stored (id, distance) with distance ≤ <paramref name="radius"/> (Variant 0), in no particular
    /// order. A radius above 256 is treated as 256.
    /// </summary>
    public void Search(in PdqHash query, int radius, List<PdqMatch> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentOutOfRangeException.ThrowIfNegative(radius);
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            SearchCore(query, Math.Min(radius, PdqHash.Bits), 0, results);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Queries several variants of one image (normally its 8 dihedral hashes) under one lock. Appends one match
    /// per id: the minimum distance over variants and the index of the (first) variant that achieved it.
    /// </summary>
    public void SearchDihedral(ReadOnlySpan<PdqHash> variants, int radius, List<PdqMatch> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentOutOfRangeException.ThrowIfNegative(radius);
        var start = results.Count;
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // One pass per segment for all variants: scanned segments and the tail load each hash once for the
            // lot, probed segments share the per-table radii and scratch (see PdqSegment.SearchMany).
            var r = Math.Min(radius, PdqHash.Bits);
            foreach (var seg in _segments)
            {
                seg.SearchMany(variants, r, results, _path);
            }

            BruteForce.ScanMany(_tailHashes.AsSpan(0, _tailCount), _tailIds.AsSpan(0, _tailCount), variants, r, results, skipTombstones: false);
        }
        finally
        {
            _lock.ExitReadLock();
        }

        DeduplicateById(results, start);
    }

    /// <summary>
    /// Appends every live hash and its id (segments, then the tail) whose id <paramref name="keep"/> accepts: to
    /// build a merged or filtered copy without the source the index was built from.
    /// </summary>
    public void CopyLiveTo(List<PdqHash> hashes, List<long> ids, Func<long, bool>? keep = null)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        ArgumentNullException.ThrowIfNull(ids);
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var seg in _segments)
            {
                Copy(seg.Hashes, seg.Ids, hashes, ids, keep);
            }

            Copy(_tailHashes.AsSpan(0, _tailCount), _tailIds.AsSpan(0, _tailCount), hashes, ids, keep);
        }
        finally
        {
            _lock.ExitReadLock();
        }

        static void Copy(ReadOnlySpan<PdqHash> from, ReadOnlySpan<long> fromIds, List<PdqHash> hashes, List<long> ids, Func<long, bool>? keep)
        {
            for (var i = 0; i < fromIds.Length; i++)
            {
                if (fromIds[i] != Tombstone && (keep is null || keep(fromIds[i])))
                {
                    hashes.Add(from[i]);
                    ids.Add(fromIds[i]);
                }
            }
        }
    }

    /// <summary>Writes a snapshot (see docs/formats.md), atomically replacing <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var tail = PdqSegment.Build(_tailHashes.AsSpan(0, _tailCount), _tailIds.AsSpan(0, _tailCount), _tablesOverride);
            var blobs = new List<PdqSegment>(_segments.Where(s => s.Live > 0));
            if (tail.Count > 0)
            {
                blobs.Add(tail);
            }

            var tmp = path + ".tmp";
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var header = new byte[FileHeaderBytes];
                fs.Write(header);
                var sum = default(Checksum);
                long length = FileHeaderBytes;
                foreach (var seg in blobs)
                {
                    // Blobs can exceed 2 GB: write in 64 MB pieces straight from unmanaged memory.
                    for (long off = 0; off < seg.BlobLength; off += 1 << 26)
                    {
                        var piece = new ReadOnlySpan<byte>(seg.BlobPointer + off, (int)Math.Min(1 << 26, seg.BlobLength - off));
                        sum.Add(piece);
                        fs.Write(piece);
                    }

                    length += seg.BlobLength;
                }

                WriteHeader(header, length, blobs.Count, sum.Value);
                fs.Position = 0;
                fs.Write(header);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Opens a snapshot by memory-mapping it (copy-on-write: later adds and removes never touch the file).
    /// Throws <see cref="InvalidDataException"/> if the file is truncated, corrupt or of another version.
    /// </summary>
    public static PdqIndex Load(string path) => Load(path, 0, SearchPath.Auto);

    /// <param name="path">The snapshot.</param>
    /// <param name="tablesOverride">As for the constructor.</param>
    /// <param name="searchPath">As for the constructor.</param>
    internal static PdqIndex Load(string path, int tablesOverride, SearchPath searchPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var length = new FileInfo(path).Length;
        if (length < FileHeaderBytes)
        {
            throw new InvalidDataException($"PDQ index snapshot '{path}' is truncated: {length} bytes, the header alone is {FileHeaderBytes}.");
        }

        var index = new PdqIndex(tablesOverride, searchPath);
        byte* p = null;
        try
        {
            index._map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.CopyOnWrite);
            index._view = index._map.CreateViewAccessor(0, length, MemoryMappedFileAccess.CopyOnWrite);
            index._view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += index._view.PointerOffset;

            var header = new SnapshotReader(new ReadOnlySpan<byte>(p, FileHeaderBytes), $"PDQ index snapshot '{path}'");
            if (header.ReadUInt64() != FileMagic)
            {
                throw new InvalidDataException($"'{path}' is not a Warden PDQ index snapshot (bad magic).");
            }

            var version = header.ReadInt32();
            if (version != FileVersion || header.ReadInt32() != FileHeaderBytes)
            {
                throw new InvalidDataException($"PDQ index snapshot '{path}' has format version {version}; this build reads version {FileVersion}.");
            }

            var declared = header.ReadInt64();
            if (declared != length)
            {
                throw new InvalidDataException($"PDQ index snapshot '{path}' is truncated or padded: {length} bytes, the header says {declared}.");
            }

            var segmentCount = header.ReadInt32();
            header.Skip(4);
            var expectedSum = header.ReadUInt64();
            var sum = default(Checksum);
            for (long off = FileHeaderBytes; off < length; off += 1 << 26)
            {
                sum.Add(new ReadOnlySpan<byte>(p + off, (int)Math.Min(1 << 26, length - off)));
            }

            if (sum.Value != expectedSum)
            {
                throw new InvalidDataException($"PDQ index snapshot '{path}' is corrupt: checksum mismatch.");
            }

            // Segments are searched in the mapping itself (4 KiB pages). Copying big ones into huge pages was tried
            // and removed: no gain beyond noise at 1M on an idle machine, for a second pass over the file at start-up
            // (docs/performance.md).
            long pos = FileHeaderBytes;
            for (var s = 0; s < segmentCount; s++)
            {
                var seg = PdqSegment.Open(p + pos, length - pos, s);
                index._segments.Add(seg);
                index._count += seg.Live;
                pos += seg.BlobLength;
            }

            if (pos != length)
            {
                throw new InvalidDataException($"PDQ index snapshot '{path}' is corrupt: {length - pos} trailing bytes after {segmentCount} segments.");
            }

            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>Releases the unmanaged segments and the snapshot mapping.</summary>
    public void Dispose()
    {
        _lock.EnterWriteLock();
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var seg in _segments)
            {
                seg.Dispose();
            }

            _segments.Clear();
            if (_view is not null)
            {
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
                _view.Dispose();
            }

            _map?.Dispose();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private void SearchCore(in PdqHash query, int radius, int variant, List<PdqMatch> results)
    {
        foreach (var seg in _segments)
        {
            seg.Search(query, radius, variant, results, _path);
        }

        BruteForce.Scan(_tailHashes.AsSpan(0, _tailCount), _tailIds.AsSpan(0, _tailCount), query, radius, variant, results, skipTombstones: false);
    }

    private static void DeduplicateById(List<PdqMatch> results, int start)
    {
        var n = results.Count - start;
        if (n < 2)
        {
            return;
        }

        // Sort the appended range by (id, distance, variant) and keep the first of each id.
        var span = CollectionsMarshal.AsSpan(results).Slice(start, n);
        span.Sort(static (a, b) =>
        {
            var c = a.Id.CompareTo(b.Id);
            return c != 0 ? c : (a.Distance != b.Distance ? a.Distance.CompareTo(b.Distance) : a.Variant.CompareTo(b.Variant));
        });
        var w = 1;
        for (var i = 1; i < span.Length; i++)
        {
            if (span[i].Id != span[w - 1].Id)
            {
                span[w++] = span[i];
            }
        }

        results.RemoveRange(start + w, n - w);
    }

    private void SealTail()
    {
        _segments.Add(PdqSegment.Build(_tailHashes.AsSpan(0, _tailCount), _tailIds.AsSpan(0, _tailCount), _tablesOverride));
        _tailCount = 0;
        MergeNewest();
    }

    /// <summary>Binary-counter merging: fold the newest segment into the previous one while they are of similar size.</summary>
    private void MergeNewest()
    {
        while (_segments.Count >= 2)
        {
            var a = _segments[^2];
            var b = _segments[^1];
            if (a.Live > 2L * b.Live || (long)a.Live + b.Live > MihLayout.MaxSegment)
            {
                return;
            }

            _segments.RemoveAt(_segments.Count - 1);
            _segments[^1] = Compact(a, b);
        }
    }

    /// <summary>Builds one segment from the live slots of <paramref name="a"/> (and <paramref name="b"/>), disposing them.</summary>
    private PdqSegment Compact(PdqSegment a, PdqSegment? b)
    {
        var count = a.Live + (b?.Live ?? 0);
        var tables = MihLayout.For(count, _tablesOverride);

        // Counted over every slot of both, removed ones included: an upper bound is all the layout needs.
        var seg = PdqSegment.Allocate(count, tables, PdqSegment.OverflowCapacity(tables, count, a.Hashes, b is null ? default : b.Hashes));
        var hashes = seg.Hashes;
        var ids = seg.Ids;
        var w = 0;
        foreach (var src in b is null ? [a] : new[] { a, b })
        {
            var sh = src.Hashes;
            var si = src.Ids;
            for (var i = 0; i < si.Length; i++)
            {
                if (si[i] != Tombstone)
                {
                    hashes[w] = sh[i];
                    ids[w++] = si[i];
                }
            }

            src.Dispose();
        }

        seg.BuildTables();
        return seg;
    }

    private static void CheckId(long id)
    {
        if (id == Tombstone)
        {
            throw new ArgumentOutOfRangeException(nameof(id), "long.MinValue is reserved as the removal marker.");
        }
    }

    private static void WriteHeader(Span<byte> header, long length, int segments, ulong checksum)
    {
        header.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header, FileMagic);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], FileVersion);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], FileHeaderBytes);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], length);
        BinaryPrimitives.WriteInt32LittleEndian(header[24..], segments);
        BinaryPrimitives.WriteUInt64LittleEndian(header[32..], checksum);
    }
}
