using System.Runtime.InteropServices;

namespace Warden.Core.Runtime;

/// <summary>
/// glibc's malloc tunables, for the native heap of the image decoders (libvips, libjpeg, libspng, libwebp, which
/// allocate pixel buffers with <c>malloc</c>). Looked up at run time in libc.so.6: on musl, another OS, or with
/// another allocator preloaded (jemalloc, mimalloc export <c>mallopt</c> as a stub or not at all) the functions are
/// absent or not glibc's, and every call here does nothing and says so (false / null).
/// </summary>
public static class GlibcMalloc
{
    // glibc malloc.h
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;
    private const int MArenaMax = -8;

    /// <summary>glibc's ceiling for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX: 4 × 1024 × 1024 × sizeof(long)).</summary>
    public const int MaxMmapThreshold = 32 * 1024 * 1024;

    private static readonly Lazy<Exports> Libc = new(Load);

    /// <summary>True where glibc's malloc (mallopt, malloc_trim, mallinfo2) is the allocator here.</summary>
    public static bool Available => Libc.Value.Trim != 0;

    /// <summary>
    /// Caps the malloc arenas; call before the process's threads start (arenas are made on demand, so a cap set
    /// later still bounds the ones made after it). <paramref name="max"/> ≤ 0 leaves glibc's default (8 × cores).
    /// </summary>
    public static bool CapArenas(int max) => max > 0 && Set(MArenaMax, max);

    /// <summary>
    /// Fixes the size from which <c>malloc</c> maps a buffer of its own (returned to the system by <c>free</c>)
    /// instead of carving it from an arena. Setting it at all turns off glibc's dynamic threshold, which after the
    /// first large buffer is freed rises to that buffer's size (up to 32 MiB), after which every decode buffer below
    /// it is served from the arenas, fragments them, and stays resident after <c>free</c>. It also fixes the trim
    /// threshold to twice this (as glibc's dynamic rule would). <paramref name="bytes"/> ≤ 0 leaves glibc's dynamic
    /// default; larger than <see cref="MaxMmapThreshold"/> is refused (glibc ignores it).
    /// </summary>
    public static bool SetMmapThreshold(int bytes) =>
        bytes > 0 && bytes <= MaxMmapThreshold && Set(MMmapThreshold, bytes) && Set(MTrimThreshold, bytes <= int.MaxValue / 2 ? bytes * 2 : int.MaxValue);

    /// <summary>Returns free pages of every arena to the system (<c>malloc_trim(0)</c>); false where unsupported.</summary>
    public static unsafe bool Trim()
    {
        if (Libc.Value.Trim == 0)
        {
            return false;
        }

        _ = ((delegate* unmanaged<nuint, int>)Libc.Value.Trim)(0);
        return true;
    }

    /// <summary>What malloc holds, summed over every arena (<c>mallinfo2</c>, glibc ≥ 2.33); null where unsupported.</summary>
    public static unsafe MallocInfo? Info()
    {
        if (Libc.Value.Info == 0)
        {
            return null;
        }

        var m = ((delegate* unmanaged<Mallinfo2>)Libc.Value.Info)();
        return new MallocInfo((long)m.Arena, (long)m.Hblkhd, (long)m.Hblks, (long)m.Uordblks, (long)m.Fordblks, (long)m.Keepcost);
    }

    private static unsafe bool Set(int param, int value) =>
        Libc.Value.Opt != 0 && ((delegate* unmanaged<int, int, int>)Libc.Value.Opt)(param, value) == 1;

    private static Exports Load()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc))
        {
            return default;
        }

        // mallopt and malloc_trim both, or neither: a libc.so.6 without malloc_trim is not glibc.
        if (!NativeLibrary.TryGetExport(libc, "mallopt", out var opt) || !NativeLibrary.TryGetExport(libc, "malloc_trim", out var trim))
        {
            return default;
        }

        return new Exports(opt, trim, NativeLibrary.TryGetExport(libc, "mallinfo2", out var info) ? info : 0);
    }

    private readonly record struct Exports(nint Opt, nint Trim, nint Info);

    [StructLayout(LayoutKind.Sequential)]
    private readonly struct Mallinfo2
    {
        public readonly nuint Arena;    // non-mmapped space from the system (all arenas)
        public readonly nuint Ordblks;  // free chunks
        public readonly nuint Smblks;   // free fastbin chunks
        public readonly nuint Hblks;    // mmapped chunks
        public readonly nuint Hblkhd;   // bytes in mmapped chunks
        public readonly nuint Usmblks;
        public readonly nuint Fsmblks;
        public readonly nuint Uordblks; // bytes in use
        public readonly nuint Fordblks; // bytes free (held by the arenas)
        public readonly nuint Keepcost; // releasable at the top of the main arena
    }
}

/// <summary>
/// What glibc malloc holds (bytes): <paramref name="Arena"/> taken from the system for the arenas, of which
/// <paramref name="InUse"/> is live and <paramref name="Free"/> freed but kept; <paramref name="Mapped"/> in
/// <paramref name="MappedChunks"/> buffers mapped on their own (returned on free).
/// </summary>
public sealed record MallocInfo(long Arena, long Mapped, long MappedChunks, long InUse, long Free, long TopReleasable);
