using Warden.Core.Provenance;
using Warden.Core.Provenance.C2pa;

namespace Warden.Core.Tests.Provenance;

/// <summary>Manifests built and signed in the test (P-256), in every container, and tampered variants of them.</summary>
public sealed class C2paFixtureTests
{
    private static readonly C2paBuilder Builder = new();

    public static TheoryData<string> Containers() => ["png", "jpeg", "webp", "jpeg-multi"];

    private static byte[] Signed(string container, C2paBuilder? builder = null, Func<byte[], byte[]>? tamper = null, bool badSignature = false)
    {
        builder ??= Builder;
        return container switch
        {
            "png" => builder.Sign(C2paBuilder.InPng, tamper, badSignature),
            "webp" => builder.Sign(C2paBuilder.InWebP, tamper, badSignature),
            "jpeg-multi" => builder.Sign(s => C2paBuilder.InJpeg(s, 1000), tamper, badSignature),
            _ => builder.Sign(C2paBuilder.InJpeg, tamper, badSignature),
        };
    }

    private static ProvenanceReport Read(byte[] file, bool trust = false, bool verify = true) =>
        ProvenanceReader.Read(file, ProvenanceOptions.Default with { TrustAnchors = trust ? [Builder.Root] : null, VerifyC2pa = verify });

    [Theory]
    [MemberData(nameof(Containers))]
    public void SignedManifestIsReadAndVerified(string container)
    {
        var file = Signed(container);
        var r = Read(file);
        var c = r.C2pa!;
        Assert.True(c.Present);
        Assert.Equal(C2paSummary.SignatureOk, c.Validation);
        Assert.Equal("WardenTest/1.0 c2pa-builder/0.1", c.Active!.ClaimGenerator);
        Assert.Equal("Warden Tests", c.Active.Signer!.Organization);
        Assert.Equal("Warden Test Signer", c.Active.Signer.CommonName);
        Assert.Equal("ES256", c.Active.Signer.Algorithm);
        var action = Assert.Single(c.Active.Actions);
        Assert.Equal("c2pa.created", action.Action);
        Assert.Equal("Warden Test Generator 1.0", action.SoftwareAgent);
        var s = r.Signals.Single(x => x.Type == "c2pa");
        Assert.Equal(AiIndication.Strong, s.AiIndication);
        Assert.Equal(0.85, s.Confidence);
        Assert.False(s.Verified);
        Assert.Equal("yes", r.Verdict.AiGenerated);

        var trusted = Read(file, trust: true);
        Assert.Equal(C2paSummary.Trusted, trusted.C2pa!.Validation);
        var t = trusted.Signals.Single(x => x.Type == "c2pa");
        Assert.Equal(AiIndication.Verified, t.AiIndication);
        Assert.True(t.Verified);

        Assert.Equal(C2paSummary.NotPerformed, Read(file, verify: false).C2pa!.Validation);
    }

    [Fact]
    public void LargeStoreSpansManyJpegSegments()
    {
        var builder = new C2paBuilder { PaddingBytes = 150_000 };
        var file = builder.Sign(C2paBuilder.InJpeg);
        Assert.True(file.Length > 150_000);
        var r = ProvenanceReader.Read(file);
        Assert.Equal(C2paSummary.SignatureOk, r.C2pa!.Validation);
        Assert.Contains("org.warden.padding", r.C2pa.Active!.Assertions);
    }

    [Fact]
    public void ClaimV2WithActionsV2()
    {
        var builder = new C2paBuilder { ClaimVersion = 2 };
        var r = ProvenanceReader.Read(builder.Sign(C2paBuilder.InPng));
        Assert.Equal(2, r.C2pa!.Active!.ClaimVersion);
        Assert.Null(r.C2pa.Active.ClaimGenerator);
        Assert.Equal(["WardenTest 1.0"], r.C2pa.Active.ClaimGeneratorInfo);
        Assert.Equal(C2paSummary.SignatureOk, r.C2pa.Validation);
    }

    [Fact]
    public void CaptureSourceTypeIsNotAnAiClaim()
    {
        var builder = new C2paBuilder { DigitalSourceType = " http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture" };
        var r = ProvenanceReader.Read(builder.Sign(C2paBuilder.InPng));
        Assert.Equal(AiIndication.None, r.Signals.Single(s => s.Type == "c2pa").AiIndication);
        Assert.Equal("unknown", r.Verdict.AiGenerated);

        var https = new C2paBuilder { DigitalSourceType = "https://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia" };
        Assert.Equal(AiIndication.Strong, ProvenanceReader.Read(https.Sign(C2paBuilder.InPng)).Signals.Single(s => s.Type == "c2pa").AiIndication);
    }

    [Theory]
    [MemberData(nameof(Containers))]
    public void TamperedAssertionFailsItsHashedUri(string container)
    {
        var file = Signed(container, tamper: box =>
        {
            var copy = (byte[])box.Clone();
            var at = copy.AsSpan().IndexOf("Warden Test Generator"u8);
            copy[at] = (byte)'X';
            return copy;
        });
        var r = Read(file);
        Assert.Equal(C2paSummary.Failed, r.C2pa!.Validation);
        Assert.Contains(r.C2pa.StatusCodes, s => s.StartsWith("assertion.hashedURI.mismatch", StringComparison.Ordinal));

        // Still an AI claim, but a damaged one.
        Assert.Equal(0.6, r.Signals.Single(s => s.Type == "c2pa").Confidence);
    }

    [Theory]
    [MemberData(nameof(Containers))]
    public void ChangedPixelsFailTheDataHash(string container)
    {
        var file = Signed(container);
        file[container == "webp" ? 40 : file.Length - 20] ^= 0x01;
        var r = Read(file);
        Assert.Equal(C2paSummary.Failed, r.C2pa!.Validation);
        Assert.Contains(r.C2pa.StatusCodes, s => s.StartsWith("assertion.dataHash.mismatch", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Containers))]
    public void BadSignatureFails(string container)
    {
        var r = Read(Signed(container, badSignature: true), trust: true);
        Assert.Equal(C2paSummary.Failed, r.C2pa!.Validation);
        Assert.Contains(r.C2pa.StatusCodes, s => s.StartsWith("claimSignature.mismatch", StringComparison.Ordinal));
    }

    [Fact]
    public void TruncatedAndOversizedBoxesAreReportedNotThrown()
    {
        var store = Builder.Store(0, 0, new byte[32]);
        var truncated = store[..(store.Length / 2)];
        var r = ProvenanceReader.Read(Fixtures.SmallPng(Fixtures.Chunk("caBX", truncated)));
        Assert.Equal(C2paSummary.Failed, r.C2pa!.Validation);
        Assert.Contains(r.C2pa.StatusCodes, s => s.StartsWith("manifest.unreadable", StringComparison.Ordinal));

        var oversized = (byte[])store.Clone();
        oversized[0] = 0x7F;
        Assert.Equal(C2paSummary.Failed, ProvenanceReader.Read(Fixtures.SmallPng(Fixtures.Chunk("caBX", oversized))).C2pa!.Validation);
    }

    [Fact]
    public void DeepJumbfNestingIsRefused()
    {
        var box = C2paBuilder.Box("cbor", [0xA0]);
        for (var i = 0; i < 40; i++)
        {
            box = C2paBuilder.Super("c2pa", "n", box);
        }

        var ex = Assert.Throws<ProvenanceException>(() => C2paReader.Read(box, Array.Empty<byte>(), true, null, ProvenanceLimits.Default));
        Assert.Equal(ProvenanceError.LimitExceeded, ex.Kind);
    }

    [Fact]
    public void SecondStoreInJpegIsIgnoredWithAWarning()
    {
        var store = Builder.Store(0, 0, new byte[32]);
        var (first, _, _) = C2paBuilder.InJpeg(store);
        var second = (byte[])first.Clone();

        // Re-insert the same APP11 segments under another box instance number.
        var segmentLength = (first[4] << 8) | first[5];
        var segment = first.AsSpan(2, segmentLength + 2).ToArray();
        segment[7] ^= 0x02;
        var twice = Fixtures.Jpeg(second, segment);
        var r = ProvenanceReader.Read(twice);
        Assert.Contains(r.Warnings, w => w.Contains("more than one C2PA manifest store", StringComparison.Ordinal));
        Assert.True(r.C2pa!.Present);
    }
}
