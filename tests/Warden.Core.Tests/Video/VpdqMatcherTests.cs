using System.Globalization;
using FsCheck;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;

namespace Warden.Core.Tests.Video;

/// <summary>The vPDQ matcher against expected/vpdq-matches.csv, with both reference rules.</summary>
public sealed class VpdqMatcherTests
{
    [SkippableFact]
    public void ReproducesBothReferenceMatchersOnEveryPair()
    {
        var csv = File.ReadAllLines(VideoTestData.Path("expected", "vpdq-matches.csv"));
        var header = csv[0].Split(',');
        int Col(string name) => Array.IndexOf(header, name);
        var rows = csv.Skip(1).Where(l => l.Length > 0).ToList();
        Assert.Equal(34, rows.Count);
        foreach (var row in rows)
        {
            var c = row.Split(',');
            var folder = c[Col("sampling")] == "1s" ? "vpdq-1s" : "vpdq";
            var query = Load(folder, c[Col("query")]);
            var target = Load(folder, c[Col("target")]);

            var py = VpdqMatcher.Compare(query, target, VpdqMatchRule.PythonThreatExchange);
            Assert.Equal(int.Parse(c[Col("query_frames_considered")], CultureInfo.InvariantCulture), py.QueryFrames);
            Assert.Equal(int.Parse(c[Col("target_frames_considered")], CultureInfo.InvariantCulture), py.ComparedFrames);
            if (c[Col("query_match_percent")] == "n/a")
            {
                // python-threatexchange raises ZeroDivisionError; Warden reports no match.
                Assert.True(py.QueryFrames == 0 || py.ComparedFrames == 0);
            }
            else
            {
                Assert.Equal(double.Parse(c[Col("query_match_percent")], CultureInfo.InvariantCulture), py.QueryMatchPercent, 1e-6);
                Assert.Equal(double.Parse(c[Col("compared_match_percent")], CultureInfo.InvariantCulture), py.ComparedMatchPercent, 1e-6);
            }

            Assert.Equal(c[Col("matched")] == "yes", py.IsMatch);

            var cpp = VpdqMatcher.Compare(query, target, VpdqMatchRule.ReferenceCpp);
            Assert.Equal(c[Col("cpp_query_match_percent")], cpp.QueryMatchPercent.ToString("F2", CultureInfo.InvariantCulture));
            Assert.Equal(c[Col("cpp_target_match_percent")], cpp.ComparedMatchPercent.ToString("F2", CultureInfo.InvariantCulture));
        }
    }

    [Property(MaxTest = 100)]
    public void SwappingQueryAndComparedSwapsThePercentages(NonEmptyArray<ulong> a, NonEmptyArray<ulong> b, int flips)
    {
        var qa = Frames(a.Get, flips);
        var qb = Frames(b.Get, flips + 1);
        foreach (var rule in new[] { VpdqMatchRule.PythonThreatExchange, VpdqMatchRule.ReferenceCpp })
        {
            var ab = VpdqMatcher.Compare(qa, qb, rule);
            var ba = VpdqMatcher.Compare(qb, qa, rule);
            Assert.Equal(ab.QueryMatchPercent, ba.ComparedMatchPercent);
            Assert.Equal(ab.ComparedMatchPercent, ba.QueryMatchPercent);
        }

        // A video always fully matches itself.
        Assert.Equal(100, VpdqMatcher.Compare(qa, qa).QueryMatchPercent);
    }

    [Fact]
    public void DistanceThirtyOneSplitsTheTwoRules()
    {
        var h = new PdqHash(0, 0, 0, 0);
        var d31 = new PdqHash((1UL << 31) - 1, 0, 0, 0);
        var q = new VpdqHash([new VpdqFrame(0, 100, h, 0)]);
        var t = new VpdqHash([new VpdqFrame(0, 100, d31, 0)]);
        Assert.Equal(100, VpdqMatcher.Compare(q, t, VpdqMatchRule.PythonThreatExchange).QueryMatchPercent);
        Assert.Equal(0, VpdqMatcher.Compare(q, t, VpdqMatchRule.ReferenceCpp).QueryMatchPercent);
    }

    private static VpdqHash Frames(ulong[] words, int seed)
    {
        var frames = words.Select((w, i) => new VpdqFrame(i, 50 + (int)(w % 51), new PdqHash(w, w * 31, (ulong)seed, w ^ 0xff), i)).ToList();
        return new VpdqHash(frames);
    }

    private static VpdqHash Load(string folder, string video)
    {
        var text = File.ReadAllText(VideoTestData.Path("expected", folder, video + ".txt"));
        Assert.True(VpdqHash.TryParse(text, out var hash, out var reason), reason);
        return hash;
    }
}
