using System.Text.Json;
using Microsoft.Data.Sqlite;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Warden.Cli.Backfill;
using Warden.Core.Tests;
using Warden.Storage;

namespace Warden.Cli.Tests.Backfill;

/// <summary>Poison items, pause/resume, re-enqueueing and bad command lines, on a real NATS server.</summary>
public sealed class BackfillQueueTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-bfq-").FullName;

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
    public async Task Poison_items_are_dead_lettered_with_the_reason_pause_holds_workers_and_done_items_are_not_redone()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        var db = Path.Combine(_dir, "w.db");
        using (var s = BankStore.Open(db))
        {
            s.CreateBank("empty");
        }

        var good = Path.Combine(_dir, "a.png");
        File.WriteAllBytes(good, SyntheticImages.Encode(SyntheticImages.Blobs(64, 64, 7), 64, 64, "png"));
        var empty = Path.Combine(_dir, "empty.bin");
        File.WriteAllBytes(empty, []);
        var missing = Path.Combine(_dir, "gone.png");
        File.WriteAllBytes(missing, [1, 2, 3]);
        // Regular files when enqueued, then swapped for a FIFO and a link to /dev/zero before a worker reads
        // them: opening the FIFO would wait for ever and /dev/zero never ends, so both must be refused at once.
        var fifo = Path.Combine(_dir, "fifo.png");
        File.WriteAllBytes(fifo, [1]);
        var device = Path.Combine(_dir, "device.png");
        File.WriteAllBytes(device, [2]);
        const string Queue = "POISON";
        Assert.Equal(0, Cli.Run("backfill", good, empty, missing, fifo, device, "--nats", nats.Url, "--queue", Queue).Exit);
        File.Delete(missing); // vanished between enqueue and work: poison
        File.Delete(fifo);
        SpecialFiles.Fifo(fifo);
        File.Delete(device);
        File.CreateSymbolicLink(device, "/dev/zero");

        // Hostile messages straight onto the subject: not JSON, JSON without a key, a key that is not hex.
        // Published through JetStream and acknowledged, so the stream holds them before the counts below are read.
        await using (var raw = new NatsConnection(NatsOpts.Default with { Url = nats.Url }))
        {
            var js = new NatsJSContext(raw);
            // Also an unknown kind, and a retroactive task this database never created.
            var key = new string('a', 64);
            foreach (var bad in new[] { "\u0001\u0002 not json", "{\"source\":\"/etc/passwd\"}", "{\"key\":\"zz\",\"source\":\"x\"}", "[]", $"{{\"key\":\"{key}\",\"source\":\"x\",\"kind\":\"shell\"}}", $"{{\"key\":\"{key}\",\"source\":\"rt-task:1:2:d20260101\",\"kind\":\"retro\"}}" })
            {
                var ack = await js.PublishAsync($"warden.backfill.{Queue}.items", System.Text.Encoding.UTF8.GetBytes(bad));
                ack.EnsureSuccess();
            }
        }

        using var store = BankStore.Open(db);
        var log = new Storage.SignalLog(store.Database, Path.Combine(_dir, "snap"));
        var ledger = new BackfillLedger(log);

        // A retroactive task whose row names no log unit (a hand-edited database): the worker publishes it and dead-letters it.
        new RetroTasks(log).Create(1, 2, 5, ["bogus"]);
        Assert.Equal(0, Cli.Run("backfill", "pause", "--db", db).Exit);
        Assert.True(ledger.IsPaused());
        await using (var queue = new NatsWorkQueue(nats.Url, TimeSpan.FromSeconds(5), 3, "test", Queue))
        {
            await queue.EnsureAsync(CancellationToken.None);
            using var paused = new BackfillWorker(queue, store, log, new WorkerOptions("p", null, TimeSpan.Zero, 1 << 20, 3, TimeSpan.FromSeconds(60)), TextWriter.Null, TextWriter.Null);
            using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(1.5)))
            {
                await paused.RunAsync(stop.Token);
            }

            Assert.Equal(0, paused.Processed);
            Assert.Equal(11, (await queue.StateAsync(CancellationToken.None)).Waiting);

            Assert.Equal(0, Cli.Run("backfill", "resume", "--db", db).Exit);
            var output = new StringWriter();
            using var worker = new BackfillWorker(queue, store, log, new WorkerOptions("w", TimeSpan.FromSeconds(1), TimeSpan.Zero, 1 << 20, 3, TimeSpan.FromSeconds(60)), output, TextWriter.Null);
            await worker.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Equal(12, worker.Processed);
            var outcomes = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.GetProperty("event").GetString() == "done").Select(e => e.GetProperty("outcome").GetString()).Order().ToList();
            Assert.Equal(["dead", "dead", "dead", "dead", "dead", "dead", "dead", "dead", "dead", "dead", "logged", "logged"], outcomes); // an empty file is content too: its digests are logged
        }

        var (code, dead, _) = Cli.Run("backfill", "dead", "--nats", nats.Url, "--queue", Queue);
        Assert.Equal(0, code);
        var reasons = dead.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("reason").GetString()!).ToList();
        Assert.Equal(10, reasons.Count);
        Assert.Single(reasons, r => r.Contains("no such file", StringComparison.Ordinal));
        Assert.Single(reasons, r => r.Contains("is a named pipe (FIFO), not a regular file", StringComparison.Ordinal));
        Assert.Single(reasons, r => r.Contains("is a character device, not a regular file", StringComparison.Ordinal));
        Assert.Equal(5, reasons.Count(r => r.StartsWith("not a backfill item", StringComparison.Ordinal)));
        Assert.Single(reasons, r => r.Contains("unknown kind 'shell'", StringComparison.Ordinal));
        Assert.Single(reasons, r => r.Contains("no such retroactive task", StringComparison.Ordinal));
        Assert.Single(reasons, r => r.Contains("'bogus' is not a signal log unit", StringComparison.Ordinal));

        // Enqueueing the same files again (a restarted backfill) does not redo finished items.
        Assert.Equal(0, Cli.Run("backfill", good, empty, "--nats", nats.Url, "--queue", Queue).Exit);
        await using (var queue = new NatsWorkQueue(nats.Url, TimeSpan.FromSeconds(5), 3, "test", Queue))
        {
            await queue.EnsureAsync(CancellationToken.None);
            var output = new StringWriter();
            using var again = new BackfillWorker(queue, store, log, new WorkerOptions("w2", TimeSpan.FromSeconds(1), TimeSpan.Zero, 1 << 20, 3, TimeSpan.FromSeconds(60)), output, TextWriter.Null);
            await again.RunAsync(CancellationToken.None);
            Assert.DoesNotContain("\"logged\"", output.ToString(), StringComparison.Ordinal);
        }

        Assert.Equal(2, log.Partitions().Sum(log.Count));
        var status = JsonDocument.Parse(Cli.Run("backfill", "status", "--nats", nats.Url, "--queue", Queue, "--db", db, "--format", "jsonl").Out).RootElement;
        Assert.Equal(0, status.GetProperty("waiting").GetInt64());
        Assert.Equal(10, status.GetProperty("dead_lettered").GetInt64());
        Assert.False(status.GetProperty("paused").GetBoolean());
    }

    [Theory]
    [InlineData("backfill", "x", "--nats", "http://127.0.0.1:4222")]
    [InlineData("backfill", "x", "--nats", "not a url")]
    [InlineData("backfill", "x", "--queue", "bad queue!")]
    [InlineData("backfill", "x", "--queue", "")]
    [InlineData("backfill")]
    [InlineData("backfill", "x", "--uploader", "u257")]
    [InlineData("worker", "--lease-seconds", "0")]
    [InlineData("worker", "--max-deliver", "-1")]
    [InlineData("worker", "--item-delay-ms", "-5")]
    [InlineData("worker", "--threads", "0")]
    [InlineData("worker", "--threads", "513")]
    [InlineData("worker", "--batch", "0")]
    [InlineData("worker", "--batch", "1001")]
    [InlineData("worker", "--threads", "many")]
    public void Bad_command_lines_are_usage_errors(params string[] args)
    {
        args = [.. args.Select(a => a == "u257" ? new string('u', 257) : a)];
        var (code, _, err) = Cli.Run(args[0] == "worker" ? [.. args, "--db", Path.Combine(_dir, "none.db")] : args);
        Assert.Equal(WardenCli.UsageError, code);
        Assert.StartsWith("warden:", err, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreachable_broker_is_one_clear_line_and_exit_1()
    {
        var file = Path.Combine(_dir, "f.bin");
        File.WriteAllBytes(file, [1]);
        var (code, _, err) = Cli.Run("backfill", file, "--nats", "nats://127.0.0.1:1");
        Assert.Equal(WardenCli.SomeFailed, code);
        Assert.Contains("cannot use NATS JetStream at nats://127.0.0.1:1", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nats://warden:s3cr3t-pw@127.0.0.1:1", "s3cr3t-pw")]
    [InlineData("nats://s3cr3t-token@127.0.0.1:1", "s3cr3t-token")]
    [InlineData("nats://warden:p%40ss-s3cr3t@127.0.0.1:1", "p%40ss-s3cr3t")]
    [InlineData("nats://warden:raw@s3cr3t@127.0.0.1:1", "raw@s3cr3t")]
    [InlineData("http://warden:s3cr3t-pw@127.0.0.1:4222", "s3cr3t-pw")]
    public void Credentials_in_the_broker_url_never_reach_stderr(string url, string secret)
    {
        var file = Path.Combine(_dir, "f.bin");
        File.WriteAllBytes(file, [1]);
        foreach (var args in new[] { new[] { "backfill", file, "--nats", url }, ["backfill", "status", "--nats", url], ["worker", "--nats", url, "--db", Path.Combine(_dir, "w.db")] })
        {
            var (code, output, err) = Cli.Run(args);
            Assert.NotEqual(WardenCli.Ok, code);
            Assert.DoesNotContain(secret, err + output, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cr3t", err + output, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public async Task Source_urls_with_credentials_are_refused_and_never_repeated()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        var good = Path.Combine(_dir, "a.bin");
        File.WriteAllBytes(good, [1, 2, 3]);
        const string Queue = "CREDS";
        string[] refused = ["https://user:s3cr3t@127.0.0.1:9/a.jpg", "http://s3cr3t@127.0.0.1:9/b.jpg", "s3://key:s3cr3t@bucket/prefix/", "HTTPS://u:s3cr3t@127.0.0.1:9"];
        var (code, output, err) = Cli.Run(["backfill", good, .. refused, "--nats", nats.Url, "--queue", Queue]);
        Assert.Equal(WardenCli.SomeFailed, code);
        Assert.DoesNotContain("s3cr3t", err + output, StringComparison.Ordinal);
        Assert.Equal(refused.Length, err.Split('\n').Count(l => l.Contains("user name or password is refused", StringComparison.Ordinal)));
        Assert.Contains("queued 1 items", output, StringComparison.Ordinal);

        // Published straight onto the subject by another producer: the worker refuses the item without echoing it.
        foreach (var source in refused)
        {
            Assert.Null(WorkItem.Parse(WorkItem.For(source, null).ToBytes(), out var reason));
            Assert.Contains("user name or password is refused", reason, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cr3t", reason, StringComparison.Ordinal);
        }

        // An uploader id over the API's limit, published by another producer: refused as the API would.
        Assert.Null(WorkItem.Parse(WorkItem.For(good, new string('u', 257)).ToBytes(), out var tooLong));
        Assert.Contains("longer than 256", tooLong, StringComparison.Ordinal);
        Assert.NotNull(WorkItem.Parse(WorkItem.For(good, new string('u', 256)).ToBytes(), out _));

        // Sources that merely contain '@' (a file name, a path after the host) are not credentials.
        foreach (var source in new[] { "/srv/up/@me.jpg", "https://127.0.0.1:9/u/@me.jpg", "https://127.0.0.1:9/a?next=x@y" })
        {
            Assert.NotNull(WorkItem.Parse(WorkItem.For(source, null).ToBytes(), out _));
        }

        await Task.CompletedTask;
    }

    [SkippableFact]
    public void Sources_that_cannot_be_read_are_refused_at_enqueue_one_line_each()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        var good = Path.Combine(_dir, "a.bin");
        File.WriteAllBytes(good, [1, 2, 3]);
        string[] bad = ["http://", "https://[::1", "https:///path-only", "s3://", "s3:///key", "s3://a b/c", "s3://b%00/x", "s3://bucket!/x"];
        var (code, output, err) = Cli.Run(["backfill", good, .. bad, "--nats", nats.Url, "--queue", "BADSRC"]);
        Assert.Equal(WardenCli.SomeFailed, code);
        Assert.Contains("queued 1 items", output, StringComparison.Ordinal);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(bad.Length, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("warden: ", l, StringComparison.Ordinal));
        Assert.DoesNotContain("internal error", err, StringComparison.Ordinal);

        // A bucket whose service cannot be reached is one line for that source; the others are still queued.
        // (Only the S3 code reads AWS_ENDPOINT_URL, so setting it in this process for a moment touches no other test.)
        (int Exit, string Out, string Err) unreachable;
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
        try
        {
            unreachable = Cli.Run(["backfill", "s3://bucket/prefix/", good, "--nats", nats.Url, "--queue", "BADSRC2"]);
        }
        finally
        {
            Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", null);
        }

        Assert.Equal(WardenCli.SomeFailed, unreachable.Exit);
        Assert.Contains("warden: s3://bucket/prefix/: cannot list:", unreachable.Err, StringComparison.Ordinal);
        Assert.Contains("queued 1 items", unreachable.Out, StringComparison.Ordinal);
    }
}
