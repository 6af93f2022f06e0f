namespace Warden.Review.Users;

/// <summary>Console login throttling (section <c>Warden:Review:Login</c>).</summary>
public sealed class LoginThrottleSettings
{
    /// <summary>Failed logins for one account (existing or not) before it is locked.</summary>
    public int AccountMaxFailures { get; set; } = 5;

    /// <summary>Failed logins from one source address (any accounts) before it is locked.</summary>
    public int SourceMaxFailures { get; set; } = 20;

    /// <summary>Wait after an account's first failure; it doubles with each further one (milliseconds).</summary>
    public int AccountBaseDelayMilliseconds { get; set; } = 1000;

    /// <summary>Failures a source may make without waiting (typos behind a shared address), before its backoff starts.</summary>
    public int SourceFreeFailures { get; set; } = 5;

    /// <summary>Wait after a source's first failure past the free ones; it doubles with each further one (milliseconds).</summary>
    public int SourceBaseDelayMilliseconds { get; set; } = 250;

    /// <summary>Longest backoff wait before the lockout (seconds).</summary>
    public int MaxDelaySeconds { get; set; } = 60;

    /// <summary>How long a lockout lasts, and how long failures are remembered (seconds).</summary>
    public int LockoutSeconds { get; set; } = 15 * 60;
}

/// <summary>
/// Per-account and per-source exponential backoff with lockout for the console login. A guess is only checked
/// (PBKDF2 run) when neither its account nor its source is waiting; otherwise the answer is 429 with Retry-After
/// and nothing is logged, so guessing costs the guesser time, not the audit log. Accounts are keyed by the name
/// given, existing or not, so lockouts reveal nothing about which names exist. In memory, per node: a cluster of N
/// nodes allows at most N times the guesses.
/// </summary>
public sealed class LoginThrottle(LoginThrottleSettings settings, TimeProvider? clock = null)
{
    // Bounded: an attacker cycling names or addresses cannot grow it without limit (expired entries go first).
    private const int MaxEntries = 100_000;

    private readonly Dictionary<string, State> _accounts = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, State> _sources = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly object _lock = new();

    /// <summary>How long the caller must wait before a guess for <paramref name="account"/> from <paramref name="source"/> is checked; zero when it may be now.</summary>
    public TimeSpan RetryAfter(string account, string source)
    {
        var now = _clock.GetUtcNow();
        lock (_lock)
        {
            var a = _accounts.GetValueOrDefault(account)?.Wait(now) ?? TimeSpan.Zero;
            var s = _sources.GetValueOrDefault(source)?.Wait(now) ?? TimeSpan.Zero;
            return a > s ? a : s;
        }
    }

    /// <summary>Records a failed guess; returns the lockouts it started (account and/or source), for the audit log.</summary>
    public (bool AccountLocked, bool SourceLocked) Failed(string account, string source)
    {
        var now = _clock.GetUtcNow();
        lock (_lock)
        {
            var a = Fail(_accounts, account, now, settings.AccountMaxFailures, settings.AccountBaseDelayMilliseconds, 0);
            var s = Fail(_sources, source, now, settings.SourceMaxFailures, settings.SourceBaseDelayMilliseconds, Math.Max(0, settings.SourceFreeFailures));
            return (a, s);
        }
    }

    /// <summary>A successful login clears its account's failures (the source's stay: a known-good login must not reset a spray).</summary>
    public void Succeeded(string account)
    {
        lock (_lock)
        {
            _accounts.Remove(account);
        }
    }

    private bool Fail(Dictionary<string, State> table, string key, DateTimeOffset now, int maxFailures, int baseDelayMs, int free)
    {
        var window = TimeSpan.FromSeconds(Math.Max(1, settings.LockoutSeconds));
        if (!table.TryGetValue(key, out var state) || state.Expired(now, window))
        {
            if (table.Count >= MaxEntries)
            {
                Sweep(table, now, window);
            }

            state = new State();
            table[key] = state;
        }

        state.Failures++;
        state.LastFailure = now;
        if (state.Failures >= Math.Max(1, maxFailures))
        {
            var started = state.LockedUntil is null || state.LockedUntil <= now;
            state.LockedUntil = now + window;
            return started;
        }

        var counted = state.Failures - free;
        var delay = counted <= 0 ? 0 : Math.Min(Math.Max(0, baseDelayMs) * Math.Pow(2, Math.Min(counted - 1, 40)), Math.Max(0, settings.MaxDelaySeconds) * 1000.0);
        state.NextAllowed = now + TimeSpan.FromMilliseconds(delay);
        return false;
    }

    private static void Sweep(Dictionary<string, State> table, DateTimeOffset now, TimeSpan window)
    {
        foreach (var key in table.Where(p => p.Value.Expired(now, window)).Select(p => p.Key).ToList())
        {
            table.Remove(key);
        }

        // Still full: forget the oldest unlocked half, never a running lockout.
        if (table.Count >= MaxEntries)
        {
            foreach (var key in table.Where(p => p.Value.LockedUntil is null || p.Value.LockedUntil <= now).OrderBy(p => p.Value.LastFailure).Take(MaxEntries / 2).Select(p => p.Key).ToList())
            {
                table.Remove(key);
            }
        }
    }

    private sealed class State
    {
        public int Failures { get; set; }

        public DateTimeOffset LastFailure { get; set; }

        public DateTimeOffset NextAllowed { get; set; }

        public DateTimeOffset? LockedUntil { get; set; }

        public TimeSpan Wait(DateTimeOffset now)
        {
            var until = LockedUntil is { } locked && locked > now ? locked : NextAllowed;
            return until > now ? until - now : TimeSpan.Zero;
        }

        // Failures are forgotten a lockout-length after the last one, once no lockout runs: a new episode starts.
        public bool Expired(DateTimeOffset now, TimeSpan window) =>
            (LockedUntil is null || LockedUntil <= now) && now - LastFailure >= window;
    }
}
