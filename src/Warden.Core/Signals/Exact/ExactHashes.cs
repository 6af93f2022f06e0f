using System.Security.Cryptography;

// MD5 and SHA-1 are here as identifiers, because clearinghouse lists (NCMEC, IWF) are published in them,
// never for security.
#pragma warning disable CA5350, CA5351

namespace Warden.Core.Hashing;

/// <summary>MD5, SHA-1 and SHA-256 of the same bytes.</summary>
/// <param name="Md5">16-byte MD5.</param>
/// <param name="Sha1">20-byte SHA-1.</param>
/// <param name="Sha256">32-byte SHA-256.</param>
public sealed record ExactHashes(byte[] Md5, byte[] Sha1, byte[] Sha256)
{
    /// <summary>Lowercase hex MD5.</summary>
    public string Md5Hex => Convert.ToHexStringLower(Md5);

    /// <summary>Lowercase hex SHA-1.</summary>
    public string Sha1Hex => Convert.ToHexStringLower(Sha1);

    /// <summary>Lowercase hex SHA-256.</summary>
    public string Sha256Hex => Convert.ToHexStringLower(Sha256);

    /// <summary>All three digests of an in-memory buffer.</summary>
    public static ExactHashes Compute(ReadOnlySpan<byte> data) =>
        new(MD5.HashData(data), SHA1.HashData(data), SHA256.HashData(data));
}

/// <summary>
/// Feeds MD5, SHA-1 and SHA-256 from one pass over a stream (each chunk goes to all three), so a file
/// is read once whatever it is; optionally keeps the bytes for decoding.
/// </summary>
public sealed class ExactHasher : IDisposable
{
    private readonly IncrementalHash _md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
    private readonly IncrementalHash _sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
    private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>Adds bytes to all three digests.</summary>
    public void Append(ReadOnlySpan<byte> chunk)
    {
        _md5.AppendData(chunk);
        _sha1.AppendData(chunk);
        _sha256.AppendData(chunk);
    }

    /// <summary>Finishes the digests and resets for the next input.</summary>
    public ExactHashes Finish() => new(_md5.GetHashAndReset(), _sha1.GetHashAndReset(), _sha256.GetHashAndReset());

    /// <summary>
    /// Reads <paramref name="stream"/> to its end once, hashing every chunk. When <paramref name="keep"/> is
    /// set the bytes are also collected (up to <paramref name="maxKeep"/>; beyond it keeping stops and
    /// <paramref name="kept"/> is null, while hashing goes on).
    /// </summary>
    public ExactHashes HashStream(Stream stream, bool keep, long maxKeep, out byte[]? kept, out long length)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            MemoryStream? collected = null;
            if (keep)
            {
                var capacity = stream.CanSeek ? (int)Math.Min(stream.Length - stream.Position, maxKeep) : 0;
                collected = new MemoryStream(Math.Max(capacity, 0));
            }

            int read;
            length = 0;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                var chunk = buffer.AsSpan(0, read);
                length += read;
                Append(chunk);
                if (collected is not null)
                {
                    if (collected.Length + read > maxKeep)
                    {
                        collected.Dispose();
                        collected = null;
                    }
                    else
                    {
                        collected.Write(chunk);
                    }
                }
            }

            // The decoder takes a whole array, so hand over the buffer itself when it is exactly full.
            kept = collected is null ? null : collected.Length == collected.Capacity ? collected.GetBuffer() : collected.ToArray();
            return Finish();
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _md5.Dispose();
        _sha1.Dispose();
        _sha256.Dispose();
    }
}
