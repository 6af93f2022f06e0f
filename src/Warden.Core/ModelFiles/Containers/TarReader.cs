using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>A tar member: its name as Python's tarfile reports it and where its bytes are.</summary>
/// <param name="Name">Name (GNU long names, pax <c>path</c> and ustar prefixes applied).</param>
/// <param name="Type">Type flag ('0' file, '1' hard link, '2' symlink, '5' folder…).</param>
/// <param name="DataOffset">Absolute offset of the data.</param>
/// <param name="Size">Bytes of data.</param>
/// <param name="LinkName">Target of a link.</param>
public sealed record TarMember(string Name, byte Type, long DataOffset, long Size, string LinkName);

/// <summary>
/// Tar archives as Python's <c>tarfile</c> reads them (torch's <c>_legacy_load</c> tries <c>tarfile.open</c> first on
/// every non-zip file), and pre-0.4 torch tar checkpoints: <c>storages</c> (a count pickle, then per storage an
/// argument pickle followed by raw data, then a views pickle), <c>tensors</c> (a count pickle, then per tensor an
/// argument pickle followed by binary shape records) and <c>pickle</c>. Every pickle stream of every member is
/// scanned; the interleaved binary parts are stepped over exactly as the loader steps over them.
/// </summary>
public static class TarReader
{
    private const int Block = 512;

    /// <summary>
    /// True when the first 512-byte block is a header <c>tarfile.open</c> accepts (its checksum matches), i.e.
    /// the file would be opened as a tar before any pickle interpretation.
    /// </summary>
    public static bool IsTarHeader(ReadOnlySpan<byte> head) => head.Length >= Block && ValidHeader(head[..Block]);

    /// <summary>Members, in order; reading stops at the end marker or the first bad header after the first (as tarfile does).</summary>
    public static List<TarMember> ReadMembers(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        ArgumentNullException.ThrowIfNull(doc);
        ArgumentNullException.ThrowIfNull(limits);
        var members = new List<TarMember>();
        var header = new byte[Block];
        long at = 0;
        string? longName = null;
        string? paxPath = null;
        while (at + Block <= length)
        {
            ZipDirectory.ReadExactly(handle, header, at);
            if (!ValidHeader(header))
            {
                if (at == 0)
                {
                    throw new ModelFormatException("tar: the first header's checksum does not match");
                }

                if (header.AsSpan().IndexOfAnyExcept((byte)0) >= 0)
                {
                    doc.Flag(AnomalySeverity.Warning, "tar.bad-header", $"header at {at} is invalid; members after it are not read (tarfile stops there too)");
                }

                break;
            }

            if (!TryOctal(header.AsSpan(124, 12), out var size) || size < 0)
            {
                doc.Flag(AnomalySeverity.Error, "tar.bad-size", $"header at {at} has an unreadable size");
                break;
            }

            var type = header[156];
            var dataAt = at + Block;
            var blocks = (size + Block - 1) / Block;
            if (size > length - dataAt)
            {
                doc.Flag(AnomalySeverity.Error, "tar.truncated", $"member at {at} declares {size} bytes, past the end of the file");
                size = length - dataAt;
                blocks = (size + Block - 1) / Block;
            }

            var name = Text(header.AsSpan(0, 100));
            var magic = header.AsSpan(257, 6);
            if (magic.SequenceEqual("ustar\0"u8) && header[345] != 0 && type is not ((byte)'L' or (byte)'K'))
            {
                name = Text(header.AsSpan(345, 155)) + "/" + name;
            }

            switch (type)
            {
                case (byte)'L':
                    longName = ReadText(handle, dataAt, size);
                    break;
                case (byte)'x':
                    paxPath = PaxPath(ReadText(handle, dataAt, size)) ?? paxPath;
                    break;
                case (byte)'g' or (byte)'K':
                    break;
                default:
                    name = paxPath ?? longName ?? name;
                    if (type == (byte)'5' || ((type is 0 or (byte)'0') && name.EndsWith('/')))
                    {
                        name = name.TrimEnd('/');
                        type = (byte)'5';
                    }

                    members.Add(new TarMember(name, type, dataAt, size, Text(header.AsSpan(157, 100))));
                    longName = null;
                    paxPath = null;
                    break;
            }

            if (members.Count > limits.MaxZipEntries)
            {
                throw new ModelFormatException($"tar: more than {limits.MaxZipEntries} members");
            }

            at = dataAt + (blocks * Block);
        }

        return members;
    }

    /// <summary>
    /// Scans every member of a tar: the legacy-checkpoint members by their layout, every other member whose first
    /// byte a pickle could start with as a run of pickle streams. Sets the format when it is a torch checkpoint.
    /// </summary>
    internal static void Scan(SafeFileHandle handle, List<TarMember> members, ModelDocument doc, ModelLimits limits)
    {
        var byName = new Dictionary<string, TarMember>(StringComparer.Ordinal);
        foreach (var m in members)
        {
            byName[m.Name] = m; // tarfile.getmember returns the last member of a name
        }

        Span<byte> first = stackalloc byte[1];
        foreach (var m in members)
        {
            var data = m;
            if (m.Type == (byte)'1')
            {
                // tarfile extracts a hard link from its target's bytes.
                if (!byName.TryGetValue(m.LinkName, out var target) || target.Type is not (0 or (byte)'0' or (byte)'7'))
                {
                    continue;
                }

                data = target with { Name = m.Name };
            }
            else if (m.Type == (byte)'2')
            {
                if (m.Name is "storages" or "tensors" or "pickle")
                {
                    AddFinding(doc, m.Name, new PickleFinding(PickleVerdict.Dangerous, "container", null, null, m.DataOffset,
                        $"legacy tar member '{m.Name}' is a symbolic link to '{m.LinkName}': torch would unpickle whatever it points at"));
                }

                continue;
            }
            else if (m.Type is not (0 or (byte)'0' or (byte)'7'))
            {
                continue;
            }

            if (data.Size == 0)
            {
                continue;
            }

            var isLoaded = ReferenceEquals(byName.GetValueOrDefault(m.Name), m);
            using var reader = new PickleStreamReader(handle, data.DataOffset, data.DataOffset + data.Size, limits);
            var scan = new StreamScan();
            if (isLoaded && m.Name == "storages")
            {
                Storages(handle, reader, data, scan);
            }
            else if (isLoaded && m.Name == "tensors")
            {
                Tensors(handle, reader, data, scan);
            }
            else
            {
                ZipDirectory.ReadExactly(handle, first, data.DataOffset);
                var named = m.Name is "pickle" or "sys_info" || m.Name.EndsWith(".pkl", StringComparison.OrdinalIgnoreCase);
                if (!named && !PickleOpcodes.IsOpcode(first[0]))
                {
                    continue;
                }

                reader.ScanUntilEnd(data.DataOffset, "tar:" + m.Name, scan, named);
            }

            if (scan.Any)
            {
                doc.Pickles.Add(scan.ToReport("tar:" + m.Name));
            }
        }

        if (byName.ContainsKey("storages") || byName.ContainsKey("tensors") || byName.ContainsKey("pickle"))
        {
            doc.Flag(AnomalySeverity.Info, "torch.legacy-tar", "pre-0.4 torch tar checkpoint: every pickle stream scanned; tensors are not indexed for fingerprints");
        }
    }

    // storages: count pickle; per storage (key, location, storage_type) pickle + int64 element count + data; views pickle.
    private static void Storages(SafeFileHandle handle, PickleStreamReader reader, TarMember m, StreamScan scan)
    {
        var end = m.DataOffset + m.Size;
        var (r, at) = Run(reader, m.DataOffset, "tar:storages", scan);
        if (!r.Report.Complete)
        {
            return;
        }

        var count = r.Root as long? ?? 0;
        Span<byte> n8 = stackalloc byte[8];
        for (long i = 0; i < count && at < end; i++)
        {
            (r, at) = Run(reader, at, "tar:storages", scan);
            if (!r.Report.Complete)
            {
                return;
            }

            var elem = r.Root is PyTuple { Items: [_, _, PyGlobal g] } ? TensorDTypes.Size(TensorDTypes.FromTorchStorage(g.Name)) : 0;
            if (elem == 0)
            {
                // The loader would size the raw data by this type; without it the next stream cannot be found.
                scan.Add(new PickleFinding(PickleVerdict.Dangerous, "container", null, null, at,
                    "storage arguments do not name a known storage type: the streams after it cannot be located and are unscanned"));
                scan.Complete = false;
                return;
            }

            if (at + 8 > end)
            {
                return;
            }

            ZipDirectory.ReadExactly(handle, n8, at);
            var numel = BinaryPrimitives.ReadInt64LittleEndian(n8);
            if (numel < 0 || numel > (end - at - 8) / elem)
            {
                return; // the loader fails reading it too
            }

            at += 8 + (numel * elem);
        }

        if (at < end)
        {
            reader.ScanUntilEnd(at, "tar:storages", scan, firstIsPickle: true);
        }
    }

    // tensors: count pickle; per tensor (key, storage_id, type) pickle + int32 ndim + 4 bytes + ndim sizes + ndim strides + offset.
    private static void Tensors(SafeFileHandle handle, PickleStreamReader reader, TarMember m, StreamScan scan)
    {
        var end = m.DataOffset + m.Size;
        var (r, at) = Run(reader, m.DataOffset, "tar:tensors", scan);
        if (!r.Report.Complete)
        {
            return;
        }

        var count = r.Root as long? ?? 0;
        Span<byte> n4 = stackalloc byte[4];
        for (long i = 0; i < count && at < end; i++)
        {
            (r, at) = Run(reader, at, "tar:tensors", scan);
            if (!r.Report.Complete || at + 8 > end)
            {
                return;
            }

            ZipDirectory.ReadExactly(handle, n4, at);
            var ndim = BinaryPrimitives.ReadInt32LittleEndian(n4);
            var record = 8L + (16L * ndim) + 8;
            if (ndim < 0 || record > end - at)
            {
                return;
            }

            at += record;
        }

        if (at < end)
        {
            // Nothing more is read by torch; any further stream is scanned as a loader looping on pickle.load would.
            reader.ScanUntilEnd(at, "tar:tensors", scan, firstIsPickle: false);
        }
    }

    private static (PickleResult Result, long End) Run(PickleStreamReader reader, long at, string member, StreamScan scan)
    {
        var (r, end) = reader.RunAt(at, member);
        scan.Streams++;
        scan.Merge(r.Report);
        return (r, end);
    }

    private static void AddFinding(ModelDocument doc, string member, PickleFinding f) =>
        doc.Pickles.Add(new PickleReport("tar:" + member, [f], [], 0, false));

    // tarfile: the checksum is the sum of the header's bytes with the checksum field read as spaces, unsigned or signed.
    private static bool ValidHeader(ReadOnlySpan<byte> h)
    {
        if (h.IndexOfAnyExcept((byte)0) < 0 || !TryOctal(h.Slice(148, 8), out var stored))
        {
            return false;
        }

        long unsigned = 0, signed = 0;
        for (var i = 0; i < Block; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : h[i];
            unsigned += b;
            signed += (sbyte)b;
        }

        return stored == unsigned || stored == signed;
    }

    // tarfile.nti: base-256 when the first byte is 0x80/0xff, else octal digits up to a NUL, spaces trimmed.
    private static bool TryOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if (field.Length > 0 && field[0] is 0x80 or 0xff)
        {
            if (field[0] == 0xff)
            {
                return false; // negative sizes mean nothing to a reader
            }

            foreach (var b in field[1..])
            {
                if (value > (long.MaxValue >> 8))
                {
                    return false;
                }

                value = (value << 8) | b;
            }

            return true;
        }

        var nul = field.IndexOf((byte)0);
        var text = (nul < 0 ? field : field[..nul]).Trim((byte)' ');
        if (text.Length == 0)
        {
            return true;
        }

        foreach (var b in text)
        {
            if (b is < (byte)'0' or > (byte)'7' || value > (long.MaxValue >> 3))
            {
                return false;
            }

            value = (value << 3) | (long)(b - '0');
        }

        return true;
    }

    private static string Text(ReadOnlySpan<byte> field)
    {
        var nul = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? field : field[..nul]);
    }

    private static string ReadText(SafeFileHandle handle, long at, long size)
    {
        var buf = new byte[Math.Min(size, 1 << 16)];
        ZipDirectory.ReadExactly(handle, buf, at);
        return Text(buf);
    }

    // pax records: "LEN key=value\n"; only the path matters here.
    private static string? PaxPath(string records)
    {
        foreach (var line in records.Split('\n'))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && line.AsSpan(space + 1).StartsWith("path=", StringComparison.Ordinal))
            {
                return line[(space + 6)..];
            }
        }

        return null;
    }
}
