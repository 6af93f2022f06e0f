namespace Warden.Core.Provenance;

/// <summary>A known imwatermark payload.</summary>
/// <param name="Name">SD1, SD2, SDXL-48.</param>
/// <param name="Bits">The payload bits, MSB first.</param>
public sealed record WatermarkPayload(string Name, bool[] Bits)
{
    /// <summary>From bytes, MSB first (numpy unpackbits).</summary>
    public static WatermarkPayload FromBytes(string name, ReadOnlySpan<byte> bytes)
    {
        var bits = new bool[bytes.Length * 8];
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] = ((bytes[i >> 3] >> (7 - (i & 7))) & 1) != 0;
        }

        return new WatermarkPayload(name, bits);
    }
}

/// <summary>
/// Decoder for imwatermark's <c>dwtDct</c> scheme (ShieldMnt/invisible-watermark maxDct.py, scale 36 on the U
/// channel, 4×4 blocks of the Haar LL band), as embedded by Stable Diffusion's reference scripts (SD1
/// "StableDiffusionV1", SD2 "SDV2") and SDXL (48 bits, Stability's scripts and diffusers). No model needed.
/// Tries the colour offset δ ∈ {128 (uint8 pipeline), 0.5 (float pipeline)} and both channel orders
/// (diffusers passes RGB where imwatermark expects BGR), and keeps the best fit per payload.
/// </summary>
public static class ImWatermark
{
    /// <summary>Scale of the U channel in imwatermark (scales [0, 36, 36], only U used).</summary>
    public const double Scale = 36;

    /// <summary>The payloads looked for.</summary>
    public static IReadOnlyList<WatermarkPayload> Payloads { get; } =
    [
        WatermarkPayload.FromBytes("SD1", "StableDiffusionV1"u8),
        WatermarkPayload.FromBytes("SD2", "SDV2"u8),
        WatermarkPayload.FromBytes("SDXL-48", [0xB3, 0xEC, 0x90, 0x7B, 0xB1, 0x9E]),
    ];

    /// <summary>Chance level above which a fit is not reported (4 conventions tried per payload are counted).</summary>
    public const double MaxFalsePositive = 1e-4;

    /// <summary>Decodes every known payload and returns those whose fit is unlikely by chance.</summary>
    /// <param name="pixels">Interleaved 8-bit pixels, R first.</param>
    /// <param name="width">Width.</param>
    /// <param name="height">Height.</param>
    /// <param name="bytesPerPixel">3 or 4 (grey images carry no U signal).</param>
    public static List<WatermarkResult> Detect(ReadOnlySpan<byte> pixels, int width, int height, int bytesPerPixel)
    {
        var found = new List<WatermarkResult>();
        if (bytesPerPixel < 3)
        {
            return found;
        }

        string[] names = ["delta128/rgb", "delta128/bgr", "delta0.5/rgb", "delta0.5/bgr"];
        var all = AllBlockScores(pixels, width, height, bytesPerPixel, out var blockCount);
        var votes = names.Select((name, v) => (name, all[v], blockCount)).ToList();
        foreach (var payload in Payloads)
        {
            var n = payload.Bits.Length;
            WatermarkResult? best = null;
            foreach (var (name, scores, blocks) in votes)
            {
                if (blocks < n)
                {
                    continue;
                }

                var ber = BitErrorRate(scores, blocks, payload.Bits);
                if (best is null || ber < best.BitErrorRate)
                {
                    best = new WatermarkResult("imwatermark.dwtDct", payload.Name, ber, name, 0);
                }
            }

            if (best is null)
            {
                continue;
            }

            var errors = (int)Math.Round(best.BitErrorRate * n);
            var chance = Math.Min(1, names.Length * BinomialTail(n, errors));
            if (chance < MaxFalsePositive)
            {
                found.Add(best with { Confidence = chance < 1e-8 ? 0.9 : 0.6 });
            }
            else if (GridSearch(votes.Select(v => (v.name, v.Item2)).ToList(), width, height, payload) is { } cropped)
            {
                found.Add(cropped);
            }
        }

        return found;
    }

    /// <summary>
    /// A crop moves the payload: block (i, j) of the crop carried bit ((i + oy/8)·B0 + j + ox/8) mod n, where B0
    /// is the original width in blocks. Only B0 and the residue c of the offset matter, so every original
    /// width that is a multiple of 64 from 512 to 2048 and every c is tried (for 8-pixel-aligned crops); the
    /// false-positive bound is scaled by the number of hypotheses.
    /// </summary>
    private static WatermarkResult? GridSearch(List<(string Name, double[] Scores)> variants, int width, int height, WatermarkPayload payload)
    {
        var n = payload.Bits.Length;
        var blockCols = width / 4 * 4 / 8;
        var blockRows = height / 4 * 4 / 8;
        var originals = Enumerable.Range(8, 25).Select(k => k * 64).Where(w => w >= width).Select(w => w / 8).ToList();
        if (originals.Count == 0 || blockCols * blockRows < n)
        {
            return null;
        }

        var hypotheses = variants.Count * originals.Count * n;
        var sum = new double[n];
        var count = new int[n];
        (double Ber, string Variant)? best = null;
        foreach (var (name, scores) in variants)
        {
            foreach (var b0 in originals)
            {
                Array.Clear(sum);
                Array.Clear(count);
                for (var i = 0; i < blockRows; i++)
                {
                    var idx = (int)((long)i * b0 % n);
                    var row = i * blockCols;
                    for (var j = 0; j < blockCols; j++)
                    {
                        sum[idx] += scores[row + j];
                        count[idx]++;
                        if (++idx == n)
                        {
                            idx = 0;
                        }
                    }
                }

                for (var c = 0; c < n; c++)
                {
                    var errors = 0;
                    for (var t = 0; t < n; t++)
                    {
                        var b = ((t - c) % n + n) % n;
                        var bit = count[b] > 0 && sum[b] / count[b] * 255 > 127;
                        if (bit != payload.Bits[t])
                        {
                            errors++;
                        }
                    }

                    if (best is null || errors < best.Value.Ber * n)
                    {
                        best = ((double)errors / n, $"{name}/crop of width {b0 * 8}");
                    }
                }
            }
        }

        var chance = Math.Min(1, hypotheses * BinomialTail(n, (int)Math.Round(best!.Value.Ber * n)));
        return chance < MaxFalsePositive
            ? new WatermarkResult("imwatermark.dwtDct", payload.Name, best.Value.Ber, best.Value.Variant, chance < 1e-8 ? 0.9 : 0.6)
            : null;
    }

    /// <summary>The per-block bit reading (0 or 1) in block order, for one decode convention.</summary>
    internal static double[] BlockScores(ReadOnlySpan<byte> px, int width, int height, int bpp, double delta, bool bgr, out int blocks) =>
        AllBlockScores(px, width, height, bpp, out blocks)[(delta > 1 ? 0 : 2) + (bgr ? 1 : 0)];

    /// <summary>
    /// Block readings for the four conventions (δ128/rgb, δ128/bgr, δ0.5/rgb, δ0.5/bgr) in one pass over the
    /// pixels: each pixel's two U values (B or R as blue) are computed once and offset by both δ.
    /// </summary>
    internal static double[][] AllBlockScores(ReadOnlySpan<byte> px, int width, int height, int bpp, out int blocks)
    {
        var rows = height / 4 * 4;
        var cols = width / 4 * 4;
        var blockRows = rows / 8;
        var blockCols = cols / 8;
        blocks = blockRows * blockCols;
        var scores = new double[4][];
        for (var v = 0; v < 4; v++)
        {
            scores[v] = new double[Math.Max(blocks, 0)];
        }

        Span<double> ll = stackalloc double[4 * 16];
        for (var br = 0; br < blockRows; br++)
        {
            for (var bc = 0; bc < blockCols; bc++)
            {
                ll.Clear();
                for (var k = 0; k < 16; k++)
                {
                    var y0 = ((br * 4) + (k >> 2)) * 2;
                    var x0 = ((bc * 4) + (k & 3)) * 2;
                    for (var dy = 0; dy < 2; dy++)
                    {
                        var o = ((((y0 + dy) * width) + x0) * bpp);
                        for (var dx = 0; dx < 2; dx++, o += bpp)
                        {
                            double r = px[o], g = px[o + 1], b = px[o + 2];
                            var uRgb = 0.492 * (b - ((0.299 * r) + (0.587 * g) + (0.114 * b)));
                            var uBgr = 0.492 * (r - ((0.299 * b) + (0.587 * g) + (0.114 * r)));

                            // OpenCV's 8-bit conversion rounds and saturates; the float pipeline keeps the value.
                            ll[k] += Math.Clamp(Math.Round(uRgb + 128, MidpointRounding.ToEven), 0, 255);
                            ll[16 + k] += Math.Clamp(Math.Round(uBgr + 128, MidpointRounding.ToEven), 0, 255);
                            ll[32 + k] += uRgb + 0.5;
                            ll[48 + k] += uBgr + 0.5;
                        }
                    }
                }

                for (var v = 0; v < 4; v++)
                {
                    var block = ll.Slice(v * 16, 16);
                    var pos = 1;
                    for (var p = 2; p < 16; p++)
                    {
                        if (Math.Abs(block[p]) > Math.Abs(block[pos]))
                        {
                            pos = p;
                        }
                    }

                    // LL = sum / 2.
                    scores[v][(br * blockCols) + bc] = Math.Abs(block[pos] / 2) % Scale > 0.5 * Scale ? 1 : 0;
                }
            }
        }

        return scores;
    }

    /// <summary>Averages block votes per payload bit (block k → bit k mod n) and counts mismatches.</summary>
    internal static double BitErrorRate(double[] scores, int blocks, bool[] expected)
    {
        var n = expected.Length;
        var sum = new double[n];
        var count = new int[n];
        for (var k = 0; k < blocks; k++)
        {
            sum[k % n] += scores[k];
            count[k % n]++;
        }

        var errors = 0;
        for (var i = 0; i < n; i++)
        {
            var bit = count[i] > 0 && sum[i] / count[i] * 255 > 127;
            if (bit != expected[i])
            {
                errors++;
            }
        }

        return (double)errors / n;
    }

    /// <summary>P(X ≤ k) for X ~ Binomial(n, 1/2): the chance of a fit this good on an unmarked image.</summary>
    internal static double BinomialTail(int n, int k)
    {
        double term = Math.Pow(0.5, n), total = 0;
        for (var i = 0; i <= k; i++)
        {
            total += term;
            term = term * (n - i) / (i + 1);
        }

        return total;
    }
}
