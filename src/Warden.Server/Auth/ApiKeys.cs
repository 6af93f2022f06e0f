using System.Security.Cryptography;
using System.Text;

namespace Warden.Server.Auth;

/// <summary>
/// API key format and hashing. A key is <c>wdn_</c> + an 8-character public id + <c>_</c> + 43 characters of
/// secret (256 random bits, base64url). Only the SHA-256 of the whole key is stored: with 256 bits of entropy a
/// fast hash is as safe as a slow one, and it keeps authentication at microseconds per request.
/// </summary>
public static class ApiKeys
{
    /// <summary>Every key starts with this, so leaked keys are easy to find with secret scanners.</summary>
    public const string Prefix = "wdn_";

    private const string IdAlphabet = "abcdefghijkmnpqrstuvwxyz23456789";

    /// <summary>Makes a new key: its public id (shown in listings and logs) and the full secret key.</summary>
    public static (string PublicId, string Key) Generate()
    {
        Span<char> id = stackalloc char[8];
        for (var i = 0; i < id.Length; i++)
        {
            id[i] = IdAlphabet[RandomNumberGenerator.GetInt32(IdAlphabet.Length)];
        }

        Span<byte> secret = stackalloc byte[32];
        RandomNumberGenerator.Fill(secret);
        var publicId = new string(id);
        return (publicId, Prefix + publicId + "_" + Convert.ToBase64String(secret).TrimEnd('=').Replace('+', '-').Replace('/', '_'));
    }

    /// <summary>The stored form of a key: lowercase hex SHA-256 of its UTF-8 bytes.</summary>
    public static string Hash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(key), digest);
        return Convert.ToHexStringLower(digest);
    }

    /// <summary>The public id inside a well-formed key, for logs (never log the key itself).</summary>
    public static string? PublicIdOf(string key) =>
        key.StartsWith(Prefix, StringComparison.Ordinal) && key.Length > Prefix.Length + 9 && key[Prefix.Length + 8] == '_'
            ? key.Substring(Prefix.Length, 8)
            : null;
}
