using System.Collections.Concurrent;
using System.Globalization;
using Dapper;
using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Hashing.Pdq;
using Warden.Review.Cases;
using Warden.Review.Storage;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Review.Tests;

/// <summary>
/// The case-store tests run alone: the memory test reads the process's managed heap (GC.GetTotalMemory), which
/// test classes running beside it would grow (it failed once in a full suite with 2.7 MiB held by a neighbour).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CaseStoreSerial
{
    public const string Name = "case-store-serial";
}

/// <summary>Cases in a SQLite file (one node).</summary>
[Collection(CaseStoreSerial.Name)]
public sealed class SqliteDbCaseStoreTests : DbCaseStoreTests
{
    protected override SqlDialect Dialect => SqlDialect.Sqlite;
}

/// <summary>Cases on PostgreSQL (several nodes on one database; WARDEN_TEST_POSTGRES).</summary>
[Collection(CaseStoreSerial.Name)]
public sealed class PostgresDbCaseStoreTests : DbCaseStoreTests
{
    protected override SqlDialect Dialect => SqlDialect.Postgres;
}

/// <summary>
/// Cases in the database with a capped cache of representatives: the clustering decisions are exactly those
/// of the in-memory <see cref="CaseBuilder"/> (whatever the cache's cap, and with two nodes taking turns),
/// and memory does not grow with the number of open cases.
/// </summary>
public abstract class DbCaseStoreTests
{
    protected abstract SqlDialect Dialect { get; }

    [SkippableFact]
    public async Task Clustering_decisions_equal_the_unbounded_in_memory_builder_with_any_cache_cap_and_two_nodes()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db1 = ReviewDatabase.Open(t.Target);
        using var db2 = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        var codec = Codec(bodies);
        var run = 0;

        // Few uploaders, a few picture families (each member a few bits from its family's centre, sometimes a
        // dozen: the threshold's edge), PDQ-less items, shared digests, and closes that open new cases.
        var prop = Prop.ForAll(
            Gen.Choose(0, int.MaxValue).ToArbitrary(),
            Gen.Choose(1, 6).ToArbitrary(),
            (seed, cap) =>
            {
                var prefix = "r" + Interlocked.Increment(ref run).ToString(CultureInfo.InvariantCulture) + "-";
                var rng = new Random(seed);
                var nodes = new[]
                {
                    new DbCaseStore(db1, codec, cacheRepresentatives: cap),
                    new DbCaseStore(db2, codec, cacheRepresentatives: 1 + rng.Next(8)),
                };
                var builder = new CaseBuilder();
                var centres = Enumerable.Range(0, 4).Select(_ => CaseBuilderTests.RandomHash(rng)).ToArray();
                var digests = Enumerable.Range(0, 3).Select(i => prefix + "d" + i).ToArray();
                var caseMap = new Dictionary<string, string>(StringComparer.Ordinal); // builder id -> store id
                var clusterMap = new Dictionary<string, string>(StringComparer.Ordinal);
                for (var i = 0; i < 30; i++)
                {
                    var uploader = prefix + "u" + rng.Next(3);
                    if (rng.Next(12) == 0 && builder.Queue().FirstOrDefault(c => c.RawUploaderId == uploader) is { } open)
                    {
                        builder.Close(open.Id, reported: false);
                        nodes[rng.Next(2)].Close(caseMap[open.Id], false, "close");
                        continue;
                    }

                    PdqHash? pdq = rng.Next(6) == 0 ? null : CaseBuilderTests.Flip(centres[rng.Next(centres.Length)], rng.Next(4) == 0 ? rng.Next(0, 16) : rng.Next(0, 5), rng);
                    var sha = rng.Next(3) == 0 ? digests[rng.Next(digests.Length)] : prefix + "x" + i;
                    var s = CaseBuilderTests.Item(prefix + "s" + i, uploader, pdq, i, sha256: sha);
                    bodies[s.SubmissionId] = s;
                    var expected = builder.Add(s);
                    var expectedCluster = expected.ClusterOf(s.SubmissionId)!.Id;
                    var got = nodes[rng.Next(2)].Add(s, s.SubmissionId);
                    if (!got.Added || !Same(caseMap, expected.Id, got.CaseId) || !Same(clusterMap, expectedCluster, got.ClusterId))
                    {
                        return false;
                    }
                }

                // The materialised cases (what the console shows) are the builder's, cluster by cluster.
                return builder.Cases.All(b =>
                {
                    var m = nodes[0].Find(caseMap[b.Id]);
                    return m is not null && m.Status == b.Status && m.ItemCount == b.ItemCount && m.Priority == b.Priority
                        && m.Clusters.Select(c => string.Join(',', c.Members.Select(x => x.SubmissionId))).SequenceEqual(b.Clusters.Select(c => string.Join(',', c.Members.Select(x => x.SubmissionId))));
                });
            });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Dialect == SqlDialect.Sqlite ? 25 : 15), prop);
    }

    /// <summary>
    /// The intake writes a case's aggregates in one batch (a new case inserted with its first item's values,
    /// later items updating them): after any mix of new and repeated submissions, severities, AI labels,
    /// decisions and closes, each case row, its cluster rows and the submission index say exactly what the
    /// case log replays to, and a repeated submission id changes nothing.
    /// </summary>
    [SkippableFact]
    public async Task Case_rows_written_by_the_batched_intake_equal_the_replayed_case_log()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        var run = 0;
        string?[] classes = ["A1", "A2", "B1", "B2", "X9", null];
        var prop = Prop.ForAll(
            Gen.Choose(0, int.MaxValue).ToArbitrary(),
            seed =>
            {
                var prefix = "w" + Interlocked.Increment(ref run).ToString(CultureInfo.InvariantCulture) + "-";
                var rng = new Random(seed);
                var store = new DbCaseStore(db, Codec(bodies), cacheRepresentatives: 1 + rng.Next(6));
                var centres = Enumerable.Range(0, 3).Select(_ => CaseBuilderTests.RandomHash(rng)).ToArray();
                var sent = new List<MatchedSubmission>();
                var touched = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < 25; i++)
                {
                    var roll = rng.Next(10);
                    if (roll == 0 && sent.Count > 0)
                    {
                        // A retried upload: same id, nothing written.
                        var again = sent[rng.Next(sent.Count)];
                        var before = Rows(db, touched);
                        if (store.Add(again, again.SubmissionId).Added || Rows(db, touched) != before)
                        {
                            return false;
                        }

                        continue;
                    }

                    if (roll == 1 && touched.Count > 0)
                    {
                        var caseId = touched.ElementAt(rng.Next(touched.Count));
                        if (store.Find(caseId) is { Status: CaseStatus.Open or CaseStatus.Decided } open)
                        {
                            if (rng.Next(3) == 0)
                            {
                                var reported = rng.Next(2) == 0;
                                store.Close(caseId, reported, reported ? "report" : "close");
                            }
                            else
                            {
                                var cluster = open.Clusters[rng.Next(open.Clusters.Count)];
                                store.Decide(caseId, cluster.Id, new ClusterDecision(Verdict.FalsePositive, "alice", DateTimeOffset.UnixEpoch), _ => "decision");
                            }
                        }

                        continue;
                    }

                    PdqHash? pdq = rng.Next(5) == 0 ? null : CaseBuilderTests.Flip(centres[rng.Next(centres.Length)], rng.Next(0, 14), rng);
                    var s = CaseBuilderTests.Item(prefix + "s" + i, prefix + "u" + rng.Next(3), pdq, rng.Next(0, 120), classes[rng.Next(classes.Length)], sha256: prefix + "d" + rng.Next(4), ai: rng.Next(4) == 0);
                    bodies[s.SubmissionId] = s;
                    sent.Add(s);
                    var got = store.Add(s, s.SubmissionId);
                    if (!got.Added)
                    {
                        return false;
                    }

                    touched.Add(got.CaseId);
                }

                using var c = db.Database.OpenConnection();
                foreach (var id in touched)
                {
                    var k = store.Find(id)!;
                    var row = c.QuerySingle<CaseRowView>(
                        "SELECT uploader_key AS UploaderKey, status AS Status, opened_at AS OpenedAt, updated_at AS UpdatedAt, priority AS Priority, items AS Items, clusters AS Clusters, decided AS Decided, max_severity AS MaxSeverity, ai AS Ai FROM review_cases WHERE id = @id", new { id });
                    var expected = new CaseRowView(k.RawUploaderId, (long)k.Status, k.OpenedAt.ToUnixTimeMilliseconds(), k.UpdatedAt.ToUnixTimeMilliseconds(), k.Priority, k.ItemCount, k.Clusters.Count,
                        k.Clusters.Count(x => x.Decision is not null), k.MaxSeverity, k.HasAiProvenance ? 1L : 0L);
                    var clusters = c.Query<(string Id, string? Pdq)>("SELECT id, pdq FROM review_clusters WHERE case_id = @id ORDER BY idx", new { id }).ToList();
                    var members = c.Query<(string Id, string ClusterId)>("SELECT id, cluster_id FROM review_submissions WHERE case_id = @id", new { id }).ToDictionary(m => m.Id, m => m.ClusterId);
                    if (row != expected
                        || !clusters.SequenceEqual(k.Clusters.Select(x => (x.Id, x.Representative.Pdq?.ToString())))
                        || members.Count != k.ItemCount
                        || !k.Clusters.All(x => x.Members.All(m => members.GetValueOrDefault(m.SubmissionId) == x.Id)))
                    {
                        return false;
                    }
                }

                return true;
            });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Dialect == SqlDialect.Sqlite ? 20 : 12), prop);
    }

    private sealed record CaseRowView(string UploaderKey, long Status, long OpenedAt, long UpdatedAt, long Priority, long Items, long Clusters, long Decided, long MaxSeverity, long Ai);

    private static string Rows(ReviewDatabase db, IEnumerable<string> cases)
    {
        using var c = db.Database.OpenConnection();
        return string.Join('|', cases.Order(StringComparer.Ordinal).Select(id =>
            string.Join(',', c.Query<string>("SELECT CAST(items AS TEXT) || ':' || CAST(clusters AS TEXT) || ':' || CAST(priority AS TEXT) || ':' || CAST(updated_at AS TEXT) FROM review_cases WHERE id = @id", new { id }))
            + "/" + c.ExecuteScalar<long>("SELECT COUNT(*) FROM review_submissions WHERE case_id = @id", new { id }).ToString(CultureInfo.InvariantCulture)
            + "/" + c.ExecuteScalar<long>("SELECT COUNT(*) FROM case_events WHERE case_id = @id", new { id }).ToString(CultureInfo.InvariantCulture)));
    }

    [SkippableFact]
    public async Task Representative_cache_stays_at_its_cap_and_memory_stays_flat_while_thousands_of_cases_open()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        const int Cap = 300;
        var store = new DbCaseStore(db, Codec(bodies), cacheRepresentatives: Cap);
        var rng = new Random(16);
        // Each intake is a durable transaction (an fsync on SQLite): the 50 000-case run is `bench cases`.
        var n = 2_000;
        long heapAtQuarter = 0;
        for (var i = 0; i < n; i++)
        {
            // Every uploader twice in a row (the second a near-duplicate), so the cache is used, then never again.
            var pdq = CaseBuilderTests.RandomHash(rng);
            var a = CaseBuilderTests.Item("n" + i, "uploader-" + i, pdq, i, sha256: "a" + i);
            var b = CaseBuilderTests.Item("m" + i, "uploader-" + i, CaseBuilderTests.Flip(pdq, 3, rng), i, sha256: "b" + i);
            bodies[a.SubmissionId] = a;
            bodies[b.SubmissionId] = b;
            var first = store.Add(a, a.SubmissionId);
            var second = store.Add(b, b.SubmissionId);
            Assert.Equal(first.ClusterId, second.ClusterId);
            Assert.InRange(store.Representatives.Count, 1, Cap);
            if (i == n / 4)
            {
                heapAtQuarter = Heap();
            }

            bodies.TryRemove(a.SubmissionId, out _);
            bodies.TryRemove(b.SubmissionId, out _);
        }

        Assert.Equal(n, store.OpenCount());
        Assert.Equal(Cap, store.Representatives.Count);
        Assert.Equal(Cap, store.Representatives.Cases);
        Assert.True(store.Representatives.Hits >= 2 * n - 1, $"hits {store.Representatives.Hits}");

        // Three quarters of the cases (3,000 submissions) opened after the first measurement; the managed heap
        // holds none of them. An in-memory case kept ~2 KiB per submission (~6 MiB here); 1.5 MiB of slack is left
        // for connection pools, statement caches and the JIT, which grow a little on their own.
        var growth = Heap() - heapAtQuarter;
        Assert.True(growth < 3L << 19, $"managed heap grew {growth / 1024} KiB from {n / 4} to {n} open cases");
    }

    [SkippableFact]
    public async Task A_case_grown_on_another_node_is_topped_up_from_the_database_before_clustering()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db1 = ReviewDatabase.Open(t.Target);
        using var db2 = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        var a = new DbCaseStore(db1, Codec(bodies));
        var b = new DbCaseStore(db2, Codec(bodies));
        var rng = new Random(3);
        var h1 = CaseBuilderTests.RandomHash(rng);
        var h2 = CaseBuilderTests.RandomHash(rng);
        MatchedSubmission S(string id, PdqHash h) => bodies[id] = CaseBuilderTests.Item(id, "same-uploader", h, sha256: id);

        var x = a.Add(S("x1", h1), "x1"); // A caches the case with one cluster
        var y = b.Add(S("y1", h2), "y1"); // B adds a second cluster A has not seen
        var z = a.Add(S("z1", CaseBuilderTests.Flip(h2, 4, rng)), "z1"); // A must join B's cluster, not open a third
        Assert.Equal(x.CaseId, y.CaseId);
        Assert.NotEqual(x.ClusterId, y.ClusterId);
        Assert.Equal(y.ClusterId, z.ClusterId);
        Assert.Equal(2, a.Find(x.CaseId)!.Clusters.Count);

        // Idempotent on every node.
        Assert.False(b.Add(bodies["z1"], "z1").Added);
        Assert.Equal(3, a.Find(x.CaseId)!.ItemCount);
    }

    [SkippableFact]
    public async Task Concurrent_intake_on_two_nodes_opens_one_case_per_uploader_and_one_cluster_per_picture()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db1 = ReviewDatabase.Open(t.Target);
        using var db2 = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        var nodes = new[] { new DbCaseStore(db1, Codec(bodies)), new DbCaseStore(db2, Codec(bodies)) };
        var rng = new Random(5);
        var pictures = Enumerable.Range(0, 5).Select(_ => CaseBuilderTests.RandomHash(rng)).ToArray();
        var items = Enumerable.Range(0, 200).Select(i =>
        {
            var s = CaseBuilderTests.Item("c" + i, "u" + (i % 4), CaseBuilderTests.Flip(pictures[i % 5], i % 4, new Random(i)), i, sha256: "c" + i);
            bodies[s.SubmissionId] = s;
            return s;
        }).ToList();
        // 16 writers at once over the two nodes (each node's pool opens at most that many connections): enough to
        // contend on every uploader's lock, without forking 200 PostgreSQL backends at once on a loaded test machine.
        await Parallel.ForEachAsync(
            items.Select((s, i) => (s, i)),
            new ParallelOptions { MaxDegreeOfParallelism = 16 },
            (w, _) =>
            {
                nodes[w.i % 2].Add(w.s, w.s.SubmissionId);
                return ValueTask.CompletedTask;
            });
        using var c = db1.Database.OpenConnection();
        Assert.Equal(4, c.ExecuteScalar<long>("SELECT COUNT(*) FROM review_cases"));
        Assert.Equal(4 * 5, c.ExecuteScalar<long>("SELECT COUNT(*) FROM review_clusters")); // u_k sees 5 pictures
        Assert.Equal(200, c.ExecuteScalar<long>("SELECT SUM(items) FROM review_cases"));
    }

    [SkippableFact]
    public async Task A_case_log_written_before_the_tables_is_indexed_once_with_the_same_cases()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        var rng = new Random(11);
        var builder = new CaseBuilder();
        var store = new DbCaseStore(db, Codec(bodies));
        var centre = CaseBuilderTests.RandomHash(rng);
        for (var i = 0; i < 40; i++)
        {
            var s = CaseBuilderTests.Item("l" + i, "u" + (i % 3), i % 2 == 0 ? CaseBuilderTests.Flip(centre, rng.Next(8), rng) : CaseBuilderTests.RandomHash(rng), i, sha256: "l" + i);
            bodies[s.SubmissionId] = s;
            builder.Add(s);
            store.Add(s, s.SubmissionId);
        }

        // As an older version left it: the log only.
        using (var c = db.Database.OpenConnection())
        {
            c.Execute("DELETE FROM review_cases; DELETE FROM review_clusters; DELETE FROM review_submissions; DELETE FROM review_settings WHERE name = 'cases.indexed'");
        }

        var reopened = new DbCaseStore(db, Codec(bodies));
        Assert.Equal(3, reopened.OpenCount());
        var next = CaseBuilderTests.Item("after", "u0", CaseBuilderTests.Flip(centre, 2, rng), 99, sha256: "after");
        bodies[next.SubmissionId] = next;
        var joined = reopened.Add(next, next.SubmissionId);
        var expected = builder.Add(next);
        Assert.Equal(expected.ClusterOf("after")!.Members.Select(m => m.SubmissionId), reopened.Find(joined.CaseId)!.ClusterOf("after")!.Members.Select(m => m.SubmissionId));
    }

    [SkippableFact]
    public async Task Decisions_and_closes_are_kept_in_the_tables_and_refused_once_closed()
    {
        await using var t = await TestDatabases.CreateAsync(Dialect);
        using var db = ReviewDatabase.Open(t.Target);
        var bodies = new ConcurrentDictionary<string, MatchedSubmission>(StringComparer.Ordinal);
        var store = new DbCaseStore(db, Codec(bodies));
        var rng = new Random(2);
        var s1 = bodies["a"] = CaseBuilderTests.Item("a", "u", CaseBuilderTests.RandomHash(rng), sha256: "a");
        var s2 = bodies["b"] = CaseBuilderTests.Item("b", "u", CaseBuilderTests.RandomHash(rng), sha256: "b");
        var i1 = store.Add(s1, "a");
        var i2 = store.Add(s2, "b");
        var d = new ClusterDecision(Verdict.FalsePositive, "alice", DateTimeOffset.UtcNow);
        Assert.Throws<ArgumentException>(() => store.Decide(i1.CaseId, i1.ClusterId, d with { Classification = "Z9" }, _ => "fp"));
        Assert.Throws<KeyNotFoundException>(() => store.Decide(i1.CaseId, "nope", d, _ => "fp"));
        store.Decide(i1.CaseId, i1.ClusterId, d, _ => "fp");
        Assert.Equal(CaseStatus.Open, store.Find(i1.CaseId)!.Status);
        store.Decide(i2.CaseId, i2.ClusterId, d, _ => "fp");
        Assert.Equal(CaseStatus.Decided, store.Find(i1.CaseId)!.Status);
        Assert.Single(store.Queue());
        store.Close(i1.CaseId, false, "close");
        Assert.Empty(store.Queue());
        Assert.Equal(CaseStatus.Closed, store.Find(i1.CaseId)!.Status);
        Assert.Throws<InvalidOperationException>(() => store.Decide(i1.CaseId, i1.ClusterId, d, _ => "fp"));

        // A new match from the uploader opens a new case.
        var s3 = bodies["c"] = CaseBuilderTests.Item("c", "u", s1.Pdq, sha256: "a");
        Assert.NotEqual(i1.CaseId, store.Add(s3, "c").CaseId);
    }

    /// <summary>Test bodies are the submission id (decisions: a fixed false positive).</summary>
    private static CaseEventCodec Codec(ConcurrentDictionary<string, MatchedSubmission> bodies) =>
        new(b => bodies[b], _ => new ClusterDecision(Verdict.FalsePositive, "alice", DateTimeOffset.UnixEpoch), b => b == "report");

    private static bool Same(Dictionary<string, string> map, string expected, string got)
    {
        if (map.TryGetValue(expected, out var known))
        {
            return known == got;
        }

        if (map.ContainsValue(got))
        {
            return false; // a new builder id must map to a new store id
        }

        map[expected] = got;
        return true;
    }

    private static long Heap()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

/// <summary>Named work leases (the retention sweep): one holder across nodes until it expires.</summary>
public sealed class WorkLeaseTests
{
    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task Of_many_nodes_racing_for_a_sweep_exactly_one_wins_until_its_lease_expires(SqlDialect dialect)
    {
        await using var t = await TestDatabases.CreateAsync(dialect);
        var nodes = Enumerable.Range(0, 6).Select(_ => ReviewDatabase.Open(t.Target)).ToList();
        try
        {
            var now = DateTimeOffset.UtcNow;
            for (var round = 0; round < 5; round++)
            {
                var at = now.AddMinutes(round * 10);
                var winners = await Task.WhenAll(nodes.Select((n, i) => Task.Run(() => new WorkLeases(n).TryTake("sweep", "node" + i, at, TimeSpan.FromMinutes(10)))));
                Assert.Equal(1, winners.Count(w => w));

                // Inside the lease nobody else gets it; the holder renews.
                var holder = Array.IndexOf(winners, true);
                Assert.All(Enumerable.Range(0, nodes.Count).Where(i => i != holder), i => Assert.False(new WorkLeases(nodes[i]).TryTake("sweep", "node" + i, at.AddMinutes(9), TimeSpan.FromMinutes(1))));
                Assert.True(new WorkLeases(nodes[holder]).TryTake("sweep", "node" + holder, at.AddMinutes(1), TimeSpan.FromMinutes(9)));
            }
        }
        finally
        {
            nodes.ForEach(n => n.Dispose());
        }
    }
}
