using System.Globalization;
using System.Text.Json;
using System.Xml.Linq;
using FsCheck.Xunit;
using Warden.Core.Exchanges;
using Warden.Core.Exchanges.Ncmec;

namespace Warden.Core.Tests.Exchanges;

/// <summary>The NCMEC Hash Sharing v2 exchange type against a local fake server written from the wire format.</summary>
public sealed class NcmecExchangeTests
{
    private const string CredentialVariable = NcmecFixtures.CredentialVariable;
    private static readonly string HashSharingDir = NcmecFixtures.HashSharingDir;
    private static readonly string ScenarioDir = Path.Combine(HashSharingDir, "scenario");

    internal static long Unix(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture).ToUnixTimeSeconds();

    private static JsonElement Config(FakeNcmecServer server, string extra = "") => NcmecFixtures.Config(server, extra);

    private static ExchangeRuntime Runtime(FakeNcmecServer server, HttpClient http, DateTimeOffset now, List<string>? log = null, string? credentials = null) =>
        new(http, () => now, line => log?.Add(line), name => name == CredentialVariable ? credentials ?? server.User + ":" + server.Password : null);

    /// <summary>Reads every delta of one pass.</summary>
    internal static async Task<List<ExchangeDelta>> PassAsync(IExchangeFetcher fetcher, string? checkpoint, int? stopAfter = null)
    {
        var deltas = new List<ExchangeDelta>();
        await foreach (var d in fetcher.FetchAsync(checkpoint, CancellationToken.None))
        {
            deltas.Add(d);
            if (deltas.Count == stopAfter)
            {
                break;
            }
        }

        return deltas;
    }

    [Fact]
    public async Task Scenario_files_give_the_expected_requests_checkpoints_and_state()
    {
        await using var server = new FakeNcmecServer();
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(ScenarioDir, "expected.json"))).RootElement;
        var steps = expected.GetProperty("requests").EnumerateArray().ToList();
        server.Fixed["/v2/entries?from=2025-01-10T00%3A00%3A00Z&to=2025-01-11T00%3A00%3A00Z"] = File.ReadAllText(Path.Combine(ScenarioDir, "entries-window1-page1.xml"));
        server.Fixed[steps[1].GetProperty("pathAndQuery").GetString()!] = File.ReadAllText(Path.Combine(ScenarioDir, "entries-window1-page2.xml"));
        server.Fixed["/v2/entries?from=2025-01-11T00%3A00%3A00Z&to=2025-01-20T00%3A00%3A00Z"] = File.ReadAllText(Path.Combine(ScenarioDir, "entries-window2-empty.xml"));
        const string TmkHref = "/v2/entries/5001/fingerprints/TMK_PDQF"; // the page's link, relative to the application root
        server.FixedBytes[TmkHref] = TmkBodies.Valid[1];
        using var http = new HttpClient();
        var config = Config(server, ""","start_time":"2025-01-10T00:00:00Z","adaptive_windows":false""");

        // Two passes: the first reaches 2025-01-11 (window 1, two pages), the second 2025-01-20 (window 2, empty).
        var first = await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, DateTimeOffset.Parse("2025-01-11T00:00:05Z", CultureInfo.InvariantCulture))), null);
        Assert.Equal(2, first.Count);
        var mid = NcmecCheckpoint.Parse(first[0].Checkpoint);
        Assert.Equal((Unix("2025-01-10T00:00:00Z"), Unix("2025-01-11T00:00:00Z"), steps[0].GetProperty("checkpointAfter").GetProperty("pagingNext").GetString()), (mid.From, mid.To!.Value, mid.Next));
        var done = NcmecCheckpoint.Parse(first[1].Checkpoint);
        Assert.Equal(Unix("2025-01-11T00:00:00Z"), done.From);
        Assert.Null(done.Next);

        var second = await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, DateTimeOffset.Parse("2025-01-20T00:00:05Z", CultureInfo.InvariantCulture))), first[^1].Checkpoint);
        Assert.Single(second);
        Assert.Equal(Unix(expected.GetProperty("expectedState").GetProperty("finalCheckpoint").GetString()!), NcmecCheckpoint.Parse(second[0].Checkpoint).From);

        var served = server.Requests.Select(r => r.PathAndQuery).ToList();
        Assert.Equal(
            [
                "/v2/entries?from=2025-01-10T00%3A00%3A00Z&to=2025-01-11T00%3A00%3A00Z",
                TmkHref, // the page's TMK+PDQF, fetched before the next page, with the same credentials
                steps[1].GetProperty("pathAndQuery").GetString()!,
                "/v2/entries?from=2025-01-11T00%3A00%3A00Z&to=2025-01-20T00%3A00%3A00Z",
            ],
            served);

        var model = new FeedModel();
        foreach (var d in first.Concat(second))
        {
            model.Apply(d.Records);
        }

        Assert.Equal(
            ["9002-vid-0001-md5", "9002-vid-0001-tmk_pdqf", "9003-img-0002-md5", "9003-img-0002-pdq", "9003-img-0002-sha1", "9004-vid-0001-md5"],
            model.Entries.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("tmk1:" + Convert.ToBase64String(TmkBodies.Valid[1]), model.Entries["9002-vid-0001-tmk_pdqf"].Signal);
        Assert.Equal("A2", model.Entries["9002-vid-0001-tmk_pdqf"].Labels["classification"]);

        // The retrieval link is never kept: not in a record, a label or a checkpoint.
        Assert.All(first.Concat(second), d => Assert.DoesNotContain("fingerprints/", d.Checkpoint, StringComparison.Ordinal));
        Assert.All(model.Entries.Values, r => Assert.DoesNotContain(r.Labels.Values.Append(r.Signal), v => v.Contains("fingerprints/", StringComparison.Ordinal)));
        Assert.Equal("f550f550f550f5500aaff5500aaff5500aaff5500aaff5500aaf0aaf0aaf0aaf", model.Entries["9003-img-0002-pdq"].Signal);
        Assert.Equal("A2", model.Entries["9003-img-0002-md5"].Labels["classification"]);
        Assert.Equal("A2", model.Entries["9002-vid-0001-md5"].Labels["classification"]);
        Assert.False(model.Entries["9004-vid-0001-md5"].Labels.ContainsKey("classification"));
        Assert.Equal("9004", model.Entries["9004-vid-0001-md5"].Labels["ncmec_member"]);

        // PhotoDNA and large fingerprints are counted, never dropped silently.
        var unsupported = first.SelectMany(d => d.Unsupported).GroupBy(u => u.Key).ToDictionary(g => g.Key, g => g.Sum(u => u.Value));
        Assert.Equal(1, unsupported["pdna"]);
        Assert.DoesNotContain(unsupported.Keys, k => k.StartsWith("tmk-pdqf", StringComparison.Ordinal));
        Assert.Equal(1, unsupported["videntifier"]);
        Assert.Equal(2, first.Sum(d => d.Tombstones));
    }

    [Fact]
    public async Task Out_of_order_pages_with_a_503_and_a_429_sync_to_the_live_set_and_honour_retry_after()
    {
        await using var server = new FakeNcmecServer { PageSize = 40 };
        var rng = new Random(7);
        var t0 = Unix("2025-03-01T00:00:00Z");
        FeedHistory.Fill(server, rng, t0, entries: 600, spanSeconds: 2 * 86400, tmk: true);
        server.Fail(503);
        server.Fail(429, retryAfterSeconds: 1);
        using var http = new HttpClient();
        var log = new List<string>();
        var fetcher = ExchangeTypes.Ncmec.CreateFetcher(Config(server, ""","start_time":"2025-03-01T00:00:00Z","window_seconds":86400"""), Runtime(server, http, DateTimeOffset.Parse("2025-03-10T00:00:00Z", CultureInfo.InvariantCulture), log));
        var deltas = await PassAsync(fetcher, null);
        var model = new FeedModel();
        foreach (var d in deltas)
        {
            model.Apply(d.Records);
        }

        model.AssertEquals(server.Live());
        var requests = server.Requests.ToList();
        Assert.Equal(503, requests[0].Status);
        Assert.Equal(429, requests[1].Status);
        Assert.True(requests[2].At - requests[1].At >= TimeSpan.FromSeconds(0.95), $"the retry after a 429 with Retry-After: 1 came {(requests[2].At - requests[1].At).TotalMilliseconds} ms later");
        Assert.Contains(log, l => l.Contains("HTTP 429", StringComparison.Ordinal) && l.Contains("retrying in 1s", StringComparison.Ordinal));

        // Progress moves forward only.
        var times = deltas.Select(d => fetcher.ProgressOf(d.Checkpoint)!.Value).ToList();
        Assert.Equal(times.Order(), times);
        Assert.Equal(DateTimeOffset.Parse("2025-03-09T23:59:55Z", CultureInfo.InvariantCulture), times[^1]);
    }

    [Property(MaxTest = 40)]
    public bool Interrupted_passes_with_changes_between_them_end_equal_to_the_live_set(int seed, byte pageSizeByte, byte stopByte, bool adaptive)
    {
        return Run().GetAwaiter().GetResult();

        async Task<bool> Run()
        {
            await using var server = new FakeNcmecServer { PageSize = 1 + (pageSizeByte % 9) };
            var rng = new Random(seed);
            var t0 = Unix("2025-05-01T00:00:00Z");
            FeedHistory.Fill(server, rng, t0, entries: 30 + rng.Next(40), spanSeconds: 3600, tmk: true);
            using var http = new HttpClient();
            var config = Config(server, $$""","start_time":"2025-05-01T00:00:00Z","adaptive_windows":{{(adaptive ? "true" : "false")}},"window_seconds":{{600 + rng.Next(3000)}}""");
            var now = DateTimeOffset.FromUnixTimeSeconds(t0 + 7200);
            var model = new FeedModel();

            // Pass 1 stops after a few pages, as a crash would; only what the last checkpoint covers counts as committed.
            var first = await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, now)), null, stopAfter: 1 + (stopByte % 6));
            foreach (var d in first)
            {
                model.Apply(d.Records);
            }

            // The feed changes after pass 1's "now": updates, deletions and new entries, all with later timestamps.
            FeedHistory.Mutate(server, rng, now.ToUnixTimeSeconds(), 3000, tmk: true);
            var later = now.AddSeconds(3600);
            var second = await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, later)), first.Count == 0 ? null : first[^1].Checkpoint);
            foreach (var d in second)
            {
                model.Apply(d.Records);
            }

            return model.Matches(server.Live());
        }
    }

    [Fact]
    public async Task A_saved_link_is_replayed_with_its_own_window_and_a_stale_one_restarts_the_window()
    {
        await using var server = new FakeNcmecServer { PageSize = 5 };
        var t0 = Unix("2025-06-01T00:00:00Z");
        FeedHistory.Fill(server, new Random(3), t0, entries: 20, spanSeconds: 600);
        using var http = new HttpClient();
        var config = Config(server, ""","start_time":"2025-06-01T00:00:00Z","adaptive_windows":false""");
        var now = DateTimeOffset.FromUnixTimeSeconds(t0 + 1000);
        var first = await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, now)), null, stopAfter: 2);
        var saved = NcmecCheckpoint.Parse(first[^1].Checkpoint);
        Assert.NotNull(saved.Next);
        Assert.Contains("start=11", saved.Next, StringComparison.Ordinal);

        server.Requests.Clear();
        await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, now.AddMinutes(1))), first[^1].Checkpoint);
        Assert.Equal(saved.Next, server.Requests.First().PathAndQuery);

        server.Requests.Clear();
        await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, now.AddHours(13))), first[^1].Checkpoint);
        Assert.StartsWith("/v2/entries?from=2025-06-01T00%3A00%3A00Z&to=", server.Requests.First().PathAndQuery, StringComparison.Ordinal);
        Assert.DoesNotContain("start=", server.Requests.First().PathAndQuery, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_window_ends_five_seconds_before_now_and_the_member_filter_applies()
    {
        await using var server = new FakeNcmecServer();
        var t0 = Unix("2025-07-01T00:00:00Z");
        FeedHistory.Fill(server, new Random(5), t0, entries: 50, spanSeconds: 100, tmk: true);
        using var http = new HttpClient();
        var config = Config(server, ""","start_time":"2025-07-01T00:00:00Z","only_esp_ids":[9003]""");
        var deltas = await PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, DateTimeOffset.FromUnixTimeSeconds(t0 + 200))), null);
        Assert.EndsWith("&to=2025-07-01T00%3A03%3A15Z", server.Requests.Single(r => r.PathAndQuery.StartsWith("/v2/entries?", StringComparison.Ordinal)).PathAndQuery, StringComparison.Ordinal);
        var records = deltas.SelectMany(d => d.Records).ToList();
        Assert.NotEmpty(records);
        Assert.All(records, r => Assert.Equal("9003", r.Labels["ncmec_member"]));

        // Large fingerprints of filtered-out members are not fetched.
        Assert.All(server.Requests.Where(r => r.PathAndQuery.Contains("/fingerprints/", StringComparison.Ordinal)), r => Assert.StartsWith("/v2/entries/9003/", r.PathAndQuery, StringComparison.Ordinal));
        Assert.True(deltas.Sum(d => d.Filtered) > 0);
    }

    [Fact]
    public async Task Refused_credentials_and_missing_variables_fail_without_showing_secrets()
    {
        await using var server = new FakeNcmecServer();
        using var http = new HttpClient();
        var config = Config(server);
        var wrong = await Assert.ThrowsAsync<ExchangeException>(() => PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, DateTimeOffset.UtcNow, credentials: "warden_test:wrong-password")), null));
        Assert.Contains("refused the credentials", wrong.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-password", wrong.Message, StringComparison.Ordinal);

        var runtime = new ExchangeRuntime(http, () => DateTimeOffset.UtcNow, _ => { }, _ => null);
        var missing = await Assert.ThrowsAsync<ExchangeException>(() => PassAsync(ExchangeTypes.Ncmec.CreateFetcher(config, runtime), null));
        Assert.Contains(CredentialVariable, missing.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><images count=\"1\"><image><member id=\"1\">x</member>")]
    [InlineData("<!DOCTYPE x [<!ENTITY a \"aaaa\">]><queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"/>")]
    [InlineData("<status xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"/>")]
    [InlineData("<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><paging><next>http://elsewhere.example/v2/entries?start=2</next></paging></queryResult>")]
    [InlineData("<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><paging><next>//elsewhere.example/v2/entries</next></paging></queryResult>")]
    public async Task Hostile_or_truncated_pages_fail_the_pass_and_yield_nothing(string page)
    {
        await using var server = new FakeNcmecServer();
        server.Fixed["/v2/entries?from=2025-08-01T00%3A00%3A00Z&to=2025-08-01T00%3A01%3A35Z"] = page;
        using var http = new HttpClient();
        var config = Config(server, ""","start_time":"2025-08-01T00:00:00Z","adaptive_windows":false""");
        var deltas = new List<ExchangeDelta>();
        await Assert.ThrowsAsync<ExchangeException>(async () =>
        {
            await foreach (var d in ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, DateTimeOffset.FromUnixTimeSeconds(Unix("2025-08-01T00:01:40Z")))).FetchAsync(null, CancellationToken.None))
            {
                deltas.Add(d);
            }
        });
        Assert.Empty(deltas);
    }

    public static TheoryData<int> InvalidTmkBodies() => [.. Enumerable.Range(0, TmkBodies.Invalid.Count)];

    /// <summary>One video entry per body (null: the link answers 404), in one window; returns the pass's deltas and log.</summary>
    private static async Task<(List<ExchangeDelta> Deltas, List<string> Log)> TmkPassAsync(FakeNcmecServer server, IReadOnlyList<byte[]?> bodies)
    {
        var t0 = Unix("2025-09-01T00:00:00Z");
        for (var i = 0; i < bodies.Count; i++)
        {
            var fps = new Dictionary<string, string?>(StringComparer.Ordinal) { ["md5"] = FeedHistory.Hex(new Random(i), 16), ["tmk-pdqf"] = null, ["videntifier"] = null };
            var large = bodies[i] is { } b ? new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["tmk-pdqf"] = b, ["videntifier"] = [1, 2, 3] } : null;
            server.Put(new FakeEntry(9002 + (i % 3), "vid-" + i.ToString(CultureInfo.InvariantCulture), Video: true, t0 + 1 + i, "B1", fps, LargeBodies: large));
        }

        using var http = new HttpClient();
        var log = new List<string>();
        var config = Config(server, ""","start_time":"2025-09-01T00:00:00Z","adaptive_windows":false""");
        var fetcher = ExchangeTypes.Ncmec.CreateFetcher(config, Runtime(server, http, DateTimeOffset.FromUnixTimeSeconds(t0 + 3600), log));
        return (await PassAsync(fetcher, null), log);
    }

    [SkippableFact]
    public async Task Reference_tmk_files_from_Metas_tools_are_fetched_and_stored_byte_for_byte()
    {
        // The .tmk files Meta's reference tmk-hash-video wrote for ../shared's synthetic videos: the format NCMEC's
        // TMK_PDQF large fingerprints are assumed to be (docs/exchanges.md).
        var dir = TestData.SharedPath("video", "expected", "tmk");
        var files = Directory.GetFiles(dir, "*.tmk").Order(StringComparer.Ordinal).Take(4).Select(File.ReadAllBytes).ToList();
        Assert.NotEmpty(files);
        await using var server = new FakeNcmecServer();
        var (deltas, _) = await TmkPassAsync(server, [.. files]);
        var tmk = deltas.SelectMany(d => d.Records).Where(r => r.SignalType == "tmk_pdqf").ToList();
        Assert.Equal(files.Select(f => "tmk1:" + Convert.ToBase64String(f)).Order(StringComparer.Ordinal), tmk.Select(r => r.Signal).Order(StringComparer.Ordinal));
        Assert.True(Warden.Core.Signals.SignalTypes.TryGet("tmk_pdqf", out var type));
        Assert.All(tmk, r => Assert.True(type.TryNormalize(r.Signal, out _, out _)));
        Assert.Equal(files.Count, deltas.Sum(d => d.Unsupported.GetValueOrDefault("videntifier")));
    }

    [Theory]
    [MemberData(nameof(InvalidTmkBodies))]
    public async Task A_tmk_body_that_does_not_parse_whole_is_counted_as_unsupported_with_the_reason(int which)
    {
        var (bad, what) = TmkBodies.Invalid[which];
        await using var server = new FakeNcmecServer();
        var (deltas, log) = await TmkPassAsync(server, [TmkBodies.Valid[0], bad, null, TmkBodies.Valid[2]]);
        var model = new FeedModel();
        foreach (var d in deltas)
        {
            model.Apply(d.Records);
        }

        // The good ones are stored exactly; the damaged one and the missing one (404) are counted, each with its
        // reason, and their entries' other fingerprints are stored.
        Assert.Equal("tmk1:" + Convert.ToBase64String(TmkBodies.Valid[0]), model.Entries["9002-vid-0-tmk_pdqf"].Signal);
        Assert.Equal("tmk1:" + Convert.ToBase64String(TmkBodies.Valid[2]), model.Entries["9002-vid-3-tmk_pdqf"].Signal);
        Assert.False(model.Entries.ContainsKey("9003-vid-1-tmk_pdqf"), what);
        Assert.False(model.Entries.ContainsKey("9004-vid-2-tmk_pdqf"));
        Assert.Equal(4, model.Entries.Keys.Count(k => k.EndsWith("-md5", StringComparison.Ordinal)));
        var unsupported = deltas.SelectMany(d => d.Unsupported).GroupBy(u => u.Key).ToDictionary(g => g.Key, g => g.Sum(u => u.Value));
        const string Gone = "tmk-pdqf (gone (404/410))";
        Assert.Equal(1, unsupported[Gone]);
        var damaged = Assert.Single(unsupported, u => u.Key.StartsWith("tmk-pdqf (", StringComparison.Ordinal) && u.Key != Gone);
        Assert.Equal(1, damaged.Value);
        Assert.Contains(log, l => l.Contains("entry 9003-vid-1", StringComparison.Ordinal) && l.Contains(damaged.Key["tmk-pdqf (".Length..^1], StringComparison.Ordinal));
        Assert.DoesNotContain(log, l => l.Contains("/fingerprints/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Tmk_links_are_retried_like_pages_and_refused_credentials_fail_the_pass_without_the_link()
    {
        // A 503 and a 429 on the TMK GET are retried (Retry-After honoured), with the page's credentials.
        await using var server = new FakeNcmecServer();
        server.FailLarge(503);
        server.FailLarge(429, retryAfterSeconds: 1);
        var (deltas, log) = await TmkPassAsync(server, [TmkBodies.Valid[0]]);
        Assert.Equal("tmk1:" + Convert.ToBase64String(TmkBodies.Valid[0]), Assert.Single(deltas.SelectMany(d => d.Records), r => r.SignalType == "tmk_pdqf").Signal);
        var large = server.Requests.Where(r => r.PathAndQuery.Contains("/fingerprints/TMK_PDQF", StringComparison.Ordinal)).ToList();
        Assert.Equal([503, 429, 200], large.Select(r => r.Status));
        Assert.True(large[2].At - large[1].At >= TimeSpan.FromSeconds(0.95));
        Assert.DoesNotContain(log, l => l.Contains("/fingerprints/", StringComparison.Ordinal));

        // 401 on the link: the pass fails before the page is committed (it is read again next time), and the error
        // names the entry, never the link.
        await using var refusing = new FakeNcmecServer();
        refusing.FailLarge(401);
        var ex = await Assert.ThrowsAsync<ExchangeException>(() => TmkPassAsync(refusing, [TmkBodies.Valid[0]]));
        Assert.Contains("entry 9002-vid-0", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("/fingerprints/", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_page_of_many_tmk_files_goes_out_in_bounded_pieces_that_move_no_checkpoint_until_the_page_ends()
    {
        // 110 TMK files of 263 KB (351 K base64 chars each) pass the 32 M-char bound once within one page.
        await using var server = new FakeNcmecServer();
        var (deltas, _) = await TmkPassAsync(server, [.. Enumerable.Range(0, 110).Select(i => TmkBodies.Valid[i % 3])]);
        Assert.True(deltas.Count >= 2, $"{deltas.Count} deltas");
        Assert.Equal(new NcmecCheckpoint(Unix("2025-09-01T00:00:00Z")).Serialize(), deltas[0].Checkpoint);
        Assert.Equal(0, deltas[0].Entries);
        Assert.Equal(110, deltas.Sum(d => d.Entries));
        Assert.Equal(110, deltas.SelectMany(d => d.Records).Count(r => r.SignalType == "tmk_pdqf"));
        var model = new FeedModel();
        foreach (var d in deltas)
        {
            model.Apply(d.Records);
        }

        model.AssertEquals(server.Live());
    }

    [Theory]
    [InlineData("""{"base_url":"https://x.example/hs","credentials_env":"V"}""", "environment is required")]
    [InlineData("""{"environment":"Nowhere","credentials_env":"V"}""", "Unknown NCMEC environment")]
    [InlineData("""{"environment":"Industry"}""", "needs credentials")]
    [InlineData("""{"environment":"Industry","credentials_env":"user:password"}""", "NAME of an environment variable")]
    [InlineData("""{"environment":"Industry","credentials_env":"V","base_url":"ftp://x.example/"}""", "base_url")]
    [InlineData("""{"environment":"Industry","credentials_env":"V","base_url":"https://u:p@x.example/"}""", "base_url")]
    [InlineData("""{"environment":"Industry","credentials_env":"V","only_esp_ids":["x"]}""", "only_esp_ids")]
    [InlineData("""{"environment":"Industry","credentials_env":"V","window_seconds":-1}""", "window_seconds")]
    [InlineData("""{"environment":"Industry","credentials_env":"V","colour":"blue"}""", "Unknown ncmec config field 'colour'")]
    [InlineData("""[1,2]""", "JSON object")]
    public void Bad_configs_are_refused_with_the_field_named(string json, string message)
    {
        var ex = Assert.Throws<ExchangeConfigException>(() => ExchangeTypes.Ncmec.Validate(JsonDocument.Parse(json).RootElement));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_config_is_canonicalised_with_defaults_and_HMA_environment_urls_are_accepted()
    {
        var c = ExchangeTypes.Ncmec.Validate(JsonDocument.Parse("""{"environment":"https://report.cybertip.org/hashsharing","credentials_env":"NCMEC","only_esp_ids":[5,"3",5]}""").RootElement);
        Assert.Equal("Industry", c.GetProperty("environment").GetString());
        Assert.Equal("https://report.cybertip.org/hashsharing", c.GetProperty("base_url").GetString());
        Assert.Equal([3L, 5L], c.GetProperty("only_esp_ids").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(5, c.GetProperty("end_lag_seconds").GetInt64());
        Assert.Equal(c.GetRawText(), ExchangeTypes.Ncmec.Validate(c).GetRawText());
        Assert.Contains(ExchangeTypes.Ncmec.Schema.Config, f => f.Name == "environment" && f.Choices!.Contains("NGO_Generative_AI"));
    }

    [Fact]
    public async Task Feedback_is_sent_as_NCMEC_feedback_submissions()
    {
        await using var server = new FakeNcmecServer();
        var reasons = Path.Combine(HashSharingDir, "feedback-reasons.xml");
        server.Fixed["/v2/feedback/SHA1/reasons"] = File.ReadAllText(reasons);
        server.Fixed["/v2/feedback/PDQ/reasons"] = """<availableFeedbackReasons xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><reason guid="2f304152-6374-4859-aabb-ccddeeff0011" name="Only reason" type="Pdq"/></availableFeedbackReasons>""";
        using var http = new HttpClient();
        var writer = ExchangeTypes.Ncmec.CreateFeedbackWriter(Config(server), Runtime(server, http, DateTimeOffset.UtcNow))!;

        await writer.SendAsync(new ExchangeOpinion("9002-img-0001", "md5", OpinionKind.TruePositive, null), CancellationToken.None);
        await writer.SendAsync(new ExchangeOpinion("9002-img-0001", "sha1", OpinionKind.FalsePositive, "0d1e2f30-4152-4637-8899-aabbccddeeff"), CancellationToken.None);
        await writer.SendAsync(new ExchangeOpinion("9003-img-0002", "pdq", OpinionKind.FalsePositive, null), CancellationToken.None);
        var choose = await Assert.ThrowsAsync<ExchangeException>(() => writer.SendAsync(new ExchangeOpinion("9003-img-0002", "sha1", OpinionKind.FalsePositive, null), CancellationToken.None));
        Assert.Contains("Example Reason 2", choose.Message, StringComparison.Ordinal);

        var sent = server.Feedback.ToList();
        Assert.Equal(["/v2/entries/9002/img-0001/MD5/feedback", "/v2/entries/9002/img-0001/SHA1/feedback", "/v2/entries/9003/img-0002/PDQ/feedback"], sent.Select(s => s.Path));

        // Same documents as the reference request bodies, element for element.
        static string Shape(string xml) => string.Join("|", XDocument.Parse(xml).Descendants().Select(e => e.Name + "=" + (e.HasElements ? string.Empty : e.Value)));
        var hs = HashSharingDir;
        Assert.Equal(Shape(File.ReadAllText(Path.Combine(hs, "feedback-affirmative.request.xml"))), Shape(sent[0].Body));
        Assert.Equal(Shape(File.ReadAllText(Path.Combine(hs, "feedback-negative.request.xml"))), Shape(sent[1].Body));
        Assert.Contains("2f304152-6374-4859-aabb-ccddeeff0011", sent[2].Body, StringComparison.Ordinal);
    }
}
