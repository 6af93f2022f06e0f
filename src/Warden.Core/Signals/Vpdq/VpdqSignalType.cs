using Warden.Core.Hashing.Video;

namespace Warden.Core.Signals;

/// <summary>
/// The `vpdq` signal type: a vPDQ hash in Warden's one-line form (the reference's `frame,quality,hex,seconds`
/// lines joined by ';'). Accepts that, the reference's multi-line file, or HMA's JSON list.
/// </summary>
public sealed class VpdqSignalType : ISignalType
{
    /// <inheritdoc />
    public string Name => "vpdq";

    /// <inheritdoc />
    public bool IsExact => false;

    /// <summary>Per-frame PDQ distance (python-threatexchange: ≤ 31).</summary>
    public int DefaultThreshold => VpdqMatcher.DistanceThreshold;

    /// <inheritdoc />
    public ContentKinds ContentKinds => ContentKinds.Video;

    /// <inheritdoc />
    public IReadOnlyList<string> Examples { get; } = ["0,100,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,0.000"];

    /// <inheritdoc />
    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        if (VpdqHash.TryParse(text, out var hash, out reason))
        {
            normalized = hash.ToSignal();
            return true;
        }

        normalized = string.Empty;
        return false;
    }

    /// <inheritdoc />
    public Signal? CreateSignal(string normalized) =>
        VpdqHash.TryParse(normalized, out var hash, out _) ? new VpdqSignal(this, hash) : null;

    /// <inheritdoc />
    public ISignalIndex CreateIndex() => new VideoSignalIndex(this);

    /// <inheritdoc />
    public ISignalIndex LoadIndex(string path) => VideoSignalIndex.Load(this, path);
}

/// <summary>A video's vPDQ hash.</summary>
/// <param name="type">The vpdq type.</param>
/// <param name="hash">The hash.</param>
public sealed class VpdqSignal(ISignalType type, VpdqHash hash) : Signal(type, null)
{
    /// <summary>The hash.</summary>
    public VpdqHash Hash { get; } = hash;

    /// <inheritdoc />
    public override string ValueAt(int variant) => Hash.ToSignal();
}
