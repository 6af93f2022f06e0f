using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Review.Reporting;

namespace Warden.Server.Review;

/// <summary>
/// Delivers queued CyberTipline reports (the library's durable outbox: a restart resumes where it stopped,
/// and a report the destination already opened is never opened twice).
/// </summary>
public sealed partial class ReportWorker(ReviewService review, ILogger<ReportWorker> log) : BackgroundService
{
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

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = review.Options.CyberTipline;
        using var client = new CyberTiplineClient(ClientOptions(settings));
        IDeliveryMedia media = review.Vault is { } vault ? new VaultDeliveryMedia(vault) : new NoMedia();
        using var deliverer = new ReportDeliverer(review.Deliveries, new NcmecDestination(client), media, new DeliveryOptions { BaseDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromMinutes(5) });
        deliverer.Alarm += (_, a) => LogAlarm(log, a.DeliveryId, a.CaseId, a.Kind.ToString(), a.Message);
        var poll = TimeSpan.FromMilliseconds(Math.Max(50, settings.PollMilliseconds));
        var nextSweep = DateTimeOffset.UtcNow;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await deliverer.RunDueAsync(20, stoppingToken).ConfigureAwait(false);
                if (review.Vault is { } v && DateTimeOffset.UtcNow >= nextSweep)
                {
                    // Retention: destroy evidence past its period and not on legal hold (each destruction is audited).
                    nextSweep = DateTimeOffset.UtcNow.AddHours(1);
                    await v.DestroyDueAsync("system:retention", stoppingToken).ConfigureAwait(false);
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
                LogRoundFailed(log, ex);
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Report delivery round failed")]
    private static partial void LogRoundFailed(ILogger logger, Exception exception);

    private sealed class NoMedia : IDeliveryMedia
    {
        public Task<byte[]?> ReadAsync(string caseId, string evidenceRef, CancellationToken cancellationToken) => Task.FromResult<byte[]?>(null);
    }
}
