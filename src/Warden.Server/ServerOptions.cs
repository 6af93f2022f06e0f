using Warden.Core.Imaging;

using Warden.Review;

namespace Warden.Server;

/// <summary>
/// Settings of <c>warden serve</c>, bound from the <c>Warden</c> configuration section (appsettings.json,
/// environment variables <c>Warden__MaxUploadBytes=…</c>) and overridden by command-line flags.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>SQLite file path (default <c>warden.db</c>) or a PostgreSQL connection string.</summary>
    public string Database { get; set; } = "warden.db";

    /// <summary>
    /// The signal types this server hashes, imports and matches: the built-ins by default; a host adds plug-in
    /// types by passing a registry of its own (SignalTypeRegistry.CreateDefault().Register(…)).
    /// </summary>
    public Warden.Core.Signals.SignalTypeRegistry SignalTypes { get; set; } = Warden.Core.Signals.SignalTypeRegistry.Default;

    /// <summary>
    /// The list formats this server imports and exports: the built-ins by default; a host adds plug-in formats by
    /// passing a registry of its own (ListFormatRegistry.CreateDefault().Register(…)).
    /// </summary>
    public Warden.Core.Banks.Formats.ListFormatRegistry ListFormats { get; set; } = Warden.Core.Banks.Formats.ListFormatRegistry.Default;

    /// <summary>Largest accepted upload body (bytes). Uploads are held in memory only, never on disk.</summary>
    public long MaxUploadBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Largest decoded image (pixels).</summary>
    public long MaxImagePixels { get; set; } = ImageLimits.Default.MaxPixels;

    /// <summary>Wall-clock limit of one request (seconds).</summary>
    public double RequestTimeoutSeconds { get; set; } = 30;

    /// <summary>Requests per second allowed per API key (token bucket; bursts up to twice this).</summary>
    public int RateLimitPerSecond { get; set; } = 2000;

    /// <summary>Most requests hashing at once; the rest wait in a queue (bounded) rather than thrash the CPU.</summary>
    public int MaxConcurrentHashing { get; set; } = Environment.ProcessorCount * 2;

    /// <summary>How often the live index polls storage for changed entries and banks (milliseconds).</summary>
    public int IndexPollMilliseconds { get; set; } = 500;

    /// <summary>How often the webhook deliverer looks for due deliveries (milliseconds).</summary>
    public int WebhookPollMilliseconds { get; set; } = 500;

    /// <summary>Timeout of one webhook POST (seconds).</summary>
    public double WebhookTimeoutSeconds { get; set; } = 10;

    /// <summary>Attempts before a delivery is given up (marked dead, visible in the API and metrics).</summary>
    public int WebhookMaxAttempts { get; set; } = 15;

    /// <summary>Flood control window (seconds): matches of one entry are counted over this window.</summary>
    public int FloodWindowSeconds { get; set; } = 600;

    /// <summary>An entry is never flood-quarantined below this many matches in a window.</summary>
    public int FloodMinMatches { get; set; } = 100;

    /// <summary>An entry is flood-quarantined when a window's matches exceed its baseline by this factor.</summary>
    public double FloodFactor { get; set; } = 10;

    /// <summary>Videos: <c>exact</c> (Meta's vPDQ sampling, bit-exact) or <c>fast</c> (keyframes; many times faster).</summary>
    public string VideoMode { get; set; } = "exact";

    /// <summary>Longest video accepted (seconds of decoded frames; a declared duration can lie).</summary>
    public double MaxVideoSeconds { get; set; } = 3600;

    /// <summary>Videos hashed at once (each runs an ffmpeg process); the rest wait.</summary>
    public int MaxConcurrentVideos { get; set; } = Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>
    /// glibc malloc arenas at most (<c>mallopt(M_ARENA_MAX)</c>, set at start; 0 leaves glibc's 8 × cores): fewer
    /// arenas hold fewer freed decode buffers resident. Ignored off glibc. See docs/operations.md (Memory).
    /// </summary>
    public int MallocArenaMax { get; set; } = 2;

    /// <summary>
    /// Size (bytes) from which glibc's malloc maps a buffer of its own, returned to the system on free
    /// (<c>mallopt(M_MMAP_THRESHOLD)</c>, set at start; the trim threshold is set to twice it). Setting it turns off
    /// glibc's dynamic threshold, which rises to the largest freed buffer (up to 32 MiB), after which decoded pixel
    /// buffers (PNG, WebP, GIF, TIFF, libvips JPEG) fill and fragment the arenas and the RSS creeps up. 0 leaves the
    /// dynamic rule. A mapped buffer's pages are faulted in afresh on every decode (CPU: see docs/operations.md,
    /// Memory). Ignored off glibc.
    /// </summary>
    public int MallocMmapThreshold { get; set; } = 128 * 1024;

    /// <summary>
    /// Thread-pool threads kept ready (worker threads; 0 leaves .NET's default of one per core). Case intake and
    /// match recording make synchronous database calls, so a database that stalls for a moment (a checkpoint, a
    /// lock) blocks those threads, and with one thread per core the pool starves and adds threads only slowly:
    /// every request waits. Hashing stays bounded by <see cref="MaxConcurrentHashing"/>, so spare threads do not
    /// oversubscribe the CPU.
    /// </summary>
    public int MinThreads { get; set; } = Math.Max(16, Environment.ProcessorCount * 4);

    /// <summary>
    /// Kestrel's socket transport waits for data with a zero-byte read before it takes a receive buffer (.NET's
    /// default, true). False reads straight into a buffer: an upload of ~91 KiB arrives in 4 KiB blocks, and each
    /// block otherwise costs a second receive call; an idle keep-alive connection then holds one 4 KiB block.
    /// </summary>
    public bool SocketWaitForData { get; set; }

    /// <summary>
    /// Size of Kestrel's memory-pool blocks, which is also the most one socket receive takes (bytes; 0 = Kestrel's own
    /// 4 KiB pool). 32 KiB reads a ~91 KiB upload in ~3 receives instead of ~23; each idle keep-alive connection holds
    /// one block. Values between 1 and 4,095 are raised to 4 KiB, values over 1 MiB lowered to it.
    /// </summary>
    public int ReceiveBlockBytes { get; set; } = 32 * 1024;

    /// <summary>How often free native heap pages are returned to the system (<c>malloc_trim</c>, seconds; 0 = never).</summary>
    public int NativeHeapTrimSeconds { get; set; } = 30;

    /// <summary>Largest model file accepted as an upload (held in memory, never on disk); larger ones are scanned by path.</summary>
    public long MaxModelUploadBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>Folders under which admins may have model files scanned by path (empty: scanning by path is off).</summary>
    public IList<string> ModelScanRoots { get; } = [];

    /// <summary>Serve the OpenAPI document and the API reference page without a key (they hold no data).</summary>
    public bool PublicDocs { get; set; } = true;

    /// <summary>Where HMA-style <c>?url=</c> requests may fetch from: <c>host</c> (the scheme's default port only) or <c>host:port</c> entries (empty: URL fetching is off).</summary>
    public IList<string> AllowedFetchHosts { get; } = [];

    /// <summary>Largest remote file fetched for <c>?url=</c> (bytes).</summary>
    public long MaxRemoteFileBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>Keep the signals and context of every matched upload (never the media) for retroactive matching (docs/operations.md).</summary>
    public bool SignalLog { get; set; }

    /// <summary>Days the signal log keeps an upload (whole days are dropped).</summary>
    public int SignalLogRetentionDays { get; set; } = Storage.SignalLog.DefaultRetentionDays;

    /// <summary>How often new bank entries are searched against the signal log.</summary>
    public int RetroactivePollMilliseconds { get; set; } = 2000;

    /// <summary>
    /// A retroactive delta (one page of the change feed, up to 10,000 entries) of at least this many entries is fanned
    /// out over the backfill workers (`warden worker`, one task per log unit) instead of searched here; 0 (default): never.
    /// Turn it on only where workers run.
    /// </summary>
    public int RetroactiveFanOutEntries { get; set; }

    /// <summary>Compute TMK+PDQF for every matched video so the signal log keeps it for retroactive TMK search (costs a second video pass).</summary>
    public bool SignalLogTmk { get; set; }

    /// <summary>
    /// The HMA-compatibility listener (off by default): URLs (<c>http://127.0.0.1:PORT</c>, several separated by ';',
    /// each with an explicit port) where HMA clients that send no credentials (ROOST Coop) are served HMA's routes
    /// only, acting as <see cref="HmaIdentity"/> with <see cref="HmaRole"/>. Bind it to an address only they reach.
    /// </summary>
    public string? HmaUrls { get; set; }

    /// <summary>The role requests on the HMA listener act with: submitter, curator (HMA's whole API) or reviewer.</summary>
    public string HmaRole { get; set; } = "curator";

    /// <summary>The name requests on the HMA listener act as (in logs and the audit log).</summary>
    public string HmaIdentity { get; set; } = "hma-listener";

    /// <summary>Review console, evidence preservation and reporting (section <c>Warden:Review</c>).</summary>
    public ReviewOptions Review { get; set; } = new();

    internal ImageLimits ImageLimits => ImageLimits.Default with { MaxPixels = MaxImagePixels, MaxBytes = MaxUploadBytes };
}
