namespace Warden.Core.ModelFiles;

/// <summary>Container format of a model file or folder, found by content, never by extension.</summary>
public enum ModelFormat
{
    /// <summary>Not a model format Warden reads.</summary>
    Unknown = 0,

    /// <summary>safetensors: u64 header length, JSON header, one byte buffer.</summary>
    Safetensors,

    /// <summary>PyTorch zip checkpoint (.ckpt/.pt/.pth/.bin since torch 1.6).</summary>
    TorchZip,

    /// <summary>Legacy (pre-1.6) torch: five pickles followed by raw storages.</summary>
    TorchLegacy,

    /// <summary>A bare pickle stream.</summary>
    Pickle,

    /// <summary>GGUF (llama.cpp / ComfyUI-GGUF).</summary>
    Gguf,

    /// <summary>A zip archive that is not a torch checkpoint.</summary>
    Zip,

    /// <summary>A diffusers pipeline or component folder.</summary>
    DiffusersFolder,

    /// <summary>A PEFT adapter folder (adapter_config.json).</summary>
    PeftFolder,

    /// <summary>A sharded safetensors/torch set described by an index.json.</summary>
    ShardedFolder,

    /// <summary>An archive format Warden flags but does not open (7z, tar).</summary>
    OtherArchive,

    /// <summary>NumPy .npy.</summary>
    Numpy,

    /// <summary>Pre-0.4 torch tar checkpoint (members sys_info, storages, tensors, pickle).</summary>
    TorchLegacyTar,

    /// <summary>ONNX ModelProto (protobuf; initializers inline or in external data files beside it).</summary>
    Onnx,
}

/// <summary>Element type of a tensor.</summary>
public enum TensorDType
{
    /// <summary>Unknown or unsupported; structure only.</summary>
    Unknown = 0,
    Bool, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8E4M3, F8E5M2, C64, C128,

    /// <summary>GGUF block-quantised types (structure only unless dequantised).</summary>
    Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, OtherQuant,

    /// <summary>GGUF k-quants (256-value super-blocks).</summary>
    Q4_K, Q5_K, Q6_K,

    /// <summary>GGUF 2- and 3-bit k-quants and the non-linear 4-bit types (IQ4_NL: 32-value blocks, IQ4_XS: 256).</summary>
    Q2_K, Q3_K, IQ4_NL, IQ4_XS,
}

/// <summary>Sizes and names of <see cref="TensorDType"/>.</summary>
public static class TensorDTypes
{
    /// <summary>Bytes per element (0 for block-quantised and unknown types).</summary>
    public static int Size(TensorDType t) => t switch
    {
        TensorDType.Bool or TensorDType.U8 or TensorDType.I8 or TensorDType.F8E4M3 or TensorDType.F8E5M2 => 1,
        TensorDType.I16 or TensorDType.U16 or TensorDType.F16 or TensorDType.BF16 => 2,
        TensorDType.I32 or TensorDType.U32 or TensorDType.F32 => 4,
        TensorDType.F64 or TensorDType.I64 or TensorDType.U64 or TensorDType.C64 => 8,
        TensorDType.C128 => 16,
        _ => 0,
    };

    /// <summary>True when values can be widened to fp32 for hashing.</summary>
    public static bool IsHashable(TensorDType t) => Size(t) > 0 && t is not (TensorDType.C64 or TensorDType.C128);

    /// <summary>safetensors dtype token → type.</summary>
    public static TensorDType FromSafetensors(string token) => token switch
    {
        "BOOL" => TensorDType.Bool,
        "U8" => TensorDType.U8,
        "I8" => TensorDType.I8,
        "I16" => TensorDType.I16,
        "U16" => TensorDType.U16,
        "F16" => TensorDType.F16,
        "BF16" => TensorDType.BF16,
        "I32" => TensorDType.I32,
        "U32" => TensorDType.U32,
        "F32" => TensorDType.F32,
        "F64" => TensorDType.F64,
        "I64" => TensorDType.I64,
        "U64" => TensorDType.U64,
        "F8_E4M3" => TensorDType.F8E4M3,
        "F8_E5M2" => TensorDType.F8E5M2,
        "C64" => TensorDType.C64,
        _ => TensorDType.Unknown,
    };

    /// <summary>Type → safetensors token.</summary>
    public static string ToSafetensors(TensorDType t) => t switch
    {
        TensorDType.Bool => "BOOL",
        TensorDType.F8E4M3 => "F8_E4M3",
        TensorDType.F8E5M2 => "F8_E5M2",
        _ => t.ToString().ToUpperInvariant(),
    };

    /// <summary>torch storage class name (e.g. HalfStorage) → type.</summary>
    public static TensorDType FromTorchStorage(string name) => name switch
    {
        "FloatStorage" => TensorDType.F32,
        "HalfStorage" => TensorDType.F16,
        "BFloat16Storage" => TensorDType.BF16,
        "DoubleStorage" => TensorDType.F64,
        "LongStorage" => TensorDType.I64,
        "IntStorage" => TensorDType.I32,
        "ShortStorage" => TensorDType.I16,
        "CharStorage" => TensorDType.I8,
        "ByteStorage" => TensorDType.U8,
        "BoolStorage" => TensorDType.Bool,
        "ComplexFloatStorage" => TensorDType.C64,
        "ComplexDoubleStorage" => TensorDType.C128,
        "Float8_e4m3fnStorage" => TensorDType.F8E4M3,
        "Float8_e5m2Storage" => TensorDType.F8E5M2,
        _ => TensorDType.Unknown,
    };

    /// <summary>Type → torch storage class name.</summary>
    public static string ToTorchStorage(TensorDType t) => t switch
    {
        TensorDType.F32 => "FloatStorage",
        TensorDType.F16 => "HalfStorage",
        TensorDType.BF16 => "BFloat16Storage",
        TensorDType.F64 => "DoubleStorage",
        TensorDType.I64 => "LongStorage",
        TensorDType.I32 => "IntStorage",
        TensorDType.I16 => "ShortStorage",
        TensorDType.I8 => "CharStorage",
        TensorDType.U8 => "ByteStorage",
        TensorDType.Bool => "BoolStorage",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "no torch storage class"),
    };
}

/// <summary>
/// One tensor as a container describes it: where its bytes are, never the bytes themselves.
/// </summary>
/// <param name="Name">Name as stored (before canonicalisation).</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Shape in PyTorch (row-major, outermost first) order.</param>
/// <param name="Source">File that holds the bytes.</param>
/// <param name="Offset">Absolute byte offset of element 0 in <paramref name="Source"/>; -1 when the bytes cannot be read in place.</param>
/// <param name="Length">Bytes spanned from <paramref name="Offset"/> (the whole extent for strided views).</param>
/// <param name="Strides">Element strides for non-contiguous views; null for C-contiguous.</param>
public sealed record TensorInfo(string Name, TensorDType DType, long[] Shape, string Source, long Offset, long Length, long[]? Strides = null)
{
    /// <summary>Number of elements (saturates at long.MaxValue).</summary>
    public long Count
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
            {
                n = d <= 0 ? 0 : (n > long.MaxValue / d ? long.MaxValue : n * d);
            }

            return n;
        }
    }

    /// <summary>True when the values can be read in place and widened.</summary>
    public bool Readable => Offset >= 0 && (TensorDTypes.IsHashable(DType) || TensorValues.IsDequantised(DType));

    /// <summary>Shape as "[a,b,c]".</summary>
    public string ShapeText => "[" + string.Join(',', Shape) + "]";
}

/// <summary>How bad an anomaly is.</summary>
public enum AnomalySeverity
{
    /// <summary>Unusual but harmless.</summary>
    Info,

    /// <summary>Worth a look (e.g. trailing bytes, duplicate names).</summary>
    Warning,

    /// <summary>The container violates its format; loaders may diverge.</summary>
    Error,
}

/// <summary>Something in a file that its format does not allow or that loaders may read differently.</summary>
/// <param name="Severity">Severity.</param>
/// <param name="Code">Stable short code (e.g. <c>zip.name-mismatch</c>).</param>
/// <param name="Message">Human-readable detail.</param>
public sealed record ModelAnomaly(AnomalySeverity Severity, string Code, string Message);

/// <summary>A model file or folder as read: tensors, metadata, anomalies and pickle findings.</summary>
public sealed class ModelDocument
{
    /// <summary>Path read.</summary>
    public required string Path { get; init; }

    /// <summary>Container format.</summary>
    public required ModelFormat Format { get; init; }

    /// <summary>Tensor directory in container order.</summary>
    public List<TensorInfo> Tensors { get; } = [];

    /// <summary>Metadata (safetensors __metadata__, GGUF KVs as text, configs as JSON text).</summary>
    public SortedDictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    /// <summary>Format violations and oddities.</summary>
    public List<ModelAnomaly> Anomalies { get; } = [];

    /// <summary>Every pickle scanned (torch data.pkl, legacy pickles, stray pickle members).</summary>
    public List<PickleReport> Pickles { get; } = [];

    /// <summary>Files that make up the model (one for single files).</summary>
    public List<string> Files { get; } = [];

    /// <summary>Component folder of each file in a diffusers layout (file → unet, vae, text_encoder…).</summary>
    public Dictionary<string, string> FileComponents { get; } = new(StringComparer.Ordinal);

    /// <summary>The worst pickle verdict (Safe when there is no pickle).</summary>
    public PickleVerdict Verdict => Pickles.Count == 0 ? PickleVerdict.Safe : Pickles.Max(p => p.Verdict);

    /// <summary>Adds an anomaly.</summary>
    public void Flag(AnomalySeverity severity, string code, string message) => Anomalies.Add(new(severity, code, message));
}

/// <summary>A file that is not a readable model, or a violation that stops reading it.</summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ModelFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ModelFormatException()
    {
    }

    /// <summary>True when the file is no model format at all (a README in a walked folder), not a broken model.</summary>
    public bool NotAModel { get; init; }
}

/// <summary>Hard limits for every model reader; defaults fit the largest public checkpoints.</summary>
public sealed record ModelLimits
{
    /// <summary>Defaults.</summary>
    public static ModelLimits Default { get; } = new();

    /// <summary>safetensors header bytes (the reference reader's MAX_HEADER_SIZE).</summary>
    public long MaxHeaderBytes { get; init; } = 100_000_000;

    /// <summary>Bytes of one compressed pickle member inflated into memory (stored members are mapped, not copied); past it the member is dangerous.</summary>
    public long MaxPickleBytes { get; init; } = 64L << 20;

    /// <summary>Bytes of a file one pickle scan window maps (the span limit); a stream that needs more is dangerous.</summary>
    public long MaxPickleWindow { get; init; } = int.MaxValue - 4096;

    /// <summary>Pickle opcodes executed per stream.</summary>
    public long MaxPickleOps { get; init; } = 50_000_000;

    /// <summary>Pickle memo entries.</summary>
    public int MaxMemo { get; init; } = 4_000_000;

    /// <summary>Pickle stack + mark depth.</summary>
    public int MaxStack { get; init; } = 1_000_000;

    /// <summary>Nesting depth of JSON headers and nested pickle containers walked.</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Wall time for one pickle stream.</summary>
    public TimeSpan MaxPickleTime { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Tensors per file.</summary>
    public int MaxTensors { get; init; } = 1_000_000;

    /// <summary>Zip members.</summary>
    public int MaxZipEntries { get; init; } = 1_000_000;

    /// <summary>Files in a folder model.</summary>
    public int MaxFolderFiles { get; init; } = 10_000;

    /// <summary>
    /// Whether files a model names beside itself (ONNX external data) are read. False for uploads: an upload's
    /// "folder" is the server's /proc/PID/fd, whose entries are the server's own open files.
    /// </summary>
    public bool ExternalData { get; init; } = true;
}

/// <summary>Names of model formats as the CLI and the API print them.</summary>
public static class ModelFormatNames
{
    /// <summary>The lower-case name (safetensors, torch-zip, torch-legacy, pickle, gguf, diffusers, …).</summary>
    public static string Name(this ModelFormat f) => f switch
    {
        ModelFormat.Safetensors => "safetensors",
        ModelFormat.TorchZip => "torch-zip",
        ModelFormat.TorchLegacy => "torch-legacy",
        ModelFormat.Pickle => "pickle",
        ModelFormat.Gguf => "gguf",
        ModelFormat.DiffusersFolder => "diffusers",
        ModelFormat.PeftFolder => "peft",
        ModelFormat.ShardedFolder => "sharded",
        ModelFormat.OtherArchive => "archive",
        ModelFormat.Numpy => "numpy",
        ModelFormat.Zip => "zip",
        ModelFormat.TorchLegacyTar => "torch-legacy-tar",
        ModelFormat.Onnx => "onnx",
        _ => "unknown",
    };
}
