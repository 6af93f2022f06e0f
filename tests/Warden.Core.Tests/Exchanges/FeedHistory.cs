using System.Globalization;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Hashing.Video;

namespace Warden.Core.Tests.Exchanges;

/// <summary>Applies records the way storage does (an entry tombstone removes "ID" and "ID-*"), to compare with the feed.</summary>
internal sealed class FeedModel
{
    public Dictionary<string, BankEntryRecord> Entries { get; } = new(StringComparer.Ordinal);

    public void Apply(IEnumerable<BankEntryRecord> records)
    {
        foreach (var r in records)
        {
            if (r.Deleted)
            {
                foreach (var k in Entries.Keys.Where(k => k == r.ExternalId || k.StartsWith(r.ExternalId + "-", StringComparison.Ordinal)).ToList())
                {
                    Entries.Remove(k);
                }
            }
            else
            {
                Entries[r.ExternalId!] = r;
            }
        }
    }

    /// <summary>What the live feed should give: one record per md5/sha1/pdq fingerprint of each live entry.</summary>
    public static Dictionary<string, (string Type, string Signal, string? Classification)> Expected(IReadOnlyDictionary<string, FakeEntry> live) =>
        live.SelectMany(e => e.Value.Fingerprints.Where(f => f.Key is "md5" or "sha1" or "pdq" && f.Value is not null)
            .Select(f => (Key: e.Key + "-" + f.Key, Value: (f.Key, f.Value!.ToLowerInvariant(), e.Value.Classification)))

            // A TMK+PDQF large fingerprint is stored when its href serves a whole, valid .tmk file (TmkBodies knows
            // which bodies it made valid), as "tmk1:" + the file's base64.
            .Concat(e.Value.Fingerprints.ContainsKey("tmk-pdqf") && e.Value.LargeBodies?.GetValueOrDefault("tmk-pdqf") is { } body && TmkBodies.IsValid(body)
                ? [(Key: e.Key + "-tmk_pdqf", Value: ("tmk_pdqf", "tmk1:" + Convert.ToBase64String(body), e.Value.Classification))]
                : []))
            .ToDictionary(x => x.Key, x => x.Value, StringComparer.Ordinal);

    public bool Matches(IReadOnlyDictionary<string, FakeEntry> live)
    {
        var expected = Expected(live);
        return expected.Count == Entries.Count && expected.All(e => Entries.TryGetValue(e.Key, out var r) && r.SignalType == e.Value.Type && r.Signal == e.Value.Item2
            && r.Labels.GetValueOrDefault("classification") == e.Value.Classification);
    }

    public void AssertEquals(IReadOnlyDictionary<string, FakeEntry> live)
    {
        var expected = Expected(live);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), Entries.Keys.Order(StringComparer.Ordinal));
        Assert.True(Matches(live));
    }
}

/// <summary>Random benign feed histories: hex fingerprints, members sharing entry ids, updates that drop fingerprints, deletions.</summary>
internal static class FeedHistory
{
    private static readonly string[] Classes = ["A1", "A2", "B1", "B2"];

    public static string Hex(Random rng, int bytes)
    {
        var b = new byte[bytes];
        rng.NextBytes(b);
        return Convert.ToHexString(b).ToLowerInvariant();
    }

    /// <summary>An entry of random fingerprints; with <paramref name="tmk"/>, half its videos' TMK+PDQF links serve a valid, damaged or no body.</summary>
    public static FakeEntry Random(Random rng, long member, string id, long timestamp, bool tmk = false)
    {
        var fps = new Dictionary<string, string?>(StringComparer.Ordinal) { ["md5"] = Hex(rng, 16) };
        if (rng.Next(2) == 0)
        {
            fps["sha1"] = Hex(rng, 20);
        }

        if (rng.Next(3) > 0)
        {
            fps["pdq"] = Hex(rng, 32);
        }

        if (rng.Next(5) == 0)
        {
            fps["pdna"] = "PDNA-PLACEHOLDER";
        }

        var video = rng.Next(4) == 0;
        Dictionary<string, byte[]>? large = null;
        if (video && rng.Next(2) == 0)
        {
            // The href serves a valid .tmk file, a damaged one, or nothing (404).
            fps["tmk-pdqf"] = null;
            var pick = rng.Next(10);
            if (tmk && pick < 9)
            {
                large = new Dictionary<string, byte[]>(StringComparer.Ordinal)
                {
                    ["tmk-pdqf"] = pick < 6 ? TmkBodies.Valid[rng.Next(TmkBodies.Valid.Count)] : TmkBodies.Invalid[rng.Next(TmkBodies.Invalid.Count)].Body,
                };
            }
        }

        return new FakeEntry(member, id, video, timestamp, rng.Next(5) == 0 ? null : Classes[rng.Next(4)], fps, LargeBodies: large);
    }

    public static void Fill(FakeNcmecServer server, Random rng, long t0, int entries, long spanSeconds, bool tmk = false)
    {
        for (var i = 0; i < entries; i++)
        {
            // Entry ids repeat across members (9002..9005): keys are (member, id).
            server.Put(Random(rng, 9002 + rng.Next(4), "e-" + (i / 2).ToString(CultureInfo.InvariantCulture), t0 + 1 + rng.NextInt64(spanSeconds), tmk));
        }

        // A tombstone for an entry never seen.
        server.Delete(9009, "never-seen", t0 + 1 + rng.NextInt64(spanSeconds));
    }

    public static void Mutate(FakeNcmecServer server, Random rng, long from, long spanSeconds, bool tmk = false)
    {
        var live = server.Live().Values.ToList();
        foreach (var e in live.Where(_ => rng.Next(4) == 0))
        {
            var t = from + 1 + rng.NextInt64(spanSeconds);
            if (rng.Next(2) == 0)
            {
                server.Delete(e.Member, e.Id, t);
            }
            else
            {
                // An update re-sends the entry whole; here with a new set of fingerprints.
                server.Put(Random(rng, e.Member, e.Id, t, tmk) with { Video = e.Video });
            }
        }

        for (var i = 0; i < 5; i++)
        {
            server.Put(Random(rng, 9002 + rng.Next(4), "new-" + i.ToString(CultureInfo.InvariantCulture), from + 1 + rng.NextInt64(spanSeconds), tmk));
        }
    }
}

/// <summary>Shared settings of the NCMEC tests.</summary>
internal static class NcmecFixtures
{
    /// <summary>The variable test configs name for credentials.</summary>
    public const string CredentialVariable = "WARDEN_TEST_NCMEC";

    /// <summary>The copied reference pages (TestData/ncmec-hashsharing).</summary>
    public static string HashSharingDir => TestData.Own("ncmec-hashsharing");

    /// <summary>An ncmec config for <paramref name="server"/>; <paramref name="extra"/> adds fields (",\"k\":v").</summary>
    public static JsonElement Config(FakeNcmecServer server, string extra = "", string variable = CredentialVariable) =>
        JsonDocument.Parse($$"""{"environment":"test_Industry","base_url":"{{server.BaseUrl}}","credentials_env":"{{variable}}"{{extra}}}""").RootElement.Clone();
}

/// <summary>
/// TMK+PDQF bodies for the fake NCMEC server's large-fingerprint links: valid `.tmk` files computed with Warden's TMK
/// accumulator (the reference's parameters) from synthetic frame features, and damaged variants of every kind a
/// parser must refuse whole. Validity is known by construction (reference identity), not by asking Warden's reader.
/// </summary>
internal static class TmkBodies
{
    private static readonly HashSet<byte[]> ValidSet = new(ReferenceEqualityComparer.Instance);

    static TmkBodies()
    {
        Valid = [Make(1, 4), Make(2, 9), Make(3, 16)];
        foreach (var v in Valid)
        {
            ValidSet.Add(v);
        }

        var good = Valid[0];
        Invalid =
        [
            ([], "empty"),
            (good[..31], "header cut short"),
            (good[..^1], "last byte missing"),
            (good[..(good.Length / 2)], "half a file"),
            ([.. good, 0], "one byte too many"),
            (Patch(good, 0, "TMK1FVECPDQX"u8), "wrong magic"),
            (PatchInt(good, 12, 30), "other frame rate (same size)"),
            (PatchInt(good, 16, 3), "other period count (size no longer fits)"),
            (PatchInt(good, 28, 0), "no frames"),
            (PatchFloat(good, 32 + 16 + 128 + 40, float.NaN), "NaN in the pure average"),
            (PatchFloat(good, good.Length - 4, float.PositiveInfinity), "infinity in the sin features"),
            ("<error>not a tmk file</error>"u8.ToArray(), "an XML error body with 200"),
        ];
    }

    /// <summary>Valid `.tmk` files (263,344 bytes each).</summary>
    public static IReadOnlyList<byte[]> Valid { get; }

    /// <summary>Bodies that must be counted as unsupported, with what is wrong with each.</summary>
    public static IReadOnlyList<(byte[] Body, string What)> Invalid { get; }

    public static bool IsValid(byte[] body) => ValidSet.Contains(body);

    private static byte[] Make(int seed, int frames)
    {
        var rng = new Random(seed);
        var tmk = TmkFeatures.CreatePoullot();
        var feature = new float[TmkFeatures.PdqfDimension];
        var scratch = new float[TmkFeatures.PdqfDimension];
        for (var f = 0; f < frames; f++)
        {
            for (var k = 0; k < feature.Length; k++)
            {
                feature[k] = (float)((rng.NextDouble() * 2) - 1);
            }

            tmk.Ingest(feature, scratch);
        }

        tmk.Finish();
        return tmk.ToBytes();
    }

    private static byte[] Patch(byte[] source, int at, ReadOnlySpan<byte> bytes)
    {
        var copy = (byte[])source.Clone();
        bytes.CopyTo(copy.AsSpan(at));
        return copy;
    }

    private static byte[] PatchInt(byte[] source, int at, int value)
    {
        var copy = (byte[])source.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static byte[] PatchFloat(byte[] source, int at, float value)
    {
        var copy = (byte[])source.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(copy.AsSpan(at), value);
        return copy;
    }
}
