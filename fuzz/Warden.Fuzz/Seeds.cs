using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using NetVips;
using Warden.Core.Tests;
using Warden.Core.Tests.Provenance;

namespace Warden.Fuzz;

/// <summary>
/// Writes the seed corpora (fuzz/corpus/TARGET/): small, benign, synthetic valid inputs of each format, made here
/// from smooth colour fields, invented hashes and tiny models, so that mutation starts from inputs that reach deep
/// into each parser. Nothing is copied from elsewhere. <c>scripts/fuzz --make-corpus</c> regenerates them.
/// </summary>
public static class Seeds
{
    private const string Md5 = "0123456789abcdef0123456789abcdef";
    private const string Sha1 = "0123456789abcdef0123456789abcdef01234567";
    private const string Pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    /// <summary>Writes every target's seeds under <paramref name="root"/>, replacing what was there.</summary>
    public static void Write(string root)
    {
        foreach (var (target, seeds) in All())
        {
            var dir = Path.Combine(root, target);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            Directory.CreateDirectory(dir);
            foreach (var (name, data) in seeds)
            {
                File.WriteAllBytes(Path.Combine(dir, name), data);
            }

            Console.WriteLine($"{target}: {seeds.Count} seeds, {seeds.Sum(s => s.Data.Length)} bytes");
        }
    }

    /// <summary>Every target's seeds, by target name.</summary>
    public static Dictionary<string, List<(string Name, byte[] Data)>> All()
    {
        var jpeg = SyntheticImages.EncodedSmooth(24, 16, "jpg", 1, "[Q=80]");
        var progressive = SyntheticImages.EncodedSmooth(24, 16, "jpg", 2, "[Q=80,interlace]");
        var png = SyntheticImages.EncodedSmooth(12, 8, "png", 3);
        var store = StoreInPng();
        var pickle = StateDictPickle();
        return new()
        {
            ["sniff"] = [("jpeg", jpeg[..64]), ("png", png[..64]), ("gguf", Gguf()[..64]), ("zip", TorchZip()[..64]), ("pickle", pickle[..32]), ("csv", "signal_type,signal\n"u8.ToArray())],
            ["image-jpeg"] = [("baseline.jpg", jpeg), ("progressive.jpg", progressive), ("grey.jpg", Grey("jpg", "[Q=70]")), ("444-restart.jpg", SyntheticImages.EncodedSmooth(16, 16, "jpg", 4, "[Q=90,subsample_mode=off,restart_interval=1]"))],
            ["image-png"] = [("rgb.png", png), ("palette.png", SyntheticImages.EncodedSmooth(12, 8, "png", 5, "[palette,bitdepth=4]")), ("grey.png", Grey("png", "")), ("interlaced.png", SyntheticImages.EncodedSmooth(9, 7, "png", 6, "[interlace]")), ("rgba.png", Rgba())],
            ["image-webp"] = [("lossy.webp", SyntheticImages.EncodedSmooth(16, 12, "webp", 7, "[Q=50]")), ("lossless.webp", SyntheticImages.EncodedSmooth(8, 8, "webp", 8, "[lossless]"))],
            ["image-gif"] = [("small.gif", SyntheticImages.EncodedSmooth(10, 8, "gif", 9))],
            ["image-tiff"] = [("plain.tif", SyntheticImages.EncodedSmooth(8, 6, "tif", 10)), ("lzw.tif", SyntheticImages.EncodedSmooth(8, 6, "tif", 11, "[compression=lzw]")), ("tiled.tif", SyntheticImages.EncodedSmooth(16, 16, "tif", 12, "[tile,tile_width=16,tile_height=16,compression=deflate]"))],
            ["image-bmp"] = [("rgb24.bmp", Bmp(24)), ("rgb32.bmp", Bmp(32)), ("pal8.bmp", Bmp(8)), ("rle8.bmp", BmpRle8())],
            ["jpeg-dc"] = [("progressive.jpg", progressive), ("progressive-grey.jpg", Grey("jpg", "[interlace]")), ("progressive-444.jpg", SyntheticImages.EncodedSmooth(16, 16, "jpg", 13, "[Q=90,interlace,subsample_mode=off,restart_interval=2]")), ("baseline.jpg", jpeg)],
            ["provenance"] = [("a1111.png", Fixtures.SmallPng(Fixtures.Text("parameters", "a lighthouse\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48, Model: demo"))), ("comfy.png", Fixtures.SmallPng(Fixtures.ZText("prompt", "{\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":1}}}"), Fixtures.IText("XML:com.adobe.xmp", XmpPacket(), false))), ("exif-xmp.jpg", Fixtures.SmallJpeg(Fixtures.ExifSegment(Tiff()), Fixtures.XmpSegment(XmpPacket()))), ("xmp.webp", Fixtures.SmallWebP(("XMP ", Encoding.UTF8.GetBytes(XmpPacket())), ("EXIF", Tiff()))), ("c2pa.png", store)],
            ["provenance-pixels"] = [("rgba.png", Rgba()), ("small.jpg", jpeg)],
            ["xmp"] = [("xmp.xml", Encoding.UTF8.GetBytes(XmpPacket()))],
            ["exif"] = [("le.tif", Tiff()), ("be.tif", Tiff(bigEndian: true))],
            ["jumbf"] = [("store.jumbf", StoreBytes())],
            ["cbor"] = [("claim.cbor", ClaimCbor())],
            ["c2pa"] = [("store.jumbf", StoreBytes())],
            ["pickle"] = [("state-dict.pkl", pickle), ("proto0.pkl", "(dp0\nS'a'\np1\nI1\nsS'b'\np2\n(lp3\nF1.5\naI-2\nas."u8.ToArray()), ("proto4.pkl", Proto4()), ("reduce.pkl", new PickleWriter().Proto(2).Global("posix", "system").Str("true").Bytes([0x85]).Reduce().Stop().ToArray())],
            ["model-pickle"] = [("model.pkl", pickle)],
            ["model-torch-zip"] = [("model.pt", TorchZip())],
            ["model-torch-legacy"] = [("legacy.pt", LegacyTorch())],
            ["model-safetensors"] = [("model.safetensors", Safetensors())],
            ["model-gguf"] = [("model.gguf", Gguf())],
            ["model-onnx"] = [("model.onnx", Onnx())],
            ["bank-csv"] = [("list.csv", Encoding.UTF8.GetBytes($"signal_type,signal,note,external_id,category\npdq,{Pdq},demo,e1,demo\nmd5,{Md5},\"a, \"\"quoted\"\" note\",e2,\nsha1,{Sha1},,e3,\n"))],
            ["bank-jsonl"] = [("list.jsonl", Encoding.UTF8.GetBytes($"{{\"signal_type\":\"md5\",\"signal\":\"{Md5}\",\"note\":\"n\",\"external_id\":\"x1\"}}\n{{\"signal_type\":\"pdq\",\"signal\":\"{Pdq}\",\"labels\":{{\"category\":\"demo\"}}}}\n{{\"signal_type\":\"sha1\",\"signal\":\"{Sha1}\",\"deleted\":true}}\n"))],
            ["bank-plain"] = [("list.txt", Encoding.UTF8.GetBytes($"# demo list\n{Md5}\n\n{Sha1}\n{Md5.ToUpperInvariant()}  \n"))],
            ["bank-ncmec-xml"] = [("page.xml", Encoding.UTF8.GetBytes(NcmecPage()))],
            ["cybertip-response"] = [("report.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><reportResponse><responseCode>0</responseCode><responseDescription>Success</responseDescription><reportId>4564</reportId></reportResponse>"u8.ToArray()), ("upload.xml", "<reportResponse><responseCode>0</responseCode><reportId>4564</reportId><fileId>ab12</fileId><hash>d41d8cd98f00b204e9800998ecf8427e</hash></reportResponse>"u8.ToArray())],
            ["tmk"] = [("small.tmk", Tmk(2, 2, 4)), ("no-periods.tmk", Tmk(0, 0, 1)), ("frames.feat", Feat(4, 3))],
            ["signal-text"] = [.. Warden.Core.Signals.SignalTypeRegistry.Default.All.SelectMany(t => t.Examples.Take(2).Select((e, i) => ($"{t.Name}-{i}.txt", Encoding.UTF8.GetBytes(e)))).Where(s => s.Item2.Length <= 4096), ("tmk.txt", Encoding.ASCII.GetBytes("tmk1:" + Convert.ToBase64String(Tmk(1, 1, 2))))],
            ["video-probe"] = [("mp4.json", VideoProbeJson("h264", "mov,mp4,m4a,3gp,3g2,mj2", "\"nb_frames\":\"50\",\"has_b_frames\":2,")), ("webm.json", VideoProbeJson("vp9", "matroska,webm", string.Empty))],
            ["exchange-ncmec"] = [("page.xml", Encoding.UTF8.GetBytes(NcmecPage())), ("page-tmk.bin", ExchangeTargets.Join(Encoding.UTF8.GetBytes(NcmecTmkPage()), Tmk(2, 2, 4)))],
            ["exchange-stopncii"] = [("page.json", Encoding.UTF8.GetBytes($"{{\"hasMoreRecords\":true,\"nextPageToken\":\"t1\",\"nextSetTimestamp\":100,\"hashRecords\":[{{\"signalType\":\"ImagePDQ\",\"hashValue\":\"{Pdq}\",\"hashStatus\":\"Active\",\"caseNumbers\":[\"c1\"]}},{{\"signalType\":\"VideoMD5\",\"hashValue\":\"{Md5}\",\"hashStatus\":\"Deleted\"}}]}}\n=====\n{{\"hasMoreRecords\":false,\"nextSetTimestamp\":200,\"hashRecords\":[]}}"))],
            ["exchange-threatexchange"] = [("updates.json", Encoding.UTF8.GetBytes($"{{\"data\":[{{\"id\":\"1\",\"type\":\"HASH_PDQ\",\"indicator\":\"{Pdq}\",\"last_updated\":10,\"should_delete\":false,\"descriptors\":{{\"data\":[{{\"tags\":[\"demo\"],\"owner\":{{\"id\":\"7\"}},\"status\":\"MALICIOUS\"}}]}}}},{{\"id\":\"2\",\"type\":\"HASH_MD5\",\"indicator\":\"{Md5}\",\"last_updated\":11,\"should_delete\":true}}],\"paging\":{{\"cursors\":{{\"after\":\"x\"}}}}}}"))],
            ["exchange-peer"] = [("changes.json", Encoding.UTF8.GetBytes($"{{\"database_id\":\"db1\",\"high_water\":3,\"has_more\":true,\"entries\":[{{\"id\":1,\"signal_type\":\"pdq\",\"signal\":\"{Pdq}\",\"labels\":{{\"category\":\"demo\"}},\"external_id\":\"e1\",\"note\":\"n\"}},{{\"id\":2,\"signal_type\":\"md5\",\"signal\":\"{Md5}\",\"deleted\":true}},{{\"id\":3,\"signal_type\":\"sha1\",\"signal\":\"{Sha1}\",\"enabled\":false}}]}}\n=====\n{{\"database_id\":\"db1\",\"high_water\":3,\"has_more\":false,\"entries\":[]}}"))],
            ["exchange-peer-hma"] = [("content.json", Encoding.UTF8.GetBytes($"{{\"name\":\"b\",\"matching_enabled_ratio\":1.0}}\n=====\n{{\"id\":1,\"bank\":{{\"name\":\"b\"}},\"disable_until_ts\":-1,\"signals\":{{\"pdq\":\"{Pdq}\",\"md5\":\"{Md5}\"}},\"metadata\":{{\"collab\":{{\"tags\":[\"demo\"]}}}},\"note\":\"n\"}}"))],
            ["exchange-url-list"] = [("list.txt", Encoding.UTF8.GetBytes($"# demo list\n{Md5}\n\n{Md5.ToUpperInvariant()}\n")), ("list.csv", Encoding.UTF8.GetBytes($"signal_type,signal,note\nmd5,{Md5},demo\npdq,{Pdq},\n"))],
            ["multipart"] = [("file.txt", "multipart/form-data; boundary=XyZ\n--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\nx\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\nDATA\r\n--XyZ--\r\n"u8.ToArray()), ("raw.txt", "application/octet-stream\nDATA"u8.ToArray())],
        };
    }

    // A `.tmk` feature file with small, made-up parameters (the reference's is 350 KB, beyond the seed size rule).
    private static byte[] Tmk(int periods, int coefficients, int dimension)
    {
        var floats = coefficients + dimension + (2 * periods * coefficients * dimension);
        var b = new byte[32 + (4 * periods) + (4 * floats)];
        "TMK1FVECPDQF"u8.CopyTo(b);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(12), 15);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), periods);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(20), coefficients);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(24), dimension);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(28), 40);
        var o = 32;
        for (var i = 0; i < periods; i++, o += 4)
        {
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), 2731 + (i * 1660));
        }

        for (var i = 0; i < floats; i++, o += 4)
        {
            BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(o), MathF.Sin(i + 1) * 0.5f);
        }

        return b;
    }

    // A per-frame PDQF feature file: 32-byte header, then float32[dimension] per frame.
    private static byte[] Feat(int dimension, int frames)
    {
        var b = new byte[32 + (4 * dimension * frames)];
        "TMK1FEATPDQF"u8.CopyTo(b);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(12), dimension);
        for (var o = 32; o < b.Length; o += 4)
        {
            BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(o), MathF.Cos(o) * 0.25f);
        }

        return b;
    }

    // ffprobe -print_format json -show_streams -show_format, as VideoProbe reads it (the fields it looks at).
    private static byte[] VideoProbeJson(string codec, string container, string extra) => Encoding.UTF8.GetBytes(
        "{\"streams\":[{\"index\":0,\"codec_name\":\"" + codec + "\",\"codec_type\":\"video\",\"width\":64,\"height\":48," + extra +
        "\"r_frame_rate\":\"25/1\",\"avg_frame_rate\":\"25/1\",\"duration\":\"2.000000\",\"disposition\":{\"attached_pic\":0}}," +
        "{\"index\":1,\"codec_name\":\"opus\",\"codec_type\":\"audio\"}],\"format\":{\"format_name\":\"" + container + "\",\"duration\":\"2.000000\"}}");

    // An NCMEC entries page whose video has a large TMK+PDQF fingerprint: the fetcher downloads it from the href.
    private static string NcmecTmkPage() =>
        $"""
        <?xml version="1.0" encoding="UTF-8"?>
        <queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
          <videos count="1" maxTimestamp="2025-01-10T18:30:00Z">
            <video>
              <member id="9002">Demo Member</member><timestamp>2025-01-10T18:30:00Z</timestamp><id>v1</id><classification>A1</classification>
              <fingerprints><md5>{Md5}</md5><tmk-pdqf rel="self" href="/v2/entries/9002/v1/fingerprints/TMK_PDQF"/></fingerprints>
            </video>
          </videos>
        </queryResult>
        """;

    private static byte[] Grey(string format, string options)
    {
        var px = new byte[16 * 16];
        for (var i = 0; i < px.Length; i++)
        {
            px[i] = (byte)(i * 7);
        }

        using var image = Image.NewFromMemory(px, 16, 16, 1, Enums.BandFormat.Uchar);
        return image.WriteToBuffer("." + format + options);
    }

    private static byte[] Rgba()
    {
        var rgb = SyntheticImages.Smooth(8, 8, 14);
        var rgba = new byte[8 * 8 * 4];
        for (var i = 0; i < 64; i++)
        {
            rgb.AsSpan(i * 3, 3).CopyTo(rgba.AsSpan(i * 4));
            rgba[(i * 4) + 3] = (byte)(255 - i);
        }

        using var image = Image.NewFromMemory(rgba, 8, 8, 4, Enums.BandFormat.Uchar);
        return image.WriteToBuffer(".png");
    }

    // BITMAPINFOHEADER bitmaps, bottom-up, rows padded to 4 bytes.
    private static byte[] Bmp(int bits)
    {
        const int w = 5, h = 3;
        var palette = bits == 8 ? 256 * 4 : 0;
        var stride = ((w * bits) + 31) / 32 * 4;
        var pixels = new byte[stride * h];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * 13);
        }

        var pal = new byte[palette];
        for (var i = 0; i < palette; i++)
        {
            pal[i] = (byte)i;
        }

        return BmpFile(w, h, bits, 0, pal, pixels);
    }

    private static byte[] BmpRle8()
    {
        var pal = new byte[256 * 4];
        for (var i = 0; i < pal.Length; i++)
        {
            pal[i] = (byte)(i / 4);
        }

        // Runs, an absolute run, end of line, a delta, end of bitmap.
        byte[] rle = [3, 10, 2, 20, 0, 0, 0, 3, 1, 2, 3, 0, 2, 20, 0, 0, 0, 2, 1, 1, 4, 9, 0, 1];
        return BmpFile(5, 3, 8, 1, pal, rle);
    }

    private static byte[] BmpFile(int w, int h, int bits, int compression, byte[] palette, byte[] pixels)
    {
        var offset = 14 + 40 + palette.Length;
        var file = new byte[offset + pixels.Length];
        "BM"u8.CopyTo(file);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(2), file.Length);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(10), offset);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(22), h);
        BinaryPrimitives.WriteInt16LittleEndian(file.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(file.AsSpan(28), (short)bits);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(30), compression);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(34), pixels.Length);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(46), palette.Length / 4);
        palette.CopyTo(file, 54);
        pixels.CopyTo(file, offset);
        return file;
    }

    private static string XmpPacket() =>
        """
        <?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
        <x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
        <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
          xmp:CreatorTool="Demo Painter 1.0" Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">
          <Iptc4xmpExt:AISystemUsed>demo-model</Iptc4xmpExt:AISystemUsed>
          <Iptc4xmpExt:AIPromptInformation><rdf:Alt><rdf:li xml:lang="x-default">a red bicycle</rdf:li></rdf:Alt></Iptc4xmpExt:AIPromptInformation>
        </rdf:Description></rdf:RDF></x:xmpmeta>
        <?xpacket end="w"?>
        """;

    private static byte[] Tiff(bool bigEndian = false) => Fixtures.Tiff(
        bigEndian,
        [Fixtures.Ascii(0x0131, "Demo Painter 1.0"), Fixtures.Ascii(0x010E, "Steps: 20, Sampler: Euler"), Fixtures.Ascii(0x010F, "DemoCam")],
        [Fixtures.UnicodeComment("a red bicycle", bigEndian), Fixtures.Ascii(0x9003, "2024:01:01 00:00:00")]);

    // A signed manifest store (test PKI made on the spot) in a PNG; the store alone for the JUMBF/C2PA targets.
    private static byte[] StoreInPng() => new C2paBuilder().Sign(C2paBuilder.InPng);

    private static byte[] StoreBytes()
    {
        var png = StoreInPng();
        var at = png.AsSpan().IndexOf("caBX"u8);
        var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at - 4));
        return png.AsSpan(at + 4, length).ToArray();
    }

    private static byte[] ClaimCbor()
    {
        var w = new System.Formats.Cbor.CborWriter(System.Formats.Cbor.CborConformanceMode.Lax);
        w.WriteStartMap(4);
        w.WriteTextString("claim_generator");
        w.WriteTextString("Demo/1.0");
        w.WriteTextString("signature");
        w.WriteTextString("self#jumbf=c2pa.signature");
        w.WriteTextString("assertions");
        w.WriteStartArray(1);
        w.WriteStartMap(2);
        w.WriteTextString("url");
        w.WriteTextString("self#jumbf=c2pa.assertions/c2pa.actions");
        w.WriteTextString("hash");
        w.WriteByteString(new byte[32]);
        w.WriteEndMap();
        w.WriteEndArray();
        w.WriteTextString("dc:format");
        w.WriteTextString("image/png");
        w.WriteEndMap();
        return w.Encode();
    }

    private static string NcmecPage() =>
        $"""
        <?xml version="1.0" encoding="UTF-8"?>
        <queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
          <images count="2" maxTimestamp="2025-01-10T18:00:00Z">
            <image>
              <member id="9002">Demo Member</member><id>e1</id><timestamp>2025-01-10T18:00:00Z</timestamp><classification>A1</classification>
              <fingerprints><md5>{Md5}</md5><sha1>{Sha1}</sha1><pdq>{Pdq}</pdq></fingerprints>
            </image>
            <deletedImage><member id="9002"/><id>e0</id><timestamp>2025-01-09T18:00:00Z</timestamp></deletedImage>
          </images>
          <videos count="1"><video><member id="9002">Demo Member</member><id>v1</id><fingerprints><md5>{Md5}</md5></fingerprints></video></videos>
        </queryResult>
        """;

    // A torch state dict {"weight": FloatTensor 2x2} as torch.save writes data.pkl (protocol 2, persistent ids).
    private static byte[] StateDictPickle(bool legacyId = false)
    {
        var p = new PickleWriter();
        p.Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark()
            .Str("weight").Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(4);
        if (legacyId)
        {
            p.None();
        }

        p.Tuple().PersId().Int(0).Int(2).Int(2).Tuple2().Int(2).Int(1).Tuple2().False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce().SetItems().Stop();
        return p.ToArray();
    }

    private static byte[] Proto4()
    {
        var p = new PickleWriter();
        p.Proto(4).Frame().Bytes(
            [
                0x7D, // EMPTY_DICT
                0x94, // MEMOIZE
                0x8C, 0x01, (byte)'k', 0x94, // SHORT_BINUNICODE 'k'
                0x8C, 0x0B, .. "collections"u8, 0x8C, 0x0B, .. "OrderedDict"u8, 0x93, // STACK_GLOBAL
                0x29, 0x52, // EMPTY_TUPLE REDUCE
                0x73, // SETITEM
                0x2E, // STOP
            ]);
        return p.ToArray();
    }

    private static byte[] TorchZip()
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            Add(zip, "archive/data.pkl", StateDictPickle());
            Add(zip, "archive/byteorder", "little"u8.ToArray());
            Add(zip, "archive/data/0", Floats(4));
            Add(zip, "archive/version", "3\n"u8.ToArray());
        }

        return ms.ToArray();

        static void Add(ZipArchive zip, string name, byte[] data)
        {
            // torch.save stores members uncompressed (tensors are mmapped).
            using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
            s.Write(data);
        }
    }

    private static byte[] LegacyTorch()
    {
        var magic = new PickleWriter().Proto(2).Bytes([0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]).Stop().ToArray();
        var protocol = new PickleWriter().Proto(2).Bytes([0x4D, 0xE9, 0x03]).Stop().ToArray();
        var sysInfo = new PickleWriter().Proto(2).Bytes([0x7D]).Str("little_endian").Bytes([0x88, 0x73]).Stop().ToArray();
        var keys = new PickleWriter().Proto(2).Bytes([0x5D]).Str("0").Bytes([0x61]).Stop().ToArray();
        var size = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(size, 4);
        return [.. magic, .. protocol, .. sysInfo, .. StateDictPickle(legacyId: true), .. keys, .. size, .. Floats(4)];
    }

    private static byte[] Safetensors()
    {
        var header = "{\"__metadata__\":{\"format\":\"pt\"},\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"b.bias\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]}}"u8.ToArray();
        var padded = (header.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + 20];
        BinaryPrimitives.WriteInt64LittleEndian(file, padded);
        header.CopyTo(file, 8);
        file.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        Floats(4).CopyTo(file, 8 + padded);
        return file;
    }

    // A ModelProto: ir_version, producer, a graph with one node and two initializers (raw_data F32, packed float_data
    // with packed dims), an opset import and a metadata entry.
    private static byte[] Onnx()
    {
        static void Varint(List<byte> b, ulong v)
        {
            for (; v >= 0x80; v >>= 7)
            {
                b.Add((byte)(v | 0x80));
            }

            b.Add((byte)v);
        }

        static List<byte> Field(int field, int wire, List<byte>? payload = null, ulong value = 0)
        {
            var b = new List<byte>();
            Varint(b, ((ulong)field << 3) | (uint)wire);
            if (wire == 0)
            {
                Varint(b, value);
            }
            else
            {
                Varint(b, (ulong)payload!.Count);
                b.AddRange(payload);
            }

            return b;
        }

        static List<byte> Str(int field, string s) => Field(field, 2, [.. Encoding.UTF8.GetBytes(s)]);

        List<byte> raw = [.. Field(1, 0, value: 2), .. Field(1, 0, value: 2), .. Field(2, 0, value: 1), .. Str(8, "model.diffusion_model.out.2.weight"), .. Field(9, 2, [.. Floats(4)])];
        List<byte> typed = [.. Field(1, 2, [4]), .. Field(2, 0, value: 1), .. Str(8, "model.diffusion_model.out.0.weight"), .. Field(4, 2, [.. Floats(4)])];
        List<byte> node = [.. Str(1, "x"), .. Str(2, "y"), .. Str(4, "Identity")];
        List<byte> graph = [.. Field(1, 2, node), .. Str(2, "main_graph"), .. Field(5, 2, raw), .. Field(5, 2, typed)];
        List<byte> opset = [.. Str(1, string.Empty), .. Field(2, 0, value: 17)];
        List<byte> meta = [.. Str(1, "source"), .. Str(2, "fuzz seed")];
        return [.. Field(1, 0, value: 8), .. Str(2, "pytorch"), .. Field(7, 2, graph), .. Field(8, 2, opset), .. Field(14, 2, meta)];
    }

    private static byte[] Gguf()
    {
        var b = new List<byte>();
        void U32(uint v) => b.AddRange(BitConverter.GetBytes(v));
        void U64(ulong v) => b.AddRange(BitConverter.GetBytes(v));
        void Str(string s)
        {
            U64((ulong)Encoding.UTF8.GetByteCount(s));
            b.AddRange(Encoding.UTF8.GetBytes(s));
        }

        b.AddRange("GGUF"u8.ToArray());
        U32(3);
        U64(2); // tensors
        U64(3); // key-values
        Str("general.architecture");
        U32(8); // string
        Str("llama");
        Str("general.alignment");
        U32(4); // uint32
        U32(32);
        Str("tokenizer.ggml.tokens");
        U32(9); // array
        U32(8); // of strings
        U64(2);
        Str("a");
        Str("b");
        Str("blk.0.attn_q.weight");
        U32(2);
        U64(2);
        U64(2);
        U32(0); // F32
        U64(0);
        Str("output_norm.weight");
        U32(1);
        U64(4);
        U32(1); // F16
        U64(32);
        while (b.Count % 32 != 0)
        {
            b.Add(0);
        }

        b.AddRange(Floats(4));
        b.AddRange(new byte[16]);
        b.AddRange(new byte[8]);
        return [.. b];
    }

    private static byte[] Floats(int n)
    {
        var data = new byte[n * 4];
        for (var i = 0; i < n; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), 0.25f * (i + 1));
        }

        return data;
    }

    /// <summary>Just enough of a pickle emitter for the seeds.</summary>
    private sealed class PickleWriter
    {
        private readonly List<byte> _b = [];

        public PickleWriter Proto(byte v) => Bytes([0x80, v]);

        public PickleWriter Frame() => this; // FRAME is optional; CPython accepts streams without it.

        public PickleWriter Global(string module, string name) => Bytes([(byte)'c', .. Encoding.ASCII.GetBytes(module + "\n" + name + "\n")]);

        public PickleWriter Mark() => Bytes([(byte)'(']);

        public PickleWriter Tuple() => Bytes([(byte)'t']);

        public PickleWriter Tuple2() => Bytes([0x86]);

        public PickleWriter EmptyTuple() => Bytes([(byte)')']);

        public PickleWriter Reduce() => Bytes([(byte)'R']);

        public PickleWriter PersId() => Bytes([(byte)'Q']);

        public PickleWriter SetItems() => Bytes([(byte)'u']);

        public PickleWriter False() => Bytes([0x89]);

        public PickleWriter None() => Bytes([(byte)'N']);

        public PickleWriter Stop() => Bytes([(byte)'.']);

        public PickleWriter Int(byte v) => Bytes([(byte)'K', v]);

        public PickleWriter Str(string s)
        {
            var utf8 = Encoding.UTF8.GetBytes(s);
            var len = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(len, utf8.Length);
            return Bytes([(byte)'X', .. len, .. utf8]);
        }

        public PickleWriter Bytes(byte[] b)
        {
            _b.AddRange(b);
            return this;
        }

        public byte[] ToArray() => [.. _b];
    }
}
