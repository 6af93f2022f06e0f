using Warden.Cli;
using Warden.Core.Runtime;

// Batch commands decode through libvips too: a fixed mmap threshold keeps their pixel buffers out of glibc's arenas
// (docs/operations.md, Memory). `serve` sets it from its own options (MallocMmapThreshold).
if (args.FirstOrDefault() != "serve")
{
    GlibcMalloc.SetMmapThreshold(128 * 1024);
}

return WardenCli.Run(args, Console.Out, Console.Error);
