using System.Security.Cryptography;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

/// <summary>
/// libvips reads an upload lazily, after the image is opened, through a pointer into the managed array. The array
/// must stay pinned until the pixels are out: if it were unpinned early, a compacting GC between opening and
/// reading would move it and libvips would read whatever lies at the old address. Compacting collections run
/// continuously on another thread while fresh (movable, gen0) copies of each file are decoded.
/// </summary>
public sealed class ImageDecoderPinningTests
{
    [Theory]
    [InlineData("png", "")]
    [InlineData("webp", "[lossless]")]
    [InlineData("jpg", "[interlace]")] // progressive: libvips, not Warden's decoder
    [InlineData("tif", "")]
    public void Pixels_are_right_while_the_gc_compacts(string format, string options)
    {
        var files = Enumerable.Range(1, 4).Select(seed => SyntheticImages.EncodedSmooth(300 + seed, 200 + seed, format, seed, options)).ToArray();
        var expected = files.Select(f => Digest(ImageDecoder.Decode(f.ToArray()))).ToArray();

        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Garbage first, so the survivors (the upload copies) have somewhere to move to.
                for (var i = 0; i < 64; i++)
                {
                    GC.KeepAlive(new byte[1024]);
                }

                GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: true);
                Thread.Sleep(1); // a collection about every millisecond: most decodes see several
            }
        })
        { IsBackground = true };
        collector.Start();
        try
        {
            for (var round = 0; round < 120; round++)
            {
                var k = round % files.Length;
                var copy = files[k].ToArray(); // a fresh gen0 array the collector may move
                Assert.Equal(expected[k], Digest(ImageDecoder.Decode(copy)));
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
    }

    private static string Digest(DecodedImage image)
    {
        using (image)
        {
            return $"{image.PixelWidth}x{image.PixelHeight}x{image.BytesPerPixel}:{Convert.ToHexString(SHA256.HashData(image.Pixels))}";
        }
    }
}
