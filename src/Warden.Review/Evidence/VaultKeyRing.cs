namespace Warden.Review.Evidence;

/// <summary>
/// The master keys that wrap per-item data keys. Configuration gives each key an id and a base64 value
/// of 32 random bytes (<c>openssl rand -base64 32</c>); new items are wrapped with <see cref="CurrentKeyId"/>.
/// Rotation: add a new key, make it current, run <see cref="EvidenceVault.RewrapAllAsync"/>, then remove
/// the old one. Only the 48-byte wrapped keys are rewritten; the media ciphertext is untouched.
/// </summary>
public sealed class VaultKeyRing
{
    private readonly Dictionary<string, byte[]> _keys;

    /// <summary>Builds a ring from raw keys.</summary>
    public VaultKeyRing(IReadOnlyDictionary<string, byte[]> keys, string currentKeyId)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (id, key) in keys)
        {
            if (!IsValidKeyId(id))
            {
                throw new ArgumentException($"Vault key id '{id}' is invalid: 1-64 characters of letters, digits, '-', '_' or '.'.", nameof(keys));
            }

            if (key is not { Length: 32 })
            {
                throw new ArgumentException($"Vault key '{id}' must be exactly 32 bytes (AES-256).", nameof(keys));
            }

            _keys[id] = (byte[])key.Clone();
        }

        if (!_keys.ContainsKey(currentKeyId))
        {
            throw new ArgumentException($"The current vault key '{currentKeyId}' is not among the configured keys.", nameof(currentKeyId));
        }

        CurrentKeyId = currentKeyId;
    }

    /// <summary>The id new items are wrapped with.</summary>
    public string CurrentKeyId { get; }

    /// <summary>Builds a ring from configuration: key id → base64 of 32 bytes.</summary>
    public static VaultKeyRing FromBase64(IReadOnlyDictionary<string, string> keys, string currentKeyId)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var raw = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (id, b64) in keys)
        {
            try
            {
                raw[id] = Convert.FromBase64String(b64.Trim());
            }
            catch (FormatException ex)
            {
                throw new ArgumentException($"Vault key '{id}' is not valid base64.", nameof(keys), ex);
            }
        }

        return new VaultKeyRing(raw, currentKeyId);
    }

    internal bool TryGet(string keyId, out byte[] key) => _keys.TryGetValue(keyId, out key!);

    internal static bool IsValidKeyId(string? id) =>
        id is { Length: > 0 and <= 64 } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
