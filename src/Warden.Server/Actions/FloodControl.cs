using System.Collections.Concurrent;

namespace Warden.Server.Actions;

/// <summary>
/// Notices a bank entry matching far above its usual rate — typically a benign image wrongly listed, or a
/// hash list entry matching a meme — and quarantines it: it keeps matching (reported, flagged) but sets off no
/// actions until a curator clears it. Per entry: matches are counted in fixed windows; the baseline is an
/// exponential average of past windows; an entry floods when a window's count reaches both
/// <see cref="ServerOptions.FloodMinMatches"/> and <see cref="ServerOptions.FloodFactor"/> × baseline.
/// Counting is per node (each node sees its share of traffic); the flag itself is shared through the database.
/// </summary>
public sealed class FloodControl(ServerOptions options, TimeProvider time)
{
    private const double Smoothing = 0.2;
    private readonly ConcurrentDictionary<long, Counter> _counters = new();

    /// <summary>Counts one match of <paramref name="entryId"/>; true when this match makes it a flood.</summary>
    public bool Count(long entryId, out string reason)
    {
        reason = string.Empty;
        var windowMs = Math.Max(1, options.FloodWindowSeconds) * 1000L;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_counters.Count > 1_000_000)
        {
            _counters.Clear(); // bounded memory; a flood restarts counting, which only delays a flag
        }

        var counter = _counters.GetOrAdd(entryId, static (_, start) => new Counter(start), now);
        lock (counter)
        {
            var elapsed = (now - counter.WindowStart) / windowMs;
            if (elapsed > 0)
            {
                // Close the current window, then decay through the empty ones in between.
                counter.Baseline = (Smoothing * counter.Count) + ((1 - Smoothing) * counter.Baseline);
                counter.Baseline *= Math.Pow(1 - Smoothing, Math.Min(elapsed - 1, 100));
                counter.WindowStart += elapsed * windowMs;
                counter.Count = 0;
                counter.Flagged = false;
            }

            counter.Count++;
            if (!counter.Flagged && counter.Count >= options.FloodMinMatches && counter.Count >= options.FloodFactor * Math.Max(1, counter.Baseline))
            {
                counter.Flagged = true;
                reason = $"{counter.Count} matches in {options.FloodWindowSeconds} s against a baseline of {counter.Baseline:F1} per window";
                return true;
            }

            return false;
        }
    }

    private sealed class Counter(long start)
    {
        public long WindowStart = start;
        public long Count;
        public double Baseline;
        public bool Flagged;
    }
}
