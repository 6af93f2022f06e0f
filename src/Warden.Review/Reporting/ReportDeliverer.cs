using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using Warden.Review.Audit;

namespace Warden.Review.Reporting;

/// <summary>Reads the media of a delivery file (from the evidence vault, logged as a system read).</summary>
public interface IDeliveryMedia
{
    /// <summary>The bytes to upload; null when the evidence no longer exists.</summary>
    Task<byte[]?> ReadAsync(string caseId, string evidenceRef, CancellationToken cancellationToken);
}

/// <summary>Outbox timing and limits.</summary>
public sealed record DeliveryOptions
{
    /// <summary>First retry delay; doubles per consecutive failure of the same step.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest retry delay.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Alarm when a report has been open this long without finishing. NCMEC deletes an unfinished report 24 h
    /// after it was opened, so the default leaves 4 h for a person to act.
    /// </summary>
    public TimeSpan OverdueAfter { get; init; } = TimeSpan.FromHours(20);

    /// <summary>
    /// A step that fails this many times in a row (across retractions and fresh reports: a success of another
    /// step does not reset it) parks the delivery as <see cref="DeliveryStatus.DeadLettered"/> with an alarm,
    /// instead of looping. Rejected credentials are the exception: they concern every delivery, so they alarm
    /// on every attempt and keep retrying at <see cref="MaxDelay"/>.
    /// </summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Fresh reports (after a retraction or a deleted report) allowed before the delivery is dead-lettered.</summary>
    public int MaxRestarts { get; init; } = 10;

    /// <summary>Deliveries advanced at once by <see cref="ReportDeliverer.RunDueAsync"/>: a slow one does not hold up the rest.</summary>
    public int Parallelism { get; init; } = 4;

    /// <summary>
    /// How long a node's lease on a delivery lasts. The node renews it every third of this while it works
    /// (however long a step takes), so another node takes a delivery over only this long after its node died.
    /// </summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Bytes of evidence kept in memory per worker, so a retry, a retraction or a fresh report re-uses what was
    /// read instead of opening (and logging a view of) the vault item again. Least recently used goes first.
    /// </summary>
    public long MediaCacheBytes { get; init; } = 256L << 20;
}

/// <summary>Why an alarm fired.</summary>
public enum DeliveryAlarmKind
{
    /// <summary>Open longer than <see cref="DeliveryOptions.OverdueAfter"/>.</summary>
    Overdue,

    /// <summary>Refused or impossible; an operator must act.</summary>
    Failed,

    /// <summary>Credentials or permissions rejected.</summary>
    AuthFailed,

    /// <summary>A step kept failing; the delivery is parked until an admin requeues or cancels it.</summary>
    DeadLettered,
}

/// <summary>An outbox alarm. <see cref="Message"/> holds no credentials and no media, and is one line.</summary>
public sealed record DeliveryAlarm(DeliveryAlarmKind Kind, long DeliveryId, string CaseId, string Message);

/// <summary>An exception that escaped one delivery during <see cref="ReportDeliverer.RunDueAsync"/> (the others went on).</summary>
public sealed record DeliveryError(long DeliveryId, Exception Exception);

/// <summary>
/// The durable report outbox worker. Each delivery moves Queued → Open → Finished through the
/// destination's steps (open, add each file, describe each file, finish), and every transition is stored
/// before the next call. Before each call that changes the destination, the step is written as
/// <c>in_flight</c>; after it, the result (report id first of all, then file ids, then the receipt) is
/// written in one transaction. A crash at any point therefore leaves one of: nothing sent; a step in
/// flight whose outcome is unknown; or a stored result. Resuming handles the unknown outcomes:
/// <list type="bullet">
/// <item>open (submit) unknown → open again. NCMEC has no idempotency key, so a lost answer can leave an
/// unfinished orphan report at NCMEC; it is never finished and NCMEC deletes it after 24 h.</item>
/// <item>add file / describe file unknown → the report may hold a duplicate or half-described file:
/// cancel (retract) it and start over with a fresh report. A report is never finished in an unknown state.</item>
/// <item>finish unknown → finish again; "already finished" counts as finished.</item>
/// </list>
/// Failures are retried with exponential backoff and jitter; refusals stop the delivery and raise an alarm;
/// a step that fails <see cref="DeliveryOptions.MaxAttempts"/> times in a row (whatever happens in between)
/// is dead-lettered with an alarm instead of looping. Each delivery is isolated: an exception in one is
/// recorded against it and never stops the round for the others, which run in parallel. Every step is
/// audited. Only the delivery's own finish makes a report; a case has one delivery per destination, so a case
/// is reported at most once.
/// </summary>
public sealed class ReportDeliverer : IDisposable
{
    /// <summary>The audit actor of the outbox's own steps.</summary>
    public const string Actor = "system:report-outbox";

    private static readonly Meter Meter = new("Warden.Review");
    private static readonly Counter<long> StepCounter = Meter.CreateCounter<long>("warden.report.steps", description: "CyberTipline/destination calls by outcome");
    private static readonly Counter<long> AlarmCounter = Meter.CreateCounter<long>("warden.report.alarms", description: "Report outbox alarms");
    private static readonly Counter<long> FinishedCounter = Meter.CreateCounter<long>("warden.report.finished", description: "Reports finished");
    private static readonly Counter<long> DeadLetterCounter = Meter.CreateCounter<long>("warden.report.dead_letters", description: "Deliveries dead-lettered after repeated failures");
    private static readonly Counter<long> ErrorCounter = Meter.CreateCounter<long>("warden.report.errors", description: "Exceptions that escaped one delivery in a round (the others went on)");

    private readonly IDeliveryStore _store;
    private readonly string _owner;
    private readonly IReportDestination _destination;
    private readonly IDeliveryMedia _media;
    private readonly DeliveryOptions _options;
    private readonly TimeProvider _time;
    private readonly AuditLog? _audit;
    private readonly MediaCache _cache;
    private readonly ConcurrentDictionary<long, SemaphoreSlim> _locks = new();
    private readonly CancellationTokenSource _stopping = new();
    private bool _disposed;

    /// <summary>Creates a worker for one destination; with <paramref name="audit"/>, every step is audited.</summary>
    public ReportDeliverer(IDeliveryStore store, IReportDestination destination, IDeliveryMedia media, DeliveryOptions? options = null, TimeProvider? time = null, AuditLog? audit = null)
    {
        _store = store;
        _destination = destination;
        _media = media;
        _options = options ?? new DeliveryOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Parallelism, 1);
        _time = time ?? TimeProvider.System;
        _audit = audit;
        _cache = new MediaCache(_options.MediaCacheBytes);
        _owner = string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}");
    }

    /// <summary>Raised for overdue, failed, dead-lettered and unauthorised deliveries (also counted in the <c>warden.report.alarms</c> metric).</summary>
    public event EventHandler<DeliveryAlarm>? Alarm;

    /// <summary>Raised when an exception escaped one delivery in <see cref="RunDueAsync"/> (counted in <c>warden.report.errors</c>).</summary>
    public event EventHandler<DeliveryError>? Error;

    /// <summary>The options in force.</summary>
    public DeliveryOptions Options => _options;

    /// <summary>Advances a delivery as far as it goes now: to Finished, Failed or DeadLettered, or until a failure schedules a retry.</summary>
    public async Task<Delivery> RunOnceAsync(long deliveryId, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var gate = Gate(deliveryId);
        await gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            return await AdvanceAsync(deliveryId, linked.Token).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Runs a delivery to the end, waiting out retry delays (tests, the CLI, a dedicated worker).</summary>
    public async Task<Delivery> DeliverAsync(long deliveryId, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var d = await RunOnceAsync(deliveryId, cancellationToken).ConfigureAwait(false);
            if (d.IsTerminal)
            {
                return d;
            }

            var wait = d.NextAttemptAt - _time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
                await Task.Delay(wait, _time, linked.Token).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Cancels a delivery that has not finished (an operator's decision, e.g. a reversed review, or a
    /// dead-lettered delivery that should not be sent): an open report is retracted at the destination first.
    /// The cancel stands even when the retraction cannot be confirmed (the destination is down): nothing will
    /// finish that report, and NCMEC deletes unfinished reports by itself. Returns the final state: Cancelled,
    /// or Finished when the report had already been finished (a finished report cannot be cancelled).
    /// </summary>
    public async Task<Delivery> CancelAsync(long deliveryId, string actor, string reason, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var gate = Gate(deliveryId);
        await gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            var d = _store.Find(deliveryId) ?? throw new KeyNotFoundException($"No delivery {deliveryId}.");
            if (d.Status is DeliveryStatus.Finished or DeliveryStatus.Cancelled)
            {
                return d;
            }

            var note = $"cancelled by {XmlSafeText.ForLog(actor, 100)}: {XmlSafeText.ForLog(reason, 500)}";
            var retracted = "not opened";
            if (d.ReportId is { } reportId)
            {
                d = Save(d with { InFlight = "retract" });
                var r = await CallAsync(() => _destination.CancelAsync(reportId, linked.Token)).ConfigureAwait(false);
                Count("retract", r);
                if (r.Outcome == StepOutcome.AlreadyFinished)
                {
                    var late = Save(d with { Status = DeliveryStatus.Finished, InFlight = null, FinishedAt = _time.GetUtcNow(), LastError = "cancel came too late: the report was already finished" }, null, Receipt(d, "retract", r));
                    Audit(late, "report.cancel", ("outcome", "already finished"), ("by", actor), ("reason", reason));
                    return late;
                }

                retracted = r.Outcome is StepOutcome.Ok or StepOutcome.AlreadyRetracted or StepOutcome.ReportGone
                    ? "retracted"
                    : $"retraction not confirmed ({r.Outcome} {r.ResponseCode}); the unfinished report expires at the destination";
                d = Save(d with { InFlight = null }, null, Receipt(d, "retract", r));
                Audit(d, "report.retract", ("outcome", r.Outcome.ToString()), ("code", Code(r)), ("by", actor));
            }

            d = Save(d with { Status = DeliveryStatus.Cancelled, InFlight = null, LastError = note + " (" + retracted + ")" }, null, Receipt(d, "cancel", "Cancelled", null, note + " (" + retracted + ")"));
            _cache.Forget(d.Id);
            Audit(d, "report.cancel", ("reason", reason), ("by", actor), ("retraction", retracted));
            return d;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Puts a failed, dead-lettered or cancelled delivery back in the queue (an admin's decision, e.g. after a
    /// destination outage or a fix). A report that may still be open at the destination is retracted first, so
    /// the delivery starts clean; the attempt and restart counters start again.
    /// </summary>
    public async Task<Delivery> RequeueAsync(long deliveryId, string actor, string reason, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var gate = Gate(deliveryId);
        await gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            var d = _store.Find(deliveryId) ?? throw new KeyNotFoundException($"No delivery {deliveryId}.");
            if (d.Status is not (DeliveryStatus.Failed or DeliveryStatus.DeadLettered or DeliveryStatus.Cancelled))
            {
                throw new InvalidOperationException($"Delivery {deliveryId} is {d.Status}: only failed, dead-lettered or cancelled deliveries can be requeued.");
            }

            var note = $"requeued by {XmlSafeText.ForLog(actor, 100)}: {XmlSafeText.ForLog(reason, 500)}";
            var status = d.ReportId is null ? DeliveryStatus.Queued : DeliveryStatus.Retracting;
            d = Save(
                d with { Status = status, InFlight = null, Failures = 0, FailureKey = null, Restarts = 0, NextAttemptAt = _time.GetUtcNow(), LastError = note, AlarmedAt = null },
                null,
                Receipt(d, "requeue", "Requeued", null, note));
            Audit(d, "report.requeue", ("reason", reason), ("by", actor), ("resume", status.ToString()));
            return d;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// One pass over due deliveries (a hosted service calls this every few seconds); returns how many finished.
    /// Deliveries run in parallel (<see cref="DeliveryOptions.Parallelism"/>) and each is isolated: whatever
    /// one throws is recorded (<see cref="Error"/>, <c>warden.report.errors</c>) and the round goes on.
    /// </summary>
    public async Task<int> RunDueAsync(int limit = 50, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var finished = 0;
        var due = _store.Due(_time.GetUtcNow(), limit).Where(d => d.Destination == _destination.Name && d.Environment == _destination.Environment).ToList();
        await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = _options.Parallelism, CancellationToken = linked.Token }, async (d, ct) =>
        {
            var gate = Gate(d.Id);
            if (!await gate.WaitAsync(0, ct).ConfigureAwait(false))
            {
                return; // an admin action (or another caller) holds it right now
            }

            try
            {
                if ((await AdvanceAsync(d.Id, ct).ConfigureAwait(false)).Status == DeliveryStatus.Finished)
                {
                    Interlocked.Increment(ref finished);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (DeliveryConflictException)
            {
                // Another worker owns it right now.
            }
#pragma warning disable CA1031 // isolation: one delivery's failure must never stop the others
            catch (Exception ex)
#pragma warning restore CA1031
            {
                ErrorCounter.Add(1);
                Error?.Invoke(this, new DeliveryError(d.Id, ex));
            }
            finally
            {
                gate.Release();
            }
        }).ConfigureAwait(false);

        CheckOverdue();
        return finished;
    }

    /// <summary>Raises an <see cref="DeliveryAlarmKind.Overdue"/> alarm for every report open longer than the limit.</summary>
    public IReadOnlyList<Delivery> CheckOverdue()
    {
        var now = _time.GetUtcNow();
        var overdue = _store.OpenSince(now - _options.OverdueAfter);
        foreach (var d in overdue)
        {
            Raise(new DeliveryAlarm(DeliveryAlarmKind.Overdue, d.Id, d.CaseId,
                $"Report {d.ReportId} of case {d.CaseId} has been open since {d.OpenedAt:O}; NCMEC deletes unfinished reports after 24 h. Last error: {XmlSafeText.ForLog(d.LastError)}"));
            if (d.AlarmedAt is null)
            {
                try
                {
                    _store.Save(d with { AlarmedAt = now });
                }
                catch (DeliveryConflictException)
                {
                    // A worker moved it meanwhile; the alarm was raised anyway.
                }
            }
        }

        return overdue;
    }

    /// <summary>Stops in-flight work (a crash-like stop: nothing is rolled back; a new worker resumes).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stopping.Cancel();
        _stopping.Dispose();
        _cache.Clear();
    }

    private SemaphoreSlim Gate(long id) => _locks.GetOrAdd(id, _ => new SemaphoreSlim(1, 1));

    private async Task<Delivery> AdvanceAsync(long deliveryId, CancellationToken ct)
    {
        if (!_store.TryLease(deliveryId, _owner, _time.GetUtcNow(), _options.Lease))
        {
            throw new DeliveryConflictException($"Delivery {deliveryId} is leased by another node.");
        }

        // Heartbeat: keeps the lease while a step runs; a lost lease (this node stalled past it and another took
        // over) cancels the work here, and the next Save is refused by the version check anyway.
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var stop = new CancellationTokenSource();
        var heartbeat = Task.Run(
            async () =>
            {
                using var timer = new PeriodicTimer(_options.Lease / 3);
                while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
                {
                    if (!_store.TryLease(deliveryId, _owner, _time.GetUtcNow(), _options.Lease))
                    {
                        await lost.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                }
            },
            CancellationToken.None);
        try
        {
            return await AdvanceLeasedAsync(deliveryId, lost.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new DeliveryConflictException($"Delivery {deliveryId}: the lease was lost to another node.");
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await heartbeat.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            _store.ReleaseLease(deliveryId, _owner);
        }
    }

    /// <summary>
    /// Advances under the lease: on several nodes sharing one outbox, a step runs on one node only, and a step
    /// left in flight is judged (retracted) only by the node that took the lease after its owner stopped
    /// renewing it (died), never while another node is still on it.
    /// </summary>
    private async Task<Delivery> AdvanceLeasedAsync(long deliveryId, CancellationToken ct)
    {
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var d = _store.Find(deliveryId) ?? throw new KeyNotFoundException($"No delivery {deliveryId}.");
            if (d.IsTerminal)
            {
                if (d.Status is DeliveryStatus.Finished or DeliveryStatus.Cancelled)
                {
                    _cache.Forget(d.Id);
                }

                return d;
            }

            if (d.Destination != _destination.Name || d.Environment != _destination.Environment)
            {
                throw new InvalidOperationException($"Delivery {d.Id} is for {d.Destination}/{d.Environment}; this worker sends to {_destination.Name}/{_destination.Environment}.");
            }

            var files = _store.Files(d.Id);
            var (next, progressed) = await StepAsync(d, files, ct).ConfigureAwait(false);
            if (next.IsTerminal || !progressed)
            {
                if (next.Status is DeliveryStatus.Finished or DeliveryStatus.Cancelled)
                {
                    _cache.Forget(next.Id);
                }

                return next;
            }
        }
    }

    private async Task<(Delivery Next, bool Progressed)> StepAsync(Delivery d, IReadOnlyList<DeliveryFile> files, CancellationToken ct)
    {
        // A step left in flight by a crash or a lost answer: decide what its unknown outcome means. It counts
        // as a failure of that step, so a crash that repeats at the same point ends dead-lettered.
        if (d.InFlight is { } pending && (pending.StartsWith("upload:", StringComparison.Ordinal) || pending.StartsWith("fileinfo:", StringComparison.Ordinal)))
        {
            var unknown = new StepResult(StepOutcome.Ambiguous, Description: "resuming: the outcome of " + pending + " is unknown; retracting the report to start clean");
            if (Attempts(d, pending) >= _options.MaxAttempts)
            {
                return (DeadLetter(d with { Failures = Attempts(d, pending), FailureKey = pending }, pending, unknown), false);
            }

            return (Save(d with { Status = DeliveryStatus.Retracting, InFlight = null, Failures = Attempts(d, pending), FailureKey = pending }, null, Receipt(d, pending, "unknown-outcome", null, unknown.Description!)), true);
        }

        switch (d.Status)
        {
            case DeliveryStatus.Queued:
                return await SubmitAsync(d, ct).ConfigureAwait(false);
            case DeliveryStatus.Retracting:
                return await RetractAsync(d, files, ct).ConfigureAwait(false);
            case DeliveryStatus.Open:
                if (files.FirstOrDefault(f => f.FileId is null) is { } toUpload)
                {
                    return await UploadAsync(d, toUpload, ct).ConfigureAwait(false);
                }

                if (files.FirstOrDefault(f => !f.Described) is { } toDescribe)
                {
                    return await DescribeAsync(d, toDescribe, ct).ConfigureAwait(false);
                }

                return await FinishAsync(d, ct).ConfigureAwait(false);
            default:
                return (d, false);
        }
    }

    private async Task<(Delivery, bool)> SubmitAsync(Delivery d, CancellationToken ct)
    {
        d = Save(d with { InFlight = "submit" });
        var r = await CallAsync(() => _destination.OpenAsync(d.Document, ct)).ConfigureAwait(false);
        Count("submit", r);
        if (r.Outcome == StepOutcome.Ok && !string.IsNullOrEmpty(r.ReportId))
        {
            // The report id first: from here on the case has a report at the destination.
            var opened = Save(Succeeded(d with { Status = DeliveryStatus.Open, ReportId = r.ReportId, OpenedAt = _time.GetUtcNow(), InFlight = null, LastError = null }, "submit"),
                null, Receipt(d, "submit", r));
            Audit(opened, "report.submit", ("outcome", r.Outcome.ToString()));
            return (opened, true);
        }

        if (r.Outcome == StepOutcome.Ok)
        {
            r = r with { Outcome = StepOutcome.Ambiguous, Description = "submit answered success without a reportId" };
        }

        return (Fail(d, "submit", r), false);
    }

    private async Task<(Delivery, bool)> UploadAsync(Delivery d, DeliveryFile f, CancellationToken ct)
    {
        var step = "upload:" + f.Index.ToString(CultureInfo.InvariantCulture);
        byte[]? media;
        try
        {
            media = await ReadMediaAsync(d, f, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return (Fail(d, step, FaultOf(ex, "reading the evidence")), false);
        }

        if (media is null)
        {
            return (Terminal(d, step, $"evidence {f.EvidenceRef} of file {f.Index} is missing or destroyed; the report cannot be completed as queued", DeliveryAlarmKind.Failed), false);
        }

#pragma warning disable CA5351 // MD5 is what the CyberTipline returns for upload verification, not a security use.
        var md5 = Convert.ToHexStringLower(MD5.HashData(media));
#pragma warning restore CA5351
        d = Save(d with { InFlight = step });
        var r = await CallAsync(() => _destination.AddFileAsync(d.ReportId!, f.FileName, media, ct)).ConfigureAwait(false);
        if (r.Outcome == StepOutcome.Ok && (string.IsNullOrEmpty(r.FileId) || (r.FileHash is not null && !r.FileHash.Equals(md5, StringComparison.OrdinalIgnoreCase))))
        {
            r = r with { Outcome = StepOutcome.Ambiguous, Description = $"upload answer has no fileId or a different MD5 ({r.FileHash} vs ours {md5})" };
        }

        Count("upload", r);
        switch (r.Outcome)
        {
            case StepOutcome.Ok:
                var saved = Save(Succeeded(d with { InFlight = null, LastError = null }, step), [f with { FileId = r.FileId, Md5 = md5 }], Receipt(d, step, r));
                Audit(saved, "report.upload", ("file", f.Index.ToString(CultureInfo.InvariantCulture)), ("fileId", r.FileId ?? ""), ("md5", md5));
                return (saved, true);
            case StepOutcome.Ambiguous:
                // The file may be in the report: never finish in that state.
                return (Fail(d with { Status = DeliveryStatus.Retracting }, step, r), false);
            default:
                return Other(d, step, r);
        }
    }

    // The evidence is read once per delivery and file while this worker lives: retries, retractions and fresh
    // reports re-use it, so the vault logs one system read, not one per attempt.
    private async Task<byte[]?> ReadMediaAsync(Delivery d, DeliveryFile f, CancellationToken ct)
    {
        if (_cache.TryGet(d.Id, f.EvidenceRef, out var cached))
        {
            return cached;
        }

        var media = await _media.ReadAsync(d.CaseId, f.EvidenceRef, ct).ConfigureAwait(false);
        if (media is not null)
        {
            _cache.Add(d.Id, f.EvidenceRef, media);
        }

        return media;
    }

    private async Task<(Delivery, bool)> DescribeAsync(Delivery d, DeliveryFile f, CancellationToken ct)
    {
        var step = "fileinfo:" + f.Index.ToString(CultureInfo.InvariantCulture);
        d = Save(d with { InFlight = step });
        var r = await CallAsync(() => _destination.DescribeFileAsync(d.ReportId!, f.FileId!, f.Metadata, ct)).ConfigureAwait(false);
        Count("fileinfo", r);
        switch (r.Outcome)
        {
            case StepOutcome.Ok:
                var saved = Save(Succeeded(d with { InFlight = null, LastError = null }, step), [f with { Described = true }], Receipt(d, step, r));
                Audit(saved, "report.fileinfo", ("file", f.Index.ToString(CultureInfo.InvariantCulture)), ("fileId", f.FileId ?? ""));
                return (saved, true);
            case StepOutcome.Ambiguous:
                return (Fail(d with { Status = DeliveryStatus.Retracting }, step, r), false);
            default:
                return Other(d, step, r);
        }
    }

    private async Task<(Delivery, bool)> FinishAsync(Delivery d, CancellationToken ct)
    {
        d = Save(d with { InFlight = "finish" });
        var r = await CallAsync(() => _destination.FinishAsync(d.ReportId!, ct)).ConfigureAwait(false);
        Count("finish", r);
        if (r.Outcome is StepOutcome.Ok or StepOutcome.AlreadyFinished)
        {
            // Only this delivery knows the report id, and it only finishes after its own finish call, so
            // "already finished" means an earlier finish of ours landed and its answer was lost.
            FinishedCounter.Add(1);
            var finished = Save(d with { Status = DeliveryStatus.Finished, FinishedAt = _time.GetUtcNow(), InFlight = null, LastError = null, Failures = 0, FailureKey = null }, null, Receipt(d, "finish", r));
            Audit(finished, "report.finish", ("answer", r.Outcome.ToString()));
            return (finished, true);
        }

        return Other(d, "finish", r);
    }

    private async Task<(Delivery, bool)> RetractAsync(Delivery d, IReadOnlyList<DeliveryFile> files, CancellationToken ct)
    {
        d = Save(d with { InFlight = "retract" });
        var r = await CallAsync(() => _destination.CancelAsync(d.ReportId!, ct)).ConfigureAwait(false);
        Count("retract", r);
        switch (r.Outcome)
        {
            case StepOutcome.Ok or StepOutcome.AlreadyRetracted or StepOutcome.ReportGone:
                Audit(d, "report.retract", ("outcome", r.Outcome.ToString()), ("code", Code(r)));
                return Restart(Succeeded(d, "retract"), files, "retract", r);
            case StepOutcome.AlreadyFinished:
                // Cannot happen through this worker (finish comes last); record it and stop for a person.
                return (Terminal(d with { Status = DeliveryStatus.Finished, FinishedAt = _time.GetUtcNow() }, "retract", "the report was already finished while its file state was uncertain; check it at the destination", DeliveryAlarmKind.Failed, r), false);
            default:
                return (Fail(d, "retract", r), false);
        }
    }

    /// <summary>Handles the outcomes shared by every step after submit.</summary>
    private (Delivery, bool) Other(Delivery d, string step, StepResult r)
    {
        switch (r.Outcome)
        {
            case StepOutcome.ReportGone:
                // The destination deleted the report (24 h rule): a fresh one, counted as a failure of this step.
                var attempts = Attempts(d, step);
                if (attempts >= _options.MaxAttempts)
                {
                    return (DeadLetter(d with { Failures = attempts, FailureKey = step }, step, r), false);
                }

                return Restart(d with { Failures = attempts, FailureKey = step }, _store.Files(d.Id), step, r);
            case StepOutcome.Rejected or StepOutcome.AlreadyRetracted or StepOutcome.AlreadyFinished:
                return (Terminal(d, step, $"{step} refused: {r.ResponseCode} {r.Description}", DeliveryAlarmKind.Failed, r), false);
            default:
                return (Fail(d, step, r), false);
        }
    }

    /// <summary>The report is gone or cancelled: forget it and every file id, and open a new one (at most <see cref="DeliveryOptions.MaxRestarts"/> times).</summary>
    private (Delivery, bool) Restart(Delivery d, IReadOnlyList<DeliveryFile> files, string step, StepResult r)
    {
        var forgotten = files.Select(f => f with { FileId = null, Md5 = null, Described = false }).ToList();
        if (d.Restarts + 1 > _options.MaxRestarts)
        {
            // Drop the gone report's ids too: a requeue starts from a fresh report.
            var parked = Save(d with { ReportId = null, OpenedAt = null, InFlight = null }, forgotten);
            return (DeadLetter(parked, step, r with { Description = $"restarted {d.Restarts} times without finishing; last: {r.Outcome} {r.Description}" }), false);
        }

        Audit(d, "report.restart", ("after", step), ("answer", r.Outcome.ToString()));
        var restarted = Save(
            d with { Status = DeliveryStatus.Queued, ReportId = null, OpenedAt = null, InFlight = null, Generation = d.Generation + 1, Restarts = d.Restarts + 1, LastError = $"restarted after {step}: {r.Outcome} {r.Description}" },
            forgotten,
            Receipt(d, step, r));
        return (restarted, true);
    }

    // Consecutive failures of this step, counting the one being recorded.
    private static int Attempts(Delivery d, string step) => d.FailureKey == step ? d.Failures + 1 : 1;

    // A step's success clears its own failure count only: the steps before it succeeding again after a
    // restart do not, so a step that fails on every fresh report still reaches the limit.
    private static Delivery Succeeded(Delivery d, string step) => d.FailureKey == step ? d with { Failures = 0, FailureKey = null } : d;

    /// <summary>Schedules a retry with exponential backoff and jitter, or dead-letters after <see cref="DeliveryOptions.MaxAttempts"/>.</summary>
    private Delivery Fail(Delivery d, string step, StepResult r)
    {
        if (r.Outcome == StepOutcome.Rejected)
        {
            return Terminal(d, step, $"{step} refused: {r.ResponseCode} {r.Description}", DeliveryAlarmKind.Failed, r);
        }

        var attempts = Attempts(d, step);
        if (attempts >= _options.MaxAttempts && r.Outcome != StepOutcome.AuthFailed)
        {
            return DeadLetter(d with { Failures = attempts, FailureKey = step }, step, r);
        }

        var exp = Math.Min(_options.MaxDelay.TotalMilliseconds, _options.BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempts - 1, 30)));
        var delay = TimeSpan.FromMilliseconds(exp * (0.5 + (Random.Shared.NextDouble() * 0.5)));
        var inFlight = r.Outcome == StepOutcome.Ambiguous && step == "submit" ? "submit" : (string?)null;
        var error = $"{step}: {r.Outcome} {r.HttpStatus} {r.ResponseCode} {XmlSafeText.ForLog(r.Description)}";
        var saved = Save(d with { InFlight = inFlight, Failures = attempts, FailureKey = step, NextAttemptAt = _time.GetUtcNow() + delay, LastError = error }, null, Receipt(d, step, r));
        Audit(saved, "report.retry", ("step", step), ("attempt", attempts.ToString(CultureInfo.InvariantCulture)), ("outcome", r.Outcome.ToString()), ("code", Code(r)),
            ("nextAttemptAt", saved.NextAttemptAt.ToString("O", CultureInfo.InvariantCulture)));
        if (r.Outcome == StepOutcome.AuthFailed)
        {
            Raise(new DeliveryAlarm(DeliveryAlarmKind.AuthFailed, d.Id, d.CaseId, $"{step}: the destination refused the credentials ({r.HttpStatus} {r.ResponseCode} {XmlSafeText.ForLog(r.Description)})"));
        }

        return saved;
    }

    private Delivery DeadLetter(Delivery d, string step, StepResult r)
    {
        var attempts = d.FailureKey == step ? Math.Max(d.Failures, 1) : 1;
        var message = $"dead-lettered after {attempts} failed attempt(s) at {step} ({d.Restarts} restart(s)): {r.Outcome} {r.HttpStatus} {r.ResponseCode} {XmlSafeText.ForLog(r.Description)}; an admin can requeue or cancel it";
        var saved = Save(d with { Status = DeliveryStatus.DeadLettered, InFlight = null, LastError = message, NextAttemptAt = _time.GetUtcNow() }, null, Receipt(d, step, r));
        DeadLetterCounter.Add(1, new KeyValuePair<string, object?>("step", step.Split(':')[0]));
        Audit(saved, "report.dead_letter", ("step", step), ("attempts", attempts.ToString(CultureInfo.InvariantCulture)), ("outcome", r.Outcome.ToString()), ("code", Code(r)));
        Raise(new DeliveryAlarm(DeliveryAlarmKind.DeadLettered, d.Id, d.CaseId, message));
        return saved;
    }

    private Delivery Terminal(Delivery d, string step, string message, DeliveryAlarmKind kind, StepResult? r = null)
    {
        message = XmlSafeText.ForLog(message, 1000);
        var status = d.Status == DeliveryStatus.Finished ? DeliveryStatus.Finished : DeliveryStatus.Failed;
        var saved = Save(d with { Status = status, InFlight = null, LastError = message }, null, Receipt(d, step, r ?? new StepResult(StepOutcome.Rejected, Description: message)));
        Audit(saved, "report.failed", ("step", step), ("message", message));
        Raise(new DeliveryAlarm(kind, d.Id, d.CaseId, message));
        return saved;
    }

    // A destination or evidence call that throws is that delivery's failure, recorded like any other.
    private static async Task<StepResult> CallAsync(Func<Task<StepResult>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw;
        }
#pragma warning disable CA1031 // isolation: any fault becomes this step's recorded failure
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return FaultOf(ex, "building or sending the request");
        }
    }

    private static StepResult FaultOf(Exception ex, string doing) =>
        new(StepOutcome.Fault, Description: $"{ex.GetType().Name} while {doing}: {XmlSafeText.ForLog(ex.Message)}");

    private static string Code(StepResult r) => (r.ResponseCode ?? r.HttpStatus)?.ToString(CultureInfo.InvariantCulture) ?? "";

    private Delivery Save(Delivery d, IReadOnlyList<DeliveryFile>? files = null, DeliveryReceipt? receipt = null) => _store.Save(d, files, receipt);

    private DeliveryReceipt Receipt(Delivery d, string step, StepResult r) =>
        new(d.Id, _time.GetUtcNow(), d.Generation, step, r.Outcome.ToString(), r.HttpStatus, r.ResponseCode, r.RequestId, r.Request, r.Body ?? r.Description);

    private DeliveryReceipt Receipt(Delivery d, string step, string outcome, string? request, string note) =>
        new(d.Id, _time.GetUtcNow(), d.Generation, step, outcome, null, null, null, request, note);

    private void Audit(Delivery d, string action, params (string Key, string Value)[] details)
    {
        if (_audit is null)
        {
            return;
        }

        var map = new Dictionary<string, string>
        {
            ["delivery"] = d.Id.ToString(CultureInfo.InvariantCulture),
            ["destination"] = $"{d.Destination}/{d.Environment}",
            ["reportId"] = d.ReportId ?? "",
            ["generation"] = d.Generation.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in details)
        {
            map[k] = XmlSafeText.ForLog(v, 500);
        }

        var actor = details.FirstOrDefault(x => x.Key == "by").Value;
        _audit.Append(new AuditEntry(string.IsNullOrWhiteSpace(actor) ? Actor : actor, action, "case:" + d.CaseId, map));
    }

    private void Raise(DeliveryAlarm alarm)
    {
        AlarmCounter.Add(1, new KeyValuePair<string, object?>("kind", alarm.Kind.ToString()));
        Alarm?.Invoke(this, alarm);
    }

    private static void Count(string step, StepResult r) =>
        StepCounter.Add(1, new KeyValuePair<string, object?>("step", step), new KeyValuePair<string, object?>("outcome", r.Outcome.ToString()));

    /// <summary>Evidence bytes per (delivery, item), bounded in bytes, least recently used evicted first.</summary>
    private sealed class MediaCache(long capacity)
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<(long, string), LinkedListNode<(long Delivery, string Ref, byte[] Bytes)>> _map = [];
        private readonly LinkedList<(long Delivery, string Ref, byte[] Bytes)> _order = new();
        private long _bytes;

        public bool TryGet(long delivery, string evidenceRef, out byte[]? bytes)
        {
            lock (_lock)
            {
                if (_map.TryGetValue((delivery, evidenceRef), out var node))
                {
                    _order.Remove(node);
                    _order.AddFirst(node);
                    bytes = node.Value.Bytes;
                    return true;
                }
            }

            bytes = null;
            return false;
        }

        public void Add(long delivery, string evidenceRef, byte[] bytes)
        {
            if (bytes.LongLength > capacity)
            {
                return; // larger than the whole cache: read again when needed
            }

            lock (_lock)
            {
                if (_map.ContainsKey((delivery, evidenceRef)))
                {
                    return;
                }

                while (_bytes + bytes.LongLength > capacity && _order.Last is { } last)
                {
                    Drop(last);
                }

                _map[(delivery, evidenceRef)] = _order.AddFirst((delivery, evidenceRef, bytes));
                _bytes += bytes.LongLength;
            }
        }

        public void Forget(long delivery)
        {
            lock (_lock)
            {
                for (var node = _order.First; node is not null;)
                {
                    var next = node.Next;
                    if (node.Value.Delivery == delivery)
                    {
                        Drop(node);
                    }

                    node = next;
                }
            }
        }

        public void Clear()
        {
            lock (_lock)
            {
                _map.Clear();
                _order.Clear();
                _bytes = 0;
            }
        }

        private void Drop(LinkedListNode<(long Delivery, string Ref, byte[] Bytes)> node)
        {
            _order.Remove(node);
            _map.Remove((node.Value.Delivery, node.Value.Ref));
            _bytes -= node.Value.Bytes.LongLength;
        }
    }
}
