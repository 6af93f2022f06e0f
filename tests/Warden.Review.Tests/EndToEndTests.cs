using System.Xml.Linq;
using Warden.FakeCyberTipline;
using Warden.Review.Audit;
using Warden.Review.Cases;
using Warden.Review.Evidence;
using Warden.Review.Reporting;

namespace Warden.Review.Tests;

/// <summary>Case → review with a logged view → report built from the vault's view log → delivered to the fake → audit verifies.</summary>
public sealed class EndToEndTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_reviewed_case_is_filed_with_truthful_viewed_flags_and_an_intact_audit_trail()
    {
        await using var server = await FakeCyberTiplineServer.StartAsync();
        var db = _dir.OpenDatabase();
        var audit = new AuditLog(new DbAuditStore(db));
        var vault = new EvidenceVault(new FileSystemBlobStore(Path.Combine(_dir.Path, "vault")), new DbEvidenceCatalog(db),
            new VaultKeyRing(new Dictionary<string, byte[]> { ["k1"] = new byte[32] }, "k1"), audit: audit);
        var rng = new Random(21);
        var center = CaseBuilderTests.RandomHash(rng);
        var builder = new CaseBuilder();
        ReviewCase? c = null;
        for (var i = 0; i < 4; i++)
        {
            var media = new byte[3000 + i];
            rng.NextBytes(media);
            var evidence = await vault.StoreAsync(media, new Dictionary<string, string> { ["submission"] = $"s{i}" }, null, EvidenceActor.Component("system:intake"));
            c = builder.Add(CaseBuilderTests.Item($"s{i}", "user-42", CaseBuilderTests.Flip(center, i, rng), -60 + i, evidence: evidence));
        }

        var cluster = Assert.Single(c!.Clusters);

        // The reviewer reveals the representative only, then decides the cluster.
        await vault.ReadAsync(cluster.Representative.EvidenceRef!, new EvidenceAccess(EvidenceActor.Person("user:alice"), $"review case {c.Id}"));
        builder.Decide(c.Id, cluster.Id, new ClusterDecision(Verdict.Confirmed, "user:alice", DateTimeOffset.UtcNow, "A1", new HashSet<string> { "generativeAi" }));
        audit.Append(new AuditEntry("user:alice", "cluster.decide", "case:" + c.Id, new Dictionary<string, string> { ["cluster"] = cluster.Id, ["verdict"] = "Confirmed" }));

        var package = CaseReportBuilder.Build(c, CyberTipXmlTests.Settings, vault.ViewedByEsp, DateTimeOffset.UtcNow);
        var store = new DbDeliveryStore(db);
        var delivery = CaseReportBuilder.EnqueueForNcmec(store, package, CyberTiplineEnvironment.Test, DateTimeOffset.UtcNow);
        using var client = new CyberTiplineClient(new CyberTiplineOptions { BaseUri = server.BaseUri, Username = server.Username, Password = server.Password });
        using var deliverer = new ReportDeliverer(store, new NcmecDestination(client), new VaultDeliveryMedia(vault), audit: audit);
        var final = await deliverer.DeliverAsync(delivery.Id);
        Assert.Equal(DeliveryStatus.Finished, final.Status);
        builder.Close(c.Id, reported: true);
        foreach (var f in package.Files)
        {
            vault.MarkReported(f.EvidenceRef, final.FinishedAt!.Value, "system:report-outbox");
        }

        var report = Assert.Single(server.Reports);
        Assert.Equal(FakeReportState.Finished, report.State);
        Assert.Equal(4, report.Files.Count);
        var viewed = report.Files.Select(f => XDocument.Parse(f.FileInfos[0]).Root!.Element("fileViewedByEsp")!.Value).ToList();
        Assert.Equal(["true", "false", "false", "false"], viewed);

        // The uploads were system reads: still only one person's view.
        Assert.Equal(4, package.Files.Count(f => !vault.ViewedByEsp(f.EvidenceRef)) + 1);
        Assert.True(audit.Verify().Ok);
        // Every step of the report is audited: submit, each upload and file description, finish.
        Assert.Equal(["report.submit", "report.upload", "report.upload", "report.upload", "report.upload", "report.fileinfo", "report.fileinfo", "report.fileinfo", "report.fileinfo", "report.finish"],
            audit.Query(new AuditFilter(Subject: "case:" + c.Id, Actor: "system:report-outbox")).Select(r => r.Action));
        Assert.Equal(4, audit.Query(new AuditFilter(Action: "evidence.view", Actor: "system:report-outbox")).Count());
        Assert.All(package.Files, f => Assert.True(vault.Get(f.EvidenceRef)!.RetainUntil > DateTimeOffset.UtcNow.AddDays(364)));
    }
}
