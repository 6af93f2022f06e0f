using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Warden.Core.Imaging;
using Warden.Core.Provenance.C2pa;

namespace Warden.Core.Provenance;

/// <summary>
/// The one entry point: reads every AI-provenance signal of an image file (generator metadata, C2PA, IPTC XMP,
/// weak hints, and optionally invisible watermarks and alpha-LSB data) and scores them. Damaged blocks become
/// warnings; GIF, BMP and BigTIFF files get the pixel checks only; only a file that is not an image (or is over the
/// size limit) throws — <see cref="ReadLenient"/> never does.
/// </summary>
public static class ProvenanceReader
{
    private static readonly (string Needle, string Tool)[] SoftwareAliases =
    [
        ("NovelAI", "NovelAI"), ("Fooocus", "Fooocus"), ("Draw Things", "Draw Things"), ("Midjourney", "Midjourney"),
        ("ComfyUI", "ComfyUI"), ("InvokeAI", "InvokeAI"), ("Stable Diffusion", "Stable Diffusion"), ("AUTOMATIC1111", "AUTOMATIC1111"),
        ("DALL-E", "DALL·E"), ("DALL·E", "DALL·E"), ("Firefly", "Adobe Firefly"), ("Image Creator", "Microsoft Image Creator"),
        ("Leonardo", "Leonardo.Ai"), ("Imagen", "Google Imagen"), ("SwarmUI", "SwarmUI"), ("Flux", "FLUX"),
    ];

    // SD1/SD2 squares and portrait/landscape, SDXL ~1 MP buckets, DALL·E / gpt-image sizes, hires-fix ×1.5/×2 of 512×768.
    private static readonly HashSet<(int, int)> TypicalSizes =
    [
        (512, 512), (512, 768), (768, 512), (768, 768), (1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216),
        (1344, 768), (768, 1344), (1536, 640), (640, 1536), (1792, 1024), (1024, 1792), (1536, 1024), (1024, 1536),
        (768, 1152), (1152, 768), (1024, 1536), (2048, 2048), (1456, 816), (816, 1456),
    ];

    /// <summary>Reads <paramref name="file"/>.</summary>
    /// <param name="file">The whole file.</param>
    /// <param name="options">What to look at (null = defaults: metadata only, prompts hashed).</param>
    /// <param name="fileSha256">The file's SHA-256 if the caller already has it (hashing again is skipped).</param>
    /// <exception cref="ProvenanceException">Empty, over the size limit, or not an image.</exception>
    public static ProvenanceReport Read(ReadOnlyMemory<byte> file, ProvenanceOptions? options = null, string? fileSha256 = null)
    {
        options ??= ProvenanceOptions.Default;
        var limits = options.Limits;
        if (file.Length == 0)
        {
            throw new ProvenanceException(ProvenanceError.Truncated, "the file is empty");
        }

        if (file.Length > limits.MaxFileBytes)
        {
            throw new ProvenanceException(ProvenanceError.LimitExceeded, $"the file has {file.Length} bytes; the limit is {limits.MaxFileBytes}");
        }

        var scan = ContainerWalker.Walk(file, limits);
        var report = new ProvenanceReport
        {
            Format = scan.Format,
            Width = scan.Width,
            Height = scan.Height,
            Size = file.Length,
            Sha256 = fileSha256 ?? Convert.ToHexStringLower(SHA256.HashData(file.Span)),
        };
        report.Warnings.AddRange(scan.Warnings);

        var texts = new List<TextSource>();
        var camera = false;
        string? software = null;
        var xmps = new List<(XmpFields Fields, SignalLocation Location)>();
        MetadataBlock? store = null;
        foreach (var block in scan.Blocks)
        {
            switch (block.Kind)
            {
                case BlockKind.Text:
                    texts.Add(new TextSource(block.Location.Key ?? string.Empty, block.Text ?? string.Empty, block.Location));
                    break;
                case BlockKind.Exif:
                    try
                    {
                        camera |= ReadExif(block, texts, limits, ref software);
                    }
                    catch (ProvenanceException ex)
                    {
                        report.Warnings.Add($"EXIF at byte {block.Location.Offset}: {ex.Message}");
                    }

                    break;
                case BlockKind.Xmp:
                    try
                    {
                        xmps.Add((Xmp.Read(block.Data.Span, limits), block.Location with { Container = block.Location.Container + "/xmp" }));
                    }
                    catch (ProvenanceException ex)
                    {
                        report.Warnings.Add($"XMP at byte {block.Location.Offset}: {ex.Message}");
                    }

                    break;
                case BlockKind.Jumbf:
                    store ??= block;
                    break;
            }
        }

        software ??= texts.FirstOrDefault(t => t.Key == "Software")?.Text;
        Generators.Extract(texts, report, options);
        if (store is not null)
        {
            ReadC2pa(store, file, report, options);
        }

        foreach (var (fields, location) in xmps)
        {
            AddXmp(fields, location, report, options);
        }

        var metadataSignals = report.Signals.Any(s => s.AiIndication >= AiIndication.Moderate) || report.C2pa?.Present == true;
        if (options.Pixels == PixelChecks.Always || (options.Pixels == PixelChecks.WhenNoMetadata && !metadataSignals))
        {
            CheckPixels(file, report, options);
        }

        AddHints(report, scan, software ?? xmps.Select(x => x.Fields.CreatorTool).FirstOrDefault(c => c is not null), camera, texts);
        report.Verdict = Verdict(report);
        return report;
    }

    /// <summary>
    /// Reads <paramref name="file"/> as <see cref="Read"/> does, but never throws for content it cannot read: an
    /// empty, oversized or non-image file gives a report with no signals, verdict unknown and the reason among its
    /// warnings. For services whose other work (digest matching) must go on whatever the file is.
    /// </summary>
    /// <param name="file">The whole file.</param>
    /// <param name="options">What to look at (null = defaults).</param>
    /// <param name="fileSha256">The file's SHA-256 if the caller already has it.</param>
    /// <param name="failure">Why nothing was read, or null when the file was read (its damage, if any, is in the warnings).</param>
    public static ProvenanceReport ReadLenient(ReadOnlyMemory<byte> file, ProvenanceOptions? options, string? fileSha256, out string? failure)
    {
        try
        {
            failure = null;
            return Read(file, options, fileSha256);
        }
        catch (ProvenanceException ex)
        {
            failure = ex.Message;
            return Unread(file.Length, fileSha256 ?? Convert.ToHexStringLower(SHA256.HashData(file.Span)), ex.Message);
        }
    }

    /// <summary>The report of a file that was not read: no signals, verdict unknown, the reason among the warnings.</summary>
    public static ProvenanceReport Unread(long size, string sha256, string reason)
    {
        var report = new ProvenanceReport { Size = size, Sha256 = sha256 };
        report.Warnings.Add("provenance not read: " + reason);
        return report;
    }

    /// <summary>Maps EXIF tags to the keys the tools use in PNG text; returns whether camera tags are present.</summary>
    private static bool ReadExif(MetadataBlock block, List<TextSource> texts, ProvenanceLimits limits, ref string? software)
    {
        var entries = TiffReader.Read(block.Data.Span, limits);
        TiffEntry? Find(ushort tag) => entries.FirstOrDefault(e => e.Tag == tag && e.Tag != TiffReader.ExifIfdPointer);
        SignalLocation Loc(TiffEntry e) => block.Location with { Chunk = block.Location.Chunk + "/EXIF:0x" + e.Tag.ToString("X4", CultureInfo.InvariantCulture) };

        var camera = false;
        if (Find(TiffReader.Software) is { } sw)
        {
            software = TiffReader.Text(sw);
            texts.Add(new TextSource("Software", software, Loc(sw)));
        }

        var nai = string.Equals(software, "NovelAI", StringComparison.Ordinal);
        if (Find(TiffReader.Model) is { } model)
        {
            var text = TiffReader.Text(model);
            if (text.StartsWith("prompt:", StringComparison.Ordinal))
            {
                texts.Add(new TextSource("prompt", text[7..], Loc(model)));
            }
            else if (text.Length > 0)
            {
                camera = true;
            }
        }

        if (Find(TiffReader.Make) is { } make)
        {
            var text = TiffReader.Text(make);
            if (text.StartsWith("workflow:", StringComparison.Ordinal))
            {
                texts.Add(new TextSource("workflow", text[9..], Loc(make)));
            }
            else if (text.Length > 0)
            {
                camera = true;
            }
        }

        camera |= entries.Any(e => e.Tag is TiffReader.ExposureTime or TiffReader.FNumber or TiffReader.DateTimeOriginal);
        if (Find(TiffReader.ImageDescription) is { } description)
        {
            texts.Add(new TextSource("Description", TiffReader.Text(description), Loc(description)));
        }

        if (Find(TiffReader.DocumentName) is { } title)
        {
            texts.Add(new TextSource("Title", TiffReader.Text(title), Loc(title)));
        }

        if (Find(TiffReader.UserComment) is { } comment)
        {
            var text = TiffReader.DecodeUserComment(comment.Value);
            if (text.Length > 0)
            {
                texts.Add(new TextSource(nai ? "Comment" : "parameters", text, Loc(comment)));
            }
        }

        if (entries.FirstOrDefault(e => e.Ifd == 0 && e.Tag == TiffReader.MakerNote) is { } note && TiffReader.Text(note) is var scheme && scheme is "fooocus" or "a1111")
        {
            texts.Add(new TextSource("fooocus_scheme", scheme, Loc(note)));
        }

        return camera;
    }

    private static void ReadC2pa(MetadataBlock store, ReadOnlyMemory<byte> file, ProvenanceReport report, ProvenanceOptions options)
    {
        C2paSummary summary;
        try
        {
            summary = C2paReader.Read(store.Data, file, options.VerifyC2pa, options.TrustAnchors, options.Limits);
        }
        catch (ProvenanceException ex)
        {
            summary = new C2paSummary { Present = true, Validation = C2paSummary.Failed };
            summary.StatusCodes.Add($"manifest.unreadable: {ex.Message}");
        }

        report.C2pa = summary;
        var signal = report.AddSignal(new ProvenanceSignal { Type = "c2pa", Location = store.Location });
        signal.Add("validation", summary.Validation);
        signal.Add("active_manifest", summary.ActiveManifest);
        var active = summary.Active;
        signal.Add("claim_generator", active?.ClaimGenerator ?? active?.ClaimGeneratorInfo.FirstOrDefault());
        signal.Add("signer", active?.Signer?.Organization ?? active?.Signer?.CommonName);

        // Every manifest counts: an edited file's active manifest may say "composite" while the generated
        // ingredient's own manifest says "trained".
        var actions = summary.Manifests.SelectMany(m => m.Actions.Select(a => (m, a))).ToList();
        var standard = actions.Where(x => x.a.DigitalSourceType is { } d && DigitalSourceTypes.IsGenerativeAi(d)).ToList();
        var vendor = actions.Where(x => x.a.VendorDigitalSourceType is { } d && DigitalSourceTypes.IsGenerativeAi(d)).ToList();
        foreach (var (m, a) in standard.Concat(vendor).Take(8))
        {
            signal.Add("digital_source_type", $"{DigitalSourceTypes.Code(a.DigitalSourceType ?? a.VendorDigitalSourceType!)} ({a.Action}{(a.SoftwareAgent is null ? string.Empty : " by " + a.SoftwareAgent)}{(m.Label == summary.ActiveManifest ? string.Empty : ", ingredient manifest")})");
        }

        foreach (var model in actions.Select(x => x.a.ModelId).Where(x => x is not null).Distinct().Take(8))
        {
            signal.Add("model_id", model);
        }

        if (standard.Count == 0 && vendor.Count == 0)
        {
            signal.AiIndication = AiIndication.None;
            signal.Notes.Add("C2PA manifest present; it does not declare generative-AI content");
            return;
        }

        if (standard.Count == 0)
        {
            signal.Notes.Add("the AI source type is only in a vendor action parameter (e.g. com.adobe.digitalSourceType), not the standard digitalSourceType field");
        }

        var (indication, confidence) = summary.Validation switch
        {
            C2paSummary.Trusted => (AiIndication.Verified, 0.99),
            C2paSummary.Failed => (AiIndication.Strong, 0.6),
            _ => (AiIndication.Strong, 0.85),
        };
        signal.AiIndication = indication;
        signal.Confidence = confidence;
        signal.Verified = summary.Validation == C2paSummary.Trusted;
        if (summary.Validation is C2paSummary.SignatureOk)
        {
            signal.Notes.Add("valid signature, untrusted signer (no trust anchor configured for it)");
        }
    }

    private static void AddXmp(XmpFields fields, SignalLocation location, ProvenanceReport report, ProvenanceOptions options)
    {
        if (fields.Provenance is { } url && report.C2pa?.Present != true
            && (url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            report.C2pa ??= new C2paSummary();
            report.C2pa.RemoteManifestUrl = url;
            report.C2pa.StatusCodes.Add("manifest.remote: dcterms:provenance names a manifest stored elsewhere (not fetched)");
        }

        if (fields.UserComment is { } comment && comment.StartsWith('{') && (fields.CreatorTool?.Contains("Draw Things", StringComparison.OrdinalIgnoreCase) ?? true))
        {
            DrawThingsMetadata.Read(comment, location with { Key = "exif:UserComment" }, report, options);
        }

        if (fields.DigitalSourceTypes.Count == 0 && fields.AiSystemUsed is null && fields.AiPromptInformation is null)
        {
            return;
        }

        var ai = fields.DigitalSourceTypes.Any(DigitalSourceTypes.IsGenerativeAi) || fields.AiSystemUsed is not null;
        var s = report.AddSignal(new ProvenanceSignal
        {
            Type = "xmp.iptc",
            Location = location,
            AiIndication = ai ? AiIndication.Moderate : AiIndication.None,
            Confidence = ai ? 0.75 : 0,
        });
        foreach (var d in fields.DigitalSourceTypes)
        {
            s.Add("digital_source_type", DigitalSourceTypes.Code(d));
        }

        s.Add("ai_system_used", fields.AiSystemUsed);
        s.Add("ai_system_version_used", fields.AiSystemVersionUsed);
        s.Add("ai_prompt_writer_name", fields.AiPromptWriterName);
        s.Add("creator_tool", fields.CreatorTool);
        s.Add("data_mining", fields.DataMining);
        Generators.AddPrompt(s, "ai_prompt_information", fields.AiPromptInformation, options);
        if (!ai)
        {
            s.Notes.Add("the declared source type is not generative AI");
        }
    }

    private static void CheckPixels(ReadOnlyMemory<byte> file, ProvenanceReport report, ProvenanceOptions options)
    {
        DecodedImage image;
        try
        {
            image = ImageDecoder.Decode(file.ToArray());
        }
        catch (ImageDecodeException ex)
        {
            report.Warnings.Add($"pixels not checked: {ex.Message}");
            return;
        }

        using (image)
        {
            report.PixelsChecked = true;
            var px = image.Pixels;
            try
            {
                if (report.Format == "png" && StealthLsb.Read(px, image.PixelWidth, image.PixelHeight, image.BytesPerPixel, options.Limits) is var (magic, text))
                {
                    AddStealth(magic, text, report, options);
                }
            }
            catch (ProvenanceException ex)
            {
                report.Warnings.Add($"LSB data: {ex.Message}");
            }
            catch (JsonException ex)
            {
                report.Warnings.Add($"LSB data: not valid JSON ({ex.Message})");
            }

            foreach (var wm in ImWatermark.Detect(px, image.PixelWidth, image.PixelHeight, image.BytesPerPixel))
            {
                report.Watermarks.Add(wm);
                var s = report.AddSignal(new ProvenanceSignal
                {
                    Type = "wm.imwatermark_dwtdct",
                    Location = new SignalLocation("pixels", "U channel", null, -1, -1),
                    AiIndication = wm.Confidence >= 0.9 ? AiIndication.Strong : AiIndication.Moderate,
                    Confidence = wm.Confidence,
                });
                s.Add("payload", wm.Payload);
                s.Add("ber", wm.BitErrorRate.ToString("0.000", CultureInfo.InvariantCulture));
                s.Add("variant", wm.Variant);
                s.Notes.Add("an invisible watermark of Stable Diffusion's reference scripts; anyone can embed it in any image");
            }
        }
    }

    private static void AddStealth(string magic, string text, ProvenanceReport report, ProvenanceOptions options)
    {
        var location = new SignalLocation("pixels", magic.Contains("rgb", StringComparison.Ordinal) ? "RGB LSB" : "alpha LSB", magic, -1, -1);
        var before = report.Signals.Count;
        if (text.TrimStart().StartsWith('{'))
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            var texts = doc.RootElement.EnumerateObject()
                .Select(p => new TextSource(p.Name, p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText(), location))
                .ToList();
            NovelAiParser.Read(texts, report, options, "gen.novelai.stealth");
        }
        else
        {
            Generators.Extract([new TextSource("parameters", text, location)], report, options);
        }

        foreach (var s in report.Signals.Skip(before))
        {
            s.Notes.Add($"hidden in pixel least-significant bits ({magic}); survives metadata stripping, not lossy re-encoding");
        }
    }

    private static void AddHints(ProvenanceReport report, ContainerScan scan, string? software, bool camera, List<TextSource> texts)
    {
        if (software is not null && SoftwareAliases.FirstOrDefault(a => software.Contains(a.Needle, StringComparison.OrdinalIgnoreCase)) is { Tool: not null } alias)
        {
            var s = report.AddSignal(new ProvenanceSignal { Type = "hint.software", AiIndication = AiIndication.Weak, Confidence = 0.4 });
            s.Add("software", software.Length > 200 ? software[..200] : software);
            s.Add("tool", alias.Tool);
            s.Notes.Add("weak: a Software/CreatorTool string is trivially set by any program");
        }

        if (TypicalSizes.Contains((scan.Width, scan.Height)))
        {
            var s = report.AddSignal(new ProvenanceSignal { Type = "hint.dimensions", AiIndication = AiIndication.Weak, Confidence = 0.1 });
            s.Add("size", $"{scan.Width}x{scan.Height}");
            s.Notes.Add("weak: a size image generators use by default; cameras and editors produce it too");
        }

        if (scan.Format == "jpeg" && !camera && texts.Count == 0 && report.C2pa is null)
        {
            var s = report.AddSignal(new ProvenanceSignal { Type = "hint.no_camera_exif", AiIndication = AiIndication.Weak, Confidence = 0.05 });
            s.Notes.Add("weak: no camera make, model or exposure tags; most platforms strip them from real photos");
        }
    }

    /// <summary>1 - prod(1 - c) over the strongest signal of each family; weak geometry hints capped at 0.3.</summary>
    internal static ProvenanceVerdict Verdict(ProvenanceReport report)
    {
        static string Family(string type) => type.StartsWith("gen.", StringComparison.Ordinal) ? "gen"
            : type is "hint.dimensions" or "hint.no_camera_exif" or "hint.filename" ? "geometry" : type;

        var families = report.Signals
            .Where(s => s.Confidence > 0)
            .GroupBy(s => Family(s.Type))
            .Select(g => g.Key == "geometry" ? Math.Min(0.3, 1 - g.Aggregate(1.0, (p, s) => p * (1 - s.Confidence))) : g.Max(s => s.Confidence));
        var score = 1 - families.Aggregate(1.0, (p, c) => p * (1 - c));
        var top = report.Signals.Where(s => s.Confidence > 0).OrderByDescending(s => s.Confidence).Take(3).Select(s => s.Id).ToList();
        var strong = report.Signals.Any(s => s.AiIndication >= AiIndication.Strong && s.Confidence >= 0.85);
        var verdict = strong ? "yes" : score >= 0.5 ? "likely" : "unknown";
        return new ProvenanceVerdict(verdict, Math.Round(score, 4), top);
    }
}
