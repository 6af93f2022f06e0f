using System.Runtime.InteropServices;
using Warden.Core.Snapshots;

namespace Warden.Core.ModelFiles;

/// <summary>
/// An index over registered models for the near tiers, so a query looks at a few candidates instead of every
/// record (MFv1 at bank scale: 100,000 models). Two posting lists, both sorted arrays searched by bisection:
/// <list type="bullet">
/// <item>Sketch LSH (R/T4): for up to <see cref="ProbeTensors"/> tensors of each record (the ones whose key hashes
/// lowest, so every record of an architecture probes the same keys), a random-hyperplane signature of the sketch
/// in <see cref="Bands"/> bands of <see cref="BandBits"/> bits. A record is a candidate when at least
/// <see cref="MinCollisions"/> of the query's (key, band) buckets hold it: a pair at cosine c collides per band
/// with probability (1 − acos(c)/π)^12 — 0.84 at 0.999, 0.16 at 0.9 (a Q2_K copy) — and an unrelated one
/// (c ≈ 0) with 2⁻¹², so 64 probes make a true hit's miss and a stranger's candidacy both rare.</item>
/// <item>Row inverted index (T3): one in <see cref="RowShare"/> of each component's sampled row hashes (chosen by
/// hash, so the query samples the same ones; every row of components with ≤ 64), row → records. A component the
/// query contains at ≥ 50 % shares some indexed row unless its sampled rows all fall outside the share.</item>
/// </list>
/// Candidates are then checked by <see cref="NearMatcher"/> exactly as a full scan would, so the index changes how
/// many records are looked at, never the scores. Sketches stay with their records (loaded per candidate);
/// the index itself holds 12 bytes per posting.
/// </summary>
public sealed class NearIndex
{
    /// <summary>Tensors per record that are sketch-indexed.</summary>
    public const int ProbeTensors = 16;

    /// <summary>LSH bands per tensor.</summary>
    public const int Bands = 4;

    /// <summary>Hyperplane bits per band.</summary>
    public const int BandBits = 12;

    /// <summary>Bucket collisions that make a record a sketch candidate.</summary>
    public const int MinCollisions = 3;

    /// <summary>One in this many sampled row hashes is indexed (all of a component with ≤ 64).</summary>
    public const int RowShare = 8;

    // Coordinates each hyperplane reads: sparse ±1 projections (the sign of a sum of 32 signed coordinates).
    private const int PlaneTerms = 32;

    private readonly Func<int, ModelRecord> _load;
    private readonly ulong[] _sketchKeys;
    private readonly int[] _sketchRecords;
    private readonly ulong[] _rowKeys;
    private readonly int[] _rowRecords;
    private readonly byte[] _probes;

    private NearIndex(int count, Func<int, ModelRecord> load, ulong[] sk, int[] sr, ulong[] rk, int[] rr, byte[] probes)
    {
        Count = count;
        _load = load;
        _sketchKeys = sk;
        _sketchRecords = sr;
        _rowKeys = rk;
        _rowRecords = rr;
        _probes = probes;
    }

    /// <summary>Records indexed.</summary>
    public int Count { get; }

    /// <summary>Postings held (sketch buckets + rows).</summary>
    public long Postings => _sketchKeys.LongLength + _rowKeys.LongLength;

    /// <summary>Bytes the posting arrays take.</summary>
    public long Bytes => (Postings * 12) + _probes.Length;

    /// <summary>An index over records held in memory.</summary>
    public static NearIndex Build(IReadOnlyList<ModelRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        return Build(records.Count, i => records[i]);
    }

    /// <summary>
    /// An index over <paramref name="count"/> records that <paramref name="load"/> yields by number (from disk, or
    /// regenerated): each record is read once to build, and again only when it is a candidate.
    /// </summary>
    /// <param name="count">Records.</param>
    /// <param name="load">Record by number, as matched (all its tensors).</param>
    /// <param name="probes">Record by number holding at least its <see cref="ProbeKeys"/> tensors and its rows (a cheaper read
    /// for building); <paramref name="load"/> when null.</param>
    public static NearIndex Build(int count, Func<int, ModelRecord> load, Func<int, ModelRecord>? probes = null)
    {
        ArgumentNullException.ThrowIfNull(load);
        var read = probes ?? load;
        var sk = new List<ulong>();
        var sr = new List<int>();
        var rk = new List<ulong>();
        var rr = new List<int>();
        var probeCounts = new byte[count];
        Span<ulong> bands = stackalloc ulong[Bands];
        for (var i = 0; i < count; i++)
        {
            var r = read(i);
            var tensors = r.IsAdapter ? r.Modules : r.Tensors;
            var chosen = tensors.Where(t => t.Sketch.Length > 0).Select(t => (Hash: KeyHash(t.Key), t.Sketch))
                .OrderBy(t => t.Hash).Take(ProbeTensors).ToList();
            probeCounts[i] = (byte)chosen.Count;
            foreach (var (hash, sketch) in chosen)
            {
                Signature(sketch, bands);
                for (var b = 0; b < Bands; b++)
                {
                    sk.Add(Bucket(hash, b, bands[b]));
                    sr.Add(i);
                }
            }

            foreach (var rows in r.Rows.Values)
            {
                if (rows.Length < 4)
                {
                    continue; // NearMatcher.Contained ignores components this small.
                }

                foreach (var h in rows)
                {
                    if (rows.Length <= 64 || IsIndexedRow(h))
                    {
                        rk.Add(h);
                        rr.Add(i);
                    }
                }
            }
        }

        var (skA, srA) = Sorted(sk, sr);
        var (rkA, rrA) = Sorted(rk, rr);
        return new NearIndex(count, load, skA, srA, rkA, rrA, probeCounts);
    }

    /// <summary>
    /// The parameters a stored index was built with (a change to any of them makes a stored index unusable):
    /// probe tensors, bands, band bits, row share, plane terms, and a version of the bucket and signature maths.
    /// </summary>
    private static ReadOnlySpan<int> Layout => [ProbeTensors, Bands, BandBits, RowShare, PlaneTerms, 1];

    /// <summary>Writes the posting arrays (little-endian), to be read back by <see cref="ReadFrom(ref ReadOnlySpan{byte}, Func{int, ModelRecord})"/>.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> head = stackalloc byte[4 * 7];
        for (var i = 0; i < Layout.Length; i++)
        {
            BitConverter.TryWriteBytes(head[(4 * i)..], Layout[i]);
        }

        BitConverter.TryWriteBytes(head[24..], Count);
        stream.Write(head);
        WriteArray(stream, _sketchKeys);
        WriteArray(stream, _sketchRecords);
        WriteArray(stream, _rowKeys);
        WriteArray(stream, _rowRecords);
        stream.Write(_probes);
    }

    /// <summary>
    /// Reads an index written by <see cref="WriteTo"/> from <paramref name="data"/> (advanced past it). Fails
    /// closed: another layout, lengths past the data, record numbers out of range or unsorted keys throw
    /// <see cref="InvalidDataException"/>, so a damaged copy is never searched.
    /// </summary>
    public static NearIndex ReadFrom(ref ReadOnlySpan<byte> data, Func<int, ModelRecord> load)
    {
        var reader = new SnapshotReader(data, "near index");
        var index = ReadFrom(ref reader, load);
        data = reader.Rest;
        return index;
    }

    /// <summary>As <see cref="ReadFrom(ref ReadOnlySpan{byte}, Func{int, ModelRecord})"/>, from within a larger snapshot.</summary>
    public static NearIndex ReadFrom(ref SnapshotReader reader, Func<int, ModelRecord> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        for (var i = 0; i < Layout.Length; i++)
        {
            if (reader.ReadInt32() != Layout[i])
            {
                throw new InvalidDataException("near index built with other parameters");
            }
        }

        var count = reader.ReadInt32();
        if (count < 0)
        {
            throw new InvalidDataException("near index record count out of range");
        }

        var sk = reader.ReadArray<ulong>(reader.ReadInt64()).ToArray();
        var sr = reader.ReadArray<int>(reader.ReadInt64()).ToArray();
        var rk = reader.ReadArray<ulong>(reader.ReadInt64()).ToArray();
        var rr = reader.ReadArray<int>(reader.ReadInt64()).ToArray();
        if (sk.Length != sr.Length || rk.Length != rr.Length)
        {
            throw new InvalidDataException("near index arrays mismatched");
        }

        var probes = reader.ReadBytes(count).ToArray();
        Check(sk, sr, count);
        Check(rk, rr, count);
        return new NearIndex(count, load, sk, sr, rk, rr, probes);

        static void Check(ulong[] keys, int[] records, int count)
        {
            for (var i = 0; i < keys.Length; i++)
            {
                if ((uint)records[i] >= (uint)count || (i > 0 && keys[i] < keys[i - 1]))
                {
                    throw new InvalidDataException("near index postings out of order or out of range");
                }
            }
        }
    }

    private static void WriteArray<T>(Stream stream, T[] array)
        where T : unmanaged
    {
        Span<byte> n = stackalloc byte[8];
        BitConverter.TryWriteBytes(n, array.LongLength);
        stream.Write(n);
        stream.Write(MemoryMarshal.AsBytes(array.AsSpan()));
    }

    /// <summary>Numbers of the records that may be R/T4 hits of <paramref name="fp"/>.</summary>
    public List<int> SketchCandidates(ModelFingerprint fp)
    {
        ArgumentNullException.ThrowIfNull(fp);
        var hits = new Dictionary<int, int>();
        Span<ulong> bands = stackalloc ulong[Bands];
        foreach (var (key, sketch) in NearMatcher.Vectors(fp))
        {
            if (sketch.Length == 0)
            {
                continue;
            }

            var hash = KeyHash(key);
            Signature(sketch, bands);
            for (var b = 0; b < Bands; b++)
            {
                var (from, to) = Range(_sketchKeys, Bucket(hash, b, bands[b]));
                for (var p = from; p < to; p++)
                {
                    CollectionsMarshal.GetValueRefOrAddDefault(hits, _sketchRecords[p], out _)++;
                }
            }
        }

        return [.. hits.Where(h => h.Value >= Math.Min(MinCollisions, Math.Max(1, _probes[h.Key] * Bands / 2))).Select(h => h.Key).Order()];
    }

    /// <summary>
    /// Numbers of the adapter records that may be baked into <paramref name="fp"/> on top of one of
    /// <paramref name="bases"/> (T5 LoRA bake-in): per base, the residual fp − base of each tensor a LoRA can
    /// target is signed like an adapter's ΔW and probed under the adapter's module key, so a bake-in at any
    /// strength (the residual is s·ΔW, cosine ≈ 1) collides in nearly every band and unrelated adapters do not.
    /// </summary>
    public List<int> AdapterCandidates(ModelFingerprint fp, IEnumerable<ModelRecord> bases)
    {
        ArgumentNullException.ThrowIfNull(fp);
        ArgumentNullException.ThrowIfNull(bases);
        var hits = new Dictionary<int, int>();
        Span<ulong> bands = stackalloc ulong[Bands];
        var targets = fp.Lora.Count > 0 ? [] : fp.Tensors.Where(t => t.Canonical.LoraKey is not null && t.Sketch.Length > 0 && t.Canonical.Component != "ema").ToList();
        var residual = Array.Empty<float>();
        foreach (var b in bases.Where(b => !b.IsAdapter))
        {
            var map = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var t in b.Tensors)
            {
                map.TryAdd(t.Key, t.Sketch);
            }

            var perBase = new Dictionary<int, int>();
            foreach (var t in targets)
            {
                if (!map.TryGetValue(t.Canonical.Key, out var s) || s.Length != t.Sketch.Length)
                {
                    continue;
                }

                if (residual.Length < s.Length)
                {
                    residual = new float[s.Length];
                }

                var r = residual.AsSpan(0, s.Length);
                for (var i = 0; i < r.Length; i++)
                {
                    r[i] = t.Sketch[i] - s[i];
                }

                var hash = KeyHash(t.Canonical.LoraKey!);
                Signature(r, bands);
                for (var band = 0; band < Bands; band++)
                {
                    var (from, to) = Range(_sketchKeys, Bucket(hash, band, bands[band]));
                    for (var p = from; p < to; p++)
                    {
                        CollectionsMarshal.GetValueRefOrAddDefault(perBase, _sketchRecords[p], out _)++;
                    }
                }
            }

            // Counted per base: collisions against two bases must not add up to a candidate neither supports.
            foreach (var (record, n) in perBase)
            {
                ref var best = ref CollectionsMarshal.GetValueRefOrAddDefault(hits, record, out _);
                best = Math.Max(best, n);
            }
        }

        return [.. hits.Where(h => h.Value >= Math.Min(MinCollisions, Math.Max(1, _probes[h.Key] * Bands / 2))).Select(h => h.Key).Order()];
    }

    /// <summary>Numbers of the records that may be T3 hits of <paramref name="fp"/>.</summary>
    public List<int> RowCandidates(ModelFingerprint fp)
    {
        ArgumentNullException.ThrowIfNull(fp);
        var found = new HashSet<int>();
        foreach (var t in fp.Tensors)
        {
            if (t.Rows is null)
            {
                continue;
            }

            foreach (var h in t.Rows)
            {
                var (from, to) = Range(_rowKeys, h);
                for (var p = from; p < to; p++)
                {
                    found.Add(_rowRecords[p]);
                }
            }
        }

        return [.. found.Order()];
    }

    /// <summary>R and T4 hits, as <see cref="NearMatcher.Similar"/> over every record would give them.</summary>
    public List<NearHit> Similar(ModelFingerprint fp) =>
        NearMatcher.Similar(fp, [.. SketchCandidates(fp).Select(_load)]);

    /// <summary>T3 hits, as <see cref="NearMatcher.Contained"/> over every record would give them.</summary>
    public List<NearHit> Contained(ModelFingerprint fp, Func<ModelRecord, string, bool>? skip = null) =>
        NearMatcher.Contained(fp, [.. RowCandidates(fp).Select(_load)], skip);

    /// <summary>The keys of <paramref name="keys"/> the index probes: the <see cref="ProbeTensors"/> whose key hashes are lowest.</summary>
    public static IEnumerable<string> ProbeKeys(IEnumerable<string> keys) => keys.OrderBy(KeyHash).Take(ProbeTensors);

    /// <summary>True for the row hashes the index keeps (one in <see cref="RowShare"/>, by a remix of the hash).</summary>
    public static bool IsIndexedRow(ulong h) => Mix(h ^ 0x5bd1e9955bd1e995UL) % RowShare == 0;

    /// <summary>
    /// <see cref="Bands"/> × <see cref="BandBits"/> sign bits of sparse ±1 projections of <paramref name="sketch"/>.
    /// The planes depend only on the sketch length and the bit number, so equal-length sketches are comparable.
    /// </summary>
    public static void Signature(ReadOnlySpan<float> sketch, Span<ulong> bands)
    {
        var n = (ulong)sketch.Length;
        for (var b = 0; b < Bands; b++)
        {
            ulong v = 0;
            for (var bit = 0; bit < BandBits; bit++)
            {
                var plane = (ulong)((b * BandBits) + bit);
                double dot = 0;
                var state = Mix(plane + (n << 32) + 0x9E3779B97F4A7C15UL);
                for (var k = 0; k < PlaneTerms; k++)
                {
                    state = Mix(state + 0x9E3779B97F4A7C15UL);
                    var x = sketch[(int)(state % n)];
                    dot += (state & (1UL << 63)) != 0 ? x : -x;
                }

                if (dot >= 0)
                {
                    v |= 1UL << bit;
                }
            }

            bands[b] = v;
        }
    }

    private static ulong KeyHash(string key)
    {
        // FNV-1a over UTF-16 code units, remixed: stable across runs (string.GetHashCode is randomised).
        var h = 14695981039346656037UL;
        foreach (var c in key)
        {
            h = (h ^ c) * 1099511628211UL;
        }

        return Mix(h);
    }

    private static ulong Bucket(ulong keyHash, int band, ulong value) => Mix(keyHash + ((ulong)band << 56) + (value * 0xD6E8FEB86659FD93UL));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static (ulong[] Keys, int[] Values) Sorted(List<ulong> keys, List<int> values)
    {
        var k = keys.ToArray();
        var v = values.ToArray();
        Array.Sort(k, v);
        return (k, v);
    }

    private static (int From, int To) Range(ulong[] keys, ulong key)
    {
        var i = Array.BinarySearch(keys, key);
        if (i < 0)
        {
            return (0, 0);
        }

        int from = i, to = i + 1;
        while (from > 0 && keys[from - 1] == key)
        {
            from--;
        }

        while (to < keys.Length && keys[to] == key)
        {
            to++;
        }

        return (from, to);
    }
}
