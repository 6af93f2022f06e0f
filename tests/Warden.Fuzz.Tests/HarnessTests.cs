namespace Warden.Fuzz.Tests;

/// <summary>The harness itself: a fuzzer that cannot see a crash, a hang or a refusal correctly proves nothing.</summary>
public sealed class HarnessTests
{
    private static readonly List<byte[]> Seeds = [[1, 2, 3, 4, 5, 6, 7, 8], [0x41, 0x42]];

    private static readonly byte[] Other = [.. Enumerable.Repeat((byte)9, 100)];

    [Fact]
    public void An_undocumented_exception_is_a_crash_and_is_minimised()
    {
        // Crashes whenever the input holds a 0xFF byte: the minimiser must shrink any such input to that one byte.
        var target = Target(static d =>
        {
            if (d.Contains((byte)0xFF))
            {
                throw new InvalidOperationException("boom");
            }
        });
        var result = FuzzEngine.Run(target, Seeds, new FuzzOptions(TimeSpan.FromSeconds(20), 5000, Seed: 7));

        var crash = Assert.Single(result.Findings);
        Assert.Equal("crash", crash.Kind);
        Assert.StartsWith("InvalidOperationException", crash.Key, StringComparison.Ordinal);
        Assert.Equal([0xFF], crash.Input);
        Assert.True(result.Crashes >= 1);
    }

    [Fact]
    public void A_documented_refusal_is_not_a_crash()
    {
        var target = Target(static d =>
        {
            try
            {
                throw new FormatException("malformed");
            }
            catch (FormatException)
            {
            }
        });
        var result = FuzzEngine.Run(target, Seeds, new FuzzOptions(TimeSpan.FromSeconds(20), 500, Seed: 7));
        Assert.Empty(result.Findings);
        Assert.Equal(502, result.Executions);
    }

    [Fact]
    public void A_slow_input_is_a_hang()
    {
        var target = Target(static d => Thread.Sleep(d.Length > 4 ? Timeout.Infinite : 0)) with { Timeout = TimeSpan.FromMilliseconds(300) };
        var result = FuzzEngine.Run(target, Seeds, new FuzzOptions(TimeSpan.FromSeconds(20), 10, Seed: 7));
        var hang = Assert.Single(result.Findings);
        Assert.Equal("hang", hang.Kind);
        Assert.Equal(1, result.Hangs);
    }

    [Fact]
    public void An_input_allocating_more_than_the_limit_is_a_memory_finding()
    {
        var target = Target(static d => GC.KeepAlive(new byte[d.Length * 1024 * 1024]));
        var result = FuzzEngine.Run(target, Seeds, new FuzzOptions(TimeSpan.FromSeconds(20), 50, Seed: 7, MemoryLimitBytes: 4L << 20));
        // (The process's resident set is over a 4 MiB limit too: that is the second, "rss", finding.)
        var finding = Assert.Single(result.Findings, f => f.Key.StartsWith("alloc:", StringComparison.Ordinal));
        Assert.Equal("memory", finding.Kind);
        Assert.Equal(8, finding.Input.Length); // the first seed over the limit (8 MiB); later ones are counted, not saved
        Assert.True(result.MemoryFindings > 1);
    }

    [Fact]
    public void Mutation_is_deterministic_per_seed_and_bounded()
    {
        static List<byte[]> Run(int seed)
        {
            var m = new Mutator(new Random(seed), 100);
            var input = new byte[60];
            return [.. Enumerable.Range(0, 300).Select(_ => input = m.Mutate(input, Other))];
        }

        var a = Run(3);
        Assert.Equal(a, Run(3));
        Assert.NotEqual(a, Run(4));
        Assert.All(a, x => Assert.InRange(x.Length, 0, 100));
        Assert.True(a.Select(FuzzEngine.Hash).Distinct().Count() > 250, "mutations should rarely repeat");
    }

    private static FuzzTarget Target(Action<byte[]> run) => new("test", "test", "FormatException", run, TimeSpan.FromSeconds(10), []);
}
