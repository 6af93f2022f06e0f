using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>A tensor to write: values are rounded to <paramref name="DType"/> on the way out.</summary>
// Raw: encoded bytes written instead of encoding Values (GGUF block types the test packs itself).
public sealed record FixtureTensor(string Name, long[] Shape, float[] Values, TensorDType DType = TensorDType.F32, byte[]? Raw = null)
{
    public FixtureTensor As(TensorDType dtype) => this with { DType = dtype };

    public FixtureTensor Renamed(string name) => this with { Name = name };
}

/// <summary>Writers for every format the readers accept, so tests build real files (benign, deterministic).</summary>
public static class ModelWriters
{
    public static byte[] Encode(FixtureTensor t)
    {
        if (t.Raw is not null)
        {
            return t.Raw;
        }

        var n = t.Values.Length;
        switch (t.DType)
        {
            case TensorDType.F32:
                {
                    var b = new byte[n * 4];
                    for (var i = 0; i < n; i++)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), t.Values[i]);
                    }

                    return b;
                }

            case TensorDType.F16:
                {
                    var b = new byte[n * 2];
                    for (var i = 0; i < n; i++)
                    {
                        BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(i * 2), (Half)t.Values[i]);
                    }

                    return b;
                }

            case TensorDType.BF16:
                {
                    var b = new byte[n * 2];
                    var f = new float[n];
                    TensorValues.CastBF16(t.Values, f);
                    for (var i = 0; i < n; i++)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(i * 2), (ushort)(BitConverter.SingleToUInt32Bits(f[i]) >> 16));
                    }

                    return b;
                }

            case TensorDType.I64:
                {
                    var b = new byte[n * 8];
                    for (var i = 0; i < n; i++)
                    {
                        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(i * 8), (long)t.Values[i]);
                    }

                    return b;
                }

            case TensorDType.Bool:
            case TensorDType.U8:
                return [.. t.Values.Select(v => (byte)v)];
            case TensorDType.Q8_0:
                {
                    // One scale per 32 values (f16) + 32 signed bytes, as ggml quantises.
                    var b = new byte[n / 32 * 34];
                    for (var blk = 0; blk < n / 32; blk++)
                    {
                        var max = 0f;
                        for (var j = 0; j < 32; j++)
                        {
                            max = Math.Max(max, Math.Abs(t.Values[(blk * 32) + j]));
                        }

                        var d = max / 127f;
                        BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(blk * 34), (Half)d);
                        for (var j = 0; j < 32; j++)
                        {
                            b[(blk * 34) + 2 + j] = (byte)(sbyte)Math.Round(d == 0 ? 0 : t.Values[(blk * 32) + j] / d);
                        }
                    }

                    return b;
                }

            default:
                throw new NotSupportedException(t.DType.ToString());
        }
    }

    // ---------------------------------------------------------------- safetensors

    public static byte[] Safetensors(IEnumerable<FixtureTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, int padTo = 8)
    {
        var list = tensors.ToList();
        var buffers = list.Select(Encode).ToList();
        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
            }

            long at = 0;
            for (var i = 0; i < list.Count; i++)
            {
                w.WriteStartObject(list[i].Name);
                w.WriteString("dtype", TensorDTypes.ToSafetensors(list[i].DType));
                w.WriteStartArray("shape");
                foreach (var d in list[i].Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(at);
                w.WriteNumberValue(at + buffers[i].Length);
                w.WriteEndArray();
                w.WriteEndObject();
                at += buffers[i].Length;
            }

            w.WriteEndObject();
        }

        var h = header.ToArray().ToList();
        while ((8 + h.Count) % padTo != 0)
        {
            h.Add((byte)' ');
        }

        return RawSafetensors([.. h], buffers.SelectMany(b => b).ToArray());
    }

    public static byte[] RawSafetensors(byte[] header, byte[] data)
    {
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    public static byte[] RawSafetensors(string json, int dataBytes) => RawSafetensors(Encoding.UTF8.GetBytes(json), new byte[dataBytes]);

    // ---------------------------------------------------------------- pickle

    /// <summary>A pickle opcode writer (protocol 2 by default, protocol 4 with STACK_GLOBAL/MEMOIZE/FRAME).</summary>
    public sealed class Pickle
    {
        private readonly List<byte> _s = [];
        private int _memo;

        public Pickle Op(byte op)
        {
            _s.Add(op);
            return this;
        }

        public Pickle Raw(ReadOnlySpan<byte> b)
        {
            _s.AddRange(b);
            return this;
        }

        public Pickle Proto(int p) => Op(0x80).Op((byte)p);

        public Pickle Global(string module, string name) => Op((byte)'c').Raw(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));

        public Pickle StackGlobal(string module, string name) => Str4(module).Op(0x94).Str4(name).Op(0x94).Op(0x93);

        public Pickle Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            Op((byte)'X');
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, b.Length);
            return Raw(n).Raw(b);
        }

        public Pickle Str4(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            return Op(0x8c).Op((byte)b.Length).Raw(b);
        }

        public Pickle Num(long v)
        {
            if (v is >= 0 and < 256)
            {
                return Op((byte)'K').Op((byte)v);
            }

            if (v is >= int.MinValue and <= int.MaxValue)
            {
                Span<byte> b = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(b, (int)v);
                return Op((byte)'J').Raw(b);
            }

            Span<byte> l = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(l, v);
            return Op(0x8a).Op(8).Raw(l);
        }

        public Pickle Mark() => Op((byte)'(');

        public Pickle Tuple() => Op((byte)'t');

        public Pickle Put() => Op((byte)'q').Op((byte)_memo++);

        public Pickle Stop() => Op((byte)'.');

        public byte[] ToArray() => [.. _s];
    }

    /// <summary>Where a torch tensor's values live.</summary>
    public sealed record TorchTensor(string Name, string StorageKey, TensorDType DType, long Offset, long[] Size, long[] Stride);

    /// <summary>torch.save's data.pkl for a (possibly wrapped) state dict.</summary>
    public static byte[] StateDictPickle(IReadOnlyList<TorchTensor> tensors, IReadOnlyDictionary<string, long> storageNumel, bool protocol4 = false, string? wrapper = null, bool legacyIds = false)
    {
        var p = new Pickle().Proto(protocol4 ? 4 : 2);
        void G(string m, string n)
        {
            if (protocol4)
            {
                p.StackGlobal(m, n);
            }
            else
            {
                p.Global(m, n);
            }
        }

        void S(string s)
        {
            if (protocol4)
            {
                p.Str4(s);
            }
            else
            {
                p.Str(s);
            }
        }

        if (wrapper is not null)
        {
            p.Op((byte)'}').Put().Mark();
            S(wrapper);
        }

        G("collections", "OrderedDict");
        p.Put().Op((byte)')').Op((byte)'R').Put().Mark();
        foreach (var t in tensors)
        {
            S(t.Name);
            G("torch._utils", "_rebuild_tensor_v2");
            p.Mark();
            p.Mark();
            S("storage");
            G("torch", TensorDTypes.ToTorchStorage(t.DType));
            S(t.StorageKey);
            S("cpu");
            p.Num(storageNumel[t.StorageKey]);
            if (legacyIds)
            {
                p.Op((byte)'N');
            }

            p.Tuple().Op((byte)'Q');
            p.Num(t.Offset);
            p.Mark();
            foreach (var d in t.Size)
            {
                p.Num(d);
            }

            p.Tuple().Mark();
            foreach (var d in t.Stride)
            {
                p.Num(d);
            }

            p.Tuple();
            p.Op(0x89);
            G("collections", "OrderedDict");
            p.Op((byte)')').Op((byte)'R');
            p.Tuple().Op((byte)'R');
        }

        p.Op((byte)'u');
        if (wrapper is not null)
        {
            S("global_step");
            p.Num(1234);
            p.Op((byte)'u');
        }

        return p.Stop().ToArray();
    }

    // ---------------------------------------------------------------- zip

    public sealed record ZipEntry(string Name, byte[] Data)
    {
        public bool Deflate { get; init; }

        public string? LocalName { get; init; }

        public int Flags { get; init; }

        public int? LocalFlags { get; init; }

        public bool BadCrc { get; init; }
    }

    /// <summary>A zip as torch writes it: stored members, data 64-byte aligned with an 'FB' extra field.</summary>
    public static byte[] Zip(IEnumerable<ZipEntry> entries)
    {
        using var s = new MemoryStream();
        var central = new MemoryStream();
        var count = 0;
        foreach (var e in entries)
        {
            count++;
            var data = e.Data;
            var crc = Crc32.HashToUInt32(data) ^ (e.BadCrc ? 0xFFu : 0u);
            if (e.Deflate)
            {
                using var c = new MemoryStream();
                using (var d = new DeflateStream(c, CompressionLevel.Fastest, leaveOpen: true))
                {
                    d.Write(data);
                }

                data = c.ToArray();
            }

            var name = Encoding.UTF8.GetBytes(e.Name);
            var localName = Encoding.UTF8.GetBytes(e.LocalName ?? e.Name);
            var offset = s.Position;
            var headerEnd = offset + 30 + localName.Length + 4;
            var pad = (int)((64 - (headerEnd % 64)) % 64);
            var extra = new byte[4 + pad];
            BinaryPrimitives.WriteUInt16LittleEndian(extra, 0x4246); // "FB"
            BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), (ushort)pad);
            extra.AsSpan(4).Fill((byte)'Z');
            var method = (ushort)(e.Deflate ? 8 : 0);
            var h = new byte[30].AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 20);
            BinaryPrimitives.WriteUInt16LittleEndian(h[6..], (ushort)(e.LocalFlags ?? e.Flags));
            BinaryPrimitives.WriteUInt16LittleEndian(h[8..], method);
            BinaryPrimitives.WriteUInt16LittleEndian(h[12..], 0x21);
            BinaryPrimitives.WriteUInt32LittleEndian(h[14..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h[22..], (uint)e.Data.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)localName.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)extra.Length);
            s.Write(h);
            s.Write(localName);
            s.Write(extra);
            s.Write(data);

            var c2 = new byte[46].AsSpan();
            c2.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(c2, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c2[4..], 0x031e);
            BinaryPrimitives.WriteUInt16LittleEndian(c2[6..], 20);
            BinaryPrimitives.WriteUInt16LittleEndian(c2[8..], (ushort)e.Flags);
            BinaryPrimitives.WriteUInt16LittleEndian(c2[10..], method);
            BinaryPrimitives.WriteUInt16LittleEndian(c2[14..], 0x21);
            BinaryPrimitives.WriteUInt32LittleEndian(c2[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c2[20..], (uint)data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c2[24..], (uint)e.Data.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(c2[28..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c2[42..], (uint)offset);
            central.Write(c2);
            central.Write(name);
        }

        var cdOffset = s.Position;
        var cd = central.ToArray();
        s.Write(cd);
        Span<byte> eocd = stackalloc byte[22];
        eocd.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(eocd, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(eocd[8..], (ushort)count);
        BinaryPrimitives.WriteUInt16LittleEndian(eocd[10..], (ushort)count);
        BinaryPrimitives.WriteUInt32LittleEndian(eocd[12..], (uint)cd.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(eocd[16..], (uint)cdOffset);
        s.Write(eocd);
        return s.ToArray();
    }

    /// <summary>Options for <see cref="TorchZip"/>.</summary>
    public sealed record TorchOptions
    {
        public string Prefix { get; init; } = "archive";

        public bool Protocol4 { get; init; }

        public string? Wrapper { get; init; }

        public bool DeflatePickle { get; init; }

        public bool DeflateStorages { get; init; }

        public Func<List<ZipEntry>, List<ZipEntry>>? Tamper { get; init; }
    }

    /// <summary>A torch.save zip of contiguous tensors, one storage each.</summary>
    public static byte[] TorchZip(IReadOnlyList<FixtureTensor> tensors, TorchOptions? options = null)
    {
        options ??= new TorchOptions();
        var refs = new List<TorchTensor>();
        var numel = new Dictionary<string, long>();
        var entries = new List<ZipEntry>();
        var storages = new List<ZipEntry>();
        for (var i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            var key = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            refs.Add(new TorchTensor(t.Name, key, t.DType, 0, t.Shape, ContiguousStrides(t.Shape)));
            numel[key] = t.Values.Length;
            storages.Add(new ZipEntry($"{options.Prefix}/data/{key}", Encode(t)) { Deflate = options.DeflateStorages });
        }

        entries.Add(new ZipEntry($"{options.Prefix}/data.pkl", StateDictPickle(refs, numel, options.Protocol4, options.Wrapper)) { Deflate = options.DeflatePickle });
        entries.Add(new ZipEntry($"{options.Prefix}/byteorder", "little"u8.ToArray()));
        entries.AddRange(storages);
        entries.Add(new ZipEntry($"{options.Prefix}/version", "3\n"u8.ToArray()));
        entries.Add(new ZipEntry($"{options.Prefix}/.data/serialization_id", "1234567890"u8.ToArray()));
        return Zip(options.Tamper?.Invoke(entries) ?? entries);
    }

    public static long[] ContiguousStrides(long[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (var i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }

        return s;
    }

    // ---------------------------------------------------------------- legacy torch

    public static readonly byte[] LegacyMagic = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E];

    /// <summary>torch's pre-1.6 format: magic, 1001, sys_info, object, key list, storages with int64 counts.</summary>
    public static byte[] LegacyTorch(IReadOnlyList<FixtureTensor> tensors, byte[]? magicPickle = null)
    {
        using var s = new MemoryStream();
        s.Write(magicPickle ?? LegacyMagic);
        s.Write(new Pickle().Proto(2).Op((byte)'M').Raw([0xE9, 0x03]).Stop().ToArray());
        var sys = new Pickle().Proto(2).Op((byte)'}').Mark().Str("protocol_version").Op((byte)'M').Raw([0xE9, 0x03]).Str("little_endian").Op(0x88)
            .Str("type_sizes").Op((byte)'}').Mark().Str("short").Num(2).Str("int").Num(4).Str("long").Num(4).Op((byte)'u').Op((byte)'u').Stop();
        s.Write(sys.ToArray());
        var refs = tensors.Select((t, i) => new TorchTensor(t.Name, (1000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), t.DType, 0, t.Shape, ContiguousStrides(t.Shape))).ToList();
        var numel = refs.Zip(tensors).ToDictionary(x => x.First.StorageKey, x => (long)x.Second.Values.Length);
        s.Write(StateDictPickle(refs, numel, legacyIds: true));
        var keys = new Pickle().Proto(2).Op((byte)']').Mark();
        foreach (var r in refs.OrderBy(r => r.StorageKey, StringComparer.Ordinal))
        {
            keys.Str(r.StorageKey);
        }

        s.Write(keys.Op((byte)'e').Stop().ToArray());
        foreach (var (r, t) in refs.Zip(tensors).OrderBy(x => x.First.StorageKey, StringComparer.Ordinal))
        {
            var n = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(n, t.Values.Length);
            s.Write(n);
            s.Write(Encode(t));
        }

        return s.ToArray();
    }

    // ---------------------------------------------------------------- GGUF

    public sealed record GgufKv(string Key, uint Type, object Value);

    public static byte[] Gguf(IReadOnlyList<FixtureTensor> tensors, IReadOnlyList<GgufKv> kvs, int alignment = 32, uint version = 3)
    {
        using var s = new MemoryStream();
        using var w = new BinaryWriter(s);
        w.Write(0x46554747u);
        w.Write(version);
        w.Write((ulong)tensors.Count);
        w.Write((ulong)kvs.Count);
        void Str(string x)
        {
            var b = Encoding.UTF8.GetBytes(x);
            w.Write((ulong)b.Length);
            w.Write(b);
        }

        void Value(uint type, object v)
        {
            switch (type)
            {
                case 0: w.Write((byte)v); break;
                case 1: w.Write((sbyte)v); break;
                case 2: w.Write((ushort)v); break;
                case 3: w.Write((short)v); break;
                case 4: w.Write((uint)v); break;
                case 5: w.Write((int)v); break;
                case 6: w.Write((float)v); break;
                case 7: w.Write((bool)v ? (byte)1 : (byte)0); break;
                case 8: Str((string)v); break;
                case 10: w.Write((ulong)v); break;
                case 11: w.Write((long)v); break;
                case 12: w.Write((double)v); break;
                case 9:
                    {
                        var (itemType, items) = ((uint, object[]))v;
                        w.Write(itemType);
                        w.Write((ulong)items.Length);
                        foreach (var i in items)
                        {
                            Value(itemType, i);
                        }

                        break;
                    }
            }
        }

        foreach (var kv in kvs)
        {
            Str(kv.Key);
            w.Write(kv.Type);
            Value(kv.Type, kv.Value);
        }

        var datas = tensors.Select(Encode).ToList();
        ulong offset = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            Str(t.Name);
            w.Write((uint)t.Shape.Length);
            foreach (var d in t.Shape.Reverse())
            {
                w.Write((ulong)d);
            }

            w.Write(t.DType switch
            {
                TensorDType.F32 => 0u,
                TensorDType.F16 => 1u,
                TensorDType.Q4_0 => 2u,
                TensorDType.Q4_1 => 3u,
                TensorDType.Q5_0 => 6u,
                TensorDType.Q5_1 => 7u,
                TensorDType.Q8_0 => 8u,
                TensorDType.Q4_K => 12u,
                TensorDType.Q5_K => 13u,
                TensorDType.Q6_K => 14u,
                TensorDType.Q2_K => 10u,
                TensorDType.Q3_K => 11u,
                TensorDType.IQ4_NL => 20u,
                TensorDType.IQ4_XS => 23u,
                TensorDType.BF16 => 30u,
                _ => throw new NotSupportedException(),
            });
            w.Write(offset);
            offset += (ulong)((datas[i].Length + alignment - 1) / alignment * alignment);
        }

        while (s.Position % alignment != 0)
        {
            w.Write((byte)0);
        }

        foreach (var d in datas)
        {
            w.Write(d);
            while (s.Position % alignment != 0)
            {
                w.Write((byte)0);
            }
        }

        w.Flush();
        return s.ToArray();
    }
}
