using System.Security.Cryptography;
using Warden.FakeCyberTipline;
using Warden.Review.Cases;
using Warden.Review.Reporting;
using Warden.Review.Storage;

namespace Warden.Review.Tests;

/// <summary>Media for deliveries, in memory.</summary>
internal sealed class MemoryMedia : IDeliveryMedia
{
    public Dictionary<string, byte[]> Items { get; } = [];

    public Task<byte[]?> ReadAsync(string caseId, string evidenceRef, CancellationToken cancellationToken) =>
        Task.FromResult(Items.TryGetValue(evidenceRef, out var b) ? b : null);
}

/// <summary>A store that "crashes" (throws) at the n-th save, before or after writing.</summary>
internal sealed class CrashingStore(IDeliveryStore inner, int crashAtSave, bool afterWrite) : IDeliveryStore
{
    private int _saves;

    public Delivery Save(Delivery delivery, IReadOnlyList<DeliveryFile>? changedFiles = null, DeliveryReceipt? receipt = null)
    {
        if (++_saves == crashAtSave && !afterWrite)
        {
            throw new SimulatedCrashException();
        }

        var saved = inner.Save(delivery, changedFiles, receipt);
        if (_saves == crashAtSave)
        {
            throw new SimulatedCrashException();
        }

        return saved;
    }

    public Delivery Enqueue(string caseId, string destination, string environment, string document, IReadOnlyList<DeliveryFile> files, DateTimeOffset now) => inner.Enqueue(caseId, destination, environment, document, files, now);

    public Delivery? Find(long id) => inner.Find(id);

    public Delivery? FindByCase(string caseId, string destination) => inner.FindByCase(caseId, destination);

    public IReadOnlyList<DeliveryFile> Files(long id) => inner.Files(id);

    public IReadOnlyList<Delivery> Due(DateTimeOffset now, int limit) => inner.Due(now, limit);

    public IReadOnlyList<Delivery> OpenSince(DateTimeOffset before) => inner.OpenSince(before);

    public IReadOnlyList<Delivery> List(DeliveryStatus? status, int limit) => inner.List(status, limit);

    public IReadOnlyList<DeliveryReceipt> Receipts(long id) => inner.Receipts(id);
}

internal sealed class SimulatedCrashException : Exception
{
}

public sealed class DeliveryTests : IAsyncLifetime, IDisposable
{
    private static readonly DeliveryOptions FastRetries = new() { BaseDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(40) };
    private readonly TempDir _dir = new();
    private FakeCyberTiplineServer _server = null!;
    private ReviewDatabase _db = null!;
    private int _caseCounter;

    public async Task InitializeAsync()
    {
        _server = await FakeCyberTiplineServer.StartAsync();
        _db = _dir.OpenDatabase();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private CyberTiplineClient Client(TimeSpan? timeout = null, string? password = null) => new(new CyberTiplineOptions
    {
        Environment = CyberTiplineEnvironment.Test,
        BaseUri = _server.BaseUri,
        Username = _server.Username,
        Password = password ?? _server.Password,
        RequestTimeout = timeout ?? TimeSpan.FromSeconds(10),
    });

    private sealed record Queued(Delivery Delivery, string CaseId, MemoryMedia Media, HashSet<string> Md5s);

    private Queued Enqueue(DbDeliveryStore store, int files = 3)
    {
        var caseId = $"case-{++_caseCounter}-{Guid.NewGuid():N}";
        var media = new MemoryMedia();
        var md5s = new HashSet<string>();
        var reportFiles = new List<ReportFile>();
        for (var i = 0; i < files; i++)
        {
            var bytes = RandomNumberGenerator.GetBytes(2000 + i);
#pragma warning disable CA5351 // comparing with the CyberTipline's MD5
            md5s.Add(Convert.ToHexStringLower(MD5.HashData(bytes)));
#pragma warning restore CA5351
            media.Items[$"ev-{caseId}-{i}"] = bytes;
            reportFiles.Add(new ReportFile($"s{i}", $"ev-{caseId}-{i}", $"{i:D4}.png", new CyberTipFile(OriginalFileName: $"f{i}.png", FileViewedByEsp: i == 0, Annotations: ["generativeAi"], IndustryClassification: "A2",
                OriginalFileHashes: [new OriginalFileHash("MD5", "00")], IpCaptureEvent: new IpCaptureEvent("198.51.100.4", "Upload"))));
        }

        var report = new CyberTipReport(new IncidentSummary(CyberTipVocabulary.ChildPornography, DateTimeOffset.UtcNow.AddMinutes(-5)),
            CyberTipXmlTests.Settings.Reporter, null, [new ReportedUser("user-1")], "Warden " + caseId);
        var d = CaseReportBuilder.EnqueueForNcmec(store, new ReportPackage(caseId, report, reportFiles, []), CyberTiplineEnvironment.Test, DateTimeOffset.UtcNow);
        return new Queued(d, caseId, media, md5s);
    }

    /// <summary>The invariant: one finished report for the case, holding every file exactly once, each described once.</summary>
    private void AssertDeliveredOnce(Queued q, Delivery final, DbDeliveryStore store)
    {
        Assert.Equal(DeliveryStatus.Finished, final.Status);
        var mine = _server.Reports.Where(r => r.Xml.Contains(q.CaseId, StringComparison.Ordinal)).ToList();
        var finished = Assert.Single(mine, r => r.State == FakeReportState.Finished);
        Assert.Equal(final.ReportId, finished.ReportId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(q.Md5s.Count, finished.Files.Count);
        Assert.Equal(q.Md5s, finished.Files.Select(f => f.Md5).ToHashSet());
        Assert.All(finished.Files, f => Assert.Single(f.FileInfos));
        Assert.All(mine.Where(r => r != finished), r => Assert.NotEqual(FakeReportState.Finished, r.State));

        var receipts = store.Receipts(final.Id);
        var last = receipts[^1];
        Assert.Equal("finish", last.Step);

        // The receipt is NCMEC's reportDoneResponse, or, when that answer was lost and the repeated finish
        // was told "already finished" (5102), that answer: NCMEC offers no way to fetch the receipt again.
        Assert.Contains(last.Outcome == "Ok" ? "reportDoneResponse" : "<responseCode>5102</responseCode>", last.Body, StringComparison.Ordinal);
        Assert.True(last.Outcome is "Ok" or "AlreadyFinished", last.Outcome);
        Assert.Contains(receipts, r => r.Step == "submit" && r.Outcome == "Ok" && r.Request!.Contains("<report", StringComparison.Ordinal));
        Assert.Equal(q.Md5s.Count, receipts.Count(r => r.Step.StartsWith("fileinfo:", StringComparison.Ordinal) && r.Outcome == "Ok" && r.Generation == final.Generation));
    }

    [Fact]
    public async Task Happy_path_submits_uploads_describes_and_finishes_once()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        using var client = Client();
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        var final = await deliverer.DeliverAsync(q.Delivery.Id);
        AssertDeliveredOnce(q, final, store);
        Assert.Equal(0, final.Generation);
        Assert.Equal(["submit", "upload", "upload", "upload", "fileinfo", "fileinfo", "fileinfo", "finish"], _server.Requests.Select(r => r.Endpoint));

        // Idempotent: a second run and a second enqueue do nothing.
        Assert.Equal(DeliveryStatus.Finished, (await deliverer.DeliverAsync(q.Delivery.Id)).Status);
        Assert.Equal(q.Delivery.Id, store.Enqueue(q.CaseId, "ncmec", "test", "<x/>", [], DateTimeOffset.UtcNow).Id);
        Assert.Equal(8, _server.Requests.Count);
    }

    public static TheoryData<string, FailureMode, int> Failures { get; } = Build();

    private static TheoryData<string, FailureMode, int> Build()
    {
        var data = new TheoryData<string, FailureMode, int>();
        foreach (var endpoint in new[] { "submit", "upload", "fileinfo", "finish" })
        {
            foreach (var mode in new[] { FailureMode.Timeout, FailureMode.ServerError, FailureMode.ServiceUnavailable, FailureMode.Malformed, FailureMode.DropAfterBytes })
            {
                data.Add(endpoint, mode, endpoint is "upload" or "fileinfo" ? 1 : 0);
            }
        }

        data.Add("retract", FailureMode.ServerError, 0);
        return data;
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task Every_failure_mode_at_every_step_ends_in_exactly_one_finished_report(string endpoint, FailureMode mode, int skipFirst)
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        if (endpoint == "retract")
        {
            // Make a retract happen (a lost upload answer), then fail it once.
            _server.Inject(new InjectedFailure("upload", FailureMode.DropAfterBytes, SkipFirst: 1));
        }

        _server.Inject(new InjectedFailure(endpoint, mode, Times: 2, SkipFirst: skipFirst, Delay: TimeSpan.FromSeconds(5)));
        using var client = Client(TimeSpan.FromMilliseconds(1500));
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var final = await deliverer.DeliverAsync(q.Delivery.Id, cts.Token);
        AssertDeliveredOnce(q, final, store);
        Assert.Contains(_server.Requests, r => r.Failure is not null && r.Endpoint == endpoint);

        var effectApplied = mode is FailureMode.Timeout or FailureMode.Malformed or FailureMode.DropAfterBytes;
        if (endpoint is "upload" or "fileinfo" && effectApplied)
        {
            // The report's content became uncertain: it was retracted and a clean one finished.
            Assert.True(final.Generation >= 1);
            Assert.Contains(_server.Reports, r => r.Xml.Contains(q.CaseId, StringComparison.Ordinal) && r.State == FakeReportState.Retracted);
        }
        else if (endpoint is "finish" or "submit")
        {
            Assert.Equal(0, final.Generation);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_crash_at_any_save_resumes_to_exactly_one_finished_report(bool withLostUploadAnswer)
    {
        var crashesSeen = 0;
        foreach (var afterWrite in new[] { false, true })
        {
            for (var crashAt = 1; crashAt < 60; crashAt++)
            {
                var store = new DbDeliveryStore(_db);
                var q = Enqueue(store, files: 2);
                _server.ClearFailures();
                if (withLostUploadAnswer)
                {
                    // The path then also runs through retract and a second generation.
                    _server.Inject(new InjectedFailure("upload", FailureMode.DropAfterBytes, SkipFirst: 1));
                }

                using var client = Client();
                var crashed = false;
                using (var first = new ReportDeliverer(new CrashingStore(store, crashAt, afterWrite), new NcmecDestination(client), q.Media, FastRetries))
                {
                    try
                    {
                        await first.DeliverAsync(q.Delivery.Id);
                    }
                    catch (SimulatedCrashException)
                    {
                        crashed = true;
                        crashesSeen++;
                    }
                }

                // A new process: same database, new worker.
                using var second = new ReportDeliverer(new DbDeliveryStore(_db), new NcmecDestination(client), q.Media, FastRetries);
                var final = await second.DeliverAsync(q.Delivery.Id);
                AssertDeliveredOnce(q, final, store);
                if (!crashed)
                {
                    break; // past the last save: every crash point was covered
                }
            }
        }

        Assert.True(crashesSeen >= (withLostUploadAnswer ? 40 : 24), $"only {crashesSeen} crash points exercised");
    }

    [Fact]
    public async Task Disposing_the_worker_mid_upload_and_resuming_with_a_new_one_finishes_once()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        _server.Inject(new InjectedFailure("upload", FailureMode.Timeout, SkipFirst: 1, Delay: TimeSpan.FromSeconds(20)));
        using var client = Client();
        var first = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        var running = first.DeliverAsync(q.Delivery.Id);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!_server.Requests.Any(r => r.Failure == "Timeout") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        first.Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.Equal("upload:1", store.Find(q.Delivery.Id)!.InFlight);

        using var second = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        AssertDeliveredOnce(q, await second.DeliverAsync(q.Delivery.Id), store);
    }

    [Fact]
    public async Task A_report_deleted_by_the_destination_is_started_again()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        using var client = Client();
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        _server.Inject(new InjectedFailure("fileinfo", FailureMode.ServerError, Times: 1000));
        var d = await deliverer.RunOnceAsync(q.Delivery.Id);
        Assert.Equal(DeliveryStatus.Open, d.Status);
        _server.ClearFailures();
        _server.Expire(long.Parse(d.ReportId!, System.Globalization.CultureInfo.InvariantCulture));
        var final = await deliverer.DeliverAsync(q.Delivery.Id);
        AssertDeliveredOnce(q, final, store);
        Assert.Equal(1, final.Generation);
    }

    [Fact]
    public async Task Rejections_fail_the_delivery_with_an_alarm_and_bad_credentials_alarm_and_retry()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        var alarms = new List<DeliveryAlarm>();
        using (var bad = Client(password: "wrong"))
        {
            using var d1 = new ReportDeliverer(store, new NcmecDestination(bad), q.Media, FastRetries);
            d1.Alarm += (_, a) => alarms.Add(a);
            var d = await d1.RunOnceAsync(q.Delivery.Id);
            Assert.Equal(DeliveryStatus.Queued, d.Status);
            Assert.Equal(1, d.Failures);
            Assert.Equal(DeliveryAlarmKind.AuthFailed, Assert.Single(alarms).Kind);
        }

        _server.Inject(new InjectedFailure("finish", FailureMode.Reject));
        using var client = Client();
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        deliverer.Alarm += (_, a) => alarms.Add(a);
        var final = await deliverer.DeliverAsync(q.Delivery.Id);
        Assert.Equal(DeliveryStatus.Failed, final.Status);
        Assert.Equal(DeliveryAlarmKind.Failed, alarms[^1].Kind);
        Assert.Contains("4100", final.LastError, StringComparison.Ordinal);
        Assert.DoesNotContain(_server.Reports, r => r.State == FakeReportState.Finished && r.Xml.Contains(q.CaseId, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Missing_evidence_fails_with_an_alarm_instead_of_an_incomplete_report()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        q.Media.Items.Remove(q.Media.Items.Keys.Last());
        using var client = Client();
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), q.Media, FastRetries);
        var alarms = new List<DeliveryAlarm>();
        deliverer.Alarm += (_, a) => alarms.Add(a);
        var final = await deliverer.DeliverAsync(q.Delivery.Id);
        Assert.Equal(DeliveryStatus.Failed, final.Status);
        Assert.Contains("missing", Assert.Single(alarms).Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_server.Reports, r => r.State == FakeReportState.Finished);
    }

    [Fact]
    public async Task A_report_open_for_20_hours_raises_the_overdue_alarm()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        using var client = Client();
        _server.Inject(new InjectedFailure("upload", FailureMode.ServerError, Times: 1000));
        var time = new ManualTime(DateTimeOffset.UtcNow);
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client, time), q.Media, FastRetries, time);
        var alarms = new List<DeliveryAlarm>();
        deliverer.Alarm += (_, a) => alarms.Add(a);
        var d = await deliverer.RunOnceAsync(q.Delivery.Id);
        Assert.Equal(DeliveryStatus.Open, d.Status);
        time.Advance(TimeSpan.FromHours(19));
        Assert.Empty(deliverer.CheckOverdue());
        time.Advance(TimeSpan.FromHours(1.5));
        Assert.Single(deliverer.CheckOverdue());
        Assert.Equal(DeliveryAlarmKind.Overdue, Assert.Single(alarms).Kind);
        Assert.NotNull(store.Find(q.Delivery.Id)!.AlarmedAt);
    }

    [Fact]
    public async Task An_operator_cancel_retracts_an_open_report_and_stops_the_delivery()
    {
        var store = new DbDeliveryStore(_db);
        var open = Enqueue(store);
        var queued = Enqueue(store);
        using var client = Client();
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), open.Media, FastRetries);
        _server.Inject(new InjectedFailure("upload", FailureMode.ServerError, Times: 1));
        var d = await deliverer.RunOnceAsync(open.Delivery.Id);
        Assert.Equal(DeliveryStatus.Open, d.Status);

        var cancelled = await deliverer.CancelAsync(open.Delivery.Id, "user:lead", "review reversed");
        Assert.Equal(DeliveryStatus.Cancelled, cancelled.Status);
        Assert.Equal(FakeReportState.Retracted, Assert.Single(_server.Reports, r => r.Xml.Contains(open.CaseId, StringComparison.Ordinal)).State);
        Assert.Equal(DeliveryStatus.Cancelled, (await deliverer.RunOnceAsync(open.Delivery.Id)).Status);

        Assert.Equal(DeliveryStatus.Cancelled, (await deliverer.CancelAsync(queued.Delivery.Id, "user:lead", "duplicate")).Status);
        Assert.Equal(0, await deliverer.RunDueAsync());
        Assert.DoesNotContain(_server.Reports, r => r.Xml.Contains(queued.CaseId, StringComparison.Ordinal));

        var finished = Enqueue(store, files: 1);
        using var d2 = new ReportDeliverer(store, new NcmecDestination(client), finished.Media, FastRetries);
        await d2.DeliverAsync(finished.Delivery.Id);
        Assert.Equal(DeliveryStatus.Finished, (await d2.CancelAsync(finished.Delivery.Id, "user:lead", "too late")).Status);
    }

    [Fact]
    public async Task Run_due_delivers_every_due_delivery_of_its_destination()
    {
        var store = new DbDeliveryStore(_db);
        var queued = Enumerable.Range(0, 3).Select(_ => Enqueue(store, files: 1)).ToList();
        var media = new MemoryMedia();
        foreach (var (k, v) in queued.SelectMany(q => q.Media.Items))
        {
            media.Items[k] = v;
        }

        using var client = Client();
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), media, FastRetries);
        Assert.Equal(3, await deliverer.RunDueAsync());
        Assert.Equal(0, await deliverer.RunDueAsync());
        foreach (var q in queued)
        {
            AssertDeliveredOnce(q, store.Find(q.Delivery.Id)!, store);
        }
    }

    [Fact]
    public async Task A_test_delivery_is_never_sent_through_a_production_worker()
    {
        var store = new DbDeliveryStore(_db);
        var q = Enqueue(store);
        var prodLike = new RenamedDestination(new NcmecDestination(Client()), "production");
        using var deliverer = new ReportDeliverer(store, prodLike, q.Media, FastRetries);
        await Assert.ThrowsAsync<InvalidOperationException>(() => deliverer.RunOnceAsync(q.Delivery.Id));
        Assert.Empty(_server.Requests);
        Assert.Equal(0, await deliverer.RunDueAsync());
    }

    private sealed class RenamedDestination(IReportDestination inner, string environment) : IReportDestination
    {
        public string Name => inner.Name;

        public string Environment => environment;

        public Task<StepResult> OpenAsync(string document, CancellationToken cancellationToken) => inner.OpenAsync(document, cancellationToken);

        public Task<StepResult> AddFileAsync(string reportId, string fileName, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) => inner.AddFileAsync(reportId, fileName, content, cancellationToken);

        public Task<StepResult> DescribeFileAsync(string reportId, string fileId, string metadata, CancellationToken cancellationToken) => inner.DescribeFileAsync(reportId, fileId, metadata, cancellationToken);

        public Task<StepResult> FinishAsync(string reportId, CancellationToken cancellationToken) => inner.FinishAsync(reportId, cancellationToken);

        public Task<StepResult> CancelAsync(string reportId, CancellationToken cancellationToken) => inner.CancelAsync(reportId, cancellationToken);
    }
}
