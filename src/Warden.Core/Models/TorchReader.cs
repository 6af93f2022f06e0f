using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.Models;

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

        // Scan every member that is or looks like a pickle, whatever its name (extension trust was a bypass).
        var machine = new PickleMachine(limits);
        object? root = null;
        foreach (var m in members)
        {
            var isMain = m.Name == pklName;
            if (!isMain && !m.Name.EndsWith(".pkl", StringComparison.OrdinalIgnoreCase) && !LooksLikePickle(handle, m))
            {
                continue;
            }

            byte[] data;
            try
            {
                data = ZipDirectory.ReadMember(handle, m, limits.MaxPickleBytes, doc);
            }
            catch (Exception ex) when (ex is ModelFormatException or InvalidDataException or IOException)
            {
                doc.Flag(AnomalySeverity.Error, "torch.pickle-unreadable", $"{m.Name}: {ex.Message}");
                doc.Pickles.Add(new PickleReport(m.Name, [new PickleFinding(PickleVerdict.Suspicious, "corrupt", null, null, 0, ex.Message)], [], 0, false));
                continue;
            }

            var result = machine.Run(data, m.Name);
            doc.Pickles.Add(result.Report);
            if (isMain)
            {
                root = result.Root;
            }
        }

        if (!byName.ContainsKey(pklName))
        {
            doc.Flag(AnomalySeverity.Error, "torch.no-data-pkl", $"no '{pklName}' (the member torch would load)");
            return;
        }

        Collect(root, doc, limits, key =>
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

    public static void ReadLegacy(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        var head = new byte[Math.Min(length, limits.MaxPickleBytes)];
        ZipDirectory.ReadExactly(handle, head, 0);
        var machine = new PickleMachine(limits);
        var results = new List<PickleResult>();
        long pos = 0;
        for (var i = 0; i < 5; i++)
        {
            var r = machine.Run(head, $"legacy#{i + 1}", scanTrailing: false, start: pos);
            doc.Pickles.Add(r.Report);
            results.Add(r);
            if (!r.Report.Complete)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-truncated", $"legacy pickle {i + 1} is incomplete");
                return;
            }

            pos = r.End;
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
        foreach (var key in keys)
        {
            if (!types.TryGetValue(key, out var dtype) || TensorDTypes.Size(dtype) == 0)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-storage", $"storage '{key}' has no known element type; stopping");
                break;
            }

            if (pos + 8 > length)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-truncated", $"storage '{key}' is missing");
                break;
            }

            ZipDirectory.ReadExactly(handle, buf, pos);
            var count = BinaryPrimitives.ReadInt64LittleEndian(buf);
            var bytes = count * TensorDTypes.Size(dtype);
            if (count < 0 || bytes < 0 || pos + 8 + bytes > length)
            {
                doc.Flag(AnomalySeverity.Error, "torch.legacy-truncated", $"storage '{key}' ({count} elements) runs past the end");
                break;
            }

            offsets[key] = (pos + 8, bytes);
            pos += 8 + bytes;
        }

        if (pos < length && doc.Anomalies.All(a => a.Code != "torch.legacy-truncated"))
        {
            doc.Flag(AnomalySeverity.Warning, "torch.trailing-bytes", $"{length - pos} bytes after the last storage");
        }

        Collect(results[3].Root, doc, limits, key => offsets.TryGetValue(key, out var o) ? o : null);
    }

    public static void ReadPickle(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        if (length > limits.MaxPickleBytes)
        {
            doc.Flag(AnomalySeverity.Warning, "pickle.too-large", $"pickle is {length} bytes; scanning the first {limits.MaxPickleBytes}");
        }

        var data = new byte[Math.Min(length, limits.MaxPickleBytes)];
        ZipDirectory.ReadExactly(handle, data, 0);
        var r = new PickleMachine(limits).Run(data, System.IO.Path.GetFileName(doc.Path));
        doc.Pickles.Add(r.Report);
    }

    internal static bool LooksLikePickle(SafeFileHandle handle, ZipMember m)
    {
        if (m.DataOffset < 0 || m.CompressedSize < 2 || m.Method != 0)
        {
            return m.Method != 0 && m.Size < (64 << 20) && !m.Name.Contains("/data/", StringComparison.Ordinal);
        }

        Span<byte> b = stackalloc byte[2];
        ZipDirectory.ReadExactly(handle, b, m.DataOffset);
        return b[0] == 0x80 && b[1] is >= 2 and <= 5 && !m.Name.Contains("/data/", StringComparison.Ordinal);
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

    private static void Collect(object? root, ModelDocument doc, ModelLimits limits, Func<string, (long Offset, long Size)?> storage)
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
                doc.Tensors.Add(new TensorInfo(name, dtype, t.Size, doc.Path, -1, 0));
                return;
            }

            var (offset, size) = s.Value;
            var contiguous = true;
            long expect = 1;
            long extent = 1;
            for (var i = t.Size.Length - 1; i >= 0; i--)
            {
                if (t.Size[i] < 0 || t.Stride[i] < 0)
                {
                    extent = -1;
                    break;
                }

                if (t.Size[i] != 1 && t.Stride[i] != expect)
                {
                    contiguous = false;
                }

                expect *= Math.Max(1, t.Size[i]);
                extent = t.Size[i] == 0 ? 0 : extent + ((t.Size[i] - 1) * t.Stride[i]);
            }

            if (t.Size.Any(d => d == 0))
            {
                extent = 0;
            }

            var start = t.StorageOffset * elem;
            var bytes = extent * elem;
            if (extent < 0 || t.StorageOffset < 0 || start + bytes > size || bytes < 0)
            {
                doc.Flag(AnomalySeverity.Error, "torch.view-bounds", $"tensor '{name}' view runs outside its storage '{key}'");
                doc.Tensors.Add(new TensorInfo(name, dtype, t.Size, doc.Path, -1, 0));
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
