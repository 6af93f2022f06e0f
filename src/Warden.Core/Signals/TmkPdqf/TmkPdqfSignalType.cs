using Warden.Core.Hashing.Video;

namespace Warden.Core.Signals;

/// <summary>
/// The `tmk_pdqf` signal type: TMK+PDQF feature vectors as `tmk1:` + base64 of the reference's `.tmk` file
/// (NCMEC's TMK_PDQF fingerprint). Matches when level 1 and level 2 are both ≥ 0.7.
/// </summary>
public sealed class TmkPdqfSignalType : ISignalType
{
    /// <inheritdoc />
    public string Name => "tmk_pdqf";

    /// <inheritdoc />
    public bool IsExact => false;

    /// <summary>Level-1 and level-2 score threshold in percent (70 = the reference's 0.7).</summary>
    public int DefaultThreshold => 70;

    /// <summary>A score in percent.</summary>
    public int MaxThreshold => 100;

    /// <inheritdoc />
    public ContentKinds ContentKinds => ContentKinds.Video;

    /// <summary>None inline: a value is ~350 KB (see docs/video.md for how to make one).</summary>
    public IReadOnlyList<string> Examples => [];

    /// <summary>Too bulky for every summary: asked for explicitly (`tmk=true`, `--tmk`).</summary>
    public bool InSummaries => false;

    /// <inheritdoc />
    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        if (TmkHasher.TryParseSignal(text, out var features, out reason))
        {
            normalized = TmkHasher.ToSignal(features!);
            return true;
        }

        normalized = string.Empty;
        return false;
    }

    /// <inheritdoc />
    public Signal? CreateSignal(string normalized) =>
        TmkHasher.TryParseSignal(normalized, out var features, out _) ? new TmkSignal(this, features!) : null;

    /// <inheritdoc />
    public ISignalIndex CreateIndex() => new VideoSignalIndex(this);

    /// <inheritdoc />
    public ISignalIndex LoadIndex(string path) => VideoSignalIndex.Load(this, path);
}

/// <summary>A video's TMK+PDQF features.</summary>
/// <param name="type">The tmk_pdqf type.</param>
/// <param name="features">The features.</param>
public sealed class TmkSignal(ISignalType type, TmkFeatures features) : Signal(type, null)
{
    /// <summary>The features.</summary>
    public TmkFeatures Features { get; } = features;

    /// <inheritdoc />
    public override string ValueAt(int variant) => TmkHasher.ToSignal(Features);
}
