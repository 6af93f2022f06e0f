using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

/// <summary>
/// Warden's scaled JPEG decodes (1/4 and 1/8) against libvips on files written straight from coefficients
/// (<see cref="JpegCoefficientWriter"/>): every sampling layout the decoder takes (4:4:4, 4:2:2, 4:4:0, 4:2:0, grey,
/// grey declared 2x2, chroma sampled above luma, mixed), 8- and 16-bit quantisers up to 65535 and coefficients up to
/// ±32767 (where libjpeg-turbo's SIMD IDCTs wrap and saturate), restart intervals, sizes from 1 pixel. Pixels must be
/// identical; where libvips refuses a file, Warden must refuse it with an <see cref="ImageDecodeException"/>.
/// </summary>
public sealed class JpegCraftedScaledTests
{
    private static readonly (int H, int V)[][] Layouts =
    [
        [(1, 1)],
        [(2, 2)],
        [(1, 1), (1, 1), (1, 1)],
        [(2, 1), (1, 1), (1, 1)],
        [(1, 2), (1, 1), (1, 1)],
        [(2, 2), (1, 1), (1, 1)],
        [(1, 1), (2, 2), (2, 2)],
        [(2, 2), (2, 1), (1, 2)],
        [(2, 1), (1, 2), (1, 1)],
        [(2, 2), (2, 2), (2, 2)],
        [(1, 2), (1, 2), (1, 1)],
    ];

    public static Arbitrary<CraftedCase> Cases() => Arb.From(
        from width in Gen.Frequency((1, Gen.Choose(1, 9)), (3, Gen.Choose(10, 90)))
        from height in Gen.Frequency((1, Gen.Choose(1, 9)), (3, Gen.Choose(10, 90)))
        from layout in Gen.Choose(0, Layouts.Length - 1)
        from restart in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 5)))
        from magnitude in Gen.Elements(Magnitude.Typical, Magnitude.Large, Magnitude.Extreme)
        from density in Gen.Choose(0, 100)
        from seed in Gen.Choose(0, int.MaxValue)
        select new CraftedCase(width, height, layout, restart, magnitude, density, seed));

    [Property(MaxTest = 500, Arbitrary = [typeof(JpegCraftedScaledTests)])]
    public void Crafted_files_decode_as_libvips_does_at_1_4_and_1_8(CraftedCase c)
    {
        var jpeg = c.Write();
        foreach (var shrink in new[] { 4, 8 })
        {
            byte[]? expected = null;
            (int, int, int) shape = default;
            try
            {
                // libvips crops to floor(size / shrink) and refuses a side under one output pixel; declaring such a side
                // as one output pixel changes no sample libjpeg computes (see JpegScaledDecodeTests).
                using var vips = NetVips.Image.JpegloadBuffer(JpegScaledDecodeTests.WithSidesAtLeast(jpeg, shrink), shrink: shrink, autorotate: false);
                expected = vips.WriteToMemory<byte>();
                shape = (vips.Width, vips.Height, vips.Bands);
            }
            catch (NetVips.VipsException ex)
            {
                // Typical files are well-formed unless their MCU has more than 10 blocks (three 2x2 components):
                // libvips must take them (else this property would hold vacuously).
                var blocks = Layouts[c.Layout].Length == 1 ? 1 : Layouts[c.Layout].Sum(s => s.H * s.V);
                Assert.True(c.Magnitude != Magnitude.Typical || blocks > 10, $"{c}: libvips refused a well-formed file: {ex.Message}");
                var refused = Record.Exception(() => ImageDecoder.Decode(jpeg, maxReduction: (_, _) => shrink).Dispose());
                Assert.True(refused is ImageDecodeException, $"{c} at 1/{shrink}: libvips refused it ({string.Join(" / ", ex.Message.Split('\n'))}), Warden gave {refused?.GetType().Name ?? "pixels"}");
                continue;
            }

            using var ours = ImageDecoder.Decode(jpeg, maxReduction: (_, _) => shrink);
            Assert.Equal(shape, (ours.PixelWidth, ours.PixelHeight, ours.BytesPerPixel));
            Assert.True(ours.Pixels.SequenceEqual(expected), $"{c} at 1/{shrink}: pixels differ from libvips");
        }
    }

    /// <summary>
    /// Damaged files at 1/4 (cut short anywhere, and bytes overwritten, often with 0xFF): Warden's decoder either
    /// refuses them with an <see cref="ImageDecodeException"/> or returns exactly the pixels libvips decodes from them
    /// when told to go on regardless, never other pixels and never another exception. (Warden returns pixels only
    /// when every code it needs is present and valid; libvips with fail-on-truncation also refuses a file whose EOI
    /// alone is missing, which is why the comparison decodes without it.)
    /// </summary>
    [Property(MaxTest = 300, Arbitrary = [typeof(JpegCraftedScaledTests)])]
    public void Damaged_files_at_1_4_fail_closed_or_match_libvips(CraftedCase c, int cutSeed)
    {
        var jpeg = c.Magnitude == Magnitude.Typical ? c.Write() : new JpegScaledDecodeTests.EncodeCase(c.Width + 8, c.Height + 8, 1 + (c.Density % 100), c.Layout % 2 == 0 ? "on" : "off", c.Restart, c.Seed % 2 == 0, c.Seed % 9, 20, c.Layout == 0, c.Seed).Encode();
        var rng = new Random(cutSeed);
        var damaged = jpeg[..rng.Next(2, jpeg.Length + 1)];
        for (var flips = rng.Next(0, 4); flips > 0; flips--)
        {
            damaged[rng.Next(damaged.Length)] = rng.Next(3) == 0 ? (byte)0xFF : (byte)rng.Next(256);
        }

        DecodedImage? ours = null;
        try
        {
            ours = ImageDecoder.Decode(damaged, maxReduction: static (_, _) => 4);
        }
        catch (ImageDecodeException)
        {
            return;
        }

        using (ours)
        {
            using var vips = NetVips.Image.JpegloadBuffer(JpegScaledDecodeTests.WithSidesAtLeast(damaged, 4), shrink: 4, autorotate: false, failOn: NetVips.Enums.FailOn.None);
            var expected = vips.WriteToMemory<byte>();
            Assert.Equal((vips.Width, vips.Height, vips.Bands), (ours.PixelWidth, ours.PixelHeight, ours.BytesPerPixel));
            Assert.True(ours.Pixels.SequenceEqual(expected), $"{c}, cut {cutSeed}: Warden decoded a damaged file to other pixels than libvips");
        }
    }

    public enum Magnitude
    {
        /// <summary>What encoders write: 8-bit quantisers, values that dequantise within the sample range.</summary>
        Typical,

        /// <summary>8-bit quantisers, values up to 11 bits: the IDCT's output leaves the sample range.</summary>
        Large,

        /// <summary>16-bit quantisers up to 65535, values up to 15 bits: 16-bit dequantisation wraps, pass 1 saturates.</summary>
        Extreme,
    }

    /// <summary>One crafted file: size, sampling layout, restart interval, value range, density of AC terms (%), seed.</summary>
    public sealed record CraftedCase(int Width, int Height, int Layout, int Restart, Magnitude Magnitude, int Density, int Seed)
    {
        public byte[] Write()
        {
            var rng = new Random(Seed);
            var components = Layouts[Layout].Select(s => new JpegCoefficientWriter.Component(s.H, s.V, Quant(rng))).ToArray();
            var seed = Seed;
            var magnitude = Magnitude;
            var density = Density;
            return JpegCoefficientWriter.Write(Width, Height, components, Restart, (c, bx, by, k) => Value(seed, magnitude, density, c, bx, by, k));
        }

        private ushort[] Quant(Random rng)
        {
            var q = new ushort[64];
            for (var i = 0; i < 64; i++)
            {
                q[i] = Magnitude switch
                {
                    Magnitude.Extreme => (ushort)rng.Next(1, 65536),
                    Magnitude.Large => (ushort)rng.Next(1, 256),
                    _ => (ushort)Math.Clamp(2 + (i / 3) + rng.Next(0, 8), 1, 255),
                };
            }

            return q;
        }

        /// <summary>A coefficient from a hash of its coordinates, so the writer can ask in any order.</summary>
        private static int Value(int seed, Magnitude magnitude, int density, int c, int bx, int by, int k)
        {
            var h = (uint)HashCode.Combine(seed, c, bx, by, k);
            if (k == 0)
            {
                // DC differences must stay within category 15.
                return magnitude switch
                {
                    Magnitude.Extreme => (int)(h % 32767) - 16383,
                    Magnitude.Large => (int)(h % 2047) - 1023,
                    _ => (int)(h % 120) - 60,
                };
            }

            // Denser at low frequencies, as in real files.
            if (h % 100 >= (uint)(density * (64 - k) / 64))
            {
                return 0;
            }

            var sign = ((h >> 8) & 1) == 0 ? 1 : -1;
            var v = magnitude switch
            {
                Magnitude.Extreme => 1 + (int)((h >> 9) % 32767),
                Magnitude.Large => 1 + (int)((h >> 9) % 2047),
                _ => 1 + (int)((h >> 9) % 12),
            };
            return sign * v;
        }
    }
}
