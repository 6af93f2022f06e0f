using System.Diagnostics.CodeAnalysis;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Signals;

/// <summary>The signal types Warden knows, by name.</summary>
public static class SignalTypes
{
    /// <summary>Meta's PDQ: 256-bit perceptual hash, Hamming distance, match at ≤ 31 with quality ≥ 50.</summary>
    public static PdqSignalType Pdq { get; } = new();

    /// <summary>MD5 (16 bytes), exact.</summary>
    public static ExactSignalType Md5 { get; } = new("md5", 16);

    /// <summary>SHA-1 (20 bytes), exact.</summary>
    public static ExactSignalType Sha1 { get; } = new("sha1", 20);

    /// <summary>SHA-256 (32 bytes), exact.</summary>
    public static ExactSignalType Sha256 { get; } = new("sha256", 32);

    /// <summary>Civitai AutoV1 of a model file (8 hex digits), as in old A1111 "Model hash" fields.</summary>
    public static ExactSignalType CivitaiAutoV1 { get; } = new("civitai_autov1", 4);

    /// <summary>Civitai AutoV2 of a model file: the first 10 hex digits of its SHA-256 (A1111 "Model hash").</summary>
    public static ExactSignalType CivitaiAutoV2 { get; } = new("civitai_autov2", 5);

    /// <summary>Civitai AutoV3 of a model file (12 hex digits; A1111 "Lora hashes").</summary>
    public static ExactSignalType CivitaiAutoV3 { get; } = new("civitai_autov3", 6);

    /// <summary>BLAKE3 of a file (32 bytes), exact.</summary>
    public static ExactSignalType Blake3 { get; } = new("blake3", 32);

    /// <summary>MFv1 model ID: hash of a model's sorted component IDs, independent of container and names.</summary>
    public static ExactSignalType Mfv1Model { get; } = new("mfv1_model", 16);

    /// <summary>MFv1 component ID (denoiser, text encoder, VAE, LoRA…): hash of its sorted tensor hashes.</summary>
    public static ExactSignalType Mfv1Component { get; } = new("mfv1_component", 16);

    /// <summary>vPDQ video hash (per-frame PDQ), see docs/video.md.</summary>
    public static Hashing.Video.VpdqSignalType Vpdq { get; } = new();

    /// <summary>TMK+PDQF video feature vectors, see docs/video.md.</summary>
    public static Hashing.Video.TmkPdqfSignalType TmkPdqf { get; } = new();

    /// <summary>MD5 of a video file's bytes (HMA's video signal), exact.</summary>
    public static ExactSignalType VideoMd5 { get; } = new("video_md5", 16);


    /// <summary>Every known type.</summary>
    public static IReadOnlyList<ISignalType> All { get; } = [Pdq, Md5, Sha1, Sha256, CivitaiAutoV1, CivitaiAutoV2, CivitaiAutoV3, Blake3, Mfv1Model, Mfv1Component, Vpdq, TmkPdqf, VideoMd5];

    /// <summary>The exact (digest-like) types, each with its own exact index.</summary>
    public static IReadOnlyList<ExactSignalType> Exact { get; } = [.. All.OfType<ExactSignalType>()];

    /// <summary>Finds a type by name (case-insensitive).</summary>
    public static bool TryGet(string? name, [NotNullWhen(true)] out ISignalType? type)
    {
        type = All.FirstOrDefault(t => string.Equals(t.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase));
        return type is not null;
    }

    /// <summary>Finds a type by name or throws <see cref="ArgumentException"/> listing the known ones.</summary>
    public static ISignalType Get(string name) =>
        TryGet(name, out var type) ? type : throw new ArgumentException($"Unknown signal type '{name}'; known types: {string.Join(", ", All.Select(t => t.Name))}.", nameof(name));
}

/// <summary>The PDQ signal type.</summary>
public sealed class PdqSignalType : ISignalType
{
    /// <summary>Meta's recommended match threshold.</summary>
    public const int DefaultMatchThreshold = 31;

    /// <inheritdoc />
    public string Name => "pdq";

    /// <inheritdoc />
    public bool IsExact => false;

    /// <inheritdoc />
    public int DefaultThreshold => DefaultMatchThreshold;

    /// <summary>Hashes of lower quality are not matched (too featureless).</summary>
    public const int MinQuality = PdqResult.DefaultMinQuality;

    /// <inheritdoc />
    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        if (PdqHash.TryParse(text, out var hash, out reason))
        {
            normalized = hash.ToString();
            return true;
        }

        normalized = string.Empty;
        return false;
    }
}

/// <summary>A cryptographic digest type: fixed length, lowercase hex, match by equality.</summary>
public sealed class ExactSignalType(string name, int bytes) : ISignalType
{
    /// <inheritdoc />
    public string Name { get; } = name;

    /// <summary>Digest length in bytes.</summary>
    public int Bytes { get; } = bytes;

    /// <inheritdoc />
    public bool IsExact => true;

    /// <inheritdoc />
    public int DefaultThreshold => 0;

    /// <inheritdoc />
    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        text = text.Trim();
        normalized = string.Empty;
        if (text.Length != Bytes * 2)
        {
            reason = $"An {Name} is {Bytes * 2} hex digits; got {text.Length} characters.";
            return false;
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                reason = $"An {Name} may contain only hex digits 0-9 and a-f.";
                return false;
            }
        }

        normalized = text.ToString().ToLowerInvariant();
        reason = null;
        return true;
    }
}
