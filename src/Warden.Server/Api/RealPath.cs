namespace Warden.Server.Api;

/// <summary>
/// The real path of a file or folder, as realpath(3) gives it: every symbolic link in every component is followed
/// and ".." is applied to the real parent (not lexically, where "link/.." would land beside the link). Null when
/// any component is missing or unreadable, or links loop.
/// </summary>
internal static class RealPath
{
    private const int MaxLinks = 40; // ELOOP, as Linux counts

    public static string? Resolve(string path)
    {
        try
        {
            if (!Path.IsPathFullyQualified(path))
            {
                return null;
            }

            var root = Path.GetPathRoot(path)!;
            var pending = new Stack<string>(Split(path[root.Length..]).Reverse());
            var current = root;
            var links = 0;
            while (pending.Count > 0)
            {
                var part = pending.Pop();
                if (part is "" or ".")
                {
                    continue;
                }

                if (part == "..")
                {
                    current = Path.GetDirectoryName(current) ?? root;
                    continue;
                }

                var next = Path.Join(current, part);
                var info = new FileInfo(next);
                if (info.LinkTarget is { } target)
                {
                    if (++links > MaxLinks)
                    {
                        return null;
                    }

                    // Re-walk the target's components in place of this one.
                    foreach (var p in Split(target).Reverse())
                    {
                        pending.Push(p);
                    }

                    if (Path.IsPathFullyQualified(target))
                    {
                        current = Path.GetPathRoot(target)!;
                    }

                    continue;
                }

                if (!info.Exists && !Directory.Exists(next))
                {
                    return null;
                }

                if (pending.Count > 0 && !Directory.Exists(next))
                {
                    return null; // a file used as a folder
                }

                current = next;
            }

            return current;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or System.Security.SecurityException)
        {
            return null;
        }
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="root"/> or lies inside it (both real paths).</summary>
    public static bool IsUnder(string path, string root)
    {
        var r = Path.TrimEndingDirectorySeparator(root);
        return path == r || path.StartsWith(r.EndsWith(Path.DirectorySeparatorChar) ? r : r + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

    private static string[] Split(string p) => p.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.None);
}
