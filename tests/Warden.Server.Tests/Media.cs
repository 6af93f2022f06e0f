using NetVips;

namespace Warden.Server.Tests;

/// <summary>Benign synthetic test images, encoded in memory.</summary>
internal static class Media
{
    /// <summary>
    /// A photo-like JPEG (640×480 at q90 is about 100 KB): large random blobs (blurred noise, stretched) that give
    /// PDQ many stable bits, plus fine grain. Different seeds give unrelated images.
    /// </summary>
    public static byte[] Jpeg(int seed, int width = 640, int height = 480, int quality = 90)
    {
        // A 16×12 random image blown up smoothly: blobs with full contrast.
        using var small = Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed)
            .Bandjoin(Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 1000), Image.Gaussnoise(16, 12, sigma: 70, mean: 128, seed: seed + 2000));
        using var stretched = small.Resize(width / 16.0, vscale: height / 12.0, kernel: Enums.Kernel.Cubic);
        using var grain = Image.Gaussnoise(width, height, sigma: 10, mean: 0, seed: seed + 3000);
        using var grainy = stretched + grain;
        using var rgb = grainy.Cast(Enums.BandFormat.Uchar);
        return rgb.JpegsaveBuffer(q: quality);
    }
}
