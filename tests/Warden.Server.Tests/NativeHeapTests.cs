using System.Runtime.InteropServices;
using Warden.Core.Runtime;

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

    /// <summary>
    /// The class of the soak's growth: once a large buffer has been freed, glibc's dynamic threshold would serve every
    /// later buffer below its size from the arenas. With the threshold fixed, buffers of any size above it (decoded
    /// images of every format and size) are mapped on their own, and freeing them gives the pages straight back.
    /// </summary>
    [SkippableTheory]
    [InlineData(256 * 1024)]
    [InlineData(921_600)] // a 640x480 RGB decode
    [InlineData(3 * 1024 * 1024)]
    [InlineData(9_437_184)] // a 2048x1536 RGB decode
    public unsafe void Fixed_mmap_threshold_keeps_large_buffers_out_of_the_arenas(int size)
    {
        Skip.IfNot(GlibcMalloc.Available && GlibcMalloc.Info() is not null, "glibc's mallopt/mallinfo2 are not available here (not Linux with glibc ≥ 2.33)");
        Assert.True(GlibcMalloc.SetMmapThreshold(128 * 1024));

        // What raised the dynamic threshold in the server: a larger buffer freed first.
        var big = NativeMemory.Alloc(16 * 1024 * 1024);
        NativeMemory.Free(big);

        var before = GlibcMalloc.Info()!;

        // The threshold is consulted only when no free arena chunk fits: in a test process whose other tests left
        // free space in the arenas, a smaller buffer is (rightly) served from it. A buffer larger than all the free
        // space cannot be, so it shows which way the threshold sends it.
        size = (int)Math.Max(size, before.Free + 4096);
        Skip.If(size > 48 * 1024 * 1024, $"this process's arenas hold {before.Free >> 20} MiB free; a buffer larger than that is too big for this test");
        var rssBefore = ProcessMemory.Read()!.Rss;
        var buffers = new nint[Math.Clamp(32 * 1024 * 1024 / size, 2, 64)];
        var total = (long)buffers.Length * size;
        for (var i = 0; i < buffers.Length; i++)
        {
            var p = NativeMemory.Alloc((nuint)size);
            NativeMemory.Fill(p, (nuint)size, 7);
            buffers[i] = (nint)p;
        }

        var held = GlibcMalloc.Info()!;
        foreach (var p in buffers)
        {
            NativeMemory.Free((void*)p);
        }

        var after = GlibcMalloc.Info()!;

        // Each buffer was a mapping of its own (other tests' threads allocate meanwhile, so at least, not exactly).
        Assert.True(held.MappedChunks - before.MappedChunks >= buffers.Length - 1, $"mapped chunks {before.MappedChunks} -> {held.MappedChunks}");
        Assert.True(held.Mapped - before.Mapped >= (long)(buffers.Length - 1) * size, $"mapped {before.Mapped} -> {held.Mapped}");

        // Freed, they are unmapped, not kept as free arena space.
        // Other tests' threads allocate and free meanwhile, so a margin of half of what was freed.
        Assert.True(after.Free - before.Free < total / 2, $"arena free grew {before.Free} -> {after.Free} after freeing {total} bytes of {size}-byte buffers");
        Assert.True(ProcessMemory.Read()!.Rss - rssBefore < total / 2, "freed buffers stayed resident");
    }

    [SkippableFact]
    public void Mmap_threshold_outside_glibcs_range_is_refused()
    {
        Skip.IfNot(GlibcMalloc.Available, "glibc's mallopt is not available here (not Linux with glibc)");
        Assert.False(GlibcMalloc.SetMmapThreshold(0));
        Assert.False(GlibcMalloc.SetMmapThreshold(-1));
        Assert.False(GlibcMalloc.SetMmapThreshold(GlibcMalloc.MaxMmapThreshold + 1));
        Assert.True(GlibcMalloc.SetMmapThreshold(128 * 1024));
    }

    [SkippableFact]
    public async Task Server_reports_what_malloc_holds()
    {
        Skip.IfNot(GlibcMalloc.Info() is not null, "glibc's mallinfo2 is not available here (not Linux with glibc ≥ 2.33)");
        await using var server = await TestServer.StartAsync(Warden.Storage.SqlDialect.Sqlite);
        using var client = server.Client(Warden.Server.Auth.Role.Admin);
        var text = await client.GetStringAsync(new Uri("metrics", UriKind.Relative));
        foreach (var state in new[] { "arena_in_use", "arena_free", "mapped" })
        {
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith($"warden_native_heap_bytes{{state=\"{state}\"}} ", StringComparison.Ordinal));
            Assert.NotNull(line);
            Assert.True(double.Parse(line.AsSpan(line.LastIndexOf(' ') + 1), System.Globalization.CultureInfo.InvariantCulture) >= 0);
        }

        // Something is in use: the runtime itself mallocs.
        var inUse = text.Split('\n').First(l => l.StartsWith("warden_native_heap_bytes{state=\"arena_in_use\"} ", StringComparison.Ordinal));
        Assert.True(double.Parse(inUse.AsSpan(inUse.LastIndexOf(' ') + 1), System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public void Smaps_are_read_for_this_process_and_add_up()
    {
        var m = ProcessMemory.Read();
        Assert.NotNull(m);
        Assert.True(m.Rss > 0);
        Assert.True(m.ArenaLike + m.MainHeap + m.JitCode + m.OtherAnonymous <= m.Rss);
    }

    /// <summary>Random smaps text (with garbage and truncated lines): the parse never throws and counts by the rules.</summary>
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public void Smaps_parse_classifies_mappings_and_skips_garbage(FsCheck.NonNegativeInt[] kbs, byte[] kinds, string[] garbage)
    {
        var lines = new List<string>();
        long rss = 0, arena = 0, heap = 0, code = 0, anon = 0;
        var maps = 0;
        for (var i = 0; i < kbs.Length; i++)
        {
            var kb = kbs[i].Get % 100000;
            var kind = kinds is { Length: > 0 } ? kinds[i % kinds.Length] % 5 : 0;
            var start = kind == 0 ? (ulong)(i + 1) << 26 : ((ulong)(i + 1) << 26) + 0x1000;
            var (perms, name) = kind switch
            {
                0 => ("rw-p", string.Empty),
                1 => ("rw-p", "[heap]"),
                2 => ("r-xs", "/memfd:doublemapper (deleted)"),
                3 => ("rw-p", string.Empty),
                _ => ("r--p", "/usr/lib/libc.so.6"),
            };
            lines.Add($"{start:x}-{start + 0x1000:x} {perms} 00000000 00:00 0          {name}");
            lines.Add("Size:               4 kB");
            lines.Add($"Rss:            {kb} kB");
            if (garbage is { Length: > 0 })
            {
                lines.Add(garbage[i % garbage.Length] ?? string.Empty);
            }

            var bytes = kb * 1024L;
            rss += bytes;
            switch (kind)
            {
                case 0 when bytes > 0: arena += bytes; maps++; break;
                case 0 or 3: anon += bytes; break;
                case 1: heap += bytes; break;
                case 2: code += bytes; break;
            }
        }

        // Garbage that happens to look like a header or an Rss line is part of the input's meaning; skip those cases.
        if (garbage is not null && garbage.Any(g => g is not null && (g.StartsWith("Rss:", StringComparison.Ordinal) || (g.Contains('-') && g.Contains(' ')))))
        {
            _ = ProcessMemory.Parse(lines);
            return;
        }

        var m = ProcessMemory.Parse(lines);
        Assert.Equal(new ProcessMemory(rss, arena, maps, heap, code, anon), m);
    }
}
