using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Matching;

/// <summary>
/// An immutable block of up to 2^24 hashes with their multi-index tables, in one contiguous blob of unmanaged
/// memory (or a memory-mapped snapshot). Only the ids are written after construction: removal overwrites an id
/// with <see cref="PdqIndex.Tombstone"/>.
/// </summary>
/// <remarks>
/// Blob layout (little-endian, every array 64-byte aligned; the snapshot stores blobs verbatim):
/// 256-byte header, hashes (32 B each), ids (8 B each), then per table a directory of 2^p + 1 ints (run starts,
/// CSR style) and count postings (uint: slot &lt;&lt; 8 | low key bits), sorted by key and then slot.
/// </remarks>
internal sealed unsafe class PdqSegment : IDisposable
{
    public const uint Magic = 0x47455350; // "PSEG"
    public const int HeaderBytes = 256;

    private readonly MihTable[] _tables;
    private readonly long _hashesOffset;
    private readonly long _idsOffset;
    private readonly long[] _dirOffsets;
    private readonly long[] _postOffsets;
    private readonly bool _owned;
    private readonly int _scanFromRadius;
    private byte* _base;

    [ThreadStatic]
    private static Scratch? _threadScratch;

    private PdqSegment(byte* blob, long length, int count, MihTable[] tables, bool owned)
    {
        _base = blob;
        BlobLength = length;
        Count = count;
        _tables = tables;
        _owned = owned;
        _dirOffsets = new long[tables.Length];
        _postOffsets = new long[tables.Length];
        ComputeLayout(count, tables, out _hashesOffset, out _idsOffset, _dirOffsets, _postOffsets);
        _scanFromRadius = tables.Length == 0 ? 0 : ScanCrossover(tables, count);
    }

    ~PdqSegment() => Free();

    /// <summary>Number of stored slots, live or removed.</summary>
    public int Count { get; }

    /// <summary>Slots whose id is not a tombstone.</summary>
    public int Live { get; private set; }

    public long BlobLength { get; }

    public ReadOnlySpan<MihTable> Tables => _tables;

    /// <summary>Smallest radius at which the linear scan is estimated to be cheaper than probing.</summary>
    public int ScanFromRadius => _scanFromRadius;

    public Span<PdqHash> Hashes => new(_base + _hashesOffset, Count);

    public Span<long> Ids => new(_base + _idsOffset, Count);

    public byte* BlobPointer => _base;

    /// <summary>Allocates a segment whose hashes and ids the caller fills before calling <see cref="BuildTables"/>.</summary>
    public static PdqSegment Allocate(int count, MihTable[] tables)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MihLayout.MaxSegment);
        var length = ComputeLayout(count, tables, out _, out _, new long[tables.Length], new long[tables.Length]);
        var blob = (byte*)NativeMemory.AlignedAlloc((nuint)length, 64);
        new Span<byte>(blob, HeaderBytes).Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(blob, 4), Magic);
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(blob + 4, 4), count);
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(blob + 8, 4), tables.Length);
        BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(blob + 16, 8), length);
        for (var j = 0; j < tables.Length; j++)
        {
            blob[24 + (4 * j)] = (byte)tables[j].Start;
            blob[25 + (4 * j)] = (byte)tables[j].Width;
            blob[26 + (4 * j)] = (byte)tables[j].PrefixBits;
        }

        return new PdqSegment(blob, length, count, tables, owned: true);
    }

    /// <summary>Builds a segment from hashes and ids (copied).</summary>
    public static PdqSegment Build(ReadOnlySpan<PdqHash> hashes, ReadOnlySpan<long> ids, int tablesOverride = 0)
    {
        var seg = Allocate(hashes.Length, MihLayout.For(hashes.Length, tablesOverride));
        hashes.CopyTo(seg.Hashes);
        ids.CopyTo(seg.Ids);
        seg.BuildTables();
        return seg;
    }

    /// <summary>
    /// Opens a segment stored at <paramref name="blob"/> (a snapshot), validating everything a query relies on for
    /// memory safety: the header, the length, directory monotonicity and every posting's slot.
    /// </summary>
    public static PdqSegment Open(byte* blob, long available, int index)
    {
        string Where() => $"segment {index}";
        if (available < HeaderBytes)
        {
            throw new InvalidDataException($"PDQ index snapshot is truncated: {Where()} header needs {HeaderBytes} bytes, {available} left.");
        }

        var header = new ReadOnlySpan<byte>(blob, HeaderBytes);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} has a bad magic number.");
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
        var tableCount = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        var length = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        if (count is < 0 or > MihLayout.MaxSegment || tableCount < 0 || tableCount > MihLayout.MaxTables)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} claims {count} hashes in {tableCount} tables.");
        }

        var tables = new MihTable[tableCount];
        var start = 0;
        for (var j = 0; j < tableCount; j++)
        {
            var t = new MihTable(header[24 + (4 * j)], header[25 + (4 * j)], header[26 + (4 * j)]);

            // The substrings must partition the 256 bits exactly, or the pigeonhole argument (and recall) fails.
            if (t.Start != start || t.Width is < 1 or > 32 || t.PrefixBits > t.Width || t.LowBits > 8 || t.PrefixBits > 28)
            {
                throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} table {j} is invalid ({t}).");
            }

            tables[j] = t;
            start += t.Width;
        }

        if (tableCount > 0 && start != PdqHash.Bits)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} tables cover {start} bits, not 256.");
        }

        var expected = ComputeLayout(count, tables, out _, out _, new long[tableCount], new long[tableCount]);
        if (length != expected)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} is {length} bytes, its header implies {expected}.");
        }

        if (length > available)
        {
            throw new InvalidDataException($"PDQ index snapshot is truncated: {Where()} needs {length} bytes, {available} left.");
        }

        var seg = new PdqSegment(blob, length, count, tables, owned: false);
        seg.Validate(index);
        seg.RecountLive();
        return seg;
    }

    /// <summary>Fills every table's directory and postings with a counting sort on the substring prefix.</summary>
    public void BuildTables()
    {
        RecountLive();
        if (_tables.Length == 0)
        {
            return;
        }

        // Tables are independent; the bench pins to one core, where this is a plain loop.
        Parallel.For(0, _tables.Length, BuildTable);
    }

    private void BuildTable(int j)
    {
        var t = _tables[j];
        var dir = Dir(j);
        var post = Post(j);
        var hashes = Hashes;
        var low = t.LowBits;
        var lowMask = t.LowMask;
        dir.Clear();
        for (var i = 0; i < hashes.Length; i++)
        {
            dir[(int)(t.Key(hashes[i]) >> low) + 1]++;
        }

        for (var p = 1; p < dir.Length; p++)
        {
            dir[p] += dir[p - 1];
        }

        // Scatter with a cursor copy of the run starts: slots ascend within each run.
        var cursor = GC.AllocateUninitializedArray<int>(dir.Length - 1);
        dir[..^1].CopyTo(cursor);
        for (var i = 0; i < hashes.Length; i++)
        {
            var key = t.Key(hashes[i]);
            post[cursor[(int)(key >> low)]++] = ((uint)i << 8) | (key & lowMask);
        }
    }

    public void RecountLive()
    {
        var ids = Ids;
        var live = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            live += ids[i] != PdqIndex.Tombstone ? 1 : 0;
        }

        Live = live;
    }

    /// <summary>Tombstones every slot holding <paramref name="id"/>; returns how many.</summary>
    public int Remove(long id)
    {
        var ids = Ids;
        var removed = 0;
        var from = 0;
        int k;
        while ((k = ids[from..].IndexOf(id)) >= 0)
        {
            ids[from + k] = PdqIndex.Tombstone;
            from += k + 1;
            removed++;
        }

        Live -= removed;
        return removed;
    }

    /// <summary>Appends every live entry within <paramref name="radius"/> of <paramref name="q"/>, each once.</summary>
    public void Search(in PdqHash q, int radius, int variant, List<PdqMatch> results, PdqIndex.SearchPath path = PdqIndex.SearchPath.Auto)
    {
        if (_tables.Length == 0 || path == PdqIndex.SearchPath.Scan || (path == PdqIndex.SearchPath.Auto && radius >= _scanFromRadius))
        {
            BruteForce.Scan(Hashes, Ids, q, radius, variant, results, skipTombstones: true);
            return;
        }

        var m = _tables.Length;
        Span<uint> keys = stackalloc uint[m];
        Span<int> radii = stackalloc int[m];
        for (var j = 0; j < m; j++)
        {
            keys[j] = _tables[j].Key(q);
            radii[j] = MihLayout.RadiusFor(j, m, radius);
        }

        // Four passes, each a loop of independent loads issued with prefetches one pass ahead, so the cache
        // misses of directory entries, runs and candidate hashes overlap instead of forming one serial chain per
        // run (which measured 4-5x slower at 1M-10M).
        var scratch = _threadScratch ??= new Scratch();

        // 1. Enumerate the prefixes within each table's radius; prefetch their directory entries.
        scratch.Runs = 0;
        for (var j = 0; j < m; j++)
        {
            if (radii[j] >= 0)
            {
                var t = _tables[j];
                Enumerate(scratch, (int*)(_base + _dirOffsets[j]), j, radii[j], t.PrefixBits, keys[j] >> t.LowBits, 0, 0);
            }
        }

        // 2. Resolve each run's extent; prefetch its first postings.
        var runs = scratch.Runs;
        var runKey = scratch.RunKey;
        var runStart = scratch.RunStart;
        var runEnd = scratch.RunEnd;
        for (var k = 0; k < runs; k++)
        {
            var j = (int)(runKey[k] >> 40);
            var dir = (int*)(_base + _dirOffsets[j]);
            var prefix = (uint)runKey[k];
            runStart[k] = dir[prefix];
            runEnd[k] = dir[prefix + 1];
            Prefetch((uint*)(_base + _postOffsets[j]) + runStart[k]);
        }

        // 3. Filter postings on their low key bits; collect candidates and prefetch their hashes.
        var hashes = (PdqHash*)(_base + _hashesOffset);
        scratch.Candidates = 0;
        for (var k = 0; k < runs; k++)
        {
            var j = (int)(runKey[k] >> 40);
            var budget = (int)(runKey[k] >> 32) & 0xFF;
            var t = _tables[j];
            FilterRun(scratch, hashes, (uint*)(_base + _postOffsets[j]), runStart[k], runEnd[k], j, budget, t.LowBits, keys[j] & t.LowMask, t.LowMask);
        }

        // 4. Verify with the full distance; report each hash once.
        var ids = (long*)(_base + _idsOffset);
        var cand = scratch.Cand;
        for (var c = 0; c < scratch.Candidates; c++)
        {
            var slot = (uint)cand[c];
            var d = q.DistanceTo(hashes[slot]);
            if (d <= radius)
            {
                Report(q, hashes[slot], ids[slot], d, (int)(cand[c] >> 32), keys, radii, variant, results);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(void* p)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(p);
        }
    }

    /// <summary>Appends every prefix within the table radius of the query's prefix (combinations of flipped bits).</summary>
    private static void Enumerate(Scratch s, int* dir, int table, int tableRadius, int prefixBits, uint prefix, int fromBit, int flips)
    {
        s.AddRun(((ulong)table << 40) | ((ulong)(uint)(tableRadius - flips) << 32) | prefix);
        Prefetch(dir + prefix);
        if (flips == tableRadius)
        {
            return;
        }

        for (var b = fromBit; b < prefixBits; b++)
        {
            Enumerate(s, dir, table, tableRadius, prefixBits, prefix ^ (1u << b), b + 1, flips + 1);
        }
    }

    private static void FilterRun(Scratch s, PdqHash* hashes, uint* post, int i, int end, int table, int budget, int lowBits, uint qLow, uint lowMask)
    {
        var tag = (ulong)table << 32;
        if (budget >= lowBits)
        {
            for (; i < end; i++)
            {
                var slot = post[i] >> 8;
                Prefetch(hashes + slot);
                s.AddCandidate(tag | slot);
            }

            return;
        }

        // Popcount of the low key bits against the query's, 8 postings at a time (runs are ~16 long).
        if (Vector256.IsHardwareAccelerated)
        {
            var qv = Vector256.Create(qLow);
            var mask = Vector256.Create(lowMask);
            var bv = Vector256.Create((uint)budget);
            var m55 = Vector256.Create(0x55u);
            var m33 = Vector256.Create(0x33u);
            var m0F = Vector256.Create(0x0Fu);
            for (; i + 8 <= end; i += 8)
            {
                var x = (Vector256.Load(post + i) ^ qv) & mask;
                x -= (x >> 1) & m55;
                x = (x & m33) + ((x >> 2) & m33);
                x = (x + (x >> 4)) & m0F;
                var hits = Vector256.LessThanOrEqual(x, bv).ExtractMostSignificantBits();
                while (hits != 0)
                {
                    var slot = post[i + BitOperations.TrailingZeroCount(hits)] >> 8;
                    hits &= hits - 1;
                    Prefetch(hashes + slot);
                    s.AddCandidate(tag | slot);
                }
            }
        }

        for (; i < end; i++)
        {
            if (BitOperations.PopCount((post[i] ^ qLow) & lowMask) <= budget)
            {
                var slot = post[i] >> 8;
                Prefetch(hashes + slot);
                s.AddCandidate(tag | slot);
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Report(in PdqHash q, in PdqHash h, long id, int d, int table, ReadOnlySpan<uint> keys, ReadOnlySpan<int> radii, int variant, List<PdqMatch> results)
    {
        // De-duplicate without a set: an earlier table whose substring is within its radius has already reported it.
        for (var k = 0; k < table; k++)
        {
            if (radii[k] >= 0 && BitOperations.PopCount(_tables[k].Key(h) ^ keys[k]) <= radii[k])
            {
                return;
            }
        }

        if (id != PdqIndex.Tombstone)
        {
            results.Add(new PdqMatch(id, d, variant));
        }
    }

    private static int ScanCrossover(MihTable[] tables, int count)
    {
        var scan = MihLayout.ScanCost(count);
        for (var r = 0; r <= PdqHash.Bits; r++)
        {
            if (MihLayout.MihCost(tables, count, r) > scan)
            {
                return r;
            }
        }

        return PdqHash.Bits + 1;
    }

    private Span<int> Dir(int j) => new(_base + _dirOffsets[j], (1 << _tables[j].PrefixBits) + 1);

    private Span<uint> Post(int j) => new(_base + _postOffsets[j], Count);

    private void Validate(int index)
    {
        for (var j = 0; j < _tables.Length; j++)
        {
            var dir = Dir(j);
            if (dir[0] != 0 || dir[^1] != Count)
            {
                throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} directory does not span its {Count} postings.");
            }

            for (var p = 1; p < dir.Length; p++)
            {
                if (dir[p] < dir[p - 1])
                {
                    throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} directory is not sorted.");
                }
            }

            var post = Post(j);
            var limit = (uint)Count << 8;
            for (var i = 0; i < post.Length; i++)
            {
                if (post[i] >= limit)
                {
                    throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} posting {i} points outside the segment.");
                }
            }
        }
    }

    private static long Align(long n) => (n + 63) & ~63L;

    private static long ComputeLayout(int count, MihTable[] tables, out long hashes, out long ids, Span<long> dirs, Span<long> posts)
    {
        var off = (long)HeaderBytes;
        hashes = off;
        off += Align(32L * count);
        ids = off;
        off += Align(8L * count);
        for (var j = 0; j < tables.Length; j++)
        {
            dirs[j] = off;
            off += Align(4L * ((1L << tables[j].PrefixBits) + 1));
            posts[j] = off;
            off += Align(4L * count);
        }

        return off;
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_owned && _base != null)
        {
            NativeMemory.AlignedFree(_base);
        }

        _base = null;
    }

    /// <summary>Per-thread work lists for one query (grown on demand, never shrunk).</summary>
    private sealed class Scratch
    {
        public ulong[] RunKey = new ulong[1024];
        public int[] RunStart = new int[1024];
        public int[] RunEnd = new int[1024];
        public ulong[] Cand = new ulong[1024];
        public int Runs;
        public int Candidates;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void AddRun(ulong key)
        {
            if (Runs == RunKey.Length)
            {
                Array.Resize(ref RunKey, Runs * 2);
                Array.Resize(ref RunStart, Runs * 2);
                Array.Resize(ref RunEnd, Runs * 2);
            }

            RunKey[Runs++] = key;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void AddCandidate(ulong c)
        {
            if (Candidates == Cand.Length)
            {
                Array.Resize(ref Cand, Candidates * 2);
            }

            Cand[Candidates++] = c;
        }
    }
}
