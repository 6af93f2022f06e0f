using Warden.Core.Provenance;

namespace Warden.Core.Tests.Provenance;

/// <summary>
/// imwatermark dwtDct: the test embeds the published algorithm (maxDct.py: U channel, one Haar level, 4×4 LL
/// blocks, largest non-first coefficient quantised with scale 36) and the decoder must find it, losslessly and
/// after a JPEG re-encode, and must not find it in clean images.
/// </summary>
public sealed class WatermarkTests
{
    /// <summary>Embeds <paramref name="payload"/> as imwatermark does: uint8 pipeline (δ=128, rounding) or float (δ=0.5), optionally with R and B swapped as diffusers does.</summary>
    internal static byte[] Embed(byte[] rgb, int width, int height, bool[] payload, bool floatPipeline, bool swapRb)
    {
        var delta = floatPipeline ? 0.5 : 128;
        var n = width * height;
        double[] y = new double[n], u = new double[n], v = new double[n];
        for (var i = 0; i < n; i++)
        {
            double r = rgb[i * 3], g = rgb[(i * 3) + 1], b = rgb[(i * 3) + 2];
            if (swapRb)
            {
                (r, b) = (b, r);
            }

            y[i] = (0.299 * r) + (0.587 * g) + (0.114 * b);
            u[i] = (0.492 * (b - y[i])) + delta;
            v[i] = (0.877 * (r - y[i])) + delta;
            if (!floatPipeline)
            {
                y[i] = Math.Clamp(Math.Round(y[i]), 0, 255);
                u[i] = Math.Clamp(Math.Round(u[i]), 0, 255);
                v[i] = Math.Clamp(Math.Round(v[i]), 0, 255);
            }
        }

        var rows = height / 4 * 4;
        var cols = width / 4 * 4;
        var llCols = cols / 2;
        var blockCols = llCols / 4;
        var blockRows = rows / 2 / 4;
        var num = 0;
        var block = new double[16];
        for (var br = 0; br < blockRows; br++)
        {
            for (var bc = 0; bc < blockCols; bc++, num++)
            {
                for (var k = 0; k < 16; k++)
                {
                    var (py, px) = ((((br * 4) + (k / 4)) * 2), (((bc * 4) + (k % 4)) * 2));
                    block[k] = (u[(py * width) + px] + u[(py * width) + px + 1] + u[((py + 1) * width) + px] + u[((py + 1) * width) + px + 1]) / 2;
                }

                var pos = 1;
                for (var p = 2; p < 16; p++)
                {
                    if (Math.Abs(block[p]) > Math.Abs(block[pos]))
                    {
                        pos = p;
                    }
                }

                var bit = payload[num % payload.Length] ? 1 : 0;
                var val = block[pos];
                var updated = Math.Sign(val) * (Math.Floor(Math.Abs(val) / 36) + 0.25 + (0.5 * bit)) * 36;

                // Inverse Haar of a changed LL coefficient: each of its 4 pixels moves by half the change.
                var (ly, lx) = ((((br * 4) + (pos / 4)) * 2), (((bc * 4) + (pos % 4)) * 2));
                var change = (updated - val) / 2;
                foreach (var o in new[] { (ly * width) + lx, (ly * width) + lx + 1, ((ly + 1) * width) + lx, ((ly + 1) * width) + lx + 1 })
                {
                    u[o] += change;
                }
            }
        }

        var result = new byte[rgb.Length];
        for (var i = 0; i < n; i++)
        {
            var uu = floatPipeline ? u[i] : Math.Clamp(Math.Floor(u[i]), 0, 255);
            double r = y[i] + (1.140 * (v[i] - delta)), g = y[i] - (0.395 * (uu - delta)) - (0.581 * (v[i] - delta)), b = y[i] + (2.032 * (uu - delta));
            if (swapRb)
            {
                (r, b) = (b, r);
            }

            result[i * 3] = (byte)Math.Clamp(Math.Round(r), 0, 255);
            result[(i * 3) + 1] = (byte)Math.Clamp(Math.Round(g), 0, 255);
            result[(i * 3) + 2] = (byte)Math.Clamp(Math.Round(b), 0, 255);
        }

        return result;
    }

    /// <summary>A smooth synthetic photo with seeded grain (flat areas defeat dwtDct in any implementation).</summary>
    internal static byte[] Textured(int width, int height, int seed, int grain)
    {
        var px = SyntheticImages.Smooth(width, height, seed);
        var rng = new Random(seed);
        for (var i = 0; i < px.Length; i++)
        {
            px[i] = (byte)Math.Clamp(px[i] + rng.Next(-grain, grain + 1), 0, 255);
        }

        return px;
    }

    private static WatermarkPayload Payload(string name) => ImWatermark.Payloads.Single(p => p.Name == name);

    private static ProvenanceReport ReadPixels(byte[] file) => ProvenanceReader.Read(file, ProvenanceOptions.Default with { Pixels = PixelChecks.Always });

    [Theory]
    [InlineData("SD1", false, false, "delta128/rgb")]
    [InlineData("SD2", false, false, "delta128/rgb")]
    [InlineData("SDXL-48", true, false, "delta0.5/rgb")]
    [InlineData("SDXL-48", true, true, "delta0.5/bgr")]
    public void EmbeddedPayloadIsDecodedFromPng(string payload, bool floatPipeline, bool swap, string variant)
    {
        // 1024²: ~120 block votes per SD1 bit; at 512² imwatermark itself misreads a tenth of the bits (reference §3.1).
        const int Size = 1024;
        var marked = Embed(Textured(Size, Size, 11, 20), Size, Size, Payload(payload).Bits, floatPipeline, swap);
        var r = ReadPixels(Fixtures.Png(Size, Size, marked, 3));
        var wm = r.Watermarks.Single(w => w.Payload == payload);
        Assert.True(wm.BitErrorRate <= 0.1, $"BER {wm.BitErrorRate}");
        Assert.Equal(variant, wm.Variant);
        Assert.Contains(r.Signals, s => s.Type == "wm.imwatermark_dwtdct" && s.AiIndication >= AiIndication.Moderate);
    }

    [Fact]
    public void SdxlMarkSurvivesJpegQuality95()
    {
        const int Size = 1024;
        var marked = Embed(Textured(Size, Size, 12, 20), Size, Size, Payload("SDXL-48").Bits, floatPipeline: true, swapRb: false);
        var jpeg = SyntheticImages.Encode(marked, Size, Size, "jpg", "[Q=95]");
        var wm = ReadPixels(jpeg).Watermarks.Single(w => w.Payload == "SDXL-48");
        Assert.True(wm.BitErrorRate <= 0.25, $"BER {wm.BitErrorRate}");
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void CleanImagesCarryNoMark(int seed)
    {
        const int Size = 512;
        var png = Fixtures.Png(Size, Size, Textured(Size, Size, seed, 20), 3);
        Assert.Empty(ReadPixels(png).Watermarks);
        Assert.Empty(ReadPixels(SyntheticImages.EncodedSmooth(Size, Size, "jpg", seed)).Watermarks);
    }

    [Fact]
    public void ChanceOfAFitIsTheBinomialTail()
    {
        Assert.Equal(0.5, ImWatermark.BinomialTail(1, 0), 10);
        Assert.Equal(1.0, ImWatermark.BinomialTail(48, 48), 10);
        Assert.True(ImWatermark.BinomialTail(136, 27) < 1e-12);
    }

    [Fact]
    public void GridAlignedCropIsFoundByTheGridSearch()
    {
        const int Size = 1024;
        var marked = Embed(Textured(Size, Size, 14, 20), Size, Size, Payload("SD1").Bits, floatPipeline: false, swapRb: false);

        // Crop 16 px from the left and 24 px from the top (8-pixel aligned), to 960×960.
        const int W = 960;
        var crop = new byte[W * W * 3];
        for (var y = 0; y < W; y++)
        {
            marked.AsSpan((((y + 24) * Size) + 16) * 3, W * 3).CopyTo(crop.AsSpan(y * W * 3));
        }

        var wm = ReadPixels(Fixtures.Png(W, W, crop, 3)).Watermarks.Single(w => w.Payload == "SD1");
        Assert.Contains("crop of width 1024", wm.Variant, StringComparison.Ordinal);
        Assert.True(wm.BitErrorRate <= 0.1, $"BER {wm.BitErrorRate}");
    }
}
