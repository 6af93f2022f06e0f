using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Banks;
using Warden.Server.Auth;
using Warden.Server.Index;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>The server starts from its index snapshot and still sees every change made since it was taken.</summary>
[Collection("snapshot")] // changes a static threshold
public sealed class SnapshotTests
{
    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task A_restart_loads_the_snapshot_and_applies_later_changes(SqlDialect dialect)
    {
        var saved = LiveIndex.MinEntriesToSnapshot;
        LiveIndex.MinEntriesToSnapshot = 1;
        var cache = Directory.CreateTempSubdirectory("warden-xdg-").FullName;
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", cache);
        try
        {
            await using var db = await TestDatabases.CreateAsync(dialect);
            long firstId, laterId;
            using (var store = BankStore.Open(db.Target))
            {
                var bank = store.CreateBank("snap");
                store.Import(bank.Id, [new BankEntryRecord("md5", new string('a', 32), new Dictionary<string, string>()), new BankEntryRecord("md5", new string('b', 32), new Dictionary<string, string>())], "t");
                firstId = store.ExportEntries(bank.Id).First(e => e.Signal == new string('b', 32)).Id;
            }

            await using (var first = await TestServer.StartAsync(db.Target))
            {
                Assert.False(first.App.Services.GetRequiredService<LiveIndex>().StartedFromSnapshot);
            }

            // While no server runs: one entry added, one deleted.
            using (var store = BankStore.Open(db.Target))
            {
                var bank = store.RequireBank("snap");
                store.Import(bank.Id, [new BankEntryRecord("md5", new string('c', 32), new Dictionary<string, string>())], "t");
                laterId = store.ExportEntries(bank.Id).First(e => e.Signal == new string('c', 32)).Id;
                Assert.True(store.DeleteEntry(firstId));
            }

            await using var second = await TestServer.StartAsync(db.Target);
            Assert.True(second.App.Services.GetRequiredService<LiveIndex>().StartedFromSnapshot);
            using var client = second.Client(Role.Submitter);
            async Task<long[]> Hits(char c) => JsonDocument.Parse(await client.GetStringAsync($"v1/match?signal_type=md5&signal={new string(c, 32)}"))
                .RootElement.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("entry_id").GetInt64()).ToArray();
            Assert.Single(await Hits('a'));
            Assert.Empty(await Hits('b'));
            Assert.Equal([laterId], await Hits('c'));
        }
        finally
        {
            LiveIndex.MinEntriesToSnapshot = saved;
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", null);
            Directory.Delete(cache, recursive: true);
        }
    }
}

/// <summary>The snapshot test changes process-wide settings, so it runs alone.</summary>
[CollectionDefinition("snapshot", DisableParallelization = true)]
public sealed class SnapshotTestGroup;
