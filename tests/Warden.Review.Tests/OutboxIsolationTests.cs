using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Xml.Linq;
using Warden.FakeCyberTipline;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Evidence;
using Warden.Review.Reporting;
using Warden.Review.Storage;

namespace Warden.Review.Tests;

/// <summary>
/// Reporting never halts: a bad field is delivered, one failing delivery never blocks or aborts the others,
/// a step that keeps failing ends dead-lettered (not a loop), an admin can requeue or cancel, a retry never
/// reads the evidence again, and every step is audited. Against the fake CyberTipline over real HTTP.
/// </summary>
public sealed class OutboxIsolationTests : IAsyncLifetime, IDisposable
{
    private static readonly DateTimeOffset Past = DateTimeOffset.UtcNow.AddHours(-1);
    private static readonly DeliveryOptions Fast = new() { BaseDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(40), MaxAttempts = 5 };
    private readonly TempDir _dir = new();
    private FakeCyberTiplineServer _server = null!;
    private ReviewDatabase _db = null!;
    private AuditLog _audit = null!;
    private DbDeliveryStore _store = null!;
    private readonly MemoryMedia _media = new();

    public async Task InitializeAsync()
    {
        _server = await FakeCyberTiplineServer.StartAsync();
        _db = _dir.OpenDatabase();
        _audit = new AuditLog(new DbAuditStore(_db));
        _store = new DbDeliveryStore(_db);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private CyberTiplineClient Client(string? password = null) => new(new CyberTiplineOptions
    {
        BaseUri = _server.BaseUri,
        Username = _server.Username,
        Password = password ?? _server.Password,
        RequestTimeout = TimeSpan.FromSeconds(10),
    });

    /// <summary>Queues a case through the real builder, with the given uploader id and file names.</summary>
    private Delivery EnqueueCase(string uploader, params string[] fileNames)
    {
        var builder = new CaseBuilder();
        var rng = new Random(uploader.Length + fileNames.Length);
        ReviewCase? c = null;
        for (var i = 0; i < fileNames.Length; i++)
        {
            var evidence = $"ev-{Guid.NewGuid():N}";
            _media.Items[evidence] = RandomNumberGenerator.GetBytes(1500 + i);
            c = builder.Add(new MatchedSubmission($"s{i}", uploader, Past.AddMinutes(i), CaseBuilderTests.RandomHash(rng),
                new Dictionary<string, string> { ["sha256"] = new string('a', 64) },
                [new MatchEvidence("bank\u0007", "pdq", 2, new Dictionary<string, string> { ["classification"] = "A1" })],
                new UploadContext("198.51.100.9", 443, Past, "https://photos.example.com/p/" + i, fileNames[i], "device\u0000id"), evidence));
        }

        foreach (var cluster in c!.Clusters)
        {
            builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.Confirmed, "user:alice", Past, "A1", Note: "note\u0001 from the reviewer"));
        }

        var package = CaseReportBuilder.Build(c, CyberTipXmlTests.Settings, _ => false, DateTimeOffset.UtcNow);
        return CaseReportBuilder.EnqueueForNcmec(_store, package, CyberTiplineEnvironment.Test, DateTimeOffset.UtcNow);
    }

    /// <summary>Queues a delivery whose stored file metadata holds raw text (an older version, a hand-made row): only the writer can save it.</summary>
    private Delivery EnqueueRaw(string caseId, string metadata)
    {
        var evidence = $"ev-{Guid.NewGuid():N}";
        _media.Items[evidence] = RandomNumberGenerator.GetBytes(900);
        var report = new CyberTipReport(new IncidentSummary(CyberTipVocabulary.ChildPornography, Past), CyberTipXmlTests.Settings.Reporter, null, [new ReportedUser("user-raw")], "Warden " + caseId);
        return _store.Enqueue(caseId, NcmecDestination.DestinationName, "test", CyberTipXml.ToText(CyberTipXml.Report(report)), [new DeliveryFile(0, evidence, "0001.png", metadata)], DateTimeOffset.UtcNow);
    }

    private List<string> Actions(Delivery d) => [.. _audit.Query(new AuditFilter(Subject: "case:" + d.CaseId)).Select(a => a.Action)];

    private FakeReport ReportOf(Delivery d) => _server.Reports.Single(r => r.ReportId.ToString(CultureInfo.InvariantCulture) == d.ReportId);

    [Fact]
    public async Task Reports_whose_fields_hold_control_characters_are_delivered_and_a_stuck_one_does_not_delay_the_round()
    {
        // Control characters and other unsafe text in the file name, uploader id, URL, device id, bank name and note.
        var hostile = new[]
        {
            EnqueueCase("bad\u0001user\uFFFE", "evil\u0001name.jpg", "\uD800lone.png", "tab\tok.png"),
            EnqueueCase("user-\u001b[31m", new string('\u0002', 3000) + ".jpg"),
        };

        // A row whose metadata still holds a raw control character: the writer cleans it at /fileinfo.
        var raw = EnqueueRaw("case-raw-" + Guid.NewGuid().ToString("N"), JsonSerializer.Serialize(new CyberTipFile(OriginalFileName: "raw\u0001name.jpg", AdditionalInfo: ["x\u0000y"])));
        var normal = Enumerable.Range(0, 3).Select(i => EnqueueCase($"user-{i}", $"f{i}.jpg")).ToList();
        var stuck = EnqueueCase("user-stuck", "slow.jpg");

        using var client = Client();
        var destination = new StallingDestination(new NcmecDestination(client), stuck.CaseId, TimeSpan.FromSeconds(8));
        using var deliverer = new ReportDeliverer(_store, destination, _media, Fast with { Parallelism = 4 }, audit: _audit);
        var clock = Stopwatch.StartNew();
        var round = deliverer.RunDueAsync();
        var others = hostile.Append(raw).Concat(normal).ToList();
        while (others.Any(d => _store.Find(d.Id)!.Status != DeliveryStatus.Finished) && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20);
        }

        var othersDone = clock.Elapsed;
        Assert.Equal(7, await round); // every delivery in the round finished, the stalled one last
        Assert.True(othersDone < TimeSpan.FromSeconds(6), $"the other deliveries took {othersDone} while one stalled for 8 s");
        Assert.All(others.Append(stuck), d => Assert.Equal(DeliveryStatus.Finished, _store.Find(d.Id)!.Status));

        foreach (var d in hostile.Append(raw))
        {
            var report = ReportOf(_store.Find(d.Id)!);
            Assert.Equal(FakeReportState.Finished, report.State);
            Assert.All(report.Files, f => Assert.Single(f.FileInfos));
            foreach (var xml in report.Files.SelectMany(f => f.FileInfos).Append(report.Xml))
            {
                var doc = XDocument.Parse(xml); // well-formed XML 1.0
                Assert.All(doc.DescendantNodes().OfType<XText>(), t => Assert.True(XmlSafeText.IsClean(t.Value)));
            }
        }

        var first = ReportOf(_store.Find(hostile[0].Id)!);
        Assert.Contains("<espIdentifier>bad\uFFFDuser\uFFFD</espIdentifier>", first.Xml, StringComparison.Ordinal);
        Assert.Contains(first.Files, f => f.FileInfos[0].Contains("<originalFileName>evil\uFFFDname.jpg</originalFileName>", StringComparison.Ordinal));
        var second = ReportOf(_store.Find(hostile[1].Id)!);
        Assert.Contains(second.Files, f => XDocument.Parse(f.FileInfos[0]).Root!.Element("originalFileName")!.Value.Length == CyberTipLimits.OriginalFileName);
        Assert.Contains("raw\uFFFDname.jpg", ReportOf(_store.Find(raw.Id)!).Files[0].FileInfos[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_exception_in_one_delivery_never_aborts_the_round_and_repeats_end_dead_lettered_then_requeue_and_cancel_work()
    {
        var poison = EnqueueRaw("case-poison-" + Guid.NewGuid().ToString("N"), "{not json");
        var good = Enumerable.Range(0, 2).Select(i => EnqueueCase($"user-{i}", $"f{i}.jpg")).ToList();
        using var client = Client();
        using var deliverer = new ReportDeliverer(_store, new NcmecDestination(client), _media, Fast, audit: _audit);
        var alarms = new List<DeliveryAlarm>();
        var errors = new List<DeliveryError>();
        deliverer.Alarm += (_, a) => alarms.Add(a);
        deliverer.Error += (_, e) => errors.Add(e);

        Assert.Equal(2, await deliverer.RunDueAsync());
        var d = _store.Find(poison.Id)!;
        Assert.Equal(DeliveryStatus.Open, d.Status);
        Assert.Equal("fileinfo:0", d.FailureKey);
        Assert.Equal(1, d.Failures);
        Assert.Contains("JsonException", d.LastError, StringComparison.Ordinal);
        Assert.Empty(errors); // recorded against the delivery, not escaped

        var final = await deliverer.DeliverAsync(poison.Id);
        Assert.Equal(DeliveryStatus.DeadLettered, final.Status);
        Assert.True(final.NeedsAttention);
        Assert.Equal(Fast.MaxAttempts, _store.Receipts(poison.Id).Count(r => r.Step == "fileinfo:0" && r.Outcome == "Fault"));
        Assert.Empty(ReportOf(final).Files[0].FileInfos); // nothing half-built was ever sent
        var alarm = Assert.Single(alarms);
        Assert.Equal(DeliveryAlarmKind.DeadLettered, alarm.Kind);
        Assert.DoesNotContain('\n', alarm.Message);
        Assert.Equal(0, await deliverer.RunDueAsync()); // parked: no more attempts
        Assert.Equal(Fast.MaxAttempts, _store.Receipts(poison.Id).Count(r => r.Step == "fileinfo:0"));
        var actions = Actions(poison);
        Assert.Equal(Fast.MaxAttempts - 1, actions.Count(a => a == "report.retry"));
        Assert.Single(actions, "report.dead_letter");

        // Requeue starts the counters again (and retracts the open report first); the poison fails again.
        var requeued = await deliverer.RequeueAsync(poison.Id, "admin:root", "after a fix");
        Assert.Equal(DeliveryStatus.Retracting, requeued.Status);
        Assert.Equal(0, requeued.Failures);
        Assert.Equal(DeliveryStatus.DeadLettered, (await deliverer.DeliverAsync(poison.Id)).Status);
        Assert.Contains(_server.Reports, r => r.Xml.Contains(poison.CaseId, StringComparison.Ordinal) && r.State == FakeReportState.Retracted);

        // Cancel retracts the open report and stops the delivery for good; requeue of a finished one is refused.
        var cancelled = await deliverer.CancelAsync(poison.Id, "admin:root", "not reportable");
        Assert.Equal(DeliveryStatus.Cancelled, cancelled.Status);
        Assert.All(_server.Reports.Where(r => r.Xml.Contains(poison.CaseId, StringComparison.Ordinal)), r => Assert.Equal(FakeReportState.Retracted, r.State));
        await Assert.ThrowsAsync<InvalidOperationException>(() => deliverer.RequeueAsync(good[0].Id, "admin:root", "no"));
        actions = Actions(poison);
        Assert.Contains("report.requeue", actions);
        Assert.Contains("report.cancel", actions);
        Assert.Contains("report.retract", actions);
        Assert.Contains(_audit.Query(new AuditFilter(Action: "report.cancel")), a => a.Actor == "admin:root");
        Assert.All(good, g => Assert.Equal(DeliveryStatus.Finished, _store.Find(g.Id)!.Status));
    }

    [Fact]
    public async Task A_retract_and_resubmit_loop_ends_dead_lettered_reading_the_evidence_once()
    {
        var vault = new EvidenceVault(new FileSystemBlobStore(Path.Combine(_dir.Path, "vault")), new DbEvidenceCatalog(_db),
            new VaultKeyRing(new Dictionary<string, byte[]> { ["k1"] = new byte[32] }, "k1"), audit: _audit);
        var items = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            items.Add(await vault.StoreAsync(RandomNumberGenerator.GetBytes(2000 + i), new Dictionary<string, string> { ["submission"] = $"s{i}" }, null, EvidenceActor.Component("system:intake")));
        }

        var report = new CyberTipReport(new IncidentSummary(CyberTipVocabulary.ChildPornography, Past), CyberTipXmlTests.Settings.Reporter, null, [new ReportedUser("user-loop")], "Warden loop");
        var files = items.Select((e, i) => new ReportFile($"s{i}", e, $"{i:D4}.png", new CyberTipFile(OriginalFileName: $"f{i}\u0001.png"))).ToList();
        var d = CaseReportBuilder.EnqueueForNcmec(_store, new ReportPackage("case-loop", report, files, []), CyberTiplineEnvironment.Test, DateTimeOffset.UtcNow);

        // Every /fileinfo takes effect but its answer is garbled: the outcome is unknown, so the report is retracted and filed again.
        _server.Inject(new InjectedFailure("fileinfo", FailureMode.Malformed, Times: 1000));
        using var client = Client();
        using var deliverer = new ReportDeliverer(_store, new NcmecDestination(client), new VaultDeliveryMedia(vault), Fast, audit: _audit);
        var final = await deliverer.DeliverAsync(d.Id);
        Assert.Equal(DeliveryStatus.DeadLettered, final.Status);
        Assert.Equal(Fast.MaxAttempts - 1, final.Generation); // not 700 generations: five tries, then a person
        Assert.Equal(Fast.MaxAttempts, _server.Reports.Count(r => r.Xml.Contains("Warden loop", StringComparison.Ordinal)));
        Assert.All(items, e => Assert.Single(vault.Views(e), v => v.Actor == ReportDeliverer.Actor)); // read once, not once per try

        _server.ClearFailures();
        var done = await deliverer.DeliverAsync((await deliverer.RequeueAsync(d.Id, "admin:root", "NCMEC fixed")).Id);
        Assert.Equal(DeliveryStatus.Finished, done.Status);
        Assert.All(items, e => Assert.Single(vault.Views(e), v => v.Actor == ReportDeliverer.Actor));
        Assert.Equal(FakeReportState.Finished, ReportOf(done).State);
        Assert.Single(_server.Reports, r => r.Xml.Contains("Warden loop", StringComparison.Ordinal) && r.State == FakeReportState.Finished);

        var actions = Actions(final).ToHashSet();
        foreach (var step in new[] { "report.submit", "report.upload", "report.fileinfo", "report.finish", "report.retract", "report.retry", "report.restart", "report.dead_letter", "report.requeue" })
        {
            Assert.Contains(step, actions);
        }

        Assert.True(_audit.Verify().Ok);
    }

    [Fact]
    public async Task Rejected_credentials_alarm_every_time_but_never_dead_letter()
    {
        var d = EnqueueCase("user-auth", "a.jpg");
        using var bad = Client(password: "wrong");
        using var deliverer = new ReportDeliverer(_store, new NcmecDestination(bad), _media, Fast with { MaxDelay = TimeSpan.FromMilliseconds(5) }, audit: _audit);
        var alarms = new List<DeliveryAlarm>();
        deliverer.Alarm += (_, a) => alarms.Add(a);
        for (var i = 0; i < Fast.MaxAttempts + 3; i++)
        {
            var now = await deliverer.RunOnceAsync(d.Id);
            Assert.Equal(DeliveryStatus.Queued, now.Status);
            await Task.Delay(10);
        }

        Assert.Equal(Fast.MaxAttempts + 3, alarms.Count(a => a.Kind == DeliveryAlarmKind.AuthFailed));
        Assert.DoesNotContain(alarms, a => a.Kind == DeliveryAlarmKind.DeadLettered);
        Assert.DoesNotContain(alarms, a => a.Message.Contains(_server.Password, StringComparison.Ordinal) || a.Message.Contains("wrong", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_cancel_stands_even_when_the_destination_cannot_confirm_the_retraction()
    {
        var d = EnqueueCase("user-cancel", "a.jpg");
        using var client = Client();
        using var deliverer = new ReportDeliverer(_store, new NcmecDestination(client), _media, Fast, audit: _audit);
        _server.Inject(new InjectedFailure("upload", FailureMode.ServerError, Times: 1));
        Assert.Equal(DeliveryStatus.Open, (await deliverer.RunOnceAsync(d.Id)).Status);
        _server.Inject(new InjectedFailure("retract", FailureMode.ServiceUnavailable, Times: 1000));
        var cancelled = await deliverer.CancelAsync(d.Id, "admin:root", "duplicate");
        Assert.Equal(DeliveryStatus.Cancelled, cancelled.Status);
        Assert.Contains("not confirmed", cancelled.LastError, StringComparison.Ordinal);
        Assert.Equal(DeliveryStatus.Cancelled, (await deliverer.RunOnceAsync(d.Id)).Status);
        Assert.NotEqual(FakeReportState.Finished, ReportOf(cancelled).State);
    }

    [Fact]
    public async Task Fresh_reports_are_bounded_by_the_restart_limit_even_below_the_attempt_limit()
    {
        var d = EnqueueCase("user-restarts", "a.jpg");
        using var client = Client();
        var expiring = new ExpiringDestination(new NcmecDestination(client), _server);
        using var deliverer = new ReportDeliverer(_store, expiring, _media, Fast with { MaxRestarts = 3, MaxAttempts = 100 }, audit: _audit);
        var final = await deliverer.DeliverAsync(d.Id);
        Assert.Equal(DeliveryStatus.DeadLettered, final.Status);
        Assert.Contains("restarted 3 times", final.LastError, StringComparison.Ordinal);
        Assert.Null(final.ReportId);

        // Requeue starts from a fresh report and, the destination behaving again, finishes.
        expiring.Enabled = false;
        await deliverer.RequeueAsync(d.Id, "admin:root", "fixed");
        Assert.Equal(DeliveryStatus.Finished, (await deliverer.DeliverAsync(d.Id)).Status);
    }

    /// <summary>Holds every call for one case for a while (a destination that hangs for that report).</summary>
    private sealed class StallingDestination(IReportDestination inner, string stallCase, TimeSpan stall) : IReportDestination
    {
        public string Name => inner.Name;

        public string Environment => inner.Environment;

        public async Task<StepResult> OpenAsync(string document, CancellationToken cancellationToken)
        {
            if (document.Contains(stallCase, StringComparison.Ordinal))
            {
                await Task.Delay(stall, cancellationToken);
            }

            return await inner.OpenAsync(document, cancellationToken);
        }

        public Task<StepResult> AddFileAsync(string reportId, string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) => inner.AddFileAsync(reportId, fileName, content, cancellationToken);

        public Task<StepResult> DescribeFileAsync(string reportId, string fileId, string metadata, CancellationToken cancellationToken) => inner.DescribeFileAsync(reportId, fileId, metadata, cancellationToken);

        public Task<StepResult> FinishAsync(string reportId, CancellationToken cancellationToken) => inner.FinishAsync(reportId, cancellationToken);

        public Task<StepResult> CancelAsync(string reportId, CancellationToken cancellationToken) => inner.CancelAsync(reportId, cancellationToken);
    }

    /// <summary>Lets the fake delete each report right after its upload (as NCMEC does after 24 h), so the delivery keeps starting over.</summary>
    private sealed class ExpiringDestination(IReportDestination inner, FakeCyberTiplineServer server) : IReportDestination
    {
        public bool Enabled { get; set; } = true;

        public string Name => inner.Name;

        public string Environment => inner.Environment;

        public Task<StepResult> OpenAsync(string document, CancellationToken cancellationToken) => inner.OpenAsync(document, cancellationToken);

        public async Task<StepResult> AddFileAsync(string reportId, string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
        {
            var r = await inner.AddFileAsync(reportId, fileName, content, cancellationToken);
            if (Enabled)
            {
                server.Expire(long.Parse(reportId, CultureInfo.InvariantCulture));
            }

            return r;
        }

        public Task<StepResult> DescribeFileAsync(string reportId, string fileId, string metadata, CancellationToken cancellationToken) => inner.DescribeFileAsync(reportId, fileId, metadata, cancellationToken);

        public Task<StepResult> FinishAsync(string reportId, CancellationToken cancellationToken) => inner.FinishAsync(reportId, cancellationToken);

        public Task<StepResult> CancelAsync(string reportId, CancellationToken cancellationToken) => inner.CancelAsync(reportId, cancellationToken);
    }
}
