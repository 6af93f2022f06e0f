using System.Net;
using System.Net.Http.Headers;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Banks;
using Warden.Review;
using Warden.Server.Auth;
using Warden.Storage;

namespace Warden.Server.Tests.SignalLog;

/// <summary>
/// The server end to end: uploads that matched nothing are logged (signals only); a list imported later that
/// matches them produces retroactive match events and review cases with the original upload time, once.
/// </summary>
public sealed class RetroactiveApiTests
{
    public static TheoryData<SqlDialect> Dialects => Storage.Tests.TestDatabases.Dialects;

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task Entries_added_later_find_earlier_uploads_and_open_retroactive_cases_once(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect, o =>
        {
            o.SignalLog = true;
            o.RetroactivePollMilliseconds = 100;
        });
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "later", action = new { quarantine = true, notify = false } }), HttpStatusCode.Created);

        // Three uploads by two users before the list knows anything: none matches.
        var images = new[] { Media.Jpeg(11), Media.Jpeg(12), Media.Jpeg(13) };
        var uploaders = new[] { "u-1", "u-1", "u-2" };
        var pdqs = new List<string>();
        for (var i = 0; i < images.Length; i++)
        {
            var r = await HttpAssert.Json(await submitter.PostAsync($"v1/match?uploader_id={uploaders[i]}&uploaded_at=2026-02-0{i + 1}T10:00:00Z&content_url=https://x.test/{i}", Raw(images[i])));
            Assert.False(r.GetProperty("matched").GetBoolean());
            pdqs.Add(r.GetProperty("signals").GetProperty("pdq").GetProperty("hash").GetString()!);
        }

        var log = server.App.Services.GetRequiredService<Storage.SignalLog>();
        Assert.Equal(3, log.Partitions().Sum(log.Count));

        // The list grows: entries for uploads 0 and 2 (not 1).
        foreach (var i in new[] { 0, 2 })
        {
            await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks/later/entries", new { signal_type = "pdq", signal = pdqs[i], labels = new { category = "test" } }), HttpStatusCode.Created);
        }

        var review = server.App.Services.GetRequiredService<ReviewService>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (review.Cases.Cases.Sum(c => c.Clusters.Sum(k => k.Members.Count)) < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var members = review.Cases.Cases.SelectMany(c => c.Clusters.SelectMany(k => k.Members).Select(m => (c.UploaderId, m))).ToList();
        Assert.Equal(2, members.Count);
        Assert.Equal(["u-1", "u-2"], members.Select(m => m.UploaderId).Order());
        Assert.All(members, m => Assert.Contains(m.m.Matches, e => e.Labels.ContainsKey(ReviewService.RetroactiveLabel)));
        Assert.Contains(members, m => m.m.Context.UploadedAt == new DateTimeOffset(2026, 2, 1, 10, 0, 0, TimeSpan.Zero));

        // More passes act on nothing twice.
        await Task.Delay(500);
        using var c = server.App.Services.GetRequiredService<WardenDatabase>().OpenConnection();
        Assert.Equal(2, c.ExecuteScalar<long>("SELECT COUNT(*) FROM match_events WHERE action = 'retroactive'"));
        Assert.Equal(2, log.Matches("retroactive").Count);
        Assert.Equal(2, review.Cases.Cases.Sum(x => x.Clusters.Sum(k => k.Members.Count)));

        // An upload after the entry exists matches live and is not counted again retroactively.
        var live = await HttpAssert.Json(await submitter.PostAsync("v1/match?uploader_id=u-3", Raw(images[0])));
        Assert.True(live.GetProperty("matched").GetBoolean());
        await Task.Delay(500);
        Assert.Equal(2, log.Matches("retroactive").Count);
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task A_model_banked_later_finds_earlier_uploads_that_named_it(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect, o =>
        {
            o.SignalLog = true;
            o.RetroactivePollMilliseconds = 100;
        });
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "models", action = new { quarantine = true, notify = false } }), HttpStatusCode.Created);

        // Two generated images naming different checkpoints (by AutoV2 hash), matched before any bank knows them.
        foreach (var (model, user) in new[] { ("0123abcdef", "u-1"), ("fedcba3210", "u-2") })
        {
            var png = new ByteArrayContent(ProvenanceApiTests.A1111Png(model));
            png.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            Assert.False((await HttpAssert.Json(await submitter.PostAsync($"v1/match?uploader_id={user}", png))).GetProperty("matched").GetBoolean());
        }

        var log = server.App.Services.GetRequiredService<Storage.SignalLog>();
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks/models/entries", new { signal_type = "civitai_autov2", signal = "0123abcdef" }), HttpStatusCode.Created);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (log.Matches("retroactive").Count < 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        await Task.Delay(300);
        var (match, _) = Assert.Single(log.Matches("retroactive"));
        Assert.Equal("civitai_autov2", match.SignalType);
        Assert.Equal("u-1", match.Uploader);
    }

    [SkippableTheory]
    [MemberData(nameof(Dialects))]
    public async Task A_large_delta_becomes_tasks_for_the_workers_and_their_matches_are_acted_on_once(SqlDialect dialect)
    {
        await using var server = await TestServer.StartAsync(dialect, o =>
        {
            o.SignalLog = true;
            o.RetroactivePollMilliseconds = 100;
            o.RetroactiveFanOutEntries = 3;
        });
        using var submitter = server.Client(Role.Submitter);
        using var curator = server.Client(Role.Curator);
        await HttpAssert.Json(await curator.PostAsJsonAsync("v1/banks", new { name = "later", action = new { quarantine = true, notify = false } }), HttpStatusCode.Created);
        var pdqs = new List<string>();
        foreach (var (seed, user) in new[] { (21, "u-1"), (22, "u-1"), (23, "u-2") })
        {
            var r = await HttpAssert.Json(await submitter.PostAsync($"v1/match?uploader_id={user}", Raw(Media.Jpeg(seed))));
            pdqs.Add(r.GetProperty("signals").GetProperty("pdq").GetProperty("hash").GetString()!);
        }

        var log = server.App.Services.GetRequiredService<Storage.SignalLog>();
        var banks = server.App.Services.GetRequiredService<BankStore>();
        var bank = banks.ListBanks().Single(b => b.Name == "later");
        static BankEntryRecord Pdq(string h) => new("pdq", h, new Dictionary<string, string>());

        // A small delta (one entry) stays in the server.
        banks.Import(bank.Id, [Pdq(pdqs[1])], "test");
        await Until(() => log.Matches("retroactive").Count == 1);

        // A large one (three entries) becomes one task per log unit, searched by nobody in the server.
        banks.Import(bank.Id, [Pdq(pdqs[0]), Pdq(pdqs[2]), Pdq(new string('f', 64))], "test");
        var tasks = new RetroTasks(log);
        await Until(() => tasks.Status() is [{ Entries: 3 }]);
        await Task.Delay(400);
        Assert.Single(log.Matches("retroactive"));

        // What `warden worker` does with each task (twice: a redelivery records nothing and is not marked again).
        using var conn = server.App.Services.GetRequiredService<WardenDatabase>().OpenConnection();
        var keys = conn.Query<string>("SELECT task_key FROM retro_tasks").ToList();
        Assert.Equal(RetroactiveSearch.Units(log).Count, keys.Count);
        using var search = new RetroactiveSearch(log);
        var done = new List<bool>();
        foreach (var round in new[] { 1, 2 })
        {
            foreach (var key in keys)
            {
                var task = tasks.Get(key)!;
                Assert.Equal(round == 2, task.Done);
                var hits = search.Search(RetroactivePass.ReadDelta(banks, task.After, task.High), task.Unit);
                using var c = log.Open();
                using var tx = c.BeginTransaction();
                var recorded = RetroactivePass.Record(log, c, tx, hits);
                done.Add(tasks.TryComplete(c, tx, key, recorded.Count, "test-worker"));
                tx.Commit();
            }
        }

        Assert.Equal(keys.Select(_ => true).Concat(keys.Select(_ => false)), done);
        Assert.Equal(3, log.Matches("retroactive").Count);
        Assert.Equal((keys.Count, 2L), (tasks.Status()[0].Done, tasks.Status()[0].Hits));

        // The server acts on the workers' matches as on its own: three cases members in all, once each.
        var review = server.App.Services.GetRequiredService<ReviewService>();
        await Until(() => review.Cases.Cases.Sum(x => x.Clusters.Sum(k => k.Members.Count)) >= 3);
        await Task.Delay(500);
        Assert.Equal(3, review.Cases.Cases.Sum(x => x.Clusters.Sum(k => k.Members.Count)));
        Assert.Equal(3, conn.ExecuteScalar<long>("SELECT COUNT(*) FROM match_events WHERE action = 'retroactive'"));
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.True(condition(), "the condition was not met in 20 s");
    }

    private static ByteArrayContent Raw(byte[] data)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        return content;
    }
}
