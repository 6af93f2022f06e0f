using System.Security.Cryptography;
using Dapper;
using FsCheck;
using FsCheck.Fluent;
using Warden.Review.Evidence;
using Warden.Review.Reporting;
using Warden.Review.Storage;

namespace Warden.Review.Tests;

/// <summary>Sealed upload context and report outbox rows: round trip, binding, hostile stored values.</summary>
public sealed class ContextSealTests
{
    private static readonly ContextSeal Seal = new(VaultKeyRing.FromBase64(new Dictionary<string, string> { ["k1"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }, "k1"));

    [Fact]
    public void Any_text_round_trips_and_opens_under_its_own_binding_only()
    {
        Prop.ForAll<NonNull<string>, NonEmptyString>((text, binding) =>
        {
            var b = binding.Get;
            var sealedValue = Seal.Seal(b, text.Get);
            var other = b + "x";
            return Seal.Open(b, sealedValue) == text.Get
                && !sealedValue.Contains(text.Get.Length > 8 ? text.Get : "\u0000\u0001never", StringComparison.Ordinal)
                && Throws(() => Seal.Open(other, sealedValue))
                && Seal.Unwrap(b, Seal.Wrap(b, text.Get)) == text.Get;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Altered_truncated_or_foreign_stored_values_fail_closed_with_a_typed_error()
    {
        var rng = new Random(9);
        var good = Seal.Seal("s1", "203.0.113.9 https://example.org/x file.jpg");
        var raw = Convert.FromBase64String(good);
        var other = new ContextSeal(VaultKeyRing.FromBase64(new Dictionary<string, string> { ["k1"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }, "k1"));
        var bad = new List<string> { "", "not base64!", "AAAA", Convert.ToBase64String(raw[..(raw.Length / 2)]), other.Seal("s1", "x") };
        for (var i = 0; i < 200; i++)
        {
            var copy = (byte[])raw.Clone();
            copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
            bad.Add(Convert.ToBase64String(copy));
            bad.Add(Convert.ToBase64String(raw[..rng.Next(raw.Length)]));
        }

        foreach (var value in bad)
        {
            Assert.Throws<EvidenceException>(() => Seal.Open("s1", value));
        }
    }

    [Fact]
    public void The_report_outbox_stores_documents_files_and_requests_sealed_and_reads_them_back()
    {
        using var dir = new TempDir();
        using var db = ReviewDatabase.Open(Path.Combine(dir.Path, "r.db"));
        var store = new DbDeliveryStore(db, Seal);
        const string Secret = "198.51.100.77";
        var d = store.Enqueue("case-1", "ncmec", "test", $"<report><ip>{Secret}</ip></report>", [new DeliveryFile(0, "ev1", "IMG_secret.jpg", $"<fileDetails>{Secret}</fileDetails>", null, null, false)], DateTimeOffset.UtcNow);
        d = store.Save(d, receipt: new DeliveryReceipt(d.Id, DateTimeOffset.UtcNow, 0, "submit", "ok", 200, 0, null, $"<report>{Secret}</report>", "<ok/>"));
        Assert.Contains(Secret, store.Find(d.Id)!.Document, StringComparison.Ordinal);
        Assert.Contains(Secret, Assert.Single(store.Files(d.Id)).Metadata, StringComparison.Ordinal);
        Assert.Equal("IMG_secret.jpg", Assert.Single(store.Files(d.Id)).FileName);
        Assert.Contains(Secret, Assert.Single(store.Receipts(d.Id)).Request!, StringComparison.Ordinal);

        using var c = db.Database.OpenConnection();
        var rows = c.Query<string>("SELECT document FROM report_deliveries UNION ALL SELECT metadata FROM report_delivery_files UNION ALL SELECT file_name FROM report_delivery_files UNION ALL SELECT request FROM report_receipts").ToList();
        Assert.Equal(4, rows.Count);
        Assert.All(rows, r => Assert.StartsWith(ContextSeal.Marker, r, StringComparison.Ordinal));
        Assert.All(rows, r => Assert.DoesNotContain("secret", r, StringComparison.OrdinalIgnoreCase));

        // A sealed row without the key is refused, not sent with its evidence missing.
        Assert.Throws<EvidenceException>(() => new DbDeliveryStore(db).Find(d.Id));

        // A document moved onto another case does not open.
        c.Execute("UPDATE report_deliveries SET case_id = 'case-2' WHERE id = @Id", new { d.Id });
        Assert.Throws<EvidenceException>(() => store.Find(d.Id));
    }

    private static bool Throws(Action a)
    {
        try
        {
            a();
            return false;
        }
        catch (EvidenceException)
        {
            return true;
        }
    }
}
