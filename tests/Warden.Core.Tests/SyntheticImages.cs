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

    /// <summary>RGB pixels: soft-edged discs of random colours on a gradient, a photo-like layout with distinct features.</summary>
    public static byte[] Blobs(int width, int height, int seed)
    {
        var rng = new Random(seed);
        var blobs = Enumerable.Range(0, 12).Select(_ => (x: rng.NextDouble() * width, y: rng.NextDouble() * height, r: (0.05 + (rng.NextDouble() * 0.2)) * width, c: new[] { rng.Next(256), rng.Next(256), rng.Next(256) })).ToArray();
        var px = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var v = 60.0 + (120.0 * x / width * (c + 1) / 3) + (40.0 * y / height);
                    foreach (var b in blobs)
                    {
                        var d = Math.Sqrt(((x - b.x) * (x - b.x)) + ((y - b.y) * (y - b.y)));
                        var w = Math.Clamp((b.r - d) / 4, 0, 1);
                        v = (v * (1 - w)) + (b.c[c] * w);
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
