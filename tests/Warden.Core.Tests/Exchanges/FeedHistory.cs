using System.Globalization;
using System.Text.Json;
using Warden.Core.Banks;

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
            .Select(f => (Key: e.Key + "-" + f.Key, Value: (f.Key, f.Value!.ToLowerInvariant(), e.Value.Classification))))
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

    public static FakeEntry Random(Random rng, long member, string id, long timestamp)
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
        if (video && rng.Next(2) == 0)
        {
            fps["tmk-pdqf"] = null;
        }

        return new FakeEntry(member, id, video, timestamp, rng.Next(5) == 0 ? null : Classes[rng.Next(4)], fps);
    }

    public static void Fill(FakeNcmecServer server, Random rng, long t0, int entries, long spanSeconds)
    {
        for (var i = 0; i < entries; i++)
        {
            // Entry ids repeat across members (9002..9005): keys are (member, id).
            server.Put(Random(rng, 9002 + rng.Next(4), "e-" + (i / 2).ToString(CultureInfo.InvariantCulture), t0 + 1 + rng.NextInt64(spanSeconds)));
        }

        // A tombstone for an entry never seen.
        server.Delete(9009, "never-seen", t0 + 1 + rng.NextInt64(spanSeconds));
    }

    public static void Mutate(FakeNcmecServer server, Random rng, long from, long spanSeconds)
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
                server.Put(Random(rng, e.Member, e.Id, t) with { Video = e.Video });
            }
        }

        for (var i = 0; i < 5; i++)
        {
            server.Put(Random(rng, 9002 + rng.Next(4), "new-" + i.ToString(CultureInfo.InvariantCulture), from + 1 + rng.NextInt64(spanSeconds)));
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
