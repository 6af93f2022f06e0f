using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Warden.Core.Snapshots;

/// <summary>
/// A bounded little-endian reader over the bytes of a stored snapshot (the PDQ index file and segment headers,
/// the model near index, the server's model index catalog). Every read checks what is left first and throws
/// an <see cref="InvalidDataException"/> naming the offset, so a short or damaged file fails closed with the
/// same kind of error wherever it is read, never an <see cref="IndexOutOfRangeException"/>.
/// </summary>
/// <remarks>
/// Errors are <see cref="InvalidDataException"/> (sealed, and what every snapshot loader already catches to
/// rebuild): a truncation says "truncated at offset N: needs K bytes, L left" and carries the numbers in
/// <see cref="Exception.Data"/> under <see cref="OffsetKey"/>, <see cref="NeededKey"/> and <see cref="AvailableKey"/>.
/// <see cref="Offset"/> counts from the start of the span plus the base offset given, so a reader over part of
/// a file can report file offsets.
/// </remarks>
public ref struct SnapshotReader
{
    /// <summary><see cref="Exception.Data"/> key of a truncation's offset (long).</summary>
    public const string OffsetKey = "offset";

    /// <summary><see cref="Exception.Data"/> key of the bytes the field needed (long; <see cref="long.MaxValue"/> when a damaged count overflows).</summary>
    public const string NeededKey = "needed";

    /// <summary><see cref="Exception.Data"/> key of the bytes that were left (long).</summary>
    public const string AvailableKey = "available";

    private readonly ReadOnlySpan<byte> _data;
    private readonly string _what;
    private readonly long _base;
    private int _pos;

    /// <param name="data">The bytes to read.</param>
    /// <param name="what">What they are, for error messages ("near index", "PDQ index snapshot 'x.pdqx'").</param>
    /// <param name="baseOffset">The offset of <paramref name="data"/>'s first byte in its file.</param>
    public SnapshotReader(ReadOnlySpan<byte> data, string what, long baseOffset = 0)
    {
        ArgumentNullException.ThrowIfNull(what);
        ArgumentOutOfRangeException.ThrowIfNegative(baseOffset);
        _data = data;
        _what = what;
        _base = baseOffset;
    }

    /// <summary>The file offset of the next byte to read.</summary>
    public readonly long Offset => _base + _pos;

    /// <summary>Bytes not read yet.</summary>
    public readonly int Remaining => _data.Length - _pos;

    /// <summary>The bytes not read yet.</summary>
    public readonly ReadOnlySpan<byte> Rest => _data[_pos..];

    /// <summary>What the bytes are (as given), for callers' own error messages.</summary>
    public readonly string What => _what;

    public byte ReadByte() => Take(1)[0];

    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    /// <summary>Passes over <paramref name="count"/> bytes (reserved or padding fields).</summary>
    public void Skip(int count) => Take(count);

    /// <summary>The next <paramref name="count"/> bytes, as a slice of the data (not copied).</summary>
    public ReadOnlySpan<byte> ReadBytes(long count)
    {
        if (count < 0)
        {
            throw new InvalidDataException($"{_what} is corrupt: a length of {count} at offset {Offset}.");
        }

        return Take(count);
    }

    /// <summary>
    /// The next <paramref name="count"/> values of <typeparamref name="T"/> stored verbatim (little-endian), as a
    /// view of the data; a count past the data throws before anything is sized from it.
    /// </summary>
    public ReadOnlySpan<T> ReadArray<T>(long count)
        where T : unmanaged
    {
        if (count < 0)
        {
            throw new InvalidDataException($"{_what} is corrupt: an array of {count} elements at offset {Offset}.");
        }

        var size = Unsafe.SizeOf<T>();
        if (count > Remaining / size)
        {
            throw Truncated(count > long.MaxValue / size ? long.MaxValue : count * size);
        }

        return MemoryMarshal.Cast<byte, T>(Take(count * size));
    }

    /// <summary>
    /// A UTF-8 string stored as an int64 byte length and the bytes; a length over <paramref name="maxBytes"/> is
    /// corrupt (never an allocation sized by a damaged file), one past the data truncated.
    /// </summary>
    public string ReadString64(int maxBytes)
    {
        var at = Offset;
        var n = ReadInt64();
        if (n < 0 || n > maxBytes)
        {
            throw new InvalidDataException($"{_what} is corrupt: a string of {n} bytes at offset {at} (at most {maxBytes}).");
        }

        return Encoding.UTF8.GetString(Take(n));
    }

    /// <summary>Throws unless every byte has been read (a longer file than its contents say is damaged too).</summary>
    public readonly void ExpectEnd()
    {
        if (Remaining != 0)
        {
            throw new InvalidDataException($"{_what} is corrupt: {Remaining} trailing bytes at offset {Offset}.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(long count)
    {
        if ((ulong)count > (ulong)Remaining)
        {
            throw Truncated(count);
        }

        var s = _data.Slice(_pos, (int)count);
        _pos += (int)count;
        return s;
    }

    private readonly InvalidDataException Truncated(long needed)
    {
        var ex = new InvalidDataException($"{_what} is truncated at offset {Offset}: needs {needed} bytes, {Remaining} left.");
        ex.Data[OffsetKey] = Offset;
        ex.Data[NeededKey] = needed;
        ex.Data[AvailableKey] = (long)Remaining;
        return ex;
    }
}
