using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using Warden.Core.Exchanges;
using Warden.Storage;

namespace Warden.Server.Exchanges;

/// <summary>Exchange settings (section <c>Warden:Exchanges</c>, e.g. <c>Warden__Exchanges__PollSeconds</c>).</summary>
public sealed class ExchangeOptions
{
    /// <summary>Run scheduled fetches and send the feedback outbox on this node (every node may; leases keep it to one per exchange).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often the scheduler looks for due exchanges and feedback.</summary>
    public double PollSeconds { get; set; } = 5;

    /// <summary>Random extra delay added to each interval, as a fraction of it (spreads nodes and exchanges).</summary>
    public double Jitter { get; set; } = 0.1;

    /// <summary>Longest back-off after failures.</summary>
    public double MaxBackoffSeconds { get; set; } = 3600;
}

/// <summary>
/// Fetches every enabled exchange when it is due (its interval plus jitter after the last pass; after a failure,
/// exponential back-off or the exchange's Retry-After), and sends queued feedback. Every node runs it; the lease in
/// the exchanges table lets exactly one node fetch a given exchange at a time (on PostgreSQL across nodes, on
/// SQLite the CLI and the server). New entries reach every node's live index through the bank change feed.
/// </summary>
internal sealed partial class ExchangeScheduler(
    BankStore banks,
    ExchangeStore exchanges,
    ExchangeOptions options,
    IHttpClientFactory http,
    IServiceProvider services,
    ILogger<ExchangeScheduler> logger) : BackgroundService
{
    public const string ClientName = "exchanges";

    private static readonly Gauge LastSuccess = Prometheus.Metrics.CreateGauge("warden_exchange_last_success_timestamp_seconds", "When each exchange last fetched successfully (Unix seconds).", "exchange");
    private static readonly Gauge Lag = Prometheus.Metrics.CreateGauge("warden_exchange_lag_seconds", "How far each exchange's checkpoint is behind now.", "exchange");
    private static readonly Gauge Fetched = Prometheus.Metrics.CreateGauge("warden_exchange_entries_fetched", "Entries (and deletions) fetched by each exchange, all nodes together.", "exchange");
    private static readonly Gauge Errors = Prometheus.Metrics.CreateGauge("warden_exchange_errors", "Failed fetches and malformed entries of each exchange.", "exchange");
    private static readonly Gauge Unsupported = Prometheus.Metrics.CreateGauge("warden_exchange_unsupported_fingerprints", "Fingerprints of types Warden does not match (PhotoDNA, large fingerprints).", "exchange");
    private static readonly Gauge FeedbackPending = Prometheus.Metrics.CreateGauge("warden_exchange_feedback_pending", "Opinions waiting in the feedback outbox.");

    private readonly string _owner = LeaseOwner.Create();

    /// <summary>Runs one pass of <paramref name="exchange"/> now, as the scheduler would (the API's fetch-now uses the schedule instead).</summary>
    public async Task<ExchangeSyncResult> FetchAsync(Exchange exchange, CancellationToken cancellationToken)
    {
        using var client = http.CreateClient(ClientName);
        var runtime = ExchangeRuntime.Default(client) with { Log = line => LogExchange(logger, exchange.Name, line) };
        var sync = new ExchangeSync(banks, exchanges);
        var interval = TimeSpan.FromSeconds(exchange.IntervalSeconds);
        return await sync.RunAsync(
            exchange,
            runtime,
            _owner,
            cancellationToken,
            () => DateTimeOffset.UtcNow + interval + (interval * (options.Jitter * Random.Shared.NextDouble())),
            ex => DateTimeOffset.UtcNow + Backoff(exchange, ex));
    }

    private TimeSpan Backoff(Exchange exchange, Exception ex)
    {
        var failures = exchanges.State(exchange.Id).Failures; // before this failure is counted
        var wait = TimeSpan.FromSeconds(Math.Min(options.MaxBackoffSeconds, 30 * Math.Pow(2, Math.Min(failures, 16))));
        if (ex is ExchangeException { RetryAfter: { } ra } && ra > wait)
        {
            wait = ra;
        }

        return wait * (1 + (options.Jitter * Random.Shared.NextDouble()));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Enabled)
        {
            return;
        }

        // Each due exchange fetches in its own task: a slow or failing feed holds up neither the others nor feedback.
        var running = new System.Collections.Concurrent.ConcurrentDictionary<long, Task>();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                foreach (var x in exchanges.Due(DateTimeOffset.UtcNow))
                {
                    if (!running.ContainsKey(x.Id))
                    {
                        running[x.Id] = Task.Run(async () =>
                        {
                            try
                            {
                                await RunOneAsync(x, stoppingToken);
                            }
                            finally
                            {
                                running.TryRemove(x.Id, out _);
                            }
                        }, CancellationToken.None);
                    }
                }

                // Decisions whose feedback a crash kept from the outbox are queued now (idempotent), then sent. Its
                // failures (the review side unavailable) are logged and must not stop fetching or sending.
                try
                {
                    services.GetService<global::Warden.Review.ReviewService>()?.ReconcileDecisionFeedback();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(logger, "(feedback reconciler)", ex.Message);
                }

                using (var client = http.CreateClient(ClientName))
                {
                    var runtime = ExchangeRuntime.Default(client) with { Log = line => LogExchange(logger, "feedback", line) };
                    await ExchangeFeedbackSender.SendDueAsync(exchanges, runtime, _owner, stoppingToken);
                }

                UpdateMetrics();
            }
            catch (Exception ex) when (ex is StorageException or System.Data.Common.DbException)
            {
                LogFailed(logger, "(scheduler)", ex.Message);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(0.05, options.PollSeconds)), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await Task.WhenAll(running.Values);
    }

    private async Task RunOneAsync(Exchange x, CancellationToken stoppingToken)
    {
        try
        {
            var r = await FetchAsync(x, stoppingToken);
            LogFetched(logger, x.Name, r.Entries, r.Tombstones, r.Elapsed.TotalSeconds);
        }
        catch (ExchangeLeaseException)
        {
            // Another node (or a CLI fetch) has it, or the exchange was removed meanwhile.
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is ExchangeException or ExchangeConfigException or StorageException or HttpRequestException or OperationCanceledException)
        {
            LogFailed(logger, x.Name, ex.Message);
        }
    }

    private void UpdateMetrics()
    {
        long pending = 0;
        foreach (var x in exchanges.List())
        {
            var s = exchanges.State(x.Id);
            if (s.LastSuccessAt is { } ok)
            {
                LastSuccess.WithLabels(x.Name).Set(ok.ToUnixTimeSeconds());
            }

            if (s.CheckpointTime is { } t)
            {
                Lag.WithLabels(x.Name).Set(Math.Max(0, (DateTimeOffset.UtcNow - t).TotalSeconds));
            }

            Fetched.WithLabels(x.Name).Set(s.EntriesFetched + s.TombstonesFetched);
            Errors.WithLabels(x.Name).Set(s.Errors);
            Unsupported.WithLabels(x.Name).Set(s.UnsupportedFetched);
            pending += exchanges.ListFeedback(x.Id, 10_000).Count(f => f.Status == "pending");
        }

        FeedbackPending.Set(pending);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Exchange {Name}: {Line}")]
    private static partial void LogExchange(ILogger logger, string name, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "Exchange {Name}: fetched {Entries} entries and {Tombstones} deletions in {Seconds:0.0}s")]
    private static partial void LogFetched(ILogger logger, string name, long entries, long tombstones, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Exchange {Name}: fetch failed: {Message}")]
    private static partial void LogFailed(ILogger logger, string name, string message);
}

/// <summary>Registration of the exchanges' services.</summary>
public static class ExchangeServices
{
    /// <summary>Adds the exchange store, the scheduler and its options (<c>Warden:Exchanges</c>).</summary>
    public static IServiceCollection AddExchanges(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new ExchangeOptions();
        configuration.GetSection("Warden:Exchanges").Bind(options);
        services.AddSingleton(options);
        services.AddSingleton(sp => ExchangeStore.Open(sp.GetRequiredService<WardenDatabase>()));
        services.AddSingleton<IReviewDecisionFeedback>(sp => new ExchangeReviewFeedback(sp.GetRequiredService<ExchangeStore>()));
        services.AddSingleton<ExchangeScheduler>();
        services.AddHostedService(sp => sp.GetRequiredService<ExchangeScheduler>());
        services.AddHttpClient(ExchangeScheduler.ClientName, c => c.Timeout = TimeSpan.FromSeconds(60))
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
        return services;
    }
}
