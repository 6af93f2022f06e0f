using NetVips;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Tests;

/// <summary>Benign images made by the tests themselves: smooth colour fields and their encodings.</summary>
internal static class SyntheticImages
{
    /// <summary>RGB pixels: a sum of a few random low-frequency waves per channel (photo-like, quality 100).</summary>
    public static byte[] Smooth(int width, int height, int seed)
    {
        var rng = new Random(seed);
        var waves = Enumerable.Range(0, 3 * 4).Select(_ => (fx: rng.NextDouble() * 6, fy: rng.NextDouble() * 6, ph: rng.NextDouble() * 6.28, a: 20 + (rng.NextDouble() * 40))).ToArray();
        var px = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var v = 128.0;
                    for (var w = 0; w < 4; w++)
                    {
                        var (fx, fy, ph, a) = waves[(c * 4) + w];
                        v += a * Math.Sin((fx * x / width * 6.28) + (fy * y / height * 6.28) + ph);
                    }

                    px[(((y * width) + x) * 3) + c] = (byte)Math.Clamp(v, 0, 255);
                }
            }
        }

        return px;
    }

    /// <summary>Applies a dihedral transform to square RGB pixels (n x n).</summary>
    public static byte[] Transform(byte[] px, int n, Dihedral d)
    {
        var o = new byte[px.Length];
        for (var y = 0; y < n; y++)
        {
            for (var x = 0; x < n; x++)
            {
                // (x, y) in the output takes the source pixel (sx, sy).
                var (sx, sy) = d switch
                {
                    Dihedral.Original => (x, y),
                    Dihedral.Rotate90 => (n - 1 - y, x),
                    Dihedral.Rotate180 => (n - 1 - x, n - 1 - y),
                    Dihedral.Rotate270 => (y, n - 1 - x),
                    Dihedral.FlipX => (x, n - 1 - y),
                    Dihedral.FlipY => (n - 1 - x, y),
                    Dihedral.FlipPlus1 => (y, x),
                    _ => (n - 1 - y, n - 1 - x),
                };
                Array.Copy(px, ((sy * n) + sx) * 3, o, ((y * n) + x) * 3, 3);
            }
        }

        return o;
    }

    /// <summary>Encodes RGB pixels with libvips ("png", "jpg", "webp", "gif", "tif").</summary>
    public static byte[] Encode(byte[] rgb, int width, int height, string format, string options = "")
    {
        using var image = Image.NewFromMemory(rgb, width, height, 3, Enums.BandFormat.Uchar);
        return image.WriteToBuffer("." + format + options);
    }

    public static byte[] EncodedSmooth(int width, int height, string format, int seed = 1, string options = "") =>
        Encode(Smooth(width, height, seed), width, height, format, options);
}
