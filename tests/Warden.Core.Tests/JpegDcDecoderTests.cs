using System.Diagnostics;
using FsCheck.Xunit;
using Warden.Core.Imaging;
using Warden.Core.Imaging.Jpeg;
using Xunit.Abstractions;

namespace Warden.Core.Tests;

/// <summary>
/// The DC-only JPEG decoder against libvips' own 1/8 decode (libjpeg-turbo's 1x1 IDCT), on generated
/// fixtures (TestData/jpeg/README.md), the shared PDQ JPEGs and large wallpapers when present, and on
/// hostile input: every prefix, byte flips, bogus headers.
/// </summary>
public sealed class JpegDcDecoderTests(ITestOutputHelper output)
{
    private static readonly string[] Wallpapers =
    [
        "/usr/share/wallpapers/Flow/contents/images/5120x2880.jpg",
        "/usr/share/wallpapers/Volna/contents/images/5120x2880.jpg",
        "/usr/share/wallpapers/Honeywave/contents/images/5120x2880.jpg",
        "/usr/share/wallpapers/Shell/contents/images/5120x2880.jpg",
    ];

    public static TheoryData<string> SupportedFixtures()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(TestData.Own("jpeg"), "*.jpg").Order(StringComparer.Ordinal))
        {
            if (!Path.GetFileName(file).StartsWith("unsupported", StringComparison.Ordinal))
            {
                data.Add(Path.GetFileName(file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SupportedFixtures))]
    public void Fixture_matches_libvips_shrink_8(string file)
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", file));
        if (file.Contains("-1x1", StringComparison.Ordinal))
        {
            // libvips cannot shrink below one whole block; a flat 1x1 image's block mean is its pixel.
            Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var tiny));
            using var full = NetVips.Image.JpegloadBuffer(bytes);
            var pixel = full.WriteToMemory<byte>();
            Assert.Equal((1, 1, 3), (tiny!.Width, tiny.Height, tiny.BytesPerPixel));
            Assert.All(Enumerable.Range(0, 3), i => Assert.InRange(tiny.Pixels[i] - pixel[i], -2, 2));
            return;
        }

        var (max, mean) = CompareWithLibvips(bytes, file);

        // Luma is libjpeg's own arithmetic, and at 1/8 scale libjpeg-turbo upsamples 4:2:2 and 4:4:0 chroma
        // by replication (no fancy upsampling when the DCT is scaled), so those match exactly. For 4:2:0 it
        // scales the chroma IDCT to 2x2 instead (AC terms): sequential files get the same 2x2 IDCT here and match
        // too; progressive ones replicate the chroma block mean (their AC scans are skipped), a difference at
        // colour edges only, which the grey-content 4:2:0 fixtures (flat chroma) rule out elsewhere.
        var chroma420 = file.Contains("ycc420", StringComparison.Ordinal) && !file.Contains("greycontent", StringComparison.Ordinal) &&
                        file.Contains("progressive", StringComparison.Ordinal);
        if (!chroma420)
        {
            Assert.True(max <= 1, $"max difference {max}");
        }
        else
        {
            Assert.True(max <= 64 && mean <= 16, $"max difference {max}, mean {mean:F3}");
        }
    }

    [Theory]
    [InlineData("unsupported-arithmetic-333x211.jpg", 333, 211, 3, false)]
    [InlineData("unsupported-cmyk-97x61.jpg", 97, 61, 4, false)]
    public void Unsupported_fixtures_return_false(string file, int width, int height, int components, bool progressive)
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", file));
        Assert.False(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var image));
        Assert.Null(image);
        Assert.True(JpegDcDecoder.TryReadHeader(bytes, out var info));
        Assert.Equal(new JpegHeaderInfo(width, height, components, progressive, false), info);
    }

    [Theory]
    [InlineData("grey-baseline-333x211.jpg", 333, 211, 1, false)]
    [InlineData("grey-progressive-9x17.jpg", 9, 17, 1, true)]
    [InlineData("ycc420-progressive-333x211.jpg", 333, 211, 3, true)]
    [InlineData("ycc422-baseline-333x211.jpg", 333, 211, 3, false)]
    public void Header_is_read_without_decoding(string file, int width, int height, int components, bool progressive)
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", file));
        Assert.True(JpegDcDecoder.TryReadHeader(bytes, out var info));
        Assert.Equal(new JpegHeaderInfo(width, height, components, progressive, true), info);

        // The header alone is enough: everything after the SOF may be missing.
        var sof = IndexOfSof(bytes);
        Assert.True(JpegDcDecoder.TryReadHeader(bytes.AsSpan(0, sof + 2 + ((bytes[sof + 2] << 8) | bytes[sof + 3])), out var again));
        Assert.Equal(info, again);
    }

    [Fact]
    public void Header_read_of_garbage_returns_false()
    {
        Assert.False(JpegDcDecoder.TryReadHeader([], out _));
        Assert.False(JpegDcDecoder.TryReadHeader([0xFF, 0xD8], out _));
        Assert.False(JpegDcDecoder.TryReadHeader([0x89, 0x50, 0x4E, 0x47], out _));
    }

    [Fact]
    public void Output_has_one_pixel_per_block()
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", "ycc420-baseline-333x211.jpg"));
        Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var image));
        Assert.Equal(42, image!.Width);
        Assert.Equal(27, image.Height);
        Assert.Equal(3, image.BytesPerPixel);
        Assert.Equal(42 * 27 * 3, image.Pixels.Length);

        bytes = File.ReadAllBytes(TestData.Own("jpeg", "grey-progressive-9x17.jpg"));
        Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out image));
        Assert.Equal((2, 3, 1), (image!.Width, image.Height, image.BytesPerPixel));
    }

    [Theory]
    [InlineData("ycc420-baseline-333x211.jpg")]
    [InlineData("grey-progressive-333x211.jpg")]
    [InlineData("ycc420-progressive-splitdc-333x211.jpg")]
    public void Missing_EOI_is_accepted(string file)
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", file));
        Assert.Equal(0xD9, bytes[^1]);
        Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var whole));
        Assert.True(JpegDcDecoder.TryDecode(bytes.AsSpan(0, bytes.Length - 2), ImageLimits.Default, out var cut));
        Assert.Equal(whole!.Pixels, cut!.Pixels);
    }

    [Fact]
    public void Progressive_file_cut_after_its_last_DC_scan_decodes()
    {
        // libjpeg's standard progression puts the DC refinement 7th of 10 scans: the last AC scans
        // are not needed, so a file cut inside them still yields the full DC image.
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", "ycc420-progressive-333x211.jpg"));
        Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var whole));
        var lastSos = LastIndexOfMarker(bytes, 0xDA);
        Assert.True(JpegDcDecoder.TryDecode(bytes.AsSpan(0, lastSos + 20), ImageLimits.Default, out var cut));
        Assert.Equal(whole!.Pixels, cut!.Pixels);
    }

    [Theory]
    [InlineData("ycc420-q20-progressive-97x61.jpg")]
    [InlineData("grey-progressive-9x17.jpg")]
    [InlineData("ycc420-baseline-1x1.jpg")]
    [InlineData("ycc420-baseline-restart3blocks-333x211.jpg")]
    [InlineData("ycc420-progressive-splitdc-restart5blocks-333x211.jpg")]
    [InlineData("grey-baseline-restart1block-333x211.jpg")]
    [InlineData("ycc420-sequential-noninterleaved-333x211.jpg")]
    public void Every_prefix_returns_false_or_throws_a_typed_error(string file)
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", file));
        Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var whole));
        var truncatedErrors = 0;
        var decoded = 0;
        for (var length = 0; length < bytes.Length; length++)
        {
            var outcome = Outcome(bytes.AsSpan(0, length), out var image);
            if (outcome == "decoded")
            {
                // Only a prefix holding all the DC data may decode, and then to the same pixels.
                Assert.Equal(whole!.Pixels, image!.Pixels);
                decoded++;
            }
            else if (outcome == nameof(ImageDecodeError.Truncated))
            {
                truncatedErrors++;
            }
        }

        output.WriteLine($"{file}: {bytes.Length} prefixes, {truncatedErrors} Truncated, {decoded} decoded");
        Assert.True(truncatedErrors > bytes.Length / 2);
    }

    [Theory]
    [InlineData("ycc420-q20-progressive-97x61.jpg", 1)]
    [InlineData("ycc420-baseline-333x211.jpg", 2)]
    [InlineData("ycc422-progressive-restart2rows-333x211.jpg", 3)]
    [InlineData("grey-baseline-restart1block-333x211.jpg", 4)]
    [InlineData("ycc420-progressive-splitdc-restart5blocks-333x211.jpg", 5)]
    [InlineData("ycc420-sequential-noninterleaved-333x211.jpg", 6)]
    public void Random_byte_flips_never_escape_as_other_exceptions(string file, int seed)
    {
        var original = File.ReadAllBytes(TestData.Own("jpeg", file));
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 1500; i++)
        {
            var bytes = (byte[])original.Clone();
            var flips = random.Next(1, 6);
            for (var f = 0; f < flips; f++)
            {
                // Bias towards the headers, where a flip changes structure rather than one block.
                var at = random.Next(2) == 0 ? random.Next(Math.Min(700, bytes.Length)) : random.Next(bytes.Length);
                bytes[at] = random.Next(3) == 0 ? (byte)0xFF : (byte)random.Next(256);
            }

            var outcome = Outcome(bytes, out _);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        output.WriteLine($"{file}: {string.Join(", ", outcomes.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}"))} in {watch.ElapsedMilliseconds} ms");
    }

    [Property(MaxTest = 300)]
    public void Arbitrary_bytes_after_SOI_never_escape(byte[] tail)
    {
        ArgumentNullException.ThrowIfNull(tail);
        Outcome([0xFF, 0xD8, .. tail], out _);
        Outcome([0xFF, 0xD8, 0xFF, .. tail], out _);
    }

    [Property(MaxTest = 300)]
    public void Arbitrary_segment_after_a_valid_header_never_escapes(byte marker, byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", "ycc420-q20-progressive-97x61.jpg"));
        var sos = IndexOfMarker(bytes, 0xDA);
        var length = Math.Min(payload.Length + 2, 0xFFFF);
        byte[] segment = [0xFF, marker, (byte)(length >> 8), (byte)length, .. payload.AsSpan(0, length - 2)];
        Outcome([.. bytes.AsSpan(0, sos), .. segment, .. bytes.AsSpan(sos)], out _);
    }

    [Fact]
    public void Empty_and_SOI_only_are_typed_errors()
    {
        Assert.Equal(ImageDecodeError.Empty, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode([], ImageLimits.Default, out _)).Error);
        Assert.Equal(ImageDecodeError.Truncated, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode([0xFF, 0xD8], ImageLimits.Default, out _)).Error);
        Assert.Equal(ImageDecodeError.Corrupt, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode("GIF89a"u8, ImageLimits.Default, out _)).Error);
    }

    [Fact]
    public void Huge_frame_is_refused_before_allocating()
    {
        byte[] jpeg =
        [
            0xFF, 0xD8,
            0xFF, 0xC2, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
            0xFF, 0xD9,
        ];
        var ex = Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode(jpeg, new ImageLimits(MaxPixels: 50_000_000), out _));
        Assert.Equal(ImageDecodeError.TooManyPixels, ex.Error);
        Assert.True(JpegDcDecoder.TryReadHeader(jpeg, out var info));
        Assert.Equal(new JpegHeaderInfo(65535, 65535, 3, true, true), info);
    }

    [Fact]
    public void Bad_Huffman_tables_are_corrupt()
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", "grey-baseline-333x211.jpg"));
        var dht = IndexOfMarker(bytes, 0xC4);

        // Counts summing past 256.
        var tooMany = (byte[])bytes.Clone();
        tooMany.AsSpan(dht + 5, 16).Fill(0x20);
        Assert.Equal(ImageDecodeError.Corrupt, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode(tooMany, ImageLimits.Default, out _)).Error);

        // Three 1-bit codes: more than the code space holds.
        var oversubscribed = (byte[])bytes.Clone();
        oversubscribed[dht + 5] = 3;
        Assert.Equal(ImageDecodeError.Corrupt, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode(oversubscribed, ImageLimits.Default, out _)).Error);

        // Counts claiming more symbols than the segment holds.
        var overlong = (byte[])bytes.Clone();
        overlong[dht + 5 + 15] = 200;
        Assert.Equal(ImageDecodeError.Corrupt, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode(overlong, ImageLimits.Default, out _)).Error);
    }

    [Fact]
    public void Scan_naming_a_missing_component_is_corrupt()
    {
        var bytes = File.ReadAllBytes(TestData.Own("jpeg", "grey-baseline-333x211.jpg"));
        var sos = IndexOfMarker(bytes, 0xDA);
        bytes[sos + 5] = 9;
        Assert.Equal(ImageDecodeError.Corrupt, Assert.Throws<ImageDecodeException>(() => JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out _)).Error);
    }

    [SkippableFact]
    public void Shared_pdq_jpegs_match_libvips()
    {
        var root = TestData.SharedPath("pdq");
        var files = Directory.GetFiles(root, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Skip.If(files.Count == 0, "No JPEGs under shared/testdata/pdq.");
        var worst = 0;
        foreach (var file in files)
        {
            var bytes = File.ReadAllBytes(file);
            if (!JpegDcDecoder.TryReadHeader(bytes, out var info) || !info.Supported)
            {
                output.WriteLine($"{Path.GetRelativePath(root, file)}: unsupported ({info.Components} components)");
                continue;
            }

            var (max, _) = CompareWithLibvips(bytes, Path.GetRelativePath(root, file));
            worst = Math.Max(worst, max);
        }

        // Most are 4:2:0 photos: see Fixture_matches_libvips_shrink_8 for why chroma edges differ.
        output.WriteLine($"worst max difference {worst}");
        Assert.True(worst <= 160);
    }

    [SkippableFact]
    public void Large_wallpapers_match_libvips()
    {
        var present = Wallpapers.Where(File.Exists).ToList();
        Skip.If(present.Count == 0, "The KDE wallpapers (/usr/share/wallpapers) are not installed.");
        foreach (var file in present)
        {
            var bytes = File.ReadAllBytes(file);
            Assert.True(JpegDcDecoder.TryReadHeader(bytes, out var info));
            var (max, mean) = CompareWithLibvips(bytes, file);
            output.WriteLine($"  progressive={info.Progressive}");
            Assert.True(max <= 64 && mean <= 2, $"{file}: max {max}, mean {mean:F3}");
        }
    }

    /// <summary>Decodes with both and returns the largest and mean absolute per-channel differences.</summary>
    private (int Max, double Mean) CompareWithLibvips(byte[] bytes, string name)
    {
        Assert.True(JpegDcDecoder.TryDecode(bytes, ImageLimits.Default, out var image), $"{name}: TryDecode returned false");
        using var vips = NetVips.Image.JpegloadBuffer(bytes, shrink: 8, autorotate: false);
        Assert.True(JpegDcDecoder.TryReadHeader(bytes, out var header));
        Assert.Equal((header.Width + 7) / 8, image!.Width);
        Assert.Equal((header.Height + 7) / 8, image.Height);

        // libjpeg's 1/8 output is ceil(size / 8), but libvips crops shrink-on-load to floor(size / 8)
        // (whole blocks only), so compare the part both have.
        Assert.True(vips.Width == image.Width || vips.Width == header.Width / 8);
        Assert.True(vips.Height == image.Height || vips.Height == header.Height / 8);
        Assert.Equal(vips.Bands, image.BytesPerPixel);
        var expected = vips.WriteToMemory<byte>();
        var bands = image.BytesPerPixel;
        var max = 0;
        long sum = 0;
        var histogram = new int[4];
        for (var y = 0; y < vips.Height; y++)
        {
            for (var x = 0; x < vips.Width * bands; x++)
            {
                var d = Math.Abs(expected[(y * vips.Width * bands) + x] - image.Pixels[(y * image.Width * bands) + x]);
                max = Math.Max(max, d);
                sum += d;
                histogram[d switch { 0 => 0, 1 => 1, <= 8 => 2, _ => 3 }]++;
            }
        }

        var mean = (double)sum / expected.Length;
        output.WriteLine($"{name}: {image.Width}x{image.Height}x{image.BytesPerPixel} max {max} mean {mean:F3} (=0 {histogram[0]}, 1 {histogram[1]}, 2..8 {histogram[2]}, >8 {histogram[3]})");
        return (max, mean);
    }

    /// <summary>Decodes, returning "decoded", "unsupported" or the error kind; anything else fails the test.</summary>
    private static string Outcome(ReadOnlySpan<byte> bytes, out DcImage? image)
    {
        image = null;
        try
        {
            JpegDcDecoder.TryReadHeader(bytes, out _);
            return JpegDcDecoder.TryDecode(bytes, new ImageLimits(MaxPixels: 4_000_000), out image) ? "decoded" : "unsupported";
        }
        catch (ImageDecodeException ex)
        {
            return ex.Error.ToString();
        }
    }

    private static int IndexOfSof(byte[] bytes)
    {
        for (var i = 2; i + 1 < bytes.Length; i++)
        {
            if (bytes[i] == 0xFF && bytes[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                return i;
            }
        }

        throw new InvalidOperationException("No SOF.");
    }

    private static int IndexOfMarker(byte[] bytes, byte marker)
    {
        for (var i = 2; i + 1 < bytes.Length; i++)
        {
            if (bytes[i] == 0xFF && bytes[i + 1] == marker)
            {
                return i;
            }
        }

        throw new InvalidOperationException("Marker not found.");
    }

    private static int LastIndexOfMarker(byte[] bytes, byte marker)
    {
        for (var i = bytes.Length - 2; i >= 2; i--)
        {
            if (bytes[i] == 0xFF && bytes[i + 1] == marker)
            {
                return i;
            }
        }

        throw new InvalidOperationException("Marker not found.");
    }
}
