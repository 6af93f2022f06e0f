using Warden.Cli;
using Warden.Core.Runtime;

// A backfill worker is a long-running batch process: with dynamic PGO each method is compiled three times (plain,
// instrumented, optimised), and the per-batch code (NATS fetch and ack, the SQLite transaction) runs ~10x less often
// than the per-item code, so its instrumented tier lasted ~600-1,000 items and the JIT thread took ~2 ms CPU per item
// after a 300-item warm-up (docs/performance.md, retroactive matching and backfill). Without PGO tier-up ends within ~100 items and the steady
// per-item CPU is the same. The setting is read only at startup, hence the re-execution (same pid, same arguments);
// an operator's own DOTNET_TieredPGO (or the older COMPlus_TieredPGO) wins.
if (args.FirstOrDefault() == "worker" && Environment.GetEnvironmentVariable("COMPlus_TieredPGO") is null)
{
    ProcessImage.TryReexecWith("DOTNET_TieredPGO", "0");
}

// Batch commands decode through libvips too: a fixed mmap threshold keeps their pixel buffers out of glibc's arenas
// (docs/operations.md, Memory). `serve` sets it from its own options (MallocMmapThreshold).
if (args.FirstOrDefault() != "serve")
{
    GlibcMalloc.SetMmapThreshold(128 * 1024);
}

return WardenCli.Run(args, Console.Out, Console.Error);
