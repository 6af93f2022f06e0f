using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using Warden.Core.Runtime;

namespace Warden.Server;

/// <summary>
/// Keeps the native (C) heap's resident size at what is live. The image decoders (libvips and the libraries under
/// it: libjpeg, libspng, libwebp, cgif, libtiff) allocate each upload's pixel buffers with malloc, and glibc by
/// default keeps what is freed: after the first large buffer is freed it raises its mmap threshold to that
/// buffer's size (up to 32 MiB) and the trim threshold to twice that, so every later decode buffer is carved from
/// an arena, the arenas fragment, and the RSS rises in steps that never come back although nothing leaks. So the
/// server, before its threads start: fixes the mmap threshold (<see cref="ServerOptions.MallocMmapThreshold"/>),
/// which turns the dynamic rule off, so decode buffers are mapped on their own and unmapped on free; caps the
/// arenas (<see cref="ServerOptions.MallocArenaMax"/>), which then hold only small allocations; and returns free
/// arena pages at intervals (<c>malloc_trim(0)</c>). glibc only: on musl or with another allocator this does nothing.
/// </summary>
internal sealed partial class NativeHeap(ServerOptions options, ILogger<NativeHeap> log) : BackgroundService
{
    private static readonly Counter Trimmed = Prometheus.Metrics.CreateCounter("warden_native_heap_trimmed_bytes_total", "Resident bytes returned to the system by malloc_trim (free native heap pages).");

    private static readonly Gauge Held = Prometheus.Metrics.CreateGauge(
        "warden_native_heap_bytes",
        "What glibc malloc holds (mallinfo2): arena_in_use and arena_free in its arenas, mapped in buffers mapped on their own.",
        "state");

    static NativeHeap()
    {
        // Read at scrape time: a soak's per-interval line shows the arenas next to the RSS.
        Prometheus.Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            if (GlibcMalloc.Info() is { } m)
            {
                Held.WithLabels("arena_in_use").Set(m.InUse);
                Held.WithLabels("arena_free").Set(m.Free);
                Held.WithLabels("mapped").Set(m.Mapped);
            }
        });
    }

    /// <summary>True where glibc's malloc_trim is available (Linux with glibc).</summary>
    public static bool Available => GlibcMalloc.Available;

    /// <summary>
    /// Applies the malloc settings; call before the server's threads start (arenas are made on demand, so settings
    /// made later still bound the arenas and buffers made after them). Returns what glibc accepted.
    /// </summary>
    public static (bool ArenasCapped, bool ThresholdFixed) Configure(ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return (GlibcMalloc.CapArenas(options.MallocArenaMax), GlibcMalloc.SetMmapThreshold(options.MallocMmapThreshold));
    }

    /// <summary>Caps glibc's malloc arenas; <paramref name="max"/> ≤ 0 leaves glibc's default.</summary>
    public static bool CapArenas(int max) => GlibcMalloc.CapArenas(max);

    /// <summary>Returns free native heap pages to the system; the resident bytes released (from /proc), or null where unsupported.</summary>
    public static long? Trim()
    {
        if (!GlibcMalloc.Available)
        {
            return null;
        }

        var before = ResidentBytes();
        GlibcMalloc.Trim();
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
