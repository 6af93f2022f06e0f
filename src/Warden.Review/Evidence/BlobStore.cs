using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Warden.Review.Evidence;

/// <summary>
/// Where sealed evidence objects are kept. Ids are random (<see cref="NewId"/>), never derived from
/// content or file names, so the store reveals nothing about what it holds. Implementations must make
/// <see cref="WriteAsync"/> atomic (a reader sees the old object or the new one, never a mix) and durable
/// when it returns. Implementations: <see cref="FileSystemBlobStore"/> (default) and <see cref="S3BlobStore"/>.
/// </summary>
public interface IBlobStore
{
    /// <summary>Stores (or atomically replaces) an object.</summary>
    Task WriteAsync(string id, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>Reads an object, or null when absent.</summary>
    Task<byte[]?> ReadAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Deletes an object; false when it was absent.</summary>
    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>A new random object id: 32 lower-case hex digits (128 bits).</summary>
    static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>True for ids of the <see cref="NewId"/> shape (guards paths against traversal).</summary>
    static bool IsValidId(string? id) => id is { Length: 32 } && id.All(char.IsAsciiHexDigitLower);
}

/// <summary>
/// Objects as files under a root folder: <c>objects/ab/abcd…</c>. Writes go to <c>tmp/</c>, are flushed
/// to disk (fsync), renamed over the target and the folder is fsynced, so a crash leaves either the old
/// object or the new one. Files hold only the sealed object (header + ciphertext).
/// </summary>
public sealed partial class FileSystemBlobStore : IBlobStore
{
    private readonly string _objects;
    private readonly string _tmp;
    private readonly long _maxObjectBytes;

    /// <summary>Opens (creating) a store under <paramref name="root"/>.</summary>
    public FileSystemBlobStore(string root, long maxObjectBytes = 1L << 31)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
        _objects = Path.Combine(Root, "objects");
        _tmp = Path.Combine(Root, "tmp");
        _maxObjectBytes = maxObjectBytes;
        Directory.CreateDirectory(_objects);
        Directory.CreateDirectory(_tmp);
        RestrictToOwner(Root);

        // A crash mid-write leaves a temp file (ciphertext only); clear them on open.
        foreach (var stale in Directory.EnumerateFiles(_tmp, "*.tmp"))
        {
            File.Delete(stale);
        }
    }

    /// <summary>The root folder.</summary>
    public string Root { get; }

    /// <inheritdoc/>
    public async Task WriteAsync(string id, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        var target = PathFor(id);
        var dir = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(_tmp, IBlobStore.NewId() + ".tmp");
        try
        {
            await using (var fs = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.Asynchronous }))
            {
                await fs.WriteAsync(data, cancellationToken).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }

            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }

        SyncDirectory(dir);
    }

    /// <inheritdoc/>
    public async Task<byte[]?> ReadAsync(string id, CancellationToken cancellationToken = default)
    {
        var path = PathFor(id);
        try
        {
            await using var fs = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, Options = FileOptions.Asynchronous });
            if (fs.Length > _maxObjectBytes)
            {
                throw new EvidenceException(EvidenceError.NotAllowed, $"Evidence object {id} is {fs.Length} bytes, over the {_maxObjectBytes}-byte limit.");
            }

            var buffer = new byte[fs.Length];
            await fs.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        var path = PathFor(id);
        if (!File.Exists(path))
        {
            return Task.FromResult(false);
        }

        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(path)!);
        return Task.FromResult(true);
    }

    private string PathFor(string id)
    {
        if (!IBlobStore.IsValidId(id))
        {
            throw new ArgumentException("An evidence object id is 32 lower-case hex digits.", nameof(id));
        }

        return Path.Combine(_objects, id[..2], id);
    }

    private static void RestrictToOwner(string dir)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>fsync on the folder makes a rename or delete durable (POSIX); best effort elsewhere.</summary>
    private static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }

        var fd = Open(dir, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }

        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
