using System.Text;

namespace Warden.Review.Evidence;

/// <summary>
/// Seals upload context that is evidence (uploader IP, content URL, original file name) the way the vault
/// seals media: the vault object format (AES-256-GCM under a fresh data key wrapped by the master key ring),
/// bound to <c>context:</c> + the submission id, so a sealed value copied onto another submission fails to
/// open. The database then holds only base64 ciphertext; the console and the report open it.
/// </summary>
public sealed class ContextSeal(VaultKeyRing keys)
{
    private const string Prefix = "context:";

    /// <summary>Seals <paramref name="plaintext"/> for a submission; base64 of the vault object.</summary>
    public string Seal(string submissionId, string plaintext)
    {
        ArgumentException.ThrowIfNullOrEmpty(submissionId);
        ArgumentNullException.ThrowIfNull(plaintext);
        if (!keys.TryGet(keys.CurrentKeyId, out var master))
        {
            throw new EvidenceException(EvidenceError.UnknownKey, $"Vault key '{keys.CurrentKeyId}' is not configured.");
        }

        return Convert.ToBase64String(EvidenceCrypto.Seal(Prefix + submissionId, Encoding.UTF8.GetBytes(plaintext), keys.CurrentKeyId, master));
    }

    /// <summary>The marker of a <see cref="Wrap"/>ped value (anything else is plaintext an older version wrote).</summary>
    public const string Marker = "sealed:v1:";

    /// <summary>
    /// A stored form of <paramref name="text"/> bound to <paramref name="binding"/> (e.g. a report's case and
    /// destination): the marker and the sealed base64; null stays null.
    /// </summary>
    public string? Wrap(string binding, string? text) => text is null ? null : Marker + Seal(binding, text);

    /// <summary>Opens a <see cref="Wrap"/>ped value; plaintext (no marker) is returned as it is.</summary>
    public string? Unwrap(string binding, string? stored) =>
        stored is not null && stored.StartsWith(Marker, StringComparison.Ordinal) ? Open(binding, stored[Marker.Length..]) : stored;

    /// <summary>
    /// Opens a sealed value of a submission. Throws <see cref="EvidenceException"/> when it is not base64 of a
    /// vault object, its key is unknown, or it fails authentication (altered, or another submission's).
    /// </summary>
    public string Open(string submissionId, string sealedValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(submissionId);
        ArgumentNullException.ThrowIfNull(sealedValue);
        var blob = new byte[(sealedValue.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64String(sealedValue, blob, out var n))
        {
            throw new EvidenceException(EvidenceError.Tampered, $"Sealed context of {submissionId} is not base64.");
        }

        var plain = EvidenceCrypto.Open(Prefix + submissionId, blob.AsSpan(0, n), keys);
        try
        {
            return Encoding.UTF8.GetString(plain);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plain);
        }
    }
}
