using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Review;
using Warden.Review.Reporting;

namespace Warden.Server.Review;

/// <summary>
/// Delivers queued CyberTipline reports (the library's durable outbox: a restart resumes where it stopped,
/// and a report the destination already opened is never opened twice). Every step is audited; each delivery
/// is isolated from the others; a step that keeps failing is dead-lettered with an alarm (a metric, a log line
/// without credentials or media, and a notice on the admin console) for an admin to requeue or cancel.
/// </summary>
public sealed partial class ReportWorker : BackgroundService
{
    private readonly string _sweepOwner = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}");
    private readonly ReviewService _review;
    private readonly ILogger<ReportWorker> _log;
    private readonly CyberTiplineClient _client;

    /// <summary>Creates the worker and its outbox deliverer (shared with the admin endpoints).</summary>
    public ReportWorker(ReviewService review, ILogger<ReportWorker> log)
    {
        ArgumentNullException.ThrowIfNull(review);
        _review = review;
        _log = log;
        var settings = review.Options.CyberTipline;
        _client = new CyberTiplineClient(ClientOptions(settings));
        IDeliveryMedia media = review.Vault is { } vault ? new VaultDeliveryMedia(vault) : new NoMedia();
        Deliverer = new ReportDeliverer(review.Deliveries, new NcmecDestination(_client), media, DeliveryOptionsOf(settings), audit: review.Audit);
        Deliverer.Alarm += (_, a) => LogAlarm(_log, a.DeliveryId, XmlSafeText.ForLog(a.CaseId, 100), a.Kind.ToString(), XmlSafeText.ForLog(a.Message, 600));
        Deliverer.Error += (_, e) => LogDeliveryError(_log, e.DeliveryId, e.Exception.GetType().Name, XmlSafeText.ForLog(e.Exception.Message, 600));
    }

    /// <summary>The outbox worker (the admin endpoints cancel and requeue through it, so they wait for a running step).</summary>
    public ReportDeliverer Deliverer { get; }

    /// <summary>Builds the destination from the settings (test and production URLs are separate).</summary>
    public static CyberTiplineOptions ClientOptions(CyberTiplineSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var production = string.Equals(s.Environment, "production", StringComparison.OrdinalIgnoreCase);
        var url = production ? s.ProductionUrl : s.TestUrl;
        return new CyberTiplineOptions
        {
            Environment = production ? CyberTiplineEnvironment.Production : CyberTiplineEnvironment.Test,
            BaseUri = string.IsNullOrWhiteSpace(url) ? null : new Uri(url.EndsWith('/') ? url : url + "/"),
            Username = s.Username,
            Password = s.Password,
            RequestTimeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>Outbox limits from the settings (clamped to sane ranges).</summary>
    public static DeliveryOptions DeliveryOptionsOf(CyberTiplineSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var baseDelay = TimeSpan.FromMilliseconds(Math.Clamp(s.RetryBaseMilliseconds, 10, 3_600_000));
        var maxDelay = TimeSpan.FromSeconds(Math.Clamp(s.RetryMaxSeconds, 1, 86_400));
        return new DeliveryOptions
        {
            BaseDelay = baseDelay,
            MaxDelay = maxDelay < baseDelay ? baseDelay : maxDelay,
            MaxAttempts = Math.Clamp(s.MaxAttempts, 1, 1000),
            MaxRestarts = Math.Clamp(s.MaxRestarts, 0, 1000),
            Parallelism = Math.Clamp(s.Parallelism, 1, 64),
            Lease = TimeSpan.FromSeconds(Math.Clamp(s.LeaseSeconds, 3, 3600)),
        };
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        Deliverer.Dispose();
        _client.Dispose();
        base.Dispose();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var poll = TimeSpan.FromMilliseconds(Math.Max(50, _review.Options.CyberTipline.PollMilliseconds));
        var nextSweep = DateTimeOffset.UtcNow;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Deliverer.RunDueAsync(20, stoppingToken).ConfigureAwait(false);
                Metrics.ReportsNeedingAttention.Set(_review.Deliveries.Count(DeliveryStatus.DeadLettered) + _review.Deliveries.Count(DeliveryStatus.Failed));
                if (_review.Vault is { } v && DateTimeOffset.UtcNow >= nextSweep)
                {
                    // Retention: destroy evidence past its period and not on legal hold (each destruction is audited).
                    // One node per hour sweeps: the lease is left to expire, so the others skip this hour.
                    nextSweep = DateTimeOffset.UtcNow.AddMinutes(5);
                    if (_review.Leases.TryTake("evidence-retention", _sweepOwner, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(55)))
                    {
                        await v.DestroyDueAsync("system:retention", stoppingToken).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the worker must outlive one bad round; the outbox keeps the state
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogRoundFailed(_log, ex.GetType().Name, XmlSafeText.ForLog(ex.Message, 600));
            }

            try
            {
                await Task.Delay(poll, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Report delivery {Id} (case {Case}): {Kind}: {Message}")]
    private static partial void LogAlarm(ILogger logger, long id, string @case, string kind, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "Report delivery {Id}: {Type}: {Message} (the other deliveries went on)")]
    private static partial void LogDeliveryError(ILogger logger, long id, string type, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "Report delivery round failed: {Type}: {Message}")]
    private static partial void LogRoundFailed(ILogger logger, string type, string message);

    private sealed class NoMedia : IDeliveryMedia
    {
        public Task<byte[]?> ReadAsync(string caseId, string evidenceRef, CancellationToken cancellationToken) => Task.FromResult<byte[]?>(null);
    }
}
