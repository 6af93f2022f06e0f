using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.Cli.Backfill;
using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Storage;

namespace Warden.Cli.Tests.Backfill;

/// <summary>
/// A retroactive delta large enough to fan out: the pass splits it into one task per log unit, three
/// `warden worker` processes publish and run them, one is SIGKILLed in the middle of a task. The matches
/// recorded equal a brute-force scan of every logged upload against every entry, each exactly once; the
/// killed worker's task is finished by another; redelivering every task changes nothing; and concurrent
/// actors claim each match once.
/// </summary>
public sealed class RetroFanOutTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-retro-fan-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [SkippableFact]
    public async Task A_large_delta_over_three_workers_one_killed_equals_brute_force_and_is_acted_on_once()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        var db = Path.Combine(_dir, "warden.db");
        var rng = new Random(4711);
        var today = DateTimeOffset.UtcNow;

        // The log: 13 days up to today (closed weeks merge, the rest are single days: at least 3 units), clustered PDQ with
        // 1 or 8 variants and an MD5 each; a tenth were matched after the entries went live (never retroactive).
        var rows = new List<(int Day, long Id, PdqHash[] Pdq, string Md5, long Seq)>();
        var centres = Enumerable.Range(0, 30).Select(_ => Random(rng)).ToArray();
        long before;
        using (var store = BankStore.Open(db))
        {
            store.CreateBank("later");
            before = store.ChangeSequence();
            var clock = new Clock();
            var log = new Storage.SignalLog(store.Database, store.CacheDirectory("signal-log"), time: clock);
            for (var d = 12; d >= 0; d--)
            {
                clock.Now = today.AddDays(-d);
                for (var i = 0; i < 60; i++)
                {
                    var pdq = Enumerable.Range(0, rng.Next(2) == 0 ? 1 : 8).Select(_ => Flip(centres[rng.Next(centres.Length)], rng, rng.Next(0, 48))).ToArray();
                    var md5 = Convert.ToHexStringLower(BitConverter.GetBytes(rng.NextInt64())) + Convert.ToHexStringLower(BitConverter.GetBytes(rng.NextInt64()));
                    var seq = rng.Next(10) == 0 ? long.MaxValue / 2 : before;
                    var (day, id) = log.Append(
                        new LoggedSignals(pdq, 90, null, [("md5", md5), ("sha256", md5 + md5)]),
                        new UploadRecord("user-" + (i % 7).ToString(CultureInfo.InvariantCulture), $"c-{d}-{i}", null, clock.Now, "api", seq));
                    rows.Add((day, id, pdq, md5, seq));
                }
            }

            // The delta: 300 PDQ entries (half near logged uploads, half new content) and 60 MD5s (most logged).
            var bank = store.ListBanks().Single();
            var records = Enumerable.Range(0, 300)
                .Select(i => (i % 2 == 0 ? Flip(rows[rng.Next(rows.Count)].Pdq[0], rng, rng.Next(0, 40)) : Random(rng)).ToString())
                .Distinct()
                .Select(h => new BankEntryRecord("pdq", h, new Dictionary<string, string>()))
                .Concat(Enumerable.Range(0, 60).Select(i => new BankEntryRecord("md5", i % 6 == 0 ? Convert.ToHexStringLower(BitConverter.GetBytes(rng.NextInt64())) + "00000000" + "00000000" : rows[rng.Next(rows.Count)].Md5, new Dictionary<string, string>())))
                .DistinctBy(r => (r.SignalType, r.Signal))
                .ToList();
            store.Import(bank.Id, records, "test");
        }

        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        HashSet<string> expected;
        int units;
        using (var store = BankStore.Open(db))
        {
            var log = new Storage.SignalLog(store.Database, store.CacheDirectory("signal-log"));

            // Brute force over every logged upload and every entry of the delta.
            var entries = RetroactivePass.ReadDelta(store, before, store.ChangeSequence());
            Assert.True(entries.Count >= 300, "the delta must be large");
            expected = [];
            foreach (var e in entries)
            {
                foreach (var r in rows.Where(r => r.Seq < e.Seq))
                {
                    var hit = e.SignalType == "pdq" ? r.Pdq.Min(h => h.DistanceTo(PdqHash.Parse(e.Signal))) <= e.Threshold : e.Signal == r.Md5;
                    if (hit)
                    {
                        expected.Add($"rt:{e.EntryId}:{r.Day}:{r.Id}");
                    }
                }
            }

            Assert.True(expected.Count > 50, "the fixture must have many hits");

            // The server's pass with a fan-out size below the delta: nothing searched in process, one task per unit.
            using var search = new RetroactiveSearch(log);
            Assert.Empty(RetroactivePass.Run(store, log, search, fanOutAt: 100));
            var delta = Assert.Single(new RetroTasks(log).Status());
            units = (int)delta.Units;
            Assert.Equal(RetroactiveSearch.Units(log).Count, units);
            Assert.True(units >= 3, $"13 days should make at least 3 units, not {units}");
            Assert.Equal((0L, 0L), (delta.Queued, delta.Done));
            Assert.Empty(log.Matches());
        }

        var lines = new ConcurrentQueue<(string Worker, JsonElement Line)>();
        // Worker a publishes the tasks, takes one and sits on it (its lease kept alive by its heartbeat while b and
        // c start and work): SIGKILL it mid-task.
        using var a = Workers.Start("a", db, nats.Url, "RETRO", 60_000, lines, exitWhenIdle: null);
        var killed = Workers.WaitFor(() => lines.FirstOrDefault(l => l.Worker == "a" && l.Line.GetProperty("event").GetString() == "start").Line, 90);
        Assert.Equal("retro", killed.GetProperty("kind").GetString());
        using var b = Workers.Start("b", db, nats.Url, "RETRO", 150, lines, exitWhenIdle: 4);
        using var c = Workers.Start("c", db, nats.Url, "RETRO", 150, lines, exitWhenIdle: 4);
        Workers.WaitFor(() => lines.Any(l => l.Worker != "a" && l.Line.GetProperty("event").GetString() == "done") ? "ok" : null, 90);
        Assert.DoesNotContain(lines, l => l.Worker == "a" && l.Line.GetProperty("event").GetString() == "done");
        a.Kill();
        await a.WaitForExitAsync();
        Assert.True(b.WaitForExit(120_000) && c.WaitForExit(30_000), "workers b and c should finish every task and exit");
        var killedKey = killed.GetProperty("key").GetString();
        Assert.Contains(lines, l => l.Worker != "a" && l.Line.GetProperty("event").GetString() == "done" && l.Line.GetProperty("key").GetString() == killedKey);

        using (var store = BankStore.Open(db))
        {
            var log = new Storage.SignalLog(store.Database, store.CacheDirectory("signal-log"));
            var matches = log.Matches("retroactive");
            Assert.Equal(expected, matches.Select(m => m.Match.Key).ToHashSet());
            Assert.Equal(expected.Count, matches.Count);
            var status = Assert.Single(new RetroTasks(log).Status());
            Assert.Equal((units, units, units, (long)expected.Count), (status.Units, status.Queued, status.Done, status.Hits));

            // Every task delivered again (a fresh stream, past the broker's duplicate window): all recognised as done.
            await using (var queue = new NatsWorkQueue(nats.Url, TimeSpan.FromSeconds(5), 5, "test", "RETRO_AGAIN"))
            {
                await queue.EnsureAsync(CancellationToken.None);
                using var conn = store.Database.OpenConnection();
                foreach (var key in conn.Query<string>("SELECT task_key FROM retro_tasks"))
                {
                    Assert.True(await queue.EnqueueAsync(WorkItem.Retro(key), CancellationToken.None));
                }

                var output = new StringWriter();
                using var again = new BackfillWorker(queue, store, log, new WorkerOptions("again", TimeSpan.FromSeconds(1), TimeSpan.Zero, 1 << 20, 3, TimeSpan.FromSeconds(5)), output, TextWriter.Null);
                await again.RunAsync(CancellationToken.None);
                var outcomes = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                    .Where(j => j.GetProperty("event").GetString() == "done").Select(j => j.GetProperty("outcome").GetString()).ToList();
                Assert.Equal(Enumerable.Repeat("duplicate", units), outcomes);
            }

            Assert.Equal(expected.Count, log.Matches("retroactive").Count);
            var (code, text, err) = Cli.Run("backfill", "status", "--nats", nats.Url, "--queue", "RETRO", "--db", db, "--format", "jsonl");
            Assert.True(code == 0, err);
            var retro = JsonDocument.Parse(text).RootElement.GetProperty("retroactive")[0];
            Assert.Equal((units, units, expected.Count), (retro.GetProperty("units").GetInt32(), retro.GetProperty("done").GetInt32(), retro.GetProperty("matches").GetInt32()));

            // Two actors (two server nodes) claim concurrently: each match goes to exactly one of them.
            var claimed = new ConcurrentBag<string>();
            Parallel.For(0, 2, _ =>
            {
                while (log.ClaimUnacted(7) is { Count: > 0 } batch)
                {
                    foreach (var m in batch)
                    {
                        claimed.Add(m.Key);
                    }
                }
            });
            Assert.Equal(expected.Order(), claimed.Order());
        }
    }

    private static PdqHash Random(Random rng) => new((ulong)rng.NextInt64() * 2, (ulong)rng.NextInt64() * 2, (ulong)rng.NextInt64() * 2, (ulong)rng.NextInt64() * 2);

    private static PdqHash Flip(PdqHash h, Random rng, int bits)
    {
        Span<ulong> w = [h.W0, h.W1, h.W2, h.W3];
        for (var i = 0; i < bits; i++)
        {
            var b = rng.Next(256);
            w[b >> 6] ^= 1UL << (b & 63);
        }

        return new PdqHash(w[0], w[1], w[2], w[3]);
    }

    private sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; }

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
