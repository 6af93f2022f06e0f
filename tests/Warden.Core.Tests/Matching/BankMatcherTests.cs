using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Signals;

namespace Warden.Core.Tests.Matching;

public sealed class BankMatcherTests
{
    private static readonly Bank Block = new(1, "block", BankKind.BlockList, true, new Dictionary<string, int> { ["pdq"] = 20 }, null, DateTimeOffset.UnixEpoch);
    private static readonly Bank Allow = new(2, "allow", BankKind.AllowList, true, null, null, DateTimeOffset.UnixEpoch);
    private static readonly Bank Off = new(3, "off", BankKind.BlockList, false, null, null, DateTimeOffset.UnixEpoch);

    private static PdqHash Hash(int seed)
    {
        var random = new Random(seed);
        return new PdqHash((ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64(), (ulong)random.NextInt64());
    }

    // Flips the low `bits` bits of the first word.
    private static PdqHash Flip(PdqHash hash, int bits) => hash with { W0 = hash.W0 ^ ((1UL << bits) - 1) };

    [Fact]
    public void MatchSignal_finds_pdq_within_the_bank_threshold_and_exact_types_by_equality()
    {
        using var matcher = new BankMatcher([Block, Allow, Off]);
        var pdq = Hash(1);
        Assert.True(matcher.Add(10, Block.Id, "pdq", pdq.ToString()));
        Assert.True(matcher.Add(11, Block.Id, "civitai_autov2", "abcdef0123"));
        Assert.False(matcher.Add(12, Off.Id, "pdq", pdq.ToString()));
        Assert.Equal(2, matcher.Count);

        var near = matcher.MatchSignal("pdq", Flip(pdq, 20).ToString());
        var hit = Assert.Single(near);
        Assert.Equal((10L, 20, false), (hit.EntryId, hit.Distance, hit.Suppressed));
        Assert.Empty(matcher.MatchSignal("pdq", Flip(pdq, 21).ToString()));

        Assert.Equal(11L, Assert.Single(matcher.MatchSignal("civitai_autov2", "abcdef0123")).EntryId);
        Assert.Empty(matcher.MatchSignal("civitai_autov2", "abcdef0124"));
        Assert.Empty(matcher.MatchSignal("no_such_type", "x"));
    }

    [Fact]
    public void An_allow_list_hit_suppresses_block_hits_of_the_same_signal()
    {
        using var matcher = new BankMatcher([Block, Allow]);
        matcher.Add(1, Block.Id, "md5", new string('a', 32));
        matcher.Add(2, Allow.Id, "md5", new string('a', 32));
        var hits = matcher.MatchSignal("md5", new string('a', 32));
        Assert.Equal(2, hits.Count);
        Assert.True(hits.Single(h => h.Bank.Id == Block.Id).Suppressed);
        Assert.False(hits.Single(h => h.Bank.Id == Allow.Id).Suppressed);
    }

    [Fact]
    public void Remove_takes_an_entry_out_of_every_later_match()
    {
        using var matcher = new BankMatcher([Block]);
        var pdq = Hash(2);
        matcher.Add(5, Block.Id, "pdq", pdq.ToString());
        matcher.Add(6, Block.Id, "sha256", new string('b', 64));
        Assert.True(matcher.Remove(5, Block.Id, "pdq"));
        Assert.True(matcher.Remove(6, Block.Id, "sha256"));
        Assert.False(matcher.Remove(6, Block.Id, "sha256"));
        Assert.Equal(0, matcher.Count);
        Assert.Empty(matcher.MatchSignal("pdq", pdq.ToString()));
        Assert.Empty(matcher.MatchSignal("sha256", new string('b', 64)));
    }

    [Fact]
    public void Every_exact_signal_type_survives_save_and_load()
    {
        var dir = Path.Combine(Path.GetTempPath(), "warden-matcher-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var matcher = new BankMatcher([Block]))
            {
                var id = 1L;
                foreach (var type in SignalTypes.Exact)
                {
                    Assert.True(matcher.Add(id++, Block.Id, type.Name, new string('c', type.Bytes * 2)));
                }

                matcher.Save(dir);
            }

            using var loaded = BankMatcher.Load(dir, [Block]);
            Assert.Equal(SignalTypes.Exact.Count, loaded.Count);
            foreach (var type in SignalTypes.Exact)
            {
                Assert.Single(loaded.MatchSignal(type.Name, new string('c', type.Bytes * 2)));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
