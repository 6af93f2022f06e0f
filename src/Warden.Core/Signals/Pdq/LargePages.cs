using System.Runtime.InteropServices;

namespace Warden.Core.Matching;

/// <summary>
/// Allocates the big segment blobs 2 MiB-aligned and asks Linux for transparent huge pages on them.
/// </summary>
/// <remarks>
/// Queries touch a few thousand random cache lines spread over hundreds of MiB; with 4 KiB pages nearly every one
/// also misses the TLB (a page walk that itself misses cache, worse under virtualisation). Where THP is
/// "madvise" (a common default) nothing is huge unless asked for. Failure is harmless: the hint is best effort.
/// </remarks>
internal static unsafe partial class LargePages
{
    /// <summary>Blobs at least this large get 2 MiB alignment and the hint; smaller ones stay cache-line aligned.</summary>
    public const long Threshold = 4 << 20;

    private const int MadvDontneed = 4;
    private const int MadvHugepage = 14;
    private const long SmallPage = 4096;
    private const nuint HugePage = 2 << 20;


    public static byte* Alloc(long length)
    {
        if (length < Threshold || !OperatingSystem.IsLinux())
        {
            return (byte*)NativeMemory.AlignedAlloc((nuint)length, 64);
        }

        var p = (byte*)NativeMemory.AlignedAlloc((nuint)length, HugePage);
        try
        {
            _ = Madvise(p, (nuint)length, MadvHugepage);
        }
        catch (DllNotFoundException)
        {
            // No libc to ask (unusual Linux); keep the 4 KiB pages.
        }
        catch (EntryPointNotFoundException)
        {
        }

        return p;
    }

    /// <summary>
    /// Drops the whole pages inside [p, p + length) of a private file mapping from this process (they were
    /// copied elsewhere and are not read again), so a loaded snapshot is not counted twice in RSS. Best effort.
    /// </summary>
    public static void Discard(byte* p, long length)
    {
        var from = ((long)p + SmallPage - 1) & ~(SmallPage - 1);
        var to = ((long)p + length) & ~(SmallPage - 1);
        if (to <= from || !OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = Madvise((void*)from, (nuint)(to - from), MadvDontneed);
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
