using System.Text;
using Microsoft.AspNetCore.Http;
using Warden.Core.Banks.Formats;
using Warden.Core.Exchanges.Ncmec;
using Warden.Core.Hashing.Video;
using Warden.Core.Imaging;
using Warden.Core.Imaging.Jpeg;
using Warden.Core.ModelFiles;
using Warden.Core.Provenance;
using Warden.Core.Provenance.C2pa;
using Warden.Core.Signals;
using Warden.Review.Reporting;
using Warden.Server.Api;

namespace Warden.Fuzz;

/// <summary>
/// Every parser of untrusted bytes in Warden, each through the entry point production code calls. A target catches
/// only what its parser documents for malformed input; everything else is a crash.
/// </summary>
public static class Targets
{
    private const string CoreDll = "Warden.Core.dll";

    // Parsers of kilobytes answer in microseconds; 10 s only leaves room for a loaded CI machine (seen: 4.6 s
    // stalls on two shared cores), so anything over it is a hang, not noise.
    private static readonly TimeSpan Fast = TimeSpan.FromSeconds(10);

    // libvips decodes of fuzzed images are milliseconds, a 200 MP one a few seconds; 30 s is a hang on any machine.
    private static readonly TimeSpan Decode = TimeSpan.FromSeconds(30);

    /// <summary>All targets, in the order <c>scripts/fuzz --list</c> prints them.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("sniff", "ImageFormatSniffer.Sniff, ModelReader.Sniff, BankFileReader.Detect", "none (pure functions)", RunSniff, Fast, [CoreDll]),
        Image("image-jpeg", ImageFormat.Jpeg),
        Image("image-png", ImageFormat.Png),
        Image("image-webp", ImageFormat.WebP),
        Image("image-gif", ImageFormat.Gif),
        Image("image-tiff", ImageFormat.Tiff),
        Image("image-bmp", ImageFormat.Bmp),
        new("jpeg-dc", "JpegDcDecoder.TryReadHeader + TryDecode (1/8-scale DC-only decoder, and the 1/4 reduced-IDCT decode); every pooled array returned", nameof(ImageDecodeException), RunJpegDc, Fast, [CoreDll]),
        new("provenance", "ProvenanceReader.Read (containers, text chunks, EXIF, XMP, C2PA with verification)", nameof(ProvenanceException), RunProvenance, Decode, [CoreDll]),
        new("provenance-pixels", "ProvenanceReader.Read with pixel checks (watermark, alpha LSB)", nameof(ProvenanceException), RunProvenancePixels, Decode, [CoreDll]),
        new("xmp", "Xmp.Read", nameof(ProvenanceException), RunXmp, Fast, [CoreDll]),
        new("exif", "TiffReader.Read (EXIF/TIFF IFDs)", nameof(ProvenanceException), RunExif, Fast, [CoreDll]),
        new("jumbf", "Jumbf.Parse", nameof(ProvenanceException), RunJumbf, Fast, [CoreDll]),
        new("cbor", "Cbor.Decode", nameof(ProvenanceException), RunCbor, Fast, [CoreDll]),
        new("c2pa", "C2paReader.Read (JUMBF store, claims, COSE signature, hashes)", nameof(ProvenanceException), RunC2pa, Fast, [CoreDll]),
        new("pickle", "PickleMachine.Run (all streams)", "none (findings are verdicts)", RunPickle, Fast, [CoreDll]),
        Model("model-pickle"),
        Model("model-torch-zip"),
        Model("model-torch-legacy"),
        Model("model-safetensors"),
        Model("model-gguf"),
        Model("model-onnx"),
        Bank("bank-csv", BankFileFormat.Csv, null),
        Bank("bank-jsonl", BankFileFormat.JsonLines, null),
        Bank("bank-plain", BankFileFormat.Plain, ImportOptions.AutoSignalType),
        Bank("bank-ncmec-xml", BankFileFormat.NcmecXml, null),
        new("cybertip-response", "CyberTipResponse.TryParse (CyberTipline answers)", "none (null when not an answer)", RunCyberTip, Fast, ["Warden.Review.dll"]),
        new("multipart", "UploadReader.ReadAsync (first line: Content-Type; rest: body)", "ApiException with a 4xx status", RunMultipart, Fast, ["Warden.Server.dll"]),
        new("tmk", "NcmecFetcher.ReadTmk + TmkFeatures.FromBytes (.tmk bodies), Level1/Level2 of what parses, TmkHasher.TryParseSignal, ReadFeatFile", nameof(InvalidDataException) + " (FromBytes, ReadFeatFile); null/false (ReadTmk, TryParseSignal)", RunTmk, Fast, [CoreDll]),
        new("signal-text", "ISignalType.TryNormalize + CreateSignal of every registered signal type (bank files, API, exchanges)", "false with a reason", RunSignalText, Fast, [CoreDll]),
        new("video-probe", "VideoProbe.Parse (ffprobe's JSON of an uploaded video: stream layout, tags)", nameof(VideoDecodeException), RunVideoProbe, Fast, [CoreDll]),
        .. ExchangeTargets.All(),
    ];

    /// <summary>The target named <paramref name="name"/>, or null.</summary>
    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);

    private static void RunSniff(byte[] data)
    {
        var head = data.AsSpan(0, Math.Min(data.Length, 512));
        _ = ImageFormatSniffer.Sniff(data);
        _ = ModelReader.Sniff(head, data.Length);
        _ = BankFileReader.Detect(null, head);
        _ = BankFileReader.Detect("list.txt", head);
    }

    private static FuzzTarget Image(string name, ImageFormat format) => new(
        name,
        $"ImageDecoder.Decode ({format}; full size, and at 1/8 and 1/4 where the format scales on load)",
        nameof(ImageDecodeException),
        data => DecodeImage(data, format),
        Decode,
        [CoreDll]);

    private static void DecodeImage(byte[] data, ImageFormat format)
    {
        // Inputs mutated out of the format still run: they take the other decoders' refusal paths.
        _ = format;
        try
        {
            using (ImageDecoder.Decode(data))
            {
            }

            if (ImageFormatSniffer.Sniff(data) == ImageFormat.Jpeg)
            {
                // The hashing path: DCT-scaled libvips decode, or Warden's DC decoder for progressive files.
                using (ImageDecoder.Decode(data, null, static (_, _) => 8))
                {
                }

                // The server's /v1/match path: Warden's 1/4 reduced-IDCT decode for baseline files, libvips for the rest.
                using (ImageDecoder.Decode(data, null, static (_, _) => 4))
                {
                }
            }
        }
        catch (ImageDecodeException)
        {
        }
    }

    private static void RunJpegDc(byte[] data)
    {
        var outstanding = JpegScratch.Outstanding;
        if (JpegDcDecoder.TryReadHeader(data, out _))
        {
            try
            {
                _ = JpegDcDecoder.TryDecode(data, ImageLimits.Default, out _);
            }
            catch (ImageDecodeException)
            {
            }

            try
            {
                _ = JpegDcDecoder.TryDecode(data, ImageLimits.Default, 4, out _);
            }
            catch (ImageDecodeException)
            {
            }
        }

        // Whatever the outcome, the decoder's pooled planes and tables must all have gone back.
        if (JpegScratch.Outstanding != outstanding)
        {
            throw new InvalidOperationException($"The JPEG decoder kept {JpegScratch.Outstanding - outstanding} pooled arrays.");
        }
    }

    private static void RunProvenance(byte[] data) => ReadProvenance(data, ProvenanceOptions.Default);

    private static void RunProvenancePixels(byte[] data) => ReadProvenance(data, ProvenanceOptions.Default with { Pixels = PixelChecks.Always });

    private static void ReadProvenance(byte[] data, ProvenanceOptions options)
    {
        try
        {
            var report = ProvenanceReader.Read(data, options);
            // And the JSON every caller writes of it (text fields carry attacker-chosen strings).
            using var json = new System.Text.Json.Utf8JsonWriter(Stream.Null);
            json.WriteStartObject();
            ProvenanceJson.WriteProperties(json, report, null);
            json.WriteEndObject();
        }
        catch (ProvenanceException)
        {
        }
    }

    private static void RunXmp(byte[] data)
    {
        try
        {
            _ = Warden.Core.Provenance.Xmp.Read(data, ProvenanceLimits.Default);
        }
        catch (ProvenanceException)
        {
        }
    }

    private static void RunExif(byte[] data)
    {
        try
        {
            _ = TiffReader.Read(data, ProvenanceLimits.Default);
        }
        catch (ProvenanceException)
        {
        }
    }

    private static void RunJumbf(byte[] data)
    {
        try
        {
            _ = Warden.Core.Provenance.C2pa.Jumbf.Parse(data, ProvenanceLimits.Default.MaxDepth);
        }
        catch (ProvenanceException)
        {
        }
    }

    private static void RunCbor(byte[] data)
    {
        try
        {
            _ = Warden.Core.Provenance.C2pa.Cbor.Decode(data);
        }
        catch (ProvenanceException)
        {
        }
    }

    private static void RunC2pa(byte[] data)
    {
        try
        {
            _ = C2paReader.Read(data, data, verify: true, anchors: null, ProvenanceLimits.Default);
        }
        catch (ProvenanceException)
        {
        }
    }

    private static void RunPickle(byte[] data)
    {
        var result = new PickleMachine().Run(data, "data.pkl");
        if (result.Root is not null)
        {
            // What the torch reader does next with the object the pickle built.
            TorchReader.Walk(result.Root, 64, static (_, _) => { });
        }
    }

    private static FuzzTarget Model(string name) => new(
        name,
        "ModelReader.ReadFile + Fingerprinter.Compute + ModelSignals + ModelArchitecture.Classify (the model scan)",
        nameof(ModelFormatException),
        ScanModel,
        Decode,
        [CoreDll]);

    private static void ScanModel(byte[] data)
    {
        // The readers take a file handle (models are scanned where they lie); the input is written to tmpfs.
        var path = ScratchFile.Write(data);
        try
        {
            var doc = ModelReader.ReadFile(path);
            var fingerprint = Fingerprinter.Compute(doc);
            _ = ModelSignals.Identity(fingerprint);
            _ = ModelSignals.Lineage(doc);
            _ = ModelArchitecture.Classify(doc);
        }
        catch (ModelFormatException)
        {
        }
    }

    private static FuzzTarget Bank(string name, BankFileFormat format, string? signalType) => new(
        name,
        $"BankFileReader.Read ({format}, skip-bad-lines and abort modes)",
        nameof(BankFormatException),
        data => ReadBank(data, format, signalType),
        Fast,
        [CoreDll]);

    private static void ReadBank(byte[] data, BankFileFormat format, string? signalType)
    {
        foreach (var skip in (bool[])[true, false])
        {
            try
            {
                using var stream = new MemoryStream(data, writable: false);
                var options = new ImportOptions(format, signalType, SkipBadLines: skip, SourceName: "fuzz");
                foreach (var record in BankFileReader.Read(stream, options, new ImportReport()))
                {
                    _ = record;
                }
            }
            catch (BankFormatException)
            {
            }
        }
    }

    private static void RunTmk(byte[] data)
    {
        // The exchange's reader of large-fingerprint bodies: refuses with a reason, never throws.
        _ = NcmecFetcher.ReadTmk(data, out _);
        try
        {
            var features = TmkFeatures.FromBytes(data);
            // What matching does next with any file that parses (any parameters, NaN and infinite floats included).
            if (TmkFeatures.Compatible(features, features))
            {
                _ = TmkFeatures.Level1(features, features);
                _ = TmkFeatures.Level2(features, features);
            }

            _ = TmkFeatures.FromBytes(features.ToBytes());
        }
        catch (InvalidDataException)
        {
        }

        // The bank/API text form of the same bytes, and the per-frame feature files.
        _ = TmkHasher.TryParseSignal("tmk1:" + Convert.ToBase64String(data), out _, out _);
        _ = TmkHasher.TryParseSignal(Encoding.Latin1.GetString(data), out _, out _);
        try
        {
            _ = TmkHasher.ReadFeatFile(data);
        }
        catch (InvalidDataException)
        {
        }
    }

    private static void RunSignalText(byte[] data)
    {
        var text = Encoding.UTF8.GetString(data);
        foreach (var type in SignalTypeRegistry.Default.All)
        {
            if (type.TryNormalize(text, out var normalized, out var reason))
            {
                // A normalised value must be accepted again unchanged, and as a query.
                if (!type.TryNormalize(normalized, out var again, out _) || again != normalized)
                {
                    throw new InvalidOperationException($"{type.Name}: normalising '{normalized}' again gave '{again}'.");
                }

                _ = type.CreateSignal(normalized) ?? throw new InvalidOperationException($"{type.Name}: '{normalized}' normalised but makes no signal.");
            }
            else if (string.IsNullOrEmpty(reason))
            {
                throw new InvalidOperationException($"{type.Name} refused a value without saying why.");
            }
        }
    }

    private static void RunVideoProbe(byte[] data)
    {
        try
        {
            _ = VideoProbe.Parse(data, VideoLimits.Default);
        }
        catch (VideoDecodeException)
        {
        }
    }

    private static void RunCyberTip(byte[] data) => _ = CyberTipResponse.TryParse(data);

    private static void RunMultipart(byte[] data)
    {
        var newline = Array.IndexOf(data, (byte)'\n');
        var split = newline < 0 ? data.Length : newline;
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.ContentType = Encoding.Latin1.GetString(data, 0, split).TrimEnd('\r');
        context.Request.Body = new MemoryStream(data, Math.Min(split + 1, data.Length), data.Length - Math.Min(split + 1, data.Length), writable: false);
        try
        {
            _ = UploadReader.ReadAsync(context.Request, 1 << 20, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (ApiException ex) when (ex.Status is >= 400 and < 500)
        {
        }
    }
}
