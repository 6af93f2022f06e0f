using System.Buffers.Binary;
using System.Diagnostics;
using System.Formats.Cbor;
using System.Security.Cryptography;
using System.Security.Cryptography.Cose;
using System.Text;
using Warden.Core.Imaging;
using Warden.Core.Provenance;
using Warden.Core.Provenance.C2pa;
using Warden.Core.Tests.Provenance;

namespace Warden.Core.Tests;

/// <summary>
/// Every finding of the fuzzers (fuzz/, docs/fuzzing.md): the minimal input the fuzzer reduced it to, then the whole
/// class it belongs to, generated.
/// </summary>
public sealed class FuzzRegressionTests
{
    // Found by the jumbf and c2pa targets: an extended box length near 2^63 made "pos + length" overflow past the
    // bounds check, and Slice threw ArgumentOutOfRangeException out of the provenance reader (a 500 for an upload).
    [Fact]
    public void Jumbf_extended_length_near_2_pow_63_is_refused()
    {
        // The box must not be the first: "0 + (2^63 - 1)" does not overflow, "8 + (2^63 - 1)" does.
        byte[] box = [0, 0, 0, 8, .. "free"u8, 0, 0, 0, 1, .. "jumb"u8, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        var ex = Assert.Throws<ProvenanceException>(() => Jumbf.Parse(box, 16));
        Assert.Equal(ProvenanceError.Truncated, ex.Kind);
    }

    [Fact]
    public void Jumbf_box_lengths_of_any_value_at_any_depth_never_escape_as_anything_but_ProvenanceException()
    {
        ulong[] extended = [0, 1, 8, 15, 16, 17, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, long.MaxValue, (ulong)long.MaxValue + 1, ulong.MaxValue, ulong.MaxValue - 7];
        uint[] plain = [0, 1, 2, 7, 8, 9, 16, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF8, 0xFFFFFFFF];
        var random = new Random(12);
        var cases = 0;
        for (var depth = 0; depth < 4; depth++)
        {
            foreach (var x in extended)
            {
                Check(Nest(depth, [0, 0, 0, 1, .. "json"u8, .. BigEndian64(x), .. "{}"u8]));
                Check(Nest(depth, [0, 0, 0, 1, .. "jumb"u8, .. BigEndian64(x)]));
            }

            foreach (var n in plain)
            {
                Check(Nest(depth, [.. BigEndian32(n), .. "cbor"u8, 0xA0]));
            }

            // After a sibling box too (the overflow needs the box to start past byte 0).
            foreach (var x in extended)
            {
                Check(Nest(depth, [0, 0, 0, 8, .. "free"u8, 0, 0, 0, 1, .. "jumb"u8, .. BigEndian64(x)]));
            }

            // And random headers: any 32-bit length, any 64-bit extended length, any tail.
            for (var i = 0; i < 500; i++)
            {
                var tail = new byte[random.Next(0, 24)];
                random.NextBytes(tail);
                var x = (ulong)random.NextInt64() * (ulong)random.Next(1, 3) + (ulong)random.Next(0, 64);
                Check(Nest(depth, [.. BigEndian32(random.Next(3) == 0 ? 1u : (uint)random.Next()), .. "jumb"u8, .. BigEndian64(x), .. tail]));
            }
        }

        Assert.True(cases > 2000);

        void Check(byte[] data)
        {
            cases++;
            try
            {
                Jumbf.Parse(data, 16);
            }
            catch (ProvenanceException)
            {
            }

            // The whole reader too: the store in a PNG's caBX chunk.
            var report = ProvenanceReader.Read(Fixtures.SmallPng(Fixtures.Chunk("caBX", data)));
            Assert.NotNull(report);
        }
    }

    // Found by the c2pa target: a certificate loads before its names are decoded, so a byte a PrintableString
    // forbids (a newline) threw CryptographicException out of C2paReader.Read while naming the signer.
    [Fact]
    public void Certificate_name_with_a_forbidden_byte_is_a_signer_failure_not_an_exception()
    {
        var (store, file) = SignedStore();
        var bad = (byte[])store.Clone();
        foreach (var at in IndexOfAll(store, "Warden Tests"u8))
        {
            bad[at + 1] = (byte)'\n'; // the organisation, in the subject and the issuer
        }

        var summary = C2paReader.Read(bad, file, verify: true, anchors: null, ProvenanceLimits.Default);
        Assert.Contains(summary.Manifests.SelectMany(m => m.Failures), f => f.StartsWith("signingCredential.invalid", StringComparison.Ordinal));
        Assert.Equal(C2paSummary.Failed, summary.Validation);
    }

    [Fact]
    public void Hostile_bytes_anywhere_in_the_certificate_chain_never_escape_the_C2pa_reader()
    {
        var (store, file) = SignedStore();

        // Every byte value in every position of every subject/issuer name string...
        var names = IndexOfAll(store, "Warden Test"u8).ToList();
        Assert.NotEmpty(names);
        var cases = 0;
        foreach (var at in names)
        {
            for (var value = 0; value < 256; value++)
            {
                var bad = (byte[])store.Clone();
                bad[at + (value % 11)] = (byte)value;
                Read(bad);
            }
        }

        // ...and random corruption of the whole signature box (COSE structure, certificates, signature).
        var signature = IndexOfAll(store, "c2pa.signature"u8).First();
        var random = new Random(5);
        for (var i = 0; i < 1500; i++)
        {
            var bad = (byte[])store.Clone();
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                bad[random.Next(signature, bad.Length)] = (byte)random.Next(256);
            }

            Read(bad);
        }

        Assert.Equal((names.Count * 256) + 1500, cases);

        void Read(byte[] candidate)
        {
            cases++;
            try
            {
                C2paReader.Read(candidate, file, verify: true, anchors: null, ProvenanceLimits.Default);
            }
            catch (ProvenanceException)
            {
            }
        }
    }

    // Found by the provenance-pixels target: a 600-byte PNG declaring 16,777,224 x 8 RGBA pixels (under the
    // 200 MP limit) made libvips hold every row at once: 900 MB resident and 2.5 s for one upload.
    [Fact]
    public void Very_wide_png_is_refused_from_its_header()
    {
        var png = MalformedInputTests.PngWithDeclaredSize(16_777_224, 8);
        var clock = Stopwatch.StartNew();
        var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png));
        Assert.Equal(ImageDecodeError.TooManyPixels, ex.Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), clock.Elapsed.ToString());
    }

    [Fact]
    public void Any_side_over_the_limit_is_refused_in_every_container_and_sides_up_to_it_are_not()
    {
        var random = new Random(9);
        for (var i = 0; i < 40; i++)
        {
            // Long sides from just over the limit up to where the pixel limit would stop them anyway.
            var side = random.Next(ImageLimits.DefaultMaxSide + 1, 25_000_000);
            var other = random.Next(1, (int)Math.Max(1, ImageLimits.DefaultMaxPixels / side));
            var (w, h) = i % 2 == 0 ? (side, other) : (other, side);
            foreach (var image in new[] { MalformedInputTests.PngWithDeclaredSize(w, h), TiffWithDeclaredSize(w, h) })
            {
                var ex = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(image));
                Assert.Equal(ImageDecodeError.TooManyPixels, ex.Error);
            }
        }

        // The limit itself still decodes (a 65,535 x 1 strip) and is configurable.
        var strip = SyntheticImages.Encode(new byte[ImageLimits.DefaultMaxSide * 3], ImageLimits.DefaultMaxSide, 1, "png");
        using (var decoded = ImageDecoder.Decode(strip))
        {
            Assert.Equal((ImageLimits.DefaultMaxSide, 1), (decoded.Width, decoded.Height));
        }

        var small = SyntheticImages.EncodedSmooth(100, 10, "png");
        Assert.Equal(ImageDecodeError.TooManyPixels, Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(small, new ImageLimits { MaxSide = 99 })).Error);
    }

    // Found by the c2pa target (both inputs kept in TestData/fuzz): System.Security.Cryptography.Cose throws more
    // than it documents. DecodeSign1 let an OverflowException out for a header label beyond int's range; VerifyDetached throws InvalidOperationException when the message embeds its payload.
    [Theory]
    [InlineData("c2pa-cose-label-overflow.jumbf", "claimSignature.missing")]
    [InlineData("c2pa-embedded-payload.jumbf", "claimSignature.mismatch")]
    public void Fuzzer_found_COSE_inputs_are_signature_failures(string name, string failure)
    {
        var store = File.ReadAllBytes(TestData.Own("fuzz", name));
        var summary = C2paReader.Read(store, store, verify: true, anchors: null, ProvenanceLimits.Default);
        Assert.Contains(summary.Manifests.SelectMany(m => m.Failures), f => f.StartsWith(failure, StringComparison.Ordinal));
        Assert.Equal(C2paSummary.Failed, summary.Validation);
    }

    [Fact]
    public void COSE_header_labels_outside_int_range_are_a_missing_signature()
    {
        // The fuzzer turned the protected header {1: -7} into {0x1B 26182159015A3082: ...}: a 64-bit label that
        // CoseHeaderLabel's int cannot hold. Every integer label outside int, both signs, in both header maps:
        var (store, file) = SignedStore();
        ulong[] magnitudes = [0x80000000, 0x80000001, 0xFFFFFFFF, 0x100000000, long.MaxValue, ulong.MaxValue];
        foreach (var magnitude in magnitudes)
        {
            foreach (var major in new byte[] { 0x1B, 0x3B }) // unsigned, negative (-1 - n)
            {
                // COSE_Sign1 = tag 18 [protected bstr, unprotected map, payload, signature], byte by byte.
                byte[] map = [0xA1, major, .. BigEndian64(magnitude), 0x26];
                byte[] signature = [0x58, 0x40, .. new byte[64]];
                byte[] inProtected = [0xD2, 0x84, (byte)(0x40 + map.Length), .. map, 0xA0, 0xF6, .. signature];
                byte[] inUnprotected = [0xD2, 0x84, 0x43, 0xA1, 0x01, 0x26, .. map, 0xF6, .. signature];
                foreach (var cose in new[] { inProtected, inUnprotected })
                {
                    var summary = C2paReader.Read(WithSignature(store, cose), file, verify: true, anchors: null, ProvenanceLimits.Default);
                    Assert.Contains(summary.Manifests.SelectMany(m => m.Failures), f => f.StartsWith("claimSignature.missing", StringComparison.Ordinal));
                }
            }
        }
    }

    [Fact]
    public void COSE_signature_that_embeds_any_payload_is_a_mismatch_even_when_validly_signed()
    {
        var builder = new C2paBuilder();
        var file = builder.Sign(C2paBuilder.InPng);
        var at = file.AsSpan().IndexOf("caBX"u8);
        var store = file.AsSpan(at + 4, BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at - 4))).ToArray();
        var claim = Assert.Single(C2paReader.Read(store, file, verify: false, anchors: null, ProvenanceLimits.Default).Manifests).ClaimBytes!;
        var chain = new CborWriter();
        chain.WriteByteString(builder.Leaf.RawData);
        var headers = new CoseHeaderMap { [new CoseHeaderLabel(33)] = CoseHeaderValue.FromEncodedValue(chain.Encode()) };
        var random = new Random(3);
        foreach (var payload in new[] { [], claim, new byte[1], RandomBytes(random, 100), RandomBytes(random, 5000) })
        {
            var cose = CoseSign1Message.SignEmbedded(payload, new CoseSigner(builder.Key, HashAlgorithmName.SHA256, headers));
            var summary = C2paReader.Read(WithSignature(store, cose), file, verify: true, anchors: null, ProvenanceLimits.Default);
            Assert.Contains(summary.Manifests.SelectMany(m => m.Failures), f => f.StartsWith("claimSignature.mismatch: the signature embeds", StringComparison.Ordinal));
            Assert.Equal(C2paSummary.Failed, summary.Validation);
        }

        // The same key signing the claim detached is still valid: the failure is the embedding, nothing else.
        var detached = CoseSign1Message.SignDetached(claim, new CoseSigner(builder.Key, HashAlgorithmName.SHA256, headers));
        var ok = C2paReader.Read(WithSignature(store, detached), file, verify: true, anchors: null, ProvenanceLimits.Default);
        Assert.Contains("claimSignature.validated", Assert.Single(ok.Manifests).Successes);

        static byte[] RandomBytes(Random random, int n)
        {
            var b = new byte[n];
            random.NextBytes(b);
            return b;
        }
    }

    // Found by the provenance target: a zTXt chunk whose zlib header asks for a preset dictionary (FDICT) made
    // zlib fail with ZLibException, an IOException the inflater did not expect (only InvalidDataException).
    [Fact]
    public void Zlib_stream_asking_for_a_preset_dictionary_is_a_warning()
    {
        var png = Fixtures.SmallPng(Fixtures.Chunk("zTXt", [.. "prompt"u8, 0, 0, 0x78, 0x20, 0x7E, 0x65, 0x73, 0x6F, 0x65, 0x56, 0x32]));
        var report = ProvenanceReader.Read(png);
        Assert.Contains(report.Warnings, w => w.Contains("compressed data is corrupt", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_zlib_and_gzip_header_is_inflated_or_refused_with_ProvenanceException()
    {
        var random = new Random(17);
        var body = new byte[12];
        for (var header = 0; header < 65536; header++)
        {
            random.NextBytes(body);
            Check([(byte)(header >> 8), (byte)header, .. body], gzip: false);
        }

        for (var i = 0; i < 5000; i++)
        {
            // gzip: magic, deflate, then random flags, mtime, xfl, os and a random body (extra fields, names, CRCs).
            var rest = new byte[random.Next(0, 40)];
            random.NextBytes(rest);
            Check([0x1F, 0x8B, 0x08, .. rest], gzip: true);
        }

        // And inside the containers: zTXt and compressed iTXt with every preset-dictionary header.
        for (var cmf = 0x08; cmf <= 0x78; cmf += 0x10)
        {
            for (var flg = 0x20; flg < 0x40; flg++)
            {
                if (((cmf * 256) + flg) % 31 == 0)
                {
                    Assert.NotNull(ProvenanceReader.Read(Fixtures.SmallPng(
                        Fixtures.Chunk("zTXt", [.. "prompt"u8, 0, 0, (byte)cmf, (byte)flg, 1, 2, 3, 4]),
                        Fixtures.Chunk("iTXt", [.. "parameters"u8, 0, 1, 0, 0, 0, (byte)cmf, (byte)flg, 1, 2, 3, 4]))));
                }
            }
        }

        static void Check(byte[] data, bool gzip)
        {
            try
            {
                ContainerWalker.Decompress(data, 1 << 20, gzip);
            }
            catch (ProvenanceException)
            {
            }
        }
    }

    private static (byte[] Store, byte[] File) SignedStore()
    {
        var file = new C2paBuilder().Sign(C2paBuilder.InPng);
        var at = file.AsSpan().IndexOf("caBX"u8);
        var length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at - 4));
        return (file.AsSpan(at + 4, length).ToArray(), file);
    }

    // The store with its signature superbox's content replaced by another COSE_Sign1 (lengths rebuilt).
    private static byte[] WithSignature(byte[] store, byte[] cose)
    {
        var root = Assert.Single(Jumbf.Parse(store, 16));
        return Write(root);

        byte[] Write(JumbfBox box)
        {
            if (box.Type != "jumb")
            {
                return box.Raw.ToArray();
            }

            var payload = box.Payload.Span;
            var description = payload[..(int)BinaryPrimitives.ReadUInt32BigEndian(payload)].ToArray();
            return box.Label == "c2pa.signature"
                ? C2paBuilder.Box("jumb", description, C2paBuilder.Box("cbor", cose))
                : C2paBuilder.Box("jumb", [description, .. box.Children.Select(Write)]);
        }
    }

    private static List<int> IndexOfAll(byte[] data, ReadOnlySpan<byte> needle)
    {
        var found = new List<int>();
        for (var from = 0; ;)
        {
            var i = data.AsSpan(from).IndexOf(needle);
            if (i < 0)
            {
                return found;
            }

            found.Add(from + i);
            from += i + 1;
        }
    }

    // A superbox chain "depth" levels deep around the given box (each level a valid description box).
    private static byte[] Nest(int depth, byte[] inner)
    {
        var data = inner;
        for (var d = 0; d < depth; d++)
        {
            byte[] jumd = [.. "c2pa"u8, 0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71, 0x03, .. Encoding.ASCII.GetBytes("l" + d), 0];
            byte[] description = [.. BigEndian32((uint)(8 + jumd.Length)), .. "jumd"u8, .. jumd];
            data = [.. BigEndian32((uint)(8 + description.Length + data.Length)), .. "jumb"u8, .. description, .. data];
        }

        return data;
    }

    private static byte[] BigEndian32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return b;
    }

    private static byte[] BigEndian64(ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        return b;
    }

    /// <summary>A little-endian grey 8-bit TIFF whose IFD declares the given size over one strip of 16 bytes.</summary>
    private static byte[] TiffWithDeclaredSize(int width, int height)
    {
        (ushort Tag, ushort Type, uint Value)[] entries =
        [
            (256, 4, (uint)width), (257, 4, (uint)height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 0), (277, 3, 1), (278, 4, (uint)height), (279, 4, 16),
        ];
        var ifdSize = 2 + (entries.Length * 12) + 4;
        var dataOffset = 8 + ifdSize;
        var tiff = new byte[dataOffset + 16];
        "II*\0"u8.CopyTo(tiff);
        BinaryPrimitives.WriteUInt32LittleEndian(tiff.AsSpan(4), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(tiff.AsSpan(8), (ushort)entries.Length);
        for (var i = 0; i < entries.Length; i++)
        {
            var e = tiff.AsSpan(10 + (i * 12));
            var (tag, type, value) = entries[i];
            BinaryPrimitives.WriteUInt16LittleEndian(e, tag);
            BinaryPrimitives.WriteUInt16LittleEndian(e[2..], type);
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 1);
            if (type == 3)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)value);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(e[8..], tag == 273 ? (uint)dataOffset : value);
            }
        }

        return tiff;
    }
}
