using System.Globalization;

namespace Warden.Core.Runtime;

/// <summary>
/// Where a process's resident memory is, from /proc/PID/smaps (Linux), in bytes: writable anonymous mappings that
/// start on a 64 MiB boundary (glibc's non-main malloc arenas, which it reserves 64 MiB-aligned; a GC region that
/// happens to start on one is counted too), the main malloc heap (<c>[heap]</c>), JIT code (the double-mapped
/// memfd), the remaining anonymous memory (GC heap, index, stacks, mmapped malloc chunks) and the total RSS.
/// </summary>
public sealed record ProcessMemory(long Rss, long ArenaLike, int ArenaMaps, long MainHeap, long JitCode, long OtherAnonymous)
{
    private const ulong ArenaAlignment = 64UL << 20;

    /// <summary>Reads /proc/<paramref name="pid"/>/smaps (this process when null); null where it cannot be read.</summary>
    public static ProcessMemory? Read(int? pid = null)
    {
        try
        {
            return Parse(File.ReadLines(pid is { } p ? $"/proc/{p}/smaps" : "/proc/self/smaps"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Sums smaps lines (a mapping header, then its fields); lines it does not know are skipped.</summary>
    public static ProcessMemory Parse(IEnumerable<string> smaps)
    {
        ArgumentNullException.ThrowIfNull(smaps);
        long rss = 0, arenas = 0, heap = 0, code = 0, anon = 0;
        var arenaMaps = 0;
        var name = string.Empty;
        var start = 0UL;
        var writable = false;
        foreach (var line in smaps)
        {
            var span = line.AsSpan();
            var dash = span.IndexOf('-');
            var space = span.IndexOf(' ');
            if (dash > 0 && space > dash && char.IsAsciiHexDigit(span[0]) && ulong.TryParse(span[..dash], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var s))
            {
                // "start-end perms offset dev inode [name]"
                start = s;
                var rest = span[(space + 1)..];
                writable = rest.StartsWith("rw");
                name = string.Empty;
                for (var field = 0; field < 4 && rest.Length > 0; field++)
                {
                    var next = rest.IndexOf(' ');
                    rest = next < 0 ? [] : rest[(next + 1)..].TrimStart(' ');
                }

                name = rest.Trim().ToString();
            }
            else if (span.StartsWith("Rss:") && long.TryParse(span[4..].Trim().TrimEnd("kB").Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var kb))
            {
                var bytes = kb * 1024;
                rss += bytes;
                if (name.Length == 0 && writable && start % ArenaAlignment == 0 && bytes > 0)
                {
                    arenas += bytes;
                    arenaMaps++;
                }
                else if (name == "[heap]")
                {
                    heap += bytes;
                }
                else if (name.Contains("doublemapper", StringComparison.Ordinal))
                {
                    code += bytes;
                }
                else if (name.Length == 0)
                {
                    anon += bytes;
                }
            }
        }

        return new ProcessMemory(rss, arenas, arenaMaps, heap, code, anon);
    }

    /// <summary>"arena-like 24 MiB in 3 maps, main heap 2, JIT code 36, other anonymous 125" (MiB).</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"arena-like {ArenaLike / 1048576.0:F0} MiB in {ArenaMaps} maps, main heap {MainHeap / 1048576.0:F0}, JIT code {JitCode / 1048576.0:F0}, other anonymous {OtherAnonymous / 1048576.0:F0}");
}
