using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;

namespace Warden.Core.Tests;

/// <summary>Hostile and broken inputs: each gives a typed error (or a defined hash), never a crash or a memory blow-up.</summary>
public sealed class MalformedInputTests
{
    private static ImageDecodeError DecodeError(byte[] data, ImageLimits? limits = null) =>
        Assert.Throws<ImageDecodeException>(() => new PdqImageHasher(PdqResize.Fast, limits).Hash(data)).Error;

    [Fact]
    public void Zero_bytes_is_empty() => Assert.Equal(ImageDecodeError.Empty, DecodeError([]));

    [Fact]
    public void Text_is_unsupported() => Assert.Equal(ImageDecodeError.UnsupportedFormat, DecodeError("hello, this is not an image"u8.ToArray()));

    [Theory]
    [InlineData("jpg")]
    [InlineData("png")]
    [InlineData("webp")]
    [InlineData("gif")]
    [InlineData("tif")]
    public void Truncated_files_are_errors(string format)
    {
        var whole = SyntheticImages.EncodedSmooth(300, 200, format);
        var half = whole[..(whole.Length / 2)];
        var error = DecodeError(half);
        Assert.True(error is ImageDecodeError.Truncated or ImageDecodeError.Corrupt, $"{format}: {error}");
    }

    [Fact]
    public void Jpeg_cut_at_every_tenth_offset_never_throws_anything_else()
    {
        var whole = SyntheticImages.EncodedSmooth(96, 64, "jpg");
        var hasher = new PdqImageHasher();
        for (var len = 0; len < whole.Length - 2; len += Math.Max(1, whole.Length / 97))
        {
            try
            {
                hasher.Hash(whole[..len]);
            }
            catch (ImageDecodeException)
            {
            }
        }
    }

    [Fact]
    public void Random_byte_flips_give_typed_errors_or_hashes()
    {
        var whole = SyntheticImages.EncodedSmooth(128, 96, "png");
        var rng = new Random(42);
        var hasher = new PdqImageHasher();
        for (var i = 0; i < 100; i++)
        {
            var copy = (byte[])whole.Clone();
            for (var k = 0; k < 4; k++)
            {
                copy[rng.Next(8, copy.Length)] ^= (byte)rng.Next(1, 256);
            }

            try
            {
                hasher.Hash(copy);
            }
            catch (ImageDecodeException)
            {
            }
        }
    }

    [Fact]
    public void One_pixel_image_hashes_to_zero_with_quality_zero()
    {
        var png = SyntheticImages.Encode([10, 20, 30], 1, 1, "png");
        var result = new PdqImageHasher().Hash(png, dihedral: true);
        Assert.Equal(PdqHash.Zero, result.Pdq.Hash);
        Assert.Equal(0, result.Pdq.Quality);
        Assert.Equal((1, 1), (result.Width, result.Height));
    }

    [Fact]
    public void Png_declaring_100k_by_100k_pixels_is_refused_before_decoding()
    {
        var png = PngWithDeclaredSize(100_000, 100_000);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var error = DecodeError(png);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(ImageDecodeError.TooManyPixels, error);
        Assert.True(allocated < 16 * 1024 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Pixel_limit_is_configurable()
    {
        var png = SyntheticImages.EncodedSmooth(100, 100, "png");
        Assert.Equal(ImageDecodeError.TooManyPixels, DecodeError(png, new ImageLimits(MaxPixels: 9_999)));
        Assert.Equal(ImageDecodeError.TooManyBytes, DecodeError(png, new ImageLimits(MaxBytes: 10)));
        new PdqImageHasher(PdqResize.Fast, new ImageLimits(MaxPixels: 10_000)).Hash(png);
    }

    [Fact]
    public void Exif_orientation_is_not_applied()
    {
        // The reference ignores EXIF orientation (dihedral variants cover it): width/height stay as stored.
        var jpg = SyntheticImages.EncodedSmooth(120, 80, "jpg");
        var result = new PdqImageHasher().Hash(jpg);
        Assert.Equal((120, 80), (result.Width, result.Height));
    }

    /// <summary>A valid PNG signature + IHDR declaring the given size, then a tiny IDAT and IEND.</summary>
    internal static byte[] PngWithDeclaredSize(int width, int height)
    {
        var small = SyntheticImages.EncodedSmooth(8, 8, "png");
        var copy = (byte[])small.Clone();

        // IHDR data starts at byte 16: width, height big-endian; then fix the chunk CRC.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(16), width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(20), height);
        var crc = Crc32(copy.AsSpan(12, 17));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(29), crc);
        return copy;
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }
}
