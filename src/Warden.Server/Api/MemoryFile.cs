using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Warden.Server.Api;

/// <summary>
/// An upload as a file that lives only in memory: a Linux <c>memfd</c> (anonymous, RAM-backed, gone when
/// closed), reachable by path as <c>/proc/PID/fd/N</c>. Tools that need a seekable file — ffmpeg for videos
/// (an MP4's index may sit at its end), the model readers — read uploads through it, so media is never
/// written to disk.
/// </summary>
public sealed partial class MemoryFile : IDisposable
{
    private const uint MfdCloexec = 1;
    private readonly SafeFileHandle _handle;

    private MemoryFile(SafeFileHandle handle, int fd)
    {
        _handle = handle;
        Path = $"/proc/{Environment.ProcessId}/fd/{fd}";
    }

    /// <summary>The path other processes (and this one) open the content by.</summary>
    public string Path { get; }

    /// <summary>Whether in-memory files work here (Linux).</summary>
    public static bool Supported => OperatingSystem.IsLinux();

    /// <summary>Copies <paramref name="data"/> into a new in-memory file.</summary>
    /// <exception cref="IOException">The kernel refused (not Linux, or out of memory).</exception>
    public static MemoryFile Create(ReadOnlySpan<byte> data)
    {
        if (!Supported)
        {
            throw new IOException("In-memory files need Linux (memfd_create).");
        }

        var fd = MemfdCreate("warden-upload", MfdCloexec);
        if (fd < 0)
        {
            throw new IOException($"memfd_create failed (errno {Marshal.GetLastPInvokeError()}).");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            RandomAccess.Write(handle, data, 0);
            return new MemoryFile(handle, fd);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Streams <paramref name="source"/> into a new in-memory file, refusing more than <paramref name="maxBytes"/>.</summary>
    public static async Task<MemoryFile> CreateAsync(Stream source, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        var file = Create([]);
        try
        {
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                long offset = 0;
                int read;
                while ((read = await source.ReadAsync(buffer.AsMemory(0, buffer.Length), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    if (offset + read > maxBytes)
                    {
                        throw new ApiException(413, ErrorCodes.PayloadTooLarge, $"The upload is larger than this server accepts ({maxBytes} bytes); large model files can be scanned by path (POST /v1/models/scan-path).");
                    }

                    await RandomAccess.WriteAsync(file._handle, buffer.AsMemory(0, read), offset, cancellationToken).ConfigureAwait(false);
                    offset += read;
                }

                if (offset == 0)
                {
                    throw ApiException.BadRequest(ErrorCodes.EmptyUpload, "The upload is empty.");
                }

                file.Length = offset;
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }

            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Bytes written (for <see cref="CreateAsync"/>).</summary>
    public long Length { get; private set; }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MemfdCreate(string name, uint flags);
}
