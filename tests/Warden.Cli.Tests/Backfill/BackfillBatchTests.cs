using System.Text.Json;
using Dapper;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Data.Sqlite;
using Warden.Cli.Backfill;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Tests;
using Warden.Storage;

namespace Warden.Cli.Tests.Backfill;

/// <summary>
/// The worker's batches: whatever mix of new, repeated, already-done, missing and malformed items a batch holds,
/// and whatever the batch size and hashing threads, every new item is logged and claimed once, every match recorded
/// once, every message settled once (acked, or dead-lettered with the reason); two workers handed the same items at
/// once (a redelivery racing the first delivery) still log each once. Also the NATS queue's batch take.
/// </summary>
public sealed class BackfillBatchTests : IDisposable
{
    private const int Pool = 4;
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-bfb-").FullName;
    private readonly byte[][] _images;
    private readonly string _baseDb;
    private readonly Dictionary<int, HashSet<(long Entry, string Type)>> _expected = [];
    private int _case;

    public BackfillBatchTests()
    {
        // A pool of images; the bank knows two by PDQ and one more by MD5, the fourth is unknown.
        _images = Enumerable.Range(0, Pool).Select(i => SyntheticImages.Encode(SyntheticImages.Blobs(80, 80, 300 + i), 80, 80, "png")).ToArray();
        _baseDb = Path.Combine(_dir, "base.db");
        using var store = BankStore.Open(_baseDb);
        using var hasher = new ContentHasher();
        var hashes = _images.Select(b => hasher.HashBytes(b, dihedral: true)).ToList();
        var bank = store.CreateBank("known");
        store.Import(bank.Id, [
            new BankEntryRecord("pdq", hashes[0].Image!.Pdq.Hash.ToString(), new Dictionary<string, string>()),
            new BankEntryRecord("pdq", hashes[2].Image!.Pdq.Hash.ToString(), new Dictionary<string, string>()),
            new BankEntryRecord("md5", hashes[1].Exact.Md5Hex, new Dictionary<string, string>()),
        ], "test");
        using var matcher = new BankMatcher(store.ListBanks());
        store.ReadIndex(e => matcher.Add(e.Id, e.BankId, e.SignalType, e.Signal));
        for (var i = 0; i < Pool; i++)
        {
            _expected[i] = matcher.Match(hashes[i].ToSignals()).Where(h => !h.Suppressed).Select(h => (h.EntryId, h.SignalType)).ToHashSet();
        }

        // The signal log's tables exist in the copy every case starts from.
        _ = new Storage.SignalLog(store.Database, Path.Combine(_dir, "snap"));
        SqliteConnection.ClearAllPools();
    }

    /// <summary>What one message of a generated stream is.</summary>
    public enum Spec
    {
        /// <summary>A new file (image pool index = position mod pool).</summary>
        New,

        /// <summary>The same message as an earlier one (a re-enqueue past the broker's window, or a redelivery).</summary>
        Repeat,

        /// <summary>An item some earlier run already finished.</summary>
        AlreadyDone,

        /// <summary>A file that vanished after it was queued.</summary>
        Missing,

        /// <summary>Not an item at all.</summary>
        Malformed,
    }

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

    [Property(MaxTest = 30)]
    public Property Any_batch_mix_size_and_thread_count_logs_claims_and_settles_each_item_once() =>
        Prop.ForAll(
            Gen.Elements(Enum.GetValues<Spec>()).ListOf().Where(l => l.Count is >= 1 and <= 40).ToArbitrary(),
            Gen.Choose(1, 3).ToArbitrary(),
            // The batch limit (1..9) and whether running stats lines are printed (every batch), in one number.
            Gen.Choose(0, 17).ToArbitrary(),
            (specs, threads, batchAndStats) => RunCase(specs.ToList(), threads, (batchAndStats / 2) + 1, batchAndStats % 2 == 1));

    [Fact]
    public void Every_kind_of_item_in_one_large_batch()
    {
        // The generator's cases, but all at once and every kind several times.
        var specs = Enumerable.Range(0, 60).Select(i => (Spec)(i % 5)).ToList();
        RunCase(specs, threads: 2, maxBatch: 64);
        RunCase(specs, threads: 1, maxBatch: 1, runningStats: true);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("NaN")]
    [InlineData("86401")]
    [InlineData("soon")]
    public void A_worker_refuses_a_stats_interval_out_of_range(string seconds)
    {
        var error = new StringWriter();
        var exit = WardenCli.Run(["worker", "--db", Path.Combine(_dir, "never.db"), "--nats", "nats://127.0.0.1:1", "--stats-seconds", seconds], TextWriter.Null, error);
        Assert.NotEqual(WardenCli.Ok, exit);
        Assert.Contains("--stats-seconds", error.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "never.db")));
    }

    [Fact]
    public async Task Two_workers_handed_the_same_items_at_once_log_each_once()
    {
        // Both workers pass the batch's ledger check before either commits (the item delay holds them in the
        // hashing phase), so the loser finds the key claimed inside its transaction and takes its rows back.
        foreach (var (n, threads, batch) in new[] { (12, 2, 64), (7, 1, 3), (20, 3, 5) })
        {
            var db = FreshDb();
            var sources = Enumerable.Range(0, n).Select(i => WriteImage(i)).ToList();
            var queues = new[] { new MemoryQueue(), new MemoryQueue() };
            foreach (var q in queues)
            {
                foreach (var s in sources)
                {
                    q.Add(WorkItem.For(s, "u1").ToBytes());
                }
            }

            using var store = BankStore.Open(db);
            var log = new Storage.SignalLog(store.Database, Path.Combine(_dir, "snap-race"));
            var outputs = new[] { new StringWriter(), new StringWriter() };
            var workers = Enumerable.Range(0, 2).Select(i => new BackfillWorker(queues[i], store, log,
                new WorkerOptions("w" + i, TimeSpan.Zero, TimeSpan.FromMilliseconds(150), 1 << 20, 3, TimeSpan.FromSeconds(60), threads, batch), outputs[i], TextWriter.Null)).ToList();
            try
            {
                await Task.WhenAll(workers.Select(w => Task.Run(() => w.RunAsync(CancellationToken.None))));
            }
            finally
            {
                workers.ForEach(w => w.Dispose());
            }

            using var c = store.Database.OpenConnection();
            var logged = log.Partitions().SelectMany(d => c.Query<string>($"SELECT content_id FROM signal_log_{d}")).ToList();
            Assert.Equal(sources.Order(), logged.Order());
            Assert.Equal(sources.Count, log.Partitions().Sum(d => c.ExecuteScalar<long>($"SELECT COUNT(DISTINCT log_id) FROM signal_log_x_{d}")));
            Assert.Equal(n, c.ExecuteScalar<long>("SELECT COUNT(*) FROM backfill_items"));
            var expected = sources.SelectMany((s, i) => _expected[i % Pool].Select(e => (s, e.Entry, e.Type))).ToHashSet();
            var matches = log.Matches("backfill");
            Assert.Equal(expected, matches.Select(m => (m.Match.ContentId!, m.Match.EntryId, m.Match.SignalType)).ToHashSet());
            Assert.Equal(expected.Count, matches.Count);
            foreach (var q in queues)
            {
                Assert.All(q.Settlements, s => Assert.Equal(["ack"], s.Value));
                Assert.Equal(n, q.Settlements.Count);
            }

            var outcomes = outputs.SelectMany(o => Done(o.ToString())).ToList();
            Assert.Equal(n, outcomes.Count(o => o == "logged"));
            Assert.Equal(n, outcomes.Count(o => o == "duplicate"));
        }
    }

    [SkippableFact]
    public async Task The_NATS_queue_hands_out_what_is_there_at_once_and_waits_only_when_empty()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        await using var queue = new NatsWorkQueue(nats.Url, TimeSpan.FromSeconds(30), 3, "test", "TAKE");
        await queue.EnsureAsync(CancellationToken.None);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(await queue.EnqueueAsync(WorkItem.For("/x/" + i, null), CancellationToken.None));
        }

        var wait = TimeSpan.FromSeconds(5);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var first = await queue.TakeAsync(4, wait, CancellationToken.None);
        var rest = await queue.TakeAsync(100, wait, CancellationToken.None);
        Assert.Equal((4, 6), (first.Count, rest.Count));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"a partial batch must not wait out the pull's expiry ({clock.Elapsed})");
        Assert.Equal(10, first.Concat(rest).Select(l => WorkItem.Parse(l.Data.Span, out _)!.Key).Distinct().Count());

        // In flight until acknowledged; then the queue is empty and a take waits (up to its limit) and returns nothing.
        Assert.Equal(10, (await queue.StateAsync(CancellationToken.None)).InFlight);
        await Task.WhenAll(first.Concat(rest).Select(l => l.AckAsync(CancellationToken.None)));
        clock.Restart();
        Assert.Empty(await queue.TakeAsync(8, TimeSpan.FromSeconds(1), CancellationToken.None));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(800), $"an empty queue waits for the first item ({clock.Elapsed})");

        // An item published while a take waits is handed out then, not after the wait.
        var pending = queue.TakeAsync(8, wait, CancellationToken.None);
        await Task.Delay(300);
        Assert.True(await queue.EnqueueAsync(WorkItem.For("/late", null), CancellationToken.None));
        clock.Restart();
        var late = await pending;
        Assert.Single(late);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the waiting take returns with the first item ({clock.Elapsed})");
        await late[0].AckAsync(CancellationToken.None);

        // Acks are not confirmed by the server (no round trip each): the stream drops the item shortly after.
        var waiting = -1L;
        for (var i = 0; i < 100 && waiting != 0; i++)
        {
            waiting = (await queue.StateAsync(CancellationToken.None)).Waiting;
            await Task.Delay(waiting == 0 ? 0 : 50);
        }

        Assert.Equal(0, waiting);
    }

    /// <summary>
    /// The exit line's totals, and with running stats one running line per batch (interval zero) whose totals only
    /// grow and end at the exit line's: the differences of two lines are a window's figures.
    /// </summary>
    private static void CheckStats(string jsonLines, bool running, int messages)
    {
        var lines = jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var final = Assert.Single(lines, e => e.GetProperty("event").GetString() == "stats");
        Assert.Equal(messages, final.GetProperty("items").GetInt64());
        var so = lines.Where(e => e.GetProperty("event").GetString() == "stats_so_far").ToList();
        if (!running)
        {
            Assert.Empty(so);
            return;
        }

        Assert.Equal(final.GetProperty("batches").GetInt64(), so.Count);
        Assert.Equal(final.GetProperty("items").GetInt64(), so[^1].GetProperty("items").GetInt64());
        foreach (var (before, after) in so.Zip(so.Skip(1).Append(final)))
        {
            Assert.True(after.GetProperty("items").GetInt64() >= before.GetProperty("items").GetInt64());
            Assert.True(after.GetProperty("batches").GetInt64() >= before.GetProperty("batches").GetInt64());
            Assert.True(after.GetProperty("busy_items").GetInt64() >= before.GetProperty("busy_items").GetInt64());
            foreach (var counter in new[] { "allocated_mb", "gc0", "gc1", "gc2" })
            {
                // Process totals so far: never going back, and present on every line.
                Assert.True(after.GetProperty(counter).GetDouble() >= before.GetProperty(counter).GetDouble(), counter);
            }

            foreach (var stage in before.GetProperty("stages_ms").EnumerateObject())
            {
                Assert.True(after.GetProperty("stages_ms").GetProperty(stage.Name).GetDouble() >= stage.Value.GetDouble(), stage.Name);
            }
        }
    }

    private static IEnumerable<string> Done(string jsonLines) =>
        jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("event").GetString() == "done").Select(e => e.GetProperty("outcome").GetString()!);

    private bool RunCase(List<Spec> specs, int threads, int maxBatch, bool runningStats = false)
    {
        var db = FreshDb();
        using var store = BankStore.Open(db);
        var log = new Storage.SignalLog(store.Database, Path.Combine(_dir, "snap-" + _case));
        var queue = new MemoryQueue();
        var messages = new List<byte[]>();
        var fresh = new Dictionary<string, int>(StringComparer.Ordinal); // source -> pool image, for items to be logged now
        var done = 0;
        var dead = new List<string>();
        for (var i = 0; i < specs.Count; i++)
        {
            switch (specs[i])
            {
                case Spec.New:
                case Spec.Repeat when messages.Count == 0:
                    var source = WriteImage(i);
                    fresh[source] = i % Pool;
                    messages.Add(WorkItem.For(source, "u" + (i % 3)).ToBytes());
                    break;
                case Spec.Repeat:
                    messages.Add(messages[i * 7 % messages.Count]);
                    break;
                case Spec.AlreadyDone:
                    // Finished by an earlier run: its key is in the ledger (and its file is still there).
                    var item = WorkItem.For(WriteImage(i), null);
                    using (var c = store.Database.OpenConnection())
                    using (var tx = c.BeginTransaction())
                    {
                        Assert.True(new BackfillLedger(log).TryComplete(c, tx, item.Key, "logged", "earlier"));
                        tx.Commit();
                    }

                    done++;
                    messages.Add(item.ToBytes());
                    break;
                case Spec.Missing:
                    messages.Add(WorkItem.For(Path.Combine(_dir, $"gone-{_case}-{i}.png"), null).ToBytes());
                    break;
                default:
                    messages.Add("{\"source\":\"no key\"}"u8.ToArray());
                    break;
            }
        }

        foreach (var m in messages)
        {
            queue.Add(m);
        }

        var output = new StringWriter();
        using (var worker = new BackfillWorker(queue, store, log, new WorkerOptions("p", TimeSpan.Zero, TimeSpan.Zero, 1 << 20, 3, TimeSpan.FromSeconds(60), threads, maxBatch, runningStats ? TimeSpan.Zero : null), output, TextWriter.Null))
        {
            worker.RunAsync(CancellationToken.None).GetAwaiter().GetResult();
            Assert.Equal(messages.Count, worker.Processed);
        }

        // Every new source logged once (repeats included), with its upload's matches once each.
        using var conn = store.Database.OpenConnection();
        var logged = log.Partitions().SelectMany(d => conn.Query<string>($"SELECT content_id FROM signal_log_{d}")).ToList();
        Assert.Equal(fresh.Keys.Order(), logged.Order());
        Assert.Equal(fresh.Count + done, conn.ExecuteScalar<long>("SELECT COUNT(*) FROM backfill_items"));
        var expected = fresh.SelectMany(f => _expected[f.Value].Select(e => (f.Key, e.Entry, e.Type))).ToHashSet();
        var matches = log.Matches("backfill");
        Assert.Equal(expected, matches.Select(m => (m.Match.ContentId!, m.Match.EntryId, m.Match.SignalType)).ToHashSet());
        Assert.Equal(expected.Count, matches.Count);

        // Every message settled exactly once: missing files and malformed messages dead-lettered with the reason, the rest acked.
        Assert.Equal(messages.Count, queue.Settlements.Count);
        Assert.All(queue.Settlements.Values, s => Assert.Single(s));
        var settled = queue.Settlements.Values.Select(s => s[0]).ToList();
        Assert.Equal(specs.Count(s => s == Spec.Missing) + specs.Count(s => s == Spec.Malformed) + RepeatsOfDead(specs), settled.Count(s => s.StartsWith("dead:", StringComparison.Ordinal)));
        Assert.All(settled.Where(s => s.StartsWith("dead:", StringComparison.Ordinal)), s => Assert.True(s.Contains("no such file", StringComparison.Ordinal) || s.Contains("not a backfill item", StringComparison.Ordinal), s));
        var outcomes = Done(output.ToString()).ToList();
        Assert.Equal(messages.Count, outcomes.Count);
        Assert.Equal(fresh.Count, outcomes.Count(o => o == "logged"));
        Assert.All(queue.Takes, t => Assert.InRange(t, 1, maxBatch));
        CheckStats(output.ToString(), runningStats, messages.Count);
        _case++;
        return true;

        int RepeatsOfDead(List<Spec> s)
        {
            // A repeat copies an earlier message; count the repeats that copied a missing or malformed one.
            var kinds = new List<Spec>();
            var n = 0;
            for (var i = 0; i < s.Count; i++)
            {
                if (s[i] == Spec.Repeat && kinds.Count > 0)
                {
                    var copied = kinds[i * 7 % kinds.Count];
                    n += copied is Spec.Missing or Spec.Malformed ? 1 : 0;
                    kinds.Add(copied);
                }
                else
                {
                    kinds.Add(s[i] == Spec.Repeat ? Spec.New : s[i]);
                }
            }

            return n;
        }
    }

    private string FreshDb()
    {
        var db = Path.Combine(_dir, $"case-{_case++}.db");
        File.Copy(_baseDb, db);
        return db;
    }

    private string WriteImage(int i)
    {
        var path = Path.Combine(_dir, $"img-{_case}-{i}.png");
        File.WriteAllBytes(path, _images[i % Pool]);
        return path;
    }

    /// <summary>
    /// A work queue in memory for the batch properties (the NATS one is tested on a real server above and in the
    /// kill tests): hands out up to what is asked, records how each message was settled.
    /// </summary>
    private sealed class MemoryQueue : IWorkQueue
    {
        private readonly Lock _gate = new();
        private readonly Queue<(int Id, byte[] Data, long Deliveries)> _waiting = new();
        private int _next;
        private int _inFlight;

        /// <summary>Per message id, how it was settled, in order ("ack", "retry", "dead:REASON").</summary>
        public Dictionary<int, List<string>> Settlements { get; } = [];

        /// <summary>The batch sizes asked for.</summary>
        public List<int> Takes { get; } = [];

        public void Add(byte[] data)
        {
            lock (_gate)
            {
                _waiting.Enqueue((_next++, data, 1));
            }
        }

        public Task EnsureAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<bool> EnqueueAsync(WorkItem item, CancellationToken cancellationToken)
        {
            Add(item.ToBytes());
            return Task.FromResult(true);
        }

        public async Task<IReadOnlyList<IWorkLease>> TakeAsync(int max, TimeSpan wait, CancellationToken cancellationToken)
        {
            var leases = new List<IWorkLease>();
            lock (_gate)
            {
                Takes.Add(max);
                while (leases.Count < max && _waiting.TryDequeue(out var m))
                {
                    _inFlight++;
                    leases.Add(new MemoryLease(this, m.Id, m.Data, m.Deliveries));
                }
            }

            if (leases.Count == 0)
            {
                await Task.Delay(20, cancellationToken);
            }

            return leases;
        }

        public Task<QueueState> StateAsync(CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                return Task.FromResult(new QueueState(_next, _waiting.Count + _inFlight, _inFlight, 0));
            }
        }

        public Task<IReadOnlyList<(string Data, string Reason)>> DeadLettersAsync(int limit, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<(string, string)>>([]);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private void Settle(int id, string how, byte[]? again = null, long deliveries = 0)
        {
            lock (_gate)
            {
                _inFlight--;
                if (!Settlements.TryGetValue(id, out var list))
                {
                    Settlements[id] = list = [];
                }

                list.Add(how);
                if (again is not null)
                {
                    _waiting.Enqueue((id, again, deliveries));
                }
            }
        }

        private sealed class MemoryLease(MemoryQueue queue, int id, byte[] data, long deliveries) : IWorkLease
        {
            public ReadOnlyMemory<byte> Data => data;

            public long Deliveries => deliveries;

            public Task AckAsync(CancellationToken cancellationToken)
            {
                queue.Settle(id, "ack");
                return Task.CompletedTask;
            }

            public Task RetryAsync(CancellationToken cancellationToken)
            {
                queue.Settle(id, "retry", data, deliveries + 1);
                return Task.CompletedTask;
            }

            public Task InProgressAsync(CancellationToken cancellationToken) => Task.CompletedTask;

            public Task DeadLetterAsync(string reason, CancellationToken cancellationToken)
            {
                queue.Settle(id, "dead:" + reason);
                return Task.CompletedTask;
            }
        }
    }
}
