using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Warden.Review.Evidence;

/// <summary>
/// The vault object format. Each item gets a fresh random 256-bit data key; the payload is sealed with
/// AES-256-GCM under it, and the data key is itself sealed (AES-256-GCM key wrap) under a master key:
/// <code>
/// "WDEV" · version(1)=1 · keyIdLength(1) · keyId(UTF-8)
/// wrapNonce(12) · wrappedKey(32) · wrapTag(16)
/// dataNonce(12) · dataTag(16) · ciphertextLength(8, LE) · ciphertext
/// </code>
/// The wrap is bound to the item id and key id, the data to the item id (associated data), so an object
/// copied under another id fails to open. Nothing in the object is plaintext media or context.
/// </summary>
internal static class EvidenceCrypto
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    private const byte Version = 1;
    private static ReadOnlySpan<byte> Magic => "WDEV"u8;
    private static ReadOnlySpan<byte> WrapLabel => "warden-evidence-key-v1"u8;
    private static ReadOnlySpan<byte> DataLabel => "warden-evidence-data-v1"u8;

    /// <summary>The fixed header size after the key id.</summary>
    private const int FixedTail = NonceSize + KeySize + TagSize + NonceSize + TagSize + 8;

    public static byte[] Seal(string itemId, ReadOnlySpan<byte> plaintext, string keyId, ReadOnlySpan<byte> masterKey)
    {
        var keyIdBytes = Encoding.UTF8.GetBytes(keyId);
        var headerLength = 4 + 1 + 1 + keyIdBytes.Length + FixedTail;
        var output = new byte[headerLength + plaintext.Length];
        var span = output.AsSpan();
        Magic.CopyTo(span);
        span[4] = Version;
        span[5] = (byte)keyIdBytes.Length;
        keyIdBytes.CopyTo(span[6..]);
        var p = 6 + keyIdBytes.Length;
        var wrapNonce = span.Slice(p, NonceSize);
        var wrapped = span.Slice(p + NonceSize, KeySize);
        var wrapTag = span.Slice(p + NonceSize + KeySize, TagSize);
        p += NonceSize + KeySize + TagSize;
        var dataNonce = span.Slice(p, NonceSize);
        var dataTag = span.Slice(p + NonceSize, TagSize);
        BinaryPrimitives.WriteInt64LittleEndian(span.Slice(p + NonceSize + TagSize, 8), plaintext.Length);
        var ciphertext = span[headerLength..];

        Span<byte> dataKey = stackalloc byte[KeySize];
        try
        {
            RandomNumberGenerator.Fill(dataKey);
            RandomNumberGenerator.Fill(wrapNonce);
            RandomNumberGenerator.Fill(dataNonce);
            using (var wrap = new AesGcm(masterKey, TagSize))
            {
                wrap.Encrypt(wrapNonce, dataKey, wrapped, wrapTag, WrapAad(itemId, keyIdBytes));
            }

            using var data = new AesGcm(dataKey, TagSize);
            data.Encrypt(dataNonce, plaintext, ciphertext, dataTag, DataAad(itemId));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }

        return output;
    }

    /// <summary>The key id an object is wrapped with (header only; nothing is decrypted).</summary>
    public static string ReadKeyId(ReadOnlySpan<byte> blob) => ParseHeader(blob).KeyId;

    public static byte[] Open(string itemId, ReadOnlySpan<byte> blob, VaultKeyRing keys)
    {
        var h = ParseHeader(blob);
        Span<byte> dataKey = stackalloc byte[KeySize];
        try
        {
            Unwrap(itemId, blob, h, keys, dataKey);
            var plaintext = new byte[h.CiphertextLength];
            try
            {
                using var data = new AesGcm(dataKey, TagSize);
                data.Decrypt(blob.Slice(h.DataNonce, NonceSize), blob.Slice(h.Ciphertext, h.CiphertextLength), blob.Slice(h.DataTag, TagSize), plaintext, DataAad(itemId));
            }
            catch (AuthenticationTagMismatchException ex)
            {
                CryptographicOperations.ZeroMemory(plaintext);
                throw new EvidenceException(EvidenceError.Tampered, $"Evidence {itemId}: the ciphertext failed authentication (the object was altered).", ex);
            }

            return plaintext;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>Re-wraps the data key under <paramref name="newKeyId"/>; the data ciphertext is copied unchanged.</summary>
    public static byte[] Rewrap(string itemId, ReadOnlySpan<byte> blob, VaultKeyRing keys, string newKeyId)
    {
        var h = ParseHeader(blob);
        if (!keys.TryGet(newKeyId, out var newMaster))
        {
            throw new EvidenceException(EvidenceError.UnknownKey, $"Vault key '{newKeyId}' is not configured.");
        }

        Span<byte> dataKey = stackalloc byte[KeySize];
        try
        {
            Unwrap(itemId, blob, h, keys, dataKey);
            var newKeyIdBytes = Encoding.UTF8.GetBytes(newKeyId);
            var oldPrefix = 6 + h.KeyIdLength;
            var output = new byte[blob.Length - h.KeyIdLength + newKeyIdBytes.Length];
            var span = output.AsSpan();
            Magic.CopyTo(span);
            span[4] = Version;
            span[5] = (byte)newKeyIdBytes.Length;
            newKeyIdBytes.CopyTo(span[6..]);
            var p = 6 + newKeyIdBytes.Length;
            var wrapNonce = span.Slice(p, NonceSize);
            RandomNumberGenerator.Fill(wrapNonce);
            using (var wrap = new AesGcm(newMaster, TagSize))
            {
                wrap.Encrypt(wrapNonce, dataKey, span.Slice(p + NonceSize, KeySize), span.Slice(p + NonceSize + KeySize, TagSize), WrapAad(itemId, newKeyIdBytes));
            }

            // Everything after the wrapped key (data nonce, tag, length, ciphertext) is unchanged.
            blob[(oldPrefix + NonceSize + KeySize + TagSize)..].CopyTo(span[(p + NonceSize + KeySize + TagSize)..]);
            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    private static void Unwrap(string itemId, ReadOnlySpan<byte> blob, Header h, VaultKeyRing keys, Span<byte> dataKey)
    {
        if (!keys.TryGet(h.KeyId, out var master))
        {
            throw new EvidenceException(EvidenceError.UnknownKey, $"Evidence {itemId} is wrapped with vault key '{h.KeyId}', which is not configured.");
        }

        try
        {
            using var wrap = new AesGcm(master, TagSize);
            wrap.Decrypt(blob.Slice(h.WrapNonce, NonceSize), blob.Slice(h.WrapNonce + NonceSize, KeySize), blob.Slice(h.WrapNonce + NonceSize + KeySize, TagSize), dataKey, WrapAad(itemId, Encoding.UTF8.GetBytes(h.KeyId)));
        }
        catch (AuthenticationTagMismatchException ex)
        {
            throw new EvidenceException(EvidenceError.KeyUnwrapFailed, $"Evidence {itemId}: the data key does not unwrap with vault key '{h.KeyId}' (wrong master key, or the key header was altered).", ex);
        }
    }

    private static Header ParseHeader(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < 6 || !blob[..4].SequenceEqual(Magic))
        {
            throw new EvidenceException(blob.Length < 6 && Magic.StartsWith(blob) ? EvidenceError.Truncated : EvidenceError.BadFormat, "Not a Warden evidence object (bad magic).");
        }

        if (blob[4] != Version)
        {
            throw new EvidenceException(EvidenceError.BadFormat, $"Unsupported evidence object version {blob[4]}.");
        }

        int keyIdLength = blob[5];
        if (keyIdLength is 0 or > 64)
        {
            throw new EvidenceException(EvidenceError.BadFormat, "Evidence object has an invalid key id length.");
        }

        var headerLength = 6 + keyIdLength + FixedTail;
        if (blob.Length < headerLength)
        {
            throw new EvidenceException(EvidenceError.Truncated, $"Evidence object is truncated: {blob.Length} bytes, its header alone needs {headerLength}.");
        }

        string keyId;
        try
        {
            keyId = new UTF8Encoding(false, true).GetString(blob.Slice(6, keyIdLength));
        }
        catch (DecoderFallbackException ex)
        {
            throw new EvidenceException(EvidenceError.BadFormat, "Evidence object has a key id that is not UTF-8.", ex);
        }

        var wrapNonce = 6 + keyIdLength;
        var dataNonce = wrapNonce + NonceSize + KeySize + TagSize;
        var length = BinaryPrimitives.ReadInt64LittleEndian(blob.Slice(dataNonce + NonceSize + TagSize, 8));
        if (length < 0 || length != blob.Length - headerLength)
        {
            throw new EvidenceException(
                length >= 0 && length > blob.Length - headerLength ? EvidenceError.Truncated : EvidenceError.BadFormat,
                $"Evidence object length mismatch: the header says {length} ciphertext bytes, {blob.Length - headerLength} are present.");
        }

        return new Header(keyId, keyIdLength, wrapNonce, dataNonce, dataNonce + NonceSize, headerLength, (int)length);
    }

    private static byte[] WrapAad(string itemId, ReadOnlySpan<byte> keyId) => [.. WrapLabel, 0, .. Encoding.UTF8.GetBytes(itemId), 0, .. keyId];

    private static byte[] DataAad(string itemId) => [.. DataLabel, 0, .. Encoding.UTF8.GetBytes(itemId)];

    private readonly record struct Header(string KeyId, int KeyIdLength, int WrapNonce, int DataNonce, int DataTag, int Ciphertext, int CiphertextLength);
}
