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

/// <summary>Outbox timing.</summary>
public sealed record DeliveryOptions
{
    /// <summary>First retry delay; doubles per consecutive failure.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest retry delay.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Alarm when a report has been open this long without finishing. NCMEC deletes an unfinished report 24 h
    /// after it was opened, so the default leaves 4 h for a person to act.
    /// </summary>
    public TimeSpan OverdueAfter { get; init; } = TimeSpan.FromHours(20);
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
}

/// <summary>An outbox alarm.</summary>
public sealed record DeliveryAlarm(DeliveryAlarmKind Kind, long DeliveryId, string CaseId, string Message);

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
/// Failures are retried with exponential backoff and jitter; refusals stop the delivery and raise an alarm.
/// Only the delivery's own finish makes a report; a case has one delivery per destination, so a case is
/// reported at most once.
/// </summary>
public sealed class ReportDeliverer : IDisposable
{
    private static readonly Meter Meter = new("Warden.Review");
    private static readonly Counter<long> StepCounter = Meter.CreateCounter<long>("warden.report.steps", description: "CyberTipline/destination calls by outcome");
    private static readonly Counter<long> AlarmCounter = Meter.CreateCounter<long>("warden.report.alarms", description: "Report outbox alarms");
    private static readonly Counter<long> FinishedCounter = Meter.CreateCounter<long>("warden.report.finished", description: "Reports finished");

    private readonly IDeliveryStore _store;
    private readonly IReportDestination _destination;
    private readonly IDeliveryMedia _media;
    private readonly DeliveryOptions _options;
    private readonly TimeProvider _time;
    private readonly AuditLog? _audit;
    private readonly CancellationTokenSource _stopping = new();
    private bool _disposed;

    /// <summary>Creates a worker for one destination; with <paramref name="audit"/>, report milestones are audited.</summary>
    public ReportDeliverer(IDeliveryStore store, IReportDestination destination, IDeliveryMedia media, DeliveryOptions? options = null, TimeProvider? time = null, AuditLog? audit = null)
    {
        _store = store;
        _destination = destination;
        _media = media;
        _options = options ?? new DeliveryOptions();
        _time = time ?? TimeProvider.System;
        _audit = audit;
    }

    /// <summary>Raised for overdue, failed and unauthorised deliveries (also counted in the <c>warden.report.alarms</c> metric).</summary>
    public event EventHandler<DeliveryAlarm>? Alarm;

    /// <summary>Advances a delivery as far as it goes now: to Finished or Failed, or until a failure schedules a retry.</summary>
    public async Task<Delivery> RunOnceAsync(long deliveryId, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var ct = linked.Token;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var d = _store.Find(deliveryId) ?? throw new KeyNotFoundException($"No delivery {deliveryId}.");
            if (d.IsTerminal)
            {
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
                return next;
            }
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
    /// Cancels a delivery that has not finished (an operator's decision, e.g. a reversed review): an open
    /// report is retracted at the destination first. Returns the final state: Cancelled, or Finished when the
    /// report had already been finished (a finished report cannot be cancelled). Throws when the destination
    /// cannot be reached; try again.
    /// </summary>
    public async Task<Delivery> CancelAsync(long deliveryId, string actor, string reason, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var d = _store.Find(deliveryId) ?? throw new KeyNotFoundException($"No delivery {deliveryId}.");
        if (d.IsTerminal)
        {
            return d;
        }

        var note = $"cancelled by {actor}: {reason}";
        if (d.ReportId is { } reportId && d.Status is DeliveryStatus.Open or DeliveryStatus.Retracting)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            d = Save(d with { InFlight = "retract" });
            var r = await _destination.CancelAsync(reportId, linked.Token).ConfigureAwait(false);
            Count("retract", r);
            if (r.Outcome == StepOutcome.AlreadyFinished)
            {
                return Save(d with { Status = DeliveryStatus.Finished, InFlight = null, FinishedAt = _time.GetUtcNow(), LastError = "cancel came too late: the report was already finished" }, null, Receipt(d, "retract", r));
            }

            if (r.Outcome is not (StepOutcome.Ok or StepOutcome.AlreadyRetracted or StepOutcome.ReportGone))
            {
                Save(d with { InFlight = null, LastError = $"cancel: retract failed ({r.Outcome} {r.ResponseCode} {r.Description})" }, null, Receipt(d, "retract", r));
                throw new InvalidOperationException($"Delivery {deliveryId}: the destination did not confirm the retraction ({r.Outcome}); try again.");
            }

            d = Save(d with { Status = DeliveryStatus.Cancelled, InFlight = null, LastError = note }, null, Receipt(d, "retract", r));
        }
        else
        {
            // Not opened (or a submit whose answer was lost: that orphan is never finished and expires).
            d = Save(d with { Status = DeliveryStatus.Cancelled, InFlight = null, LastError = note }, null, Receipt(d, "cancel", "Cancelled", null, note));
        }

        Audit(d, "report.cancel", ("reason", reason), ("by", actor));
        return d;
    }

    /// <summary>One pass over due deliveries (a hosted service calls this every few seconds); returns how many finished.</summary>
    public async Task<int> RunDueAsync(int limit = 50, CancellationToken cancellationToken = default)
    {
        var finished = 0;
        foreach (var d in _store.Due(_time.GetUtcNow(), limit).Where(d => d.Destination == _destination.Name && d.Environment == _destination.Environment))
        {
            try
            {
                if ((await RunOnceAsync(d.Id, cancellationToken).ConfigureAwait(false)).Status == DeliveryStatus.Finished)
                {
                    finished++;
                }
            }
            catch (DeliveryConflictException)
            {
                // Another worker owns it right now.
            }
        }

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
                $"Report {d.ReportId} of case {d.CaseId} has been open since {d.OpenedAt:O}; NCMEC deletes unfinished reports after 24 h. Last error: {d.LastError}"));
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
    }

    private async Task<(Delivery Next, bool Progressed)> StepAsync(Delivery d, IReadOnlyList<DeliveryFile> files, CancellationToken ct)
    {
        // A step left in flight by a crash or a lost answer: decide what its unknown outcome means.
        if (d.InFlight is { } pending && (pending.StartsWith("upload:", StringComparison.Ordinal) || pending.StartsWith("fileinfo:", StringComparison.Ordinal)))
        {
            return (Save(d with { Status = DeliveryStatus.Retracting, InFlight = null }, null, Receipt(d, pending, "unknown-outcome", null, "resuming: the outcome of " + pending + " is unknown; retracting the report to start clean")), true);
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
        var r = await _destination.OpenAsync(d.Document, ct).ConfigureAwait(false);
        Count("submit", r);
        if (r.Outcome == StepOutcome.Ok && !string.IsNullOrEmpty(r.ReportId))
        {
            // The report id first: from here on the case has a report at the destination.
            var opened = Save(d with { Status = DeliveryStatus.Open, ReportId = r.ReportId, OpenedAt = _time.GetUtcNow(), InFlight = null, Failures = 0, LastError = null },
                null, Receipt(d, "submit", r));
            Audit(opened, "report.open");
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
        var media = await _media.ReadAsync(d.CaseId, f.EvidenceRef, ct).ConfigureAwait(false);
        if (media is null)
        {
            return (Terminal(d, step, $"evidence {f.EvidenceRef} of file {f.Index} is missing or destroyed; the report cannot be completed as queued", DeliveryAlarmKind.Failed), false);
        }

#pragma warning disable CA5351 // MD5 is what the CyberTipline returns for upload verification, not a security use.
        var md5 = Convert.ToHexStringLower(MD5.HashData(media));
#pragma warning restore CA5351
        d = Save(d with { InFlight = step });
        var r = await _destination.AddFileAsync(d.ReportId!, f.FileName, media, ct).ConfigureAwait(false);
        if (r.Outcome == StepOutcome.Ok && (string.IsNullOrEmpty(r.FileId) || (r.FileHash is not null && !r.FileHash.Equals(md5, StringComparison.OrdinalIgnoreCase))))
        {
            r = r with { Outcome = StepOutcome.Ambiguous, Description = $"upload answer has no fileId or a different MD5 ({r.FileHash} vs ours {md5})" };
        }

        Count("upload", r);
        switch (r.Outcome)
        {
            case StepOutcome.Ok:
                return (Save(d with { InFlight = null, Failures = 0, LastError = null }, [f with { FileId = r.FileId, Md5 = md5 }], Receipt(d, step, r)), true);
            case StepOutcome.Ambiguous:
                // The file may be in the report: never finish in that state.
                return (Fail(d with { Status = DeliveryStatus.Retracting }, step, r), false);
            default:
                return (Other(d, step, r), r.Outcome == StepOutcome.ReportGone);
        }
    }

    private async Task<(Delivery, bool)> DescribeAsync(Delivery d, DeliveryFile f, CancellationToken ct)
    {
        var step = "fileinfo:" + f.Index.ToString(CultureInfo.InvariantCulture);
        d = Save(d with { InFlight = step });
        var r = await _destination.DescribeFileAsync(d.ReportId!, f.FileId!, f.Metadata, ct).ConfigureAwait(false);
        Count("fileinfo", r);
        return r.Outcome switch
        {
            StepOutcome.Ok => (Save(d with { InFlight = null, Failures = 0, LastError = null }, [f with { Described = true }], Receipt(d, step, r)), true),
            StepOutcome.Ambiguous => (Fail(d with { Status = DeliveryStatus.Retracting }, step, r), false),
            _ => (Other(d, step, r), r.Outcome == StepOutcome.ReportGone),
        };
    }

    private async Task<(Delivery, bool)> FinishAsync(Delivery d, CancellationToken ct)
    {
        d = Save(d with { InFlight = "finish" });
        var r = await _destination.FinishAsync(d.ReportId!, ct).ConfigureAwait(false);
        Count("finish", r);
        if (r.Outcome is StepOutcome.Ok or StepOutcome.AlreadyFinished)
        {
            // Only this delivery knows the report id, and it only finishes after its own finish call, so
            // "already finished" means an earlier finish of ours landed and its answer was lost.
            FinishedCounter.Add(1);
            var finished = Save(d with { Status = DeliveryStatus.Finished, FinishedAt = _time.GetUtcNow(), InFlight = null, LastError = null }, null, Receipt(d, "finish", r));
            Audit(finished, "report.finish", ("answer", r.Outcome.ToString()));
            return (finished, true);
        }

        return (Other(d, "finish", r), r.Outcome == StepOutcome.ReportGone);
    }

    private async Task<(Delivery, bool)> RetractAsync(Delivery d, IReadOnlyList<DeliveryFile> files, CancellationToken ct)
    {
        d = Save(d with { InFlight = "retract" });
        var r = await _destination.CancelAsync(d.ReportId!, ct).ConfigureAwait(false);
        Count("retract", r);
        switch (r.Outcome)
        {
            case StepOutcome.Ok or StepOutcome.AlreadyRetracted or StepOutcome.ReportGone:
                return (Restart(d, files, "retract", r), true);
            case StepOutcome.AlreadyFinished:
                // Cannot happen through this worker (finish comes last); record it and stop for a person.
                return (Terminal(d with { Status = DeliveryStatus.Finished, FinishedAt = _time.GetUtcNow() }, "retract", "the report was already finished while its file state was uncertain; check it at the destination", DeliveryAlarmKind.Failed, r), false);
            default:
                return (Other(d, "retract", r), false);
        }
    }

    /// <summary>Handles the outcomes shared by every step after submit.</summary>
    private Delivery Other(Delivery d, string step, StepResult r) => r.Outcome switch
    {
        StepOutcome.ReportGone => Restart(d, _store.Files(d.Id), step, r),
        StepOutcome.Rejected or StepOutcome.AlreadyRetracted or StepOutcome.AlreadyFinished =>
            Terminal(d, step, $"{step} refused: {r.ResponseCode} {r.Description}", DeliveryAlarmKind.Failed, r),
        _ => Fail(d, step, r),
    };

    /// <summary>The report is gone or cancelled: forget it and every file id, and open a new one.</summary>
    private Delivery Restart(Delivery d, IReadOnlyList<DeliveryFile> files, string step, StepResult r)
    {
        Audit(d, "report.restart", ("after", step), ("answer", r.Outcome.ToString()));
        return Save(
            d with { Status = DeliveryStatus.Queued, ReportId = null, OpenedAt = null, InFlight = null, Generation = d.Generation + 1, LastError = $"restarted after {step}: {r.Outcome} {r.Description}" },
            [.. files.Select(f => f with { FileId = null, Md5 = null, Described = false })],
            Receipt(d, step, r));
    }

    /// <summary>Schedules a retry with exponential backoff and jitter.</summary>
    private Delivery Fail(Delivery d, string step, StepResult r)
    {
        if (r.Outcome == StepOutcome.Rejected)
        {
            return Terminal(d, step, $"{step} refused: {r.ResponseCode} {r.Description}", DeliveryAlarmKind.Failed, r);
        }

        var failures = d.Failures + 1;
        var exp = Math.Min(_options.MaxDelay.TotalMilliseconds, _options.BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 30)));
        var delay = TimeSpan.FromMilliseconds(exp * (0.5 + (Random.Shared.NextDouble() * 0.5)));
        var inFlight = r.Outcome == StepOutcome.Ambiguous && step == "submit" ? "submit" : (string?)null;
        var saved = Save(d with { InFlight = inFlight, Failures = failures, NextAttemptAt = _time.GetUtcNow() + delay, LastError = $"{step}: {r.Outcome} {r.HttpStatus} {r.ResponseCode} {r.Description}" }, null, Receipt(d, step, r));
        if (r.Outcome == StepOutcome.AuthFailed)
        {
            Raise(new DeliveryAlarm(DeliveryAlarmKind.AuthFailed, d.Id, d.CaseId, $"{step}: the destination refused the credentials ({r.HttpStatus} {r.ResponseCode} {r.Description})"));
        }

        return saved;
    }

    private Delivery Terminal(Delivery d, string step, string message, DeliveryAlarmKind kind, StepResult? r = null)
    {
        var status = d.Status == DeliveryStatus.Finished ? DeliveryStatus.Finished : DeliveryStatus.Failed;
        var saved = Save(d with { Status = status, InFlight = null, LastError = message }, null, Receipt(d, step, r ?? new StepResult(StepOutcome.Rejected, Description: message)));
        Audit(saved, "report.failed", ("step", step), ("message", message));
        Raise(new DeliveryAlarm(kind, d.Id, d.CaseId, message));
        return saved;
    }

    private Delivery Save(Delivery d, IReadOnlyList<DeliveryFile>? files = null, DeliveryReceipt? receipt = null) => _store.Save(d, files, receipt);

    private DeliveryReceipt Receipt(Delivery d, string step, StepResult r) =>
        new(d.Id, _time.GetUtcNow(), d.Generation, step, r.Outcome.ToString(), r.HttpStatus, r.ResponseCode, r.RequestId, r.Request, r.Body ?? r.Description);

    private DeliveryReceipt Receipt(Delivery d, string step, string outcome, string? request, string note) =>
        new(d.Id, _time.GetUtcNow(), d.Generation, step, outcome, null, null, null, request, note);

    private void Audit(Delivery d, string action, params (string Key, string Value)[] details)
    {
        var map = new Dictionary<string, string>
        {
            ["destination"] = $"{d.Destination}/{d.Environment}",
            ["reportId"] = d.ReportId ?? "",
            ["generation"] = d.Generation.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in details)
        {
            map[k] = v;
        }

        _audit?.Append(new AuditEntry("system:report-outbox", action, "case:" + d.CaseId, map));
    }

    private void Raise(DeliveryAlarm alarm)
    {
        AlarmCounter.Add(1, new KeyValuePair<string, object?>("kind", alarm.Kind.ToString()));
        Alarm?.Invoke(this, alarm);
    }

    private static void Count(string step, StepResult r) =>
        StepCounter.Add(1, new KeyValuePair<string, object?>("step", step), new KeyValuePair<string, object?>("outcome", r.Outcome.ToString()));
}
