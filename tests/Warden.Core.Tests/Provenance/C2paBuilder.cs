using System.Buffers.Binary;
using System.Formats.Cbor;
using System.Security.Cryptography;
using System.Security.Cryptography.Cose;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Warden.Core.Tests.Provenance;

/// <summary>
/// Builds C2PA manifest stores in the test (JUMBF + CBOR + COSE_Sign1 with a generated P-256 certificate) and
/// embeds them in PNG (caBX), JPEG (APP11, split over segments) and WebP (C2PA chunk) with a correct data hash.
/// </summary>
internal sealed class C2paBuilder
{
    private static readonly byte[] UuidSuffix = [0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    public C2paBuilder()
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("CN=Warden Test Root, O=Warden Tests", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        Root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(2));
        Key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Warden Test Signer, O=Warden Tests", Key, HashAlgorithmName.SHA256);
        Leaf = request.Create(Root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), [1, 2, 3, 4]);
    }

    public X509Certificate2 Root { get; }

    public X509Certificate2 Leaf { get; }

    public ECDsa Key { get; }

    public string DigitalSourceType { get; set; } = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";

    public int PaddingBytes { get; set; }

    public int ClaimVersion { get; set; } = 1;

    public static byte[] Box(string type, params byte[][] payload)
    {
        var length = 8 + payload.Sum(p => p.Length);
        var box = new byte[length];
        BinaryPrimitives.WriteUInt32BigEndian(box, (uint)length);
        Encoding.ASCII.GetBytes(type, box.AsSpan(4));
        var at = 8;
        foreach (var p in payload)
        {
            p.CopyTo(box, at);
            at += p.Length;
        }

        return box;
    }

    public static byte[] Super(string uuidType, string label, params byte[][] content) =>
        Box("jumb", [Box("jumd", [.. Encoding.ASCII.GetBytes(uuidType), .. UuidSuffix, 0x03, .. Encoding.UTF8.GetBytes(label), 0]), .. content]);

    private static byte[] Cbor(Action<CborWriter> write)
    {
        var w = new CborWriter(CborConformanceMode.Lax);
        write(w);
        return w.Encode();
    }

    private static byte[] ActionsCbor(string source) => Cbor(w =>
    {
        w.WriteStartMap(1);
        w.WriteTextString("actions");
        w.WriteStartArray(1);
        w.WriteStartMap(3);
        w.WriteTextString("action");
        w.WriteTextString("c2pa.created");
        w.WriteTextString("digitalSourceType");
        w.WriteTextString(source);
        w.WriteTextString("softwareAgent");
        w.WriteTextString("Warden Test Generator 1.0");
        w.WriteEndMap();
        w.WriteEndArray();
        w.WriteEndMap();
    });

    private static byte[] DataHashCbor(long start, long length, byte[] hash) => Cbor(w =>
    {
        w.WriteStartMap(4);
        w.WriteTextString("exclusions");
        w.WriteStartArray(1);
        w.WriteStartMap(2);
        w.WriteTextString("start");
        w.WriteInt64(start);
        w.WriteTextString("length");
        w.WriteInt64(length);
        w.WriteEndMap();
        w.WriteEndArray();
        w.WriteTextString("name");
        w.WriteTextString("jumbf manifest");
        w.WriteTextString("alg");
        w.WriteTextString("sha256");
        w.WriteTextString("hash");
        w.WriteByteString(hash);
        w.WriteEndMap();
    });

    /// <summary>A manifest store whose data hash excludes [start, start+length) and equals <paramref name="dataHash"/>.</summary>
    public byte[] Store(long start, long length, byte[] dataHash, Func<byte[], byte[]>? tamperActions = null, bool badSignature = false)
    {
        const string Label = "urn:uuid:00000000-0000-4000-8000-000000000001";
        var actions = Super("cbor", ClaimVersion == 2 ? "c2pa.actions.v2" : "c2pa.actions", Box("cbor", ActionsCbor(DigitalSourceType)));
        var hashData = Super("cbor", "c2pa.hash.data", Box("cbor", DataHashCbor(start, length, dataHash)));
        var assertions = new List<(string Label, byte[] Box)> { (ClaimVersion == 2 ? "c2pa.actions.v2" : "c2pa.actions", actions), ("c2pa.hash.data", hashData) };
        if (PaddingBytes > 0)
        {
            assertions.Add(("org.warden.padding", Super("cbor", "org.warden.padding", Box("cbor", Cbor(w => w.WriteByteString(new byte[PaddingBytes]))))));
        }

        var claim = Cbor(w =>
        {
            w.WriteStartMap(null);
            if (ClaimVersion == 1)
            {
                w.WriteTextString("claim_generator");
                w.WriteTextString("WardenTest/1.0 c2pa-builder/0.1");
            }

            w.WriteTextString("claim_generator_info");
            if (ClaimVersion == 2)
            {
                w.WriteStartMap(2);
                w.WriteTextString("name");
                w.WriteTextString("WardenTest");
                w.WriteTextString("version");
                w.WriteTextString("1.0");
                w.WriteEndMap();
            }
            else
            {
                w.WriteStartArray(1);
                w.WriteStartMap(1);
                w.WriteTextString("name");
                w.WriteTextString("WardenTest");
                w.WriteEndMap();
                w.WriteEndArray();
            }

            w.WriteTextString("dc:title");
            w.WriteTextString("fixture");
            w.WriteTextString("instanceID");
            w.WriteTextString("xmp:iid:00000000-0000-4000-8000-000000000002");
            w.WriteTextString("alg");
            w.WriteTextString("sha256");
            w.WriteTextString("signature");
            w.WriteTextString("self#jumbf=c2pa.signature");
            w.WriteTextString(ClaimVersion == 2 ? "created_assertions" : "assertions");
            w.WriteStartArray(assertions.Count);
            foreach (var (label, box) in assertions)
            {
                w.WriteStartMap(2);
                w.WriteTextString("url");
                w.WriteTextString("self#jumbf=c2pa.assertions/" + label);
                w.WriteTextString("hash");
                w.WriteByteString(SHA256.HashData(box.AsSpan(8)));
                w.WriteEndMap();
            }

            w.WriteEndArray();
            w.WriteEndMap();
        });

        var headers = new CoseHeaderMap { { new CoseHeaderLabel(33), CoseHeaderValue.FromBytes(Leaf.RawData) } };
        var signature = CoseSign1Message.SignDetached(claim, new CoseSigner(Key, HashAlgorithmName.SHA256, headers));
        if (badSignature)
        {
            signature[^5] ^= 0x40;
        }

        if (tamperActions is not null)
        {
            assertions[0] = (assertions[0].Label, tamperActions(assertions[0].Box));
        }

        var manifest = Super("c2ma", Label,
            Super("c2as", "c2pa.assertions", [.. assertions.Select(a => a.Box)]),
            Super("c2cl", ClaimVersion == 2 ? "c2pa.claim.v2" : "c2pa.claim", Box("cbor", claim)),
            Super("c2cs", "c2pa.signature", Box("cbor", signature)));
        return Super("c2pa", "c2pa", manifest);
    }

    /// <summary>Builds a signed file: <paramref name="embed"/> places a store and says which byte range it occupies.</summary>
    public byte[] Sign(Func<byte[], (byte[] File, int Start, int Length)> embed, Func<byte[], byte[]>? tamperActions = null, bool badSignature = false)
    {
        long start = 0, length = 0;
        (byte[] File, int Start, int Length) placed = default;
        for (var i = 0; i < 5; i++)
        {
            placed = embed(Store(start, length, new byte[32]));
            if (placed.Start == start && placed.Length == length)
            {
                break;
            }

            (start, length) = (placed.Start, placed.Length);
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(placed.File.AsSpan(0, placed.Start));
        hash.AppendData(placed.File.AsSpan(placed.Start + placed.Length));
        var final = embed(Store(start, length, hash.GetHashAndReset(), tamperActions, badSignature));
        Assert.Equal(placed.Length, final.Length);
        return final.File;
    }

    public static (byte[], int, int) InPng(byte[] store)
    {
        var png = Fixtures.SmallPng();
        var chunk = Fixtures.Chunk("caBX", store);
        return ([.. png.AsSpan(0, 33), .. chunk, .. png.AsSpan(33)], 33, chunk.Length);
    }

    public static (byte[], int, int) InJpeg(byte[] store) => InJpeg(store, 64000);

    public static (byte[], int, int) InJpeg(byte[] store, int maxChunk)
    {
        var jpeg = Fixtures.SmallJpeg();
        var segments = new List<byte>();
        var seq = 1u;
        for (var at = 0; at < store.Length; at += maxChunk, seq++)
        {
            var part = store.AsSpan(at, Math.Min(maxChunk, store.Length - at));
            var head = new byte[8];
            head[0] = (byte)'J';
            head[1] = (byte)'P';
            BinaryPrimitives.WriteUInt16BigEndian(head.AsSpan(2), 0x0211);
            BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(4), seq);
            segments.AddRange(Fixtures.Segment(0xEB, [.. head, .. (seq == 1 ? [] : store.AsSpan(0, 8)), .. part]));
        }

        return ([.. jpeg.AsSpan(0, 2), .. segments, .. jpeg.AsSpan(2)], 2, segments.Count);
    }

    public static (byte[], int, int) InWebP(byte[] store)
    {
        var webp = Fixtures.SmallWebP(("C2PA", store));
        var at = webp.AsSpan().IndexOf("C2PA"u8);
        return (webp, at, 8 + store.Length + (store.Length & 1));
    }
}
