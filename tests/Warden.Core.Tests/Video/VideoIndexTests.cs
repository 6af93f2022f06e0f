using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Matching;
using Warden.Core.Signals;

namespace Warden.Core.Tests.Video;

/// <summary>The video index gives the brute-force matcher's numbers, and the bank matcher keeps video entries through snapshots.</summary>
public sealed class VideoIndexTests
{
    [SkippableTheory]
    [InlineData("vpdq")]
    [InlineData("vpdq-1s")]
    public void IndexAgreesWithBruteForceOnEveryOraclePair(string folder)
    {
        var dir = VideoTestData.Path("expected", folder);
        var hashes = Directory.GetFiles(dir).Order(StringComparer.Ordinal).Select(f =>
        {
            Assert.True(VpdqHash.TryParse(File.ReadAllText(f), out var h, out var reason), reason);
            return h;
        }).ToList();
        using var index = new VideoIndex();
        for (var i = 0; i < hashes.Count; i++)
        {
            index.AddVpdq(i, hashes[i]);
        }

        foreach (var query in hashes)
        {
            var found = index.Match(query, null).ToDictionary(m => m.Id);
            for (var t = 0; t < hashes.Count; t++)
            {
                var brute = VpdqMatcher.Compare(query, hashes[t]);
                Assert.Equal(brute.IsMatch, found.ContainsKey(t));
                if (brute.IsMatch)
                {
                    Assert.Equal(brute.QueryMatchPercent, found[t].QueryMatchPercent, 9);
                    Assert.Equal(brute.ComparedMatchPercent, found[t].ComparedMatchPercent, 9);
                    Assert.NotEmpty(found[t].Ranges);
                }
            }
        }
    }

    [Fact]
    public void RangesCoverTheMatchedStretchesOfTheQuery()
    {
        var a = new PdqHash(1, 2, 3, 4);
        var b = new PdqHash(~1UL, ~2UL, ~3UL, ~4UL);
        var frames = Enumerable.Range(0, 10).Select(i => new VpdqFrame(i, 100, i is >= 2 and <= 4 or 8 ? a : b, i)).ToList();
        var ranges = VideoIndex.Ranges(new VpdqHash(frames), [a]);
        Assert.Equal([new TimeRange(2, 5), new TimeRange(8, 9)], ranges);
    }

    [SkippableFact]
    public void BankMatcherFindsVideosAndKeepsThemInItsSnapshot()
    {
        var query = Load("vpdq-1s", "testsrc2-trim3s.mp4");
        var tmk = File.ReadAllBytes(VideoTestData.Path("expected", "tmk", "testsrc2.mp4.tmk"));
        var bank = new Bank(1, "videos", BankKind.BlockList, true, null, null, DateTimeOffset.UnixEpoch);
        var dir = Directory.CreateTempSubdirectory("warden-video-snap-").FullName;
        try
        {
            using (var matcher = new BankMatcher([bank]))
            {
                Assert.True(matcher.Add(10, 1, "vpdq", Load("vpdq-1s", "testsrc2.mp4").ToSignal()));
                Assert.True(matcher.Add(11, 1, "tmk_pdqf", TmkHasher.ToSignal(TmkFeatures.FromBytes(tmk))));
                Assert.False(matcher.Add(12, 1, "vpdq", "not a hash"));
                Assert.True(matcher.HasVideoSignals);
                Check(matcher);
                matcher.Save(dir);
            }

            using var loaded = BankMatcher.Load(dir, [bank]);
            Assert.Equal(2, loaded.Count);
            Check(loaded);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        void Check(BankMatcher m)
        {
            var signals = new SignalSet().Add(new VpdqSignal(SignalTypes.Vpdq, query)).Add(new TmkSignal(SignalTypes.TmkPdqf, TmkFeatures.FromBytes(File.ReadAllBytes(VideoTestData.Path("expected", "tmk", "testsrc2-trim3s.mp4.tmk")))));
            var hits = m.Match(signals);
            var v = Assert.Single(hits, h => h.SignalType == "vpdq");
            Assert.Equal(10, v.EntryId);
            Assert.Equal(100, v.Video!.QueryMatchPercent);
            Assert.Equal(70, v.Video.ComparedMatchPercent, 6);
            var t = Assert.Single(hits, h => h.SignalType == "tmk_pdqf");
            Assert.Equal(11, t.EntryId);
            Assert.InRange(t.Video!.Level1, 0.99f, 1f);
        }
    }

    private static VpdqHash Load(string folder, string video)
    {
        Assert.True(VpdqHash.TryParse(File.ReadAllText(VideoTestData.Path("expected", folder, video + ".txt")), out var h, out var reason), reason);
        return h;
    }

}
