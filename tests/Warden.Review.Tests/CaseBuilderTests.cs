using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Hashing.Pdq;
using Warden.Review.Cases;
using Warden.Review.Reporting;

namespace Warden.Review.Tests;

public sealed class CaseBuilderTests
{
    private static readonly DateTimeOffset T0 = new(2026, 2, 1, 10, 0, 0, TimeSpan.Zero);

    internal static PdqHash RandomHash(Random rng) =>
        new((ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64(), (ulong)rng.NextInt64());

    /// <summary>Flips <paramref name="bits"/> distinct random bits.</summary>
    internal static PdqHash Flip(PdqHash h, int bits, Random rng)
    {
        var words = new[] { h.W0, h.W1, h.W2, h.W3 };
        foreach (var bit in Enumerable.Range(0, 256).OrderBy(_ => rng.Next()).Take(bits))
        {
            words[bit / 64] ^= 1UL << (bit % 64);
        }

        return new PdqHash(words[0], words[1], words[2], words[3]);
    }

    internal static MatchedSubmission Item(string id, string uploader, PdqHash? pdq, int minute = 0, string? cls = "A1", string? sha256 = null, string? evidence = null, bool ai = false) =>
        new(id, uploader, T0.AddMinutes(minute), pdq,
            sha256 is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["sha256"] = sha256 },
            [new MatchEvidence("demo-bank", "pdq", 3, cls is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["classification"] = cls, ["generativeAi"] = ai ? "true" : "false" })],
            new UploadContext("203.0.113.7", 443, T0.AddMinutes(minute), "https://photos.example.com/i/" + id, id + ".png"),
            evidence);

    [Fact]
    public void A_flood_of_1000_near_identical_images_from_one_uploader_is_one_case_with_one_cluster()
    {
        var rng = new Random(7);
        var center = RandomHash(rng);
        var builder = new CaseBuilder();
        for (var i = 0; i < 1000; i++)
        {
            // Each item within 5 bits of the center: any two are within 10.
            builder.Add(Item($"s{i}", "flooder", Flip(center, rng.Next(0, 6), rng), i, ai: true));
        }

        var c = Assert.Single(builder.Cases);
        var cluster = Assert.Single(c.Clusters);
        Assert.Equal(1000, cluster.Members.Count);
        Assert.Equal(1000, c.ItemCount);
        Assert.Equal("s0", cluster.Representative.SubmissionId);
    }

    [Fact]
    public void Cases_are_per_uploader_and_adding_is_idempotent()
    {
        var rng = new Random(1);
        var h = RandomHash(rng);
        var builder = new CaseBuilder();
        var a = builder.Add(Item("a1", "alice", h));
        var b = builder.Add(Item("b1", "bob", h));
        Assert.NotSame(a, b);
        Assert.Same(a, builder.Add(Item("a2", "alice", Flip(h, 3, rng))));
        Assert.Same(a, builder.Add(Item("a1", "alice", h)));
        Assert.Equal(2, a.ItemCount);
        Assert.Equal(2, builder.Cases.Count);
    }

    [Fact]
    public void Items_beyond_the_threshold_start_new_clusters_and_files_without_pdq_cluster_by_digest()
    {
        var rng = new Random(2);
        var h = RandomHash(rng);
        var builder = new CaseBuilder(new CaseBuilderOptions { ClusterThreshold = 10 });
        builder.Add(Item("p1", "u", h));
        builder.Add(Item("p2", "u", Flip(h, 10, rng)));
        builder.Add(Item("p3", "u", Flip(h, 11, rng)));
        builder.Add(Item("v1", "u", null, sha256: "AA11"));
        builder.Add(Item("v2", "u", null, sha256: "aa11"));
        builder.Add(Item("v3", "u", null, sha256: "bb22"));
        builder.Add(Item("n1", "u", null));
        var c = Assert.Single(builder.Cases);
        Assert.Equal(5, c.Clusters.Count);
        Assert.Same(c.ClusterOf("p1"), c.ClusterOf("p2"));
        Assert.NotSame(c.ClusterOf("p1"), c.ClusterOf("p3"));
        Assert.Same(c.ClusterOf("v1"), c.ClusterOf("v2"));
        Assert.NotSame(c.ClusterOf("v1"), c.ClusterOf("v3"));
    }

    [Fact]
    public void A_decision_on_a_cluster_covers_every_member_including_later_ones()
    {
        var rng = new Random(3);
        var h = RandomHash(rng);
        var builder = new CaseBuilder();
        var c = builder.Add(Item("s0", "u", h));
        for (var i = 1; i < 5; i++)
        {
            builder.Add(Item($"s{i}", "u", Flip(h, 4, rng), i));
        }

        var cluster = Assert.Single(c.Clusters);
        Assert.Equal(CaseStatus.Open, c.Status);
        builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.Confirmed, "user:alice", T0.AddHours(1), "A1", new HashSet<string> { "generativeAi" }));
        Assert.Equal(CaseStatus.Decided, c.Status);
        builder.Add(Item("late", "u", Flip(h, 2, rng), 90));
        Assert.All(c.Submissions, s => Assert.Equal(Verdict.Confirmed, c.DecisionFor(s.SubmissionId)!.Verdict));
        Assert.Equal(5, cluster.MembersAtDecision);
        Assert.Equal(6, cluster.Members.Count);

        Assert.Throws<ArgumentException>(() => builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.Confirmed, "u", T0, "C3")));
        Assert.Throws<ArgumentException>(() => builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.Confirmed, "u", T0, FileAnnotations: new HashSet<string> { "nope" })));
        Assert.Throws<ArgumentException>(() => builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.FalsePositive, "u", T0, "A1")));

        builder.Close(c.Id, reported: true);
        Assert.Throws<InvalidOperationException>(() => builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.FalsePositive, "u", T0)));
        Assert.NotSame(c, builder.Add(Item("after-report", "u", h, 200)));
    }

    [Fact]
    public void Priority_orders_severity_ai_volume_and_history()
    {
        var rng = new Random(4);
        var builder = new CaseBuilder(history: u => u == "repeat" ? new UploaderHistory(1, 1) : UploaderHistory.None);
        builder.Add(Item("b2", "mild", RandomHash(rng), cls: "B2"));
        builder.Add(Item("a1", "severe", RandomHash(rng), cls: "A1"));
        builder.Add(Item("ai", "generator", RandomHash(rng), cls: "A1", ai: true));
        builder.Add(Item("r", "repeat", RandomHash(rng), cls: "A2"));
        var order = builder.Queue().Select(c => c.UploaderId).ToList();
        Assert.Equal(["repeat", "generator", "severe", "mild"], order);
        var scores = builder.Queue().Select(c => c.Priority).ToList();
        Assert.Equal([30 + 5 + 30, 40 + 10 + 5, 40 + 5, 10 + 5], scores);
    }

    [Fact]
    public void Clustering_1000_distinct_floods_stays_incremental()
    {
        // 50 well-separated groups × 20 items: every add scans at most 50 representatives.
        var rng = new Random(5);
        var centers = Enumerable.Range(0, 50).Select(_ => RandomHash(rng)).ToList();
        var builder = new CaseBuilder();
        for (var i = 0; i < 1000; i++)
        {
            builder.Add(Item($"s{i}", "u", Flip(centers[i % 50], rng.Next(0, 6), rng), i));
        }

        Assert.Equal(50, Assert.Single(builder.Cases).Clusters.Count);
    }

    /// <summary>
    /// For groups whose members lie within 5 bits of their centre and whose centres are at least 64 bits apart,
    /// the number of clusters equals the number of groups in any arrival order.
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Cluster_count_is_order_independent_for_well_separated_groups()
    {
        var gen =
            from seed in Gen.Choose(0, int.MaxValue - 1)
            from groups in Gen.Choose(1, 12)
            from perGroup in Gen.Choose(1, 15)
            select (seed, groups, perGroup);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var rng = new Random(t.seed);
            var centers = new List<PdqHash>();
            while (centers.Count < t.groups)
            {
                var c = RandomHash(rng);
                if (centers.All(x => x.DistanceTo(c) >= 64))
                {
                    centers.Add(c);
                }
            }

            var items = centers.SelectMany((c, g) => Enumerable.Range(0, t.perGroup).Select(i => Item($"g{g}i{i}", "u", Flip(c, rng.Next(0, 6), rng)))).ToList();
            var counts = Enumerable.Range(0, 3).Select(_ =>
            {
                var b = new CaseBuilder();
                foreach (var it in items.OrderBy(_ => rng.Next()))
                {
                    b.Add(it);
                }

                var only = b.Cases.Single();
                var sameGroup = only.Clusters.All(cl => cl.Members.Select(m => m.SubmissionId.Split('i')[0]).Distinct().Count() == 1);
                return sameGroup ? only.Clusters.Count : -1;
            }).ToList();
            return counts.All(c => c == t.groups);
        });
    }

    [Fact]
    public void Incident_types_and_annotations_are_the_schema_strings()
    {
        Assert.Equal(8, CyberTipVocabulary.IncidentTypes.Count);
        Assert.Contains("generativeAi", CyberTipVocabulary.FileAnnotations);
    }
}
