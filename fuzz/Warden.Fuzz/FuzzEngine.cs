using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace Warden.Fuzz;

/// <summary>How long and how hard to fuzz one target in process.</summary>
/// <param name="Duration">Wall-clock budget for mutations (the corpus itself always runs whole).</param>
/// <param name="MaxExecutions">Stop after this many mutated executions (0 = no cap).</param>
/// <param name="Seed">Random seed of the mutator (smoke runs are reproducible).</param>
/// <param name="FindingsDirectory">Where crashing/hanging inputs and stack traces are written, or null.</param>
/// <param name="MemoryLimitBytes">RSS, or managed bytes allocated by one input, above which an input is a finding.</param>
public sealed record FuzzOptions(TimeSpan Duration, long MaxExecutions = 0, int Seed = 1, string? FindingsDirectory = null, long MemoryLimitBytes = 1L << 30)
{
    /// <summary>Overrides the target's own hang timeout.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Where inputs that reached new coverage are written (the afl "queue"), or null.</summary>
    public string? QueueDirectory { get; init; }

    /// <summary>Shrink each new crash to a minimal input before saving it.</summary>
    public bool Minimize { get; init; } = true;
}

/// <summary>One finding: a crash (unexpected exception), a hang or a memory blow-up.</summary>
/// <param name="Kind">crash, hang or memory.</param>
/// <param name="Key">Dedup key: exception type and the first Warden frame.</param>
/// <param name="Input">The (minimised) input.</param>
/// <param name="Detail">Exception text or measurement.</param>
public sealed record FuzzFinding(string Kind, string Key, byte[] Input, string Detail);

/// <summary>What a run did.</summary>
public sealed class FuzzResult
{
    /// <summary>The target.</summary>
    public required string Target { get; init; }

    /// <summary>"inproc+coverage" when the assemblies are instrumented, else "inproc".</summary>
    public string Engine { get; set; } = "inproc";

    /// <summary>Executions, corpus included.</summary>
    public long Executions { get; set; }

    /// <summary>Wall-clock seconds.</summary>
    public double Seconds { get; set; }

    /// <summary>Executions per second.</summary>
    public double ExecutionsPerSecond => Seconds > 0 ? Executions / Seconds : 0;

    /// <summary>Unexpected exceptions, every occurrence.</summary>
    public long Crashes { get; set; }

    /// <summary>Inputs over the time limit.</summary>
    public long Hangs { get; set; }

    /// <summary>Inputs over the memory limit.</summary>
    public long MemoryFindings { get; set; }

    /// <summary>Unique findings (by key), with inputs.</summary>
    public List<FuzzFinding> Findings { get; } = [];

    /// <summary>Peak resident set of the process (VmHWM), bytes.</summary>
    public long PeakRssBytes { get; set; }

    /// <summary>Most managed bytes one input allocated.</summary>
    public long MaxAllocatedBytes { get; set; }

    /// <summary>Slowest input, milliseconds.</summary>
    public double SlowestMilliseconds { get; set; }

    /// <summary>Corpus size at the start and the end (coverage-guided runs grow it).</summary>
    public int CorpusStart { get; set; }

    /// <summary>Corpus size at the end.</summary>
    public int CorpusEnd { get; set; }

    /// <summary>Coverage map slots seen (0 when not instrumented).</summary>
    public int Edges { get; set; }

    /// <summary>One line for logs and scripts.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"target={Target} engine={Engine} execs={Executions} seconds={Seconds:F1} exec/s={ExecutionsPerSecond:F0} crashes={Crashes} hangs={Hangs} memory={MemoryFindings} unique={Findings.Count} peak_rss_mb={PeakRssBytes / 1048576.0:F0} max_alloc_mb={MaxAllocatedBytes / 1048576.0:F1} slowest_ms={SlowestMilliseconds:F0} corpus={CorpusStart}->{CorpusEnd} edges={Edges}");
}

/// <summary>
/// The in-process fuzzing loop: runs the corpus, then mutations of it, on one worker thread while a watchdog measures
/// time and memory. Coverage-guided when the Warden assemblies are SharpFuzz-instrumented (see <see cref="Coverage"/>).
/// </summary>
public static class FuzzEngine
{
    /// <summary>Fuzzes <paramref name="target"/> starting from <paramref name="corpus"/>.</summary>
    public static FuzzResult Run(FuzzTarget target, IReadOnlyList<byte[]> corpus, FuzzOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(options);
        var result = new FuzzResult { Target = target.Name, CorpusStart = corpus.Count };
        var state = new LoopState(target, [.. corpus], options, result, log);
        // 1.5 MiB: the stack of a .NET thread-pool thread, where the server parses uploads.
        var worker = new Thread(state.Loop, 1536 * 1024) { IsBackground = true, Name = "fuzz " + target.Name };
        var clock = Stopwatch.StartNew();
        worker.Start();
        var timeout = options.Timeout ?? target.Timeout;
        var lastLog = clock.Elapsed;
        while (!worker.Join(50))
        {
            var started = Volatile.Read(ref state.CurrentStart);
            if (started != 0 && Stopwatch.GetElapsedTime(started) > timeout)
            {
                // The worker cannot be stopped safely: record the hang and leave it running in the background.
                var input = Volatile.Read(ref state.Current) ?? [];
                state.Record(new FuzzFinding("hang", "hang", input, $"no answer after {timeout.TotalSeconds:F0} s"));
                result.Hangs++;
                state.Abandoned = true;
                break;
            }

            var rss = ProcessMemory.CurrentRss();
            if (rss > options.MemoryLimitBytes && !state.RssReported)
            {
                state.RssReported = true;
                result.MemoryFindings++;
                state.Record(new FuzzFinding("memory", "rss", Volatile.Read(ref state.Current) ?? [], $"resident set {rss / 1048576} MiB"));
            }

            if (log is not null && clock.Elapsed - lastLog > TimeSpan.FromSeconds(30))
            {
                lastLog = clock.Elapsed;
                result.Seconds = clock.Elapsed.TotalSeconds;
                log(result.ToString());
            }
        }

        result.Seconds = clock.Elapsed.TotalSeconds;
        result.PeakRssBytes = ProcessMemory.PeakRss();
        result.CorpusEnd = state.Corpus.Count;
        result.Edges = state.Coverage.Edges;
        result.Engine = result.Edges > 0 ? "inproc+coverage" : "inproc";
        return result;
    }

    private sealed class LoopState(FuzzTarget target, List<byte[]> corpus, FuzzOptions options, FuzzResult result, Action<string>? log)
    {
        // Read by the watchdog: the input being run and when it started (Stopwatch ticks; 0 = idle).
        public byte[]? Current;
        public long CurrentStart;
        public volatile bool Abandoned;
        public bool RssReported;

        private readonly HashSet<string> _keys = [];

        public List<byte[]> Corpus { get; } = corpus;

        public Coverage Coverage { get; } = new();

        public void Loop()
        {
            var random = new Random(options.Seed);
            var maxLength = Math.Max(64 * 1024, Corpus.Count == 0 ? 0 : Corpus.Max(c => c.Length) * 2);
            var mutator = new Mutator(random, maxLength);
            var clock = Stopwatch.StartNew();
            foreach (var seed in Corpus.ToArray())
            {
                Execute(seed, keep: false);
            }

            if (Corpus.Count == 0)
            {
                Corpus.Add([]);
            }

            while (!Abandoned && clock.Elapsed < options.Duration && (options.MaxExecutions == 0 || result.Executions < options.MaxExecutions + result.CorpusStart))
            {
                var parent = Corpus[random.Next(Corpus.Count)];
                var other = Corpus[random.Next(Corpus.Count)];
                Execute(mutator.Mutate(parent, other), keep: true);
            }
        }

        private void Execute(byte[] input, bool keep)
        {
            Volatile.Write(ref Current, input);
            Coverage.Reset();
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var start = Stopwatch.GetTimestamp();
            Volatile.Write(ref CurrentStart, start);
            var error = target.Check(input);
            Volatile.Write(ref CurrentStart, 0);
            var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
            if (Abandoned)
            {
                return; // the watchdog already gave up on this run
            }

            result.Executions++;
            result.SlowestMilliseconds = Math.Max(result.SlowestMilliseconds, elapsed);
            result.MaxAllocatedBytes = Math.Max(result.MaxAllocatedBytes, allocated);
            if (error is not null)
            {
                result.Crashes++;
                var key = KeyOf(error);
                if (!_keys.Contains("crash:" + key))
                {
                    var minimal = options.Minimize ? Minimize(input, key) : input;
                    Record(new FuzzFinding("crash", key, minimal, error.ToString()));
                }

                return;
            }

            if (allocated > options.MemoryLimitBytes)
            {
                result.MemoryFindings++;
                Record(new FuzzFinding("memory", "alloc:" + target.Name, input, $"one input allocated {allocated / 1048576} MiB of managed memory"));
            }

            if (Coverage.Collect() && keep)
            {
                Corpus.Add(input);
                if (options.QueueDirectory is { } queue)
                {
                    Directory.CreateDirectory(queue);
                    File.WriteAllBytes(Path.Combine(queue, $"id-{Corpus.Count:D6}-{Hash(input)}"), input);
                }
            }
        }

        public void Record(FuzzFinding finding)
        {
            lock (_keys)
            {
                if (!_keys.Add(finding.Kind + ":" + finding.Key))
                {
                    return; // counted, but one saved input per bug is enough
                }

                result.Findings.Add(finding);
            }

            log?.Invoke($"{finding.Kind.ToUpperInvariant()} in {target.Name}: {finding.Key} ({finding.Input.Length} bytes)");
            if (options.FindingsDirectory is { } dir)
            {
                Directory.CreateDirectory(dir);
                var name = $"{finding.Kind}-{Hash(finding.Input)}";
                File.WriteAllBytes(Path.Combine(dir, name + ".bin"), finding.Input);
                File.WriteAllText(Path.Combine(dir, name + ".txt"), $"{target.Name}\n{finding.Key}\n{finding.Detail}\n");
            }
        }

        // Delta debugging lite: drop blocks (halves down to single bytes) while the same crash reproduces.
        private byte[] Minimize(byte[] input, string key)
        {
            var best = input;
            var budget = 4000;
            for (var block = Math.Max(1, best.Length / 2); block >= 1 && budget > 0; block /= 2)
            {
                for (var at = 0; at + block <= best.Length && budget > 0;)
                {
                    budget--;
                    var candidate = new byte[best.Length - block];
                    best.AsSpan(0, at).CopyTo(candidate);
                    best.AsSpan(at + block).CopyTo(candidate.AsSpan(at));
                    if (target.Check(candidate) is { } e && KeyOf(e) == key)
                    {
                        best = candidate;
                    }
                    else
                    {
                        at += block;
                    }
                }
            }

            return best;
        }
    }

    /// <summary>Exception type and the first frame in Warden's own code: one key per bug, not per input.</summary>
    public static string KeyOf(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var frame = new StackTrace(error, false).GetFrames()
            .Select(f => f.GetMethod())
            .FirstOrDefault(m => m?.DeclaringType?.FullName?.StartsWith("Warden.", StringComparison.Ordinal) == true && m.DeclaringType.Namespace != typeof(FuzzEngine).Namespace);
        return $"{error.GetType().Name} at {frame?.DeclaringType?.FullName}.{frame?.Name}";
    }

    /// <summary>First 12 hex digits of the input's SHA-256 (file names of findings and queue entries).</summary>
    public static string Hash(byte[] input) => Convert.ToHexStringLower(SHA256.HashData(input))[..12];
}
