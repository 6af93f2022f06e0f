using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;

namespace Warden.Core.Hashing;

/// <summary>All signals of one piece of content, or why the perceptual part failed.</summary>
/// <param name="Exact">MD5, SHA-1, SHA-256 of the bytes (always computed, whatever the content is).</param>
/// <param name="Length">Size in bytes.</param>
/// <param name="Image">PDQ and image facts, or null when the content could not be decoded as an image.</param>
/// <param name="Error">Why <paramref name="Image"/> is null.</param>
public sealed record ContentHashes(ExactHashes Exact, long Length, PdqImageResult? Image, ImageDecodeException? Error);

/// <summary>
/// Reads content once: every chunk feeds MD5/SHA-1/SHA-256 and is kept for the image decoder, so a file is
/// never read twice. Not thread-safe: one per thread (it reuses PDQ buffers).
/// </summary>
public sealed class ContentHasher(PdqResize resize = PdqResize.Fast, ImageLimits? limits = null) : IDisposable
{
    private readonly ImageLimits _limits = limits ?? ImageLimits.Default;
    private readonly ExactHasher _exact = new();
    private readonly PdqImageHasher _pdq = new(resize, limits);

    /// <summary>Hashes a file.</summary>
    public ContentHashes HashFile(string path, bool dihedral = false)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        return HashStream(stream, dihedral);
    }

    /// <summary>Hashes a stream to its end.</summary>
    public ContentHashes HashStream(Stream stream, bool dihedral = false)
    {
        var exact = _exact.HashStream(stream, keep: true, _limits.MaxBytes, out var bytes, out var length);
        if (bytes is null)
        {
            return new ContentHashes(exact, length, null, new ImageDecodeException(
                ImageDecodeError.TooManyBytes, $"The file has {length} bytes; the image limit is {_limits.MaxBytes}."));
        }

        try
        {
            return new ContentHashes(exact, length, _pdq.Hash(bytes, dihedral), null);
        }
        catch (ImageDecodeException ex)
        {
            return new ContentHashes(exact, length, null, ex);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _exact.Dispose();
}
