using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Server.Data;
using Warden.Storage;

namespace Warden.Server.Actions;

/// <summary>
/// Delivers queued webhooks from the durable outbox: lease due rows, POST them signed, mark them delivered on
/// 2xx, otherwise retry with exponential backoff and jitter until <see cref="ServerOptions.WebhookMaxAttempts"/>.
/// At-least-once: a node killed between the receiver's 2xx and the database update delivers again after its
/// lease runs out, with the same <c>Warden-Delivery</c> idempotency key, so receivers see each event once.
/// </summary>
public sealed partial class WebhookDeliverer(ServerStore store, IHttpClientFactory clients, ServerOptions options, TimeProvider time, ILogger<WebhookDeliverer> logger) : BackgroundService
{
    /// <summary>Name of the HttpClient used for deliveries.</summary>
    public const string ClientName = "webhooks";

    private readonly string _owner = Environment.MachineName + ":" + Environment.ProcessId + ":" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Backoff before attempt <paramref name="attempt"/> + 1: 2 s doubling to 10 min, ±20 % jitter.</summary>
    public static TimeSpan Backoff(int attempt, double jitter01)
    {
        var seconds = Math.Min(600, 2 * Math.Pow(2, Math.Min(attempt - 1, 20)));
        return TimeSpan.FromSeconds(seconds * (0.8 + (0.4 * jitter01)));
    }

    /// <summary>Delivers what is due once; returns how many were attempted.</summary>
    internal async Task<int> DeliverDueAsync(CancellationToken cancellationToken)
    {
        var timeout = TimeSpan.FromSeconds(Math.Max(0.5, options.WebhookTimeoutSeconds));
        var due = store.LeaseDue(_owner, time.GetUtcNow() + timeout + TimeSpan.FromSeconds(5), 32);
        foreach (var (item, url, secret) in due)
        {
            await DeliverAsync(item, url, secret, timeout, cancellationToken).ConfigureAwait(false);
        }

        Metrics.WebhookPending.Set(store.PendingDeliveries());
        return due.Count;
    }

    private async Task DeliverAsync(OutboxItem item, string url, string secret, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes(item.Payload);
        int? status = null;
        string error;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add(WebhookSigner.SignatureHeader, WebhookSigner.Sign(secret, time.GetUtcNow().ToUnixTimeSeconds(), body));
            request.Headers.Add(WebhookSigner.DeliveryHeader, item.IdempotencyKey);
            request.Headers.Add(WebhookSigner.EventHeader, item.Event);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                store.MarkDelivered(item.Id, status.Value);
                Metrics.WebhookDeliveries.WithLabels("delivered").Inc();
                return;
            }

            error = $"HTTP {status}";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"timed out after {timeout.TotalSeconds:F0} s";
        }
        catch (HttpRequestException ex)
        {
            error = ex.Message;
        }

        var attempts = item.Attempts + 1;
        var retryAt = attempts >= options.WebhookMaxAttempts ? (DateTimeOffset?)null : time.GetUtcNow() + Backoff(attempts, Random.Shared.NextDouble());
        store.MarkFailed(item.Id, status, error, retryAt);
        Metrics.WebhookDeliveries.WithLabels(retryAt is null ? "dead" : "retry").Inc();
        LogFailed(logger, item.Id, new Uri(url).Host, attempts, error);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(Math.Max(50, options.WebhookPollMilliseconds));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await DeliverDueAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (StorageException ex)
            {
                LogPollFailed(logger, ex.Message);
            }
            catch (System.Data.Common.DbException ex)
            {
                LogPollFailed(logger, ex.Message);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            try
            {
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook delivery {Id} to {Host} failed (attempt {Attempt}): {Error}")]
    private static partial void LogFailed(ILogger logger, long id, string host, int attempt, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook outbox poll failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string reason);
}
