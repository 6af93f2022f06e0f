using System.Buffers.Binary;
using System.Text;

namespace Warden.Core.Provenance;

/// <summary>One TIFF tag value, raw.</summary>
/// <param name="Ifd">0 = IFD0, 1 = EXIF IFD.</param>
/// <param name="Tag">The tag number.</param>
/// <param name="Type">The TIFF field type.</param>
/// <param name="Offset">Offset of the value in the TIFF block.</param>
/// <param name="Value">The value bytes.</param>
internal sealed record TiffEntry(int Ifd, ushort Tag, ushort Type, int Offset, byte[] Value);

/// <summary>
/// A minimal bounded TIFF/EXIF reader: IFD0 and the EXIF IFD it points to, nothing else (no thumbnails, no
/// maker notes). Loops, overlapping or out-of-range offsets and oversized counts are refused.
/// </summary>
internal static class TiffReader
{
    public const ushort ImageDescription = 0x010E;
    public const ushort Make = 0x010F;
    public const ushort Model = 0x0110;
    public const ushort Software = 0x0131;
    public const ushort DocumentName = 0x010D;
    public const ushort Artist = 0x013B;
    public const ushort ExifIfdPointer = 0x8769;
    public const ushort ExposureTime = 0x829A;
    public const ushort FNumber = 0x829D;
    public const ushort DateTimeOriginal = 0x9003;
    public const ushort UserComment = 0x9286;
    public const ushort MakerNote = 0x927C;

    private static readonly int[] TypeSizes = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];

    /// <summary>Reads IFD0 and the EXIF IFD.</summary>
    /// <exception cref="ProvenanceException">Damaged or hostile TIFF.</exception>
    public static List<TiffEntry> Read(ReadOnlySpan<byte> tiff, ProvenanceLimits limits)
    {
        if (tiff.Length < 8)
        {
            throw new ProvenanceException(ProvenanceError.Truncated, "EXIF block shorter than a TIFF header");
        }

        bool big;
        if (tiff.StartsWith("MM\0*"u8))
        {
            big = true;
        }
        else if (tiff.StartsWith("II*\0"u8))
        {
            big = false;
        }
        else
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "EXIF block has no TIFF byte-order mark");
        }

        var entries = new List<TiffEntry>();
        var visited = new HashSet<uint>();
        var next = U32(tiff, 4, big);
        ReadIfd(tiff, next, 0, big, limits, entries, visited);
        var exif = entries.FirstOrDefault(e => e.Ifd == 0 && e.Tag == ExifIfdPointer && e.Value.Length >= 4);
        if (exif is not null)
        {
            var offset = big ? BinaryPrimitives.ReadUInt32BigEndian(exif.Value) : BinaryPrimitives.ReadUInt32LittleEndian(exif.Value);
            ReadIfd(tiff, offset, 1, big, limits, entries, visited);
        }

        return entries;
    }

    private static void ReadIfd(ReadOnlySpan<byte> tiff, uint offset, int ifd, bool big, ProvenanceLimits limits, List<TiffEntry> entries, HashSet<uint> visited)
    {
        if (!visited.Add(offset))
        {
            throw new ProvenanceException(ProvenanceError.Malformed, $"EXIF IFD at {offset} is referenced twice (loop)");
        }

        if (offset < 8 || offset + 2L > tiff.Length)
        {
            throw new ProvenanceException(ProvenanceError.Truncated, $"EXIF IFD offset {offset} is outside the block");
        }

        var count = U16(tiff, (int)offset, big);
        if (count > limits.MaxIfdEntries)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, $"EXIF IFD at {offset} has {count} entries (limit {limits.MaxIfdEntries})");
        }

        if (offset + 2L + (12L * count) > tiff.Length)
        {
            throw new ProvenanceException(ProvenanceError.Truncated, $"EXIF IFD at {offset} runs past the block");
        }

        for (var i = 0; i < count; i++)
        {
            var e = (int)offset + 2 + (12 * i);
            var tag = U16(tiff, e, big);
            var type = U16(tiff, e + 2, big);
            var n = U32(tiff, e + 4, big);
            if (type >= TypeSizes.Length || TypeSizes[type] == 0)
            {
                continue;
            }

            var size = (long)n * TypeSizes[type];
            if (size > limits.MaxBlockBytes)
            {
                throw new ProvenanceException(ProvenanceError.LimitExceeded, $"EXIF tag 0x{tag:X4} announces {size} bytes");
            }

            var at = size <= 4 ? e + 8 : (long)U32(tiff, e + 8, big);
            if (at + size > tiff.Length)
            {
                // One bad tag does not spoil the others.
                continue;
            }

            entries.Add(new TiffEntry(ifd, tag, type, (int)at, tiff.Slice((int)at, (int)size).ToArray()));
        }
    }

    /// <summary>Text of an ASCII/UNDEFINED/BYTE tag: UTF-8 (a superset of the ASCII the spec asks for), cut at the first NUL.</summary>
    public static string Text(TiffEntry entry)
    {
        var v = entry.Value.AsSpan();
        var nul = v.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? v[..nul] : v).Trim();
    }

    /// <summary>
    /// Decodes a UserComment: 8-byte charset prefix "UNICODE\0" (UTF-16; piexif writes big-endian, some tools
    /// little-endian: decided by which byte of each pair is more often zero), "ASCII\0\0\0", eight NULs
    /// (undefined: UTF-8 tried), or no prefix at all (Fooocus writes an ASCII string in IFD0).
    /// </summary>
    public static string DecodeUserComment(ReadOnlySpan<byte> v)
    {
        if (v.StartsWith("UNICODE\0"u8))
        {
            var body = v[8..];
            body = body[..(body.Length & ~1)];
            int evenZeros = 0, oddZeros = 0;
            for (var i = 0; i < body.Length; i++)
            {
                if (body[i] == 0)
                {
                    if ((i & 1) == 0)
                    {
                        evenZeros++;
                    }
                    else
                    {
                        oddZeros++;
                    }
                }
            }

            var text = (oddZeros > evenZeros ? Encoding.Unicode : Encoding.BigEndianUnicode).GetString(body);
            return text.TrimEnd('\0');
        }

        if (v.StartsWith("ASCII\0\0\0"u8) || v.StartsWith("\0\0\0\0\0\0\0\0"u8))
        {
            return Encoding.UTF8.GetString(v[8..]).TrimEnd('\0');
        }

        if (v.StartsWith("JIS\0\0\0\0\0"u8))
        {
            return string.Empty;
        }

        return Encoding.UTF8.GetString(v).TrimEnd('\0');
    }

    private static ushort U16(ReadOnlySpan<byte> s, int at, bool big) =>
        big ? BinaryPrimitives.ReadUInt16BigEndian(s[at..]) : BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);

    private static uint U32(ReadOnlySpan<byte> s, int at, bool big) =>
        big ? BinaryPrimitives.ReadUInt32BigEndian(s[at..]) : BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
}
