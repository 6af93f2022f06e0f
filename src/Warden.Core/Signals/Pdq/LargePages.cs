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
    private const int MadvHugepage = 14;
    private const nuint HugePage = 2 << 20;

    /// <summary>Blobs at least this large get 2 MiB alignment and the hint; smaller ones stay cache-line aligned.</summary>
    private const long Threshold = 4 << 20;

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

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
