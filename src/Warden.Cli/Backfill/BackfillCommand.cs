using System.CommandLine;
using System.Globalization;
using Warden.Storage;

namespace Warden.Cli.Backfill;

/// <summary>`warden backfill SOURCE...|status|pause|resume|dead` and `warden worker`: distributed backfill over NATS JetStream.</summary>
internal static class BackfillCommand
{
    public const string NatsEnvironmentVariable = "WARDEN_NATS";

    private static Option<string> Queue() => new("--queue")
    {
        Description = "The queue's name: its JetStream stream (several backfills may run side by side). Default WARDEN_BACKFILL.",
        DefaultValueFactory = _ => NatsWorkQueue.DefaultQueue,
    };

    private static Option<string> Nats() => new("--nats")
    {
        Description = $"The NATS server (JetStream on). Default: ${NatsEnvironmentVariable}, else nats://127.0.0.1:4222.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(NatsEnvironmentVariable) is { Length: > 0 } env ? env : "nats://127.0.0.1:4222",
    };

    public static Command Create(TextWriter output, TextWriter error)
    {
        var sources = new Argument<string[]>("SOURCE") { Description = "Files or folders (recursively), http(s) URLs, or s3://BUCKET/PREFIX (every object under it).", Arity = ArgumentArity.ZeroOrMore };
        var list = new Option<string?>("--list") { Description = "A file with one source per line ('-': standard input)." };
        var uploader = new Option<string?>("--uploader") { Description = "The uploader to attribute the content to (cases are per uploader)." };
        var nats = Nats();
        var queueName = Queue();
        var command = new Command("backfill", "Queue stored content for matching by 'warden worker' processes (any number, on any machines) through NATS JetStream.\n" +
            "Each item is processed once even when workers die or the broker restarts; 'backfill status' shows progress, rate and ETA.\n\n" +
            "Examples:\n  warden backfill /srv/uploads/2024\n  warden backfill --list urls.txt\n  warden backfill s3://media/uploads/2024/\n  warden backfill status --watch")
        {
            sources, list, uploader, nats, queueName, Status(output, error), Switch("pause", true, output, error), Switch("resume", false, output, error), Dead(output, error),
        };
        command.SetAction(async (p, ct) =>
        {
            var all = new List<string>(p.GetValue(sources) ?? []);
            if (p.GetValue(list) is { } file)
            {
                string[] lines;
                using (var named = file == "-" ? null : new StreamReader(file))
                {
                    lines = ReadAll(named ?? Console.In);
                }

                all.AddRange(lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
            }

            if (all.Count == 0)
            {
                error.WriteLine("warden: nothing to backfill: give files, folders, URLs, s3:// prefixes or --list FILE.");
                return WardenCli.UsageError;
            }

            if (Core.Banks.UploaderIds.Problem(p.GetValue(uploader)) is { } uploaderProblem)
            {
                error.WriteLine($"warden: --uploader: {uploaderProblem}");
                return WardenCli.UsageError;
            }

            return await WithQueueAsync(p.GetRequiredValue(nats), p.GetRequiredValue(queueName), "warden-backfill", error, async queue =>
            {
                long queued = 0, repeated = 0, missing = 0;
                foreach (var (name, source) in Expand(all, error, () => missing++, ct))
                {
                    try
                    {
                        await foreach (var s in source.ConfigureAwait(false))
                        {
                            if (await queue.EnqueueAsync(WorkItem.For(s, p.GetValue(uploader)), ct).ConfigureAwait(false))
                            {
                                queued++;
                            }
                            else
                            {
                                repeated++;
                            }
                        }
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        // A bucket that cannot be listed (no endpoint, no such bucket, refused): this source fails,
                        // the others are still queued; what was listed before the failure stays queued.
                        error.WriteLine($"warden: {CommonOptions.Shown(name)}: cannot list: {ex.Message}");
                        missing++;
                    }
                }

                var state = await queue.StateAsync(ct).ConfigureAwait(false);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"queued {queued} items{(repeated > 0 ? $" ({repeated} already queued)" : "")}, {state.Waiting} waiting in all; run 'warden worker' to process them, 'warden backfill status' to follow."));
                return missing > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
            }).ConfigureAwait(false);
        });
        return command;
    }

    public static Command Worker(TextWriter output, TextWriter error)
    {
        var nats = Nats();
        var queueName = Queue();
        var db = CommonOptions.Db();
        var name = new Option<string>("--name") { Description = "This worker's name (recorded with each item).", DefaultValueFactory = _ => Environment.MachineName + ":" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) };
        var ackWait = new Option<double>("--lease-seconds") { Description = "How long an item stays with a worker that stopped answering before another gets it (default 60).", DefaultValueFactory = _ => 60 };
        var maxDeliver = new Option<int>("--max-deliver") { Description = "Attempts at one item before it is dead-lettered (default 5).", DefaultValueFactory = _ => 5 };
        var idle = new Option<double?>("--exit-when-idle") { Description = "Exit after this many seconds with nothing left to do (default: run until stopped)." };
        var delay = new Option<int>("--item-delay-ms") { Description = "Pause before each item (to spare a slow origin)." };
        var maxMb = new Option<long>("--max-mb") { Description = "Largest item read, in MiB (default 64).", DefaultValueFactory = _ => 64 };
        var threads = new Option<int>("--threads", "-j") { Description = "Items read, hashed and matched at once (default: one per CPU core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var batch = new Option<int>("--batch") { Description = "Most items taken from the queue at once and committed in one transaction (default 64; fewer while items are slow).", DefaultValueFactory = _ => 64 };
        var statsEvery = new Option<double?>("--stats-seconds") { Description = "Also print the running totals of the exit 'stats' line (a 'stats_so_far' line) at most this often, after a batch." };
        var command = new Command("worker", "Process backfill items from NATS JetStream: read, hash, match against the enabled banks, log the signals (signal log) and record matches,\n" +
            "once per item. Run as many as you like, on any machines sharing the database. Prints one JSON line per item started and done.\n\nExample:\n  warden worker --db 'Host=db;Database=warden' --nats nats://queue:4222")
        {
            nats, queueName, db, name, ackWait, maxDeliver, idle, delay, maxMb, threads, batch, statsEvery,
        };
        command.SetAction(async (p, ct) =>
        {
            if (p.GetValue(ackWait) is < 1 or > 86400 || p.GetValue(maxDeliver) is < 1 or > 1000 || p.GetValue(maxMb) < 1 || p.GetValue(delay) < 0
                || p.GetValue(threads) is < 1 or > 512 || p.GetValue(batch) is < 1 or > 1000 || p.GetValue(statsEvery) is <= 0 or > 86400 or double.NaN)
            {
                error.WriteLine("warden: --lease-seconds is 1..86400, --max-deliver 1..1000, --max-mb at least 1, --item-delay-ms not negative, --threads 1..512, --batch 1..1000, --stats-seconds above 0 and at most 86400.");
                return WardenCli.UsageError;
            }

            var target = p.GetRequiredValue(db);
            if (CommonOptions.Guarded(error, () => DatabaseGuard.Refuse(target, error) ?? WardenCli.Ok) is not WardenCli.Ok and var refused)
            {
                return refused;
            }

            using var store = BankStore.Open(target);
            var log = new Storage.SignalLog(store.Database, store.CacheDirectory("signal-log"));
            var options = new WorkerOptions(p.GetRequiredValue(name), p.GetValue(idle) is { } s ? TimeSpan.FromSeconds(s) : null, TimeSpan.FromMilliseconds(p.GetValue(delay)), p.GetValue(maxMb) * 1024 * 1024, p.GetValue(maxDeliver), TimeSpan.FromSeconds(p.GetValue(ackWait)), p.GetValue(threads), p.GetValue(batch),
                p.GetValue(statsEvery) is { } every ? TimeSpan.FromSeconds(every) : null);
            return await WithQueueAsync(p.GetRequiredValue(nats), p.GetRequiredValue(queueName), "warden-worker", error, async queue =>
            {
                using var worker = new BackfillWorker(queue, store, log, options, output, error);
                return await worker.RunAsync(ct).ConfigureAwait(false);
            }, TimeSpan.FromSeconds(p.GetValue(ackWait)), p.GetValue(maxDeliver)).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Status(TextWriter output, TextWriter error)
    {
        var nats = Nats();
        var queueName = Queue();
        var db = CommonOptions.Db();
        var watch = new Option<bool>("--watch") { Description = "Print again every 2 seconds until nothing is waiting." };
        var format = CommonOptions.Format("Output: 'table' (two lines) or 'jsonl'.", "table", "jsonl");
        var command = new Command("status", "Progress of the backfill: items queued, finished, waiting, in flight, dead-lettered; rate over the last minute and ETA;\n" +
            "and of retroactive deltas fanned out over the workers (log units searched, matches recorded).") { nats, queueName, db, watch, format };
        command.SetAction(async (p, ct) =>
        {
            var target = p.GetRequiredValue(db);
            if (CommonOptions.Guarded(error, () => DatabaseGuard.Refuse(target, error) ?? WardenCli.Ok) is not WardenCli.Ok and var refused)
            {
                return refused;
            }

            using var store = BankStore.Open(target);
            var signalLog = new Storage.SignalLog(store.Database, store.CacheDirectory("signal-log"));
            var ledger = new BackfillLedger(signalLog);
            var tasks = new RetroTasks(signalLog);
            return await WithQueueAsync(p.GetRequiredValue(nats), p.GetRequiredValue(queueName), "warden-status", error, async queue =>
            {
                while (true)
                {
                    var s = await queue.StateAsync(ct).ConfigureAwait(false);
                    var (recent, first) = ledger.DoneSince(DateTimeOffset.UtcNow.AddMinutes(-1));
                    var window = first is { } f ? Math.Max(1, (DateTimeOffset.UtcNow - f).TotalSeconds) : 60;
                    var rate = recent / window;
                    var eta = rate > 0 ? TimeSpan.FromSeconds(s.Waiting / rate) : (TimeSpan?)null;
                    var paused = ledger.IsPaused();
                    var retro = tasks.Status(5);
                    if (p.GetRequiredValue(format) == "jsonl")
                    {
                        CommonOptions.WriteJsonLine(output, j =>
                        {
                            j.WriteNumber("enqueued", s.Enqueued);
                            j.WriteNumber("finished", s.Enqueued - s.Waiting);
                            j.WriteNumber("waiting", s.Waiting);
                            j.WriteNumber("in_flight", s.InFlight);
                            j.WriteNumber("dead_lettered", s.DeadLettered);
                            j.WriteNumber("rate_per_second", Math.Round(rate, 2));
                            if (eta is { } e)
                            {
                                j.WriteNumber("eta_seconds", Math.Round(e.TotalSeconds));
                            }
                            else
                            {
                                j.WriteNull("eta_seconds");
                            }

                            j.WriteBoolean("paused", paused);
                            j.WriteStartArray("retroactive");
                            foreach (var d in retro)
                            {
                                j.WriteStartObject();
                                j.WriteNumber("after_seq", d.After);
                                j.WriteNumber("high_seq", d.High);
                                j.WriteNumber("entries", d.Entries);
                                j.WriteNumber("units", d.Units);
                                j.WriteNumber("queued", d.Queued);
                                j.WriteNumber("done", d.Done);
                                j.WriteNumber("matches", d.Hits);
                                j.WriteString("created_at", d.CreatedAt);
                                j.WriteEndObject();
                            }

                            j.WriteEndArray();
                        });
                    }
                    else
                    {
                        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{s.Enqueued} queued, {s.Enqueued - s.Waiting} finished, {s.Waiting} waiting ({s.InFlight} in flight), {s.DeadLettered} dead-lettered{(paused ? ", PAUSED" : "")}"));
                        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"rate {rate:F1} items/s over the last minute; ETA {(eta is { } e ? e.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "unknown")}"));
                        foreach (var d in retro)
                        {
                            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                                $"retroactive delta (changes {d.After + 1}..{d.High}, {d.Entries} entries): {d.Done}/{d.Units} log units searched ({d.Units - d.Queued} not yet queued), {d.Hits} matches recorded"));
                        }
                    }

                    output.Flush();
                    if (!p.GetValue(watch) || (s.Waiting == 0 && retro.All(d => d.Done == d.Units)))
                    {
                        return WardenCli.Ok;
                    }

                    await Task.Delay(2000, ct).ConfigureAwait(false);
                }
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Switch(string name, bool paused, TextWriter output, TextWriter error)
    {
        var db = CommonOptions.Db();
        var command = new Command(name, paused ? "Pause every worker (each finishes its current item, then waits)." : "Resume paused workers.") { db };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            new BackfillLedger(new Storage.SignalLog(store.Database, store.CacheDirectory("signal-log"))).SetPaused(paused);
            output.WriteLine(paused ? "backfill paused" : "backfill resumed");
            return WardenCli.Ok;
        }));
        return command;
    }

    private static Command Dead(TextWriter output, TextWriter error)
    {
        var nats = Nats();
        var queueName = Queue();
        var limit = new Option<int>("--limit") { Description = "Show at most this many (the most recent).", DefaultValueFactory = _ => 100 };
        var command = new Command("dead", "List dead-lettered items (poison: unreadable, malformed, or failing every attempt) with the reason.") { nats, queueName, limit };
        command.SetAction(async (p, ct) => await WithQueueAsync(p.GetRequiredValue(nats), p.GetRequiredValue(queueName), "warden-dead", error, async queue =>
        {
            foreach (var (data, reason) in await queue.DeadLettersAsync(Math.Max(1, p.GetValue(limit)), ct).ConfigureAwait(false))
            {
                var item = WorkItem.Parse(System.Text.Encoding.UTF8.GetBytes(data), out _);
                CommonOptions.WriteJsonLine(output, j =>
                {
                    j.WriteString("source", item?.Source);
                    j.WriteString("key", item?.Key);
                    j.WriteString("reason", reason);
                    if (item is null)
                    {
                        j.WriteString("raw", data.Length > 200 ? data[..200] : data);
                    }
                });
            }

            return WardenCli.Ok;
        }).ConfigureAwait(false));
        return command;
    }

    private static async Task<int> WithQueueAsync(string url, string queueName, string name, TextWriter error, Func<IWorkQueue, Task<int>> action, TimeSpan? ackWait = null, int maxDeliver = 5)
    {
        if (queueName.Length is 0 or > 64 || !queueName.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
        {
            error.WriteLine($"warden: --queue must be 1 to 64 letters, digits, '_' or '-', not '{queueName}'.");
            return WardenCli.UsageError;
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls" or "ws" or "wss"))
        {
            error.WriteLine(UrlCredentials.Redact($"warden: --nats must be a nats:// URL, not '{url}'.", url));
            return WardenCli.UsageError;
        }

        await using var queue = new NatsWorkQueue(url, ackWait ?? TimeSpan.FromSeconds(60), maxDeliver, name, queueName);
        try
        {
            using var connect = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await queue.EnsureAsync(connect.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (BackfillWorker.IsTransient(ex) || ex is OperationCanceledException)
        {
            error.WriteLine(UrlCredentials.Redact($"warden: cannot use NATS JetStream at {url}: {ex.Message} (is 'nats-server -js' running there?)", url));
            return WardenCli.SomeFailed;
        }

        try
        {
            return await action(queue).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return WardenCli.Ok; // stopped (Ctrl-C / SIGTERM): nothing is lost, unfinished items go back to the queue
        }
    }

    private static IEnumerable<(string Name, IAsyncEnumerable<string> Items)> Expand(IEnumerable<string> sources, TextWriter error, Action missing, CancellationToken cancellationToken)
    {
        foreach (var s in sources)
        {
            var http = s.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || s.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
            var s3 = s.StartsWith("s3://", StringComparison.OrdinalIgnoreCase);
            if ((http || s3) && UrlCredentials.Of(s) is not null)
            {
                error.WriteLine($"warden: {UrlCredentials.Redact(s, s)}: {WorkItem.CredentialsRefused}");
                missing();
            }
            else if (http && !(Uri.TryCreate(s, UriKind.Absolute, out var uri) && uri.Host.Length > 0))
            {
                // Refused here rather than dead-lettered later by every worker that tries it.
                error.WriteLine($"warden: {CommonOptions.Shown(s)}: not a valid http(s) URL");
                missing();
            }
            else if (http)
            {
                yield return (s, One(s));
            }
            else if (s3 && !S3Source.TryParse(s, out _, out _))
            {
                error.WriteLine($"warden: {CommonOptions.Shown(s)}: not s3://BUCKET/PREFIX (a bucket name is letters, digits, '.', '-' or '_')");
                missing();
            }
            else if (s3)
            {
                yield return (s, S3Source.ListAsync(s, cancellationToken));
            }
            else
            {
                foreach (var (path, problem) in FileWalker.Expand([s]))
                {
                    if (problem is not null || path == FileWalker.StandardInput)
                    {
                        error.WriteLine($"warden: {CommonOptions.Shown(path)}: {problem ?? "standard input cannot be backfilled"}");
                        missing();
                        continue;
                    }

                    yield return (path, One(Path.GetFullPath(path)));
                }
            }
        }
    }

    private static async IAsyncEnumerable<string> One(string s)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        yield return s;
    }

    /// <summary>Longest line of a --list file: far above any path or URL, far below what could fill memory.</summary>
    internal const int MaxListLine = 64 * 1024;

    // Lines of a --list file (a file, a pipe or standard input). A line is bounded, so a source that never sends
    // a newline (/dev/zero, a binary file given by mistake) is one clear error, not a process that fills memory.
    internal static string[] ReadAll(TextReader reader)
    {
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        var chunk = new char[8192];
        int n;
        while ((n = reader.Read(chunk)) > 0)
        {
            for (var i = 0; i < n; i++)
            {
                var c = chunk[i];
                if (c == '\n')
                {
                    lines.Add(line.ToString().TrimEnd('\r'));
                    line.Clear();
                }
                else if (line.Length == MaxListLine)
                {
                    throw new InvalidDataException($"line {lines.Count + 1} of the list is longer than {MaxListLine:N0} characters; a list holds one path, URL or s3:// prefix per line");
                }
                else
                {
                    line.Append(c);
                }
            }
        }

        if (line.Length > 0)
        {
            lines.Add(line.ToString().TrimEnd('\r'));
        }

        return [.. lines];
    }
}
