using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.Runtime;

/// <summary>What a path names, after following links.</summary>
public enum FileKind
{
    /// <summary>The path could not be examined (missing, no permission, or not Linux): the caller's own open decides.</summary>
    Unknown,

    /// <summary>A regular file.</summary>
    Regular,

    /// <summary>A folder.</summary>
    Directory,

    /// <summary>A named pipe: opening it for reading waits for a writer, reading it may never end.</summary>
    Fifo,

    /// <summary>A character device such as /dev/zero or a terminal: reading may never end.</summary>
    CharacterDevice,

    /// <summary>A block device (a whole disk).</summary>
    BlockDevice,

    /// <summary>A Unix socket (cannot be opened as a file).</summary>
    Socket,
}

/// <summary>A path that names a FIFO, device, socket or folder where a regular file was required: a permanent error.</summary>
public sealed class NotRegularFileException(FileKind kind, string message) : IOException(message)
{
    /// <summary>What the path named instead.</summary>
    public FileKind Kind { get; } = kind;
}

/// <summary>
/// Opens files that Warden finds by itself (in a walked folder, a model folder, a backfill item) only when they are
/// regular files. A FIFO, device or socket dropped into an upload folder would otherwise stop a scan or a worker
/// for ever (opening a FIFO waits for a writer; /dev/zero never ends), so they are refused with a clear error. The
/// file is opened non-blocking and examined through the open descriptor, so swapping the path for a FIFO between a
/// check and the open cannot make the open wait. Paths a user names explicitly (a pipe from process substitution)
/// are the caller's choice and do not come through here.
/// </summary>
public static partial class RegularFile
{
    private const int ORdOnly = 0x0;
    private const int ONoCtty = 0x100;
    private const int ONonBlock = 0x800;
    private const int OCloExec = 0x80000;
    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;
    private const int StatxModeOffset = 28; // struct statx: stx_mode (u16) after mask, blksize, attributes, nlink, uid, gid; the same on every Linux architecture
    private const int StatxSize = 256;

    /// <summary>What <paramref name="path"/> names after following links; <see cref="FileKind.Unknown"/> when it cannot be told.</summary>
    public static FileKind Kind(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return OperatingSystem.IsLinux() ? Statx(AtFdCwd, path, 0) : FileKind.Unknown;
    }

    /// <summary>The words for a kind in an error message ("a named pipe (FIFO)").</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a folder",
        FileKind.Fifo => "a named pipe (FIFO)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        _ => "not a regular file",
    };

    /// <summary>The error for a path that is not a regular file.</summary>
    public static NotRegularFileException NotRegular(string path, FileKind kind) =>
        new(kind, $"'{path}' is {Describe(kind)}, not a regular file; only regular files are read");

    /// <summary>
    /// Opens <paramref name="path"/> for reading when it is a regular file (links followed); throws
    /// <see cref="IOException"/> naming what it is otherwise, and the usual exceptions for a missing or unreadable file.
    /// </summary>
    public static SafeFileHandle OpenRead(string path, FileOptions options = FileOptions.None)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!OperatingSystem.IsLinux())
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, options);
        }

        var fd = Open(path, ORdOnly | ONonBlock | OCloExec | ONoCtty);
        if (fd < 0)
        {
            // Let .NET's own open raise its usual exception (missing, denied, a folder) with its usual message;
            // if the path appeared in between, the handle it returns is checked like ours.
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, options);
            return Checked(handle, path);
        }

        var own = new SafeFileHandle(fd, ownsHandle: true);
        Checked(own, path);
        if ((options & FileOptions.SequentialScan) != 0)
        {
            _ = PosixFadvise(fd, 0, 0, 2); // POSIX_FADV_SEQUENTIAL, as .NET does for SequentialScan
        }
        else if ((options & FileOptions.RandomAccess) != 0)
        {
            _ = PosixFadvise(fd, 0, 0, 1); // POSIX_FADV_RANDOM
        }

        return own;
    }

    /// <summary>
    /// Reads a whole regular file of at most <paramref name="maxBytes"/> bytes; throws <see cref="IOException"/> for
    /// anything else (a device, a FIFO, a larger file, or one that grows past the limit while read).
    /// </summary>
    public static byte[] ReadAllBytes(string path, int maxBytes)
    {
        using var handle = OpenRead(path, FileOptions.SequentialScan);
        var length = RandomAccess.GetLength(handle);
        if (length > maxBytes)
        {
            throw new IOException($"'{path}' is {length:N0} bytes, over the {maxBytes:N0}-byte limit for this file");
        }

        var buffer = new byte[(int)length + 1];
        var total = 0;
        while (true)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(total), total);
            if (n == 0)
            {
                return buffer.AsSpan(0, total).ToArray();
            }

            total += n;
            if (total == buffer.Length)
            {
                if (total > maxBytes)
                {
                    throw new IOException($"'{path}' grew past the {maxBytes:N0}-byte limit for this file while it was read");
                }

                Array.Resize(ref buffer, (int)Math.Min((long)maxBytes + 1, Math.Max(total * 2L, 4096)));
            }
        }
    }

    private static SafeFileHandle Checked(SafeFileHandle handle, string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return handle;
        }

        var kind = Statx((int)handle.DangerousGetHandle(), string.Empty, AtEmptyPath);
        if (kind is FileKind.Regular or FileKind.Unknown)
        {
            return handle;
        }

        handle.Dispose();
        throw NotRegular(path, kind);
    }

    private static FileKind Statx(int dirFd, string path, int flags)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        buffer.Clear();
        unsafe
        {
            fixed (byte* b = buffer)
            {
                if (StatxNative(dirFd, path, flags, StatxType, b) != 0)
                {
                    return FileKind.Unknown;
                }
            }
        }

        var mode = BitConverter.ToUInt16(buffer[StatxModeOffset..]);
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Unknown,
        };
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int StatxNative(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);
}
