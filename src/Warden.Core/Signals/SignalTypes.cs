using System.Diagnostics.CodeAnalysis;

namespace Warden.Core.Signals;

/// <summary>
/// The built-in signal types, and shortcuts to the current <see cref="SignalTypeRegistry"/> (which may hold
/// plug-ins too).
/// </summary>
public static class SignalTypes
{
    /// <summary>Meta's PDQ: 256-bit perceptual hash, Hamming distance, match at ≤ 31 with quality ≥ 50.</summary>
    public static PdqSignalType Pdq { get; } = new();

    /// <summary>MD5 (16 bytes), exact.</summary>
    public static ExactSignalType Md5 { get; } = new("md5", 16, ContentKinds.File | ContentKinds.Photo | ContentKinds.Video);

    /// <summary>SHA-1 (20 bytes), exact.</summary>
    public static ExactSignalType Sha1 { get; } = new("sha1", 20, ContentKinds.File | ContentKinds.Photo | ContentKinds.Video);

    /// <summary>SHA-256 (32 bytes), exact.</summary>
    public static ExactSignalType Sha256 { get; } = new("sha256", 32, ContentKinds.File | ContentKinds.Photo | ContentKinds.Video | ContentKinds.ModelFile);

    /// <summary>Civitai AutoV1 of a model file (8 hex digits), as in old A1111 "Model hash" fields.</summary>
    public static ExactSignalType CivitaiAutoV1 { get; } = new("civitai_autov1", 4, ContentKinds.ModelFile);

    /// <summary>Civitai AutoV2 of a model file: the first 10 hex digits of its SHA-256 (A1111 "Model hash").</summary>
    public static ExactSignalType CivitaiAutoV2 { get; } = new("civitai_autov2", 5, ContentKinds.ModelFile);

    /// <summary>Civitai AutoV3 of a model file (12 hex digits; A1111 "Lora hashes").</summary>
    public static ExactSignalType CivitaiAutoV3 { get; } = new("civitai_autov3", 6, ContentKinds.ModelFile);

    /// <summary>BLAKE3 of a file (32 bytes), exact.</summary>
    public static ExactSignalType Blake3 { get; } = new("blake3", 32, ContentKinds.ModelFile);

    /// <summary>MFv1 model ID: hash of a model's sorted component IDs, independent of container and names.</summary>
    public static ExactSignalType Mfv1Model { get; } = new("mfv1_model", 16, ContentKinds.ModelFile);

    /// <summary>MFv1 component ID (denoiser, text encoder, VAE, LoRA…): hash of its sorted tensor hashes.</summary>
    public static ExactSignalType Mfv1Component { get; } = new("mfv1_component", 16, ContentKinds.ModelFile);

    /// <summary>vPDQ video hash (per-frame PDQ), see docs/video.md.</summary>
    public static VpdqSignalType Vpdq { get; } = new();

    /// <summary>TMK+PDQF video feature vectors, see docs/video.md.</summary>
    public static TmkPdqfSignalType TmkPdqf { get; } = new();

    /// <summary>MD5 of a video file's bytes (HMA's video signal), exact.</summary>
    public static ExactSignalType VideoMd5 { get; } = new("video_md5", 16, ContentKinds.Video);

    /// <summary>The built-in types, in the order matching reports them.</summary>
    public static IReadOnlyList<ISignalType> Builtin { get; } = [Pdq, Md5, Sha1, Sha256, CivitaiAutoV1, CivitaiAutoV2, CivitaiAutoV3, Blake3, Mfv1Model, Mfv1Component, Vpdq, TmkPdqf, VideoMd5];

    /// <summary>The built-in exact (digest-like) types.</summary>
    public static IReadOnlyList<ExactSignalType> Exact { get; } = [.. Builtin.OfType<ExactSignalType>()];

    /// <summary>Every type of the current registry (built-in plus plug-ins).</summary>
    public static IReadOnlyList<ISignalType> All => SignalTypeRegistry.Current.All;

    /// <summary>The names of <see cref="All"/>, comma-separated, for messages.</summary>
    public static string Names => SignalTypeRegistry.Current.Names;

    /// <summary>Finds a type of the current registry by name (case-insensitive).</summary>
    public static bool TryGet(string? name, [NotNullWhen(true)] out ISignalType? type) => SignalTypeRegistry.Current.TryGet(name, out type);

    /// <summary>Finds a type by name or throws <see cref="ArgumentException"/> listing the known ones.</summary>
    public static ISignalType Get(string name) => SignalTypeRegistry.Current.Get(name);
}
