using System.Runtime.InteropServices;

namespace Warden.Server.Tests;

/// <summary>
/// The native heap stays at what is live: memory freed by decoding threads (holes in glibc's arenas that
/// free() keeps resident) is returned by the trim, whichever threads and arenas held it, and the server runs
/// the trim and the thread-pool floor it is configured with.
/// </summary>
public sealed class NativeHeapTests
{
    private const int Chunk = 64 * 1024; // below glibc's mmap threshold: served from an arena, kept after free

    private static unsafe nint Alloc(int i)
    {
        var p = NativeMemory.Alloc(Chunk);
        NativeMemory.Fill(p, Chunk, (byte)(i | 1)); // touched, so resident
        return (nint)p;
    }

    private static unsafe void Free(nint p) => NativeMemory.Free((void*)p);

    /// <summary>
    /// Allocates <paramref name="chunks"/> touched chunks on the calling thread, frees every other one (holes
    /// that free() cannot give back: live chunks sit above them) and returns the ones still live.
    /// </summary>
    private static List<nint> Holes(int chunks)
    {
        var all = new List<nint>(chunks);
        for (var i = 0; i < chunks; i++)
        {
            all.Add(Alloc(i));
        }

        var live = new List<nint>(chunks / 2);
        for (var i = 0; i < all.Count; i++)
        {
            if (i % 2 == 0)
            {
                Free(all[i]);
            }
            else
            {
                live.Add(all[i]);
            }
        }

        return live;
    }

    [SkippableTheory]
    [InlineData(1, 512)]
    [InlineData(4, 256)]
    [InlineData(8, 128)]
    public void Trim_returns_freed_pages_of_every_threads_arena(int threads, int chunksPerThread)
    {
        Skip.IfNot(NativeHeap.Available, "glibc's malloc_trim is not available here (not Linux with glibc)");
        var live = new List<nint>[threads];

        // Separate threads, as the server's decoding threads: each may bind its own arena.
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() => live[t] = Holes(chunksPerThread))).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        try
        {
            var freed = (long)threads * (chunksPerThread / 2) * Chunk;
            var released = NativeHeap.Trim();
            Assert.NotNull(released);

            // Whole pages inside each hole come back; other tests in this process allocate meanwhile, so a margin.
            Assert.True(released >= freed / 2, $"trim released {released / 1048576.0:F1} MiB of {freed / 1048576.0:F1} MiB freed");
        }
        finally
        {
            foreach (var p in live.SelectMany(l => l))
            {
                Free(p);
            }
        }
    }

    [SkippableFact]
    public void Arena_cap_is_accepted_by_glibc_and_zero_leaves_the_default()
    {
        Skip.IfNot(NativeHeap.Available, "glibc's mallopt is not available here (not Linux with glibc)");
        Assert.True(NativeHeap.CapArenas(2));
        Assert.False(NativeHeap.CapArenas(0));
        Assert.False(NativeHeap.CapArenas(-1));
    }

    [SkippableFact]
    public async Task Server_trims_the_native_heap_at_its_interval()
    {
        Skip.IfNot(NativeHeap.Available, "glibc's malloc_trim is not available here (not Linux with glibc)");
        await using var server = await TestServer.StartAsync(Warden.Storage.SqlDialect.Sqlite, o => o.NativeHeapTrimSeconds = 1);
        using var client = server.Client(Warden.Server.Auth.Role.Admin);
        static async Task<double> Trimmed(HttpClient c)
        {
            var text = await c.GetStringAsync(new Uri("metrics", UriKind.Relative));
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("warden_native_heap_trimmed_bytes_total ", StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.AsSpan(line.LastIndexOf(' ') + 1), System.Globalization.CultureInfo.InvariantCulture);
        }

        var before = await Trimmed(client);
        var live = Holes(512); // 16 MiB freed in holes, as a burst of decodes leaves them
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (await Trimmed(client) - before < 4 * 1048576 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }

            Assert.True(await Trimmed(client) - before >= 4 * 1048576, "the server's trim did not return the freed pages");
        }
        finally
        {
            foreach (var p in live)
            {
                Free(p);
            }
        }
    }

    [Theory]
    [InlineData(24)]
    [InlineData(40)]
    public async Task Server_raises_the_thread_pool_floor_never_lowers_it(int minThreads)
    {
        ThreadPool.GetMinThreads(out var before, out _);
        await using (await TestServer.StartAsync(Warden.Storage.SqlDialect.Sqlite, o => o.MinThreads = minThreads))
        {
            ThreadPool.GetMinThreads(out var now, out _);
            Assert.True(now >= Math.Max(before, minThreads), $"min worker threads {now}, asked {minThreads}, was {before}");
        }

        // A lower setting never lowers what the process already has.
        await using (await TestServer.StartAsync(Warden.Storage.SqlDialect.Sqlite, o => o.MinThreads = 1))
        {
            ThreadPool.GetMinThreads(out var now, out _);
            Assert.True(now >= Math.Max(before, minThreads));
        }
    }
}
