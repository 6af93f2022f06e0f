namespace Warden.Fuzz;

/// <summary>
/// One scratch file per process for readers that take a file (model files are scanned where they lie): in tmpfs
/// (/dev/shm) when there is one, so a million inputs never touch a disk. Fuzz inputs are synthetic, never media.
/// </summary>
public static class ScratchFile
{
    private static readonly Lazy<string> Folder = new(Create);

    /// <summary>Writes <paramref name="data"/> to the scratch file and returns its path.</summary>
    public static string Write(byte[] data)
    {
        // One file per thread: smoke tests run targets in parallel.
        var path = Path.Combine(Folder.Value, $"input-{Environment.CurrentManagedThreadId}.bin");
        File.WriteAllBytes(path, data);
        return path;
    }

    private static string Create()
    {
        var root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        var dir = Path.Combine(root, $"warden-fuzz-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return dir;
    }
}
