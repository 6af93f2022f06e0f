using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Review;
using Warden.Server.Actions;
using Warden.Server.Data;
using Warden.Server.Index;
using Warden.Storage;

namespace Warden.Server.SignalLog;

/// <summary>Where the match path hands each matched upload's signals (the signal log, when a deployment turns it on).</summary>
public interface IUploadRecorder
{
    /// <summary>Keeps the signals and context of one matched upload. Must not throw for the upload's sake.</summary>
    void Record(LoggedSignals signals, UploadRecord upload);
}

/// <summary>Writes matched uploads to the <see cref="Storage.SignalLog"/>; a failed write is logged, never fails the match.</summary>
public sealed partial class SignalLogRecorder(Storage.SignalLog log, ILogger<SignalLogRecorder> logger) : IUploadRecorder
{
    /// <inheritdoc />
    public void Record(LoggedSignals signals, UploadRecord upload)
    {
        try
        {
            log.Append(signals, upload);
            Metrics.SignalLogWrites.Inc();
        }
        catch (Exception ex) when (ex is StorageException or System.Data.Common.DbException or IOException)
        {
            LogWriteFailed(logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The signal log could not record an upload (the match itself went on)")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception);
}

/// <summary>
/// Retroactive matching in the server: every few seconds, searches the bank entries added since the last pass
/// against the signal log (<see cref="RetroactivePass"/>), then acts on every recorded match nobody acted on
/// yet — from this pass, another node, or a backfill worker: a match event (action "retroactive"), the bank's
/// webhook (idempotency key = the match key, <c>"retroactive": true</c>, the original upload time) and the
/// uploader's review case. Each match is claimed by one node before it is acted on, so nothing is acted on
/// twice. Once an hour it drops partitions past retention.
/// </summary>
public sealed partial class RetroactiveService(
    Storage.SignalLog log, BankStore banks, ServerStore server, LiveIndex index, ServerOptions options, ReviewService review, ILogger<RetroactiveService> logger) : BackgroundService
{
    private static readonly JsonSerializerOptions PayloadJson = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Runs one pass now (tests, and the loop).</summary>
    public int RunOnce(RetroactiveSearch search)
    {
        ArgumentNullException.ThrowIfNull(search);
        var found = RetroactivePass.Run(banks, log, search, fanOutAt: Math.Clamp(options.RetroactiveFanOutEntries, 0, 10_000));
        Metrics.RetroactiveMatches.Inc(found.Count);
        var acted = 0;
        while (log.ClaimUnacted(500) is { Count: > 0 } claimed)
        {
            var entries = banks.GetEntries(claimed.Select(m => m.EntryId).Distinct());
            var bankNames = banks.ListBanks().ToDictionary(b => b.Id, b => b.Name);
            var actions = index.Actions;
            foreach (var m in claimed)
            {
                var action = actions.GetValueOrDefault(m.BankId) ?? BankAction.RecordOnly;
                var labels = entries.TryGetValue(m.EntryId, out var e) ? e.Labels : new Dictionary<string, string>();
                var bank = bankNames.GetValueOrDefault(m.BankId) ?? m.BankId.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var deliveries = new List<(long, string, string, string)>();
                if (action.Notify)
                {
                    foreach (var (webhookId, _, _) in server.EnabledWebhooks())
                    {
                        var payload = JsonSerializer.Serialize(
                            new
                            {
                                Event = "match",
                                Id = m.Key,
                                Retroactive = true,
                                CreatedAt = DateTimeOffset.UtcNow,
                                UploadedAt = m.UploadedAt,
                                UploaderId = m.Uploader,
                                ContentId = m.ContentId,
                                Content = new { m.Sha256 },
                                Action = (action.Quarantine ? MatchAction.Quarantine : MatchAction.Record).Name(),
                                Hits = new[] { new { Bank = bank, m.EntryId, m.SignalType, m.Distance, Labels = labels } },
                            },
                            PayloadJson);
                        deliveries.Add((webhookId, m.Key + ":" + webhookId.ToString(System.Globalization.CultureInfo.InvariantCulture), "match", payload));
                    }
                }

                server.RecordMatches(null, m.Uploader, m.Sha256, [new MatchEvent(m.BankId, m.EntryId, m.SignalType, m.Distance, "retroactive")], deliveries);
                review.IntakeRetroactive(m.Key, m.Uploader, m.UploadedAt, m.ContentId, m.Sha256, bank, m.SignalType, m.Distance, labels);
                acted++;
            }
        }

        return acted;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var search = new RetroactiveSearch(log);
        var lastSweep = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (index.Current is not null)
                {
                    if (DateTimeOffset.UtcNow - lastSweep > TimeSpan.FromHours(1))
                    {
                        foreach (var day in log.DropExpired())
                        {
                            LogDropped(logger, day);
                        }

                        lastSweep = DateTimeOffset.UtcNow;
                    }

                    RunOnce(search);
                }
            }
            catch (Exception ex) when (ex is StorageException or System.Data.Common.DbException or IOException or InvalidDataException)
            {
                LogPassFailed(logger, ex); // retried next round
            }

            try
            {
                await Task.Delay(Math.Max(50, options.RetroactivePollMilliseconds), stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retroactive matching pass failed; retrying")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Signal log partition {Day} dropped (past retention)")]
    private static partial void LogDropped(ILogger logger, int day);
}
