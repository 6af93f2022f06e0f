using System.Buffers.Binary;

namespace Warden.Fuzz;

/// <summary>
/// AFL-style havoc mutations: bit flips, interesting values (as bytes, 16/32-bit little and big endian, the sizes and
/// counts parsers trust), arithmetic, deletes, inserts, block duplication and splicing with another corpus entry.
/// Deterministic for a given <see cref="Random"/> seed so that a smoke run is reproducible.
/// </summary>
public sealed class Mutator(Random random, int maxLength)
{
    private static readonly byte[] Interesting8 = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40, 0x64, 0xFE];

    private static readonly uint[] Interesting32 =
    [
        0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE,
        0x40000000, 0x01000000, 1024, 4096, 65535, 65536, 100_000_000,
    ];

    /// <summary>Returns a mutated copy of <paramref name="input"/>; <paramref name="other"/> is the splice partner.</summary>
    public byte[] Mutate(byte[] input, byte[] other)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(other);
        var data = new List<byte>(input);
        var rounds = 1 << random.Next(0, 4);
        for (var i = 0; i < rounds; i++)
        {
            Apply(data, other);
        }

        if (data.Count > maxLength)
        {
            data.RemoveRange(maxLength, data.Count - maxLength);
        }

        return [.. data];
    }

    private void Apply(List<byte> d, byte[] other)
    {
        if (d.Count == 0)
        {
            d.Add((byte)random.Next(256));
            return;
        }

        var at = random.Next(d.Count);
        switch (random.Next(14))
        {
            case 0:
                d[at] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                d[at] = Interesting8[random.Next(Interesting8.Length)];
                break;
            case 2:
                d[at] = (byte)random.Next(256);
                break;
            case 3:
                d[at] = (byte)(d[at] + random.Next(-35, 36));
                break;
            case 4 or 5:
                PutInteger(d, at, Interesting32[random.Next(Interesting32.Length)]);
                break;
            case 6:
                {
                    // Arithmetic on a 32-bit field in either byte order: lengths and offsets one off.
                    if (at + 4 <= d.Count)
                    {
                        Span<byte> b = [d[at], d[at + 1], d[at + 2], d[at + 3]];
                        var big = random.Next(2) == 0;
                        var v = big ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b);
                        v = (uint)(v + random.Next(-16, 17));
                        if (big)
                        {
                            BinaryPrimitives.WriteUInt32BigEndian(b, v);
                        }
                        else
                        {
                            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
                        }

                        for (var k = 0; k < 4; k++)
                        {
                            d[at + k] = b[k];
                        }
                    }

                    break;
                }

            case 7:
                d.RemoveRange(at, Math.Min(d.Count - at, BlockLength(d.Count)));
                break;
            case 8:
                {
                    var len = BlockLength(d.Count);
                    var from = random.Next(d.Count);
                    len = Math.Min(len, d.Count - from);
                    d.InsertRange(at, d.GetRange(from, len));
                    break;
                }

            case 9:
                {
                    var bytes = new byte[BlockLength(16)];
                    random.NextBytes(bytes);
                    d.InsertRange(at, bytes);
                    break;
                }

            case 10:
                {
                    // Overwrite with a block from elsewhere in the input (moves tags, markers, headers around).
                    var len = BlockLength(d.Count);
                    var from = random.Next(d.Count);
                    len = Math.Min(Math.Min(len, d.Count - from), d.Count - at);
                    var block = d.GetRange(from, len);
                    for (var k = 0; k < len; k++)
                    {
                        d[at + k] = block[k];
                    }

                    break;
                }

            case 11:
                if (other.Length > 0)
                {
                    // Splice: our head, the other entry's tail.
                    var cut = random.Next(other.Length);
                    d.RemoveRange(at, d.Count - at);
                    d.AddRange(other.AsSpan(cut).ToArray());
                }

                break;
            case 12:
                if (other.Length > 0)
                {
                    var from = random.Next(other.Length);
                    var len = Math.Min(BlockLength(other.Length), other.Length - from);
                    d.InsertRange(at, other.AsSpan(from, len).ToArray());
                }

                break;
            default:
                d.RemoveRange(at, d.Count - at); // truncation
                break;
        }
    }

    private void PutInteger(List<byte> d, int at, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        var width = random.Next(3) switch { 0 => 1, 1 => 2, _ => 4 };
        if (random.Next(2) == 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b, value);
            b = b[(4 - width)..];
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            b = b[..width];
        }

        for (var k = 0; k < b.Length && at + k < d.Count; k++)
        {
            d[at + k] = b[k];
        }
    }

    // Mostly short blocks, sometimes long ones, as AFL's choose_block_len.
    private int BlockLength(int limit)
    {
        var max = random.Next(3) switch { 0 => 4, 1 => 32, _ => 1024 };
        return Math.Max(1, random.Next(1, Math.Max(2, Math.Min(max, limit) + 1)));
    }
}
