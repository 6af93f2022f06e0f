using System.Globalization;
using Warden.Core.Hashing.Video;

namespace Warden.Core.Tests.Video;

/// <summary>TMK+PDQF against Meta's reference: .tmk files byte for byte, the per-frame stage, and the scores.</summary>
public sealed class TmkReferenceTests
{
    [SkippableTheory]
    [MemberData(nameof(VideoTestData.Videos), MemberType = typeof(VideoTestData))]
    public void TmkFileIsByteForByteTheReferences(string video)
    {
        var expected = File.ReadAllBytes(VideoTestData.Path("expected", "tmk", video + ".tmk"));
        var features = TmkHasher.Hash(VideoTestData.Path("videos", video));
        var actual = features.ToBytes();
        Assert.Equal(TmkFeatures.DefaultFileSize, actual.Length);
        Assert.Equal(expected.Length, actual.Length);
        var firstDiff = Enumerable.Range(0, expected.Length).FirstOrDefault(i => expected[i] != actual[i], -1);
        Assert.True(firstDiff < 0, $"first differing byte at {firstDiff}");

        // And reading the reference file gives back the same bytes.
        Assert.Equal(expected, TmkFeatures.FromBytes(expected).ToBytes());
        Assert.True(TmkHasher.TryParseSignal(TmkHasher.ToSignal(features), out var parsed, out var reason), reason);
        Assert.Equal(expected, parsed!.ToBytes());
    }

    [SkippableFact]
    public void FrameFeaturesMatchTheReferenceStageByStage()
    {
        var expected = TmkHasher.ReadFeatFile(File.ReadAllBytes(VideoTestData.Path("expected", "tmk-frames", "testsrc2.mp4.feat")));
        var actual = new List<float[]>();
        var features = TmkHasher.Hash(VideoTestData.Path("videos", "testsrc2.mp4"), onFeature: f => actual.Add(f.ToArray()));
        Assert.Equal(152, expected.Count);
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], actual[i]);
        }

        // feat2tmk on the reference features gives the reference .tmk.
        var fromFeat = TmkFeatures.CreatePoullot();
        var scratch = new float[TmkFeatures.PdqfDimension];
        foreach (var f in expected)
        {
            fromFeat.Ingest(f, scratch);
        }

        fromFeat.Finish();
        Assert.Equal(File.ReadAllBytes(VideoTestData.Path("expected", "tmk", "testsrc2.mp4.tmk")), fromFeat.ToBytes());
        Assert.Equal(features.ToBytes(), fromFeat.ToBytes());
    }

    [SkippableFact]
    public void ScoresMatchTheReferenceCsv()
    {
        var rows = File.ReadAllLines(VideoTestData.Path("expected", "tmk-scores.csv")).Skip(1).Where(l => l.Length > 0).ToList();
        Assert.Equal(17, rows.Count);
        var cache = new Dictionary<string, TmkFeatures>();
        TmkFeatures Load(string name) => cache.TryGetValue(name, out var f) ? f
            : cache[name] = TmkFeatures.FromBytes(File.ReadAllBytes(VideoTestData.Path("expected", "tmk", name + ".tmk")));
        foreach (var row in rows)
        {
            var c = row.Split(',');
            var a = Load(c[0]);
            var b = c[1].Length == 0 ? a : Load(c[1]);
            var l1 = TmkFeatures.Level1(a, b);
            var l2 = TmkFeatures.Level2(a, b);
            Assert.Equal(double.Parse(c[2], CultureInfo.InvariantCulture), l1, 1e-6);
            Assert.Equal(double.Parse(c[3], CultureInfo.InvariantCulture), l2, 1e-6);
            var matched = l1 >= TmkFeatures.DefaultLevel1Threshold && l2 >= TmkFeatures.DefaultLevel2Threshold;
            Assert.Equal(c[4] == "yes", matched);

            // Both scores are symmetric.
            Assert.Equal(l1, TmkFeatures.Level1(b, a), 1e-6);
            Assert.Equal(l2, TmkFeatures.Level2(b, a), 1e-5);
        }
    }

    [Fact]
    public void DamagedTmkFilesAreRejected()
    {
        var good = TmkFeatures.CreatePoullot();
        good.Finish();
        var bytes = good.ToBytes();
        Assert.Throws<InvalidDataException>(() => TmkFeatures.FromBytes(bytes.AsSpan(0, bytes.Length - 1)));
        Assert.Throws<InvalidDataException>(() => TmkFeatures.FromBytes(bytes.AsSpan(0, 20)));
        var bad = (byte[])bytes.Clone();
        bad[16] = 0xff; // period count
        Assert.Throws<InvalidDataException>(() => TmkFeatures.FromBytes(bad));
        bad = (byte[])bytes.Clone();
        bad[0] = (byte)'X';
        Assert.Throws<InvalidDataException>(() => TmkFeatures.FromBytes(bad));
        Assert.False(TmkHasher.TryParseSignal("tmk1:!!!", out _, out _));
    }
}
