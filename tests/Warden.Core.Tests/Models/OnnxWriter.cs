using System.Text;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>How an ONNX initializer stores its values.</summary>
public enum OnnxStorage
{
    /// <summary>raw_data (what torch.onnx and optimum write).</summary>
    Raw,

    /// <summary>float_data, packed (onnx.helper.make_tensor with a float list).</summary>
    FloatData,

    /// <summary>int32_data varints (fp16 bit patterns, onnx.helper's path for FLOAT16 lists).</summary>
    Int32Data,

    /// <summary>External data file beside the model (location/offset/length).</summary>
    External,
}

/// <summary>A minimal protobuf writer for onnx.proto's ModelProto/GraphProto/TensorProto (tests build ONNX files themselves).</summary>
public sealed class Proto
{
    private readonly List<byte> _s = [];

    public byte[] ToArray() => [.. _s];

    public Proto Varint(int field, ulong v) => Tag(field, 0).Raw(v);

    public Proto Bytes(int field, ReadOnlySpan<byte> b)
    {
        Tag(field, 2).Raw((ulong)b.Length);
        _s.AddRange(b);
        return this;
    }

    public Proto Text(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

    public Proto Message(int field, Proto m) => Bytes(field, m.ToArray());

    public Proto Tag(int field, int wire) => Raw(((ulong)field << 3) | (uint)wire);

    public Proto Raw(ulong v)
    {
        while (v >= 0x80)
        {
            _s.Add((byte)(v | 0x80));
            v >>= 7;
        }

        _s.Add((byte)v);
        return this;
    }

    public Proto Append(ReadOnlySpan<byte> b)
    {
        _s.AddRange(b);
        return this;
    }
}

public static class OnnxWriter
{
    public static ulong DataType(TensorDType t) => t switch
    {
        TensorDType.F32 => 1,
        TensorDType.F16 => 10,
        TensorDType.BF16 => 16,
        TensorDType.F64 => 11,
        TensorDType.I64 => 7,
        TensorDType.F8E4M3 => 17,
        _ => throw new ArgumentException(t.ToString()),
    };

    /// <summary>One TensorProto. <paramref name="external"/> receives external bytes (its current length is the offset).</summary>
    public static Proto Tensor(FixtureTensor t, OnnxStorage storage, MemoryStream? external = null, string location = "weights.bin", bool packedDims = false)
    {
        var p = new Proto();
        if (packedDims)
        {
            var dims = new Proto();
            foreach (var d in t.Shape)
            {
                dims.Raw((ulong)d);
            }

            p.Bytes(1, dims.ToArray());
        }
        else
        {
            foreach (var d in t.Shape)
            {
                p.Varint(1, (ulong)d);
            }
        }

        p.Varint(2, DataType(t.DType));
        var bytes = ModelWriters.Encode(t);
        switch (storage)
        {
            case OnnxStorage.FloatData:
                p.Text(8, t.Name).Bytes(4, bytes);
                break;
            case OnnxStorage.Int32Data:
                {
                    var packed = new Proto();
                    for (var i = 0; i + 1 < bytes.Length; i += 2)
                    {
                        packed.Raw(BitConverter.ToUInt16(bytes, i));
                    }

                    p.Text(8, t.Name).Bytes(5, packed.ToArray());
                    break;
                }

            case OnnxStorage.External:
                {
                    ArgumentNullException.ThrowIfNull(external);
                    var offset = external.Length;
                    external.Write(bytes);
                    p.Text(8, t.Name);
                    p.Message(13, new Proto().Text(1, "location").Text(2, location));
                    p.Message(13, new Proto().Text(1, "offset").Text(2, offset.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    p.Message(13, new Proto().Text(1, "length").Text(2, bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    p.Varint(14, 1);
                    break;
                }

            default:
                p.Text(8, t.Name).Bytes(9, bytes);
                break;
        }

        return p;
    }

    /// <summary>A ModelProto whose graph holds <paramref name="initializers"/> (and one node, skipped by readers of weights).</summary>
    public static byte[] Model(IEnumerable<Proto> initializers, Proto? extraGraphField = null, string producer = "pytorch")
    {
        var graph = new Proto();
        graph.Message(1, new Proto().Text(1, "x").Text(2, "y").Text(4, "Identity"));
        graph.Text(2, "main_graph");
        foreach (var i in initializers)
        {
            graph.Message(5, i);
        }

        if (extraGraphField is not null)
        {
            graph.Append(extraGraphField.ToArray());
        }

        return new Proto()
            .Varint(1, 8)
            .Text(2, producer)
            .Text(3, "2.5.0")
            .Message(7, graph)
            .Message(8, new Proto().Text(1, string.Empty).Varint(2, 17))
            .ToArray();
    }

    public static byte[] Model(IEnumerable<FixtureTensor> tensors, OnnxStorage storage = OnnxStorage.Raw, MemoryStream? external = null, string location = "weights.bin") =>
        Model(tensors.Select(t => Tensor(t, storage, external, location)));
}
