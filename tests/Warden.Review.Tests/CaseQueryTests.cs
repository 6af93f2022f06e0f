using FsCheck;
using FsCheck.Fluent;
using Warden.Review.Cases;

namespace Warden.Review.Tests;

/// <summary>The queue's filters, total order and paging (<see cref="CaseQuery"/>), checked against independent predicates.</summary>
public sealed class CaseQueryTests
{
    private static readonly DateTimeOffset T0 = new(2026, 2, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly string[] Classes = ["A1", "A2", "B1", "B2", "X9"];
    private static readonly string[] Banks = ["known", "ncmec", "partner"];

    /// <summary>A random world of cases: uploaders, banks, labels, AI flags, ages, decisions and closes.</summary>
    private static (CaseBuilder Builder, List<MatchedSubmission> Items) World(int seed, int uploaders, int items)
    {
        var rng = new Random(seed);
        var builder = new CaseBuilder();
        var all = new List<MatchedSubmission>();
        for (var i = 0; i < items; i++)
        {
            var uploader = "user-" + rng.Next(uploaders);
            var labels = new Dictionary<string, string>();
            if (rng.Next(4) > 0)
            {
                labels["classification"] = Classes[rng.Next(Classes.Length)];
            }

            if (rng.Next(5) == 0)
            {
                labels["generativeAi"] = "true";
            }

            var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(rng.Next(items))));
            var item = new MatchedSubmission(
                "s" + i,
                uploader,
                T0.AddHours(rng.Next(0, 24 * 30)),
                rng.Next(3) == 0 ? null : CaseBuilderTests.RandomHash(rng),
                new Dictionary<string, string> { ["sha256"] = sha, ["md5"] = sha[..32] },
                [new MatchEvidence(Banks[rng.Next(Banks.Length)], "pdq", rng.Next(0, 32), labels)],
                new UploadContext());
            all.Add(item);
            var c = builder.Add(item);
            if (rng.Next(6) == 0 && c.IsFullyDecided is false)
            {
                foreach (var cl in c.Clusters.Where(x => x.Decision is null))
                {
                    builder.Decide(c.Id, cl.Id, new ClusterDecision(Verdict.FalsePositive, "r", T0));
                }

                builder.Close(c.Id, reported: rng.Next(2) == 0);
            }
        }

        return (builder, all);
    }

    private static Gen<CaseFilter> Filters { get; } =
        from scope in Gen.Elements(CaseScope.Open, CaseScope.Closed, CaseScope.All)
        from minPriority in Gen.Elements<int?>(null, 0, 20, 35, 50, 70)
        from bank in Gen.Elements<string?>(null, "known", "NCMEC", "nope")
        from label in Gen.Elements<(string?, string?)>((null, null), ("classification", null), ("classification", "a1"), ("generativeAi", "true"), ("missing", null))
        from ai in Gen.Elements<bool?>(null, true, false)
        from minAge in Gen.Elements<int?>(null, 0, 24 * 10)
        from maxAge in Gen.Elements<int?>(null, 24 * 20, 24 * 40)
        from uploader in Gen.Elements<string?>(null, "user-1", "USER", "zzz")
        select new CaseFilter
        {
            Scope = scope,
            MinPriority = minPriority,
            Bank = bank,
            LabelKey = label.Item1,
            LabelValue = label.Item2,
            Ai = ai,
            MinAge = minAge is { } a ? TimeSpan.FromHours(a) : null,
            MaxAge = maxAge is { } b ? TimeSpan.FromHours(b) : null,
            Uploader = uploader,
        };

    /// <summary>
    /// For random worlds and filter combinations: every returned case passes each filter on its own terms, every
    /// case left out fails at least one, and pages of any size concatenate to the whole sorted result without
    /// repeats or gaps.
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 150)]
    public Property Filters_select_exactly_the_matching_cases_and_pages_partition_the_sorted_result()
    {
        var gen =
            from seed in Gen.Choose(0, int.MaxValue - 1)
            from uploaders in Gen.Choose(1, 25)
            from items in Gen.Choose(0, 120)
            from filter in Filters
            from sort in Gen.Elements(CaseSort.Priority, CaseSort.Opened, CaseSort.Updated, CaseSort.Items)
            from desc in Gen.Elements(true, false)
            from pageSize in Gen.Choose(1, 15)
            select (seed, uploaders, items, filter, sort, desc, pageSize);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (builder, _) = World(t.seed, t.uploaders, t.items);
            var now = T0.AddDays(31);
            var f = t.filter;
            var all = builder.Cases;
            var expected = all.Where(c => Independent(c, f, now)).ToHashSet();
            var whole = CaseQuery.Run(all, f, t.sort, t.desc, 0, CaseQuery.MaxLimit * 10, now);
            var pages = new List<ReviewCase>();
            for (var offset = 0; offset < whole.Total + t.pageSize; offset += t.pageSize)
            {
                var page = CaseQuery.Run(all, f, t.sort, t.desc, offset, t.pageSize, now);
                Assert.Equal(whole.Total, page.Total);
                Assert.True(page.Cases.Count <= t.pageSize);
                pages.AddRange(page.Cases);
            }

            var sortedOk = whole.Cases.Zip(whole.Cases.Skip(1)).All(p => KeyOrder(p.First, p.Second, t.sort, t.desc) <= 0);
            return expected.SetEquals(whole.Cases) && whole.Total == expected.Count && pages.SequenceEqual(whole.Cases) && sortedOk;
        });
    }

    /// <summary>Hash search finds a case by any of its digests (any case of hex) and by a PDQ within 10 bits, never beyond.</summary>
    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Hash_search_finds_by_sha256_md5_and_near_pdq()
    {
        return Prop.ForAll(Gen.Choose(0, int.MaxValue - 1).ToArbitrary(), seed =>
        {
            var (builder, items) = World(seed, 10, 40);
            var rng = new Random(seed);
            var now = T0.AddDays(31);
            if (items.Count == 0)
            {
                return true;
            }

            var target = items[rng.Next(items.Count)];
            var owner = builder.Cases.Single(c => c.Submissions.Any(s => s.SubmissionId == target.SubmissionId));
            var all = new CaseFilter { Scope = CaseScope.All };
            bool Finds(string text) => CaseQuery.Run(builder.Cases, all with { Hash = CaseQuery.ParseHash(text) }, CaseSort.Priority, true, 0, 100, now).Cases.Contains(owner);
            var ok = Finds(target.Hashes["sha256"]) && Finds(target.Hashes["sha256"].ToUpperInvariant()) && Finds(" " + target.Hashes["md5"] + " ");
            if (target.Pdq is { } pdq)
            {
                var near = CaseBuilderTests.Flip(pdq, rng.Next(0, CaseQuery.PdqSearchDistance + 1), rng);
                ok &= Finds(near.ToString());
                var far = CaseBuilderTests.Flip(pdq, 80, rng);
                var expectFar = builder.Cases.Where(c => c.Submissions.Any(s => s.Pdq is { } p && p.DistanceTo(far) <= CaseQuery.PdqSearchDistance)).ToHashSet();
                ok &= CaseQuery.Run(builder.Cases, all with { Hash = CaseQuery.ParseHash(far.ToString()) }, CaseSort.Priority, true, 0, 100, now).Cases.ToHashSet().SetEquals(expectFar);
            }

            return ok;
        });
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("0123456789abcdef0123456789abcdeg")] // 32 with a non-hex digit
    [InlineData("0123456789abcdef0123456789abcde")] // 31
    [InlineData("0123456789abcdef0123456789abcdef0")] // 33
    [InlineData("0x0123456789abcdef0123456789abcde")]
    [InlineData("０１２３４５６７８９abcdef0123456789abcdef")] // full-width digits are not hex
    public void Hash_text_that_is_no_digest_is_refused(string text) => Assert.Null(CaseQuery.ParseHash(text));

    [Fact]
    public void Suggested_classification_is_the_most_severe_valid_label_and_why_names_the_signal()
    {
        var rng = new Random(3);
        var rep = CaseBuilderTests.RandomHash(rng);
        var builder = new CaseBuilder();
        builder.Add(CaseBuilderTests.Item("a", "u", rep, cls: "B2", sha256: "aa"));
        builder.Add(CaseBuilderTests.Item("b", "u", CaseBuilderTests.Flip(rep, 4, rng), cls: "a2"));
        builder.Add(CaseBuilderTests.Item("c", "u", null, cls: "Z1", sha256: "AA", ai: true));
        var cluster = builder.Cases.Single().Clusters.Single();
        Assert.Equal(3, cluster.Members.Count);
        Assert.Equal("A2", CaseQuery.SuggestedClassification(cluster));
        Assert.Equal(["generativeAi"], CaseQuery.SuggestedAnnotations(cluster));
        Assert.Equal(("representative", 0), CaseQuery.Why(cluster, cluster.Members[0], 10));
        Assert.Equal(("pdq", 4), CaseQuery.Why(cluster, cluster.Members[1], 10));
        Assert.Equal(("sha256", 0), CaseQuery.Why(cluster, cluster.Members[2], 10));

        var none = new CaseBuilder();
        none.Add(CaseBuilderTests.Item("x", "v", rep, cls: null));
        Assert.Null(CaseQuery.SuggestedClassification(none.Cases.Single().Clusters.Single()));
        Assert.Empty(CaseQuery.SuggestedAnnotations(none.Cases.Single().Clusters.Single()));
    }

    [Fact]
    public void Undo_reopens_a_decided_cluster_and_refuses_after_the_case_is_reported()
    {
        var builder = new CaseBuilder();
        var c = builder.Add(CaseBuilderTests.Item("a", "u", CaseBuilderTests.RandomHash(new Random(1))));
        var cl = c.Clusters.Single();
        Assert.Throws<InvalidOperationException>(() => builder.Undo(c.Id, cl.Id)); // nothing to undo
        builder.Decide(c.Id, cl.Id, new ClusterDecision(Verdict.Confirmed, "r", T0, "A1"));
        Assert.Equal(CaseStatus.Decided, c.Status);
        Assert.Equal(Verdict.Confirmed, builder.Undo(c.Id, cl.Id).Verdict);
        Assert.Null(cl.Decision);
        Assert.Equal(CaseStatus.Open, c.Status);
        builder.Decide(c.Id, cl.Id, new ClusterDecision(Verdict.Confirmed, "r", T0, "A1"));
        builder.Close(c.Id, reported: true);
        Assert.Throws<InvalidOperationException>(() => builder.Undo(c.Id, cl.Id));
        Assert.NotNull(cl.Decision);
    }

    /// <summary>Each filter written out again, apart from the code under test.</summary>
    private static bool Independent(ReviewCase c, CaseFilter f, DateTimeOffset now)
    {
        var closed = c.Status == CaseStatus.Reported || c.Status == CaseStatus.Closed;
        var matches = c.Clusters.SelectMany(x => x.Members).SelectMany(s => s.Matches).ToList();
        var ai = c.Clusters.SelectMany(x => x.Members).Any(s => s.Matches.Any(m => m.Labels.TryGetValue("generativeAi", out var g) && g == "true"));
        return (f.Scope == CaseScope.All || (f.Scope == CaseScope.Closed) == closed)
            && (f.MinPriority is null || c.Priority >= f.MinPriority)
            && (f.Ai is null || ai == f.Ai)
            && (f.MinAge is null || (now - c.OpenedAt).TotalHours >= f.MinAge.Value.TotalHours)
            && (f.MaxAge is null || (now - c.OpenedAt).TotalHours <= f.MaxAge.Value.TotalHours)
            && (f.Uploader is null || c.UploaderId.ToUpperInvariant().Contains(f.Uploader.ToUpperInvariant(), StringComparison.Ordinal))
            && (f.Bank is null && f.LabelKey is null || matches.Any(m =>
                (f.Bank is null || m.BankName.Equals(f.Bank, StringComparison.OrdinalIgnoreCase))
                && (f.LabelKey is null || m.Labels.Any(l => l.Key.Equals(f.LabelKey, StringComparison.OrdinalIgnoreCase) && (f.LabelValue is null || l.Value.Equals(f.LabelValue, StringComparison.OrdinalIgnoreCase))))));
    }

    private static int KeyOrder(ReviewCase a, ReviewCase b, CaseSort sort, bool desc)
    {
        var k = sort switch
        {
            CaseSort.Priority => a.Priority.CompareTo(b.Priority),
            CaseSort.Opened => a.OpenedAt.CompareTo(b.OpenedAt),
            CaseSort.Updated => a.UpdatedAt.CompareTo(b.UpdatedAt),
            _ => a.ItemCount.CompareTo(b.ItemCount),
        };
        return desc ? -k : k;
    }
}
