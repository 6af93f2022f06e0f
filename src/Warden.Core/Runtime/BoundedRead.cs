namespace Warden.Core.Runtime;

/// <summary>Reads a stream of unknown length (standard input, a pipe, a child's output) with a ceiling.</summary>
public static class BoundedRead
{
    /// <summary>
    /// The stream's bytes to its end, or null as soon as it passes <paramref name="max"/> bytes: a source that never
    /// ends (/dev/zero, a stuck producer's output) costs at most the limit in memory, never the process.
    /// </summary>
    public static byte[]? ReadAll(Stream stream, long max)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + n > max)
            {
                return null;
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>As <see cref="ReadAll"/>, asynchronously (a network body).</summary>
    public static async Task<byte[]?> ReadAllAsync(Stream stream, long max, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > max)
            {
                return null;
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }
}
