using FsCheck;
using FsCheck.Xunit;
using NetVips;
using Warden.Core.Provenance;

namespace Warden.Core.Tests.Provenance;

/// <summary>
/// Provenance never fails on an image because of its format: TIFF tags and XMP are read, GIF/BMP/BigTIFF get a
/// report that says their metadata was not read, and any damage is a warning. Only non-images throw, and the
/// lenient entry point never does.
/// </summary>
public sealed class ProvenanceFormatTests
{
    private const string IptcXmp = """
        <x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
        <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
           Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">
          <Iptc4xmpExt:AISystemUsed>Example Diffusion</Iptc4xmpExt:AISystemUsed>
        </rdf:Description></rdf:RDF></x:xmpmeta>
        """;

    private static Image Picture(int width = 48, int height = 32)
    {
        var rgb = SyntheticImages.Smooth(width, height, 4);
        return Image.NewFromMemory(rgb, width, height, 3, Enums.BandFormat.Uchar);
    }

    public static TheoryData<string> Formats() => ["tiff", "gif", "bmp", "bigtiff"];

    private static byte[] Encode(string format)
    {
        using var image = Picture();
        return format switch
        {
            "tiff" => image.TiffsaveBuffer(),
            "gif" => image.GifsaveBuffer(),
            "bigtiff" => image.TiffsaveBuffer(bigtiff: true),
            _ => BmpWriter.Encode(SyntheticImages.Smooth(48, 32, 4), 48, 32, BmpKind.Bpp24),
        };
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Images_of_every_format_get_a_report(string format)
    {
        var report = ProvenanceReader.Read(Encode(format), ProvenanceOptions.Default with { Pixels = PixelChecks.Always });
        Assert.Equal(format == "bigtiff" ? "tiff" : format, report.Format);
        Assert.True(report.PixelsChecked, string.Join("; ", report.Warnings));
        Assert.NotEqual("yes", report.Verdict.AiGenerated);
        if (format is "gif" or "bmp" or "bigtiff")
        {
            Assert.Contains(report.Warnings, w => w.Contains("metadata is not read", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Tiff_xmp_and_size_are_read()
    {
        using var image = Picture(512, 512).Mutate(m => m.Set(GValue.BlobType, "xmp-data", System.Text.Encoding.UTF8.GetBytes(IptcXmp)));
        var report = ProvenanceReader.Read(image.TiffsaveBuffer());
        Assert.Equal((512, 512), (report.Width, report.Height));
        var signal = Assert.Single(report.Signals, s => s.Type == "xmp.iptc");
        Assert.Equal(AiIndication.Moderate, signal.AiIndication);
    }

    [Fact]
    public void Non_images_throw_and_the_lenient_reader_reports_instead()
    {
        foreach (var bytes in new[] { "plain text"u8.ToArray(), "%PDF-1.7\n1 0 obj"u8.ToArray(), [0x50, 0x4B, 3, 4, 0, 0], [] })
        {
            if (bytes.Length > 0)
            {
                Assert.Equal(ProvenanceError.UnsupportedFormat, Assert.Throws<ProvenanceException>(() => ProvenanceReader.Read(bytes)).Kind);
            }

            var report = ProvenanceReader.ReadLenient(bytes, null, null, out var failure);
            Assert.NotNull(failure);
            Assert.Equal("unknown", report.Format);
            Assert.Equal("unknown", report.Verdict.AiGenerated);
            Assert.Empty(report.Signals);
            Assert.Contains(report.Warnings, w => w.StartsWith("provenance not read: ", StringComparison.Ordinal));
            Assert.Equal(64, report.Sha256.Length);
        }
    }

    /// <summary>Truncated or damaged files of every format: a report (with warnings), never an exception.</summary>
    [Property(MaxTest = 400)]
    public void Damaged_images_of_every_format_degrade_to_warnings(PositiveInt cut, PositiveInt at, byte value, NonNegativeInt which)
    {
        var formats = new[] { "tiff", "gif", "bmp", "bigtiff" };
        var bytes = Encode(formats[which.Get % formats.Length]);
        var damaged = (byte[])bytes.Clone();
        damaged[8 + (at.Get % (bytes.Length - 8))] = value;
        var truncated = bytes[..Math.Max(4, cut.Get % bytes.Length)];
        foreach (var data in new[] { damaged, truncated })
        {
            var report = ProvenanceReader.ReadLenient(data, ProvenanceOptions.Default with { Pixels = PixelChecks.Always }, null, out _);
            Assert.NotNull(report.Verdict);
        }
    }
}
