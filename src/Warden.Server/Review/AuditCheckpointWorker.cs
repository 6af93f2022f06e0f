using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

using Warden.Review;

namespace Warden.Server.Review;

/// <summary>
/// Writes a signed checkpoint of the audit chain's head to the blob store every
/// <see cref="ReviewOptions.AuditCheckpointMinutes"/> (and once at stop), when evidence preservation is on.
/// Several nodes may run it: a checkpoint of an unchanged head is skipped, and a taken number is never
/// overwritten.
/// </summary>
public sealed partial class AuditCheckpointWorker(ReviewService review, ILogger<AuditCheckpointWorker> log) : BackgroundService
{
    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (review.Checkpoints is null || review.Options.AuditCheckpointMinutes <= 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(review.Options.AuditCheckpointMinutes));
        do
        {
            await WriteAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <inheritdoc/>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (review.Checkpoints is not null && review.Options.AuditCheckpointMinutes > 0)
        {
            await WriteAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WriteAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (await review.Checkpoints!.WriteAsync(cancellationToken).ConfigureAwait(false) is { } c)
            {
                LogCheckpoint(log, c.Number, c.Seq);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Warden.Storage.StorageException or System.Data.Common.DbException)
        {
            // A missed checkpoint weakens the anchor but must not stop the server; the next tick retries.
            LogFailed(log, ex.GetType().Name, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "audit checkpoint {Number} written at seq {Seq}")]
    private static partial void LogCheckpoint(ILogger logger, long number, long seq);

    [LoggerMessage(Level = LogLevel.Warning, Message = "audit checkpoint failed ({Type}): {Message}")]
    private static partial void LogFailed(ILogger logger, string type, string message);
}
