using System.Net;
using Warden.Review.Audit;
using Warden.Review.Users;

namespace Warden.Server.Tests.Review;

/// <summary>Console login: per-account and per-source backoff and lockout over real HTTP, audited once per lockout.</summary>
public sealed class LoginThrottleTests
{
    private static Task<HttpResponseMessage> LoginAsync(HttpClient client, string user, string password) =>
        client.PostAsJsonAsync("review/api/login", new { username = user, password });

    private static int Count(ReviewHarness h, string action, string? subject = null) =>
        h.Review.Audit.Query(new AuditFilter(Action: action, Subject: subject)).Count();

    /// <summary>Fails a login, waiting out any backoff first, until it is answered 401 (a checked guess).</summary>
    private static async Task FailOnceAsync(HttpClient client, string user)
    {
        for (var i = 0; i < 750; i++)
        {
            var r = await LoginAsync(client, user, "wrong password " + i);
            if (r.StatusCode == HttpStatusCode.Unauthorized)
            {
                return;
            }

            Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
            await Task.Delay(20);
        }

        Assert.Fail("never got to guess");
    }

    private static async Task<HttpStatusCode> GoodLoginAsync(HttpClient client, string user)
    {
        for (var i = 0; i < 200; i++)
        {
            var r = await LoginAsync(client, user, ReviewHarness.Password);
            if (r.StatusCode != HttpStatusCode.TooManyRequests || r.Headers.RetryAfter?.Delta > TimeSpan.FromSeconds(1))
            {
                return r.StatusCode;
            }

            await Task.Delay(20);
        }

        return HttpStatusCode.TooManyRequests;
    }

    [Fact]
    public async Task An_account_backs_off_then_locks_and_the_lockout_is_audited_once()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false, configure: r => r.Login = new LoginThrottleSettings
        {
            // Windows wide enough for a loaded machine: the "right after a failure" request must land inside the
            // first backoff (500 ms), and the 30 locked-out tries inside the lockout (8 s). The exact arithmetic is
            // tested on a manual clock below.
            AccountMaxFailures = 4,
            AccountBaseDelayMilliseconds = 500,
            SourceMaxFailures = 1000,
            SourceBaseDelayMilliseconds = 0,
            LockoutSeconds = 8,
        });
        using var client = h.Server.Client(null);

        // Right after a failure the next guess waits (429 + Retry-After) and is not checked or logged.
        var first = await LoginAsync(client, "alice", "wrong password 0");
        Assert.Equal(HttpStatusCode.Unauthorized, first.StatusCode);
        var throttled = await LoginAsync(client, "alice", ReviewHarness.Password);
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.Equal("application/problem+json", throttled.Content.Headers.ContentType?.MediaType);
        Assert.True(throttled.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"{throttled.Headers.RetryAfter}");

        for (var i = 1; i < 4; i++)
        {
            await FailOnceAsync(client, "alice");
        }

        // Locked: even the right password is refused, for the lockout's length; many more tries log nothing.
        for (var i = 0; i < 30; i++)
        {
            var r = await LoginAsync(client, "alice", i % 2 == 0 ? ReviewHarness.Password : "guess " + i);
            Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
            Assert.True(r.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        }

        Assert.Equal(4, Count(h, "user.login_failed", "user:alice"));
        Assert.Equal(1, Count(h, "user.login_locked", "user:alice"));

        // Another account is not affected.
        Assert.Equal(HttpStatusCode.OK, (await LoginAsync(client, "root", ReviewHarness.Password)).StatusCode);

        // After the lockout the right password works, and a new episode starts from zero.
        await Task.Delay(TimeSpan.FromSeconds(8.2));
        Assert.Equal(HttpStatusCode.OK, await GoodLoginAsync(client, "alice"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await LoginAsync(client, "alice", "wrong again")).StatusCode);
        Assert.Equal(1, Count(h, "user.login_locked", "user:alice"));
    }

    [Fact]
    public async Task A_successful_login_resets_the_account()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false, configure: r => r.Login = new LoginThrottleSettings
        {
            AccountMaxFailures = 3,
            AccountBaseDelayMilliseconds = 20,
            SourceMaxFailures = 1000,
            SourceBaseDelayMilliseconds = 0,
            LockoutSeconds = 60,
        });
        using var client = h.Server.Client(null);
        for (var round = 0; round < 3; round++)
        {
            // Two failures (one short of the lockout), then the right password: never locked.
            await FailOnceAsync(client, "alice");
            await FailOnceAsync(client, "alice");
            Assert.Equal(HttpStatusCode.OK, await GoodLoginAsync(client, "alice"));
        }

        Assert.Equal(0, Count(h, "user.login_locked"));
    }

    [Fact]
    public async Task A_source_spraying_many_accounts_is_locked()
    {
        await using var h = await ReviewHarness.StartAsync(preserve: false, configure: r => r.Login = new LoginThrottleSettings
        {
            AccountMaxFailures = 100,
            AccountBaseDelayMilliseconds = 0,
            SourceMaxFailures = 6,
            SourceBaseDelayMilliseconds = 10,
            LockoutSeconds = 60,
        });
        using var client = h.Server.Client(null);
        for (var i = 0; i < 6; i++)
        {
            await FailOnceAsync(client, $"nobody{i}"); // names that do not exist count the same
        }

        // The source is locked for every account, the right password included; audited once.
        foreach (var user in new[] { "alice", "root", "nobody99" })
        {
            var r = await LoginAsync(client, user, ReviewHarness.Password);
            Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
            Assert.True(r.Headers.RetryAfter?.Delta > TimeSpan.FromSeconds(30), $"{r.Headers.RetryAfter}");
        }

        Assert.Equal(1, Count(h, "user.login_locked", "source:127.0.0.1"));
        Assert.Equal(0, Count(h, "user.login_locked", "user:alice"));
    }

    [Fact]
    public void The_throttle_forgets_nothing_it_must_and_stays_bounded()
    {
        var clock = new ManualClock();
        var throttle = new LoginThrottle(new LoginThrottleSettings { AccountMaxFailures = 3, AccountBaseDelayMilliseconds = 1000, SourceMaxFailures = 1_000_000, SourceBaseDelayMilliseconds = 0, MaxDelaySeconds = 60, LockoutSeconds = 600 }, clock);
        Assert.Equal(TimeSpan.Zero, throttle.RetryAfter("a", "s"));
        Assert.Equal((false, false), throttle.Failed("a", "s"));
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.RetryAfter("A", "s")); // names are case-insensitive
        Assert.Equal((false, false), throttle.Failed("a", "s"));
        Assert.Equal(TimeSpan.FromSeconds(2), throttle.RetryAfter("a", "s"));
        Assert.Equal((true, false), throttle.Failed("a", "s"));
        Assert.Equal(TimeSpan.FromSeconds(600), throttle.RetryAfter("a", "other"));
        clock.Advance(TimeSpan.FromSeconds(599));
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.RetryAfter("a", "s"));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.Zero, throttle.RetryAfter("a", "s"));
        Assert.Equal((false, false), throttle.Failed("a", "s")); // a new episode: one failure, no lockout

        // Many distinct names cannot grow it without limit, nor push out a running lockout.
        Assert.Equal((false, false), throttle.Failed("b", "s"));
        Assert.Equal((false, false), throttle.Failed("b", "s"));
        Assert.Equal((true, false), throttle.Failed("b", "s"));
        for (var i = 0; i < 250_000; i++)
        {
            throttle.Failed("n" + i, "s");
        }

        Assert.True(throttle.RetryAfter("b", "s") > TimeSpan.FromSeconds(500));
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}
