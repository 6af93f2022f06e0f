namespace Warden.Core.Signals;

/// <summary>
/// A kind of fingerprint (`pdq`, `md5`, …): knows how to validate and normalise its text form and how
/// two signals compare. Video and model signal types implement this too.
/// </summary>
public interface ISignalType
{
    /// <summary>The stable name used in banks, files, the API and the UI (lowercase).</summary>
    string Name { get; }

    /// <summary>True for cryptographic digests: a match is equality. False for perceptual hashes.</summary>
    bool IsExact { get; }

    /// <summary>The default match threshold (maximum distance); 0 for exact types.</summary>
    int DefaultThreshold { get; }

    /// <summary>
    /// Validates <paramref name="text"/> and returns its canonical form (lowercase hex, trimmed); on failure
    /// <paramref name="reason"/> says why in words a user can act on.
    /// </summary>
    bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason);
}
