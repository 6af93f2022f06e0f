using Microsoft.Playwright;
using Warden.Review;
using Warden.Review.Evidence;
using Warden.Server.Auth;

namespace Warden.Server.Tests.Review;

/// <summary>
/// The console in a real browser (Playwright driving Debian's Chromium; no browser is ever downloaded).
/// Skips when /usr/bin/chromium is absent (scripts/test installs it).
/// </summary>
public sealed class ConsoleBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    [SkippableFact]
    public async Task A_reviewer_logs_in_reviews_blurred_media_decides_and_files_a_report()
    {
        Skip.IfNot(File.Exists(Chromium), "Chromium is not installed at /usr/bin/chromium (apt-get install chromium).");
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        page.SetDefaultTimeout(30_000);
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review").ToString());

        // Logged out, the console's nav (Queue, Settings, Log out) is not shown.
        await page.Locator("#login-form").WaitForAsync();
        await Assertions.Expect(page.Locator("#nav")).ToBeHiddenAsync();
        Assert.Equal("none", await page.Locator("#nav").EvaluateAsync<string>("e => getComputedStyle(e).display"));

        // A wrong password is refused on the page.
        await page.GetByLabel("User name").FillAsync("alice");
        await page.GetByLabel("Password").FillAsync("not the password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#login-error")).ToContainTextAsync("Wrong user name or password");

        // The failure starts the account's backoff (docs/review.md, login throttle): an immediate retry is told to
        // wait, even with the right password; after the wait it logs in.
        await page.GetByLabel("Password").FillAsync(ReviewHarness.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#login-error")).ToContainTextAsync("retry in");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#queue").WaitForAsync();
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(1);
        await page.ScreenshotAsync(new() { Path = Screenshot("review-queue-single.png", keep: false) });

        // By keyboard, so the script's focus on <main> counts as keyboard focus (:focus-visible), as a keyboard user gets it.
        await page.Locator("a.case-link").First.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        var media = page.Locator("#media-0");
        await media.WaitForAsync();
        await page.WaitForFunctionAsync("() => { const i = document.getElementById('media-0'); return i && i.complete && i.naturalWidth > 0; }");
        var filter = await media.EvaluateAsync<string>("e => getComputedStyle(e).filter");
        Assert.Contains("blur", filter, StringComparison.Ordinal);
        Assert.Contains("grayscale", filter, StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Screenshot("review-case.png"), FullPage = true });

        // <main> is focused by script after navigation without a focus box; keyboard focus on a control keeps one.
        Assert.Equal("main", await page.EvaluateAsync<string>("() => document.activeElement.id"));
        Assert.Equal("none", await page.Locator("#main").EvaluateAsync<string>("e => getComputedStyle(e).outlineStyle"));
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("solid", await page.EvaluateAsync<string>("() => getComputedStyle(document.activeElement).outlineStyle"));

        // Keyboard: j selects the next cluster, k the previous one.
        await page.Locator("#view h2").ClickAsync();
        await page.Keyboard.PressAsync("j");
        await Assertions.Expect(page.Locator("#cluster-1")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("selected"));
        await page.Keyboard.PressAsync("k");
        await Assertions.Expect(page.Locator("#cluster-0")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("selected"));

        // Reveal one item: the original replaces the derivative, and the view is logged as revealed by alice.
        var item = await media.EvaluateAsync<string>("e => decodeURIComponent(e.getAttribute('src').split('/items/')[1].split('/')[0])");
        await page.Locator("#reveal-0").ClickAsync();
        await page.WaitForFunctionAsync("() => getComputedStyle(document.getElementById('media-0')).filter === 'none' && document.getElementById('media-0').src.startsWith('blob:')");
        Assert.Contains(h.Review.Vault!.Views(item), v => v.Actor == "alice" && v.What == "revealed" && v.ActorKind == ActorKind.Human);
        await AssertStatusInViewportAsync(page, "Revealed; the view is logged.");
        Assert.Contains("blur", await page.Locator("#media-1").EvaluateAsync<string>("e => getComputedStyle(e).filter"), StringComparison.Ordinal); // per item

        await page.Locator("#cls-0").SelectOptionAsync("A1");
        await page.Locator("#confirm-0").ClickAsync();
        await Assertions.Expect(page.Locator("#cluster-0 .decided")).ToContainTextAsync("confirmed A1");
        // The second cluster by keyboard only: after a decision the next undecided cluster is selected;
        // 3 picks B1, c confirms.
        await Assertions.Expect(page.Locator("#cluster-1")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("selected"));
        await page.Locator("#view h2").ClickAsync();
        await page.Keyboard.PressAsync("3");
        await Assertions.Expect(page.Locator("#cls-1")).ToHaveValueAsync("B1");
        await page.Locator("#view h2").ClickAsync();
        await page.Keyboard.PressAsync("c");
        await Assertions.Expect(page.Locator("#cluster-1 .decided")).ToContainTextAsync("confirmed B1");
        await Assertions.Expect(page.Locator("#cluster-1 .decided")).ToContainTextAsync("without viewing");
        // The page is longer than the window here, and the message still shows in view.
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollHeight > innerHeight"));
        await AssertStatusInViewportAsync(page, "Decision saved.");

        await page.Locator("#file-report").ClickAsync();
        await Assertions.Expect(page.Locator("#report-status")).ToHaveTextAsync("finished", new() { Timeout = 60_000 });
        var fake = Assert.Single(h.Fake.Reports);
        await Assertions.Expect(page.Locator("#report-id")).ToHaveTextAsync(fake.ReportId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#receipts tbody tr").First).ToBeVisibleAsync();
        // The status message followed the delivery to its end: no sticky "queued" once the fake accepted it.
        await AssertStatusInViewportAsync(page, "Report delivered: CyberTipline report " + fake.ReportId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#status")).Not.ToContainTextAsync("queued");
        await page.ScreenshotAsync(new() { Path = Screenshot("review-receipt.png"), FullPage = true });

        // A phone (375 px): the header wraps and no page scrolls sideways.
        await page.SetViewportSizeAsync(375, 800);
        await AssertNoSidewaysScrollAsync(page, "case");
        await page.ScreenshotAsync(new() { Path = Screenshot("review-phone-case.png", keep: false) });
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/queue").ToString());
        await page.Locator("#view h2").WaitForAsync();
        await AssertNoSidewaysScrollAsync(page, "queue");
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/settings").ToString());
        await page.Locator("#settings-form").WaitForAsync();
        await AssertNoSidewaysScrollAsync(page, "settings");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await page.Locator("#login-form").WaitForAsync();
        await Assertions.Expect(page.Locator("#nav")).ToBeHiddenAsync();
        await AssertNoSidewaysScrollAsync(page, "login");
    }

    /// <summary>
    /// The reviewer's working tools in one pass: queue filters and server-side pages, claims visible in the
    /// queue, every member of a cluster (obscured) with why it clustered, the pre-filled classification, undo,
    /// history search by report id, and the admin's Users page (a disabled reviewer's open page is logged out).
    /// </summary>
    [SkippableFact]
    public async Task Queue_claims_members_undo_history_and_user_admin_work_in_the_browser()
    {
        Skip.IfNot(File.Exists(Chromium), "Chromium is not installed at /usr/bin/chromium (apt-get install chromium).");
        await using var h = await ReviewHarness.StartAsync(configure: r => r.Login.AccountBaseDelayMilliseconds = 1);
        await h.SeedCaseAsync();
        using (var submitter = h.Server.Client(Role.Submitter))
        {
            for (var i = 0; i < 4; i++)
            {
                Assert.True(await ReviewHarness.UploadAsync(submitter, Media.Jpeg(2), "other-" + i, 10 + i));
            }
        }

        // root (admin) holds a claim on u1's case: the queue shows it to alice.
        using var rootApi = await h.LoginAsync("root");
        var u1 = (await rootApi.GetAsync("cases?uploader=u1")).GetProperty("cases")[0].GetProperty("id").GetString()!;
        (await rootApi.PostAsync($"cases/{u1}/claim")).EnsureSuccessStatusCode();

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1100, Height = 800 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        await LoginAsync(page, h, "alice", ReviewHarness.Password);

        // Pages of two, from the server: 5 open cases.
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/queue?limit=2").ToString());
        await Assertions.Expect(page.Locator("#q-range")).ToHaveTextAsync("1–2 of 5");
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#q-prev")).ToBeDisabledAsync();
        await page.Locator("#q-next").ClickAsync();
        await Assertions.Expect(page.Locator("#q-range")).ToHaveTextAsync("3–4 of 5");
        await page.Locator("#q-next").ClickAsync();
        await Assertions.Expect(page.Locator("#q-range")).ToHaveTextAsync("5–5 of 5");
        await Assertions.Expect(page.Locator("#q-next")).ToBeDisabledAsync();

        // Filters: label and uploader; the claim column names root.
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/queue").ToString());
        await page.Locator("#q-label").FillAsync("classification=B1");
        await page.Locator("#q-apply").ClickAsync();
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(5); // u1 has a B1 cluster too
        await page.Locator("#q-uploader").FillAsync("u1");
        await page.Locator("#q-apply").ClickAsync();
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#queue .claim-cell")).ToContainTextAsync("root since");
        Assert.Contains("uploader=u1", page.Url, StringComparison.Ordinal); // the filter is in the address, so it can be shared
        await page.Locator("#q-reset").ClickAsync();
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(5);
        await page.Locator("#q-sort").SelectOptionAsync("items");
        await page.Locator("#q-apply").ClickAsync();
        await Assertions.Expect(page.Locator("#queue tbody tr").First).ToContainTextAsync("u1");
        await page.ScreenshotAsync(new() { Path = Screenshot("review-queue.png") });

        // Opening a case claimed by root: the page says so and offers no decision buttons.
        await page.Locator("#queue a.case-link", new() { HasText = "u1" }).ClickAsync();
        await Assertions.Expect(page.Locator("#claim")).ToContainTextAsync("Claimed by root");
        await Assertions.Expect(page.Locator("#confirm-0")).ToHaveCountAsync(0);
        (await rootApi.PostAsync($"cases/{u1}/release")).EnsureSuccessStatusCode();
        await page.Locator("#view h2").ClickAsync();
        await page.Keyboard.PressAsync("g");
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(5);
        await page.Locator("#queue a.case-link", new() { HasText = "u1" }).ClickAsync();
        await Assertions.Expect(page.Locator("#claim")).ToContainTextAsync("Claimed by you");
        Assert.Equal("alice", (await rootApi.GetAsync("cases/" + u1)).GetProperty("claim").GetProperty("by").GetString());

        // Classification pre-filled from the bank labels (A1 for image 1, B1 for image 2).
        await Assertions.Expect(page.Locator("#cls-0")).ToHaveValueAsync("A1");
        await Assertions.Expect(page.Locator("#cls-1")).ToHaveValueAsync("B1");
        await Assertions.Expect(page.Locator("#cls-hint-0")).ToContainTextAsync("Pre-filled from the matched bank labels");

        // Every member of cluster 1, obscured, with why it clustered.
        await page.Locator("#members-btn-0").ClickAsync();
        await Assertions.Expect(page.Locator("#members-0 .member")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#member-0-0 .why")).ToContainTextAsync("representative");
        await Assertions.Expect(page.Locator("#member-0-1 .why")).ToContainTextAsync(new System.Text.RegularExpressions.Regex("PDQ distance \\d+ to the representative"));
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#members-0 img.thumb')].every(i => i.complete && i.naturalWidth > 0)");
        Assert.Contains("blur", await page.Locator("#member-0-1 img").EvaluateAsync<string>("e => getComputedStyle(e).filter"), StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#members-0")).Not.ToContainTextAsync("null");
        await page.Locator("#cluster-0").ScreenshotAsync(new() { Path = Screenshot("review-cluster-members.png") });

        // Each member can be revealed on its own: counted against the cap, logged for that item only, audited, and
        // re-obscured; the representative stays obscured meanwhile.
        var cluster0 = h.Review.Cases.Find(u1)!.Clusters[0];
        var memberItem = cluster0.Members[1].EvidenceRef!;
        var repItem = cluster0.Representative.EvidenceRef!;
        var exposureBefore = h.Review.Store.Exposure(h.Review.Store.FindUser("alice")!.Value.User.Id, ReviewService.Today());
        await page.Locator("#member-reveal-0-1").ClickAsync();
        await Assertions.Expect(page.Locator("#member-media-0-1")).ToHaveClassAsync("thumb revealed");
        await Assertions.Expect(page.Locator("#member-reveal-0-1")).ToHaveTextAsync("Re-obscure");
        await Assertions.Expect(page.Locator("#exposure")).ToContainTextAsync($"Reveals today: {exposureBefore + 1} /");
        await Assertions.Expect(page.Locator("#member-viewed-0-1")).ToBeVisibleAsync();
        Assert.StartsWith("blob:", await page.Locator("#member-media-0-1").GetAttributeAsync("src"), StringComparison.Ordinal);
        await page.WaitForFunctionAsync("() => { const i = document.getElementById('member-media-0-1'); return i.complete && i.naturalWidth > 0; }");
        Assert.Equal("none", await page.Locator("#member-media-0-1").EvaluateAsync<string>("e => getComputedStyle(e).filter"));
        Assert.Contains("blur", await page.Locator("#member-media-0-0").EvaluateAsync<string>("e => getComputedStyle(e).filter"), StringComparison.Ordinal);
        Assert.Single(h.Review.Vault!.Views(memberItem), v => v.Actor == "alice" && v.What == "revealed");
        Assert.DoesNotContain(h.Review.Vault.Views(repItem), v => v.What == "revealed");
        await AssertStatusInViewportAsync(page, "Revealed; the view is logged.");
        await page.Locator("#cluster-0").ScreenshotAsync(new() { Path = Screenshot("review-cluster-member-revealed.png") });

        // Revealing another member re-obscures the first (one at a time), and counts again.
        await page.Locator("#member-reveal-0-0").ClickAsync();
        await Assertions.Expect(page.Locator("#member-media-0-0")).ToHaveClassAsync("thumb revealed");
        await Assertions.Expect(page.Locator("#member-media-0-1")).Not.ToHaveClassAsync("thumb revealed");
        await Assertions.Expect(page.Locator("#member-reveal-0-1")).ToHaveTextAsync("Reveal");
        await Assertions.Expect(page.Locator("#exposure")).ToContainTextAsync($"Reveals today: {exposureBefore + 2} /");
        await page.Locator("#member-reveal-0-0").ClickAsync(); // re-obscure
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("Obscured again");
        await Assertions.Expect(page.Locator("#member-media-0-0")).Not.ToHaveClassAsync("thumb revealed");
        Assert.DoesNotContain("blob:", await page.Locator("#member-media-0-0").GetAttributeAsync("src") ?? "", StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#exposure")).ToContainTextAsync($"Reveals today: {exposureBefore + 2} /"); // a re-obscure gives nothing back
        for (var t = 0; t < 100 && !h.Review.Audit.Query(new(Action: "review.reobscure")).Any(a => a.Actor == "alice" && a.Details.GetValueOrDefault("item") == repItem); t++)
        {
            await Task.Delay(100); // the page tells the server without waiting for the answer
        }

        Assert.Contains(h.Review.Audit.Query(new(Action: "review.reobscure")), a => a.Actor == "alice" && a.Details.GetValueOrDefault("item") == repItem);

        // Decide, then undo: the decision form comes back.
        await page.Locator("#confirm-0").ClickAsync();
        await Assertions.Expect(page.Locator("#cluster-0 .decided")).ToContainTextAsync("confirmed A1");
        await page.Locator("#undo-0").ClickAsync();
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("Decision undone");
        await Assertions.Expect(page.Locator("#cluster-0 .decided")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#confirm-0")).ToBeVisibleAsync();

        // Decide both and file; then undo is gone and the case is found in history by its report id.
        await page.Locator("#confirm-0").ClickAsync();
        await Assertions.Expect(page.Locator("#cluster-0 .decided")).ToBeVisibleAsync();
        await page.Locator("#confirm-1").ClickAsync();
        await Assertions.Expect(page.Locator("#cluster-1 .decided")).ToContainTextAsync("confirmed B1");
        await page.Locator("#file-report").ClickAsync();
        await Assertions.Expect(page.Locator("#report-status")).ToHaveTextAsync("finished", new() { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#undo-0")).ToHaveCountAsync(0);
        var reportId = await page.Locator("#report-id").TextContentAsync();
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/queue?status=closed").ToString());
        await Assertions.Expect(page.Locator("#view h2")).ToHaveTextAsync("Case history");
        await page.Locator("#q-report_id").FillAsync(reportId!);
        await page.Locator("#q-apply").ClickAsync();
        await Assertions.Expect(page.Locator("#queue tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#queue .report-cell")).ToContainTextAsync("finished · " + reportId);

        // The admin disables alice on the Users page: her open page is sent to the login form.
        var adminContext = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1100, Height = 700 } });
        var admin = await adminContext.NewPageAsync();
        admin.SetDefaultTimeout(30_000);
        await LoginAsync(admin, h, "root", ReviewHarness.Password);
        await admin.GotoAsync(new Uri(h.Server.BaseAddress, "review#/users").ToString());
        await Assertions.Expect(admin.Locator("#users tr[data-user=alice] .user-state")).ToHaveTextAsync("active");
        await Assertions.Expect(admin.Locator("#disable-root")).ToBeDisabledAsync();
        await admin.Locator("#disable-alice").ClickAsync();
        await Assertions.Expect(admin.Locator("#users tr[data-user=alice] .user-state")).ToHaveTextAsync("disabled");
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/queue").ToString());
        await page.ReloadAsync();
        await page.Locator("#login-form").WaitForAsync();
        await Assertions.Expect(page.Locator("#nav")).ToBeHiddenAsync();
        await admin.Locator("#enable-alice").ClickAsync();
        await Assertions.Expect(admin.Locator("#users tr[data-user=alice] .user-state")).ToHaveTextAsync("active");

        // Reset with a generated password (the prompt left empty): shown once, and it works.
        admin.Dialog += (_, d) => _ = d.AcceptAsync("");
        await admin.Locator("#reset-alice").ClickAsync();
        await Assertions.Expect(admin.Locator("#new-password")).ToContainTextAsync("shown once");
        var generated = (await admin.Locator("#new-password .mono").TextContentAsync())!;
        await admin.ScreenshotAsync(new() { Path = Screenshot("review-users.png") });
        await LoginAsync(page, h, "alice", generated);
        Assert.Contains(h.Review.Audit.Query(new(Actor: "root")), a => a.Action == "user.disable" && a.Subject == "user:alice");
        await adminContext.CloseAsync();
    }

    private static async Task LoginAsync(IPage page, ReviewHarness h, string user, string password)
    {
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review").ToString());
        await page.GetByLabel("User name").FillAsync(user);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#queue, #q-empty").First.WaitForAsync();
    }

    private static async Task AssertNoSidewaysScrollAsync(IPage page, string what)
    {
        var w = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, innerWidth, document.querySelector('header').scrollWidth, document.querySelector('header').clientWidth]");
        // Names the widest offenders, so a failure says what to fix.
        var wide = await page.EvaluateAsync<string>("() => [...document.querySelectorAll('body *')].filter(e => (e.getBoundingClientRect().right > innerWidth || (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)) && (e.matches('.table-scroll') || !e.closest('.table-scroll'))).slice(-6).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + '/' + e.scrollWidth + '/' + e.clientWidth).join('; ')");
        Assert.True(w[0] <= w[1], $"{what}: the page is {w[0]} px wide in a {w[1]} px viewport: {wide}");
        Assert.True(w[2] <= w[3], $"{what}: the header overflows ({w[2]} > {w[3]} px)");
    }

    [SkippableFact]
    public async Task With_blur_off_the_browser_still_gets_a_server_derivative_until_a_logged_reveal()
    {
        Skip.IfNot(File.Exists(Chromium), "Chromium is not installed at /usr/bin/chromium (apt-get install chromium).");
        await using var h = await ReviewHarness.StartAsync();
        await h.SeedCaseAsync();
        var originals = new[] { Media.Jpeg(1), Media.Jpeg(1, quality: 60), Media.Jpeg(2) }.Select(Digest).ToHashSet();

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Chromium,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        page.SetDefaultTimeout(30_000);

        // Every media response the browser receives passes through here, so its bytes are seen exactly as served.
        var received = new System.Collections.Concurrent.ConcurrentQueue<(string Url, string Kind, string Digest, int Length)>();
        await page.RouteAsync(new System.Text.RegularExpressions.Regex("/media"), async route =>
        {
            var response = await route.FetchAsync();
            var body = await response.BodyAsync();
            received.Enqueue((route.Request.Url, response.Headers.GetValueOrDefault("x-warden-media", response.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)), Digest(body), body.Length));
            await route.FulfillAsync(new() { Response = response, BodyBytes = body });
        });

        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review").ToString());
        await page.GetByLabel("User name").FillAsync("alice");
        await page.GetByLabel("Password").FillAsync(ReviewHarness.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.Locator("#queue").WaitForAsync();

        // Settings: blur off, greyscale off, the largest preview.
        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/settings").ToString());
        await page.Locator("#set-blur").UncheckAsync();
        await page.Locator("#set-grey").UncheckAsync();
        await page.Locator("#set-size").FillAsync("256");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("Saved.");

        await page.GotoAsync(new Uri(h.Server.BaseAddress, "review#/queue").ToString());
        await page.Locator("a.case-link").First.ClickAsync();
        await page.WaitForFunctionAsync("() => [0, 1].every(i => { const m = document.getElementById('media-' + i); return m && m.complete && m.naturalWidth > 0; })");

        // No CSS filter at all now, and still no original: what arrived is the server's derivative.
        Assert.Equal("none", await page.Locator("#media-0").EvaluateAsync<string>("e => getComputedStyle(e).filter"));
        Assert.True(await page.Locator("#media-0").EvaluateAsync<int>("e => e.naturalWidth") <= 256);
        await DrainAsync();
        Assert.True(received.Count >= 2);
        Assert.All(received, r =>
        {
            Assert.Equal("derivative", r.Kind);
            Assert.DoesNotContain(r.Digest, originals);
        });

        // Reveal: the original is shown, the counter moves, one revealed view is logged.
        var item = await page.Locator("#media-0").EvaluateAsync<string>("e => decodeURIComponent(e.getAttribute('src').split('/items/')[1].split('/')[0])");
        received.Clear();
        await page.Locator("#reveal-0").ClickAsync();
        await page.WaitForFunctionAsync("() => { const m = document.getElementById('media-0'); return m.src.startsWith('blob:') && m.complete && m.naturalWidth === 640; }");
        await Assertions.Expect(page.Locator("#exposure")).ToContainTextAsync("Reveals today: 1 /");
        await DrainAsync();
        var original = Assert.Single(received, r => r.Kind == "original");
        Assert.Contains(original.Digest, originals);
        Assert.Single(h.Review.Vault!.Views(item), v => v.Actor == "alice" && v.What == "revealed");
        await Assertions.Expect(page.Locator("#reveal-0")).ToHaveTextAsync("Re-obscure (r)");

        // The grant was single-use: the same URL fetched again from the page is refused.
        var again = await page.EvaluateAsync<int>("async u => (await fetch(u)).status", original.Url);
        Assert.Equal(403, again);

        // Re-obscure: back to the derivative, the blob URL revoked; the counter does not move.
        received.Clear();
        await page.Locator("#reveal-0").ClickAsync();
        await page.WaitForFunctionAsync("() => { const m = document.getElementById('media-0'); return !m.src.startsWith('blob:') && m.complete && m.naturalWidth > 0 && m.naturalWidth <= 256; }");
        await Assertions.Expect(page.Locator("#reveal-0")).ToHaveTextAsync("Reveal (r)");
        await Assertions.Expect(page.Locator("#exposure")).ToContainTextAsync("Reveals today: 1 /");
        await DrainAsync();
        Assert.All(received.Where(r => r.Url.Contains("/media", StringComparison.Ordinal) && !r.Url.Contains("original", StringComparison.Ordinal)), r => Assert.DoesNotContain(r.Digest, originals));
        Assert.Single(h.Review.Vault.Views(item), v => v.What == "revealed");
        await page.ScreenshotAsync(new() { Path = Screenshot("review-case-blur-off.png"), FullPage = true });

        // Lets in-flight media requests finish passing through the route.
        async Task DrainAsync()
        {
            for (var quiet = 0; quiet < 3;)
            {
                var before = received.Count;
                await Task.Delay(200);
                quiet = received.Count == before ? quiet + 1 : 0;
            }
        }
    }

    /// <summary>The status message is shown and lies wholly inside the viewport, not below the fold.</summary>
    private static async Task AssertStatusInViewportAsync(IPage page, string text)
    {
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync(text);
        var box = await page.EvaluateAsync<double[]>("() => { const r = document.getElementById('status').getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, r.width, r.height, innerWidth, innerHeight]; }");
        Assert.True(box[4] > 0 && box[5] > 0, "the status message has no size");
        Assert.True(box[0] >= 0 && box[1] >= 0 && box[2] <= box[6] && box[3] <= box[7], $"the status message lies outside the viewport: {string.Join(",", box)}");
    }

    private static string Digest(byte[] b) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(b));

    /// <summary>
    /// docs/images/NAME in the repository when WARDEN_SCREENSHOTS=1 (to refresh the committed ones; only those
    /// with <paramref name="keep"/>), else a temporary folder, so a test run leaves the working tree clean.
    /// </summary>
    private static string Screenshot(string name, bool keep = true)
    {
        if (Environment.GetEnvironmentVariable("WARDEN_SCREENSHOTS") != "1" || !keep)
        {
            var temp = Path.Combine(Path.GetTempPath(), "warden-screenshots");
            Directory.CreateDirectory(temp);
            return Path.Combine(temp, name);
        }

        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
        {
            dir = dir.Parent;
        }

        var target = Path.Combine(dir?.FullName ?? Path.GetTempPath(), "docs", "images");
        Directory.CreateDirectory(target);
        return Path.Combine(target, name);
    }
}
