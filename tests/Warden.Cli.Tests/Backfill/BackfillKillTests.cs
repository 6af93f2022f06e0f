using System.Collections.Concurrent;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.Core.Banks;
using Warden.Core.Hashing;
using Warden.Core.Tests;
using Warden.Storage;

namespace Warden.Cli.Tests.Backfill;

/// <summary>
/// A backfill of a folder over three worker processes, one SIGKILLed in the middle of an item and the NATS
/// server restarted mid-run: every file is processed, logged once, every match recorded exactly once, and each
/// match handed to exactly one actor.
/// </summary>
public sealed class BackfillKillTests : IDisposable
{
    private const int Files = 24;
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-backfill-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [SkippableFact]
    public void Every_file_once_and_every_match_exactly_once_despite_a_killed_worker_and_a_broker_restart()
    {
        Skip.If(NatsProcess.Missing is not null, NatsProcess.Missing);
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "uploads")).FullName;
        var db = Path.Combine(_dir, "warden.db");
        var paths = new List<string>();
        for (var i = 0; i < Files; i++)
        {
            var path = Path.Combine(folder, $"img-{i:D2}.png");
            File.WriteAllBytes(path, SyntheticImages.Encode(SyntheticImages.Blobs(96, 96, 100 + i), 96, 96, "png"));
            paths.Add(path);
        }

        // The bank knows a third of the files by PDQ and one more by MD5.
        var expected = new HashSet<(string Source, long Entry, string Type)>();
        using (var store = BankStore.Open(db))
        using (var hasher = new ContentHasher())
        {
            var bank = store.CreateBank("known");
            var hashes = paths.Select(p => hasher.HashFile(p, dihedral: true)).ToList();
            var records = Enumerable.Range(0, Files / 3).Select(i => new BankEntryRecord("pdq", hashes[i * 3].Image!.Pdq.Hash.ToString(), new Dictionary<string, string>())).ToList();
            records.Add(new BankEntryRecord("md5", hashes[1].Exact.Md5Hex, new Dictionary<string, string>()));
            store.Import(bank.Id, records, "test");
            using var matcher = new BankMatcher(store.ListBanks());
            store.ReadIndex(e => matcher.Add(e.Id, e.BankId, e.SignalType, e.Signal));
            for (var i = 0; i < Files; i++)
            {
                foreach (var h in matcher.Match(hashes[i].ToSignals()).Where(h => !h.Suppressed))
                {
                    expected.Add((paths[i], h.EntryId, h.SignalType));
                }
            }
        }

        Assert.True(expected.Count >= Files / 3 + 1, "the fixture must have matches to check");
        using var nats = NatsProcess.Start(Directory.CreateDirectory(Path.Combine(_dir, "js")).FullName);
        var queue = "KILLTEST";
        var (code, _, err) = Cli.Run("backfill", folder, "--nats", nats.Url, "--queue", queue);
        Assert.True(code == 0, err);

        var lines = new ConcurrentQueue<(string Worker, JsonElement Line)>();
        using var a = Workers.Start("a", db, nats.Url, queue, 5000, lines, exitWhenIdle: null);
        using var b = Workers.Start("b", db, nats.Url, queue, 120, lines, exitWhenIdle: 4);
        using var c = Workers.Start("c", db, nats.Url, queue, 120, lines, exitWhenIdle: 4);

        // Worker a takes an item and sits on it: SIGKILL it mid-item.
        var killedKey = Workers.WaitFor(() => lines.FirstOrDefault(l => l.Worker == "a" && l.Line.GetProperty("event").GetString() == "start").Line, 60);
        a.Kill(); // SIGKILL on Linux
        a.WaitForExit();
        Assert.DoesNotContain(lines, l => l.Worker == "a" && l.Line.GetProperty("event").GetString() == "done");

        // Restart the broker once a third of the work is done.
        Workers.WaitFor(() => lines.Count(l => l.Line.GetProperty("event").GetString() == "done") >= Files / 3 ? "ok" : null, 60);
        nats.Restart();

        Assert.True(b.WaitForExit(90_000) && c.WaitForExit(30_000), "workers b and c should finish the queue and exit");
        var key = killedKey.GetProperty("key").GetString()!;
        Assert.Contains(lines, l => l.Worker != "a" && l.Line.GetProperty("event").GetString() == "done" && l.Line.GetProperty("key").GetString() == key);

        using var database = WardenDatabase.Open(db);
        var log = new Storage.SignalLog(database, Path.Combine(_dir, "snap"));
        using var conn = database.OpenConnection();
        var logged = log.Partitions().SelectMany(d => conn.Query<string>($"SELECT content_id FROM signal_log_{d}")).ToList();
        Assert.Equal(paths.Order(), logged.Order()); // every file, once
        Assert.Equal(Files, conn.ExecuteScalar<long>("SELECT COUNT(*) FROM backfill_items"));
        var matches = log.Matches("backfill");
        Assert.Equal(expected, matches.Select(m => (m.Match.ContentId!, m.Match.EntryId, m.Match.SignalType)).ToHashSet());
        Assert.Equal(expected.Count, matches.Count);

        var (statusCode, status, _) = Cli.Run("backfill", "status", "--nats", nats.Url, "--queue", queue, "--db", db, "--format", "jsonl");
        Assert.Equal(0, statusCode);
        var s = JsonDocument.Parse(status).RootElement;
        Assert.Equal((Files, 0, 0), (s.GetProperty("enqueued").GetInt64(), s.GetProperty("waiting").GetInt64(), s.GetProperty("dead_lettered").GetInt64()));

        // Two actors (two server nodes) claim concurrently: each match goes to exactly one of them.
        var claimed = new ConcurrentBag<string>();
        Parallel.For(0, 2, _ =>
        {
            while (log.ClaimUnacted(3) is { Count: > 0 } batch)
            {
                foreach (var m in batch)
                {
                    claimed.Add(m.Key);
                }
            }
        });
        Assert.Equal(matches.Select(m => m.Match.Key).Order(), claimed.Order());
    }
}
