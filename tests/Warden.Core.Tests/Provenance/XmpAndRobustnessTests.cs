using System.Buffers.Binary;
using System.Text;
using FsCheck.Xunit;
using Warden.Core.Provenance;
using static Warden.Core.Tests.Provenance.Fixtures;

namespace Warden.Core.Tests.Provenance;

/// <summary>IPTC XMP, weak hints, negative controls and hostile inputs.</summary>
public sealed class XmpAndRobustnessTests
{
    private const string IptcXmp = """
        <?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
        <x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
        <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
           Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" xmp:CreatorTool="Example Image Generator 2">
          <Iptc4xmpExt:AISystemUsed>Example Diffusion</Iptc4xmpExt:AISystemUsed>
          <Iptc4xmpExt:AISystemVersionUsed>3.1</Iptc4xmpExt:AISystemVersionUsed>
          <Iptc4xmpExt:AIPromptInformation>a quiet harbour at dawn</Iptc4xmpExt:AIPromptInformation>
        </rdf:Description></rdf:RDF></x:xmpmeta>
        <?xpacket end="w"?>
        """;

    private static void AssertIptc(ProvenanceReport r)
    {
        var s = r.Signals.Single(x => x.Type == "xmp.iptc");
        Assert.Equal(AiIndication.Moderate, s.AiIndication);
        Assert.Equal(0.75, s.Confidence);
        Assert.Contains(s.Parsed, p => p.Key == "digital_source_type" && p.Value == "trainedAlgorithmicMedia");
        Assert.Contains(s.Parsed, p => p.Key == "ai_system_used" && p.Value == "Example Diffusion");
        Assert.Contains(s.Parsed, p => p.Key == "ai_prompt_information_sha256");
        Assert.DoesNotContain(s.Parsed, p => p.Key == "ai_prompt_information");
        Assert.Equal("likely", r.Verdict.AiGenerated);
    }

    [Fact]
    public void IptcDigitalSourceTypeInEveryContainer()
    {
        AssertIptc(ProvenanceReader.Read(SmallPng(IText("XML:com.adobe.xmp", IptcXmp, compressed: false))));
        AssertIptc(ProvenanceReader.Read(SmallPng(IText("XML:com.adobe.xmp", IptcXmp, compressed: true))));
        AssertIptc(ProvenanceReader.Read(SmallJpeg(XmpSegment(IptcXmp))));
        AssertIptc(ProvenanceReader.Read(SmallWebP(("XMP ", Encoding.UTF8.GetBytes(IptcXmp)))));
    }

    [Fact]
    public void ExtendedXmpIsReassembled()
    {
        var guid = new string('A', 32);
        var body = Encoding.UTF8.GetBytes(IptcXmp);
        byte[] Part(int offset, int length)
        {
            var head = new byte[40];
            Encoding.ASCII.GetBytes(guid, head);
            BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(32), (uint)body.Length);
            BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(36), (uint)offset);
            return Segment(0xE1, [.. "http://ns.adobe.com/xmp/extension/\0"u8, .. head, .. body.AsSpan(offset, length)]);
        }

        var half = body.Length / 2;
        AssertIptc(ProvenanceReader.Read(SmallJpeg(Part(half, body.Length - half), Part(0, half))));

        // A tiny segment announcing 60 MB: refused without allocating it.
        var bomb = Part(0, 10);
        BinaryPrimitives.WriteUInt32BigEndian(bomb.AsSpan(4 + 35 + 32), 60_000_000);
        Assert.Contains(ProvenanceReader.Read(SmallJpeg(bomb)).Warnings, w => w.Contains("extended XMP", StringComparison.Ordinal));
    }

    [Fact]
    public void XmlDtdsAreRefused()
    {
        const string Bomb = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>""";
        var r = ProvenanceReader.Read(SmallJpeg(XmpSegment(Bomb)));
        Assert.Contains(r.Warnings, w => w.StartsWith("XMP", StringComparison.Ordinal));
        Assert.DoesNotContain(r.Signals, s => s.Type == "xmp.iptc");
    }

    [Fact]
    public void CleanSyntheticPhotosReportOnlyWeakHints()
    {
        foreach (var file in new[] { SmallPng(), SmallJpeg(), SmallWebP(), SyntheticImages.EncodedSmooth(512, 512, "png"), SyntheticImages.EncodedSmooth(640, 480, "jpg") })
        {
            var r = ProvenanceReader.Read(file, ProvenanceOptions.Default with { Pixels = PixelChecks.WhenNoMetadata });
            Assert.All(r.Signals, s => Assert.Equal(AiIndication.Weak, s.AiIndication));
            Assert.Equal("unknown", r.Verdict.AiGenerated);
            Assert.True(r.Verdict.Score <= 0.3);
            Assert.Empty(r.ModelRefs);
            Assert.Null(r.C2pa);
        }

        // 512² is a size generators use: a weak hint, and only that.
        var square = ProvenanceReader.Read(SyntheticImages.EncodedSmooth(512, 512, "png"));
        Assert.Equal("hint.dimensions", Assert.Single(square.Signals).Type);
    }

    [Fact]
    public void CameraExifIsNotAHint()
    {
        var tiff = Tiff(true, [Ascii(0x010F, "Canon"), Ascii(0x0110, "Canon EOS R6")], [Ascii(0x9003, "2024:05:01 10:00:00")]);
        var r = ProvenanceReader.Read(SmallJpeg(ExifSegment(tiff)));
        Assert.Empty(r.Signals);
    }

    [Fact]
    public void BenignSamplesReportNothingMisleading()
    {
        foreach (var path in Directory.GetFiles(Path.Combine(TestData.RepoRoot, "samples"), "*", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(path);
            if (ImageFormatOf(bytes) is null)
            {
                Assert.Throws<ProvenanceException>(() => ProvenanceReader.Read(bytes));
                continue;
            }

            var r = ProvenanceReader.Read(bytes, ProvenanceOptions.Default with { Pixels = PixelChecks.Always });
            Assert.All(r.Signals, s => Assert.Equal(AiIndication.Weak, s.AiIndication));
            Assert.NotEqual("yes", r.Verdict.AiGenerated);
        }
    }

    private static string? ImageFormatOf(byte[] b) =>
        Imaging.ImageFormatSniffer.Sniff(b) switch { Imaging.ImageFormat.Jpeg => "jpeg", Imaging.ImageFormat.Png => "png", Imaging.ImageFormat.WebP => "webp", Imaging.ImageFormat.Tiff => "tiff", Imaging.ImageFormat.Gif => "gif", Imaging.ImageFormat.Bmp => "bmp", _ => null };

    [Fact]
    public void HostileContainersGiveWarningsNotCrashes()
    {
        // PNG chunk length past the end.
        var png = SmallPng(Text("parameters", A1111Infotext));
        var overflow = (byte[])png.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(overflow.AsSpan(33), 0x7FFFFFF0);
        var r = ProvenanceReader.Read(overflow);
        Assert.Contains(r.Warnings, w => w.Contains("past the end", StringComparison.Ordinal));

        // Truncated anywhere: never an exception, the text before the cut still read.
        for (var cut = 9; cut < png.Length; cut += 37)
        {
            _ = ProvenanceReader.Read(png.AsMemory(0, cut));
        }

        Assert.Equal("AUTOMATIC1111", ProvenanceReader.Read(png.AsMemory(0, png.Length - 20)).Generator!.Tool);

        // JPEG segment past the end; WebP chunk past the end.
        var jpeg = SmallJpeg(ExifSegment(Tiff(true, [], [UnicodeComment(A1111Infotext)])));
        _ = ProvenanceReader.Read(jpeg.AsMemory(0, 40));
        var webp = SmallWebP(("EXIF", Tiff(false, [], [AsciiComment(A1111Infotext)])));
        BinaryPrimitives.WriteUInt32LittleEndian(webp.AsSpan(16), 0x7FFFFFF0);
        Assert.Contains(ProvenanceReader.Read(webp).Warnings, w => w.StartsWith("webp", StringComparison.Ordinal));
    }

    [Fact]
    public void ZipBombTextIsCapped()
    {
        var bomb = Chunk("zTXt", [.. "parameters"u8, 0, 0, .. Zlib(new byte[64 * 1024 * 1024])]);
        Assert.True(bomb.Length < 200_000);
        var r = ProvenanceReader.Read(SmallPng(bomb), ProvenanceOptions.Default with { Limits = ProvenanceLimits.Default with { MaxInflatedBytes = 1 << 20 } });
        Assert.Contains(r.Warnings, w => w.Contains("expands past", StringComparison.Ordinal));
    }

    [Fact]
    public void ExifLoopsAndHugeCountsAreRefused()
    {
        // IFD0 whose EXIF pointer points back at IFD0.
        var loop = Tiff(true, [Ascii(0x0131, "x")], [Ascii(0x9003, "2024")]);
        var pointer = loop.AsSpan().IndexOf(new byte[] { 0x87, 0x69 });
        BinaryPrimitives.WriteUInt32BigEndian(loop.AsSpan(pointer + 8), 8);
        var ex = Assert.Throws<ProvenanceException>(() => TiffReader.Read(loop, ProvenanceLimits.Default));
        Assert.Contains("loop", ex.Message, StringComparison.Ordinal);
        Assert.Contains(ProvenanceReader.Read(SmallJpeg(ExifSegment(loop))).Warnings, w => w.StartsWith("EXIF", StringComparison.Ordinal));

        var many = Tiff(false, [Ascii(0x0131, "x")]);
        BinaryPrimitives.WriteUInt16LittleEndian(many.AsSpan(8), 60000);
        Assert.Equal(ProvenanceError.LimitExceeded, Assert.Throws<ProvenanceException>(() => TiffReader.Read(many, ProvenanceLimits.Default)).Kind);
    }

    [Fact]
    public void NotAnImageIsATypedError()
    {
        Assert.Equal(ProvenanceError.UnsupportedFormat, Assert.Throws<ProvenanceException>(() => ProvenanceReader.Read("hello"u8.ToArray())).Kind);
        Assert.Equal(ProvenanceError.Truncated, Assert.Throws<ProvenanceException>(() => ProvenanceReader.Read(Array.Empty<byte>())).Kind);
    }

    private static readonly byte[][] Seeds =
    [
        SmallPng(Text("parameters", A1111Infotext), IText("XML:com.adobe.xmp", IptcXmp, true)),
        SmallJpeg(ExifSegment(Tiff(true, [Ascii(0x0131, "NovelAI")], [UnicodeComment(A1111Infotext)])), XmpSegment(IptcXmp)),
        SmallWebP(("EXIF", Tiff(false, [Ascii(0x0110, "prompt:{\"1\":{\"class_type\":\"LoraLoader\",\"inputs\":{\"lora_name\":\"a.safetensors\"}}}")])), ("XMP ", Encoding.UTF8.GetBytes(IptcXmp))),
        new C2paBuilder().Sign(C2paBuilder.InPng),
        new C2paBuilder().Sign(s => C2paBuilder.InJpeg(s, 900)),
    ];

    /// <summary>Random byte mutations of every fixture kind: a report or a <see cref="ProvenanceException"/>, nothing else.</summary>
    [Property(MaxTest = 300)]
    public bool MutatedFilesNeverThrowAnythingElse(byte which, int[] noise, int cut)
    {
        var file = (byte[])Seeds[which % Seeds.Length].Clone();
        noise ??= [];
        for (var i = 0; i + 1 < noise.Length; i += 2)
        {
            file[(int)((uint)noise[i] % file.Length)] = (byte)noise[i + 1];
        }

        var length = cut % 3 == 0 ? (int)((uint)cut % file.Length) : file.Length;
        try
        {
            return ProvenanceReader.Read(file.AsMemory(0, length)).Warnings.Count >= 1;
        }
        catch (ProvenanceException)
        {
            return true;
        }
    }
}
