using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>
/// PyTorch checkpoints: the zip format (torch ≥ 1.6), the legacy five-pickle format and bare pickles. The
/// pickles go through <see cref="PickleMachine"/> (never executed); tensors come from the symbolic
/// <c>_rebuild_tensor_v2</c> calls and point at stored zip members in place.
/// </summary>
internal static class TorchReader
{
    // The legacy magic number 0x1950a86a20f9469cfc6c as the first pickle writes it.
    internal static readonly BigInteger LegacyMagic = BigInteger.Parse("1950a86a20f9469cfc6c", NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public static void ReadZip(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        var members = ZipDirectory.Read(handle, length, doc, limits);
        if (members.Count == 0)
        {
            throw new ModelFormatException("zip: no members");
        }

        // torch's reader takes the archive name from the first record and asks for "<name>/data.pkl".
        var first = members[0].Name;
        var slash = first.IndexOf('/', StringComparison.Ordinal);
        var prefix = slash < 0 ? string.Empty : first[..slash];
        var pklName = prefix + "/data.pkl";
        var byName = new Dictionary<string, ZipMember>(StringComparer.Ordinal);
        foreach (var m in members)
        {
            byName.TryAdd(m.Name, m);
        }

        var dataPkls = members.Where(m => m.Name.EndsWith("data.pkl", StringComparison.Ordinal)).ToList();
        if (dataPkls.Count > 1)
        {
            doc.Flag(AnomalySeverity.Error, "torch.multiple-data-pkl", $"{dataPkls.Count} data.pkl members: {string.Join(", ", dataPkls.Take(5).Select(m => m.Name))}");
        }

        if (byName.ContainsKey(prefix + "/constants.pkl") || members.Any(m => m.Name.StartsWith(prefix + "/code/", StringComparison.Ordinal)))
        {
            doc.Flag(AnomalySeverity.Warning, "torch.torchscript", "TorchScript archive (code/ or constants.pkl): torch.load hands it to the JIT");
        }

        foreach (var m in members)
        {
            var rel = m.Name.Length > prefix.Length && m.Name.StartsWith(prefix + "/", StringComparison.Ordinal) ? m.Name[(prefix.Length + 1)..] : null;
            var known = rel is not null && (rel is "data.pkl" or "byteorder" or "version" or ".format_version" or ".storage_alignment" or ".data/serialization_id" or ".data/version"
                || rel.StartsWith("data/", StringComparison.Ordinal) || rel.StartsWith("code/", StringComparison.Ordinal) || rel is "constants.pkl" or "extra/" || rel.StartsWith("extra/", StringComparison.Ordinal));
            if (!known)
            {
                doc.Flag(AnomalySeverity.Warning, "torch.unexpected-member", $"member '{m.Name}' is not part of the torch layout");
            }
        }

        // Scan every member a loader could unpickle, whatever its name or size (extension trust and size caps were bypasses).
        using var scans = new MemberScans();
        var root = ScanMembers(handle, members, doc, limits, pklName, byName.ContainsKey(pklName) ? prefix + "/data/" : null, scans);

        if (!byName.ContainsKey(pklName))
        {
            doc.Flag(AnomalySeverity.Error, "torch.no-data-pkl", $"no '{pklName}' (the member torch would load)");
            return;
        }

        Collect(root, doc, limits, length, key =>
        {
            if (!byName.TryGetValue(prefix + "/data/" + key, out var m))
            {
                return null;
            }

            if (m.Method != 0)
            {
                doc.Flag(AnomalySeverity.Warning, "torch.compressed-storage", $"storage '{m.Name}' is compressed: values not read in place");
                return (-1, m.Size);
            }

            return (m.DataOffset, m.Size);
        });
    }

    /// <summary>Scans the members of a zip found by its end record (a polyglot whose start is something else).</summary>
    public static void ScanZipMembers(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        List<ZipMember> members;
        try
        {
            members = ZipDirectory.Read(handle, length, doc, limits);
        }
        catch (ModelFormatException ex)
        {
            // zipfile reads the same central directory; one it cannot read gives a loader no members either.
            doc.Flag(AnomalySeverity.Warning, "zip.unreadable", $"a zip end record is present but the archive is unreadable: {ex.Message}");
            return;
        }

        using var scans = new MemberScans();
        ScanMembers(handle, members, doc, limits, mainPickle: null, storagePrefix: null, scans);
    }

    /// <summary>pickle.load on the whole file: streams from byte 0, reported when they reach anything.</summary>
    public static void ScanAsPickle(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        using var reader = new PickleStreamReader(handle, 0, length, limits);
        var scan = new StreamScan();
        reader.ScanUntilEnd(0, "as-pickle", scan, firstIsPickle: false);
        if (scan.Any)
        {
            doc.Pickles.Add(scan.ToReport("as-pickle"));
        }
    }

    // Scans every member a loader could unpickle: the main data.pkl, every *.pkl / *.pickle member, and any other
    // member whose first byte is a pickle opcode (torch storage records excepted: torch reads them as raw bytes).
    // Returns the root of the main pickle. Stored members are mapped, not copied; deflated ones are inflated up to
    // MaxPickleBytes, past which the member is dangerous (a cap reached is never a silent skip).
    private static object? ScanMembers(SafeFileHandle handle, List<ZipMember> members, ModelDocument doc, ModelLimits limits, string? mainPickle, string? storagePrefix, MemberScans scans)
    {
        object? root = null;
        Span<byte> first = stackalloc byte[1];
        foreach (var m in members)
        {
            var isMain = m.Name == mainPickle;
            var named = isMain || m.Name.EndsWith(".pkl", StringComparison.OrdinalIgnoreCase) || m.Name.EndsWith(".pickle", StringComparison.OrdinalIgnoreCase);
            if (!named && (m.Name.EndsWith('/') || (storagePrefix is not null && m.Name.StartsWith(storagePrefix, StringComparison.Ordinal))))
            {
                continue;
            }

            if (m.DataOffset < 0 || m.Method is not (0 or 8))
            {
                if (named)
                {
                    AddUnreadable(doc, m.Name, m.DataOffset < 0 ? "its data cannot be located" : $"compression method {m.Method} is not read");
                }

                continue;
            }

            if (m.CompressedSize == 0)
            {
                continue;
            }

            PickleStreamReader reader;
            long start;
            if (m.Method == 0)
            {
                ZipDirectory.ReadExactly(handle, first, m.DataOffset);
                if (!named && !PickleOpcodes.IsOpcode(first[0]))
                {
                    continue;
                }

                if (ZipDirectory.StoredCrc(handle, m) != m.Crc)
                {
                    doc.Flag(AnomalySeverity.Error, "zip.bad-crc", $"member '{m.Name}' CRC-32 does not match its header (a loader that ignores CRCs still reads it; scanned anyway)");
                }

                reader = scans.Keep(new PickleStreamReader(handle, m.DataOffset, m.DataOffset + m.CompressedSize, limits));
                start = m.DataOffset;
            }
            else
            {
                byte[]? data;
                try
                {
                    if (!named && (ZipDirectory.Inflate(handle, m, 1, stopAfter: 1) is not [var b] || !PickleOpcodes.IsOpcode(b)))
                    {
                        continue;
                    }

                    data = ZipDirectory.Inflate(handle, m, limits.MaxPickleBytes);
                }
                catch (InvalidDataException ex)
                {
                    AddUnreadable(doc, m.Name, "deflate data is corrupt: " + ex.Message);
                    continue;
                }

                if (data is null)
                {
                    doc.Pickles.Add(new PickleReport(m.Name, [new PickleFinding(PickleVerdict.Dangerous, "limit", null, null, 0,
                        $"deflated member inflates past {limits.MaxPickleBytes} bytes: not scanned, so not safe")], [], 0, false));
                    continue;
                }

                if (System.IO.Hashing.Crc32.HashToUInt32(data) != m.Crc)
                {
                    doc.Flag(AnomalySeverity.Error, "zip.bad-crc", $"member '{m.Name}' CRC-32 does not match its header (a loader that ignores CRCs still reads it; scanned anyway)");
                }

                reader = scans.Keep(new PickleStreamReader(data, limits));
                start = 0;
            }

            var scan = new StreamScan();
            if (named)
            {
                var (r, end) = reader.RunAt(start, m.Name);
                scan.Streams++;
                scan.Merge(r.Report);
                if (r.Report.Complete && end < reader.RegionEnd)
                {
                    // torch reads one stream; anything after it is scanned as a loader looping on pickle.load would read it.
                    reader.ScanUntilEnd(end, m.Name, scan, firstIsPickle: false);
                }

                if (isMain)
                {
                    root = r.Root;
                }
            }
            else
            {
                reader.ScanUntilEnd(start, m.Name, scan, firstIsPickle: false);
            }

            if (scan.Any)
            {
                doc.Pickles.Add(scan.ToReport(m.Name));
            }
        }

        return root;
    }

    private static void AddUnreadable(ModelDocument doc, string member, string why) =>
        doc.Pickles.Add(new PickleReport(member, [new PickleFinding(PickleVerdict.Dangerous, "unreadable", null, null, 0, $"pickle member cannot be read ({why}): a loader may still run it")], [], 0, false));

    public static void ReadLegacy(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        using var reader = new PickleStreamReader(handle, 0, length, limits);
        var results = new List<PickleResult>();
        long pos = 0;
        for (var i = 0; i < 5; i++)
        {
            var (r, end) = reader.RunAt(pos, $"legacy#{i + 1}");
            doc.Pickles.Add(r.Report);
            results.Add(r);
            if (!r.Report.Complete)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-truncated", $"legacy pickle {i + 1} is incomplete");
                return;
            }

            pos = end;
        }

        if (results[0].Root is not BigInteger magic || magic != LegacyMagic)
        {
            doc.Flag(AnomalySeverity.Error, "torch.legacy-magic", "the magic number is not a literal integer (built by a call?)");
        }

        if (results[1].Root is not 1001L)
        {
            doc.Flag(AnomalySeverity.Warning, "torch.legacy-version", $"protocol version is {results[1].Root ?? "None"}, not 1001");
        }

        // Storage types by key, from the object's persistent ids.
        var types = new Dictionary<string, TensorDType>(StringComparer.Ordinal);
        Walk(results[3].Root, limits.MaxDepth, (_, t) =>
        {
            if (StorageKey(t.Storage, out var key, out var dtype))
            {
                types.TryAdd(key, dtype);
            }
        });
        var keys = (results[4].Root as PyList)?.Items.OfType<string>().ToList() ?? [];
        var offsets = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        var buf = new byte[8];
        var stopped = false;
        foreach (var key in keys)
        {
            if (!types.TryGetValue(key, out var dtype) || TensorDTypes.Size(dtype) == 0)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-storage", $"storage '{key}' has no known element type; stopping");
                stopped = true;
                break;
            }

            if (pos + 8 > length)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-truncated", $"storage '{key}' is missing");
                stopped = true;
                break;
            }

            ZipDirectory.ReadExactly(handle, buf, pos);
            var count = BinaryPrimitives.ReadInt64LittleEndian(buf);
            var elem = TensorDTypes.Size(dtype);
            if (count < 0 || count > (length - pos - 8) / elem)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-truncated", $"storage '{key}' ({count} elements) runs past the end");
                stopped = true;
                break;
            }

            var bytes = count * elem;
            offsets[key] = (pos + 8, bytes);
            pos += 8 + bytes;
        }

        if (pos < length && !stopped)
        {
            doc.Flag(AnomalySeverity.Warning, "torch.trailing-bytes", $"{length - pos} bytes after the last storage");

            // Streams after the storages: torch stops reading, a loader looping on pickle.load would not.
            var trailing = new StreamScan();
            reader.ScanUntilEnd(pos, "legacy:trailing", trailing, firstIsPickle: false);
            if (trailing.Any)
            {
                doc.Pickles.Add(trailing.ToReport("legacy:trailing"));
            }
        }

        Collect(results[3].Root, doc, limits, length, key => offsets.TryGetValue(key, out var o) ? o : null);
    }

    /// <summary>
    /// A bare pickle file: every stream from byte 0 to the end (no fixed count that lets a payload hide after N
    /// benign streams), in bounded memory. The first stream is always reported when it starts with PROTO.
    /// </summary>
    public static void ReadPickle(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits, bool protoFirst)
    {
        using var reader = new PickleStreamReader(handle, 0, length, limits);
        var scan = new StreamScan();
        var name = System.IO.Path.GetFileName(doc.Path);
        reader.ScanUntilEnd(0, name, scan, firstIsPickle: protoFirst);
        if (scan.Any)
        {
            doc.Pickles.Add(scan.ToReport(name));
        }
    }

    // Keeps member readers (and their mapped windows) alive until the roots taken from them are no longer used.
    private sealed class MemberScans : IDisposable
    {
        private readonly List<PickleStreamReader> _readers = [];

        public PickleStreamReader Keep(PickleStreamReader r)
        {
            _readers.Add(r);
            return r;
        }

        public void Dispose()
        {
            foreach (var r in _readers)
            {
                r.Dispose();
            }
        }
    }

    private static bool StorageKey(PyPersistent p, out string key, out TensorDType dtype)
    {
        key = string.Empty;
        dtype = TensorDType.Unknown;
        if (p.Id is not PyTuple { Items: var items } || items.Length < 3 || items[0] is not "storage")
        {
            return false;
        }

        if (items[1] is PyGlobal g)
        {
            dtype = TensorDTypes.FromTorchStorage(g.Name);
        }

        key = items[2] switch
        {
            string s => s,
            long l => l.ToString(CultureInfo.InvariantCulture),
            _ => string.Empty,
        };
        return key.Length > 0;
    }

    private static void Collect(object? root, ModelDocument doc, ModelLimits limits, long fileLength, Func<string, (long Offset, long Size)?> storage)
    {
        Walk(root, limits.MaxDepth, (name, t) =>
        {
            if (doc.Tensors.Count >= limits.MaxTensors)
            {
                return;
            }

            if (!StorageKey(t.Storage, out var key, out var dtype))
            {
                doc.Flag(AnomalySeverity.Warning, "torch.storage-id", $"tensor '{name}' has an unrecognised persistent id");
                return;
            }

            var elem = TensorDTypes.Size(dtype);
            var s = storage(key);
            if (s is null || elem == 0)
            {
                doc.Flag(AnomalySeverity.Error, "torch.missing-storage", $"tensor '{name}' refers to storage '{key}' which is missing or of unknown type");
                if (TensorShapes.Count(t.Size) is >= 0 and var n && n <= TensorShapes.MaxElements && n / 8 <= fileLength)
                {
                    doc.Tensors.Add(new TensorInfo(name, dtype, t.Size, doc.Path, -1, 0));
                }

                return;
            }

            var (offset, size) = s.Value;
            if (!TensorShapes.TryView(t.Size, t.Stride, t.StorageOffset, elem, size, out var start, out var bytes, out var contiguous))
            {
                doc.Flag(AnomalySeverity.Error, "torch.view-bounds", $"tensor '{name}' view runs outside its storage '{key}' (or its shape is absurd)");
                if (TensorShapes.Count(t.Size) is >= 0 and var n && n <= TensorShapes.MaxElements && n / 8 <= fileLength)
                {
                    doc.Tensors.Add(new TensorInfo(name, dtype, t.Size, doc.Path, -1, 0));
                }

                return;
            }

            doc.Tensors.Add(new TensorInfo(name, dtype, t.Size, doc.Path, offset < 0 ? -1 : offset + start, bytes, contiguous ? null : t.Stride));
        });
    }

    /// <summary>Flattens nested dicts into dotted names and calls <paramref name="onTensor"/> for each tensor leaf (bounded depth, iterative).</summary>
    internal static void Walk(object? root, int maxDepth, Action<string, TorchTensorRef> onTensor)
    {
        var stack = new Stack<(string Prefix, object? Node, int Depth)>();
        stack.Push((string.Empty, root, 0));
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new List<(string, object?, int)>();
        while (stack.Count > 0)
        {
            var (prefix, node, depth) = stack.Pop();
            if (node is TorchTensorRef t)
            {
                onTensor(prefix, t);
                continue;
            }

            if (depth >= maxDepth || node is null || !seen.Add(node))
            {
                continue;
            }

            pending.Clear();
            if (node is PyDict d)
            {
                foreach (var (k, v) in d.Entries)
                {
                    var key = k switch
                    {
                        string s => s,
                        long l => l.ToString(CultureInfo.InvariantCulture),
                        _ => null,
                    };
                    if (key is not null)
                    {
                        pending.Add((prefix.Length == 0 ? key : prefix + "." + key, v, depth + 1));
                    }
                }
            }
            else if (node is PyCall { Callable: PyGlobal { Name: "OrderedDict" or "ParameterDict" }, Args: PyTuple { Items: [PyList l] } })
            {
                // OrderedDict([(k, v), ...]) written by older torch versions.
                foreach (var item in l.Items)
                {
                    if (item is PyTuple { Items: [string k, var v] })
                    {
                        pending.Add((prefix.Length == 0 ? k : prefix + "." + k, v, depth + 1));
                    }
                }
            }

            for (var i = pending.Count - 1; i >= 0; i--)
            {
                stack.Push(pending[i]);
            }
        }
    }
}
