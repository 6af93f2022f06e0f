using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Warden.Core.Imaging;

namespace Warden.Core.Provenance;

/// <summary>What a metadata block holds.</summary>
public enum BlockKind
{
    /// <summary>A keyed text (PNG tEXt/zTXt/iTXt).</summary>
    Text,

    /// <summary>A TIFF/EXIF structure.</summary>
    Exif,

    /// <summary>An XMP packet.</summary>
    Xmp,

    /// <summary>A JUMBF box (C2PA manifest store).</summary>
    Jumbf,

    /// <summary>A JPEG comment.</summary>
    Comment,
}

/// <summary>One metadata block found by a container walker.</summary>
/// <param name="Kind">What it holds.</param>
/// <param name="Location">Where it is.</param>
/// <param name="Data">Its bytes (decompressed, reassembled), for binary kinds.</param>
/// <param name="Text">Its text, for text kinds.</param>
public sealed record MetadataBlock(BlockKind Kind, SignalLocation Location, ReadOnlyMemory<byte> Data, string? Text);

/// <summary>What a walk over a file's container found: header facts, metadata blocks and problems.</summary>
public sealed class ContainerScan
{
    private long _kept;

    internal ContainerScan(string format, ProvenanceLimits limits)
    {
        Format = format;
        Limits = limits;
    }

    /// <summary>jpeg, png, webp, tiff, gif, bmp.</summary>
    public string Format { get; }

    /// <summary>Size of the walked file.</summary>
    public long FileLength { get; internal init; }

    /// <summary>Image width from the header (0 if not found).</summary>
    public int Width { get; internal set; }

    /// <summary>Image height from the header (0 if not found).</summary>
    public int Height { get; internal set; }

    /// <summary>Whether the image has an alpha channel (PNG colour type 4/6, WebP alpha flag).</summary>
    public bool HasAlpha { get; internal set; }

    /// <summary>The blocks, in file order.</summary>
    public List<MetadataBlock> Blocks { get; } = [];

    /// <summary>Damage met on the way (the walk keeps what it found before).</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>The limits the walk runs under.</summary>
    internal ProvenanceLimits Limits { get; }

    internal void Add(MetadataBlock block)
    {
        var size = block.Data.Length + ((block.Text?.Length ?? 0) * 2L);
        if (Blocks.Count >= Limits.MaxBlocks || _kept + size > Limits.MaxTotalMetadataBytes)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, $"more than {Limits.MaxBlocks} metadata blocks or {Limits.MaxTotalMetadataBytes} bytes of metadata");
        }

        _kept += size;
        Blocks.Add(block);
    }
}

/// <summary>
/// Bounded walkers over PNG chunks, JPEG segments and RIFF/WebP chunks. They read the chunk table and the
/// metadata chunks only, never pixel data, and stop at the first structural damage with a warning.
/// </summary>
public static class ContainerWalker
{
    /// <summary>Walks <paramref name="file"/>.</summary>
    /// <exception cref="ProvenanceException">Not an image (JPEG, PNG, WebP, TIFF, GIF, BMP).</exception>
    public static ContainerScan Walk(ReadOnlyMemory<byte> file, ProvenanceLimits? limits = null)
    {
        limits ??= ProvenanceLimits.Default;
        var span = file.Span;
        var format = ImageFormatSniffer.Sniff(span);
        ContainerScan scan;
        if (format == ImageFormat.Jpeg)
        {
            scan = new ContainerScan("jpeg", limits) { FileLength = span.Length };
            Guard(scan, () => WalkJpeg(file, scan));
        }
        else if (format == ImageFormat.Png)
        {
            scan = new ContainerScan("png", limits);
            Guard(scan, () => WalkPng(file, scan));
        }
        else if (format == ImageFormat.WebP)
        {
            scan = new ContainerScan("webp", limits);
            Guard(scan, () => WalkWebP(file, scan));
        }
        else if (format == ImageFormat.Tiff && !ImageFormatSniffer.IsBigTiff(span))
        {
            scan = new ContainerScan("tiff", limits) { FileLength = span.Length };
            Guard(scan, () => WalkTiff(file, scan));
        }
        else if (format is ImageFormat.Gif or ImageFormat.Bmp or ImageFormat.Tiff)
        {
            // Decodable images whose metadata Warden does not read: the pixel checks still run on them, and the
            // report says metadata was not looked at rather than failing (a format must not hide the file).
            var name = ImageFormatSniffer.Name(format);
            scan = new ContainerScan(name, limits) { FileLength = span.Length };
            scan.Warnings.Add($"{name}: metadata is not read from this format (BigTIFF, GIF, BMP); pixels only");
        }
        else
        {
            throw new ProvenanceException(ProvenanceError.UnsupportedFormat, "not an image format provenance reads (JPEG, PNG, WebP, TIFF, GIF, BMP)");
        }

        return scan;
    }

    // A TIFF file is itself a TIFF structure: IFD0 (and the EXIF IFD) hold Software, ImageDescription, UserComment…
    // as in a JPEG's EXIF block, and tag 700 holds XMP.
    private static void WalkTiff(ReadOnlyMemory<byte> file, ContainerScan scan)
    {
        var entries = TiffReader.Read(file.Span, scan.Limits);
        foreach (var e in entries)
        {
            if (e.Ifd == 0 && e.Tag is 256 or 257 && e.Value.Length >= 2)
            {
                var big = file.Span[0] == (byte)'M';
                var v = e.Type == 3
                    ? (big ? BinaryPrimitives.ReadUInt16BigEndian(e.Value) : BinaryPrimitives.ReadUInt16LittleEndian(e.Value))
                    : e.Value.Length >= 4 ? (int)Math.Min(int.MaxValue, big ? BinaryPrimitives.ReadUInt32BigEndian(e.Value) : BinaryPrimitives.ReadUInt32LittleEndian(e.Value)) : 0;
                if (e.Tag == 256)
                {
                    scan.Width = v;
                }
                else
                {
                    scan.Height = v;
                }
            }
        }

        if (file.Length > scan.Limits.MaxBlockBytes)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, $"the TIFF file is larger than {scan.Limits.MaxBlockBytes} bytes; its tags are not read");
        }

        scan.Add(new MetadataBlock(BlockKind.Exif, new SignalLocation("tiff", "IFD0", null, 0, file.Length), file, null));
        if (entries.FirstOrDefault(e => e.Ifd == 0 && e.Tag == 700) is { } xmp)
        {
            scan.Add(new MetadataBlock(BlockKind.Xmp, new SignalLocation("tiff", "IFD0/XMP", null, xmp.Offset, xmp.Value.Length), xmp.Value, null));
        }
    }

    private static void Guard(ContainerScan scan, Action walk)
    {
        try
        {
            walk();
        }
        catch (ProvenanceException ex)
        {
            scan.Warnings.Add($"{scan.Format}: {ex.Message}");
        }
    }

    private static void WalkPng(ReadOnlyMemory<byte> file, ContainerScan scan)
    {
        var span = file.Span;
        long pos = 8;
        while (true)
        {
            if (pos + 8 > span.Length)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"file ends at byte {span.Length} before IEND");
            }

            var length = BinaryPrimitives.ReadUInt32BigEndian(span[(int)pos..]);
            var type = Encoding.ASCII.GetString(span.Slice((int)pos + 4, 4));
            if (length > int.MaxValue || pos + 12 + length > span.Length)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"chunk {Printable(type)} at byte {pos} announces {length} bytes past the end of the file");
            }

            var data = file.Slice((int)pos + 8, (int)length);
            var location = new SignalLocation("png", type, null, pos, length + 12);
            switch (type)
            {
                case "IHDR" when length >= 13:
                    scan.Width = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data.Span), int.MaxValue);
                    scan.Height = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data.Span[4..]), int.MaxValue);
                    scan.HasAlpha = data.Span[9] is 4 or 6;
                    break;
                case "tRNS":
                    scan.HasAlpha = true;
                    break;
                case "tEXt" or "zTXt" or "iTXt":
                    if (length > scan.Limits.MaxBlockBytes)
                    {
                        scan.Warnings.Add($"png: {type} chunk at byte {pos} has {length} bytes, over the block limit; skipped");
                        break;
                    }

                    TryText(scan, type, data.Span, location);
                    break;
                case "eXIf" or "exIf":
                    scan.Add(new MetadataBlock(BlockKind.Exif, location, data, null));
                    break;
                case "caBX":
                    scan.Add(new MetadataBlock(BlockKind.Jumbf, location, data, null));
                    break;
                case "IEND":
                    return;
            }

            pos += 12 + length;
        }
    }

    private static void TryText(ContainerScan scan, string type, ReadOnlySpan<byte> data, SignalLocation location)
    {
        string key, text;
        try
        {
            (key, text) = ReadPngText(type, data, scan.Limits);
        }
        catch (ProvenanceException ex)
        {
            // One damaged or oversized text chunk does not hide the others.
            scan.Warnings.Add($"png: {type} chunk at byte {location.Offset}: {ex.Message}");
            return;
        }

        var located = location with { Key = key };
        scan.Add(key == "XML:com.adobe.xmp"
            ? new MetadataBlock(BlockKind.Xmp, located, Encoding.UTF8.GetBytes(text), null)
            : new MetadataBlock(BlockKind.Text, located, default, text));
    }

    /// <summary>Decodes a PNG text chunk: tEXt (Latin-1), zTXt (zlib Latin-1), iTXt (UTF-8, zlib if flagged).</summary>
    internal static (string Key, string Text) ReadPngText(string type, ReadOnlySpan<byte> data, ProvenanceLimits limits)
    {
        var nul = data.IndexOf((byte)0);
        if (nul is < 1 or > 79)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "text chunk keyword is empty, longer than 79 bytes or not terminated");
        }

        var key = Encoding.Latin1.GetString(data[..nul]);
        var rest = data[(nul + 1)..];
        switch (type)
        {
            case "tEXt":
                return (key, Encoding.Latin1.GetString(rest));
            case "zTXt":
                if (rest.Length < 1 || rest[0] != 0)
                {
                    throw new ProvenanceException(ProvenanceError.Malformed, "zTXt compression method is not 0 (zlib)");
                }

                return (key, Encoding.Latin1.GetString(Inflate(rest[1..], limits.MaxInflatedBytes)));
            default:
                if (rest.Length < 2)
                {
                    throw new ProvenanceException(ProvenanceError.Truncated, "iTXt chunk ends inside its header");
                }

                var compressed = rest[0] == 1;
                if (compressed && rest[1] != 0)
                {
                    throw new ProvenanceException(ProvenanceError.Malformed, "iTXt compression method is not 0 (zlib)");
                }

                rest = rest[2..];
                var lang = rest.IndexOf((byte)0);
                if (lang < 0)
                {
                    throw new ProvenanceException(ProvenanceError.Truncated, "iTXt language tag not terminated");
                }

                rest = rest[(lang + 1)..];
                var translated = rest.IndexOf((byte)0);
                if (translated < 0)
                {
                    throw new ProvenanceException(ProvenanceError.Truncated, "iTXt translated keyword not terminated");
                }

                rest = rest[(translated + 1)..];
                return (key, Encoding.UTF8.GetString(compressed ? Inflate(rest, limits.MaxInflatedBytes) : rest));
        }
    }

    /// <summary>Inflates a zlib stream, refusing more than <paramref name="max"/> bytes of output (zip bombs).</summary>
    internal static byte[] Inflate(ReadOnlySpan<byte> zlib, int max) => Decompress(zlib, max, gzip: false);

    /// <summary>Decompresses zlib or gzip data with an output cap.</summary>
    internal static byte[] Decompress(ReadOnlySpan<byte> data, int max, bool gzip)
    {
        try
        {
            using var input = new MemoryStream(data.ToArray(), writable: false);
            using Stream stream = gzip ? new GZipStream(input, CompressionMode.Decompress) : new ZLibStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = stream.Read(buffer)) > 0)
            {
                if (output.Length + n > max)
                {
                    throw new ProvenanceException(ProvenanceError.LimitExceeded, $"compressed data expands past {max} bytes");
                }

                output.Write(buffer, 0, n);
            }

            return output.ToArray();
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            // zlib's own errors (a stream asking for a preset dictionary, FDICT) are ZLibException, an IOException,
            // not InvalidDataException (found by fuzzing).
            throw new ProvenanceException(ProvenanceError.Malformed, $"compressed data is corrupt: {ex.Message}");
        }
    }

    private static void WalkJpeg(ReadOnlyMemory<byte> file, ContainerScan scan)
    {
        var span = file.Span;
        var pos = 2;
        var extendedXmp = new Dictionary<string, (byte[] Buffer, SignalLocation Location, long Filled)>(StringComparer.Ordinal);
        var jumbf = new SortedDictionary<int, List<(uint Seq, int Offset, ReadOnlyMemory<byte> Content)>>();
        while (pos < span.Length)
        {
            if (span[pos] != 0xFF)
            {
                throw new ProvenanceException(ProvenanceError.Malformed, $"expected a marker at byte {pos}");
            }

            while (pos < span.Length && span[pos] == 0xFF)
            {
                pos++;
            }

            if (pos >= span.Length)
            {
                break;
            }

            var marker = span[pos];
            var start = pos - 1;
            pos++;
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7))
            {
                continue;
            }

            if (marker is 0xD9 or 0xDA)
            {
                // Metadata lives before the scan data; pixels are never read.
                break;
            }

            if (pos + 2 > span.Length)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"segment FF{marker:X2} at byte {start} has no length");
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(span[pos..]);
            if (length < 2 || pos + length > span.Length)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"segment FF{marker:X2} at byte {start} runs past the end of the file");
            }

            var data = file.Slice(pos + 2, length - 2);
            var d = data.Span;
            var location = new SignalLocation("jpeg", $"APP{marker - 0xE0}", null, start, length + 2);
            if (marker is (>= 0xC0 and <= 0xCF) and not 0xC4 and not 0xC8 and not 0xCC && d.Length >= 5)
            {
                scan.Height = BinaryPrimitives.ReadUInt16BigEndian(d[1..]);
                scan.Width = BinaryPrimitives.ReadUInt16BigEndian(d[3..]);
            }
            else if (marker == 0xE1 && d.StartsWith("Exif\0"u8) && d.Length >= 6)
            {
                scan.Add(new MetadataBlock(BlockKind.Exif, location, data[6..], null));
            }
            else if (marker == 0xE1 && d.StartsWith("http://ns.adobe.com/xap/1.0/\0"u8))
            {
                scan.Add(new MetadataBlock(BlockKind.Xmp, location, data[29..], null));
            }
            else if (marker == 0xE1 && d.StartsWith("http://ns.adobe.com/xmp/extension/\0"u8))
            {
                AddExtendedXmp(d[35..], location, extendedXmp, scan);
            }
            else if (marker == 0xEB && d.Length >= 16 && d[0] == (byte)'J' && d[1] == (byte)'P')
            {
                var instance = BinaryPrimitives.ReadUInt16BigEndian(d[2..]);
                var seq = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
                if (!jumbf.TryGetValue(instance, out var parts))
                {
                    if (jumbf.Count >= 64)
                    {
                        throw new ProvenanceException(ProvenanceError.LimitExceeded, "more than 64 JUMBF box instances");
                    }

                    jumbf[instance] = parts = [];
                }

                parts.Add((seq, start, data));
            }
            else if (marker == 0xFE)
            {
                scan.Add(new MetadataBlock(BlockKind.Comment, location with { Chunk = "COM" }, default, Encoding.Latin1.GetString(d)));
            }

            pos += length;
        }

        foreach (var (guid, (buffer, location, filled)) in extendedXmp)
        {
            if (filled >= buffer.Length)
            {
                scan.Add(new MetadataBlock(BlockKind.Xmp, location with { Key = "extended:" + guid }, buffer, null));
            }
            else
            {
                scan.Warnings.Add($"jpeg: extended XMP {guid} is incomplete ({filled} of {buffer.Length} bytes)");
            }
        }

        var stores = 0;
        foreach (var (instance, parts) in jumbf)
        {
            var store = JoinJumbf(instance, parts, scan);
            if (store is null)
            {
                continue;
            }

            if (stores++ > 0)
            {
                scan.Warnings.Add("jpeg: more than one C2PA manifest store; only the first is read");
                continue;
            }

            scan.Add(store);
        }
    }

    private static void AddExtendedXmp(ReadOnlySpan<byte> d, SignalLocation location, Dictionary<string, (byte[] Buffer, SignalLocation Location, long Filled)> parts, ContainerScan scan)
    {
        if (d.Length < 40)
        {
            scan.Warnings.Add($"jpeg: extended XMP segment at byte {location.Offset} is too short");
            return;
        }

        var guid = Encoding.ASCII.GetString(d[..32]);
        var total = BinaryPrimitives.ReadUInt32BigEndian(d[32..]);
        var offset = BinaryPrimitives.ReadUInt32BigEndian(d[36..]);
        var chunk = d[40..];
        // The parts come from this file, so the whole can be no larger than the file: a tiny segment announcing
        // 64 MiB allocates nothing.
        if (total > scan.Limits.MaxBlockBytes || total > scan.FileLength)
        {
            scan.Warnings.Add($"jpeg: extended XMP {Printable(guid)} announces {total} bytes, more than the file or the limit; skipped");
            return;
        }

        if (!parts.TryGetValue(guid, out var part))
        {
            if (parts.Count >= 2)
            {
                return;
            }

            part = (new byte[total], location, 0);
        }

        if (part.Buffer.Length != total || offset + (long)chunk.Length > total)
        {
            scan.Warnings.Add($"jpeg: extended XMP segment at byte {location.Offset} does not fit its announced length");
            return;
        }

        chunk.CopyTo(part.Buffer.AsSpan((int)offset));
        parts[guid] = (part.Buffer, part.Location, part.Filled + chunk.Length);
    }

    private static MetadataBlock? JoinJumbf(int instance, List<(uint Seq, int Offset, ReadOnlyMemory<byte> Content)> parts, ContainerScan scan)
    {
        parts.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        var first = parts[0].Content.Span;

        // content[8..16] = LBox + TBox of the superbox, [16..24] its jumd header, [24..28] the store's UUID prefix.
        if (first.Length < 28 || !first[12..16].SequenceEqual("jumb"u8) || !first[24..28].SequenceEqual("c2pa"u8))
        {
            return null;
        }

        if (parts[0].Seq != 1)
        {
            scan.Warnings.Add($"jpeg: JUMBF instance {instance} does not start at sequence 1");
            return null;
        }

        long total = first.Length - 8;
        for (var i = 1; i < parts.Count; i++)
        {
            if (parts[i].Seq != parts[i - 1].Seq + 1 || parts[i].Content.Length < 16)
            {
                scan.Warnings.Add($"jpeg: JUMBF instance {instance} has a gap or a short segment at sequence {parts[i].Seq}");
                return null;
            }

            total += parts[i].Content.Length - 16;
        }

        if (total > scan.Limits.MaxBlockBytes)
        {
            scan.Warnings.Add($"jpeg: C2PA manifest store of {total} bytes is over the limit; skipped");
            return null;
        }

        var buffer = new byte[total];
        first[8..].CopyTo(buffer);
        var at = first.Length - 8;
        for (var i = 1; i < parts.Count; i++)
        {
            parts[i].Content.Span[16..].CopyTo(buffer.AsSpan(at));
            at += parts[i].Content.Length - 16;
        }

        var lastSegment = parts[^1];
        var span = lastSegment.Offset + lastSegment.Content.Length + 4 - parts[0].Offset;
        return new MetadataBlock(BlockKind.Jumbf, new SignalLocation("jpeg", "APP11", null, parts[0].Offset, span), buffer, null);
    }

    private static void WalkWebP(ReadOnlyMemory<byte> file, ContainerScan scan)
    {
        var span = file.Span;
        var riffEnd = Math.Min((long)BinaryPrimitives.ReadUInt32LittleEndian(span[4..]) + 8, span.Length);
        long pos = 12;
        while (pos + 8 <= riffEnd)
        {
            var fourcc = Encoding.ASCII.GetString(span.Slice((int)pos, 4));
            var size = BinaryPrimitives.ReadUInt32LittleEndian(span[((int)pos + 4)..]);
            if (pos + 8 + size > span.Length)
            {
                throw new ProvenanceException(ProvenanceError.Truncated, $"chunk {Printable(fourcc)} at byte {pos} announces {size} bytes past the end of the file");
            }

            var data = file.Slice((int)pos + 8, (int)size);
            var d = data.Span;
            var location = new SignalLocation("webp", fourcc.TrimEnd(), null, pos, size + 8);
            switch (fourcc)
            {
                case "VP8X" when size >= 10:
                    scan.HasAlpha = (d[0] & 0x10) != 0;
                    scan.Width = (d[4] | (d[5] << 8) | (d[6] << 16)) + 1;
                    scan.Height = (d[7] | (d[8] << 8) | (d[9] << 16)) + 1;
                    break;
                case "VP8 " when size >= 10 && scan.Width == 0:
                    scan.Width = BinaryPrimitives.ReadUInt16LittleEndian(d[6..]) & 0x3FFF;
                    scan.Height = BinaryPrimitives.ReadUInt16LittleEndian(d[8..]) & 0x3FFF;
                    break;
                case "VP8L" when size >= 5 && scan.Width == 0:
                    var bits = BinaryPrimitives.ReadUInt32LittleEndian(d[1..]);
                    scan.Width = (int)(bits & 0x3FFF) + 1;
                    scan.Height = (int)((bits >> 14) & 0x3FFF) + 1;
                    scan.HasAlpha = ((bits >> 28) & 1) != 0;
                    break;
                case "EXIF":
                    // Some writers keep JPEG's "Exif\0\0" prefix.
                    scan.Add(new MetadataBlock(BlockKind.Exif, location, d.StartsWith("Exif\0\0"u8) ? data[6..] : data, null));
                    break;
                case "XMP ":
                    scan.Add(new MetadataBlock(BlockKind.Xmp, location, data, null));
                    break;
                case "C2PA":
                    scan.Add(new MetadataBlock(BlockKind.Jumbf, location, data, null));
                    break;
            }

            pos += 8 + size + (size & 1);
        }
    }

    private static string Printable(string s) => new([.. s.Select(c => c is >= ' ' and < (char)127 ? c : '?')]);
}
