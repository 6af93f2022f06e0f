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

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MemfdCreate(string name, uint flags);
}
