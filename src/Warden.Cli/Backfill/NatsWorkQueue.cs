using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Warden.Cli.Backfill;

/// <summary>
/// The backfill queue on NATS JetStream: stream <c>QUEUE</c> (default WARDEN_BACKFILL; subject <c>warden.backfill.QUEUE.items</c>,
/// work-queue retention, file storage: an acknowledged item is deleted, an unacknowledged one survives worker
/// and server restarts), one durable pull consumer <c>workers</c> shared by every worker (explicit acks, a lease
/// of <c>ackWait</c>, at most <c>maxDeliver</c> deliveries), and stream <c>QUEUE_DEAD</c> (subject
/// <c>warden.backfill.QUEUE.dead</c>, limits retention) for poison items with a <c>Warden-Reason</c> header. Enqueues
/// carry the item key as <c>Nats-Msg-Id</c>, so a repeated enqueue within the duplicate window is dropped by the server.
/// </summary>
internal sealed class NatsWorkQueue : IWorkQueue
{
    public const string DefaultQueue = "WARDEN_BACKFILL";
    public const string Consumer = "workers";
    public const string ReasonHeader = "Warden-Reason";

    private readonly NatsConnection _connection;
    private readonly NatsJSContext _js;
    private readonly TimeSpan _ackWait;
    private readonly int _maxDeliver;
    private INatsJSConsumer? _consumer;

    /// <param name="url">The NATS server.</param>
    /// <param name="ackWait">The lease.</param>
    /// <param name="maxDeliver">Deliveries before dead-lettering.</param>
    /// <param name="name">The client's name (shown by the server).</param>
    /// <param name="queue">The queue's stream name (several backfills may run side by side); letters, digits, '_' and '-'.</param>
    public NatsWorkQueue(string url, TimeSpan ackWait, int maxDeliver, string name, string queue = DefaultQueue)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(url);
        if (queue.Length is 0 or > 64 || !queue.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
        {
            throw new ArgumentException($"'{queue}' is not a queue name (1 to 64 letters, digits, '_' or '-').");
        }

        Stream = queue;
        DeadStream = queue + "_DEAD";
        Subject = "warden.backfill." + queue + ".items";
        DeadSubject = "warden.backfill." + queue + ".dead";
        _connection = new NatsConnection(NatsOpts.Default with
        {
            Url = url,
            Name = name,
            // Keep reconnecting through a broker restart; the worker loop retries what failed meanwhile.
            MaxReconnectRetry = -1,
            ReconnectWaitMin = TimeSpan.FromMilliseconds(200),
            ReconnectWaitMax = TimeSpan.FromSeconds(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            RequestTimeout = TimeSpan.FromSeconds(5),
        });
        _js = new NatsJSContext(_connection);
        _ackWait = ackWait;
        _maxDeliver = maxDeliver;
    }

    /// <summary>The work-queue stream.</summary>
    public string Stream { get; }

    /// <summary>The subject items are published on.</summary>
    public string Subject { get; }

    /// <summary>The dead-letter stream.</summary>
    public string DeadStream { get; }

    /// <summary>The dead-letter subject.</summary>
    public string DeadSubject { get; }

    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        await _connection.ConnectAsync().ConfigureAwait(false);
        await _js.CreateOrUpdateStreamAsync(
            new StreamConfig(Stream, [Subject])
            {
                Retention = StreamConfigRetention.Workqueue,
                Storage = StreamConfigStorage.File,
                DuplicateWindow = TimeSpan.FromMinutes(10),
            },
            cancellationToken).ConfigureAwait(false);
        await _js.CreateOrUpdateStreamAsync(
            new StreamConfig(DeadStream, [DeadSubject]) { Retention = StreamConfigRetention.Limits, Storage = StreamConfigStorage.File },
            cancellationToken).ConfigureAwait(false);
        _consumer = await _js.CreateOrUpdateConsumerAsync(
            Stream,
            new ConsumerConfig(Consumer)
            {
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = _ackWait,
                MaxDeliver = _maxDeliver + 1, // one more than we act on: the last delivery is the one we dead-letter
                MaxAckPending = 10_000,
            },
            cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> EnqueueAsync(WorkItem item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var ack = await _js.PublishAsync(Subject, item.ToBytes(), opts: new NatsJSPubOpts { MsgId = item.Key }, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (ack.Duplicate)
        {
            return false; // the same key within the duplicate window: the server kept the first one
        }

        ack.EnsureSuccess();
        return true;
    }

    public async Task<IReadOnlyList<IWorkLease>> TakeAsync(int max, TimeSpan wait, CancellationToken cancellationToken)
    {
        var consumer = _consumer ?? throw new InvalidOperationException("EnsureAsync first.");
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);

        // What is there now, up to max, in one pull request; only when nothing is there, wait for the first item
        // (a pull for max items would otherwise wait out its expiry at the end of the queue) and top up after it.
        var leases = new List<IWorkLease>(max);
        await foreach (var msg in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = max }, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            leases.Add(new Lease(this, msg));
        }

        if (leases.Count > 0)
        {
            return leases;
        }

        await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 1, Expires = wait }, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            leases.Add(new Lease(this, msg));
        }

        if (leases.Count > 0 && max > 1)
        {
            await foreach (var msg in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = max - 1 }, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                leases.Add(new Lease(this, msg));
            }
        }

        return leases;
    }

    public async Task<QueueState> StateAsync(CancellationToken cancellationToken)
    {
        var stream = await _js.GetStreamAsync(Stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        var dead = await _js.GetStreamAsync(DeadStream, cancellationToken: cancellationToken).ConfigureAwait(false);
        var consumer = await _js.GetConsumerAsync(Stream, Consumer, cancellationToken).ConfigureAwait(false);
        var state = stream.Info.State;
        return new QueueState(
            (long)state.LastSeq, // acknowledged items leave a work-queue stream; deduplicated publishes never get a number
            (long)state.Messages,
            consumer.Info.NumAckPending,
            (long)dead.Info.State.Messages);
    }

    public async Task<IReadOnlyList<(string Data, string Reason)>> DeadLettersAsync(int limit, CancellationToken cancellationToken)
    {
        var list = new List<(string, string)>();
        var consumer = await _js.CreateOrderedConsumerAsync(DeadStream, cancellationToken: cancellationToken).ConfigureAwait(false);
        var dead = await _js.GetStreamAsync(DeadStream, cancellationToken: cancellationToken).ConfigureAwait(false);
        var total = (long)dead.Info.State.Messages;
        if (total == 0)
        {
            return list;
        }

        await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = (int)Math.Min(total, 100_000), Expires = TimeSpan.FromSeconds(2) }, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var reason = msg.Headers is { } h && h.TryGetValue(ReasonHeader, out var r) ? r.ToString() : "(no reason)";
            list.Add((System.Text.Encoding.UTF8.GetString(msg.Data ?? []), reason));
        }

        return list.TakeLast(limit).ToList();
    }

    public async ValueTask DisposeAsync() => await _connection.DisposeAsync().ConfigureAwait(false);

    private sealed class Lease(NatsWorkQueue queue, INatsJSMsg<byte[]> msg) : IWorkLease
    {
        public ReadOnlyMemory<byte> Data => msg.Data ?? [];

        public long Deliveries => (long)(msg.Metadata?.NumDelivered ?? 1);

        public Task AckAsync(CancellationToken cancellationToken) => msg.AckAsync(cancellationToken: cancellationToken).AsTask();

        public Task RetryAsync(CancellationToken cancellationToken) => msg.NakAsync(cancellationToken: cancellationToken).AsTask();

        public Task InProgressAsync(CancellationToken cancellationToken) => msg.AckProgressAsync(cancellationToken: cancellationToken).AsTask();

        public async Task DeadLetterAsync(string reason, CancellationToken cancellationToken)
        {
            // Publish first, then terminate: a crash in between leaves the item to be redelivered and dead-lettered
            // again (a duplicate dead letter, never a lost one).
            var headers = new NatsHeaders { [ReasonHeader] = reason.ReplaceLineEndings(" ") };
            var ack = await queue._js.PublishAsync(queue.DeadSubject, msg.Data ?? [], headers: headers, cancellationToken: cancellationToken).ConfigureAwait(false);
            ack.EnsureSuccess();
            await msg.AckTerminateAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }
}
