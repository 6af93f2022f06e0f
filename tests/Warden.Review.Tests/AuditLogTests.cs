using System.Globalization;
using CsvHelper;
using Dapper;
using Microsoft.Data.Sqlite;
using Warden.Review.Audit;

namespace Warden.Review.Tests;

public sealed class AuditLogTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private (AuditLog Log, string DbPath) NewLog(TimeProvider? time = null)
    {
        var db = _dir.OpenDatabase();
        return (new AuditLog(new DbAuditStore(db), time), db.Database.FilePath!);
    }

    private static void Fill(AuditLog log, int n)
    {
        for (var i = 0; i < n; i++)
        {
            log.Append(new AuditEntry($"user:u{i % 3}", i % 2 == 0 ? "evidence.view" : "cluster.decide", $"case:{i % 4}", new Dictionary<string, string> { ["i"] = i.ToString(CultureInfo.InvariantCulture), ["note"] = "a, \"quoted\"\nline" }));
        }
    }

    [Fact]
    public void Appends_form_a_chain_that_verifies()
    {
        var (log, _) = NewLog();
        Fill(log, 25);
        var records = log.Query().ToList();
        Assert.Equal(Enumerable.Range(1, 25).Select(i => (long)i), records.Select(r => r.Seq));
        Assert.Equal(AuditLog.GenesisHash.ToArray(), records[0].PrevHash);
        for (var i = 1; i < records.Count; i++)
        {
            Assert.Equal(records[i - 1].Hash, records[i].PrevHash);
        }

        Assert.Equal(new AuditVerification(true, 25, null, null), log.Verify());
    }

    [Fact]
    public void Triggers_refuse_update_and_delete()
    {
        var (log, path) = NewLog();
        Fill(log, 3);
        using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        c.Open();
        var update = Assert.Throws<SqliteException>(() => c.Execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"));
        Assert.Contains("append-only", update.Message, StringComparison.Ordinal);
        Assert.Throws<SqliteException>(() => c.Execute("DELETE FROM audit_log WHERE seq = 3"));
        Assert.True(log.Verify().Ok);
    }

    [Fact]
    public void Verify_pinpoints_an_edited_record_after_the_trigger_is_dropped()
    {
        var (log, path) = NewLog();
        Fill(log, 10);
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            c.Execute("DROP TRIGGER audit_log_no_update");
            c.Execute("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 6");
        }

        var v = log.Verify();
        Assert.False(v.Ok);
        Assert.Equal(6, v.FirstBrokenSeq);
        Assert.Contains("edited", v.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_finds_a_rehashed_edit_by_the_broken_link_and_a_deleted_record_by_the_gap()
    {
        var (log, path) = NewLog();
        Fill(log, 10);
        var r4 = log.Query().Single(r => r.Seq == 4);
        var forgedHash = AuditLog.ComputeHash(r4.PrevHash, 4, r4.At, "user:mallory", r4.Action, r4.Subject, r4.Details);
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            c.Execute("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;");
            c.Execute("UPDATE audit_log SET actor = 'user:mallory', hash = @h WHERE seq = 4", new { h = forgedHash });
        }

        // The forger recomputed record 4's hash, so record 5's link breaks.
        Assert.Equal(5, log.Verify().FirstBrokenSeq);

        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            c.Execute("DELETE FROM audit_log WHERE seq = 2");
        }

        var v = log.Verify();
        Assert.Equal(3, v.FirstBrokenSeq);
        Assert.Contains("missing", v.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parallel_appends_keep_one_chain()
    {
        var (log, path) = NewLog();

        // Two stores over one file: the in-process lock does not cover both, the IMMEDIATE transaction must.
        var other = new AuditLog(new DbAuditStore(Storage.ReviewDatabase.Open(path)));
        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var target = t % 2 == 0 ? log : other;
            for (var i = 0; i < 40; i++)
            {
                target.Append(new AuditEntry($"user:t{t}", "test.append", $"n:{i}"));
            }
        }));
        await Task.WhenAll(tasks);
        var v = log.Verify();
        Assert.True(v.Ok, v.Reason);
        Assert.Equal(320, v.RecordsChecked);
        Assert.Equal(40, log.Query(new AuditFilter(Actor: "user:t3")).Count());
    }

    [Fact]
    public void Filters_select_by_actor_action_subject_and_time()
    {
        var time = new ManualTime(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var (log, _) = NewLog(time);
        for (var i = 0; i < 12; i++)
        {
            log.Append(new AuditEntry($"user:u{i % 3}", i % 2 == 0 ? "evidence.view" : "cluster.decide", $"case:{i % 4}"));
            time.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Equal(4, log.Query(new AuditFilter(Actor: "user:u1")).Count());
        Assert.Equal(6, log.Query(new AuditFilter(Action: "evidence.view")).Count());
        Assert.All(log.Query(new AuditFilter(Subject: "case:2")), r => Assert.Equal("case:2", r.Subject));
        var window = log.Query(new AuditFilter(From: time.Now.AddMinutes(-12).AddMinutes(3), To: time.Now.AddMinutes(-12).AddMinutes(6))).ToList();
        Assert.Equal([4L, 5L, 6L], window.Select(r => r.Seq));
        Assert.Equal([3L, 6L], log.Query(new AuditFilter(Actor: "user:u2", Subject: "case:2", Action: "evidence.view")).Select(r => r.Seq).Concat(
            log.Query(new AuditFilter(Actor: "user:u2", Subject: "case:1", Action: "cluster.decide")).Select(r => r.Seq)).Order());
    }

    [Fact]
    public void Csv_export_round_trips_fields_with_commas_quotes_and_newlines()
    {
        var (log, _) = NewLog();
        Fill(log, 5);
        using var sw = new StringWriter();
        log.ExportCsv(sw, new AuditFilter(Action: "evidence.view"));
        using var reader = CsvReader.Create(new StringReader(sw.ToString()), new CsvReaderOptions { HasHeader = true, Mode = CsvMode.Rfc4180 }, leaveOpen: false);
        Assert.Equal(["seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"], reader.Headers);
        var rows = new List<string[]>();
        while (reader.Read())
        {
            rows.Add([.. Enumerable.Range(0, 8).Select(reader.GetString)]);
        }

        var expected = log.Query(new AuditFilter(Action: "evidence.view")).ToList();
        Assert.Equal(expected.Count, rows.Count);
        Assert.Equal(expected.Select(r => r.HashHex), rows.Select(r => r[7]));
        Assert.Contains("\\\"quoted\\\"", rows[0][5], StringComparison.Ordinal);
    }
}
