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
/// 256-byte header, hashes (32 B each), ids (8 B each), then per table a compact directory of run starts (ushort
/// offsets from an int base per 1,024 prefixes, with an int overflow area) and count postings sorted by key and
/// then slot: 3-byte slots where the directory addresses the whole key, else uint slot &lt;&lt; 8 | low key bits.
/// With a whole-key table 0 the hashes are stored sorted by its key and it has no postings (see docs/formats.md).
/// </remarks>
internal sealed unsafe class PdqSegment : IDisposable
{
    public const uint Magic = 0x47455350; // "PSEG"
    public const int HeaderBytes = 256;

    private readonly MihTable[] _tables;
    private readonly long _hashesOffset;
    private readonly long _idsOffset;
    private readonly long[] _dirOffsets;
    private readonly long[] _baseOffsets;
    private readonly long[] _ovfOffsets;
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
        _baseOffsets = new long[tables.Length];
        _ovfOffsets = new long[tables.Length];
        _postOffsets = new long[tables.Length];
        ComputeLayout(count, tables, out _hashesOffset, out _idsOffset, new TableOffsets(_dirOffsets, _baseOffsets, _ovfOffsets, _postOffsets));
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
        var length = ComputeLayout(count, tables, out _, out _, TableOffsets.Scratch(tables.Length));
        var blob = LargePages.Alloc(length);
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

            // Disjoint substrings, in order from bit 0: overlap would break the pigeonhole argument (and recall).
            if (t.Start != start || t.Width is < 1 or > 32 || t.PrefixBits > t.Width || t.LowBits > 8 || t.PrefixBits > 28)
            {
                throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} table {j} is invalid ({t}).");
            }

            tables[j] = t;
            start += t.Width;
        }

        if (start > PdqHash.Bits)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} tables cover {start} bits, more than 256.");
        }

        var expected = ComputeLayout(count, tables, out _, out _, TableOffsets.Scratch(tableCount));
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

        if (ImplicitPostings(_tables))
        {
            SortByFirstKey();
        }

        // Tables are independent; the bench pins to one core, where this is a plain loop.
        Parallel.For(0, _tables.Length, BuildTable);
    }

    private void BuildTable(int j)
    {
        var t = _tables[j];
        var hashes = Hashes;
        var low = t.LowBits;
        var lowMask = t.LowMask;
        var runs = 1 << t.PrefixBits;

        // Counting sort on the prefix: starts[x] = first posting of prefix x (CSR), starts[runs] = N.
        var starts = new int[runs + 1];
        for (var i = 0; i < hashes.Length; i++)
        {
            starts[(int)(t.Key(hashes[i]) >> low) + 1]++;
        }

        for (var x = 1; x <= runs; x++)
        {
            starts[x] += starts[x - 1];
        }

        WriteDirectory(j, starts);
        if (j == 0 && ImplicitPostings(_tables))
        {
            return;
        }

        // Scatter with the starts as cursors: slots ascend within each run.
        var post = _base + _postOffsets[j];
        for (var i = 0; i < hashes.Length; i++)
        {
            var key = t.Key(hashes[i]);
            var at = starts[(int)(key >> low)]++;
            if (low == 0)
            {
                // 3-byte posting: the slot alone (the whole key is the prefix).
                post[3 * (long)at] = (byte)i;
                post[(3 * (long)at) + 1] = (byte)(i >> 8);
                post[(3 * (long)at) + 2] = (byte)(i >> 16);
            }
            else
            {
                ((uint*)post)[at] = ((uint)i << 8) | (key & lowMask);
            }
        }
    }

    /// <summary>
    /// Reorders hashes and ids by the first table's key (a counting sort applied in place along its cycles), so
    /// that table's runs are ranges of slots: it needs no postings and its candidates are contiguous.
    /// </summary>
    private void SortByFirstKey()
    {
        var t = _tables[0];
        var hashes = Hashes;
        var ids = Ids;
        var starts = new int[(1 << t.PrefixBits) + 1];
        for (var i = 0; i < hashes.Length; i++)
        {
            starts[(int)t.Key(hashes[i]) + 1]++;
        }

        for (var x = 1; x < starts.Length; x++)
        {
            starts[x] += starts[x - 1];
        }

        // Stable destinations, then follow each permutation cycle once (dest[i] = -1 marks a placed slot).
        var dest = GC.AllocateUninitializedArray<int>(hashes.Length);
        for (var i = 0; i < hashes.Length; i++)
        {
            dest[i] = starts[(int)t.Key(hashes[i])]++;
        }

        for (var i = 0; i < hashes.Length; i++)
        {
            if (dest[i] < 0 || dest[i] == i)
            {
                continue;
            }

            var h = hashes[i];
            var id = ids[i];
            var at = dest[i];
            dest[i] = -1;
            while (at != i)
            {
                (hashes[at], h) = (h, hashes[at]);
                (ids[at], id) = (id, ids[at]);
                var next = dest[at];
                dest[at] = -1;
                at = next;
            }

            hashes[i] = h;
            ids[i] = id;
        }
    }

    /// <summary>
    /// Whether table 0 keeps no postings: when its directory addresses its whole key, hashes are stored sorted by
    /// that key (<see cref="SortByFirstKey"/>) and a run of table 0 is directly a range of slots.
    /// </summary>
    private static bool ImplicitPostings(MihTable[] tables) => tables.Length > 0 && tables[0].LowBits == 0;

    /// <summary>
    /// Stores the run starts compactly: per block of 2^B prefixes an int base, per prefix a ushort offset from it.
    /// A block spanning more than 65,535 postings (heavy duplicates) keeps plain int starts in an overflow area,
    /// marked by a negative base (~overflow index); at most N / 65,536 blocks can overflow.
    /// </summary>
    private void WriteDirectory(int j, int[] starts)
    {
        var t = _tables[j];
        var blockBits = BlockBits(t);
        var blockSize = 1 << blockBits;
        var runs = 1 << t.PrefixBits;
        var dir = (ushort*)(_base + _dirOffsets[j]);
        var bases = (int*)(_base + _baseOffsets[j]);
        var ovf = (int*)(_base + _ovfOffsets[j]);
        var overflowed = 0;
        for (var block = 0; block < runs >> blockBits; block++)
        {
            var first = block << blockBits;
            var b = starts[first];
            if (starts[first + blockSize] - b <= ushort.MaxValue)
            {
                bases[block] = b;
                for (var x = first; x < first + blockSize; x++)
                {
                    dir[x] = (ushort)(starts[x] - b);
                }
            }
            else
            {
                bases[block] = ~overflowed;
                for (var x = 0; x < blockSize; x++)
                {
                    ovf[((long)overflowed << blockBits) + x] = starts[first + x];
                    dir[first + x] = 0;
                }

                overflowed++;
            }
        }

        // Sentinel for prefix 2^p (the end of the last run).
        bases[runs >> blockBits] = Count;
        dir[runs] = 0;
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
                Enumerate(scratch, (ushort*)(_base + _dirOffsets[j]), j, radii[j], t.PrefixBits, keys[j] >> t.LowBits, 0, 0);
            }
        }

        // 2. Resolve each run's extent; prefetch its first postings (for an implicit table 0, its first hash).
        var hashes = (PdqHash*)(_base + _hashesOffset);
        var implicit0 = ImplicitPostings(_tables);
        var runs = scratch.Runs;
        var runKey = scratch.RunKey;
        var runStart = scratch.RunStart;
        var runEnd = scratch.RunEnd;
        for (var k = 0; k < runs; k++)
        {
            var j = (int)(runKey[k] >> 40);
            var dir = (ushort*)(_base + _dirOffsets[j]);
            var bases = (int*)(_base + _baseOffsets[j]);
            var ovf = (int*)(_base + _ovfOffsets[j]);
            var blockBits = BlockBits(_tables[j]);
            var prefix = (uint)runKey[k];
            runStart[k] = RunStart(dir, bases, ovf, blockBits, prefix);
            runEnd[k] = RunStart(dir, bases, ovf, blockBits, prefix + 1);
            Prefetch(j == 0 && implicit0 ? hashes + runStart[k] : _base + _postOffsets[j] + ((long)runStart[k] * PostingBytes(_tables[j])));
        }

        // 3. Filter postings on their low key bits; collect candidates and prefetch their hashes.
        scratch.Candidates = 0;
        for (var k = 0; k < runs; k++)
        {
            var j = (int)(runKey[k] >> 40);
            var budget = (int)(runKey[k] >> 32) & 0xFF;
            var t = _tables[j];
            if (j == 0 && implicit0)
            {
                for (var slot = (uint)runStart[k]; slot < (uint)runEnd[k]; slot++)
                {
                    Prefetch(hashes + slot);
                    scratch.AddCandidate(slot);
                }
            }
            else if (t.LowBits == 0)
            {
                // Exact-key runs: every posting is a candidate.
                var post = _base + _postOffsets[j];
                var tag = (ulong)j << 32;
                for (var i = runStart[k]; i < runEnd[k]; i++)
                {
                    var slot = Unsafe.ReadUnaligned<uint>(post + (3 * (long)i)) & 0xFFFFFF;
                    Prefetch(hashes + slot);
                    scratch.AddCandidate(tag | slot);
                }
            }
            else
            {
                FilterRun(scratch, hashes, (uint*)(_base + _postOffsets[j]), runStart[k], runEnd[k], j, budget, t.LowBits, keys[j] & t.LowMask, t.LowMask);
            }
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RunStart(ushort* dir, int* bases, int* ovf, int blockBits, uint x)
    {
        var b = bases[x >> blockBits];
        return b >= 0 ? b + dir[x] : ovf[((long)~b << blockBits) + (x & ((1u << blockBits) - 1))];
    }

    /// <summary>Prefixes per directory block (each block has one int base).</summary>
    private static int BlockBits(in MihTable t) => Math.Min(t.PrefixBits, 10);

    /// <summary>3-byte postings (slot only) where the directory addresses the whole key, else slot and low bits.</summary>
    private static int PostingBytes(in MihTable t) => t.LowBits == 0 ? 3 : 4;

    /// <summary>Appends every prefix within the table radius of the query's prefix (combinations of flipped bits).</summary>
    private static void Enumerate(Scratch s, ushort* dir, int table, int tableRadius, int prefixBits, uint prefix, int fromBit, int flips)
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

    private void Validate(int index)
    {
        for (var j = 0; j < _tables.Length; j++)
        {
            var t = _tables[j];
            var dir = (ushort*)(_base + _dirOffsets[j]);
            var bases = (int*)(_base + _baseOffsets[j]);
            var ovf = (int*)(_base + _ovfOffsets[j]);
            var blockBits = BlockBits(t);
            var runs = 1 << t.PrefixBits;
            var overflowCap = OverflowBlocks(Count);
            var previous = 0;
            for (var x = 0; x <= runs; x++)
            {
                var b = bases[x >> blockBits];
                if (b < 0 && ~b >= overflowCap)
                {
                    throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} directory block {x >> blockBits} points outside its overflow area.");
                }

                var start = RunStart(dir, bases, ovf, blockBits, (uint)x);
                if ((x == 0 && start != 0) || start < previous || (x == runs && start != Count))
                {
                    throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} directory is not a sorted span of its {Count} postings.");
                }

                previous = start;
            }

            if (j == 0 && ImplicitPostings(_tables))
            {
                continue;
            }

            var post = _base + _postOffsets[j];
            for (var i = 0; i < Count; i++)
            {
                var slot = t.LowBits == 0 ? Unsafe.ReadUnaligned<uint>(post + (3 * (long)i)) & 0xFFFFFF : ((uint*)post)[i] >> 8;
                if (slot >= (uint)Count)
                {
                    throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} posting {i} points outside the segment.");
                }
            }
        }
    }

    private static long Align(long n) => (n + 63) & ~63L;

    private static int OverflowBlocks(int count) => count >> 16;

    private static long ComputeLayout(int count, MihTable[] tables, out long hashes, out long ids, TableOffsets to)
    {
        var off = (long)HeaderBytes;
        hashes = off;
        off += Align(32L * count);
        ids = off;
        off += Align(8L * count);
        for (var j = 0; j < tables.Length; j++)
        {
            var t = tables[j];
            var blockBits = BlockBits(t);
            to.Dir[j] = off;
            off += Align(2L * ((1L << t.PrefixBits) + 1));
            to.Base[j] = off;
            off += Align(4L * ((1L << (t.PrefixBits - blockBits)) + 1));
            to.Overflow[j] = off;
            off += Align(4L * OverflowBlocks(count) << blockBits);
            to.Post[j] = off;

            // +1: a 3-byte posting is read as 4 unaligned bytes.
            off += j == 0 && ImplicitPostings(tables) ? 0 : Align((PostingBytes(t) * (long)count) + 1);
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

    /// <summary>Per-table offsets of the directory, block bases, overflow area and postings.</summary>
    private readonly record struct TableOffsets(long[] Dir, long[] Base, long[] Overflow, long[] Post)
    {
        public static TableOffsets Scratch(int tables) => new(new long[tables], new long[tables], new long[tables], new long[tables]);
    }
}
