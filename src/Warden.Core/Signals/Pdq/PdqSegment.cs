using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Snapshots;

namespace Warden.Core.Matching;

/// <summary>
/// An immutable block of up to 2^25 hashes with their multi-index tables, in one contiguous blob of unmanaged
/// memory (or a memory-mapped snapshot). Only the ids are written after construction: removal overwrites an id
/// with <see cref="PdqIndex.Tombstone"/>.
/// </summary>
/// <remarks>
/// Blob layout (little-endian, every array 64-byte aligned; the snapshot stores blobs verbatim):
/// 256-byte header, hashes (32 B each), ids (8 B each), then per table a compact directory of run starts (byte
/// offsets from an int base per 64 entries, with an int overflow area) and count postings sorted by key and
/// then slot: 3-byte slots where the directory addresses the whole key, else uint slot &lt;&lt; 8 | low key bits.
/// Postings hold the slot's low 24 bits; in segments over 2^24 the directory is indexed by prefix and the slot's
/// 25th bit, so each run is two sub-runs. With a whole-key table 0 the hashes are stored sorted by its key and it
/// has no postings (see docs/formats.md).
/// </remarks>
internal sealed unsafe class PdqSegment : IDisposable
{
    public const uint Magic = 0x47455350; // "PSEG"
    public const int HeaderBytes = 256;

    private readonly MihTable[] _tables;
    private readonly long _hashesOffset;
    private readonly long _idsOffset;
    private readonly long[] _dirOffsets;
    private readonly long[] _ovfOffsets;
    private readonly long[] _postOffsets;
    private readonly bool _owned;
    private readonly int _scanFromRadius;
    private readonly int _slotHigh;
    private readonly int _overflowCap;
    private byte* _base;

    [ThreadStatic]
    private static Scratch? _threadScratch;

    private PdqSegment(byte* blob, long length, int count, MihTable[] tables, int overflowCap, bool owned)
    {
        _slotHigh = MihLayout.SlotHighBits(count);
        _overflowCap = overflowCap;
        _base = blob;
        BlobLength = length;
        Count = count;
        _tables = tables;
        _owned = owned;
        _dirOffsets = new long[tables.Length];
        _ovfOffsets = new long[tables.Length];
        _postOffsets = new long[tables.Length];
        ComputeLayout(count, tables, overflowCap, out _hashesOffset, out _idsOffset, new TableOffsets(_dirOffsets, _ovfOffsets, _postOffsets));
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

    /// <summary>
    /// Allocates a segment whose hashes and ids the caller fills before calling <see cref="BuildTables"/>;
    /// <paramref name="overflowCap"/> comes from <see cref="OverflowCapacity"/> over (a superset of) those hashes.
    /// </summary>
    public static PdqSegment Allocate(int count, MihTable[] tables, int overflowCap)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MihLayout.MaxSegment);
        ArgumentOutOfRangeException.ThrowIfNegative(overflowCap);
        var length = ComputeLayout(count, tables, overflowCap, out _, out _, TableOffsets.Scratch(tables.Length));
        var blob = (byte*)NativeMemory.AlignedAlloc((nuint)length, 64);
        new Span<byte>(blob, HeaderBytes).Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(blob, 4), Magic);
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(blob + 4, 4), count);
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(blob + 8, 4), tables.Length);
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(blob + 12, 4), overflowCap);
        BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(blob + 16, 8), length);
        for (var j = 0; j < tables.Length; j++)
        {
            blob[24 + (4 * j)] = (byte)tables[j].Start;
            blob[25 + (4 * j)] = (byte)tables[j].Width;
            blob[26 + (4 * j)] = (byte)tables[j].PrefixBits;
        }

        return new PdqSegment(blob, length, count, tables, overflowCap, owned: true);
    }

    /// <summary>
    /// Directory blocks needing the overflow area in any one table (each table reserves this many): blocks whose
    /// runs hold more than 255 postings, counted over <paramref name="a"/> and <paramref name="b"/> (a superset of
    /// the segment's hashes is fine: it only over-reserves). Zero for uniform data; heavy duplicates need some.
    /// </summary>
    public static int OverflowCapacity(MihTable[] tables, int count, ReadOnlySpan<PdqHash> a, ReadOnlySpan<PdqHash> b = default)
    {
        var slotHigh = MihLayout.SlotHighBits(count);
        var cap = 0;
        for (var j = 0; j < tables.Length; j++)
        {
            var t = tables[j];

            // A block's entries cover whole prefixes (blocks are even), so the count needs no slots.
            var s = DirShift(tables, j, slotHigh);
            var low = t.LowBits;
            var blocks = new int[((1 << (t.PrefixBits + s)) / BlockEntries) + 1];
            for (var i = 0; i < a.Length; i++)
            {
                blocks[((t.Key(a[i]) >> low) << s) / BlockEntries]++;
            }

            for (var i = 0; i < b.Length; i++)
            {
                blocks[((t.Key(b[i]) >> low) << s) / BlockEntries]++;
            }

            var over = 0;
            foreach (var n in blocks)
            {
                over += n > byte.MaxValue ? 1 : 0;
            }

            cap = Math.Max(cap, over);
        }

        // A block overflows only with 256+ of the segment's own postings, so at most count / 256 ever do.
        return Math.Min(cap, count >> 8);
    }

    /// <summary>Builds a segment from hashes and ids (copied).</summary>
    public static PdqSegment Build(ReadOnlySpan<PdqHash> hashes, ReadOnlySpan<long> ids, int tablesOverride = 0)
    {
        var tables = MihLayout.For(hashes.Length, tablesOverride);
        var seg = Allocate(hashes.Length, tables, OverflowCapacity(tables, hashes.Length, hashes));
        hashes.CopyTo(seg.Hashes);
        ids.CopyTo(seg.Ids);
        seg.BuildTables();
        return seg;
    }

    /// <summary>
    /// Opens a segment stored at <paramref name="blob"/> (a snapshot), validating everything a query relies on for
    /// memory safety: the header, the length, directory monotonicity and every posting's slot. The blob is
    /// searched in place (a copy-on-write mapping: later removals never touch the file).
    /// </summary>
    public static PdqSegment Open(byte* blob, long available, int index)
    {
        string Where() => $"segment {index}";
        if (available < HeaderBytes)
        {
            throw new InvalidDataException($"PDQ index snapshot is truncated: {Where()} header needs {HeaderBytes} bytes, {available} left.");
        }

        var header = new SnapshotReader(new ReadOnlySpan<byte>(blob, HeaderBytes), $"PDQ index snapshot {Where()}");
        if (header.ReadUInt32() != Magic)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} has a bad magic number.");
        }

        var count = header.ReadInt32();
        var tableCount = header.ReadInt32();
        var overflowCap = header.ReadInt32();
        var length = header.ReadInt64();
        if (count is < 0 or > MihLayout.MaxSegment || tableCount < 0 || tableCount > MihLayout.MaxTables || overflowCap < 0 || overflowCap > count >> 8)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} claims {count} hashes in {tableCount} tables ({overflowCap} overflow blocks).");
        }

        var tables = new MihTable[tableCount];
        var start = 0;
        for (var j = 0; j < tableCount; j++)
        {
            var t = new MihTable(header.ReadByte(), header.ReadByte(), header.ReadByte());
            header.Skip(1);

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

        var expected = ComputeLayout(count, tables, overflowCap, out _, out _, TableOffsets.Scratch(tableCount));
        if (length != expected)
        {
            throw new InvalidDataException($"PDQ index snapshot is corrupt: {Where()} is {length} bytes, its header implies {expected}.");
        }

        if (length > available)
        {
            throw new InvalidDataException($"PDQ index snapshot is truncated: {Where()} needs {length} bytes, {available} left.");
        }

        var seg = new PdqSegment(blob, length, count, tables, overflowCap, owned: false);
        try
        {
            seg.Validate(index);
        }
        catch
        {
            seg.Dispose();
            throw;
        }

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
        var s = DirShift(_tables, j, _slotHigh);
        var runs = 1 << (t.PrefixBits + s);

        // Counting sort on the directory entry (prefix, then the slot bits postings omit): starts[x] = first
        // posting of entry x (CSR), starts[runs] = N.
        var starts = new int[runs + 1];
        for (var i = 0; i < hashes.Length; i++)
        {
            starts[(int)(((t.Key(hashes[i]) >> low) << s) | ((uint)i >> MihLayout.PostingSlotBits)) + 1]++;
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
            var at = starts[(int)(((key >> low) << s) | ((uint)i >> MihLayout.PostingSlotBits))]++;
            if (low == 0)
            {
                // 3-byte posting: the slot alone (the whole key is the prefix).
                post[3 * (long)at] = (byte)i;
                post[(3 * (long)at) + 1] = (byte)(i >> 8);
                post[(3 * (long)at) + 2] = (byte)(i >> 16);
            }
            else
            {
                ((uint*)post)[at] = ((uint)(i & 0xFFFFFF) << 8) | (key & lowMask);
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
    /// Stores the run starts compactly, one 64-byte line per block of 60 entries: an int base, then per entry a
    /// byte offset from it, so a lookup costs one cache line. A block spanning more than 255 postings (dense keys,
    /// duplicates) keeps plain int starts in an overflow area, marked by a negative base (~overflow index), sized
    /// by <see cref="OverflowCapacity"/>.
    /// </summary>
    private void WriteDirectory(int j, int[] starts)
    {
        var dir = _base + _dirOffsets[j];
        var ovf = (int*)(_base + _ovfOffsets[j]);
        var overflowed = 0;

        // starts has one entry per directory entry plus the sentinel (the end of the last run); all are stored.
        for (var first = 0; first < starts.Length; first += BlockEntries)
        {
            var line = dir + ((long)(first / BlockEntries) * 64);
            var n = Math.Min(BlockEntries, starts.Length - first);
            var b = starts[first];
            if (starts[first + n - 1] - b <= byte.MaxValue)
            {
                *(int*)line = b;
                for (var x = 0; x < n; x++)
                {
                    line[4 + x] = (byte)(starts[first + x] - b);
                }
            }
            else
            {
                if (overflowed == _overflowCap)
                {
                    throw new InvalidOperationException("PDQ segment overflow area is too small (its capacity was counted over other hashes).");
                }

                *(int*)line = ~overflowed;
                for (var x = 0; x < n; x++)
                {
                    ovf[((long)overflowed * BlockEntries) + x] = starts[first + x];
                }

                overflowed++;
            }
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
        if (Scans(radius, path))
        {
            BruteForce.Scan(Hashes, Ids, q, radius, variant, results, skipTombstones: true);
            return;
        }

        var m = _tables.Length;
        Span<int> radii = stackalloc int[m];
        for (var j = 0; j < m; j++)
        {
            radii[j] = MihLayout.RadiusFor(j, m, radius);
        }

        SearchIndexed(q, radius, variant, radii, results);
    }

    /// <summary>
    /// Appends, for every query (the variants of one image), every live entry within <paramref name="radius"/>,
    /// tagged with the query's index: each (entry, query) pair once, the same pairs as one <see cref="Search"/>
    /// per query. A scanned segment is read once for all queries.
    /// </summary>
    public void SearchMany(ReadOnlySpan<PdqHash> queries, int radius, List<PdqMatch> results, PdqIndex.SearchPath path = PdqIndex.SearchPath.Auto)
    {
        if (Scans(radius, path))
        {
            BruteForce.ScanMany(Hashes, Ids, queries, radius, results, skipTombstones: true);
            return;
        }

        // Dihedral variants are as far apart as unrelated hashes, so their probes and candidates barely overlap
        // and there is nothing worth merging; each runs the pipeline on the same radii and scratch, one variant
        // at a time so its lines stay in L2 (pooling every variant's runs first is what collecting a whole 2^25
        // segment's candidates did, which cost 40 %; see docs/performance.md).
        var m = _tables.Length;
        Span<int> radii = stackalloc int[m];
        for (var j = 0; j < m; j++)
        {
            radii[j] = MihLayout.RadiusFor(j, m, radius);
        }

        for (var v = 0; v < queries.Length; v++)
        {
            SearchIndexed(queries[v], radius, v, radii, results);
        }
    }

    private bool Scans(int radius, PdqIndex.SearchPath path) =>
        _tables.Length == 0 || path == PdqIndex.SearchPath.Scan || (path == PdqIndex.SearchPath.Auto && radius >= _scanFromRadius);

    private void SearchIndexed(in PdqHash q, int radius, int variant, ReadOnlySpan<int> radii, List<PdqMatch> results)
    {
        var m = _tables.Length;
        Span<uint> keys = stackalloc uint[m];
        for (var j = 0; j < m; j++)
        {
            keys[j] = _tables[j].Key(q);
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
                Enumerate(scratch, _base + _dirOffsets[j], DirShift(_tables, j, _slotHigh), j, radii[j], t.PrefixBits, keys[j] >> t.LowBits, 0, 0);
            }
        }

        // 2. Resolve each run's extent; prefetch its first postings (for an implicit table 0, its first hash).
        var hashes = (PdqHash*)(_base + _hashesOffset);
        var implicit0 = ImplicitPostings(_tables);
        var runs = scratch.Runs;
        var runKey = scratch.RunKey;
        var runStart = scratch.RunStart;
        var runEnd = scratch.RunEnd;
        var runMid = scratch.RunMid;
        for (var k = 0; k < runs; k++)
        {
            var j = (int)(runKey[k] >> 40);
            var dir = _base + _dirOffsets[j];
            var ovf = (int*)(_base + _ovfOffsets[j]);
            var s = DirShift(_tables, j, _slotHigh);
            var entry = (uint)runKey[k] << s;
            runStart[k] = RunStart(dir, ovf, entry);
            runEnd[k] = RunStart(dir, ovf, entry + (1u << s));

            // Postings from runMid on have slot bit 24 set (only where the directory splits runs by it).
            runMid[k] = s == 0 ? runEnd[k] : RunStart(dir, ovf, entry + 1);
            Prefetch(j == 0 && implicit0 ? hashes + runStart[k] : _base + _postOffsets[j] + ((long)runStart[k] * PostingBytes(_tables[j])));
        }

        // 3. Filter postings on their low key bits; collect candidates and prefetch their hashes.
        // 4. Verify with the full distance, VerifyLag candidates behind: far enough for the prefetches to land,
        // near enough that the lines are still in L1/L2 (a whole segment's worth at 2^25 overflowed L2).
        var ids = (long*)(_base + _idsOffset);
        var verified = 0;
        scratch.Candidates = 0;
        for (var k = 0; k < runs; k++)
        {
            if (scratch.Candidates - verified >= 2 * VerifyLag)
            {
                verified = Verify(q, hashes, ids, scratch.Cand, verified, scratch.Candidates - VerifyLag, radius, keys, radii, variant, results);
            }

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
                    var slot = (Unsafe.ReadUnaligned<uint>(post + (3 * (long)i)) & 0xFFFFFF) | (i >= runMid[k] ? 1u << 24 : 0);
                    Prefetch(hashes + slot);
                    scratch.AddCandidate(tag | slot);
                }
            }
            else
            {
                var post = (uint*)(_base + _postOffsets[j]);
                FilterRun(scratch, hashes, post, runStart[k], runMid[k], 0, j, budget, t.LowBits, keys[j] & t.LowMask, t.LowMask);
                FilterRun(scratch, hashes, post, runMid[k], runEnd[k], 1u << 24, j, budget, t.LowBits, keys[j] & t.LowMask, t.LowMask);
            }
        }

        Verify(q, hashes, ids, scratch.Cand, verified, scratch.Candidates, radius, keys, radii, variant, results);
    }

    /// <summary>Checks candidates [from, to) with the full distance and reports each hash once; returns to.</summary>
    private int Verify(in PdqHash q, PdqHash* hashes, long* ids, ulong[] cand, int from, int to, int radius, ReadOnlySpan<uint> keys, ReadOnlySpan<int> radii, int variant, List<PdqMatch> results)
    {
        for (var c = from; c < to; c++)
        {
            var slot = (uint)cand[c];
            var d = q.DistanceTo(hashes[slot]);
            if (d <= radius)
            {
                Report(q, hashes[slot], ids[slot], d, (int)(cand[c] >> 32), keys, radii, variant, results);
            }
        }

        return to;
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
    private static int RunStart(byte* dir, int* ovf, uint x)
    {
        var block = x / BlockEntries;
        var line = dir + ((long)block * 64);
        var b = *(int*)line;
        var i = x - (block * BlockEntries);
        return b >= 0 ? b + line[4 + i] : ovf[((long)~b * BlockEntries) + i];
    }

    /// <summary>Byte address of the directory line holding entry <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* DirLine(byte* dir, uint x) => dir + ((long)(x / BlockEntries) * 64);

    /// <summary>Directory lines needed for <paramref name="dirBits"/> entries plus the sentinel.</summary>
    private static long DirLines(int dirBits) => ((1L << dirBits) / BlockEntries) + 1;

    /// <summary>
    /// Slot bits table <paramref name="j"/>'s directory adds below the prefix: those postings omit (0 or 1); none
    /// for an implicit table 0, whose runs are slot ranges.
    /// </summary>
    private static int DirShift(MihTable[] tables, int j, int slotHigh) => j == 0 && ImplicitPostings(tables) ? 0 : slotHigh;

    /// <summary>Entries per directory line: a 4-byte base and 60 byte offsets (even, so no prefix straddles two).</summary>
    private const int BlockEntries = 60;

    /// <summary>How many candidates verification trails collection by (prefetch distance, in hashes).</summary>
    private const int VerifyLag = 512;

    /// <summary>3-byte postings (slot only) where the directory addresses the whole key, else slot and low bits.</summary>
    private static int PostingBytes(in MihTable t) => t.LowBits == 0 ? 3 : 4;

    /// <summary>Appends every prefix within the table radius of the query's prefix (combinations of flipped bits).</summary>
    private static void Enumerate(Scratch s, byte* dir, int shift, int table, int tableRadius, int prefixBits, uint prefix, int fromBit, int flips)
    {
        s.AddRun(((ulong)table << 40) | ((ulong)(uint)(tableRadius - flips) << 32) | prefix);
        Prefetch(DirLine(dir, prefix << shift));
        if (flips == tableRadius)
        {
            return;
        }

        for (var b = fromBit; b < prefixBits; b++)
        {
            Enumerate(s, dir, shift, table, tableRadius, prefixBits, prefix ^ (1u << b), b + 1, flips + 1);
        }
    }

    private static void FilterRun(Scratch s, PdqHash* hashes, uint* post, int i, int end, uint slotHigh, int table, int budget, int lowBits, uint qLow, uint lowMask)
    {
        var tag = ((ulong)table << 32) | slotHigh;
        if (budget >= lowBits)
        {
            for (; i < end; i++)
            {
                var slot = post[i] >> 8;
                Prefetch(hashes + (slot | slotHigh));
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
                    Prefetch(hashes + (slot | slotHigh));
                    s.AddCandidate(tag | slot);
                }
            }
        }

        for (; i < end; i++)
        {
            if (BitOperations.PopCount((post[i] ^ qLow) & lowMask) <= budget)
            {
                var slot = post[i] >> 8;
                Prefetch(hashes + (slot | slotHigh));
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
            var dir = _base + _dirOffsets[j];
            var ovf = (int*)(_base + _ovfOffsets[j]);
            var shift = DirShift(_tables, j, _slotHigh);
            var entries = (1L << (t.PrefixBits + shift)) + 1;
            var previous = 0;

            // Line by line (a lookup per entry costs several times more at load): every start, sentinel included.
            for (long first = 0; first < entries; first += BlockEntries)
            {
                var line = dir + (first / BlockEntries * 64);
                var b = *(int*)line;
                if (b < 0 && ~b >= _overflowCap)
                {
                    throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} directory block {first / BlockEntries} points outside its overflow area.");
                }

                var n = (int)Math.Min(BlockEntries, entries - first);
                for (var x = 0; x < n; x++)
                {
                    var start = b >= 0 ? b + line[4 + x] : ovf[((long)~b * BlockEntries) + x];
                    if ((first + x == 0 && start != 0) || start < previous || (first + x == entries - 1 && start != Count))
                    {
                        throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} directory is not a sorted span of its {Count} postings.");
                    }

                    previous = start;
                }
            }

            if (j == 0 && ImplicitPostings(_tables))
            {
                continue;
            }

            // Each posting's slot is its stored 24 bits plus the bit its directory entry implies: in a split
            // directory (shift 1) that is the entry's low bit; else there is none and the postings are one range.
            var post = _base + _postOffsets[j];
            if (shift == 0)
            {
                ValidateSlots(index, j, post, t.LowBits, 0, Count, 0);
                continue;
            }

            var from = 0;
            for (var x = 0u; x < (uint)(entries - 1); x++)
            {
                var end = RunStart(dir, ovf, x + 1);
                ValidateSlots(index, j, post, t.LowBits, from, end, (x & 1) << MihLayout.PostingSlotBits);
                from = end;
            }
        }
    }

    private void ValidateSlots(int index, int j, byte* post, int lowBits, int from, int end, uint high)
    {
        for (var i = from; i < end; i++)
        {
            var slot = high | (lowBits == 0 ? Unsafe.ReadUnaligned<uint>(post + (3 * (long)i)) & 0xFFFFFF : ((uint*)post)[i] >> 8);
            if (slot >= (uint)Count)
            {
                throw new InvalidDataException($"PDQ index snapshot is corrupt: segment {index} table {j} posting {i} points outside the segment.");
            }
        }
    }

    private static long Align(long n) => (n + 63) & ~63L;

    private static long ComputeLayout(int count, MihTable[] tables, int overflowCap, out long hashes, out long ids, TableOffsets to)
    {
        var slotHigh = MihLayout.SlotHighBits(count);
        var off = (long)HeaderBytes;
        hashes = off;
        off += Align(32L * count);
        ids = off;
        off += Align(8L * count);
        for (var j = 0; j < tables.Length; j++)
        {
            var t = tables[j];
            var dirBits = t.PrefixBits + DirShift(tables, j, slotHigh);
            to.Dir[j] = off;
            off += 64 * DirLines(dirBits);
            to.Overflow[j] = off;
            off += Align(4L * overflowCap * BlockEntries);
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
        public int[] RunMid = new int[1024];
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
                Array.Resize(ref RunMid, Runs * 2);
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

    /// <summary>Per-table offsets of the directory, overflow area and postings.</summary>
    private readonly record struct TableOffsets(long[] Dir, long[] Overflow, long[] Post)
    {
        public static TableOffsets Scratch(int tables) => new(new long[tables], new long[tables], new long[tables]);
    }
}
