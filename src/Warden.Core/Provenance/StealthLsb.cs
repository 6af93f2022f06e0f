using System.Buffers.Binary;
using System.Text;

namespace Warden.Core.Provenance;

/// <summary>
/// Reader of "stealth" metadata hidden in pixel least-significant bits: NovelAI and the A1111 extension
/// sd-webui-stealth-pnginfo. Bits run column by column (x outer, y inner), MSB first; the alpha variants use
/// one bit per pixel (alpha LSB), the RGB variants three (R, G, B LSBs). Layout: 15-byte ASCII magic
/// (stealth_pnginfo, stealth_pngcomp, stealth_rgbinfo, stealth_rgbcomp), a u32 big-endian payload length in
/// bits, then the payload (UTF-8, gzip for *comp).
/// </summary>
internal static class StealthLsb
{
    private const int MagicBytes = 15;

    /// <summary>The magic found and the decoded payload text, or null.</summary>
    public static (string Magic, string Text)? Read(ReadOnlySpan<byte> px, int width, int height, int bpp, ProvenanceLimits limits)
    {
        if (bpp is 2 or 4)
        {
            var alpha = TryRead(px, width, height, bpp, alphaOnly: true, limits);
            if (alpha is not null)
            {
                return alpha;
            }
        }

        return bpp >= 3 ? TryRead(px, width, height, bpp, alphaOnly: false, limits) : null;
    }

    private static (string Magic, string Text)? TryRead(ReadOnlySpan<byte> px, int width, int height, int bpp, bool alphaOnly, ProvenanceLimits limits)
    {
        var perPixel = alphaOnly ? 1 : 3;
        var available = (long)width * height * perPixel;
        if (available < (MagicBytes + 4) * 8)
        {
            return null;
        }

        var reader = new BitReader(width, height, bpp, alphaOnly);
        Span<byte> magic = stackalloc byte[MagicBytes];
        for (var i = 0; i < MagicBytes; i++)
        {
            magic[i] = reader.Byte(px);
        }

        var name = Encoding.ASCII.GetString(magic);
        var compressed = name is "stealth_pngcomp" or "stealth_rgbcomp";
        if (alphaOnly ? name is not ("stealth_pnginfo" or "stealth_pngcomp") : name is not ("stealth_rgbinfo" or "stealth_rgbcomp"))
        {
            return null;
        }

        Span<byte> len = stackalloc byte[4];
        for (var i = 0; i < 4; i++)
        {
            len[i] = reader.Byte(px);
        }

        var bits = BinaryPrimitives.ReadUInt32BigEndian(len);
        if (bits % 8 != 0 || bits > available - reader.Position || bits / 8 > (ulong)limits.MaxBlockBytes)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, $"{name}: payload length {bits} bits does not fit the image");
        }

        var payload = new byte[bits / 8];
        for (var i = 0; i < payload.Length; i++)
        {
            payload[i] = reader.Byte(px);
        }

        var bytes = compressed ? ContainerWalker.Decompress(payload, limits.MaxInflatedBytes, gzip: true) : payload;
        return (name, Encoding.UTF8.GetString(bytes));
    }

    private sealed class BitReader(int width, int height, int bpp, bool alphaOnly)
    {
        public long Position { get; private set; }

        public byte Byte(ReadOnlySpan<byte> px)
        {
            var b = 0;
            for (var i = 0; i < 8; i++)
            {
                b = (b << 1) | Bit(px);
            }

            return (byte)b;
        }

        private int Bit(ReadOnlySpan<byte> px)
        {
            var p = Position++;
            int pixel, channel;
            if (alphaOnly)
            {
                pixel = (int)p;
                channel = bpp - 1;
            }
            else
            {
                pixel = (int)(p / 3);
                channel = (int)(p % 3);
            }

            // Column-major: the payload runs down the first column, then the next.
            var x = pixel / height;
            var y = pixel % height;
            return px[(((y * width) + x) * bpp) + channel] & 1;
        }
    }
}
