using System.Buffers.Binary;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Snapshots;

namespace Warden.Core.Tests.Snapshots;

/// <summary>
/// The shared snapshot reader: any sequence of fields written little-endian reads back exactly, at the offsets
/// they were written at; every truncation of it fails with <see cref="InvalidDataException"/> naming the offset
/// of the first field that does not fit; hostile lengths (negative, huge, overflowing) fail the same way and
/// never size an allocation or throw anything else.
/// </summary>
public sealed class SnapshotReaderTests
{
    private const int MaxString = 64;

    private enum Kind
    {
        Byte,
        Int32,
        UInt32,
        Int64,
        UInt64,
        Bytes,
        String,
        Ints,
        Skip,
    }

    /// <summary>One field: its kind, a value (numbers) and a length (bytes, strings, arrays, skips).</summary>
    private readonly record struct Field(Kind Kind, long Value, int Length);

    private static Gen<Field[]> Fields() =>
        Gen.Choose(0, 8).Zip(Gen.Choose(int.MinValue, int.MaxValue)).Zip(Gen.Choose(int.MinValue, int.MaxValue)).Zip(Gen.Choose(0, 40))
            .Select(t => new Field((Kind)t.Item1.Item1.Item1, ((long)t.Item1.Item1.Item2 << 32) ^ (uint)t.Item1.Item2, t.Item2))
            .ArrayOf()
            .Select(a => a.Take(30).ToArray());

    /// <summary>Writes the fields and returns the bytes and each field's start offset.</summary>
    private static (byte[] Bytes, long[] Starts) Write(Field[] fields)
    {
        var ms = new MemoryStream();
        var starts = new long[fields.Length];
        Span<byte> b = stackalloc byte[8];
        for (var i = 0; i < fields.Length; i++)
        {
            starts[i] = ms.Position;
            var f = fields[i];
            switch (f.Kind)
            {
                case Kind.Byte:
                    ms.WriteByte((byte)f.Value);
                    break;
                case Kind.Int32:
                case Kind.UInt32:
                    BinaryPrimitives.WriteInt32LittleEndian(b, (int)f.Value);
                    ms.Write(b[..4]);
                    break;
                case Kind.Int64:
                case Kind.UInt64:
                    BinaryPrimitives.WriteInt64LittleEndian(b, f.Value);
                    ms.Write(b);
                    break;
                case Kind.Bytes:
                case Kind.Skip:
                    ms.Write(Payload(f));
                    break;
                case Kind.String:
                    var s = Encoding.UTF8.GetBytes(Text(f));
                    BinaryPrimitives.WriteInt64LittleEndian(b, s.Length);
                    ms.Write(b);
                    ms.Write(s);
                    break;
                default:
                    for (var k = 0; k < f.Length; k++)
                    {
                        BinaryPrimitives.WriteInt32LittleEndian(b, (int)f.Value + k);
                        ms.Write(b[..4]);
                    }

                    break;
            }
        }

        return (ms.ToArray(), starts);
    }

    private static byte[] Payload(Field f) => [.. Enumerable.Range(0, f.Length).Select(k => (byte)(f.Value + k))];

    // Up to 40 characters, some outside ASCII (2- and 3-byte UTF-8), so the byte length differs from the count.
    private static string Text(Field f) => new([.. Enumerable.Range(0, f.Length % 21).Select(k => "aé€z"[(int)((f.Value + k) & 3)])]);

    /// <summary>Reads one field and says whether it is what was written.</summary>
    private static bool ReadBack(ref SnapshotReader r, Field f) => f.Kind switch
    {
        Kind.Byte => r.ReadByte() == (byte)f.Value,
        Kind.Int32 => r.ReadInt32() == (int)f.Value,
        Kind.UInt32 => r.ReadUInt32() == (uint)f.Value,
        Kind.Int64 => r.ReadInt64() == f.Value,
        Kind.UInt64 => r.ReadUInt64() == (ulong)f.Value,
        Kind.Bytes => r.ReadBytes(f.Length).SequenceEqual(Payload(f)),
        Kind.String => r.ReadString64(MaxString) == Text(f),
        Kind.Ints => r.ReadArray<int>(f.Length).SequenceEqual(Enumerable.Range(0, f.Length).Select(k => (int)f.Value + k).ToArray()),
        _ => Skipped(ref r, f.Length),
    };

    private static bool Skipped(ref SnapshotReader r, int n)
    {
        r.Skip(n);
        return true;
    }

    [Property(MaxTest = 300)]
    public Property Written_fields_read_back_at_their_offsets() =>
        Prop.ForAll(Fields().Zip(Gen.Choose(0, 1 << 20)).ToArbitrary(), p =>
        {
            var (fields, baseOffset) = p;
            var (bytes, starts) = Write(fields);
            var r = new SnapshotReader(bytes, "test", baseOffset);
            for (var i = 0; i < fields.Length; i++)
            {
                if (r.Offset != baseOffset + starts[i] || !ReadBack(ref r, fields[i]))
                {
                    return false.Label($"field {i} ({fields[i].Kind}) at {r.Offset}");
                }
            }

            r.ExpectEnd();
            return (r.Remaining == 0 && r.Offset == baseOffset + bytes.Length).Label("end");
        });

    [Property(MaxTest = 300)]
    public Property Every_truncation_names_the_first_field_that_does_not_fit() =>
        Prop.ForAll(Fields().Where(f => f.Length > 0).Zip(Gen.Choose(0, int.MaxValue)).Zip(Gen.Choose(0, 4096)).ToArbitrary(), p =>
        {
            var ((fields, cutSeed), baseOffset) = p;
            var (bytes, starts) = Write(fields);
            if (bytes.Length == 0)
            {
                return true.Label("nothing to cut");
            }

            var cut = cutSeed % bytes.Length;

            // The first field that ends past the cut is where reading must stop (a string stops at its length
            // prefix when the prefix itself is cut, at its bytes otherwise).
            var failing = Enumerable.Range(0, fields.Length).First(i => i == fields.Length - 1 || starts[i + 1] > cut);
            var r = new SnapshotReader(bytes.AsSpan(0, cut), "test", baseOffset);
            for (var i = 0; i < failing; i++)
            {
                ReadBack(ref r, fields[i]);
            }

            try
            {
                ReadBack(ref r, fields[failing]);
                return false.Label($"field {failing} ({fields[failing].Kind}) read past a cut at {cut}");
            }
            catch (InvalidDataException ex)
            {
                var at = (long)ex.Data[SnapshotReader.OffsetKey]!;
                var needed = (long)ex.Data[SnapshotReader.NeededKey]!;
                var left = (long)ex.Data[SnapshotReader.AvailableKey]!;
                var start = baseOffset + starts[failing];
                var prefixCut = fields[failing].Kind == Kind.String && cut - starts[failing] >= 8;
                var ok = (prefixCut ? at == start + 8 : at == start) && needed > left && at + left == baseOffset + cut
                    && ex.Message.Contains($"truncated at offset {at}", StringComparison.Ordinal);
                return ok.Label($"field {failing} ({fields[failing].Kind}) cut at {cut}: {ex.Message}");
            }
        });

    [Property(MaxTest = 200)]
    public Property Hostile_lengths_fail_closed(long length, PositiveInt size)
    {
        var data = new byte[(size.Get % 64) + 8];
        BinaryPrimitives.WriteInt64LittleEndian(data, length);
        var outcomes = new List<string>();
        foreach (var read in new Func<byte[], object>[]
        {
            d => new SnapshotReader(d, "test").ReadBytes(length).Length,
            d => new SnapshotReader(d, "test").ReadArray<long>(length).Length,
            d => new SnapshotReader(d, "test").ReadArray<int>(length).Length,
            d =>
            {
                var r = new SnapshotReader(d, "test");
                return r.ReadString64(MaxString);
            },
        })
        {
            try
            {
                read(data);
                outcomes.Add("read");
            }
            catch (InvalidDataException)
            {
                outcomes.Add("refused");
            }
        }

        // Only a length that fits what is there reads (the string's counts from after its 8-byte prefix).
        var fits = length >= 0 && length <= data.Length;
        var stringFits = length >= 0 && length <= MaxString && length <= data.Length - 8;
        var expected = new[] { fits, length >= 0 && length <= data.Length / 8, fits && length <= data.Length / 4, stringFits };
        return outcomes.Select(o => o == "read").SequenceEqual(expected).Label($"length {length} in {data.Length}: {string.Join(",", outcomes)}");
    }

    [Fact]
    public void A_count_whose_byte_size_overflows_reports_the_largest_need()
    {
        var ex = Assert.Throws<InvalidDataException>(() => new SnapshotReader(new byte[16], "test").ReadArray<ulong>(long.MaxValue / 2));
        Assert.Equal(long.MaxValue, (long)ex.Data[SnapshotReader.NeededKey]!);
        Assert.Contains("test is truncated at offset 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trailing_bytes_are_refused_where_the_end_is_expected()
    {
        var ex = Assert.Throws<InvalidDataException>(() =>
        {
            var r = new SnapshotReader(new byte[12], "test", 100);
            r.ReadInt64();
            r.ExpectEnd();
        });
        Assert.Contains("4 trailing bytes at offset 108", ex.Message, StringComparison.Ordinal);
    }
}
