using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Hashing;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

/// <summary>
/// Baseline JPEGs at 1/8 now go through Warden's own decoder instead of libvips (docs/performance.md): its pixels
/// must be libvips' 1/8 decode byte for byte, whatever the encoder settings, so that no hash moves. Generated
/// files cover 4:2:0 (chroma through libjpeg-turbo's 2x2 IDCT), 4:4:4, grey, every quality, optimised and standard
/// Huffman tables, restart intervals, libvips' quantisation table presets, noise up to saturation and odd sizes.
/// </summary>
public sealed class JpegScaledDecodeTests
{
    public static Arbitrary<EncodeCase> Cases() => Arb.From(
        from width in Gen.Choose(8, 520)
        from height in Gen.Choose(8, 520)
        from quality in Gen.Choose(1, 100)
        from subsample in Gen.Elements("on", "off", "auto")
        from restart in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 40)))
        from optimize in Gen.Elements(true, false)
        from table in Gen.Choose(0, 8)
        from noise in Gen.Elements(0, 4, 20, 90, 255)
        from grey in Gen.Frequency((5, Gen.Constant(false)), (1, Gen.Constant(true)))
        from seed in Gen.Choose(0, int.MaxValue)
        select new EncodeCase(width, height, quality, subsample, restart, optimize, table, noise, grey, seed));

    [Property(MaxTest = 120, Arbitrary = [typeof(JpegScaledDecodeTests)])]
    public void Baseline_1_8_decode_is_libvips_byte_for_byte(EncodeCase c)
    {
        var jpeg = c.Encode();
        using var ours = ImageDecoder.Decode(jpeg, maxReduction: static (_, _) => 8);
        using var vips = NetVips.Image.JpegloadBuffer(jpeg, shrink: 8, autorotate: false);
        var expected = vips.WriteToMemory<byte>();
        Assert.Equal((vips.Width, vips.Height, vips.Bands), (ours.PixelWidth, ours.PixelHeight, ours.BytesPerPixel));
        Assert.Equal((c.Width, c.Height), (ours.Width, ours.Height));
        Assert.True(ours.Pixels.SequenceEqual(expected), $"{c}: pixels differ from libvips");
    }

    [Property(MaxTest = 150, Arbitrary = [typeof(QuarterCases)])]
    public void Baseline_1_4_decode_is_libvips_byte_for_byte(EncodeCase c)
    {
        var jpeg = c.Encode();
        using var ours = ImageDecoder.Decode(jpeg, maxReduction: static (_, _) => 4);

        // libvips crops its output to floor(size / 4) and so refuses a side under 4 pixels, where Warden keeps the one
        // pixel libjpeg decodes; declaring that side as 4 in the frame header changes neither the entropy data nor
        // any sample libjpeg computes (same MCU count, same output and component extents), so libvips can vouch for it.
        using var vips = NetVips.Image.JpegloadBuffer(WithSidesAtLeast(jpeg, 4), shrink: 4, autorotate: false);
        var expected = vips.WriteToMemory<byte>();
        Assert.Equal((vips.Width, vips.Height, vips.Bands), (ours.PixelWidth, ours.PixelHeight, ours.BytesPerPixel));
        Assert.Equal((c.Width, c.Height), (ours.Width, ours.Height));
        Assert.True(ours.Pixels.SequenceEqual(expected), $"{c}: pixels differ from libvips");
    }

    [Property(MaxTest = 40, Arbitrary = [typeof(JpegScaledDecodeTests)])]
    public void Pdq_from_a_reused_file_buffer_equals_pdq_from_the_stream(EncodeCase first, EncodeCase second, EncodeCase third)
    {
        // One hasher across files of varied sizes: the reused read buffer must never leak one file into the next.
        using var hasher = new ContentHasher();
        var dir = Directory.CreateTempSubdirectory("warden-scaled-");
        try
        {
            foreach (var (c, i) in new[] { first, second, third, first }.Select((c, i) => (c, i)))
            {
                var jpeg = c.Encode();
                var path = Path.Combine(dir.FullName, $"{i}.jpg");
                File.WriteAllBytes(path, jpeg);
                var fromFile = hasher.HashFile(path);
                using var reference = new ContentHasher();
                var fromStream = reference.HashStream(new MemoryStream(jpeg));
                Assert.Equal(fromStream.Exact, fromFile.Exact, ExactComparer.Instance);
                Assert.Equal(jpeg.LongLength, fromFile.Length);
                Assert.Equal(fromStream.Image?.Pdq.Hash, fromFile.Image?.Pdq.Hash);
                Assert.Equal(fromStream.Image?.Pdq.Quality, fromFile.Image?.Pdq.Quality);
                Assert.Equal(fromStream.Error?.Error, fromFile.Error?.Error);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>A copy of <paramref name="jpeg"/> whose frame header declares each side as at least <paramref name="minimum"/>.</summary>
    internal static byte[] WithSidesAtLeast(byte[] jpeg, int minimum)
    {
        var copy = (byte[])jpeg.Clone();

        // Segment by segment: table data may hold the bytes FF C0 too.
        for (var i = 2; i + 9 < copy.Length && copy[i] == 0xFF; i += 2 + ((copy[i + 2] << 8) | copy[i + 3]))
        {
            if (copy[i + 1] is 0xC0 or 0xC1)
            {
                var height = (copy[i + 5] << 8) | copy[i + 6];
                var width = (copy[i + 7] << 8) | copy[i + 8];
                (copy[i + 5], copy[i + 6]) = ((byte)(Math.Max(height, minimum) >> 8), (byte)Math.Max(height, minimum));
                (copy[i + 7], copy[i + 8]) = ((byte)(Math.Max(width, minimum) >> 8), (byte)Math.Max(width, minimum));
                return copy;
            }
        }

        throw new InvalidOperationException("No SOF0/SOF1 marker.");
    }

    /// <summary>As <see cref="Cases"/>, with tiny images (1-17 px a side, down to less than one output pixel) too.</summary>
    public static class QuarterCases
    {
        public static Arbitrary<EncodeCase> Cases() => Arb.From(
            from width in Gen.Frequency((1, Gen.Choose(1, 17)), (3, Gen.Choose(8, 520)))
            from height in Gen.Frequency((1, Gen.Choose(1, 17)), (3, Gen.Choose(8, 520)))
            from quality in Gen.Choose(1, 100)
            from subsample in Gen.Elements("on", "off", "auto")
            from restart in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 40)))
            from optimize in Gen.Elements(true, false)
            from table in Gen.Choose(0, 8)
            from noise in Gen.Elements(0, 4, 20, 90, 255)
            from grey in Gen.Frequency((5, Gen.Constant(false)), (1, Gen.Constant(true)))
            from seed in Gen.Choose(0, int.MaxValue)
            select new EncodeCase(width, height, quality, subsample, restart, optimize, table, noise, grey, seed));
    }

    /// <summary>One generated JPEG: settings and content seed.</summary>
    public sealed record EncodeCase(int Width, int Height, int Quality, string Subsample, int Restart, bool Optimize, int Table, int Noise, bool Grey, int Seed)
    {
        public byte[] Encode()
        {
            // Smooth content plus noise of the given amplitude, with saturated patches: flat chroma and busy
            // chroma, small and large AC terms, clipping in the IDCT's range limiter.
            var rng = new Random(Seed);
            var rgb = SyntheticImages.Smooth(Width, Height, Seed);
            for (var i = 0; i < rgb.Length; i++)
            {
                var v = rgb[i] + (Noise == 0 ? 0 : rng.Next(-Noise, Noise + 1));
                rgb[i] = (byte)Math.Clamp(v, 0, 255);
            }

            for (var patch = rng.Next(0, 4); patch > 0; patch--)
            {
                var (px, py, pw, ph) = (rng.Next(Width), rng.Next(Height), rng.Next(1, 40), rng.Next(1, 40));
                var colour = new[] { (byte)(rng.Next(2) * 255), (byte)(rng.Next(2) * 255), (byte)(rng.Next(2) * 255) };
                for (var y = py; y < Math.Min(Height, py + ph); y++)
                {
                    for (var x = px; x < Math.Min(Width, px + pw); x++)
                    {
                        colour.CopyTo(rgb, ((y * Width) + x) * 3);
                    }
                }
            }

            using var image = NetVips.Image.NewFromMemory(rgb, Width, Height, 3, NetVips.Enums.BandFormat.Uchar);
            using var source = Grey ? image.Colourspace(NetVips.Enums.Interpretation.Bw) : image;
            var options = $"[Q={Quality},subsample_mode={Subsample},restart_interval={Restart},optimize_coding={(Optimize ? "true" : "false")},quant_table={Table},strip=true]";
            return source.WriteToBuffer(".jpg" + options);
        }
    }

    private sealed class ExactComparer : IEqualityComparer<ExactHashes>
    {
        public static readonly ExactComparer Instance = new();

        public bool Equals(ExactHashes? x, ExactHashes? y) =>
            x is not null && y is not null && x.Md5.SequenceEqual(y.Md5) && x.Sha1.SequenceEqual(y.Sha1) && x.Sha256.SequenceEqual(y.Sha256);

        public int GetHashCode(ExactHashes obj) => obj.Md5[0];
    }
}
