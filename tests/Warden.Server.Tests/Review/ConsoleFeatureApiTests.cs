using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Warden.Review;
using Warden.Review.Users;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Tests.Review;

/// <summary>
/// The console's working features over HTTP: the filtered, sorted, paged case list and history search, claims,
/// undo, cluster members, pre-filled classification, re-obscure, and user administration.
/// </summary>
public sealed class ConsoleFeatureApiTests
{
    [Fact]
    public async Task The_case_list_filters_sorts_and_pages_on_the_server()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        using (var admin = h.Server.Client(Role.Admin))
        {
            await ReviewHarness.SeedBankAsync(admin);
        }

        // Seven uploaders: even ones sent image 1 (labelled A1), odd ones image 2 (B1); q0 sent two more copies.
        using var submitter = h.Server.Client(Role.Submitter);
        for (var i = 0; i < 7; i++)
        {
            Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(i % 2 == 0 ? 1 : 2), "q" + i, i + 1));
        }

        Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(1, quality: 60), "q0", 20));
        Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(1, quality: 75), "q0", 21));
        using var alice = await h.LoginAsync();

        var all = await alice.GetAsync("cases?limit=100");
        Assert.Equal(7, all.GetProperty("total").GetInt32());
        var rows = all.GetProperty("cases").EnumerateArray().ToList();
        Assert.Equal("q0", rows[0].GetProperty("uploader_id").GetString()); // A1 and the most items: highest priority
        Assert.True(rows.Zip(rows.Skip(1)).All(p => p.First.GetProperty("priority").GetInt32() >= p.Second.GetProperty("priority").GetInt32()));

        // Every combination of a few filters and sorts, checked against the unfiltered rows.
        var combos =
            from priority in new int?[] { null, 0, 40, 60, 101 - 1 }
            from ai in new[] { null, "true", "false" }
            from uploader in new[] { null, "q", "Q3", "zz" }
            from bank in new[] { null, "known", "KNOWN", "other" }
            from sort in new[] { null, "priority", "opened", "updated", "items" }
            from order in new[] { null, "asc", "desc" }
            select (priority, ai, uploader, bank, sort, order);
        // A stride through the 3,600 combinations (coprime with every factor, so each value of each filter occurs).
        foreach (var (priority, ai, uploader, bank, sort, order) in combos.Where((_, i) => i % 53 == 0))
        {
            var q = new List<string>();
            if (priority is { } p)
            {
                q.Add("priority_min=" + p);
            }

            Add("ai", ai);
            Add("uploader", uploader);
            Add("bank", bank);
            Add("sort", sort);
            Add("order", order);
            var expected = rows.Where(r =>
                (priority is null || r.GetProperty("priority").GetInt32() >= priority)
                && (ai is null || r.GetProperty("ai").GetBoolean() == (ai == "true"))
                && (uploader is null || r.GetProperty("uploader_id").GetString()!.Contains(uploader, StringComparison.OrdinalIgnoreCase))
                && (bank is null || r.GetProperty("banks").EnumerateArray().Any(b => string.Equals(b.GetString(), bank, StringComparison.OrdinalIgnoreCase))))
                .Select(r => r.GetProperty("id").GetString()).ToHashSet();

            // Pages of 2 concatenate to the whole result, in order, without repeats.
            var seen = new List<JsonElement>();
            int? offset = 0;
            while (offset is { } o)
            {
                var page = await alice.GetAsync("cases?" + string.Join('&', q.Append("limit=2").Append("offset=" + o)));
                Assert.Equal(expected.Count, page.GetProperty("total").GetInt32());
                seen.AddRange(page.GetProperty("cases").EnumerateArray());
                offset = page.GetProperty("next_offset").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next_offset").GetInt32();
                Assert.True(seen.Count <= 7);
            }

            Assert.True(expected.SetEquals(seen.Select(r => r.GetProperty("id").GetString())), string.Join('&', q));
            Assert.Equal(seen.Count, seen.Select(r => r.GetProperty("id").GetString()).Distinct().Count());
            var key = sort switch { "opened" => "opened_at", "updated" => "updated_at", "items" => "items", _ => "priority" };
            var desc = order is null ? sort != "opened" : order == "desc";
            var values = seen.Select(r => key is "items" or "priority" ? r.GetProperty(key).GetInt32() : r.GetProperty(key).GetDateTimeOffset().ToUnixTimeMilliseconds()).ToList();
            Assert.True(values.Zip(values.Skip(1)).All(v => desc ? v.First >= v.Second : v.First <= v.Second), $"{string.Join('&', q)}: not sorted");

            void Add(string name, string? value)
            {
                if (value is not null)
                {
                    q.Add(name + "=" + Uri.EscapeDataString(value));
                }
            }
        }

        // Labels, age, hashes (SHA-256, MD5, PDQ; any case), and the closed history (empty so far).
        Assert.Equal(4, (await alice.GetAsync("cases?label=classification%3DA1")).GetProperty("total").GetInt32());
        Assert.Equal(3, (await alice.GetAsync("cases?label=classification%3Db1")).GetProperty("total").GetInt32());
        Assert.Equal(7, (await alice.GetAsync("cases?label=classification")).GetProperty("total").GetInt32());
        Assert.Equal(0, (await alice.GetAsync("cases?label=generativeAi")).GetProperty("total").GetInt32());
        Assert.Equal(7, (await alice.GetAsync("cases?max_age_hours=1")).GetProperty("total").GetInt32());
        Assert.Equal(0, (await alice.GetAsync("cases?min_age_hours=1")).GetProperty("total").GetInt32());
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Media.Jpeg(2)));
#pragma warning disable CA5351 // MD5 is one of the digests reviewers search by (NCMEC lists carry it)
        var md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(Media.Jpeg(2)));
#pragma warning restore CA5351
        foreach (var hash in new[] { sha, sha.ToUpperInvariant(), md5 })
        {
            var found = await alice.GetAsync("cases?hash=" + hash);
            Assert.Equal(3, found.GetProperty("total").GetInt32());
            Assert.All(found.GetProperty("cases").EnumerateArray(), r => Assert.Equal(1, int.Parse(r.GetProperty("uploader_id").GetString()![1..], System.Globalization.CultureInfo.InvariantCulture) % 2));
        }

        using (var hasher = h.Server.Client(Role.Admin))
        {
            var pdq = await ReviewHarness.PdqAsync(hasher, Media.Jpeg(1, quality: 50)); // a re-encode: near, not equal
            Assert.Equal(4, (await alice.GetAsync("cases?hash=" + pdq)).GetProperty("total").GetInt32());
        }

        Assert.Equal(0, (await alice.GetAsync("cases?status=closed")).GetProperty("total").GetInt32());
        Assert.Equal(7, (await alice.GetAsync("cases?status=all")).GetProperty("total").GetInt32());
        Assert.Equal(0, (await alice.GetAsync("cases?report_id=12345")).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Bad_list_parameters_are_a_400_problem()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        using var alice = await h.LoginAsync();
        string[] queries =
        [
            "priority_min=-1",
            "priority_min=101",
            "priority_min=abc",
            "priority_min=1.5",
            "priority_min=%2B5",
            "priority_min=",
            "ai=yes",
            "status=pending",
            "status=open&status=closed",
            "sort=name",
            "order=up",
            "limit=0",
            "limit=101",
            "offset=-1",
            "offset=10001",
            "offset=99999999999999999999",
            "min_age_hours=5&max_age_hours=2",
            "hash=xyz",
            "hash=0123456789abcdef0123456789abcde",
            "hash=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
            "report_id=a%20b",
            "report_id=%3Cscript%3E",
            "label=%3Dvalue",
            "bank=%20",
            "uploader=a%00b",
            "foo=1",
            "Status=open",
        ];
        foreach (var query in queries)
        {
            using var r = await alice.Http.GetAsync("review/api/cases?" + query);
            Assert.True(r.StatusCode == HttpStatusCode.BadRequest, query);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType!.MediaType);
            var problem = await r.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
            Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()), query);
        }

        // Hostile values in every parameter are refused or matched as plain text: never a 500.
        string[] names = ["status", "priority_min", "bank", "label", "ai", "min_age_hours", "max_age_hours", "uploader", "hash", "report_id", "sort", "order", "limit", "offset"];
        string[] junk = ["%00", "%FF%FE", new string('9', 300), "-0", "1e3", "%E2%80%AE", "NaN", "%0A"];
        foreach (var name in names)
        {
            foreach (var v in junk)
            {
                using var r = await alice.Http.GetAsync($"review/api/cases?{name}={v}");
                Assert.True(r.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.OK, $"{name}={v}: {r.StatusCode}");
            }
        }
    }

    [Fact]
    public async Task Claims_are_exclusive_visible_in_the_queue_needed_to_decide_and_race_safe()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        await h.SeedCaseAsync();
        foreach (var name in Enumerable.Range(0, 8).Select(i => "r" + i).Append("bob"))
        {
            h.Review.Store.CreateUser(name, "reviewer", PasswordHashing.Hash(ReviewHarness.Password));
        }

        using var alice = await h.LoginAsync();
        using var bob = await h.LoginAsync("bob");
        using var root = await h.LoginAsync("root");
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString()!;
        var cluster = k.GetProperty("clusters")[0].GetProperty("id").GetString()!;
        Assert.Equal(JsonValueKind.Null, k.GetProperty("claim").ValueKind);

        using (var c = await alice.PostAsync($"cases/{id}/claim"))
        {
            Assert.Equal(HttpStatusCode.OK, c.StatusCode);
            var claim = await c.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("alice", claim.GetProperty("by").GetString());
            Assert.True(claim.GetProperty("until").GetDateTimeOffset() > claim.GetProperty("since").GetDateTimeOffset().AddMinutes(14));
        }

        // Visible to everyone: queue, case list, case view.
        Assert.Equal("alice", (await bob.GetAsync("queue"))[0].GetProperty("claim").GetProperty("by").GetString());
        Assert.Equal("alice", (await bob.GetAsync("cases")).GetProperty("cases")[0].GetProperty("claim").GetProperty("by").GetString());
        Assert.Equal("alice", (await bob.GetAsync("cases/" + id)).GetProperty("claim").GetProperty("by").GetString());

        // Another reviewer cannot claim, decide, undo or release it.
        await AssertClaimedAsync(await bob.PostAsync($"cases/{id}/claim"));
        await AssertClaimedAsync(await bob.PostAsync($"cases/{id}/clusters/{cluster}/decision", new { verdict = "confirmed", classification = "A1" }));
        await AssertClaimedAsync(await bob.PostAsync($"cases/{id}/release"));
        Assert.Equal(JsonValueKind.Null, (await bob.GetAsync("cases/" + id)).GetProperty("clusters")[0].GetProperty("decision").ValueKind);

        // The holder decides; renewing keeps the start; releasing frees it for bob.
        using (var d = await alice.PostAsync($"cases/{id}/clusters/{cluster}/decision", new { verdict = "confirmed", classification = "A1" }))
        {
            Assert.Equal(HttpStatusCode.OK, d.StatusCode);
        }

        Assert.True((await (await alice.PostAsync($"cases/{id}/release")).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("released").GetBoolean());
        Assert.Equal(JsonValueKind.Null, (await bob.GetAsync("queue"))[0].GetProperty("claim").ValueKind);
        using (var c = await bob.PostAsync($"cases/{id}/claim"))
        {
            Assert.Equal(HttpStatusCode.OK, c.StatusCode);
        }

        // An admin may release someone else's claim (audited as forced).
        Assert.True((await (await root.PostAsync($"cases/{id}/release")).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("released").GetBoolean());
        Assert.Contains(h.Review.Audit.Query(new(Action: "review.release")), a => a.Actor == "root" && a.Details["forced"] == "true" && a.Details["holder"] == "bob");
        Assert.Contains(h.Review.Audit.Query(new(Action: "review.claim")), a => a.Actor == "alice" && a.Subject == "case:" + id);
        Assert.Contains(h.Review.Audit.Query(new(Action: "review.claim")), a => a.Actor == "bob" && a.Subject == "case:" + id);

        // Eight reviewers press Claim on a new case at the same moment: one wins, seven are told who did.
        using (var s = h.Server.Client(Role.Submitter))
        {
            Assert.True(await ReviewHarness.UploadAsync(s, Media.Jpeg(2), "race", 50));
        }

        var raceId = (await alice.GetAsync("cases?uploader=race")).GetProperty("cases")[0].GetProperty("id").GetString()!;
        var clients = new List<ConsoleClient>();
        foreach (var i in Enumerable.Range(0, 8))
        {
            clients.Add(await h.LoginAsync("r" + i));
        }

        for (var round = 0; round < 3; round++)
        {
            using var go = new SemaphoreSlim(0);
            var attempts = clients.Select(async c =>
            {
                await go.WaitAsync();
                using var r = await c.PostAsync($"cases/{raceId}/claim");
                return r.StatusCode;
            }).ToList();
            go.Release(clients.Count);
            var codes = await Task.WhenAll(attempts);
            Assert.Single(codes, x => x == HttpStatusCode.OK);
            Assert.Equal(7, codes.Count(x => x == HttpStatusCode.Conflict));
            using (await root.PostAsync($"cases/{raceId}/release"))
            {
            }
        }

        foreach (var c in clients)
        {
            c.Dispose();
        }

        static async Task AssertClaimedAsync(HttpResponseMessage r)
        {
            using (r)
            {
                Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
                var p = await r.Content.ReadFromJsonAsync<JsonElement>();
                Assert.Equal("claimed", p.GetProperty("code").GetString());
                Assert.Contains("Claimed by alice since", p.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Decisions_can_be_undone_until_the_report_is_filed()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false);
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString()!;
        var c0 = k.GetProperty("clusters")[0].GetProperty("id").GetString()!;
        var c1 = k.GetProperty("clusters")[1].GetProperty("id").GetString()!;

        Assert.Equal(HttpStatusCode.Conflict, (await alice.PostAsync($"cases/{id}/clusters/{c0}/undo")).StatusCode); // nothing to undo
        Assert.Equal(HttpStatusCode.NotFound, (await alice.PostAsync($"cases/{id}/clusters/nope/undo")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c0}/decision", new { verdict = "confirmed", classification = "A1" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c0}/undo")).StatusCode);
        var undone = await alice.GetAsync("cases/" + id);
        Assert.Equal(JsonValueKind.Null, undone.GetProperty("clusters")[0].GetProperty("decision").ValueKind);
        Assert.Equal("open", undone.GetProperty("status").GetString());
        Assert.Contains(h.Review.Audit.Query(new(Action: "review.undo")), a => a.Actor == "alice" && a.Details["verdict"] == "confirmed" && a.Details["cluster"] == c0);

        // A false positive fed the allow-list bank; its undo takes this case's entries out again.
        var banks = h.Server.App.Services.GetRequiredService<BankStore>();
        var pdq = k.GetProperty("clusters")[1].GetProperty("representative").GetProperty("pdq").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c1}/decision", new { verdict = "false_positive" })).StatusCode);
        Assert.Single(banks.EntriesWithSignal(h.Review.Options.FalsePositiveBank, "pdq", pdq));
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c1}/undo")).StatusCode);
        Assert.Empty(banks.EntriesWithSignal(h.Review.Options.FalsePositiveBank, "pdq", pdq));
        Assert.Contains(h.Review.Audit.Query(new(Action: "review.undo")), a => a.Details["verdict"] == "false_positive" && a.Details["allow_list_removed"] == "1");

        // Another node (a second service replaying the same database) sees the undone state.
        using (var node = new ReviewService(h.Server.App.Services.GetRequiredService<ServerOptions>().Review, h.Server.App.Services.GetRequiredService<ServerOptions>().Database, banks, NullLogger<ReviewService>.Instance))
        {
            Assert.All(node.Cases.Find(id)!.Clusters, c => Assert.Null(c.Decision));
        }

        // Decide both, file: from then on undo is refused with a clear message.
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c0}/decision", new { verdict = "confirmed", classification = "A1" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/clusters/{c1}/decision", new { verdict = "confirmed", classification = "B1" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"cases/{id}/report")).StatusCode);
        var report = await ConsoleApiTests.WaitReportAsync(alice, id);
        Assert.Equal("finished", report.GetProperty("status").GetString());
        foreach (var c in new[] { c0, c1 })
        {
            using var r = await alice.PostAsync($"cases/{id}/clusters/{c}/undo");
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
            var p = await r.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("report_filed", p.GetProperty("code").GetString());
            Assert.Contains("already filed", p.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Contains(report.GetProperty("report_id").GetString()!, p.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal("confirmed", (await alice.GetAsync("cases/" + id)).GetProperty("clusters")[0].GetProperty("decision").GetProperty("verdict").GetString());

        // History: the reported case is found by its report id, by uploader and by status.
        var byReport = await alice.GetAsync("cases?status=closed&report_id=" + report.GetProperty("report_id").GetString());
        var row = Assert.Single(byReport.GetProperty("cases").EnumerateArray());
        Assert.Equal(id, row.GetProperty("id").GetString());
        Assert.Equal("finished", row.GetProperty("report").GetProperty("status").GetString());
        Assert.Equal(1, (await alice.GetAsync("cases?status=closed&uploader=u1")).GetProperty("total").GetInt32());
        Assert.Equal(0, (await alice.GetAsync("cases?report_id=" + report.GetProperty("report_id").GetString())).GetProperty("total").GetInt32()); // not open
        Assert.Equal(0, (await alice.GetAsync("queue")).GetArrayLength());
    }

    [Fact]
    public async Task Members_show_why_they_clustered_classification_is_prefilled_and_reobscure_keeps_counters()
    {
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString()!;
        var clusters = k.GetProperty("clusters");
        Assert.Equal("A1", clusters[0].GetProperty("suggested_classification").GetString());
        Assert.Equal("B1", clusters[1].GetProperty("suggested_classification").GetString());
        Assert.Equal(0, clusters[0].GetProperty("suggested_annotations").GetArrayLength());

        var c0 = clusters[0].GetProperty("id").GetString()!;
        var members = await alice.GetAsync($"cases/{id}/clusters/{c0}/members");
        Assert.Equal(2, members.GetProperty("total").GetInt32());
        var m = members.GetProperty("members");
        Assert.Equal("representative", m[0].GetProperty("signal").GetString());
        Assert.Equal("pdq", m[1].GetProperty("signal").GetString());
        var distance = m[1].GetProperty("distance").GetInt32();
        Assert.InRange(distance, 0, 10);
        Assert.Contains($"PDQ distance {distance}", m[1].GetProperty("why").GetString(), StringComparison.Ordinal);
        Assert.Equal("f2.jpg", m[1].GetProperty("file_name").GetString());

        // Each member is viewable, obscured (a server derivative, never the upload).
        var item = m[1].GetProperty("item").GetString()!;
        using (var media = await alice.Http.GetAsync($"review/api/cases/{id}/items/{item}/media"))
        {
            Assert.Equal(HttpStatusCode.OK, media.StatusCode);
            Assert.Equal("derivative", media.Headers.GetValues("X-Warden-Media").Single());
            Assert.NotEqual(Media.Jpeg(1, quality: 60), await media.Content.ReadAsByteArrayAsync());
        }

        Assert.Equal(1, (await alice.GetAsync($"cases/{id}/clusters/{c0}/members?offset=1&limit=1")).GetProperty("members").GetArrayLength());
        foreach (var bad in new[] { "limit=0", "limit=201", "offset=-1", "limit=abc" })
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await alice.Http.GetAsync($"review/api/cases/{id}/clusters/{c0}/members?{bad}")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await alice.Http.GetAsync($"review/api/cases/{id}/clusters/nope/members")).StatusCode);

        // Reveal, then re-obscure: the unredeemed grant is gone, the counter and the logged view stay.
        string url;
        using (var reveal = await alice.PostAsync($"cases/{id}/items/{item}/reveal"))
        {
            var g = await reveal.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(1, g.GetProperty("exposure_today").GetInt32());
            url = g.GetProperty("original_url").GetString()!;
        }

        using (var obscure = await alice.PostAsync("obscure", new { case_id = id, item }))
        {
            Assert.Equal(HttpStatusCode.NoContent, obscure.StatusCode);
        }

        Assert.Equal(HttpStatusCode.Forbidden, (await alice.Http.GetAsync(url.TrimStart('/'))).StatusCode);
        Assert.Equal(1, (await alice.GetAsync("me")).GetProperty("exposure_today").GetInt32());
        Assert.Single(h.Review.Vault!.Views(item), v => v.What == "revealed");
        Assert.Contains(h.Review.Audit.Query(new(Action: "review.reobscure")), a => a.Actor == "alice" && a.Subject == "case:" + id && a.Details["item"] == item && a.Details["grant_dropped"] == "true");
    }

    /// <summary>
    /// Per-member reveal, over a cluster of many re-encodings and resizes of one picture in random order: each member is
    /// revealed on its own (the original of that member, not the representative's), counted once against the cap,
    /// logged as one revealed view of that item only and audited; the member view marks exactly the revealed ones;
    /// past the cap a member's reveal is refused like any other and grants nothing.
    /// </summary>
    [Fact]
    public async Task Each_member_of_a_cluster_is_revealed_on_its_own_counted_logged_and_capped()
    {
        const int cap = 5;
        await using var h = await ReviewHarness.StartAsync(configure: r => r.DailyExposureCap = cap);
        using (var admin = h.Server.Client(Role.Admin))
        {
            await ReviewHarness.SeedBankAsync(admin);
        }

        // Eight re-encodings of one picture (JPEG qualities); those within the cluster threshold form one cluster.
        var variants = new List<byte[]>();
        foreach (var q in new[] { 95, 90, 85, 80, 75, 65, 55, 45 })
        {
            variants.Add(Media.Jpeg(1, quality: q));
        }

        using (var submitter = h.Server.Client(Role.Submitter))
        {
            for (var i = 0; i < variants.Count; i++)
            {
                Assert.True(await ReviewHarness.UploadAsync(submitter, variants[i], "m1", i + 1));
            }
        }

        using var alice = await h.LoginAsync();
        var k = await alice.FirstCaseAsync();
        var id = k.GetProperty("id").GetString()!;
        var cluster = k.GetProperty("clusters").EnumerateArray().MaxBy(c => c.GetProperty("count").GetInt32());
        var cid = cluster.GetProperty("id").GetString()!;
        var page = await alice.GetAsync($"cases/{id}/clusters/{cid}/members?limit=200");
        var members = page.GetProperty("members").EnumerateArray().ToList();
        Assert.True(members.Count > cap, $"only {members.Count} re-encodings clustered together");
        Assert.Equal(cluster.GetProperty("count").GetInt32(), members.Count);
        Assert.All(members, m => Assert.False(m.GetProperty("viewed_by_me").GetBoolean()));
        Assert.All(members.Skip(1), m => Assert.Matches("^PDQ distance \\d+ to the representative \\(clustered at ≤ 10\\)$|^identical SHA256 to the representative$", m.GetProperty("why").GetString()!));

        // The upload each member came from, by its file name (f{n}.jpg).
        byte[] Upload(JsonElement m) => variants[int.Parse(m.GetProperty("file_name").GetString()![1..^4], System.Globalization.CultureInfo.InvariantCulture) - 1];

        var order = Enumerable.Range(0, members.Count).OrderBy(_ => Random.Shared.Next()).ToList();
        var revealed = new HashSet<string>(StringComparer.Ordinal);
        var n = 0;
        foreach (var j in order)
        {
            var item = members[j].GetProperty("item").GetString()!;
            using var reveal = await alice.PostAsync($"cases/{id}/items/{item}/reveal", new { reason = "member " + j });
            if (n == cap)
            {
                // Past the cap: refused, nothing granted, nothing logged as revealed.
                Assert.Equal(HttpStatusCode.TooManyRequests, reveal.StatusCode);
                Assert.Equal("exposure_cap", (await reveal.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("code").GetString());
                Assert.DoesNotContain(h.Review.Vault!.Views(item), v => v.What == "revealed");
                continue;
            }

            Assert.Equal(HttpStatusCode.OK, reveal.StatusCode);
            var g = await reveal.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(++n, g.GetProperty("exposure_today").GetInt32());
            using (var original = await alice.Http.GetAsync(g.GetProperty("original_url").GetString()!.TrimStart('/')))
            {
                Assert.Equal(HttpStatusCode.OK, original.StatusCode);
                Assert.Equal(Upload(members[j]), await original.Content.ReadAsByteArrayAsync()); // this member's bytes
            }

            revealed.Add(item);

            // Exactly one revealed view per revealed member, none for the others; each reveal audited with its reason.
            foreach (var m in members)
            {
                var other = m.GetProperty("item").GetString()!;
                Assert.Equal(revealed.Contains(other) ? 1 : 0, h.Review.Vault!.Views(other).Count(v => v.What == "revealed" && v.Actor == "alice"));
            }

            Assert.Single(h.Review.Audit.Query(new(Action: "evidence.view")), a => a.Actor == "alice" && a.Subject.Contains(item, StringComparison.Ordinal) && a.Details.Values.Any(v => v.Contains("member " + j, StringComparison.Ordinal)));

            // Re-obscured after each: the next reveal is a new, separately counted one.
            Assert.Equal(HttpStatusCode.NoContent, (await alice.PostAsync("obscure", new { case_id = id, item })).StatusCode);
        }

        Assert.Equal(cap, (await alice.GetAsync("me")).GetProperty("exposure_today").GetInt32());
        var after = (await alice.GetAsync($"cases/{id}/clusters/{cid}/members?limit=200")).GetProperty("members").EnumerateArray();
        Assert.All(after, m => Assert.Equal(revealed.Contains(m.GetProperty("item").GetString()!), m.GetProperty("viewed_by_me").GetBoolean()));
        Assert.Equal(cap, h.Review.Audit.Query(new(Action: "review.reobscure")).Count(a => a.Actor == "alice"));

        // Another reviewer's view of the same members: nothing marked as seen by them.
        h.Review.Store.CreateUser("bob", "reviewer", Warden.Review.Users.PasswordHashing.Hash(ReviewHarness.Password));
        using var bob = await h.LoginAsync("bob");
        Assert.All((await bob.GetAsync($"cases/{id}/clusters/{cid}/members")).GetProperty("members").EnumerateArray(), m => Assert.False(m.GetProperty("viewed_by_me").GetBoolean()));
    }

    [Fact]
    public async Task Admins_disable_enable_and_reset_passwords_and_sessions_end()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false, configure: r =>
        {
            r.Login.AccountBaseDelayMilliseconds = 1;
            r.Login.SourceFreeFailures = 1000;
            r.Login.AccountMaxFailures = 1000;
        });
        using var alice = await h.LoginAsync();
        using var root = await h.LoginAsync("root");

        // Reviewers get no admin endpoints.
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.Http.GetAsync("review/api/admin/users")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.PostAsync("admin/users/root/disable")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.PostAsync("admin/users/root/password", new { password = (string?)null })).StatusCode);

        var users = await root.GetAsync("admin/users");
        var a = users.EnumerateArray().Single(u => u.GetProperty("username").GetString() == "alice");
        Assert.False(a.GetProperty("disabled").GetBoolean());
        Assert.Equal(1, a.GetProperty("sessions").GetInt32());

        // Disable: her open session ends at once and she cannot log in.
        Assert.Equal(HttpStatusCode.OK, (await root.PostAsync("admin/users/alice/disable")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await alice.Http.GetAsync("review/api/me")).StatusCode);
        using var anon = ConsoleClient.Anonymous(h.Server.BaseAddress);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.PostAsJsonAsync("review/api/login", new { username = "alice", password = ReviewHarness.Password })).StatusCode);
        Assert.True((await root.GetAsync("admin/users")).EnumerateArray().Single(u => u.GetProperty("username").GetString() == "alice").GetProperty("disabled").GetBoolean());
        Assert.Equal(HttpStatusCode.Conflict, (await root.PostAsync("admin/users/root/disable")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await root.PostAsync("admin/users/nobody/disable")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await root.PostAsync("admin/users/alice/enable")).StatusCode);
        await Task.Delay(50);
        using var again = await h.LoginAsync();

        // Reset with a generated password: shown once, the old one stops working, sessions end.
        using var reset = await root.PostAsync("admin/users/alice/password", new { password = (string?)null });
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        var generated = (await reset.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("password").GetString()!;
        Assert.Equal(20, generated.Length);
        Assert.Equal(HttpStatusCode.Unauthorized, (await again.Http.GetAsync("review/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.PostAsJsonAsync("review/api/login", new { username = "alice", password = ReviewHarness.Password })).StatusCode);
        await Task.Delay(50);
        using (var fresh = await ConsoleClient.LoginAsync(h.Server.BaseAddress, "alice", generated))
        {
            Assert.Equal("alice", (await fresh.GetAsync("me")).GetProperty("username").GetString());
        }

        // A chosen password must be long enough; the answer never echoes it.
        Assert.Equal(HttpStatusCode.BadRequest, (await root.PostAsync("admin/users/alice/password", new { password = "short" })).StatusCode);
        using var chosen = await root.PostAsync("admin/users/alice/password", new { password = "another long passphrase" });
        Assert.Equal(JsonValueKind.Null, (await chosen.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("password").ValueKind);
        Assert.Equal(HttpStatusCode.NotFound, (await root.PostAsync("admin/users/nobody/password", new { password = "another long passphrase" })).StatusCode);

        var actions = h.Review.Audit.Query(new(Actor: "root")).Select(x => x.Action).ToList();
        Assert.Contains("user.disable", actions);
        Assert.Contains("user.enable", actions);
        Assert.Equal(2, actions.Count(x => x == "user.password_reset"));
        Assert.DoesNotContain(h.Review.Audit.Query(new(Action: "user.password_reset")), x => x.Details.Values.Any(v => v.Contains(generated, StringComparison.Ordinal)));
    }
}
