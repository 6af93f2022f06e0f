using Warden.Core.Signals;

namespace Warden.Core.Hashing.Video;

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
}

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
}
