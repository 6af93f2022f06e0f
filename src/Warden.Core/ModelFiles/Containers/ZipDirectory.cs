using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>A zip member as the central directory lists it, with where its data starts.</summary>
/// <param name="Name">Name (central directory).</param>
/// <param name="Method">0 stored, 8 deflated.</param>
/// <param name="Flags">General-purpose flags.</param>
/// <param name="Crc">CRC-32 from the central directory.</param>
/// <param name="CompressedSize">Stored bytes.</param>
/// <param name="Size">Uncompressed bytes.</param>
/// <param name="LocalHeaderOffset">Offset of the local header.</param>
/// <param name="DataOffset">Offset of the data (after the local header); -1 when the local header is unusable.</param>
public sealed record ZipMember(string Name, int Method, int Flags, uint Crc, long CompressedSize, long Size, long LocalHeaderOffset, long DataOffset);

/// <summary>
/// Reads a zip's central directory the way PyTorch (miniz) does — members come from the central directory,
/// data from the local header offset — and reports every disagreement between the two (name, flags, method,
/// sizes, CRC), the encryption bit and overlapping members, because scanners and loaders that trust different
/// headers have been bypassed (CVE-2025-1944/1945/10156). Nothing is extracted to disk.
/// </summary>
public static class ZipDirectory
{
    /// <summary>Reads the members of the zip in <paramref name="handle"/>.</summary>
    public static List<ZipMember> Read(SafeFileHandle handle, long length, ModelDocument doc, ModelLimits limits)
    {
        ArgumentNullException.ThrowIfNull(doc);
        ArgumentNullException.ThrowIfNull(limits);
        var tailLen = (int)Math.Min(length, 22 + 65535 + 20);
        var tail = new byte[tailLen];
        ReadExactly(handle, tail, length - tailLen);
        var eocd = -1;
        for (var i = tailLen - 22; i >= 0; i--)
        {
            if (tail[i] == 0x50 && tail[i + 1] == 0x4b && tail[i + 2] == 5 && tail[i + 3] == 6)
            {
                eocd = i;
                break;
            }
        }

        if (eocd < 0)
        {
            throw new ModelFormatException("zip: no end-of-central-directory record");
        }

        var e = tail.AsSpan(eocd);
        long count = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        var eocdAt = length - tailLen + eocd;
        long shift = 0;
        var zip64 = false;
        if ((count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF) && eocd >= 20)
        {
            var loc = tail.AsSpan(eocd - 20);
            if (BinaryPrimitives.ReadUInt32LittleEndian(loc) == 0x07064b50)
            {
                var z64At = (long)BinaryPrimitives.ReadUInt64LittleEndian(loc[8..]);
                var z64 = new byte[56];
                if (z64At < 0 || z64At + 56 > length)
                {
                    throw new ModelFormatException("zip: zip64 end record outside the file");
                }

                ReadExactly(handle, z64, z64At);
                if (BinaryPrimitives.ReadUInt32LittleEndian(z64) != 0x06064b50)
                {
                    throw new ModelFormatException("zip: bad zip64 end record signature");
                }

                count = (long)BinaryPrimitives.ReadUInt64LittleEndian(z64.AsSpan(32));
                cdSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(z64.AsSpan(40));
                cdOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(z64.AsSpan(48));
                zip64 = true;
            }
        }

        // zipfile accepts data before the archive (a zip appended to another file) and shifts every offset by it.
        if (!zip64 && cdSize >= 0 && cdOffset >= 0 && cdOffset + cdSize < eocdAt)
        {
            shift = eocdAt - cdSize - cdOffset;
            cdOffset += shift;
            doc.Flag(AnomalySeverity.Warning, "zip.prepended-data", $"{shift} bytes precede the archive (a file with a zip appended)");
        }

        if (count > limits.MaxZipEntries || cdSize < 0 || cdOffset < 0 || cdOffset + cdSize > length || cdSize > (long)limits.MaxZipEntries * 1024)
        {
            throw new ModelFormatException($"zip: implausible central directory ({count} entries, {cdSize} bytes at {cdOffset})");
        }

        var cd = new byte[cdSize];
        ReadExactly(handle, cd, cdOffset);
        var members = new List<ZipMember>((int)Math.Min(count, 1 << 16));
        var at = 0;
        var local = new byte[30];
        for (long n = 0; n < count; n++)
        {
            if (at + 46 > cd.Length || BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(at)) != 0x02014b50)
            {
                throw new ModelFormatException($"zip: central directory entry {n} is truncated or has a bad signature");
            }

            var c = cd.AsSpan(at);
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(c[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(c[10..]);
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(c[16..]);
            long csize = BinaryPrimitives.ReadUInt32LittleEndian(c[20..]);
            long usize = BinaryPrimitives.ReadUInt32LittleEndian(c[24..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(c[28..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(c[30..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(c[32..]);
            long lho = BinaryPrimitives.ReadUInt32LittleEndian(c[42..]);
            if (at + 46 + nameLen + extraLen + commentLen > cd.Length)
            {
                throw new ModelFormatException($"zip: central directory entry {n} runs past the directory");
            }

            var name = Encoding.UTF8.GetString(c.Slice(46, nameLen));
            ReadZip64(c.Slice(46 + nameLen, extraLen), ref usize, ref csize, ref lho);
            lho += shift;
            at += 46 + nameLen + extraLen + commentLen;

            if ((flags & 1) != 0)
            {
                doc.Flag(AnomalySeverity.Error, "zip.encrypted", $"member '{name}' has the encryption flag set");
            }

            if (method is not (0 or 8))
            {
                doc.Flag(AnomalySeverity.Error, "zip.method", $"member '{name}' uses compression method {method}");
            }

            long dataOffset = -1;
            if (lho < 0 || lho + 30 > length)
            {
                doc.Flag(AnomalySeverity.Error, "zip.local-offset", $"member '{name}' local header offset {lho} is outside the file");
            }
            else
            {
                ReadExactly(handle, local, lho);
                var l = local.AsSpan();
                if (BinaryPrimitives.ReadUInt32LittleEndian(l) != 0x04034b50)
                {
                    doc.Flag(AnomalySeverity.Error, "zip.local-signature", $"member '{name}' has no local header signature at {lho}");
                }
                else
                {
                    int lflags = BinaryPrimitives.ReadUInt16LittleEndian(l[6..]);
                    int lmethod = BinaryPrimitives.ReadUInt16LittleEndian(l[8..]);
                    var lcrc = BinaryPrimitives.ReadUInt32LittleEndian(l[14..]);
                    long lcsize = BinaryPrimitives.ReadUInt32LittleEndian(l[18..]);
                    long lusize = BinaryPrimitives.ReadUInt32LittleEndian(l[22..]);
                    int lnameLen = BinaryPrimitives.ReadUInt16LittleEndian(l[26..]);
                    int lextraLen = BinaryPrimitives.ReadUInt16LittleEndian(l[28..]);
                    var rest = new byte[lnameLen + lextraLen];
                    if (lho + 30 + rest.Length > length)
                    {
                        doc.Flag(AnomalySeverity.Error, "zip.local-truncated", $"member '{name}' local header runs past the end of the file");
                    }
                    else
                    {
                        ReadExactly(handle, rest, lho + 30);
                        var lname = Encoding.UTF8.GetString(rest.AsSpan(0, lnameLen));
                        long dummy = lho;
                        ReadZip64(rest.AsSpan(lnameLen), ref lusize, ref lcsize, ref dummy);
                        if (lname != name)
                        {
                            doc.Flag(AnomalySeverity.Error, "zip.name-mismatch", $"local header names '{lname}', central directory '{name}'");
                        }

                        if (lflags != flags)
                        {
                            doc.Flag(AnomalySeverity.Error, "zip.flags-mismatch", $"member '{name}': local flags 0x{lflags:x4}, central 0x{flags:x4}");
                        }

                        if (lmethod != method)
                        {
                            doc.Flag(AnomalySeverity.Error, "zip.method-mismatch", $"member '{name}': local method {lmethod}, central {method}");
                        }

                        if ((lflags & 8) == 0 && (lcrc != crc || lcsize != csize || lusize != usize))
                        {
                            doc.Flag(AnomalySeverity.Error, "zip.size-mismatch", $"member '{name}': local CRC/sizes differ from the central directory");
                        }

                        dataOffset = lho + 30 + rest.Length;
                        if (dataOffset + csize > length || csize < 0)
                        {
                            doc.Flag(AnomalySeverity.Error, "zip.data-bounds", $"member '{name}' data runs past the end of the file");
                            dataOffset = -1;
                        }
                    }
                }
            }

            members.Add(new ZipMember(name, method, flags, crc, csize, usize, lho, dataOffset));
        }

        // Members whose data overlap another member's (a polyglot or a zip bomb trick).
        var sorted = members.Where(m => m.DataOffset >= 0).OrderBy(m => m.DataOffset).ToList();
        for (var i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].LocalHeaderOffset < sorted[i - 1].DataOffset + sorted[i - 1].CompressedSize)
            {
                doc.Flag(AnomalySeverity.Error, "zip.overlap", $"members '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
            }
        }

        var dupes = members.GroupBy(m => m.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).Take(10).ToList();
        foreach (var d in dupes)
        {
            doc.Flag(AnomalySeverity.Error, "zip.duplicate-name", $"member name '{d}' occurs more than once");
        }

        return members;
    }

    /// <summary>True when the end-of-central-directory signature is in the file's last 64 KiB + 22 bytes, as zipfile.is_zipfile checks.</summary>
    public static bool HasEndRecord(SafeFileHandle handle, long length)
    {
        if (length < 22)
        {
            return false;
        }

        var tail = new byte[(int)Math.Min(length, 22 + 65535)];
        ReadExactly(handle, tail, length - tail.Length);
        return tail.AsSpan().LastIndexOf("PK\x05\x06"u8) is var i && i >= 0 && i <= tail.Length - 22;
    }

    /// <summary>Inflates a deflated member into memory, at most <paramref name="max"/> bytes; null when it is larger.</summary>
    public static byte[]? Inflate(SafeFileHandle handle, ZipMember m, long max, int? stopAfter = null)
    {
        ArgumentNullException.ThrowIfNull(m);
        using var bounded = new HandleStream(handle, m.DataOffset, m.CompressedSize);
        using var inflate = new DeflateStream(bounded, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = inflate.Read(buffer, 0, stopAfter is { } s ? Math.Min(buffer.Length, s - (int)output.Length) : buffer.Length)) > 0)
        {
            if (output.Length + n > max)
            {
                return null;
            }

            output.Write(buffer, 0, n);
            if (stopAfter is { } stop && output.Length >= stop)
            {
                break;
            }
        }

        return output.ToArray();
    }

    /// <summary>Reads a member into memory (inflating deflated ones), at most <paramref name="max"/> bytes; checks the CRC.</summary>
    public static byte[] ReadMember(SafeFileHandle handle, ZipMember m, long max, ModelDocument doc)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(doc);
        if (m.DataOffset < 0)
        {
            throw new ModelFormatException($"zip: member '{m.Name}' has no readable data");
        }

        if (m.Size > max || m.CompressedSize > max)
        {
            throw new ModelFormatException($"zip: member '{m.Name}' is {Math.Max(m.Size, m.CompressedSize)} bytes, over the {max}-byte limit");
        }

        var raw = new byte[m.CompressedSize];
        ReadExactly(handle, raw, m.DataOffset);
        byte[] data;
        if (m.Method == 8)
        {
            using var inflate = new DeflateStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = inflate.Read(buffer)) > 0)
            {
                if (output.Length + n > max)
                {
                    throw new ModelFormatException($"zip: member '{m.Name}' inflates past the {max}-byte limit");
                }

                output.Write(buffer, 0, n);
            }

            data = output.ToArray();
        }
        else
        {
            data = raw;
        }

        if (Crc32.HashToUInt32(data) != m.Crc)
        {
            doc.Flag(AnomalySeverity.Error, "zip.bad-crc", $"member '{m.Name}' CRC-32 does not match its header (a loader that ignores CRCs still reads it; scanned anyway)");
        }

        return data;
    }

    private static void ReadZip64(ReadOnlySpan<byte> extra, ref long usize, ref long csize, ref long lho)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (4 + len > extra.Length)
            {
                return;
            }

            if (id == 1)
            {
                var f = extra.Slice(4, len);
                if (usize == 0xFFFFFFFF && f.Length >= 8)
                {
                    usize = (long)BinaryPrimitives.ReadUInt64LittleEndian(f);
                    f = f[8..];
                }

                if (csize == 0xFFFFFFFF && f.Length >= 8)
                {
                    csize = (long)BinaryPrimitives.ReadUInt64LittleEndian(f);
                    f = f[8..];
                }

                if (lho == 0xFFFFFFFF && f.Length >= 8)
                {
                    lho = (long)BinaryPrimitives.ReadUInt64LittleEndian(f);
                }
            }

            extra = extra[(4 + len)..];
        }
    }

    /// <summary>CRC-32 of a stored member's bytes, streamed (no copy of the member in memory).</summary>
    public static uint StoredCrc(SafeFileHandle handle, ZipMember m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var crc = new Crc32();
        var buffer = new byte[1 << 20];
        for (long at = 0; at < m.CompressedSize;)
        {
            var n = (int)Math.Min(buffer.Length, m.CompressedSize - at);
            ReadExactly(handle, buffer.AsSpan(0, n), m.DataOffset + at);
            crc.Append(buffer.AsSpan(0, n));
            at += n;
        }

        return crc.GetCurrentHashAsUInt32();
    }

    /// <summary>
    /// A read-only, seekable stream over [start, start + length) of a file handle that does not own the handle (a
    /// FileStream closes the handle it wraps when disposed, and later readers of the same file need it open).
    /// Positional reads, so several streams over one handle never disturb each other.
    /// </summary>
    internal sealed class HandleStream(SafeFileHandle handle, long start, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => _position = Math.Clamp(value, 0, length);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var want = (int)Math.Min(buffer.Length, length - _position);
            if (want <= 0)
            {
                return 0;
            }

            var n = RandomAccess.Read(handle, buffer[..want], start + _position);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    internal static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer[done..], offset + done);
            if (n <= 0)
            {
                throw new ModelFormatException($"unexpected end of file at offset {offset + done}");
            }

            done += n;
        }
    }
}
