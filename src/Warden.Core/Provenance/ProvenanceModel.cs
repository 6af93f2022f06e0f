namespace Warden.Core.Provenance;

/// <summary>Why a provenance parser refused its input.</summary>
public enum ProvenanceError
{
    /// <summary>The data ends before a structure it announces.</summary>
    Truncated,

    /// <summary>The data breaks the format's rules.</summary>
    Malformed,

    /// <summary>A size, count, depth or ratio limit was exceeded.</summary>
    LimitExceeded,

    /// <summary>The file is not an image container provenance reads (JPEG, PNG, WebP).</summary>
    UnsupportedFormat,
}

/// <summary>A provenance parser refused hostile or damaged input; the reason says where and why.</summary>
public sealed class ProvenanceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProvenanceException(ProvenanceError kind, string message)
        : base(message) => Kind = kind;

    /// <summary>Creates the exception.</summary>
    public ProvenanceException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public ProvenanceException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ProvenanceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The kind of refusal.</summary>
    public ProvenanceError Kind { get; } = ProvenanceError.Malformed;
}

/// <summary>Whether and how pixels are decoded for watermark and alpha-LSB checks (the only checks that need them).</summary>
public enum PixelChecks
{
    /// <summary>Headers and metadata only (the default: a fraction of hashing cost).</summary>
    None,

    /// <summary>Decode pixels only when the metadata gave no generator, C2PA or XMP signal.</summary>
    WhenNoMetadata,

    /// <summary>Always decode pixels.</summary>
    Always,
}

/// <summary>Limits that keep hostile files from exhausting memory or time.</summary>
/// <param name="MaxFileBytes">Largest file read.</param>
/// <param name="MaxBlockBytes">Largest single metadata block (chunk, segment, decompressed text).</param>
/// <param name="MaxTotalMetadataBytes">Largest total of all metadata blocks kept for one file.</param>
/// <param name="MaxBlocks">Most metadata blocks kept for one file.</param>
/// <param name="MaxDepth">Deepest nesting of JUMBF boxes, CBOR, JSON or XML.</param>
/// <param name="MaxIfdEntries">Most entries in one TIFF IFD.</param>
public sealed record ProvenanceLimits(
    long MaxFileBytes = 256L * 1024 * 1024,
    int MaxBlockBytes = 64 * 1024 * 1024,
    long MaxTotalMetadataBytes = 128L * 1024 * 1024,
    int MaxBlocks = 4096,
    int MaxDepth = 16,
    int MaxIfdEntries = 1000)
{
    /// <summary>The defaults.</summary>
    public static ProvenanceLimits Default { get; } = new();

    /// <summary>Largest decompressed text (zTXt/iTXt, gzip in alpha LSBs): generator JSON is kilobytes, 16 MiB is generous.</summary>
    public int MaxInflatedBytes { get; init; } = 16 * 1024 * 1024;
}

/// <summary>What <see cref="ProvenanceReader.Read"/> looks at.</summary>
public sealed record ProvenanceOptions
{
    /// <summary>Defaults: metadata only, prompts hashed, no trust anchors.</summary>
    public static ProvenanceOptions Default { get; } = new();

    /// <summary>Put prompt text into the report (otherwise only its SHA-256).</summary>
    public bool IncludePrompts { get; init; }

    /// <summary>Pixel-based checks (imwatermark, alpha LSB).</summary>
    public PixelChecks Pixels { get; init; } = PixelChecks.None;

    /// <summary>Verify C2PA manifests (hashes and signature). Parsing happens either way.</summary>
    public bool VerifyC2pa { get; init; } = true;

    /// <summary>PEM certificates trusted as C2PA signing roots; null = no trust list (signatures can be valid but not trusted).</summary>
    public IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2>? TrustAnchors { get; init; }

    /// <summary>Limits.</summary>
    public ProvenanceLimits Limits { get; init; } = ProvenanceLimits.Default;
}

/// <summary>How strongly a signal says "AI-generated". <see cref="None"/>: present, but says nothing about AI.</summary>
public enum AiIndication
{
    /// <summary>Present but not an AI claim (e.g. a C2PA manifest of a camera capture).</summary>
    None,

    /// <summary>A hint that is common in ordinary files too.</summary>
    Weak,

    /// <summary>A declaration that is trivially added or removed.</summary>
    Moderate,

    /// <summary>Tool metadata or a decoded watermark.</summary>
    Strong,

    /// <summary>A cryptographically verified claim.</summary>
    Verified,
}

/// <summary>Where in the file a signal was found.</summary>
/// <param name="Container">png, jpeg, webp, exif, xmp, alpha.</param>
/// <param name="Chunk">The chunk, segment or tag (tEXt, APP1, EXIF:0x9286...).</param>
/// <param name="Key">The text key, when the chunk has one.</param>
/// <param name="Offset">Byte offset of the block in the file (-1 when not a byte range, e.g. pixels).</param>
/// <param name="Length">Length of the block in the file.</param>
public sealed record SignalLocation(string Container, string Chunk, string? Key, long Offset, long Length);

/// <summary>One piece of provenance evidence.</summary>
public sealed class ProvenanceSignal
{
    /// <summary>s1, s2, ... in order of discovery.</summary>
    public string Id { get; internal set; } = string.Empty;

    /// <summary>gen.a1111, gen.comfyui, c2pa, xmp.iptc, wm.imwatermark_dwtdct, hint.software, ...</summary>
    public required string Type { get; init; }

    /// <summary>Where it was found.</summary>
    public SignalLocation? Location { get; init; }

    /// <summary>Parsed fields (prompts only as SHA-256 unless asked).</summary>
    public List<KeyValuePair<string, string>> Parsed { get; } = [];

    /// <summary>How strongly it says AI.</summary>
    public AiIndication AiIndication { get; set; }

    /// <summary>Confidence in the AI claim, 0-1.</summary>
    public double Confidence { get; set; }

    /// <summary>True only for cryptographically checked claims.</summary>
    public bool Verified { get; set; }

    /// <summary>Caveats.</summary>
    public List<string> Notes { get; } = [];

    internal void Add(string key, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            Parsed.Add(new(key, value));
        }
    }
}

/// <summary>A hash of a model file as the image states it.</summary>
/// <param name="Scheme">autov1, autov2, autov3, addnet8, sha256, blake3, nai-source-id.</param>
/// <param name="Value">Lower-case hex (or the id).</param>
public sealed record ModelHash(string Scheme, string Value);

/// <summary>A model the image says it was made with.</summary>
public sealed class ModelReference
{
    /// <summary>checkpoint, lora, vae, embedding, controlnet, upscaler, unet, text_encoder, refiner, module, other.</summary>
    public required string Role { get; init; }

    /// <summary>File name or alias as written.</summary>
    public string? Name { get; set; }

    /// <summary>Weight/strength, when given.</summary>
    public double? Weight { get; set; }

    /// <summary>Hashes as written, with their scheme.</summary>
    public List<ModelHash> Hashes { get; } = [];

    /// <summary>The signal that named it.</summary>
    public string SignalId { get; set; } = string.Empty;
}

/// <summary>The tool that wrote the generation metadata.</summary>
/// <param name="Tool">AUTOMATIC1111, Forge, SD.Next, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI, Midjourney...</param>
/// <param name="Version">Its version, when stated.</param>
/// <param name="SignalIds">The signals that name it.</param>
public sealed record GeneratorInfo(string Tool, string? Version, IReadOnlyList<string> SignalIds);

/// <summary>A decoded invisible watermark.</summary>
/// <param name="Scheme">imwatermark.dwtDct.</param>
/// <param name="Payload">SD1 (StableDiffusionV1), SD2 (SDV2), SDXL-48.</param>
/// <param name="BitErrorRate">Fraction of payload bits that differ from the expected payload (0.5 = chance).</param>
/// <param name="Variant">Decode convention that fitted best: delta128|delta0.5 / rgb|bgr.</param>
/// <param name="Confidence">Confidence that the mark is present.</param>
public sealed record WatermarkResult(string Scheme, string Payload, double BitErrorRate, string Variant, double Confidence);

/// <summary>A model reference found in a bank.</summary>
/// <param name="ModelIndex">Index into <see cref="ProvenanceReport.ModelRefs"/>.</param>
/// <param name="Hash">The hash that matched.</param>
/// <param name="SignalType">The bank signal type it was looked up under.</param>
/// <param name="Hit">The bank hit.</param>
public sealed record ModelMatch(int ModelIndex, ModelHash Hash, string SignalType, Banks.MatchHit Hit);

/// <summary>Overall reading: never "no" (absence proves nothing).</summary>
/// <param name="AiGenerated">yes, likely or unknown.</param>
/// <param name="Score">1 - prod(1 - c) over the strongest signal of each family.</param>
/// <param name="TopSignals">Signals that drive the score, strongest first.</param>
public sealed record ProvenanceVerdict(string AiGenerated, double Score, IReadOnlyList<string> TopSignals);

/// <summary>Everything provenance found in one file.</summary>
public sealed class ProvenanceReport
{
    /// <summary>The statement every report carries.</summary>
    public const string Caveat = "metadata is a claim by whoever wrote the file; it can be forged or stripped; absence proves nothing";

    /// <summary>Version of the extractor and of the JSON layout.</summary>
    public const string ExtractorVersion = "1.0.0";

    /// <summary>jpeg, png, webp.</summary>
    public string Format { get; internal set; } = "unknown";

    /// <summary>Width from the header (0 when unknown).</summary>
    public int Width { get; internal set; }

    /// <summary>Height from the header (0 when unknown).</summary>
    public int Height { get; internal set; }

    /// <summary>File size.</summary>
    public long Size { get; internal set; }

    /// <summary>SHA-256 of the file, lower-case hex.</summary>
    public string Sha256 { get; internal set; } = string.Empty;

    /// <summary>Evidence.</summary>
    public List<ProvenanceSignal> Signals { get; } = [];

    /// <summary>Models named by the metadata.</summary>
    public List<ModelReference> ModelRefs { get; } = [];

    /// <summary>The generating tool, when metadata names one.</summary>
    public GeneratorInfo? Generator { get; internal set; }

    /// <summary>C2PA manifest store summary, when present or referenced.</summary>
    public C2pa.C2paSummary? C2pa { get; internal set; }

    /// <summary>Decoded invisible watermarks.</summary>
    public List<WatermarkResult> Watermarks { get; } = [];

    /// <summary>Model references found in banks (filled by Banks.ModelLinker).</summary>
    public List<ModelMatch> ModelMatches { get; } = [];

    /// <summary>The overall reading.</summary>
    public ProvenanceVerdict Verdict { get; internal set; } = new("unknown", 0, []);

    /// <summary>Caveats and parse problems (damaged blocks are skipped, never fatal).</summary>
    public List<string> Warnings { get; } = [ProvenanceReport.Caveat];

    /// <summary>Whether pixels were decoded for watermark/LSB checks.</summary>
    public bool PixelsChecked { get; internal set; }

    internal ProvenanceSignal AddSignal(ProvenanceSignal signal)
    {
        signal.Id = "s" + (Signals.Count + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Signals.Add(signal);
        return signal;
    }

    internal void AddModel(ModelReference model, ProvenanceSignal from)
    {
        model.SignalId = from.Id;
        ModelRefs.Add(model);
    }
}
