using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Warden.Core.Tests.Provenance;

/// <summary>Builders for the provenance fixtures: PNG chunks, JPEG segments, WebP chunks and EXIF/TIFF blocks.</summary>
internal static class Fixtures
{
    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++)
        {
            c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }

        return c;
    }).ToArray();

    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        }

        return c ^ 0xFFFFFFFF;
    }

    public static byte[] Chunk(string type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    public static byte[] Zlib(ReadOnlySpan<byte> data)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal))
        {
            z.Write(data);
        }

        return ms.ToArray();
    }

    public static byte[] Gzip(ReadOnlySpan<byte> data)
    {
        using var ms = new MemoryStream();
        using (var z = new GZipStream(ms, CompressionLevel.Optimal))
        {
            z.Write(data);
        }

        return ms.ToArray();
    }

    public static byte[] Text(string key, string text) => Chunk("tEXt", [.. Encoding.Latin1.GetBytes(key), 0, .. Encoding.Latin1.GetBytes(text)]);

    public static byte[] ZText(string key, string text) => Chunk("zTXt", [.. Encoding.Latin1.GetBytes(key), 0, 0, .. Zlib(Encoding.Latin1.GetBytes(text))]);

    public static byte[] IText(string key, string text, bool compressed) =>
        Chunk("iTXt", [.. Encoding.Latin1.GetBytes(key), 0, (byte)(compressed ? 1 : 0), 0, 0, 0,
            .. compressed ? Zlib(Encoding.UTF8.GetBytes(text)) : Encoding.UTF8.GetBytes(text)]);

    /// <summary>A PNG (8-bit RGB or RGBA) with extra chunks after IHDR.</summary>
    public static byte[] Png(int width, int height, byte[] pixels, int channels, params byte[][] chunks)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = 8;
        ihdr[9] = (byte)(channels == 4 ? 6 : 2);
        var raw = new byte[height * ((width * channels) + 1)];
        for (var y = 0; y < height; y++)
        {
            pixels.AsSpan(y * width * channels, width * channels).CopyTo(raw.AsSpan((y * ((width * channels) + 1)) + 1));
        }

        using var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        ms.Write(Chunk("IHDR", ihdr));
        foreach (var c in chunks)
        {
            ms.Write(c);
        }

        ms.Write(Chunk("IDAT", Zlib(raw)));
        ms.Write(Chunk("IEND", []));
        return ms.ToArray();
    }

    /// <summary>A small smooth RGB PNG with <paramref name="chunks"/>.</summary>
    public static byte[] SmallPng(params byte[][] chunks) => Png(64, 48, SyntheticImages.Smooth(64, 48, 3), 3, chunks);

    /// <summary>A JPEG segment (marker + length + payload).</summary>
    public static byte[] Segment(byte marker, ReadOnlySpan<byte> payload)
    {
        var s = new byte[4 + payload.Length];
        s[0] = 0xFF;
        s[1] = marker;
        BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(2), (ushort)(payload.Length + 2));
        payload.CopyTo(s.AsSpan(4));
        return s;
    }

    public static byte[] ExifSegment(byte[] tiff) => Segment(0xE1, [.. "Exif\0\0"u8, .. tiff]);

    public static byte[] XmpSegment(string xmp) => Segment(0xE1, [.. "http://ns.adobe.com/xap/1.0/\0"u8, .. Encoding.UTF8.GetBytes(xmp)]);

    /// <summary>A JPEG (libvips, no metadata) with <paramref name="segments"/> spliced in after SOI.</summary>
    public static byte[] Jpeg(byte[] jpeg, params byte[][] segments)
    {
        using var ms = new MemoryStream();
        ms.Write(jpeg.AsSpan(0, 2));
        foreach (var s in segments)
        {
            ms.Write(s);
        }

        ms.Write(jpeg.AsSpan(2));
        return ms.ToArray();
    }

    public static byte[] SmallJpeg(params byte[][] segments) => Jpeg(SyntheticImages.EncodedSmooth(64, 48, "jpg"), segments);

    /// <summary>A WebP (libvips lossless) rewritten as VP8X + image chunk + <paramref name="chunks"/> (fourcc, data).</summary>
    public static byte[] WebP(byte[] webp, params (string FourCc, byte[] Data)[] chunks)
    {
        var image = webp.AsSpan(12).ToArray();
        var vp8x = new byte[10];
        vp8x[0] = (byte)((chunks.Any(c => c.FourCc == "EXIF") ? 0x08 : 0) | (chunks.Any(c => c.FourCc == "XMP ") ? 0x04 : 0));
        using var probe = NetVips.Image.NewFromBuffer(webp);
        var w = probe.Width - 1;
        var h = probe.Height - 1;
        vp8x[4] = (byte)w;
        vp8x[5] = (byte)(w >> 8);
        vp8x[6] = (byte)(w >> 16);
        vp8x[7] = (byte)h;
        vp8x[8] = (byte)(h >> 8);
        vp8x[9] = (byte)(h >> 16);
        using var body = new MemoryStream();
        body.Write("WEBP"u8);
        WriteRiff(body, "VP8X", vp8x);
        body.Write(image);
        foreach (var (fourcc, data) in chunks)
        {
            WriteRiff(body, fourcc, data);
        }

        var result = new byte[8 + body.Length];
        "RIFF"u8.CopyTo(result);
        BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(4), (uint)body.Length);
        body.ToArray().CopyTo(result, 8);
        return result;
    }

    public static byte[] SmallWebP(params (string FourCc, byte[] Data)[] chunks) => WebP(SyntheticImages.EncodedSmooth(64, 48, "webp", options: "[lossless]"), chunks);

    private static void WriteRiff(Stream s, string fourcc, byte[] data)
    {
        s.Write(Encoding.ASCII.GetBytes(fourcc));
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)data.Length);
        s.Write(len);
        s.Write(data);
        if ((data.Length & 1) != 0)
        {
            s.WriteByte(0);
        }
    }

    /// <summary>A TIFF/EXIF block: IFD0 tags and EXIF-IFD tags (tag, type, value bytes), big- or little-endian.</summary>
    public static byte[] Tiff(bool bigEndian, (ushort Tag, ushort Type, byte[] Value)[] ifd0, (ushort Tag, ushort Type, byte[] Value)[]? exif = null)
    {
        exif ??= [];
        var entries0 = ifd0.ToList();
        if (exif.Length > 0)
        {
            entries0.Add((0x8769, 4, new byte[4]));
        }

        entries0.Sort((a, b) => a.Tag.CompareTo(b.Tag));
        var ifd0Size = 2 + (12 * entries0.Count) + 4;
        var exifOffset = 8 + ifd0Size;
        var exifSize = exif.Length == 0 ? 0 : 2 + (12 * exif.Length) + 4;
        var dataOffset = exifOffset + exifSize;
        var buffer = new List<byte>();
        var data = new List<byte>();
        void U16(List<byte> b, int v)
        {
            var x = new byte[2];
            if (bigEndian)
            {
                BinaryPrimitives.WriteUInt16BigEndian(x, (ushort)v);
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(x, (ushort)v);
            }

            b.AddRange(x);
        }

        void U32(List<byte> b, long v)
        {
            var x = new byte[4];
            if (bigEndian)
            {
                BinaryPrimitives.WriteUInt32BigEndian(x, (uint)v);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(x, (uint)v);
            }

            b.AddRange(x);
        }

        void Ifd(List<(ushort Tag, ushort Type, byte[] Value)> entries)
        {
            U16(buffer, entries.Count);
            foreach (var (tag, type, value) in entries)
            {
                U16(buffer, tag);
                U16(buffer, type);
                var size = type switch { 3 => 2, 4 => 4, _ => 1 };
                U32(buffer, value.Length / size);
                if (tag == 0x8769)
                {
                    U32(buffer, exifOffset);
                }
                else if (value.Length <= 4)
                {
                    buffer.AddRange(value);
                    buffer.AddRange(new byte[4 - value.Length]);
                }
                else
                {
                    U32(buffer, dataOffset + data.Count);
                    data.AddRange(value);
                    if ((data.Count & 1) != 0)
                    {
                        data.Add(0);
                    }
                }
            }

            U32(buffer, 0);
        }

        buffer.AddRange(bigEndian ? "MM\0*"u8.ToArray() : "II*\0"u8.ToArray());
        U32(buffer, 8);
        Ifd(entries0);
        if (exif.Length > 0)
        {
            Ifd([.. exif.OrderBy(e => e.Tag)]);
        }

        return [.. buffer, .. data];
    }

    public static (ushort, ushort, byte[]) Ascii(ushort tag, string text) => (tag, 2, [.. Encoding.UTF8.GetBytes(text), 0]);

    /// <summary>A piexif-style UserComment: "UNICODE\0" + UTF-16 (big-endian as piexif writes it, or little-endian).</summary>
    public static (ushort, ushort, byte[]) UnicodeComment(string text, bool bigEndian = true) =>
        (0x9286, 7, [.. "UNICODE\0"u8, .. (bigEndian ? Encoding.BigEndianUnicode : Encoding.Unicode).GetBytes(text)]);

    public static (ushort, ushort, byte[]) AsciiComment(string text) => (0x9286, 7, [.. "ASCII\0\0\0"u8, .. Encoding.UTF8.GetBytes(text)]);

    /// <summary>A small A1111 infotext with model, VAE and LoRA hashes.</summary>
    public const string A1111Infotext =
        "a watercolor lighthouse on a cliff, <lora:softlight:0.7>\n" +
        "Negative prompt: blurry, lowres\n" +
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567, Size: 512x768, " +
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, " +
        "Lora hashes: \"softlight: 0a1b2c3d4e5f, paperTexture: abcdef012345\", TI hashes: \"badhands: 1234567890\", Version: v1.10.1";
}
