using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Writers for the container classes of the sniffing tests: tar archives (tarfile-valid headers), pre-0.4 torch
/// tar checkpoints, and hostile pickles that only <em>name</em> a non-allowlisted global (nothing in the tests ever
/// unpickles them).
/// </summary>
public static class ContainerWriters
{
    /// <summary>Globals a hostile fixture names; none is allowlisted.</summary>
    public static readonly (string Module, string Name)[] HostileGlobals = [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("posix", "system")];

    /// <summary>A protocol-0 stream that calls <paramref name="module"/>.<paramref name="name"/>('true').</summary>
    public static byte[] Payload(string module = "os", string name = "system") => Encoding.ASCII.GetBytes($"c{module}\n{name}\n(S'true'\ntR.");

    /// <summary>A protocol-2 stream doing the same through BINUNICODE + TUPLE1 + REDUCE.</summary>
    public static byte[] Payload2(string module = "os", string name = "system") =>
        new ModelWriters.Pickle().Proto(2).Global(module, name).Str("true").Op(0x85).Op((byte)'R').Stop().ToArray();

    /// <summary>A tar member.</summary>
    public sealed record TarEntry(string Name, byte[] Data, byte Type = (byte)'0', string LinkName = "");

    /// <summary>A ustar archive tarfile accepts (correct checksums, 512-byte blocks, two zero blocks at the end).</summary>
    public static byte[] Tar(IEnumerable<TarEntry> entries)
    {
        using var s = new MemoryStream();
        foreach (var e in entries)
        {
            s.Write(TarHeader(e.Name, e.Data.Length, e.Type, e.LinkName));
            s.Write(e.Data);
            s.Write(new byte[(512 - (e.Data.Length % 512)) % 512]);
        }

        s.Write(new byte[1024]);
        return s.ToArray();
    }

    /// <summary>One ustar header block with its checksum.</summary>
    public static byte[] TarHeader(string name, long size, byte type = (byte)'0', string linkName = "")
    {
        var h = new byte[512];
        var n = Encoding.UTF8.GetBytes(name);
        n.AsSpan(0, Math.Min(n.Length, 100)).CopyTo(h);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(h, 124);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 136);
        h[156] = type;
        Encoding.UTF8.GetBytes(linkName).CopyTo(h, 157);
        "ustar\0"u8.CopyTo(h.AsSpan(257));
        "00"u8.CopyTo(h.AsSpan(263));
        h.AsSpan(148, 8).Fill((byte)' ');
        long sum = 0;
        foreach (var b in h)
        {
            sum += b;
        }

        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return h;
    }

    /// <summary>Where a hostile stream goes in a legacy tar checkpoint.</summary>
    public enum TarSlot
    {
        None,
        StoragesCount,
        StorageArgs,
        StorageViews,
        AfterViews,
        TensorsCount,
        TensorArgs,
        AfterTensors,
        PickleMember,
        SysInfo,
        ExtraMember,
        ShadowedPickle,
    }

    /// <summary>
    /// A pre-0.4 torch tar checkpoint of <paramref name="storages"/> float storages and one tensor per storage,
    /// laid out as torch's <c>_legacy_save</c> did; <paramref name="slot"/> replaces or adds one stream with
    /// <paramref name="payload"/>.
    /// </summary>
    public static byte[] LegacyTar(int storages, TarSlot slot, byte[] payload)
    {
        byte[] Or(TarSlot s, byte[] benign) => slot == s ? payload : benign;
        var sys = new ModelWriters.Pickle().Proto(2).Op((byte)'}').Mark().Str("protocol_version").Op((byte)'M').Raw([0xE9, 0x03])
            .Str("little_endian").Op(0x88).Op((byte)'u').Stop().ToArray();

        using var st = new MemoryStream();
        st.Write(Or(TarSlot.StoragesCount, Number(storages)));
        for (var i = 0; i < storages; i++)
        {
            var key = (1000 + i).ToString(CultureInfo.InvariantCulture);
            st.Write(i == storages / 2 ? Or(TarSlot.StorageArgs, StorageArgs(key)) : StorageArgs(key));
            var count = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(count, 4);
            st.Write(count);

            // Raw float data that itself looks like pickle opcodes: the scanner must step over it, not parse it.
            st.Write(Encoding.ASCII.GetBytes("cos\nsystem\n(S'tr"));
        }

        st.Write(Or(TarSlot.StorageViews, new ModelWriters.Pickle().Proto(2).Op((byte)']').Stop().ToArray()));
        if (slot == TarSlot.AfterViews)
        {
            st.Write(payload);
        }

        using var te = new MemoryStream();
        te.Write(Or(TarSlot.TensorsCount, Number(storages)));
        for (var i = 0; i < storages; i++)
        {
            var key = (2000 + i).ToString(CultureInfo.InvariantCulture);
            var storageKey = (1000 + i).ToString(CultureInfo.InvariantCulture);
            te.Write(i == storages / 2 ? Or(TarSlot.TensorArgs, TensorArgs(key, storageKey)) : TensorArgs(key, storageKey));
            var rec = new byte[8 + 16 + 8];
            BinaryPrimitives.WriteInt32LittleEndian(rec, 1);
            BinaryPrimitives.WriteInt64LittleEndian(rec.AsSpan(8), 4);
            BinaryPrimitives.WriteInt64LittleEndian(rec.AsSpan(16), 1);
            te.Write(rec);
        }

        if (slot == TarSlot.AfterTensors)
        {
            te.Write(payload);
        }

        var pickle = new ModelWriters.Pickle().Proto(2).Op((byte)'}').Stop().ToArray();
        var entries = new List<TarEntry>
        {
            new("sys_info", Or(TarSlot.SysInfo, sys)),
        };
        if (slot == TarSlot.ShadowedPickle)
        {
            // tarfile.getmember returns the last member of a name: the first copy is never loaded, but is scanned.
            entries.Add(new TarEntry("pickle", payload));
        }

        entries.Add(new TarEntry("pickle", Or(TarSlot.PickleMember, pickle)));
        entries.Add(new TarEntry("storages", st.ToArray()));
        entries.Add(new TarEntry("tensors", te.ToArray()));
        if (slot == TarSlot.ExtraMember)
        {
            entries.Add(new TarEntry("extra", payload));
        }

        return Tar(entries);
    }

    /// <summary>A BININT stream.</summary>
    public static byte[] Number(long v) => new ModelWriters.Pickle().Proto(2).Num(v).Stop().ToArray();

    private static byte[] StorageArgs(string key) =>
        new ModelWriters.Pickle().Proto(2).Str(key).Str("cpu").Global("torch", "FloatStorage").Op(0x87).Stop().ToArray();

    private static byte[] TensorArgs(string key, string storage) =>
        new ModelWriters.Pickle().Proto(2).Str(key).Str(storage).Global("torch", "FloatTensor").Op(0x87).Stop().ToArray();

    /// <summary>Self-contained benign fragments (push, then pop back to an empty stack), each starting with a different opcode.</summary>
    public static readonly byte[][] BenignFragments =
    [
        "}0"u8.ToArray(), "N0"u8.ToArray(), "K\u00010"u8.ToArray(), "]0"u8.ToArray(), ")0"u8.ToArray(), "(1"u8.ToArray(),
        [0x88, (byte)'0'], [0x89, (byte)'0'], "I1\n0"u8.ToArray(), "L7\n0"u8.ToArray(), "F1.5\n0"u8.ToArray(),
        [(byte)'J', 1, 0, 0, 0, (byte)'0'], [(byte)'M', 1, 0, (byte)'0'], [(byte)'G', 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, (byte)'0'],
        [(byte)'U', 1, (byte)'a', (byte)'0'], [(byte)'X', 1, 0, 0, 0, (byte)'a', (byte)'0'], "Va\n0"u8.ToArray(), "S'a'\n0"u8.ToArray(),
        [(byte)'C', 1, (byte)'a', (byte)'0'], [(byte)'B', 1, 0, 0, 0, (byte)'a', (byte)'0'], [0x8c, 1, (byte)'a', (byte)'0'],
        [0x8f, (byte)'0'], "(t0"u8.ToArray(), "(l0"u8.ToArray(), "(d0"u8.ToArray(), "N200"u8.ToArray(), "}p1\n0"u8.ToArray(),
        [(byte)'N', (byte)'q', 3, (byte)'0'], [(byte)'N', (byte)'r', 3, 0, 0, 0, (byte)'0'], [(byte)'N', 0x85, (byte)'0'],
        [(byte)'N', (byte)'N', 0x86, (byte)'0'], [(byte)'N', (byte)'N', (byte)'N', 0x87, (byte)'0'], [(byte)'(', (byte)'N', 0x91, (byte)'0'],
        [(byte)'K', 2, 0x8a, 1, 5, (byte)'0', (byte)'0'], [0x80, 2, (byte)'N', (byte)'0'], [(byte)'T', 1, 0, 0, 0, (byte)'a', (byte)'0'],
        [0x8d, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'a', (byte)'0'], [0x8e, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'a', (byte)'0'],
        [0x96, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'a', (byte)'0'],
    ];

    /// <summary>A random benign prefix of 1..4 fragments (its first byte varies over the opcode table) then <paramref name="payload"/>.</summary>
    public static byte[] PrefixedPayload(Random rng, byte[] payload, out byte first)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var parts = new List<byte>();
        var n = rng.Next(1, 5);
        for (var i = 0; i < n; i++)
        {
            parts.AddRange(BenignFragments[rng.Next(BenignFragments.Length)]);
        }

        first = parts[0];
        parts.AddRange(payload);
        return [.. parts];
    }

    // A GGUF v3 with one F32 tensor of the given (PyTorch-order) dims and no data.
    public static byte[] GgufDims(long[] dims)
    {
        using var s = new MemoryStream();
        using var w = new BinaryWriter(s);
        w.Write(0x46554747u);
        w.Write(3u);
        w.Write(1UL);
        w.Write(0UL);
        w.Write(1UL);
        w.Write((byte)'w');
        w.Write((uint)dims.Length);
        foreach (var d in dims.Reverse())
        {
            w.Write((ulong)d);
        }

        w.Write(0u);
        w.Write(0UL);
        w.Flush();
        return [.. s.ToArray(), .. new byte[Math.Max(0, 32 - (int)(s.Length % 32))]];
    }
}
