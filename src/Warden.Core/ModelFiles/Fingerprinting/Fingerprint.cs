using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Warden.Core.Runtime;

namespace Warden.Core.ModelFiles;

/// <summary>Whole-file hashes in every scheme model hosts and generators use.</summary>
/// <param name="Length">File length.</param>
/// <param name="Sha256">SHA-256 of the file (AutoV2 = its first 5 bytes).</param>
/// <param name="AutoV1">Civitai AutoV1 / A1111 old model hash: SHA-256 of 64 KiB at 1 MiB, first 4 bytes; null below 2 MiB.</param>
/// <param name="AutoV3">Civitai AutoV3 / addnet hash: SHA-256 after a safetensors-like header (u64 N &lt; 16 MiB), else after byte 8; null below 8 bytes.</param>
/// <param name="Crc32">CRC-32 as System.IO.Hashing produces it (Civitai prints its bytes in little-endian order).</param>
/// <param name="Blake3">BLAKE3-256, when computed.</param>
public sealed record FileHashes(long Length, byte[] Sha256, byte[]? AutoV1, byte[]? AutoV3, uint Crc32, byte[]? Blake3)
{
    /// <summary>Lowercase hex SHA-256.</summary>
    public string Sha256Hex => Convert.ToHexStringLower(Sha256);

    /// <summary>8 hex digits, or null.</summary>
    public string? AutoV1Hex => AutoV1 is null ? null : Convert.ToHexStringLower(AutoV1.AsSpan(0, 4));

    /// <summary>10 hex digits (A1111 "Model hash").</summary>
    public string AutoV2Hex => Convert.ToHexStringLower(Sha256.AsSpan(0, 5));

    /// <summary>Full 64-hex AutoV3.</summary>
    public string? AutoV3Hex => AutoV3 is null ? null : Convert.ToHexStringLower(AutoV3);

    /// <summary>12-hex AutoV3 prefix (A1111 "Lora hashes", the civitai_autov3 signal).</summary>
    public string? AutoV3Short => AutoV3 is null ? null : Convert.ToHexStringLower(AutoV3.AsSpan(0, 6));

    /// <summary>CRC-32 in Civitai's byte order ("hello world" → 85114a0d).</summary>
    public string Crc32Hex
    {
        get
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, Crc32);
            return Convert.ToHexStringLower(b);
        }
    }

    /// <summary>Lowercase hex BLAKE3, or null.</summary>
    public string? Blake3Hex => Blake3 is null ? null : Convert.ToHexStringLower(Blake3);
}

/// <summary>One tensor's MFv1 print.</summary>
/// <param name="RawName">Name as stored.</param>
/// <param name="Canonical">Component and canonical name.</param>
/// <param name="Shape">Canonical shape (trailing 1s squeezed).</param>
/// <param name="DType">Stored element type.</param>
/// <param name="Count">Elements.</param>
/// <param name="Hash">XXH3-128 over (canonical shape, fp32 values); null when the values could not be read.</param>
/// <param name="CastHashes">Hashes after fp16, bf16 and bf16(fp16) casts (registration only).</param>
/// <param name="Sketch">Values at seeded positions (see <see cref="Fingerprinter.SketchPositions"/>).</param>
/// <param name="Rows">
/// Sampled row hashes: XXH3-64 of each dim-0 row's fp32 values, kept when h % 32 == 0 (rank ≥ 2, rows of ≥ 8
/// values). Rows survive dim-0 splits and fusions (qkv) and block-wise copying, for T3 containment.
/// </param>
public sealed record TensorPrint(string RawName, CanonicalName Canonical, long[] Shape, TensorDType DType, long Count, byte[]? Hash, byte[][]? CastHashes, float[] Sketch, ulong[]? Rows = null);

/// <summary>A component's identity.</summary>
/// <param name="Name">denoiser, te1, te2, te3, vae, ema, other, or lora:&lt;component&gt;.</param>
/// <param name="Id">XXH3-128 of its sorted tensor hashes.</param>
/// <param name="Tensors">Tensors hashed.</param>
/// <param name="Parameters">Elements.</param>
/// <param name="CastIds">IDs along each cast path (registration only).</param>
public sealed record ComponentPrint(string Name, byte[] Id, int Tensors, long Parameters, IReadOnlyDictionary<string, byte[]> CastIds)
{
    /// <summary>Lowercase hex ID.</summary>
    public string IdHex => Convert.ToHexStringLower(Id);
}

/// <summary>One LoRA/LyCORIS module as its effective weight change ΔW, sampled where a model tensor of the target shape is sketched.</summary>
/// <param name="Key">"component:module_path_with_underscores" (kohya style, the key a model weight maps to).</param>
/// <param name="Kind">lora, loha, lokr.</param>
/// <param name="TargetShape">Canonical shape of the weight it changes.</param>
/// <param name="Rank">Rank.</param>
/// <param name="Scale">alpha / rank applied.</param>
/// <param name="Delta">ΔW at the sketch positions of <paramref name="TargetShape"/>.</param>
/// <param name="Hash">XXH3-128 of (target shape, Delta as fp32).</param>
public sealed record LoraModule(string Key, string Kind, long[] TargetShape, int Rank, double Scale, float[] Delta, byte[] Hash);

/// <summary>What to compute.</summary>
public sealed record FingerprintOptions
{
    /// <summary>Whole-file hashes (SHA-256, AutoV1/V3, CRC32).</summary>
    public bool FileHashes { get; init; } = true;

    /// <summary>
    /// AutoV3 for every format (as Civitai does). When false it is computed for safetensors only, where it differs
    /// usefully from SHA-256 (metadata edits); elsewhere it is a second full SHA-256 pass for nothing.
    /// </summary>
    public bool AutoV3AllFormats { get; init; } = true;

    /// <summary>BLAKE3 as well (costs ~0.3 CPU-s per GB).</summary>
    public bool Blake3 { get; init; }

    /// <summary>fp16/bf16/bf16(fp16) cast-path IDs (registration).</summary>
    public bool CastPaths { get; init; }

    /// <summary>Values sampled per tensor.</summary>
    public int SketchSize { get; init; } = 256;

    /// <summary>Called with bytes read so far.</summary>
    public Action<long>? Progress { get; init; }
}

/// <summary>A model's MFv1 fingerprint plus its file hashes.</summary>
public sealed class ModelFingerprint
{
    /// <summary>Cast path names, in the order of <see cref="TensorPrint.CastHashes"/>.</summary>
    public static IReadOnlyList<string> CastPathNames { get; } = ["fp16", "bf16", "bf16(fp16)"];

    /// <summary>The document fingerprinted.</summary>
    public required ModelDocument Document { get; init; }

    /// <summary>File hashes (single files only).</summary>
    public FileHashes? File { get; init; }

    /// <summary>Per-tensor prints in document order (buffers excluded).</summary>
    public required IReadOnlyList<TensorPrint> Tensors { get; init; }

    /// <summary>Component IDs.</summary>
    public required IReadOnlyList<ComponentPrint> Components { get; init; }

    /// <summary>Model ID: XXH3-128 of the sorted IDs of the primary components (all components when none is primary).</summary>
    public byte[]? ModelId { get; init; }

    /// <summary>Model IDs along each cast path.</summary>
    public IReadOnlyDictionary<string, byte[]> CastModelIds { get; init; } = new Dictionary<string, byte[]>();

    /// <summary>LoRA modules when the file is an adapter.</summary>
    public IReadOnlyList<LoraModule> Lora { get; init; } = [];

    /// <summary>Bytes read.</summary>
    public long BytesRead { get; init; }

    /// <summary>Lowercase hex model ID.</summary>
    public string? ModelIdHex => ModelId is null ? null : Convert.ToHexStringLower(ModelId);
}

/// <summary>
/// Computes file hashes and MFv1 prints in one streaming pass per file: the file is read once in 4 MiB chunks;
/// SHA-256 and the AutoV3 SHA-256 each run on their own thread while this thread runs CRC32, BLAKE3 and the
/// per-tensor canonical hashing (values widened to fp32, XXH3-128) and sketches. Memory is bounded by the
/// chunk ring and the (small) per-tensor state, whatever the file size. Strided torch views are gathered
/// separately (bounded size).
/// </summary>
public static class Fingerprinter
{
    private const int ChunkBytes = 4 << 20;
    private const int Batch = 1 << 15;

    /// <summary>One row in this many (by hash) is kept in a registered record (all rows of tensors with ≤ 64 rows).</summary>
    public const int RowSampling = 32;

    /// <summary>Fingerprints a document read by <see cref="ModelReader"/>.</summary>
    public static ModelFingerprint Compute(ModelDocument doc, FingerprintOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(doc);
        options ??= new FingerprintOptions();
        var items = Expand(doc);
        var prints = new TensorPrint?[items.Count];
        FileHashes? fileHashes = null;
        long read = 0;
        var scratch = new Scratch();
        foreach (var file in doc.Files)
        {
            var accs = new List<Acc>();
            var strided = new List<(int Index, CanonicalName Name)>();
            for (var i = 0; i < items.Count; i++)
            {
                var (t, name) = items[i];
                if (t.Source != file)
                {
                    continue;
                }

                if (!t.Readable)
                {
                    prints[i] = new TensorPrint(t.Name, name, TensorNames.CanonicalShape(t.Shape), t.DType, t.Count, null, null, []);
                }
                else if (t.Strides is not null)
                {
                    strided.Add((i, name));
                }
                else
                {
                    accs.Add(new Acc(i, t, name, options));
                }
            }

            var single = doc.Files.Count == 1;
            var autoV3 = options.AutoV3AllFormats || doc.Format == ModelFormat.Safetensors;
            var hashes = Stream(file, single && options.FileHashes, autoV3, options.Blake3, accs, scratch, b => options.Progress?.Invoke(read + b), out var bytes);
            read += bytes;
            if (single)
            {
                fileHashes = hashes;
            }

            foreach (var a in accs)
            {
                prints[a.Index] = a.Finish();
            }

            if (strided.Count > 0)
            {
                using var handle = ModelReader.Open(file);
                foreach (var (i, name) in strided)
                {
                    var t = items[i].Tensor;
                    var values = TensorValues.ReadAll(handle, t);
                    if (values is null)
                    {
                        doc.Flag(AnomalySeverity.Warning, "mfv1.not-hashed", $"strided tensor '{t.Name}' is too large to gather; not hashed");
                        prints[i] = new TensorPrint(t.Name, name, TensorNames.CanonicalShape(t.Shape), t.DType, t.Count, null, null, []);
                        continue;
                    }

                    var acc = new Acc(i, t with { Strides = null, DType = TensorDType.F32, Length = values.Length * 4L }, name, options) { SourceDType = t.DType };
                    acc.Feed(MemoryMarshal.AsBytes(values.AsSpan()), scratch);
                    prints[i] = acc.Finish();
                }
            }
        }

        var list = prints.Where(p => p is not null).Select(p => p!).ToList();
        var lora = LoraAnalyzer.Analyze(doc, options.SketchSize);
        List<ComponentPrint> components;
        if (lora.Count > 0)
        {
            components = [.. lora.GroupBy(m => "lora:" + m.Key[..m.Key.IndexOf(':', StringComparison.Ordinal)], StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new ComponentPrint(g.Key, SortedHash(g.Select(m => m.Hash)), g.Count(), g.Sum(m => m.TargetShape.Aggregate(1L, (a, b) => a * b)), new Dictionary<string, byte[]>()))];
        }
        else
        {
            components = [.. list.Where(p => p.Hash is not null).GroupBy(p => p.Canonical.Component, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new ComponentPrint(
                    g.Key,
                    SortedHash(g.Select(p => p.Hash!)),
                    g.Count(),
                    g.Sum(p => p.Count),
                    options.CastPaths
                        ? Enumerable.Range(0, ModelFingerprint.CastPathNames.Count).ToDictionary(k => ModelFingerprint.CastPathNames[k], k => SortedHash(g.Select(p => p.CastHashes?[k] ?? p.Hash!)))
                        : new Dictionary<string, byte[]>()))];
        }

        var primary = components.Where(c => TensorNames.Primary.Contains(c.Name)).ToList();
        var idParts = primary.Count > 0 ? primary : components;
        var castModel = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (options.CastPaths && lora.Count == 0 && idParts.Count > 0)
        {
            foreach (var path in ModelFingerprint.CastPathNames)
            {
                castModel[path] = SortedHash(idParts.Select(c => c.CastIds[path]));
            }
        }

        return new ModelFingerprint
        {
            Document = doc,
            File = fileHashes,
            Tensors = list,
            Components = components,
            ModelId = idParts.Count == 0 ? null : SortedHash(idParts.Select(c => c.Id)),
            CastModelIds = castModel,
            Lora = lora,
            BytesRead = read,
        };
    }

    /// <summary>
    /// The document's tensors as the canonical layout has them: canonical names (buffers dropped), fused
    /// projections split into their row ranges (views into the same bytes, nothing copied) and transposed
    /// storage read as a strided view, in document order.
    /// </summary>
    public static List<(TensorInfo Tensor, CanonicalName Name)> Expand(ModelDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        var named = new List<(TensorInfo Tensor, CanonicalName Name)>(doc.Tensors.Count);
        var widths = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in doc.Tensors)
        {
            if (TensorNames.Canonicalize(t.Name, doc.FileComponents.GetValueOrDefault(t.Source, string.Empty)) is { } name)
            {
                named.Add((t, name));
                if (t.Shape.Length >= 2 && name.Name.EndsWith(".weight", StringComparison.Ordinal))
                {
                    widths.TryAdd(name.Component + ":" + name.Name[..^".weight".Length], t.Shape[1]);
                }
            }
        }

        var result = new List<(TensorInfo, CanonicalName)>(named.Count);
        foreach (var (t, name) in named)
        {
            if (TensorLayouts.StoredTransposed(t.Name, name, t.Shape) && TensorDTypes.Size(t.DType) > 0)
            {
                long[] strides = t.Strides is { Length: 2 } s ? [s[1], s[0]] : [1, t.Shape[1]];
                result.Add((t with { Shape = [t.Shape[1], t.Shape[0]], Strides = strides }, name));
                continue;
            }

            var stem = name.Name.EndsWith(".weight", StringComparison.Ordinal) ? name.Name[..^".weight".Length]
                : name.Name.EndsWith(".bias", StringComparison.Ordinal) ? name.Name[..^".bias".Length] : null;
            var pieces = stem is null || t.Shape.Length == 0 ? null
                : TensorLayouts.RowPieces(name.Name, t.Shape[0], widths.GetValueOrDefault(name.Component + ":" + stem));
            if (pieces is null)
            {
                result.Add((t, name));
                continue;
            }

            var perRow = t.Shape[0] > 0 ? t.Count / t.Shape[0] : 0;
            var views = new List<(TensorInfo, CanonicalName)>(pieces.Count);
            foreach (var (piece, start, rows) in pieces)
            {
                var view = RowView(t, perRow, start, rows);
                if (view is null)
                {
                    views.Clear();
                    break;
                }

                views.Add((view, name with { Name = piece }));
            }

            if (views.Count == 0)
            {
                result.Add((t, name));
            }
            else
            {
                result.AddRange(views);
            }
        }

        return result;
    }

    // Rows [start, start+rows) of a tensor as a view of the same bytes; null when they do not fall on whole units
    // (a quant block straddling two pieces cannot happen in ggml files, whose blocks lie within rows).
    private static TensorInfo? RowView(TensorInfo t, long perRow, long start, long rows)
    {
        long[] shape = [rows, .. t.Shape[1..]];
        if (t.Offset < 0)
        {
            return t with { Shape = shape };
        }

        if (t.Strides is { } s)
        {
            // Hostile strides must not overflow into an offset outside the view's extent.
            var size = TensorDTypes.Size(t.DType);
            var skip = (Int128)start * s[0] * size;
            return size <= 0 || s[0] < 0 || skip < 0 || skip > t.Length ? null : t with { Shape = shape, Offset = t.Offset + (long)skip, Length = t.Length - (long)skip };
        }

        var unitValues = TensorValues.UnitValues(t.DType);
        var unitBytes = TensorValues.UnitBytes(t.DType);
        if (unitBytes <= 0 || perRow % unitValues != 0)
        {
            return null;
        }

        var rowBytes = (Int128)(perRow / unitValues) * unitBytes;
        var offset = start * rowBytes;
        var length = rows * rowBytes;
        return offset < 0 || offset + length > t.Length ? null : t with { Shape = shape, Offset = t.Offset + (long)offset, Length = (long)length };
    }

    /// <summary>File hashes only (no tensors): what <c>warden hash</c> needs for any file.</summary>
    public static FileHashes HashFile(string path, bool blake3 = true, Action<long>? progress = null) =>
        Stream(path, true, true, blake3, [], new Scratch(), progress, out _)!;

    /// <summary>XXH3-128 of the concatenation of the given 16-byte hashes in sorted order.</summary>
    public static byte[] SortedHash(IEnumerable<byte[]> hashes)
    {
        var sorted = hashes.Select(h => (UInt128)BinaryPrimitives.ReadUInt128BigEndian(h)).Order().ToList();
        var h = new XxHash128();
        Span<byte> b = stackalloc byte[16];
        foreach (var v in sorted)
        {
            BinaryPrimitives.WriteUInt128BigEndian(b, v);
            h.Append(b);
        }

        return h.GetCurrentHash();
    }

    /// <summary>
    /// Sorted element positions sampled from a tensor of this canonical shape: all of them when it has at most
    /// <paramref name="k"/> elements, else <paramref name="k"/> draws of SplitMix64 seeded with XXH64 of the
    /// shape. Depending on the shape only, a model tensor and a LoRA's ΔW for it sample the same coordinates,
    /// which keeps sketches linear: sketch(aA + bB) = a·sketch(A) + b·sketch(B).
    /// </summary>
    public static long[] SketchPositions(long[] shape, int k)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (var d in shape)
        {
            n = d <= 0 ? 0 : (n > long.MaxValue / d ? long.MaxValue : n * d);
        }

        if (n <= k)
        {
            var all = new long[n];
            for (var i = 0; i < n; i++)
            {
                all[i] = i;
            }

            return all;
        }

        var seed = XxHash64.HashToUInt64(ShapeBytes(shape));
        var pos = new long[k];
        for (var i = 0; i < k; i++)
        {
            seed += 0x9E3779B97F4A7C15UL;
            var z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            pos[i] = (long)(z % (ulong)n);
        }

        Array.Sort(pos);
        return pos;
    }

    /// <summary>Rank (u32 LE) then dims (i64 LE): the prefix of every tensor hash.</summary>
    public static byte[] ShapeBytes(long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var b = new byte[4 + (8 * shape.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)shape.Length);
        for (var i = 0; i < shape.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(4 + (8 * i)), shape[i]);
        }

        return b;
    }

    private static FileHashes? Stream(string path, bool fileHashes, bool autoV3, bool blake3, List<Acc> accs, Scratch scratch, Action<long>? progress, out long bytesRead)
    {
        using var handle = RegularFile.OpenRead(path, FileOptions.SequentialScan);
        var length = RandomAccess.GetLength(handle);
        bytesRead = 0;
        if (!fileHashes && accs.Count == 0)
        {
            return null;
        }

        accs.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var v3 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var crc = new Crc32();
        using var b3 = blake3 ? Blake3.Hasher.New() : null;
        byte[]? autoV1 = null;
        long v3From = -1;
        if (fileHashes && autoV3 && length >= 8)
        {
            Span<byte> n8 = stackalloc byte[8];
            ZipDirectory.ReadExactly(handle, n8, 0);
            var n = BinaryPrimitives.ReadUInt64LittleEndian(n8);
            v3From = n < 16UL << 20 ? Math.Min(length, 8 + (long)n) : 8;
        }

        // Where tensors are not needed and no file hash either, only the ranges holding tensors are read.
        var ring = new byte[3][];
        var pending = new Task[3];
        for (var i = 0; i < 3; i++)
        {
            ring[i] = ArrayPool<byte>.Shared.Rent(ChunkBytes);
            pending[i] = Task.CompletedTask;
        }

        var shaChain = Task.CompletedTask;
        var v3Chain = Task.CompletedTask;
        var b3Chain = Task.CompletedTask;
        var active = new List<Acc>();
        var next = 0;
        try
        {
            long pos = fileHashes ? 0 : accs.Count > 0 ? accs[0].Offset : length;
            long chunkNo = 0;
            while (pos < length)
            {
                var slot = (int)(chunkNo++ % 3);
                pending[slot].Wait();
                var buf = ring[slot];
                var want = (int)Math.Min(ChunkBytes, length - pos);
                var n = 0;
                while (n < want)
                {
                    var r = RandomAccess.Read(handle, buf.AsSpan(n, want - n), pos + n);
                    if (r <= 0)
                    {
                        throw new IOException($"{path}: unexpected end of file at {pos + n}");
                    }

                    n += r;
                }

                var start = pos;
                var count = n;
                if (fileHashes)
                {
                    shaChain = shaChain.ContinueWith(_ => sha.AppendData(buf, 0, count), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                    if (v3From >= 0 && start + count > v3From)
                    {
                        var from = (int)Math.Max(0, v3From - start);
                        v3Chain = v3Chain.ContinueWith(_ => v3.AppendData(buf, from, count - from), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                    }

                    // BLAKE3 is a chain of its own too (it was on this thread, which also widens and hashes the
                    // tensors): four streams over two cores balance where three unequal ones left a core idle.
                    if (b3 is not null)
                    {
                        b3Chain = b3Chain.ContinueWith(_ => b3.Update(buf.AsSpan(0, count)), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                    }

                    pending[slot] = Task.WhenAll(shaChain, v3Chain, b3Chain);
                    crc.Append(buf.AsSpan(0, count));

                    if (length >= 0x200000 && start < 0x110000 && start + count > 0x100000)
                    {
                        autoV1 ??= new byte[0x10000];
                        var a = Math.Max(start, 0x100000);
                        var e = Math.Min(start + count, 0x110000);
                        buf.AsSpan((int)(a - start), (int)(e - a)).CopyTo(autoV1.AsSpan((int)(a - 0x100000)));
                    }
                }

                // Tensors intersecting this chunk.
                var end = start + count;
                while (next < accs.Count && accs[next].Offset < end)
                {
                    active.Add(accs[next++]);
                }

                for (var i = 0; i < active.Count; i++)
                {
                    var a = active[i];
                    var from = Math.Max(start, a.Offset);
                    var to = Math.Min(end, a.Offset + a.Length);
                    if (to > from)
                    {
                        a.Feed(buf.AsSpan((int)(from - start), (int)(to - from)), scratch);
                    }

                    if (a.Offset + a.Length <= end)
                    {
                        active.RemoveAt(i--);
                    }
                }

                pos = end;
                bytesRead += count;
                progress?.Invoke(bytesRead);

                // Without file hashes, skip gaps between tensors.
                if (!fileHashes && active.Count == 0)
                {
                    pos = next < accs.Count ? Math.Max(pos, accs[next].Offset) : length;
                }
            }

            Task.WaitAll(shaChain, v3Chain, b3Chain);
        }
        finally
        {
            foreach (var p in pending)
            {
                try
                {
                    p.Wait();
                }
                catch (AggregateException)
                {
                    // already surfaced above, or the file failed to read
                }
            }

            foreach (var b in ring)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }

        if (!fileHashes)
        {
            return null;
        }

        byte[]? v1 = autoV1 is null ? null : SHA256.HashData(autoV1)[..4];
        return new FileHashes(length, sha.GetHashAndReset(), v1, v3From >= 0 ? v3.GetHashAndReset() : null, crc.GetCurrentHashAsUInt32(), b3?.Finalize().AsSpan().ToArray());
    }

    private sealed class Scratch
    {
        public float[] Values { get; } = new float[Batch];

        public float[] Cast { get; } = new float[Batch];

        public float[] Cast2 { get; } = new float[Batch];

        public Half[] Half { get; } = new Half[Batch];
    }

    private sealed class Acc
    {
        private readonly TensorInfo _t;
        private readonly CanonicalName _name;
        private readonly long[] _shape;
        private readonly XxHash128 _hash = new();
        private readonly XxHash128[]? _casts;
        private readonly long[] _positions;
        private readonly float[] _sketch;
        private readonly long _rowLen;
        private readonly XxHash3? _row;
        private readonly List<ulong> _rows = [];
        private long _rowFill;
        private readonly byte[] _carry;
        private readonly int _unitBytes;
        private readonly int _unitValues;
        private int _carryLen;
        private int _next;
        private long _values;

        public Acc(int index, TensorInfo t, CanonicalName name, FingerprintOptions options)
        {
            Index = index;
            _t = t;
            SourceDType = t.DType;
            _name = name;
            _shape = TensorNames.CanonicalShape(t.Shape);
            _positions = SketchPositions(_shape, options.SketchSize);
            _sketch = new float[_positions.Length];
            if (_shape.Length >= 2 && _shape[0] > 0 && t.Count / _shape[0] >= 8)
            {
                _rowLen = t.Count / _shape[0];
                _row = new XxHash3();
            }
            _unitBytes = TensorValues.UnitBytes(t.DType);
            _unitValues = TensorValues.UnitValues(t.DType);
            _carry = new byte[_unitBytes];
            var header = ShapeBytes(_shape);
            _hash.Append(header);
            if (options.CastPaths && t.DType is TensorDType.F32 or TensorDType.F64 or TensorDType.F16 or TensorDType.BF16)
            {
                _casts = [new(), new(), new()];
                foreach (var c in _casts)
                {
                    c.Append(header);
                }
            }
        }

        public int Index { get; }

        public long Offset => _t.Offset;

        public long Length => _t.Length;

        public TensorDType SourceDType { get; init; }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Feed(ReadOnlySpan<byte> bytes, Scratch s)
        {
            if (_carryLen > 0)
            {
                var take = Math.Min(_unitBytes - _carryLen, bytes.Length);
                bytes[..take].CopyTo(_carry.AsSpan(_carryLen));
                _carryLen += take;
                bytes = bytes[take..];
                if (_carryLen < _unitBytes)
                {
                    return;
                }

                Emit(_carry, s);
                _carryLen = 0;
            }

            var maxUnits = Batch / _unitValues;
            while (bytes.Length >= _unitBytes)
            {
                var units = Math.Min(maxUnits, bytes.Length / _unitBytes);
                Emit(bytes[..(units * _unitBytes)], s);
                bytes = bytes[(units * _unitBytes)..];
            }

            bytes.CopyTo(_carry);
            _carryLen = bytes.Length;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Emit(ReadOnlySpan<byte> units, Scratch s)
        {
            var count = units.Length / _unitBytes * _unitValues;
            var remaining = _t.Count - _values;
            var v = s.Values.AsSpan(0, count);
            TensorValues.Widen(units, _t.DType, v);
            if (count > remaining)
            {
                v = v[..(int)Math.Max(0, remaining)]; // quant blocks never exceed the tensor in valid files
            }

            _hash.Append(MemoryMarshal.AsBytes(v));
            while (_next < _positions.Length && _positions[_next] < _values + v.Length)
            {
                _sketch[_next] = v[(int)(_positions[_next] - _values)];
                _next++;
            }

            if (_row is not null)
            {
                var rest = v;
                while (rest.Length > 0)
                {
                    // A whole row inside this batch is hashed in one call (the streaming state is for rows split
                    // across batches or chunks); same XXH3-64 either way.
                    if (_rowFill == 0 && rest.Length >= _rowLen)
                    {
                        _rows.Add(XxHash3.HashToUInt64(MemoryMarshal.AsBytes(rest[..(int)_rowLen])));
                        rest = rest[(int)_rowLen..];
                        continue;
                    }

                    var take = (int)Math.Min(_rowLen - _rowFill, rest.Length);
                    _row.Append(MemoryMarshal.AsBytes(rest[..take]));
                    _rowFill += take;
                    rest = rest[take..];
                    if (_rowFill == _rowLen)
                    {
                        var h = _row.GetCurrentHashAsUInt64();
                        _row.Reset();
                        _rowFill = 0;
                        _rows.Add(h);
                    }
                }
            }

            if (_casts is not null)
            {
                var c = s.Cast.AsSpan(0, v.Length);
                TensorValues.CastF16(v, c, s.Half);
                _casts[0].Append(MemoryMarshal.AsBytes(c));
                var c2 = s.Cast2.AsSpan(0, v.Length);
                TensorValues.CastBF16(v, c2);
                _casts[1].Append(MemoryMarshal.AsBytes(c2));
                TensorValues.CastBF16(c, c2);
                _casts[2].Append(MemoryMarshal.AsBytes(c2));
            }

            _values += v.Length;
        }

        public TensorPrint Finish() =>
            new(_t.Name, _name, _shape, SourceDType, _t.Count, _hash.GetCurrentHash(), _casts?.Select(c => c.GetCurrentHash()).ToArray(), _sketch, [.. _rows]);
    }
}
