using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Warden.Server;

/// <summary>
/// Keeps the native (C) heap's resident size at what is live. Image decoding (libvips, libjpeg) allocates
/// its pixel buffers with malloc, and glibc keeps what is freed: each thread that decodes binds to one of up
/// to 8 × cores malloc arenas, and after the first large buffer is freed glibc raises its mmap threshold, so
/// later buffers come from the arenas and stay resident after free. The RSS then rises in steps, each time a
/// burst (a latency spike, more requests in flight) spreads decoding over more threads and arenas, and never
/// comes back, although nothing is leaked. So the server caps the arenas at start (<c>mallopt(M_ARENA_MAX)</c>:
/// decoding is limited to a few concurrent uploads, so a few arenas do not contend) and returns free pages to
/// the system at intervals (<c>malloc_trim(0)</c>, which walks every arena). glibc only: on musl or another
/// OS the functions are absent and this does nothing.
/// </summary>
internal sealed partial class NativeHeap(ServerOptions options, ILogger<NativeHeap> log) : BackgroundService
{
    private const int MArenaMax = -8; // glibc malloc.h

    private static readonly Counter Trimmed = Prometheus.Metrics.CreateCounter("warden_native_heap_trimmed_bytes_total", "Resident bytes returned to the system by malloc_trim (free native heap pages).");

    private static readonly Lazy<(nint Opt, nint Trim)> Libc = new(Load);

    /// <summary>True where glibc's malloc_trim is available (Linux with glibc).</summary>
    public static bool Available => Libc.Value.Trim != 0;

    /// <summary>
    /// Caps glibc's malloc arenas; call before the server's threads start (arenas are made on demand, so a cap set
    /// later still bounds the ones made after it). <paramref name="max"/> ≤ 0 leaves glibc's default.
    /// </summary>
    public static unsafe bool CapArenas(int max) => max > 0 && Libc.Value.Opt != 0 && ((delegate* unmanaged<int, int, int>)Libc.Value.Opt)(MArenaMax, max) == 1;

    /// <summary>Returns free native heap pages to the system; the resident bytes released (from /proc), or null where unsupported.</summary>
    public static unsafe long? Trim()
    {
        if (Libc.Value.Trim == 0)
        {
            return null;
        }

        var before = ResidentBytes();
        _ = ((delegate* unmanaged<nuint, int>)Libc.Value.Trim)(0);
        return Math.Max(0, before - ResidentBytes());
    }

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.NativeHeapTrimSeconds <= 0 || !Available)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.NativeHeapTrimSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            // A few milliseconds of one thread per interval; the free pages it walks are not in use by anyone.
            if (Trim() is { } released and > 0)
            {
                Trimmed.Inc(released);
                LogTrimmed(log, released / 1048576.0);
            }
        }
    }

    private static (nint, nint) Load()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc))
        {
            return (0, 0);
        }

        // Both or neither: a libc.so.6 without malloc_trim is not glibc.
        return NativeLibrary.TryGetExport(libc, "mallopt", out var opt) && NativeLibrary.TryGetExport(libc, "malloc_trim", out var trim) ? (opt, trim) : (0, 0);
    }

    private static long ResidentBytes()
    {
        try
        {
            // statm: size resident shared ... in pages.
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "native heap trim returned {MiB:F1} MiB to the system")]
    private static partial void LogTrimmed(ILogger logger, double miB);
}
