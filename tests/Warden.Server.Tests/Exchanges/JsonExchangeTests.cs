using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Xunit;
using Warden.Core.Exchanges;
using Warden.Core.Tests.Exchanges;
using Warden.Server.Auth;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests.Exchanges;

/// <summary>
/// StopNCII, ThreatExchange and peer (Warden / HMA) exchanges synced into real databases (SQLite and PostgreSQL)
/// against fakes written from the wire formats (python-threatexchange's clients, HMA's curation blueprint) and
/// against a second real Warden server on 127.0.0.1.
/// </summary>
public sealed class JsonExchangeTests
{
    private static string Hex(Random rng, int bytes)
    {
        var b = new byte[bytes];
        rng.NextBytes(b);
        return Convert.ToHexStringLower(b);
    }

    private static ExchangeRuntime Runtime(HttpClient http, Dictionary<string, string> env, List<string>? log = null) =>
        ExchangeRuntime.Default(http) with
        {
            Environment = v => env.GetValueOrDefault(v),
            Log = line => log?.Add(line),
            Delay = (_, _) => Task.CompletedTask,
        };

    private static (BankStore Banks, ExchangeStore Exchanges, Exchange X) Open(TestDatabase db, IExchangeType type, string json)
    {
        var banks = BankStore.Open(db.Target);
        var exchanges = ExchangeStore.Open(banks.Database);
        var bank = banks.CreateBank("x-" + Guid.NewGuid().ToString("N")[..8]);
        var config = type.Validate(JsonDocument.Parse(json).RootElement);
        return (banks, exchanges, exchanges.Create("x-" + bank.Name, type.Name, bank.Id, config.GetRawText()));
    }

    private static async Task<ExchangeSyncResult> SyncAsync(BankStore banks, ExchangeStore exchanges, Exchange x, ExchangeRuntime runtime, int commitRecords = 20_000, Action<ExchangeSyncProgress>? progress = null, CancellationToken cancel = default) =>
        await new ExchangeSync(banks, exchanges) { CommitRecords = commitRecords, Progress = progress }.RunAsync(exchanges.Require(x.Name), runtime, "test-" + Guid.NewGuid().ToString("N")[..6], cancel);

    /// <summary>The bank's live entries as "type:signal", checking nothing is doubled.</summary>
    private static HashSet<string> Live(BankStore banks, Exchange x)
    {
        var live = banks.ExportEntries(x.BankId).Select(e => e.SignalType + ":" + e.Signal).ToList();
        Assert.Equal(live.Count, live.Distinct().Count());
        return [.. live];
    }

    private static HashSet<string> Expected(FakeStopNcii server) =>
        [.. server.Live().Where(r => r.SignalType is "ImagePDQ" or "VideoMD5").Select(r => (r.SignalType == "ImagePDQ" ? "pdq:" : "video_md5:") + r.Hash)];

    private static StopNciiRecord NewRecord(Random rng, long modified)
    {
        var kind = rng.Next(10);
        var (type, hash) = kind switch
        {
            < 6 => ("ImagePDQ", Hex(rng, 32)),
            < 8 => ("VideoMD5", Hex(rng, 16)),
            8 => ("URL", "https://example.org/" + Hex(rng, 4)),
            _ => ("Text", "benign text " + Hex(rng, 4)),
        };
        return new StopNciiRecord(type, hash, modified, rng.Next(4) == 0 ? "Active" : "Received", rng.Next(3) == 0 ? [("OtherPlatform", "Blocked")] : []);
    }

    private static void Mutate(FakeStopNcii server, Random rng, long now, int changes)
    {
        var all = server.Live();
        for (var i = 0; i < changes; i++)
        {
            var op = rng.Next(3);
            if (op == 0 || all.Count == 0)
            {
                server.Put(NewRecord(rng, now));
            }
            else
            {
                var r = all[rng.Next(all.Count)];
                server.Put(op == 1 ? r with { Modified = now, Status = rng.Next(2) == 0 ? "Withdrawn" : "Deleted" } : r with { Modified = now, Status = "Active", Feedbacks = [("Another", "NotBlocked")] });
            }
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task StopNCII_syncs_by_page_token_through_faults_deletions_and_an_expired_token(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeStopNcii();
        using var http = new HttpClient();
        var env = new Dictionary<string, string> { ["SNCII_KEYS"] = server.FetchKey + "," + server.SubscriptionKey, ["SNCII_FEEDBACK"] = server.FeedbackKey };
        var log = new List<string>();
        var runtime = Runtime(http, env, log);
        var (banks, exchanges, x) = Open(db, ExchangeTypes.StopNcii, $$"""{"base_url":"{{server.BaseUrl}}","credentials_env":"SNCII_KEYS","feedback_key_env":"SNCII_FEEDBACK","page_size":40}""");
        var rng = new Random(5);
        var t0 = DateTimeOffset.UtcNow.AddDays(-2).ToUnixTimeSeconds();
        for (var i = 0; i < 300; i++)
        {
            var r = NewRecord(rng, t0 + i);
            server.Put(i % 17 == 0 ? r with { Status = "Withdrawn" } : r);
        }

        var first = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(Expected(server), Live(banks, x));
        var unsupported = server.Live().Count(r => r.SignalType is "URL" or "Text");
        Assert.Equal(unsupported, first.Unsupported.Values.Sum()); // counted, never silently dropped
        Assert.Equal(unsupported, exchanges.State(x.Id).UnsupportedFetched);
        Assert.All(server.Requests, r => Assert.StartsWith("/v1/FetchHashes?startTimestamp=", r.PathAndQuery, StringComparison.Ordinal));
        var pdqEntry = banks.ExportEntries(x.BankId).First(e => e.SignalType == "pdq");
        Assert.Equal("ncii", pdqEntry.Labels["category"]);
        Assert.Equal(pdqEntry.Signal, pdqEntry.Labels[Core.Exchanges.StopNcii.StopNciiExchangeType.HashLabel]);

        // The feed moves on (withdrawals, deletions, new feedback, new hashes); a 503 and a 429 on the way.
        Mutate(server, rng, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 60);
        server.Faults.Enqueue((503, null));
        server.Faults.Enqueue((429, 1));
        var second = await SyncAsync(banks, exchanges, x, runtime);
        Assert.True(second.Tombstones > 0);
        Assert.Equal(Expected(server), Live(banks, x));
        Assert.Contains(log, l => l.Contains("HTTP 503", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains("HTTP 429", StringComparison.Ordinal));

        // A pass cut short after its first commit keeps the page token; the token expires; the next pass re-reads.
        Mutate(server, rng, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1, 150);
        using (var cancel = new CancellationTokenSource())
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SyncAsync(banks, exchanges, x, runtime, commitRecords: 30, _ => cancel.Cancel(), cancel.Token));
        }

        Assert.Contains("\"token\":\"", exchanges.State(x.Id).Checkpoint, StringComparison.Ordinal);
        server.ExpireTokens();
        await SyncAsync(banks, exchanges, x, runtime);
        Assert.Contains(log, l => l.Contains("token was refused", StringComparison.Ordinal));
        Assert.Equal(Expected(server), Live(banks, x));

        // Keys travel only in headers: never in a log line nor in the stored config.
        Assert.DoesNotContain(log, l => l.Contains(server.FetchKey, StringComparison.Ordinal) || l.Contains(server.SubscriptionKey, StringComparison.Ordinal));
        Assert.DoesNotContain(server.FetchKey, exchanges.Require(x.Name).Config, StringComparison.Ordinal);

        // Feedback: python-threatexchange's SubmitFeedback body, with the feedback function key.
        var writer = ExchangeTypes.StopNcii.CreateFeedbackWriter(JsonDocument.Parse(exchanges.Require(x.Name).Config).RootElement, runtime)!;
        var entryId = ExchangeTypes.StopNcii.FeedbackEntryId(pdqEntry.Labels)!;
        await writer.SendAsync(new ExchangeOpinion(entryId, "pdq", OpinionKind.TruePositive, null), CancellationToken.None);
        await writer.SendAsync(new ExchangeOpinion(entryId, "pdq", OpinionKind.FalsePositive, "benign"), CancellationToken.None);
        var bodies = server.Feedback.ToList();
        Assert.Equal(2, bodies.Count);
        Assert.Equal(1, (int)bodies[0]["count"]!);
        Assert.Equal("Blocked", (string)bodies[0]["hashFeedbacks"]![0]!["feedbackValue"]!);
        Assert.Equal(pdqEntry.Signal, (string)bodies[0]["hashFeedbacks"]![0]!["hashValue"]!);
        Assert.Equal("NotBlocked", (string)bodies[1]["hashFeedbacks"]![0]!["feedbackValue"]!);
        Assert.Equal("benign", (string)bodies[1]["hashFeedbacks"]![0]!["tags"]![0]!);

        // Wrong keys: a clear failure, nothing changes.
        env["SNCII_KEYS"] = "wrong," + server.SubscriptionKey;
        var refused = await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, runtime));
        Assert.Contains("refused the credentials", refused.Message, StringComparison.Ordinal);
        Assert.Equal(Expected(server), Live(banks, x));
    }

    [Property(MaxTest = 12)]
    public void StopNCII_interrupted_passes_over_a_changing_feed_end_equal_to_the_live_set(PositiveInt seed, byte cuts)
    {
        using var db = TestDatabases.CreateSqlite();
        var server = new FakeStopNcii();
        try
        {
            using var http = new HttpClient();
            var env = new Dictionary<string, string> { ["K"] = server.FetchKey + "," + server.SubscriptionKey };
            var runtime = Runtime(http, env);
            var (banks, exchanges, x) = Open(db, ExchangeTypes.StopNcii, $$"""{"base_url":"{{server.BaseUrl}}","credentials_env":"K","page_size":7}""");
            var rng = new Random(seed.Get);
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1000;
            for (var i = 0; i < 40; i++)
            {
                server.Put(NewRecord(rng, now - rng.Next(500)));
            }

            for (var round = 0; round < 4; round++)
            {
                if (((cuts >> round) & 1) == 1)
                {
                    using var cancel = new CancellationTokenSource();
                    var commits = 0;
                    var stopAt = 1 + rng.Next(3);
                    try
                    {
                        SyncAsync(banks, exchanges, x, runtime, commitRecords: 5, _ =>
                        {
                            if (++commits >= stopAt)
                            {
                                cancel.Cancel();
                            }
                        }, cancel.Token).GetAwaiter().GetResult();
                    }
                    catch (OperationCanceledException)
                    {
                    }

                    if (rng.Next(2) == 0)
                    {
                        server.ExpireTokens();
                    }
                }

                Mutate(server, rng, ++now, rng.Next(1, 15));
                SyncAsync(banks, exchanges, x, runtime).GetAwaiter().GetResult();
                Assert.Equal(Expected(server), Live(banks, x));
            }
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static HashSet<string> Expected(FakeThreatExchange server) =>
        [.. server.Live().Where(i => i.Type is "HASH_PDQ" or "HASH_MD5" or "HASH_VIDEO_MD5").Select(i => (i.Type switch { "HASH_PDQ" => "pdq", "HASH_MD5" => "md5", _ => "video_md5" }) + ":" + i.Indicator)];

    private static TeIndicator NewIndicator(Random rng, long id, long updated)
    {
        var kind = rng.Next(8);
        var (type, value) = kind switch
        {
            < 4 => ("HASH_PDQ", Hex(rng, 32)),
            < 6 => ("HASH_MD5", Hex(rng, 16)),
            6 => ("HASH_VIDEO_MD5", Hex(rng, 16)),
            _ => ("URI", "https://example.org/" + Hex(rng, 4)),
        };
        return new TeIndicator(id, type, value, updated, false, rng.Next(2) == 0 ? ["tag_a"] : ["tag_b", "tag_c"]);
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task ThreatExchange_threat_updates_sync_with_checkpoint_deletions_and_paging(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var server = new FakeThreatExchange(1012185296055235);
        using var http = new HttpClient();
        var env = new Dictionary<string, string> { ["TX_TOKEN"] = server.Token };
        var log = new List<string>();
        var runtime = Runtime(http, env, log);
        var (banks, exchanges, x) = Open(db, ExchangeTypes.ThreatExchange, $$"""{"privacy_group":{{server.PrivacyGroup}},"base_url":"{{server.BaseUrl}}","credentials_env":"TX_TOKEN","page_size":25}""");
        var rng = new Random(9);
        var t0 = DateTimeOffset.UtcNow.AddDays(-5).ToUnixTimeSeconds();
        for (var i = 1; i <= 200; i++)
        {
            server.Put(NewIndicator(rng, 1000 + i, t0 + (i / 3)));
        }

        var first = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(Expected(server), Live(banks, x));
        Assert.Equal(server.Live().Count(i => i.Type == "URI"), first.Unsupported.GetValueOrDefault("URI"));
        Assert.True(server.Requests.Count >= 8); // paged by 25
        var checkpoint = JsonDocument.Parse(exchanges.State(x.Id).Checkpoint!).RootElement.GetProperty("update_time").GetInt64();
        Assert.Equal(t0 + (200 / 3), checkpoint);
        var tagged = banks.ExportEntries(x.BankId).First();
        Assert.StartsWith("tag_", tagged.Labels["te_tags"], StringComparison.Ordinal);
        Assert.Equal("MALICIOUS", tagged.Labels["te_status"]);

        // Deletions (should_delete), updates and new indicators; the next pass starts at the checkpoint.
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var live = server.Live();
        foreach (var i in live.Take(30))
        {
            server.Put(i with { Deleted = true, Updated = now });
        }

        foreach (var i in live.Skip(30).Take(10))
        {
            server.Put(i with { Tags = ["retagged"], Updated = now });
        }

        for (var i = 0; i < 20; i++)
        {
            server.Put(NewIndicator(rng, 5000 + i, now));
        }

        var requestsBefore = server.Requests.Count;
        server.Faults.Enqueue((503, 1));
        var second = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(Expected(server), Live(banks, x));
        Assert.True(second.Tombstones >= 30);
        Assert.True(server.Requests.Count - requestsBefore <= 5); // from the checkpoint, not from the start
        Assert.Contains(server.Requests.Skip(requestsBefore), r => r.PathAndQuery.Contains($"start_time={checkpoint}", StringComparison.Ordinal));
        Assert.Equal("retagged", banks.ExportEntries(x.BankId).First(e => e.Labels["te_indicator_id"] == live[35].Id.ToString(System.Globalization.CultureInfo.InvariantCulture)).Labels["te_tags"]);

        // A paging link to another host would carry the token there: refused, and the checkpoint holds.
        server.NextHostOverride = "192.0.2.1:80";
        for (var i = 0; i < 60; i++)
        {
            server.Put(NewIndicator(rng, 7000 + i, now + 1));
        }

        var stored = exchanges.State(x.Id).Checkpoint;
        var elsewhere = await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, runtime));
        Assert.Contains("another server", elsewhere.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(log, l => l.Contains(server.Token, StringComparison.Ordinal));
        Assert.DoesNotContain(server.Token, elsewhere.Message, StringComparison.Ordinal);
        Assert.NotNull(stored);

        // A bad token: ThreatExchange's OAuthException 400, a clear failure.
        server.NextHostOverride = null;
        env["TX_TOKEN"] = "1234567890|wrong";
        var refused = await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, runtime));
        Assert.Contains("HTTP 400", refused.Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_peer_exchange_mirrors_a_bank_of_a_second_real_Warden_server(SqlDialect dialect)
    {
        await using var peer = await TestServer.StartAsync(dialect);
        using var api = peer.Client(Role.Curator);
        (await api.PostAsJsonAsync("v1/banks", new { name = "shared" })).EnsureSuccessStatusCode();
        var rng = new Random(3);
        var ids = new List<long>();
        for (var i = 0; i < 60; i++)
        {
            var (type, signal) = i % 3 == 0 ? ("pdq", Hex(rng, 32)) : ("md5", Hex(rng, 16));
            var r = await api.PostAsJsonAsync("v1/banks/shared/entries", new { signal_type = type, signal, labels = new { category = "test", n = i.ToString(System.Globalization.CultureInfo.InvariantCulture) } });
            r.EnsureSuccessStatusCode();
            ids.Add((await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64());
        }

        async Task<HashSet<string>> RemoteLive()
        {
            var list = await api.GetFromJsonAsync<JsonElement>("v1/banks/shared/entries?limit=10000");
            return [.. list.EnumerateArray().Where(e => e.GetProperty("enabled").GetBoolean() && !e.GetProperty("deleted").GetBoolean()).Select(e => e.GetProperty("signal_type").GetString() + ":" + e.GetProperty("signal").GetString())];
        }

        await using var db = await TestDatabases.CreateAsync(dialect);
        using var http = new HttpClient();
        var env = new Dictionary<string, string> { ["PEER_KEY"] = peer.Key(Role.Curator) };
        var runtime = Runtime(http, env);
        var (banks, exchanges, x) = Open(db, ExchangeTypes.Peer, $$"""{"flavor":"warden","base_url":"{{peer.BaseAddress.AbsoluteUri.TrimEnd('/')}}","remote_bank":"shared","api_key_env":"PEER_KEY","page_size":25}""");
        var first = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(60, first.Entries);
        Assert.Equal(await RemoteLive(), Live(banks, x));
        Assert.Equal("test", banks.ExportEntries(x.BankId).First().Labels["category"]);

        // On the peer: deletions, a disabled entry, new entries. Only the changes travel.
        foreach (var id in ids.Take(5))
        {
            (await api.DeleteAsync($"v1/entries/{id}")).EnsureSuccessStatusCode();
        }

        (await api.PatchAsJsonAsync($"v1/entries/{ids[10]}", new { enabled = false })).EnsureSuccessStatusCode();
        for (var i = 0; i < 7; i++)
        {
            (await api.PostAsJsonAsync("v1/banks/shared/entries", new { signal_type = "sha1", signal = Hex(rng, 20) })).EnsureSuccessStatusCode();
        }

        var second = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(7, second.Entries);
        Assert.Equal(6, second.Tombstones);
        Assert.Equal(await RemoteLive(), Live(banks, x));

        // Enabled again: it comes back.
        (await api.PatchAsJsonAsync($"v1/entries/{ids[10]}", new { enabled = true })).EnsureSuccessStatusCode();
        var third = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(1, third.Entries);
        Assert.Equal(await RemoteLive(), Live(banks, x));

        // No key, or a bank the peer does not have: clear failures, the mirror stays.
        env.Remove("PEER_KEY");
        Assert.Contains("PEER_KEY", (await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, runtime))).Message, StringComparison.Ordinal);
        env["PEER_KEY"] = peer.Key(Role.Submitter);
        Assert.Contains("refused the credentials", (await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, runtime))).Message, StringComparison.Ordinal);
        Assert.Equal(await RemoteLive(), Live(banks, x));
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task An_HMA_flavour_peer_mirrors_a_Warden_bank_through_HMAs_single_item_route(SqlDialect dialect)
    {
        // Warden serves GET /c/bank/<name>/content/<id> in HMA's shape; the hma-flavour peer walks it as it walks HMA.
        await using var peer = await TestServer.StartAsync(dialect);
        using var api = peer.Client(Role.Curator);
        (await api.PostAsJsonAsync("c/banks", new { name = "SHARED" })).EnsureSuccessStatusCode();
        (await api.PostAsJsonAsync("c/banks", new { name = "OTHER" })).EnsureSuccessStatusCode();
        var rng = new Random(11);
        var ids = new List<long>();
        for (var i = 0; i < 40; i++)
        {
            // Interleaved with another bank's entries: the walk sees their ids and leaves them out.
            var bank = i % 4 == 3 ? "OTHER" : "SHARED";
            var r = await api.PostAsJsonAsync($"c/bank/{bank}/signal", i % 2 == 0 ? new Dictionary<string, string> { ["pdq"] = Hex(rng, 32) } : new Dictionary<string, string> { ["md5"] = Hex(rng, 16) });
            r.EnsureSuccessStatusCode();
            var id = (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64();
            if (bank == "SHARED")
            {
                ids.Add(id);
            }
        }

        async Task<HashSet<string>> RemoteLive()
        {
            var list = await api.GetFromJsonAsync<JsonElement>("v1/banks/SHARED/entries?limit=10000");
            return [.. list.EnumerateArray().Where(e => e.GetProperty("enabled").GetBoolean() && !e.GetProperty("deleted").GetBoolean()).Select(e => e.GetProperty("signal_type").GetString() + ":" + e.GetProperty("signal").GetString())];
        }

        // HMA's shape, field for field.
        var item = await api.GetFromJsonAsync<JsonElement>($"c/bank/SHARED/content/{ids[0]}?include_signals=true");
        Assert.Equal(["id", "disable_until_ts", "collab_metadata", "original_media_uri", "bank", "signals"], item.EnumerateObject().Select(p => p.Name));
        Assert.Equal(ids[0], item.GetProperty("id").GetInt64());
        Assert.Equal(1, item.GetProperty("disable_until_ts").GetInt64());
        Assert.Equal(JsonValueKind.Null, item.GetProperty("original_media_uri").ValueKind);
        Assert.Equal("SHARED", item.GetProperty("bank").GetProperty("name").GetString());
        Assert.Equal(1.0, item.GetProperty("bank").GetProperty("matching_enabled_ratio").GetDouble());
        Assert.Equal(64, item.GetProperty("signals").GetProperty("pdq").GetString()!.Length);
        Assert.False((await api.GetFromJsonAsync<JsonElement>($"c/bank/SHARED/content/{ids[0]}")).TryGetProperty("signals", out _));
        foreach (var path in new[] { "c/bank/NOPE/content/1", "c/bank/SHARED/content/abc", "c/bank/SHARED/content/-1", "c/bank/SHARED/content/0", "c/bank/SHARED/content/99999999999999999999", "c/bank/SHARED/content/987654" })
        {
            using var missing = await api.GetAsync(path);
            Assert.Equal(404, (int)missing.StatusCode);
            Assert.Contains("json", missing.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        }

        await using var db = await TestDatabases.CreateAsync(dialect);
        using var http = new HttpClient();
        var env = new Dictionary<string, string> { ["PEER_KEY"] = peer.Key(Role.Curator) };
        var runtime = Runtime(http, env);
        var (banks, exchanges, x) = Open(db, ExchangeTypes.Peer, $$"""{"flavor":"hma","base_url":"{{peer.BaseAddress.AbsoluteUri.TrimEnd('/')}}","remote_bank":"SHARED","api_key_env":"PEER_KEY","max_id_gap":20}""");
        var first = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(30, first.Entries);
        Assert.Equal(await RemoteLive(), Live(banks, x));

        // On the Warden peer: deletions and a disabled entry are tombstoned here; new entries arrive.
        foreach (var id in ids.Take(4))
        {
            (await api.DeleteAsync($"v1/entries/{id}")).EnsureSuccessStatusCode();
        }

        (await api.PatchAsJsonAsync($"v1/entries/{ids[10]}", new { enabled = false })).EnsureSuccessStatusCode();
        Assert.Equal(0, (await api.GetFromJsonAsync<JsonElement>($"c/bank/SHARED/content/{ids[10]}")).GetProperty("disable_until_ts").GetInt64());
        for (var i = 0; i < 5; i++)
        {
            (await api.PostAsJsonAsync("c/bank/SHARED/signal", new Dictionary<string, string> { ["sha1"] = Hex(rng, 20) })).EnsureSuccessStatusCode();
        }

        var second = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(5, second.Tombstones);
        Assert.Equal(await RemoteLive(), Live(banks, x));
        Assert.Equal(30 - 5 + 5, Live(banks, x).Count);
    }

    [Theory]
    [InlineData("v1/banks/nope/changes", 404)]
    [InlineData("v1/banks/shared/changes?after_seq=-1", 400)]
    [InlineData("v1/banks/shared/changes?after_seq=abc", 400)]
    [InlineData("v1/banks/shared/changes?limit=zero", 400)]
    [InlineData("v1/banks/shared/changes?after_seq=99999999999999999999999", 400)]
    public async Task The_change_listing_answers_bad_requests_with_a_problem(string path, int status)
    {
        await using var server = await TestServer.StartAsync(SqlDialect.Sqlite);
        using var api = server.Client(Role.Curator);
        (await api.PostAsJsonAsync("v1/banks", new { name = "shared" })).EnsureSuccessStatusCode();
        using var response = await api.GetAsync(path);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var anonymous = server.Client(null);
        Assert.Equal(401, (int)(await anonymous.GetAsync("v1/banks/shared/changes")).StatusCode);
        using var submitter = server.Client(Role.Submitter);
        Assert.Equal(403, (int)(await submitter.GetAsync("v1/banks/shared/changes")).StatusCode);
        var empty = await api.GetFromJsonAsync<JsonElement>("v1/banks/shared/changes?after_seq=1000000");
        Assert.Equal(0, empty.GetProperty("entries").GetArrayLength());
        Assert.False(empty.GetProperty("has_more").GetBoolean());
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_peer_exchange_mirrors_an_HMA_bank_by_walking_its_content(SqlDialect dialect)
    {
        await using var db = await TestDatabases.CreateAsync(dialect);
        await using var hma = new FakeHma();
        hma.Banks.Add("PARTNER");
        hma.Banks.Add("OTHER");
        var rng = new Random(4);
        for (var id = 1; id <= 80; id++)
        {
            if (id % 11 == 0)
            {
                continue; // deleted content: a gap in the ids
            }

            var signals = new Dictionary<string, string> { ["pdq"] = Hex(rng, 32) };
            if (id % 4 == 0)
            {
                signals["video_md5"] = Hex(rng, 16);
            }

            if (id % 9 == 0)
            {
                signals["clip"] = "0.1,0.2"; // a signal type this Warden does not have
            }

            hma.Put(new HmaContent(id, id % 5 == 0 ? "OTHER" : "PARTNER", id % 7 != 0, signals));
        }

        HashSet<string> Expected() =>
            [.. hma.All.Where(c => c.Bank == "PARTNER" && c.Enabled).SelectMany(c => c.Signals.Where(s => s.Key != "clip").Select(s => s.Key + ":" + s.Value))];

        using var http = new HttpClient();
        var runtime = Runtime(http, []);
        var (banks, exchanges, x) = Open(db, ExchangeTypes.Peer, $$"""{"flavor":"hma","base_url":"{{hma.BaseUrl}}","remote_bank":"PARTNER","max_id_gap":20,"parallel":4}""");
        var first = await SyncAsync(banks, exchanges, x, runtime);
        Assert.Equal(Expected(), Live(banks, x));
        Assert.Equal(hma.All.Count(c => c.Bank == "PARTNER" && c.Enabled && c.Signals.ContainsKey("clip")), first.Unsupported.GetValueOrDefault("clip"));
        Assert.All(hma.Requests, r => Assert.Equal("GET", r.Method));

        // Removed and disabled content is tombstoned; new content (past a gap) arrives.
        hma.Remove(1);
        hma.Put(hma.All.First(c => c.Id == 2) with { Enabled = false });
        hma.Put(new HmaContent(95, "PARTNER", true, new Dictionary<string, string> { ["pdq"] = Hex(rng, 32) }));
        var second = await SyncAsync(banks, exchanges, x, runtime);
        Assert.True(second.Tombstones >= 2);
        Assert.Equal(Expected(), Live(banks, x));

        // The bank gone on the peer: the pass fails, the mirror is not emptied.
        hma.Banks.Remove("PARTNER");
        await Assert.ThrowsAsync<ExchangeException>(() => SyncAsync(banks, exchanges, x, runtime));
        Assert.Equal(Expected(), Live(banks, x));
    }

    [Theory]
    [InlineData("stopncii", """{}""", "credentials_env")]
    [InlineData("stopncii", """{"credentials_env":"abc,def"}""", "NAME of an environment variable")]
    [InlineData("stopncii", """{"credentials_env":"K","base_url":"http://example.org/v1"}""", "https")]
    [InlineData("stopncii", """{"credentials_env":"K","page_size":0}""", "page_size")]
    [InlineData("stopncii", """{"credentials_env":"K","surprise":1}""", "Unknown")]
    [InlineData("stopncii", """{"credentials_env":"K","feedback_tags":[1]}""", "feedback_tags")]
    [InlineData("fb_threatexchange", """{"credentials_env":"T"}""", "privacy_group")]
    [InlineData("fb_threatexchange", """{"privacy_group":1,"credentials_env":"123|abc"}""", "NAME of an environment variable")]
    [InlineData("fb_threatexchange", """{"privacy_group":-3,"credentials_env":"T"}""", "privacy_group")]
    [InlineData("fb_threatexchange", """{"privacy_group":1,"credentials_env":"T","types":["hash pdq"]}""", "types")]
    [InlineData("fb_threatexchange", """{"privacy_group":1,"credentials_env":"T","base_url":"https://u:p@graph.facebook.com"}""", "user info")]
    [InlineData("peer", """{"base_url":"https://peer.example.org"}""", "remote_bank")]
    [InlineData("peer", """{"remote_bank":"b"}""", "base_url")]
    [InlineData("peer", """{"remote_bank":"b","base_url":"https://p.example.org","flavor":"ftp"}""", "flavor")]
    [InlineData("peer", """{"remote_bank":"../admin","base_url":"https://p.example.org"}""", "remote_bank")]
    [InlineData("peer", """{"remote_bank":"b","base_url":"https://p.example.org/?q=1"}""", "base_url")]
    [InlineData("peer", """{"remote_bank":"b","base_url":"https://p.example.org","parallel":1000}""", "parallel")]
    [InlineData("peer", """[1]""", "object")]
    public void Bad_configs_are_refused_naming_the_field(string type, string json, string expected)
    {
        var ex = Assert.Throws<ExchangeConfigException>(() => ExchangeTypes.Get(type).Validate(JsonDocument.Parse(json).RootElement));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"count":1}""")] // no hasMoreRecords
    [InlineData("""{"hasMoreRecords":false}""")] // no nextSetTimestamp
    [InlineData("""{"hasMoreRecords":true,"nextSetTimestamp":5,"hashRecords":[]}""")] // more, but no token
    [InlineData("""{"hasMoreRecords":false,"nextSetTimestamp":5,"hashRecords":{"a":1}}""")]
    [InlineData("""not json""")]
    [InlineData("""[]""")]
    public async Task Hostile_StopNCII_pages_fail_the_pass_and_commit_nothing(string page)
    {
        using var http = new HttpClient(new FixedHandler(page));
        var runtime = Runtime(http, new Dictionary<string, string> { ["K"] = "a,b" });
        var fetcher = ExchangeTypes.StopNcii.CreateFetcher(ExchangeTypes.StopNcii.Validate(JsonDocument.Parse("""{"credentials_env":"K"}""").RootElement), runtime);
        await Assert.ThrowsAsync<ExchangeException>(async () =>
        {
            await foreach (var d in fetcher.FetchAsync(null, CancellationToken.None))
            {
                Assert.Fail("A hostile page yielded a delta: " + d.Checkpoint);
            }
        });
    }

    [Theory]
    [InlineData("fb_threatexchange", """{"paging":{}}""")] // no data list
    [InlineData("fb_threatexchange", """{"data":{"id":1}}""")]
    [InlineData("fb_threatexchange", """{"data":[],"paging":{"next":"https://elsewhere.example/v21.0/1/threat_updates?access_token=x"}}""")]
    [InlineData("fb_threatexchange", """{"data":[],"paging":{"next":"not a url"}}""")]
    [InlineData("fb_threatexchange", """[]""")]
    [InlineData("fb_threatexchange", """{"data":[""")]
    [InlineData("peer", """{"entries":[],"has_more":false}""")] // no high_water
    [InlineData("peer", """{"high_water":"x","entries":[],"has_more":false}""")]
    [InlineData("peer", """{"high_water":0,"entries":[],"has_more":true}""")] // more, but the cursor does not move
    [InlineData("peer", """{"high_water":5,"entries":{},"has_more":false}""")]
    [InlineData("peer", """{"high_water":5,"entries":[],"has_more":"no"}""")]
    [InlineData("peer", """null""")]
    public async Task Hostile_ThreatExchange_and_peer_pages_fail_the_pass_and_commit_nothing(string type, string page)
    {
        using var http = new HttpClient(new FixedHandler(page));
        var runtime = Runtime(http, new Dictionary<string, string> { ["K"] = "1234567890|abc" });
        var config = type == "peer"
            ? """{"base_url":"https://peer.example.org","remote_bank":"b","api_key_env":"K"}"""
            : """{"privacy_group":1,"base_url":"https://graph.example.org/v21.0","credentials_env":"K"}""";
        var t = ExchangeTypes.Get(type);
        var fetcher = t.CreateFetcher(t.Validate(JsonDocument.Parse(config).RootElement), runtime);
        var deltas = 0;
        await Assert.ThrowsAsync<ExchangeException>(async () =>
        {
            await foreach (var d in fetcher.FetchAsync(null, CancellationToken.None))
            {
                deltas++;
                Assert.True(deltas < 3, "a hostile page kept the fetch going");
            }
        });
    }

    [Fact]
    public async Task Malformed_ThreatExchange_and_peer_items_are_skipped_and_counted()
    {
        var te = """
            {"data":[
              {"id":"1","type":"HASH_PDQ","indicator":"zz","last_updated":10,"should_delete":false,"descriptors":{"data":[]}},
              {"id":"x2","type":"HASH_MD5","indicator":"d41d8cd98f00b204e9800998ecf8427e","last_updated":11,"descriptors":{"data":[]}},
              {"id":"3","type":"HASH_MD5","indicator":"d41d8cd98f00b204e9800998ecf8427e","last_updated":12,"should_delete":false,"descriptors":{"data":[{"tags":[1,{"text":"ok"}],"owner":"bad","status":7}]}},
              {"id":"4","type":"HASH_MD5","last_updated":13,"should_delete":true},
              "text",
              {"id":"5","type":"URI","indicator":"https://example.org","last_updated":99999999999,"descriptors":{"data":[]}}
            ]}
            """;
        using var http = new HttpClient(new FixedHandler(te));
        var runtime = Runtime(http, new Dictionary<string, string> { ["K"] = "1234567890|abc" });
        var fetcher = ExchangeTypes.ThreatExchange.CreateFetcher(ExchangeTypes.ThreatExchange.Validate(JsonDocument.Parse("""{"privacy_group":1,"credentials_env":"K"}""").RootElement), runtime);
        var deltas = new List<ExchangeDelta>();
        await foreach (var d in fetcher.FetchAsync(null, CancellationToken.None))
        {
            deltas.Add(d);
        }

        var delta = Assert.Single(deltas);
        Assert.Equal(1, delta.Entries); // id 3, its odd tags and owner ignored
        Assert.Equal(1, delta.Tombstones);
        Assert.Equal(3, delta.Errors); // a bad PDQ, a non-numeric id, a non-object
        Assert.Equal(1, delta.Unsupported["URI"]);
        Assert.Equal("ok", delta.Records.Single(r => !r.Deleted).Labels["te_tags"]);

        // The checkpoint never passes now, even when an update claims a time in the future.
        Assert.True(JsonDocument.Parse(delta.Checkpoint).RootElement.GetProperty("update_time").GetInt64() <= DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    [Fact]
    public async Task Malformed_StopNCII_records_are_skipped_and_counted()
    {
        var page = new JsonObject
        {
            ["hasMoreRecords"] = false,
            ["nextSetTimestamp"] = 100,
            ["hashRecords"] = new JsonArray(
                new JsonObject { ["signalType"] = "ImagePDQ", ["hashValue"] = "not-a-pdq", ["hashStatus"] = "Active" },
                new JsonObject { ["hashValue"] = new string('a', 64) },
                new JsonObject { ["signalType"] = "ImagePDQ", ["hashValue"] = new string('b', 64), ["hashStatus"] = "Active" },
                new JsonObject { ["signalType"] = "VideoTMK", ["hashValue"] = "opaque", ["hashStatus"] = "Active" },
                7),
        };
        using var http = new HttpClient(new FixedHandler(page.ToJsonString()));
        var runtime = Runtime(http, new Dictionary<string, string> { ["K"] = "a,b" });
        var fetcher = ExchangeTypes.StopNcii.CreateFetcher(ExchangeTypes.StopNcii.Validate(JsonDocument.Parse("""{"credentials_env":"K"}""").RootElement), runtime);
        var deltas = new List<ExchangeDelta>();
        await foreach (var d in fetcher.FetchAsync(null, CancellationToken.None))
        {
            deltas.Add(d);
        }

        var delta = Assert.Single(deltas);
        Assert.Equal(1, delta.Entries);
        Assert.Equal(3, delta.Errors);
        Assert.Equal(1, delta.Unsupported["VideoTMK"]);
        Assert.Equal(100, JsonDocument.Parse(delta.Checkpoint).RootElement.GetProperty("start").GetInt64());
    }

    private sealed class FixedHandler(string body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent(body, new MediaTypeHeaderValue("application/json")) });
    }
}
