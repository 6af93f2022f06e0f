using Prometheus;

namespace Warden.Server;

/// <summary>
/// Warden's own Prometheus metrics (request rate and latency histograms come from prometheus-net's HTTP
/// middleware). Served at <c>/metrics</c> to admin keys.
/// </summary>
internal static class Metrics
{
    public static readonly Gauge IndexEntries = Prometheus.Metrics.CreateGauge("warden_index_entries", "Entries in the in-memory match index.");

    public static readonly Counter SignalLogWrites = Prometheus.Metrics.CreateCounter("warden_signal_log_writes_total", "Uploads written to the signal log.");

    /// <summary>Retroactive matches recorded.</summary>
    public static readonly Counter RetroactiveMatches = Prometheus.Metrics.CreateCounter("warden_retroactive_matches_total", "Matches of logged uploads found when bank entries were added.");

    /// <summary>Match lookups.</summary>
    public static readonly Counter Lookups = Prometheus.Metrics.CreateCounter("warden_lookups_total", "Match lookups.", "kind");

    public static readonly Counter Matches = Prometheus.Metrics.CreateCounter("warden_matches_total", "Hits by bank (suppressed and flood-quarantined hits included, labelled).", "bank", "outcome");

    public static readonly Histogram HashSeconds = Prometheus.Metrics.CreateHistogram("warden_hash_seconds", "Time to hash one upload.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });

    public static readonly Counter WebhookDeliveries = Prometheus.Metrics.CreateCounter("warden_webhook_deliveries_total", "Webhook delivery attempts by outcome.", "outcome");

    public static readonly Gauge WebhookPending = Prometheus.Metrics.CreateGauge("warden_webhook_pending", "Webhook deliveries waiting.");

    public static readonly Gauge ReportsNeedingAttention = Prometheus.Metrics.CreateGauge("warden_report_deliveries_attention", "Report deliveries dead-lettered or failed: an admin must requeue or cancel them.");

    public static readonly Counter FloodQuarantines = Prometheus.Metrics.CreateCounter("warden_flood_quarantines_total", "Entries auto-quarantined by flood control.");
}

/// <summary>Which .NET meters /metrics publishes (prometheus-net's meter adapter publishes every meter by default).</summary>
internal static class ServerMetrics
{
    /// <summary>
    /// The meters published: the runtime's (GC, thread pool), Npgsql's pool, outgoing HTTP (webhooks, fetches), Kestrel's
    /// connections and ASP.NET's exception counter. ASP.NET's per-request meters (hosting, routing, authentication,
    /// authorization, rate limiting, the memory pool's per-block counters) are left out: prometheus-net's HTTP
    /// middleware already gives request counts and durations by endpoint, and the adapter's bookkeeping for every
    /// measurement showed in the request path's profile.
    /// </summary>
    public static readonly HashSet<string> Meters = new(StringComparer.Ordinal)
    {
        "System.Runtime",
        "Npgsql",
        "System.Net.Http",
        "System.Net.NameResolution",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Diagnostics",
    };

    private static int _configured;

    /// <summary>Limits the meter adapter to <see cref="Meters"/> (once per process, before the first metric is collected).</summary>
    public static void LimitMeters()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 0)
        {
            Prometheus.Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate = instrument => Meters.Contains(instrument.Meter.Name));
        }
    }
}
