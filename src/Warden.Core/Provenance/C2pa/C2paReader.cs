using System.Formats.Cbor;
using System.Security.Cryptography;
using System.Security.Cryptography.Cose;
using System.Security.Cryptography.X509Certificates;

namespace Warden.Core.Provenance.C2pa;

/// <summary>One action of a c2pa.actions assertion.</summary>
/// <param name="Action">c2pa.created, c2pa.edited, c2pa.opened...</param>
/// <param name="DigitalSourceType">The standard field, as written.</param>
/// <param name="SoftwareAgent">The agent: a string (v1) or name/version of a map (v2).</param>
/// <param name="VendorDigitalSourceType">A parameter whose name ends in digitalSourceType (e.g. com.adobe.digitalSourceType).</param>
/// <param name="ModelId">A parameter whose name ends in modelId, when present.</param>
public sealed record C2paAction(string Action, string? DigitalSourceType, string? SoftwareAgent, string? VendorDigitalSourceType, string? ModelId);

/// <summary>An ingredient named by a manifest.</summary>
/// <param name="Title">Its title.</param>
/// <param name="Relationship">parentOf, componentOf, inputTo.</param>
/// <param name="ManifestLabel">The label of its own manifest in this store, when it has one.</param>
public sealed record C2paIngredient(string? Title, string? Relationship, string? ManifestLabel);

/// <summary>The signer as its certificate says (an unverified claim until the signature is checked).</summary>
/// <param name="Subject">Subject distinguished name.</param>
/// <param name="Organization">Subject O (what c2pa-rs reports as "issuer").</param>
/// <param name="CommonName">Subject CN.</param>
/// <param name="Issuer">Issuing CA distinguished name.</param>
/// <param name="SerialNumber">Serial, hex.</param>
/// <param name="Algorithm">ES256, PS256...</param>
/// <param name="HasTimestamp">Whether an RFC 3161 timestamp is attached (not verified).</param>
public sealed record C2paSigner(string? Subject, string? Organization, string? CommonName, string? Issuer, string? SerialNumber, string? Algorithm, bool HasTimestamp);

/// <summary>One manifest of the store.</summary>
public sealed class C2paManifest
{
    /// <summary>urn:uuid:... or urn:c2pa:...</summary>
    public required string Label { get; init; }

    /// <summary>1 (c2pa.claim) or 2 (c2pa.claim.v2).</summary>
    public int ClaimVersion { get; internal set; }

    /// <summary>Whether it is an update manifest.</summary>
    public bool IsUpdate { get; init; }

    /// <summary>claim_generator (v1).</summary>
    public string? ClaimGenerator { get; internal set; }

    /// <summary>claim_generator_info entries as "name version".</summary>
    public List<string> ClaimGeneratorInfo { get; } = [];

    /// <summary>dc:title.</summary>
    public string? Title { get; internal set; }

    /// <summary>dc:format.</summary>
    public string? Format { get; internal set; }

    /// <summary>instanceID.</summary>
    public string? InstanceId { get; internal set; }

    /// <summary>Assertion labels as stored.</summary>
    public List<string> Assertions { get; } = [];

    /// <summary>Actions of every actions assertion.</summary>
    public List<C2paAction> Actions { get; } = [];

    /// <summary>Ingredients.</summary>
    public List<C2paIngredient> Ingredients { get; } = [];

    /// <summary>The signer.</summary>
    public C2paSigner? Signer { get; internal set; }

    /// <summary>Failure codes (C2PA validation vocabulary) with the URL they concern.</summary>
    public List<string> Failures { get; } = [];

    /// <summary>Success codes.</summary>
    public List<string> Successes { get; } = [];

    internal JumbfBox? Box { get; init; }

    internal byte[]? ClaimBytes { get; set; }

    internal Dictionary<string, object?>? Claim { get; set; }

    internal CoseSign1Message? Signature { get; set; }

    internal X509Certificate2[] Chain { get; set; } = [];
}

/// <summary>What the C2PA reader found, and how far it was verified.</summary>
public sealed class C2paSummary
{
    /// <summary>not_performed, structural_ok, signature_ok, trusted, failed.</summary>
    public const string NotPerformed = "not_performed";

    /// <summary>Hashes match; the signature could not be checked.</summary>
    public const string StructuralOk = "structural_ok";

    /// <summary>Hashes and signature check out; the signer is not on a trust list given to Warden.</summary>
    public const string SignatureOk = "signature_ok";

    /// <summary>As signature_ok, and the signer chains to a configured trust anchor.</summary>
    public const string Trusted = "trusted";

    /// <summary>A hash or the signature does not match, or the manifest cannot be used.</summary>
    public const string Failed = "failed";

    /// <summary>Whether an embedded manifest store was found.</summary>
    public bool Present { get; internal set; }

    /// <summary>A remote manifest URL from XMP dcterms:provenance (never fetched).</summary>
    public string? RemoteManifestUrl { get; internal set; }

    /// <summary>The active manifest's label.</summary>
    public string? ActiveManifest { get; internal set; }

    /// <summary>The manifests, in store order.</summary>
    public List<C2paManifest> Manifests { get; } = [];

    /// <summary>Validation of the active manifest (<see cref="NotPerformed"/>...).</summary>
    public string Validation { get; internal set; } = NotPerformed;

    /// <summary>Why, when failed or partial.</summary>
    public List<string> StatusCodes { get; } = [];

    /// <summary>The active manifest.</summary>
    public C2paManifest? Active => Manifests.FirstOrDefault(m => m.Label == ActiveManifest);
}

/// <summary>
/// Reads a C2PA manifest store (JUMBF + CBOR claims and assertions + COSE_Sign1) and verifies what can be
/// verified offline: assertion hashes, the data-hash binding to the file, the claim signature and the chain
/// to configured trust anchors. Timestamps and OCSP are read as present, not verified.
/// </summary>
public static class C2paReader
{
    private const string StoreType = "c2pa";

    /// <summary>Parses (and with <paramref name="verify"/>, verifies) the store in <paramref name="store"/>.</summary>
    /// <param name="store">The JUMBF manifest store.</param>
    /// <param name="file">The whole file, for the data-hash binding.</param>
    /// <param name="verify">Check hashes and signatures.</param>
    /// <param name="anchors">Trusted roots, or null.</param>
    /// <param name="limits">Limits.</param>
    /// <exception cref="ProvenanceException">The store cannot be parsed.</exception>
    public static C2paSummary Read(ReadOnlyMemory<byte> store, ReadOnlyMemory<byte> file, bool verify, IReadOnlyList<X509Certificate2>? anchors, ProvenanceLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var boxes = Jumbf.Parse(store, limits.MaxDepth);
        if (boxes.Count != 1 || boxes[0].Type != "jumb" || boxes[0].UuidType != StoreType)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "JUMBF data is not a single C2PA manifest store");
        }

        var summary = new C2paSummary { Present = true };
        foreach (var box in boxes[0].Children.Where(b => b.Type == "jumb" && b.UuidType is "c2ma" or "c2um" && b.Label is not null))
        {
            var manifest = new C2paManifest { Label = box.Label!, IsUpdate = box.UuidType == "c2um", Box = box };
            summary.Manifests.Add(manifest);
            try
            {
                ParseManifest(manifest, limits);
            }
            catch (Exception ex) when (ex is ProvenanceException or CryptographicException)
            {
                manifest.Failures.Add($"claim.malformed: {ex.Message}");
            }
        }

        if (summary.Manifests.Count == 0)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "manifest store holds no manifest");
        }

        summary.ActiveManifest = summary.Manifests[^1].Label;
        if (!verify)
        {
            return summary;
        }

        foreach (var m in summary.Manifests)
        {
            try
            {
                Verify(m, summary, file, anchors, limits);
            }
            catch (Exception ex) when (ex is CryptographicException or ArgumentException or ProvenanceException)
            {
                m.Failures.Add($"claim.malformed: verification stopped ({ex.Message})");
            }
        }

        var active = summary.Active!;
        summary.StatusCodes.AddRange(active.Failures);
        if (active.Failures.Count > 0)
        {
            summary.Validation = C2paSummary.Failed;
        }
        else if (active.Successes.Contains("signingCredential.trusted"))
        {
            summary.Validation = C2paSummary.Trusted;
        }
        else if (active.Successes.Contains("claimSignature.validated"))
        {
            summary.Validation = C2paSummary.SignatureOk;
            summary.StatusCodes.Add("signingCredential.untrusted");
        }
        else
        {
            summary.Validation = C2paSummary.StructuralOk;
            summary.StatusCodes.Add("claimSignature.notChecked");
        }

        return summary;
    }

    private static void ParseManifest(C2paManifest m, ProvenanceLimits limits)
    {
        var box = m.Box!;
        var claimBox = box.Children.FirstOrDefault(c => c.Type == "jumb" && c.UuidType == "c2cl");
        if (claimBox?.Content is not { } claimContent)
        {
            throw new ProvenanceException(ProvenanceError.Malformed, "manifest has no claim");
        }

        m.ClaimVersion = claimBox.Label == "c2pa.claim.v2" ? 2 : 1;
        m.ClaimBytes = claimContent.Payload.ToArray();
        var claim = Cbor.Decode(claimContent.Payload, limits.MaxDepth * 4) as Dictionary<string, object?>
            ?? throw new ProvenanceException(ProvenanceError.Malformed, "claim is not a CBOR map");
        m.Claim = claim;
        m.ClaimGenerator = claim.Str("claim_generator");
        if (claim.TryGetValue("claim_generator_info", out var info))
        {
            foreach (var i in info is List<object?> list ? list : [info])
            {
                if (i is Dictionary<string, object?> g && g.Str("name") is { } name)
                {
                    m.ClaimGeneratorInfo.Add(g.Str("version") is { } v ? $"{name} {v}" : name);
                }
            }
        }

        m.Title = claim.Str("dc:title") ?? claim.Str("title");
        m.Format = claim.Str("dc:format") ?? claim.Str("format");
        m.InstanceId = claim.Str("instanceID");

        var assertionStore = box.Children.FirstOrDefault(c => c.Type == "jumb" && c.UuidType == "c2as");
        foreach (var a in assertionStore?.Children.Where(c => c.Type == "jumb" && c.Label is not null) ?? [])
        {
            m.Assertions.Add(a.Label!);
            var baseLabel = BaseLabel(a.Label!);
            if (baseLabel is "c2pa.actions" or "c2pa.actions.v2" && a.Content is { Type: "cbor" } actions)
            {
                ReadActions(Cbor.Decode(actions.Payload, limits.MaxDepth * 4) as Dictionary<string, object?>, m);
            }
            else if (baseLabel.StartsWith("c2pa.ingredient", StringComparison.Ordinal) && a.Content is { Type: "cbor" } ingredient)
            {
                var map = Cbor.Decode(ingredient.Payload, limits.MaxDepth * 4) as Dictionary<string, object?>;
                var uri = (map.Map("c2pa_manifest") ?? map.Map("activeManifest")).Str("url");
                m.Ingredients.Add(new C2paIngredient(map.Str("dc:title") ?? map.Str("title"), map.Str("relationship"), ManifestOfUri(uri)));
            }
        }

        var sigBox = box.Children.FirstOrDefault(c => c.Type == "jumb" && c.UuidType == "c2cs");
        if (sigBox?.Content is { } sig)
        {
            ReadSignature(m, sig.Payload);
        }
    }

    private static void ReadActions(Dictionary<string, object?>? map, C2paManifest m)
    {
        var agents = map.List("softwareAgents");
        foreach (var item in map.List("actions") ?? [])
        {
            if (item is not Dictionary<string, object?> a || a.Str("action") is not { } action)
            {
                continue;
            }

            string? agent = a.TryGetValue("softwareAgent", out var sa) ? sa switch
            {
                string s => s,
                Dictionary<string, object?> g => g.Str("version") is { } v ? $"{g.Str("name")} {v}" : g.Str("name"),
                _ => null,
            }
                : a.Long("softwareAgentIndex") is { } index && agents is not null && index >= 0 && index < agents.Count && agents[(int)index] is Dictionary<string, object?> ga ? ga.Str("name") : null;
            string? vendor = null, model = null;
            if (a.Map("parameters") is { } parameters)
            {
                foreach (var (key, value) in parameters)
                {
                    if (key.EndsWith("digitalSourceType", StringComparison.OrdinalIgnoreCase) && value is string dst)
                    {
                        vendor ??= dst;
                    }
                    else if (key.EndsWith("modelId", StringComparison.OrdinalIgnoreCase) && value is not null)
                    {
                        model ??= Cbor.Display(value);
                    }
                }
            }

            if (m.Actions.Count < 1000)
            {
                m.Actions.Add(new C2paAction(action, a.Str("digitalSourceType"), agent, vendor, model));
            }
        }
    }

    private static void ReadSignature(C2paManifest m, ReadOnlyMemory<byte> cose)
    {
        CoseSign1Message message;
        try
        {
            message = CoseMessage.DecodeSign1(cose.Span);
        }
        catch (Exception ex) when (ex is CryptographicException or OverflowException or InvalidOperationException or CborContentException)
        {
            // DecodeSign1 documents CryptographicException, but an integer header label beyond int's range escapes
            // as OverflowException (found by fuzzing); all of them mean "not a COSE_Sign1 we can read".
            m.Failures.Add($"claimSignature.missing: the signature is not a COSE_Sign1 structure ({ex.Message})");
            return;
        }

        m.Signature = message;
        var chain = Certificates(message.ProtectedHeaders) ?? Certificates(message.UnprotectedHeaders) ?? [];
        m.Chain = chain;
        string? alg = null;
        if (message.ProtectedHeaders.TryGetValue(CoseHeaderLabel.Algorithm, out var algValue))
        {
            try
            {
                alg = AlgorithmName(algValue.GetValueAsInt32());
            }
            catch (InvalidOperationException)
            {
                alg = "unknown";
            }
        }

        var timestamp = message.UnprotectedHeaders.ContainsKey(new CoseHeaderLabel("sigTst")) || message.UnprotectedHeaders.ContainsKey(new CoseHeaderLabel("sigTst2"));
        m.Signer = new C2paSigner(null, null, null, null, null, alg, timestamp);
        if (chain.Length > 0)
        {
            var c = chain[0];
            try
            {
                m.Signer = new C2paSigner(c.Subject, Rdn(c.SubjectName, "2.5.4.10"), c.GetNameInfo(X509NameType.SimpleName, false), c.Issuer, c.SerialNumber, alg, timestamp);
            }
            catch (CryptographicException ex)
            {
                // A certificate loads before its names are decoded: a name string with bytes its ASN.1 type forbids
                // (a newline in a PrintableString) throws only here.
                m.Failures.Add($"signingCredential.invalid: the certificate's names cannot be read ({ex.Message})");
            }
        }
    }

    private static X509Certificate2[]? Certificates(CoseHeaderMap headers)
    {
        if (!headers.TryGetValue(new CoseHeaderLabel(33), out var value) && !headers.TryGetValue(new CoseHeaderLabel("x5chain"), out value))
        {
            return null;
        }

        try
        {
            var reader = new CborReader(value.EncodedValue, CborConformanceMode.Lax);
            var ders = new List<byte[]>();
            if (reader.PeekState() == CborReaderState.StartArray)
            {
                reader.ReadStartArray();
                while (reader.PeekState() != CborReaderState.EndArray && ders.Count < 16)
                {
                    ders.Add(reader.ReadByteString());
                }
            }
            else
            {
                ders.Add(reader.ReadByteString());
            }

            return [.. ders.Select(d => X509CertificateLoader.LoadCertificate(d))];
        }
        catch (Exception ex) when (ex is CborContentException or InvalidOperationException or CryptographicException)
        {
            return [];
        }
    }

    private static void Verify(C2paManifest m, C2paSummary summary, ReadOnlyMemory<byte> file, IReadOnlyList<X509Certificate2>? anchors, ProvenanceLimits limits)
    {
        if (m.Claim is null)
        {
            return;
        }

        // 1. Hashed URIs: every assertion the claim lists must be present with the same hash.
        // No default: a claim that names no hash algorithm cannot be checked (c2pa-rs: UnknownAlgorithm).
        var claimAlg = m.Claim.Str("alg") ?? "unstated";
        var listed = (m.Claim.List("assertions") ?? []).Concat(m.Claim.List("created_assertions") ?? []).Concat(m.Claim.List("gathered_assertions") ?? []);
        foreach (var item in listed)
        {
            if (item is not Dictionary<string, object?> link || link.Str("url") is not { } url)
            {
                continue;
            }

            var target = Resolve(url, m, summary);
            var expected = link.Bytes("hash");
            if (target is null)
            {
                m.Failures.Add($"assertion.missing: {url}");
                continue;
            }

            if (expected is null)
            {
                continue;
            }

            var actual = Hash(link.Str("alg") ?? claimAlg, target.Payload.Span);
            if (actual is null)
            {
                m.Failures.Add($"algorithm.unsupported: hash algorithm '{link.Str("alg") ?? claimAlg}' of {url}");
            }
            else if (actual.AsSpan().SequenceEqual(expected))
            {
                m.Successes.Add("assertion.hashedURI.match");
            }
            else
            {
                m.Failures.Add($"assertion.hashedURI.mismatch: {url}");
            }
        }

        // 2. Hard binding: the data hash over the file minus its exclusions (the manifest store itself).
        if (m.Label == summary.ActiveManifest)
        {
            VerifyDataHash(m, file, claimAlg, limits);
        }

        // 3. The claim signature, and 4. the chain to the trust anchors.
        if (m.Signature is null || m.ClaimBytes is null)
        {
            if (!m.Failures.Any(f => f.StartsWith("claimSignature", StringComparison.Ordinal)))
            {
                m.Failures.Add("claimSignature.missing");
            }

            return;
        }

        if (m.Chain.Length == 0)
        {
            m.Failures.Add("signingCredential.invalid: no signing certificate (x5chain)");
            return;
        }

        var alg = m.Signer?.Algorithm;
        if (alg == "Ed25519")
        {
            // Ed25519 is a valid C2PA algorithm that .NET's COSE does not implement: not a failure, not a pass.
            return;
        }

        if (alg is null or "unknown")
        {
            m.Failures.Add("algorithm.unsupported: the signature's algorithm is not one C2PA allows");
            return;
        }

        try
        {
            using var key = PublicKey(m.Chain[0]);
            if (key is null)
            {
                m.Failures.Add("signingCredential.invalid: unsupported public key");
                return;
            }

            if (m.Signature.Content is not null)
            {
                // C2PA signs the claim detached; a COSE_Sign1 that embeds a payload signs something else
                // (and VerifyDetached throws InvalidOperationException for it).
                m.Failures.Add($"claimSignature.mismatch: the signature embeds its own payload (self#jumbf=/c2pa/{m.Label}/c2pa.signature)");
                return;
            }

            if (m.Signature.VerifyDetached(key, m.ClaimBytes))
            {
                m.Successes.Add("claimSignature.validated");
            }
            else
            {
                m.Failures.Add($"claimSignature.mismatch: self#jumbf=/c2pa/{m.Label}/c2pa.signature");
                return;
            }
        }
        catch (CryptographicException ex)
        {
            m.Failures.Add($"algorithm.unsupported: {ex.Message}");
            return;
        }

        if (anchors is { Count: > 0 })
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.CustomTrustStore.AddRange(anchors.ToArray());
            chain.ChainPolicy.ExtraStore.AddRange(m.Chain.Skip(1).ToArray());
            if (m.Signer?.HasTimestamp == true)
            {
                // Validity is judged at the (unverified) timestamp's time by C2PA; we do not parse the timestamp,
                // so an expired certificate with a timestamp is not held against it.
                chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
            }

            if (chain.Build(m.Chain[0]))
            {
                m.Successes.Add("signingCredential.trusted");
            }
        }
    }

    private static void VerifyDataHash(C2paManifest m, ReadOnlyMemory<byte> file, string claimAlg, ProvenanceLimits limits)
    {
        // An update manifest has no hard binding of its own, and its parent's binding was made before the
        // store grew (its exclusion no longer covers the store): as in c2pa-rs, no data hash is checked.
        if (m.IsUpdate)
        {
            m.Successes.Add("assertion.dataHash.notApplicable");
            return;
        }

        var label = m.Assertions.FirstOrDefault(a => BaseLabel(a) == "c2pa.hash.data");
        if (label is null)
        {
            if (m.Assertions.Any(a => BaseLabel(a) is "c2pa.hash.boxes" or "c2pa.hash.bmff" or "c2pa.hash.bmff.v2" or "c2pa.hash.bmff.v3"))
            {
                m.Failures.Add("assertion.hardBinding.notChecked: box/BMFF hash bindings are not implemented");
            }
            else
            {
                m.Failures.Add("claim.hardBindings.missing");
            }

            return;
        }

        var box = m.Box!.Children.First(c => c.UuidType == "c2as").Child(label)!;
        var map = box.Content is { Type: "cbor" } c ? Cbor.Decode(c.Payload, limits.MaxDepth * 4) as Dictionary<string, object?> : null;
        var expected = map.Bytes("hash");
        if (expected is null)
        {
            m.Failures.Add("assertion.dataHash.malformed: no hash");
            return;
        }

        var ranges = new List<(long Start, long Length)>();
        foreach (var e in map.List("exclusions") ?? [])
        {
            if (e is Dictionary<string, object?> x && x.Long("start") is { } s && x.Long("length") is { } l)
            {
                if (s < 0 || l < 0 || s + l > file.Length || ranges.Count > 1000)
                {
                    m.Failures.Add("assertion.dataHash.malformed: exclusion outside the file");
                    return;
                }

                ranges.Add((s, l));
            }
        }

        ranges.Sort();
        var algName = map.Str("alg") ?? claimAlg;
        using var hash = Incremental(algName);
        if (hash is null)
        {
            m.Failures.Add($"algorithm.unsupported: data hash {algName}");
            return;
        }

        var span = file.Span;
        long pos = 0;
        foreach (var (start, length) in ranges)
        {
            if (start < pos)
            {
                m.Failures.Add("assertion.dataHash.malformed: overlapping exclusions");
                return;
            }

            hash.AppendData(span[(int)pos..(int)start]);
            pos = start + length;
        }

        hash.AppendData(span[(int)pos..]);
        var url = $"self#jumbf=/c2pa/{m.Label}/c2pa.assertions/{label}";
        if (hash.GetHashAndReset().AsSpan().SequenceEqual(expected))
        {
            m.Successes.Add("assertion.dataHash.match");
        }
        else
        {
            m.Failures.Add($"assertion.dataHash.mismatch: {url}");
        }
    }

    private static JumbfBox? Resolve(string url, C2paManifest m, C2paSummary summary)
    {
        const string Prefix = "self#jumbf=";
        if (!url.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var path = url[Prefix.Length..];
        var box = m.Box;
        if (path.StartsWith("/c2pa/", StringComparison.Ordinal))
        {
            var rest = path[6..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            var label = slash < 0 ? rest : rest[..slash];
            box = summary.Manifests.FirstOrDefault(x => x.Label == label)?.Box;
            path = slash < 0 ? string.Empty : rest[(slash + 1)..];
        }

        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            box = box?.Child(part);
        }

        return box;
    }

    private static AsymmetricAlgorithm? PublicKey(X509Certificate2 cert)
    {
        if (cert.GetECDsaPublicKey() is { } ec)
        {
            return ec;
        }

        if (cert.GetRSAPublicKey() is { } rsa)
        {
            return rsa;
        }

        // RSASSA-PSS keys (OID 1.2.840.113549.1.1.10, used by C2PA PS256 signers) are not loaded by .NET's
        // certificate API, but their key bits are an ordinary PKCS#1 RSA public key.
        if (cert.PublicKey.Oid.Value == "1.2.840.113549.1.1.10")
        {
            var key = RSA.Create();
            key.ImportRSAPublicKey(cert.PublicKey.EncodedKeyValue.RawData, out _);
            return key;
        }

        return null;
    }

    private static string? ManifestOfUri(string? url)
    {
        const string Prefix = "self#jumbf=/c2pa/";
        if (url is null || !url.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = url[Prefix.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? rest : rest[..slash];
    }

    /// <summary>An assertion label without its instance suffix (c2pa.ingredient__1 → c2pa.ingredient).</summary>
    internal static string BaseLabel(string label)
    {
        var i = label.IndexOf("__", StringComparison.Ordinal);
        return i >= 0 ? label[..i] : label;
    }

    private static byte[]? Hash(string alg, ReadOnlySpan<byte> data) => alg switch
    {
        "sha256" => SHA256.HashData(data),
        "sha384" => SHA384.HashData(data),
        "sha512" => SHA512.HashData(data),
        _ => null,
    };

    private static IncrementalHash? Incremental(string alg) => alg switch
    {
        "sha256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        "sha384" => IncrementalHash.CreateHash(HashAlgorithmName.SHA384),
        "sha512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
        _ => null,
    };

    private static string? AlgorithmName(int alg) => alg switch
    {
        -7 => "ES256",
        -35 => "ES384",
        -36 => "ES512",
        -37 => "PS256",
        -38 => "PS384",
        -39 => "PS512",
        -8 => "Ed25519",
        _ => "unknown",
    };

    private static string? Rdn(X500DistinguishedName name, string oid)
    {
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames())
        {
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == oid)
            {
                return rdn.GetSingleElementValue();
            }
        }

        return null;
    }
}
