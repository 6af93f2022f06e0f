using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Warden.Core.Provenance;
using Warden.Core.Provenance.C2pa;

namespace Warden.Core.Tests.Provenance;

/// <summary>
/// Real C2PA files (../shared/testdata/c2pa) against c2pa-rs 0.91.3's reading of them (expected/summary.json):
/// active manifest, manifest count, claim version, generator, signer, AI source types and the validation state
/// (c2pa-rs Valid = our signature_ok without anchors, Trusted = trusted with the test anchors, Invalid = failed).
/// </summary>
public sealed class C2paRealFileTests
{
    public static TheoryData<string> Files() =>
    [
        "C.jpg", "CACA.jpg", "CIE-sig-CA.jpg", "XCA.jpg", "E-sig-CA.jpg", "ocsp.jpg", "C_with_CAWG_data.jpg",
        "update_manifest.jpg", "100kb-signed.png", "repro-sundae-ice-cream.png",
    ];

    private static JsonElement Expected(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.SharedPath("c2pa", "expected", "summary.json")));
        return doc.RootElement.GetProperty("files").EnumerateArray().First(f => f.GetProperty("file").GetString() == file).Clone();
    }

    private static ProvenanceReport Read(string file, IReadOnlyList<X509Certificate2>? anchors = null) =>
        ProvenanceReader.Read(File.ReadAllBytes(TestData.SharedPath("c2pa", file)), ProvenanceOptions.Default with { TrustAnchors = anchors });

    [SkippableTheory]
    [MemberData(nameof(Files))]
    public void ManifestFieldsMatchTheReference(string file)
    {
        var expected = Expected(file);
        var c2pa = Read(file).C2pa!;
        Assert.True(c2pa.Present);
        Assert.Equal(expected.GetProperty("active_manifest").GetString(), c2pa.ActiveManifest);
        Assert.Equal(expected.GetProperty("manifest_count").GetInt32(), c2pa.Manifests.Count);
        var active = c2pa.Active!;
        Assert.Equal(expected.GetProperty("claim_version").GetInt32(), active.ClaimVersion);
        Assert.Equal(expected.GetProperty("claim_generator").ValueKind == JsonValueKind.Null ? null : expected.GetProperty("claim_generator").GetString(), active.ClaimGenerator);
        var names = expected.GetProperty("claim_generator_info").EnumerateArray().Select(g => g.GetProperty("name").GetString()!).ToList();
        Assert.Equal(names.Count, active.ClaimGeneratorInfo.Count);
        Assert.All(names.Zip(active.ClaimGeneratorInfo), p => Assert.StartsWith(p.First, p.Second, StringComparison.Ordinal));
        Assert.Equal(expected.GetProperty("signature").GetProperty("issuer").GetString(), active.Signer!.Organization);
        Assert.Equal(expected.GetProperty("signature").GetProperty("common_name").GetString(), active.Signer.CommonName);

        // Every source type the reference lists, with its action, in the manifest it names.
        foreach (var st in expected.GetProperty("source_types").EnumerateArray())
        {
            var manifest = c2pa.Manifests.Single(m => m.Label == st.GetProperty("manifest").GetString());
            var value = st.GetProperty("value").GetString()!;
            var field = st.GetProperty("field").GetString();
            Assert.Contains(manifest.Actions, a => a.Action == st.GetProperty("action").GetString()
                && (field == "digitalSourceType" ? a.DigitalSourceType : a.VendorDigitalSourceType) == value);
        }

        foreach (var ingredient in expected.GetProperty("ingredients").EnumerateArray())
        {
            Assert.Contains(active.Ingredients, i => i.Title == ingredient.GetProperty("title").GetString() && i.Relationship == ingredient.GetProperty("relationship").GetString());
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Files))]
    public void ValidationMatchesTheReference(string file)
    {
        var expected = Expected(file);
        var report = Read(file);
        var state = expected.GetProperty("validation_state").GetString();
        Assert.Equal(state == "Invalid" ? C2paSummary.Failed : C2paSummary.SignatureOk, report.C2pa!.Validation);
        if (file == "XCA.jpg")
        {
            Assert.Contains(report.C2pa.StatusCodes, s => s.StartsWith("assertion.dataHash.mismatch", StringComparison.Ordinal));
        }

        if (file == "E-sig-CA.jpg")
        {
            Assert.Contains(report.C2pa.StatusCodes, s => s.StartsWith("claimSignature.mismatch", StringComparison.Ordinal));
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Files))]
    public void TestAnchorsMakeTestSignersTrusted(string file)
    {
        var reference = Expected(file).GetProperty("with_test_anchors");
        var expected = reference.GetProperty("validation_state").GetString();

        // CAWG identity assertions have their own trust list, which Warden does not check: only their codes keep
        // C_with_CAWG_data.jpg from "Trusted" in c2pa-rs, so the C2PA signer itself is trusted.
        var codes = reference.GetProperty("validation_status_codes").EnumerateArray().Select(c => c.GetString()!).ToList();
        if (expected == "Valid" && codes.Count > 0 && codes.All(c => c.StartsWith("cawg.", StringComparison.Ordinal)))
        {
            expected = "Trusted";
        }

        var collection = new X509Certificate2Collection();
        collection.ImportFromPemFile(TestData.SharedPath("c2pa", "trust", "c2pa-rs-test-root-bundle.pem"));
        var report = Read(file, [.. collection]);
        Assert.Equal(expected switch { "Trusted" => C2paSummary.Trusted, "Valid" => C2paSummary.SignatureOk, _ => C2paSummary.Failed }, report.C2pa!.Validation);
    }

    [SkippableTheory]
    [MemberData(nameof(Files))]
    public void AiFlagsFollowThePolicy(string file)
    {
        var ai = Expected(file).GetProperty("ai");
        var report = Read(file);
        var signal = report.Signals.Single(s => s.Type == "c2pa");

        // Policy: the standard field in any manifest, or a vendor parameter (flagged as such), counts as an AI declaration.
        var declared = ai.GetProperty("any_manifest_standard_field").GetBoolean() || ai.GetProperty("only_in_vendor_parameter").GetBoolean();
        Assert.Equal(declared, signal.AiIndication >= AiIndication.Strong);
        Assert.Equal(declared ? "yes" : "unknown", report.Verdict.AiGenerated);
        if (ai.GetProperty("only_in_vendor_parameter").GetBoolean())
        {
            Assert.Contains(signal.Notes, n => n.Contains("vendor", StringComparison.Ordinal));
        }
    }

    [SkippableFact]
    public void NoManifestRemoteManifestAndUnknownAlgorithmAreToldApart()
    {
        Assert.Null(Read("no_manifest.jpg").C2pa);
        Assert.Null(Read("test.webp").C2pa);
        var remote = Read("libpng-test_with_url.png").C2pa!;
        Assert.False(remote.Present);
        Assert.Equal("http://localhost:5000/libpng-test.c2pa", remote.RemoteManifestUrl);
        var noAlg = Read("no_alg.jpg").C2pa!;
        Assert.True(noAlg.Present);
        Assert.Equal(C2paSummary.Failed, noAlg.Validation);
        Assert.Contains(noAlg.StatusCodes, s => s.StartsWith("algorithm.unsupported", StringComparison.Ordinal));
    }
}
