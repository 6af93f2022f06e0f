namespace Warden.Core.Hashing.Pdq;

/// <summary>A PDQ hash with its quality (0..100) and, when asked for, the 8 dihedral variants.</summary>
/// <param name="Hash">The hash of the image as decoded.</param>
/// <param name="Quality">The reference's gradient-based quality; hashes under 50 should not be matched.</param>
/// <param name="Dihedral">All 8 variants in <see cref="Pdq.Dihedral"/> order (index 0 is <paramref name="Hash"/>), or null.</param>
public sealed record PdqResult(PdqHash Hash, int Quality, IReadOnlyList<PdqHash>? Dihedral = null)
{
    /// <summary>The default match gate: hashes of lower quality are too featureless to match on.</summary>
    public const int DefaultMinQuality = 50;
}
