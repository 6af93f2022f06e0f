using System.Security.Cryptography;
using Warden.Review.Audit;
using Warden.Review.Evidence;

namespace Warden.Review.Tests;

public sealed class EvidenceVaultTests : IDisposable
{
    private static readonly byte[] KeyA = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] KeyB = Enumerable.Range(101, 32).Select(i => (byte)i).ToArray();
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    private string VaultRoot => Path.Combine(_dir.Path, "vault");

    private (EvidenceVault Vault, AuditLog Audit) NewVault(VaultKeyRing? keys = null, EvidenceVaultOptions? options = null)
    {
        var db = _dir.OpenDatabase();
        var audit = new AuditLog(new DbAuditStore(db), _time);
        var vault = new EvidenceVault(new FileSystemBlobStore(VaultRoot), new DbEvidenceCatalog(db), keys ?? Ring(("k1", KeyA)), options, audit, _time);
        return (vault, audit);
    }

    private static VaultKeyRing Ring(params (string Id, byte[] Key)[] keys) =>
        new(keys.ToDictionary(k => k.Id, k => k.Key), keys[^1].Id);

    private static byte[] Media(int seed, int size = 5000)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static readonly EvidenceActor Reviewer = EvidenceActor.Person("user:alice");
    private static readonly Dictionary<string, string> Context = new() { ["uploader"] = "user-123", ["originalFileName"] = "holiday-snap.jpg" };

    private string ObjectPath(string id) => Path.Combine(VaultRoot, "objects", id[..2], id);

    [Fact]
    public async Task Round_trip_returns_media_and_context_and_logs_the_view()
    {
        var (vault, audit) = NewVault();
        var media = Media(1);
        var id = await vault.StoreAsync(media, Context, "case-1", Reviewer);
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.False(vault.ViewedByEsp(id));

        var content = await vault.ReadAsync(id, new EvidenceAccess(Reviewer, "review case-1"));
        Assert.Equal(media, content.Media);
        Assert.Equal(Context, content.Context);
        var view = Assert.Single(vault.Views(id));
        Assert.Equal(("user:alice", "revealed", "review case-1"), (view.Actor, view.What, view.Purpose));
        Assert.True(vault.ViewedByEsp(id));
        Assert.Contains(audit.Query(new AuditFilter(Action: "evidence.view")), r => r.Subject == "evidence:" + id && r.Actor == "user:alice");
        Assert.True(audit.Verify().Ok);
    }

    [Fact]
    public async Task System_reads_and_obscured_views_do_not_count_as_viewed_by_the_esp()
    {
        var (vault, _) = NewVault();
        var id = await vault.StoreAsync(Media(2), Context, null, Reviewer);
        await vault.ReadAsync(id, new EvidenceAccess(EvidenceActor.Component("system:report-outbox"), "CyberTipline upload"));
        await vault.ReadAsync(id, new EvidenceAccess(Reviewer, "blurred preview", Revealed: false));
        Assert.Equal(2, vault.Views(id).Count);
        Assert.False(vault.ViewedByEsp(id));
    }

    [Fact]
    public async Task Recorded_preview_views_are_obscured_only_and_never_make_an_item_viewed()
    {
        var (vault, audit) = NewVault();
        var id = await vault.StoreAsync(Media(4), Context, null, Reviewer);
        for (var i = 0; i < 25; i++)
        {
            vault.RecordObscuredView(id, new EvidenceAccess(EvidenceActor.Person("user:p" + (i % 5)), "cached preview", Revealed: false));
        }

        Assert.Equal(25, vault.Views(id).Count(v => v.What == "obscured" && v.ActorKind == ActorKind.Human));
        Assert.False(vault.ViewedByEsp(id));
        Assert.Equal(25, audit.Query(new AuditFilter(Action: "evidence.view", Subject: "evidence:" + id)).Count(a => a.Details["what"] == "obscured"));

        // A revealed view can only come from reading the bytes; no actor, no purpose, no view.
        Assert.Equal(EvidenceError.NotAllowed, Assert.Throws<EvidenceException>(() => vault.RecordObscuredView(id, new EvidenceAccess(Reviewer, "preview", Revealed: true))).Error);
        Assert.Equal(EvidenceError.NotAllowed, Assert.Throws<EvidenceException>(() => vault.RecordObscuredView(id, new EvidenceAccess(EvidenceActor.Person(" "), "preview", Revealed: false))).Error);
        Assert.Equal(EvidenceError.NotAllowed, Assert.Throws<EvidenceException>(() => vault.RecordObscuredView(id, new EvidenceAccess(Reviewer, " ", Revealed: false))).Error);
        Assert.Equal(EvidenceError.NotFound, Assert.Throws<EvidenceException>(() => vault.RecordObscuredView("00112233445566778899aabbccddeeff", new EvidenceAccess(Reviewer, "preview", Revealed: false))).Error);
        Assert.False(vault.ViewedByEsp(id));

        // A destroyed item has no previews either.
        await vault.DestroyAsync(id, "admin", "test");
        Assert.Equal(EvidenceError.Destroyed, Assert.Throws<EvidenceException>(() => vault.RecordObscuredView(id, new EvidenceAccess(Reviewer, "preview", Revealed: false))).Error);
        Assert.True(audit.Verify().Ok);
    }

    [Fact]
    public async Task Reads_need_an_actor_and_a_purpose()
    {
        var (vault, _) = NewVault();
        var id = await vault.StoreAsync(Media(3), Context, null, Reviewer);
        var e1 = await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(EvidenceActor.Person(" "), "x")));
        var e2 = await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(Reviewer, "")));
        Assert.Equal(EvidenceError.NotAllowed, e1.Error);
        Assert.Equal(EvidenceError.NotAllowed, e2.Error);
        Assert.Empty(vault.Views(id));
    }

    [Fact]
    public async Task No_plaintext_media_or_context_on_disk()
    {
        var (vault, _) = NewVault();
        var media = Media(4, 20_000);
        var id = await vault.StoreAsync(media, Context, "case-1", Reviewer);
        var files = Directory.EnumerateFiles(VaultRoot, "*", SearchOption.AllDirectories).ToList();
        Assert.Single(files);
        Assert.Equal(id, Path.GetFileName(files[0])); // the name is the random id, not a digest or the original name
        var bytes = await File.ReadAllBytesAsync(files[0]);
        Assert.True(bytes.Length < media.Length + 200);
        for (var offset = 0; offset + 16 <= media.Length; offset += 997)
        {
            Assert.Equal(-1, bytes.AsSpan().IndexOf(media.AsSpan(offset, 16)));
        }

        Assert.Equal(-1, bytes.AsSpan().IndexOf("holiday-snap"u8));
        Assert.Equal(-1, bytes.AsSpan().IndexOf("user-123"u8));
        Assert.Equal(-1, bytes.AsSpan().IndexOf(KeyA.AsSpan(0, 16)));
    }

    [Fact]
    public async Task A_flipped_bit_anywhere_in_the_ciphertext_is_a_typed_tamper_error()
    {
        var (vault, _) = NewVault();
        var id = await vault.StoreAsync(Media(5), Context, null, Reviewer);
        var path = ObjectPath(id);
        var original = await File.ReadAllBytesAsync(path);
        foreach (var at in new[] { original.Length - 1, original.Length - 2000, original.Length / 2 })
        {
            var copy = (byte[])original.Clone();
            copy[at] ^= 0x10;
            await File.WriteAllBytesAsync(path, copy);
            var ex = await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(Reviewer, "review")));
            Assert.Equal(EvidenceError.Tampered, ex.Error);
        }

        // A flip in the wrapped key fails the unwrap instead.
        var k = (byte[])original.Clone();
        k[4 + 1 + 1 + 2 + 12 + 3] ^= 1;
        await File.WriteAllBytesAsync(path, k);
        Assert.Equal(EvidenceError.KeyUnwrapFailed, (await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(Reviewer, "review")))).Error);
        Assert.Empty(vault.Views(id)); // failed reads showed nothing
    }

    [Fact]
    public async Task Wrong_master_key_and_unknown_key_id_are_typed_errors()
    {
        var (vault, _) = NewVault();
        var id = await vault.StoreAsync(Media(6), Context, null, Reviewer);
        var (wrong, _) = NewVault(Ring(("k1", KeyB)));
        Assert.Equal(EvidenceError.KeyUnwrapFailed, (await Assert.ThrowsAsync<EvidenceException>(() => wrong.ReadAsync(id, new EvidenceAccess(Reviewer, "r")))).Error);
        var (other, _) = NewVault(Ring(("k9", KeyA)));
        Assert.Equal(EvidenceError.UnknownKey, (await Assert.ThrowsAsync<EvidenceException>(() => other.ReadAsync(id, new EvidenceAccess(Reviewer, "r")))).Error);
    }

    [Fact]
    public async Task Truncated_objects_are_typed_errors_at_every_length()
    {
        var (vault, _) = NewVault();
        var id = await vault.StoreAsync(Media(7, 300), Context, null, Reviewer);
        var path = ObjectPath(id);
        var original = await File.ReadAllBytesAsync(path);
        foreach (var len in new[] { 0, 3, 5, 6, 20, 60, 100, original.Length - 1 })
        {
            await File.WriteAllBytesAsync(path, original[..len]);
            var ex = await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(Reviewer, "r")));
            Assert.True(ex.Error is EvidenceError.Truncated or EvidenceError.BadFormat, $"{len}: {ex.Error}");
        }

        await File.WriteAllBytesAsync(path, original[..(original.Length - 1)]);
        Assert.Equal(EvidenceError.Truncated, (await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(Reviewer, "r")))).Error);
    }

    [Fact]
    public async Task An_object_copied_under_another_id_does_not_open()
    {
        var (vault, _) = NewVault();
        var a = await vault.StoreAsync(Media(8), Context, null, Reviewer);
        var b = await vault.StoreAsync(Media(9), Context, null, Reviewer);
        File.Copy(ObjectPath(a), ObjectPath(b), overwrite: true);
        Assert.Equal(EvidenceError.KeyUnwrapFailed, (await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(b, new EvidenceAccess(Reviewer, "r")))).Error);
    }

    [Fact]
    public async Task Retention_runs_one_year_from_report_and_destruction_deletes_the_ciphertext_with_a_record()
    {
        var (vault, audit) = NewVault();
        var id = await vault.StoreAsync(Media(10), Context, "case-1", Reviewer);
        _time.Advance(TimeSpan.FromDays(30));
        vault.MarkReported(id, _time.Now, "system:outbox");
        Assert.Equal(_time.Now + TimeSpan.FromDays(365), vault.Get(id)!.RetainUntil);

        _time.Advance(TimeSpan.FromDays(364));
        Assert.Equal(0, await vault.DestroyDueAsync("system:retention"));
        Assert.True(File.Exists(ObjectPath(id)));

        _time.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, await vault.DestroyDueAsync("system:retention"));
        Assert.False(File.Exists(ObjectPath(id)));
        var record = vault.Destruction(id)!;
        Assert.Equal("system:retention", record.Actor);
        Assert.StartsWith("retention ended", record.Reason, StringComparison.Ordinal);
        Assert.Equal(EvidenceError.Destroyed, (await Assert.ThrowsAsync<EvidenceException>(() => vault.ReadAsync(id, new EvidenceAccess(Reviewer, "r")))).Error);
        Assert.Single(audit.Query(new AuditFilter(Action: "evidence.destroy", Subject: "evidence:" + id)));
        Assert.Equal(0, await vault.DestroyDueAsync("system:retention"));
    }

    [Fact]
    public async Task Legal_hold_blocks_scheduled_and_requested_destruction_until_lifted()
    {
        var (vault, _) = NewVault();
        var id = await vault.StoreAsync(Media(11), Context, "case-1", Reviewer);
        vault.SetLegalHold(id, true, "user:counsel", "subpoena 2026-17");
        _time.Advance(TimeSpan.FromDays(800));
        Assert.Equal(0, await vault.DestroyDueAsync("system:retention"));
        var ex = await Assert.ThrowsAsync<EvidenceException>(() => vault.DestroyAsync(id, "user:admin", "law-enforcement request"));
        Assert.Equal(EvidenceError.LegalHold, ex.Error);
        Assert.True(File.Exists(ObjectPath(id)));

        vault.SetLegalHold(id, false, "user:counsel", "matter closed");
        Assert.True(await vault.DestroyAsync(id, "user:admin", "law-enforcement request #88"));
        Assert.False(await vault.DestroyAsync(id, "user:admin", "again"));
        Assert.Equal("law-enforcement request #88", vault.Destruction(id)!.Reason);
    }

    [Fact]
    public async Task Retention_can_be_extended_but_not_shortened_and_must_be_at_least_a_year()
    {
        var (vault, _) = NewVault(options: new EvidenceVaultOptions { RetentionAfterReport = TimeSpan.FromDays(730) });
        var id = await vault.StoreAsync(Media(12), Context, null, Reviewer);
        vault.MarkReported(id, _time.Now, "system");
        Assert.Equal(_time.Now + TimeSpan.FromDays(730), vault.Get(id)!.RetainUntil);
        Assert.Equal(EvidenceError.NotAllowed, Assert.Throws<EvidenceException>(() => vault.ExtendRetention(id, _time.Now.AddDays(10), "u", "shorter")).Error);
        vault.ExtendRetention(id, _time.Now.AddDays(1000), "user:counsel", "ongoing investigation");
        Assert.Equal(_time.Now.AddDays(1000), vault.Get(id)!.RetainUntil);
        Assert.Throws<ArgumentException>(() => NewVault(options: new EvidenceVaultOptions { RetentionAfterReport = TimeSpan.FromDays(90) }));
    }

    [Fact]
    public async Task Key_rotation_rewraps_every_item_so_the_old_key_can_be_removed()
    {
        var (vault, audit) = NewVault(Ring(("k1", KeyA)));
        var media = Enumerable.Range(0, 5).Select(i => Media(20 + i)).ToList();
        var ids = new List<string>();
        foreach (var m in media)
        {
            ids.Add(await vault.StoreAsync(m, Context, null, Reviewer));
        }

        var before = await File.ReadAllBytesAsync(ObjectPath(ids[0]));
        var (rotating, _) = NewVault(Ring(("k1", KeyA), ("k2", KeyB)));
        Assert.Equal(5, await rotating.RewrapAllAsync("user:admin"));
        Assert.Equal(0, await rotating.RewrapAllAsync("user:admin"));
        var after = await File.ReadAllBytesAsync(ObjectPath(ids[0]));
        Assert.Equal(before[^media[0].Length..], after[^media[0].Length..]); // the media ciphertext is untouched
        Assert.NotEqual(before[..40], after[..40]);

        var (newOnly, _) = NewVault(Ring(("k2", KeyB)));
        for (var i = 0; i < ids.Count; i++)
        {
            Assert.Equal(media[i], (await newOnly.ReadAsync(ids[i], new EvidenceAccess(Reviewer, "check"))).Media);
            Assert.Equal("k2", newOnly.Get(ids[i])!.KeyId);
        }

        Assert.Single(audit.Query(new AuditFilter(Action: "key.rotate")), r => r.Details["rewrapped"] == "5");
    }

    [Fact]
    public void Key_ring_rejects_bad_configuration()
    {
        Assert.Throws<ArgumentException>(() => VaultKeyRing.FromBase64(new Dictionary<string, string> { ["k1"] = Convert.ToBase64String(new byte[16]) }, "k1"));
        Assert.Throws<ArgumentException>(() => VaultKeyRing.FromBase64(new Dictionary<string, string> { ["k1"] = "not base64!" }, "k1"));
        Assert.Throws<ArgumentException>(() => VaultKeyRing.FromBase64(new Dictionary<string, string> { ["k1"] = Convert.ToBase64String(KeyA) }, "k2"));
        Assert.Throws<ArgumentException>(() => VaultKeyRing.FromBase64(new Dictionary<string, string> { ["bad/id"] = Convert.ToBase64String(KeyA) }, "bad/id"));
        var ring = VaultKeyRing.FromBase64(new Dictionary<string, string> { ["2026-01"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }, "2026-01");
        Assert.Equal("2026-01", ring.CurrentKeyId);
    }

    [Fact]
    public async Task Blob_store_rejects_path_like_ids_and_leaves_no_temp_files()
    {
        var store = new FileSystemBlobStore(VaultRoot);
        await Assert.ThrowsAsync<ArgumentException>(() => store.WriteAsync("../../etc/passwd", new byte[1]));
        await Assert.ThrowsAsync<ArgumentException>(() => store.ReadAsync("ABCDEF0123456789ABCDEF0123456789"));
        var id = IBlobStore.NewId();
        await store.WriteAsync(id, new byte[] { 1, 2, 3 });
        await store.WriteAsync(id, new byte[] { 4, 5 });
        Assert.Equal(new byte[] { 4, 5 }, await store.ReadAsync(id));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(VaultRoot, "tmp")));
        Assert.True(await store.DeleteAsync(id));
        Assert.Null(await store.ReadAsync(id));
        Assert.False(await store.DeleteAsync(id));
    }
}
