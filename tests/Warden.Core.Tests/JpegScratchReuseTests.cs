using FsCheck;
using FsCheck.Xunit;
using Warden.Core.Imaging;
using Warden.Core.Imaging.Jpeg;

namespace Warden.Core.Tests;

/// <summary>
/// The JPEG decoder's planes and Huffman lookups are pooled (<see cref="JpegScratch"/>): a decode must never see what an
/// earlier one left in them (the same pool bucket comes back at once on the same thread), and every rented array must
/// go back whatever the outcome (pixels, "not mine", or an exception for a damaged file).
/// </summary>
public sealed class JpegScratchReuseTests
{
    public static Arbitrary<JpegCraftedScaledTests.CraftedCase> Cases() => JpegCraftedScaledTests.Cases();

    [Property(MaxTest = 150, Arbitrary = [typeof(JpegScratchReuseTests)])]
    public void A_decode_after_another_file_is_the_same_as_after_a_third(JpegCraftedScaledTests.CraftedCase a, JpegCraftedScaledTests.CraftedCase b, JpegCraftedScaledTests.CraftedCase other, int cutSeed)
    {
        // B is whole or damaged (cut, bytes overwritten): either way its outcome must not depend on what came before.
        var fileA = a.Write();
        var fileB = b.Write();
        var rng = new Random(cutSeed);
        if (rng.Next(2) == 0)
        {
            fileB = fileB[..rng.Next(2, fileB.Length + 1)];
            for (var flips = rng.Next(0, 4); flips > 0; flips--)
            {
                fileB[rng.Next(fileB.Length)] = rng.Next(3) == 0 ? (byte)0xFF : (byte)rng.Next(256);
            }
        }

        // Counted from here: other tests on this thread may hold tables they built outside a decoder.
        var outstanding = JpegScratch.Outstanding;
        foreach (var scale in new[] { 4, 8 })
        {
            _ = Outcome(fileA, scale);
            var afterA = Outcome(fileB, scale);
            _ = Outcome(other.Write(), scale);
            var afterOther = Outcome(fileB, scale);
            Assert.Equal(afterOther.Kind, afterA.Kind);
            Assert.True(afterOther.Pixels.AsSpan().SequenceEqual(afterA.Pixels), $"B at 1/{scale} decoded differently after A ({a}) than after {other}");
            Assert.Equal(outstanding, JpegScratch.Outstanding);
        }
    }

    [Property(MaxTest = 100, Arbitrary = [typeof(JpegScratchReuseTests)])]
    public void A_whole_file_after_a_larger_one_is_libvips_pixels(JpegCraftedScaledTests.CraftedCase a, JpegCraftedScaledTests.CraftedCase b)
    {
        // A larger, busier A first (its noise fills the same pool buckets), then B against libvips, the outside oracle.
        var big = a with { Width = a.Width + 60, Height = a.Height + 60, Density = 100 };
        var small = b with { Magnitude = JpegCraftedScaledTests.Magnitude.Typical, Layout = b.Layout % 9 };
        var outstanding = JpegScratch.Outstanding;
        foreach (var scale in new[] { 4, 8 })
        {
            _ = Outcome(big.Write(), scale);
            var jpeg = small.Write();
            using var vips = NetVips.Image.JpegloadBuffer(JpegScaledDecodeTests.WithSidesAtLeast(jpeg, scale), shrink: scale, autorotate: false);
            using var ours = ImageDecoder.Decode(jpeg, maxReduction: (_, _) => scale);
            Assert.True(ours.Pixels.SequenceEqual(vips.WriteToMemory<byte>()), $"{small} at 1/{scale} after {big}: pixels differ from libvips");
            Assert.Equal(outstanding, JpegScratch.Outstanding);
        }
    }

    [Fact]
    public void Over_limit_arrays_are_allocated_not_pooled()
    {
        var outstanding = JpegScratch.Outstanding;
        var huge = JpegScratch.Rent<short>(JpegScratch.MaxPooledLength + 1);
        Assert.Equal(JpegScratch.MaxPooledLength + 1, huge.Length);
        Assert.Equal(outstanding, JpegScratch.Outstanding);
        JpegScratch.Return(huge);
        Assert.Equal(outstanding, JpegScratch.Outstanding);

        var pooled = JpegScratch.Rent<short>(1000);
        pooled.AsSpan().Fill(7);
        JpegScratch.Return(pooled);
        var again = JpegScratch.Rent<short>(1000);
        Assert.True(again.AsSpan(0, 1000).IndexOfAnyExcept((short)0) < 0, "a rented array shows an earlier renter's data");
        JpegScratch.Return(again);
        Assert.Equal(outstanding, JpegScratch.Outstanding);
    }

    private static (string Kind, byte[] Pixels) Outcome(byte[] jpeg, int scale)
    {
        try
        {
            return JpegDcDecoder.TryDecode(jpeg, ImageLimits.Default, scale, out var image) && image is not null
                ? ("pixels", image.Pixels)
                : ("declined", []);
        }
        catch (ImageDecodeException ex)
        {
            return (ex.Error + ": " + ex.Message, []);
        }
    }
}
