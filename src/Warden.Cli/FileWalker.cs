using Warden.Core.Runtime;

namespace Warden.Cli;

/// <summary>Expands the paths given on the command line into files, recursively, in a stable order.</summary>
internal static class FileWalker
{
    /// <summary>The path that means "read the content from standard input".</summary>
    public const string StandardInput = "-";

    /// <summary>
    /// Files in argument order; a folder contributes its files sorted by ordinal path, recursively.
    /// Symbolic links to folders are not followed (no cycles); paths that do not exist, and entries of a folder that
    /// are not regular files (FIFOs, devices, sockets), are reported.
    /// </summary>
    public static IEnumerable<(string Path, string? Error)> Expand(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            if (path == StandardInput)
            {
                yield return (path, null);
            }
            else if (File.Exists(path))
            {
                yield return (path, null);
            }
            else if (Directory.Exists(path))
            {
                foreach (var f in Walk(path))
                {
                    yield return f;
                }
            }
            else
            {
                yield return (path, "no such file or folder");
            }
        }
    }

    private static IEnumerable<(string Path, string? Error)> Walk(string root)
    {
        var stack = new Stack<string>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var dir = stack.Pop();
            if (!TryList(dir, out var files, out var dirs, out var error))
            {
                // Reported as a failed entry; the walk goes on with the other folders.
                yield return (dir, error);
                continue;
            }

            foreach (var f in files)
            {
                // A FIFO or device in a walked folder would stop the whole batch (opening a FIFO waits for a
                // writer, /dev/zero never ends): reported as a failed entry, never opened. Named on the command
                // line (a pipe from process substitution) it is the user's choice and is read.
                var kind = RegularFile.Kind(f);
                yield return kind is FileKind.Regular or FileKind.Unknown ? (f, null) : (f, $"{RegularFile.Describe(kind)}, not a regular file; skipped");
            }

            for (var i = dirs.Length - 1; i >= 0; i--)
            {
                stack.Push(dirs[i]);
            }
        }
    }

    private static bool TryList(string dir, out string[] files, out string[] dirs, out string? error)
    {
        try
        {
            files = Directory.GetFiles(dir);
            Array.Sort(files, StringComparer.Ordinal);

            // Linked folders are skipped so a link cycle cannot loop the walk.
            dirs = Directory.GetDirectories(dir)
                .Where(d => !new DirectoryInfo(d).Attributes.HasFlag(FileAttributes.ReparsePoint))
                .Order(StringComparer.Ordinal)
                .ToArray();
            error = null;
            return true;
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            files = [];
            dirs = [];
            error = $"cannot read folder: {ex.Message}";
            return false;
        }
    }
}
