using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

public sealed class NcmecXmlTests
{
    private const string Ns = "https://hashsharing.ncmec.org/hashsharing/v2";

    private static string Page(string name) => TestData.Own("ncmec-hashsharing", "scenario", name);

    private static ImportOptions Ncmec(bool skip = false, string source = "page.xml") => new(BankFileFormat.NcmecXml, SkipBadLines: skip, SourceName: source);

    private static (List<BankEntryRecord> Records, ImportReport Report) ReadFile(string path, ImportOptions? options = null)
    {
        var report = new ImportReport();
        using var file = File.OpenRead(path);
        return (BankFileReader.Read(file, options ?? Ncmec(source: Path.GetFileName(path)), report).ToList(), report);
    }

    [Fact]
    public void Page_one_maps_entries_fingerprints_labels_and_paging()
    {
        var (records, report) = ReadFile(Page("entries-window1-page1.xml"));

        // img-0001: md5, sha1, pdq; img-0002: md5, sha1, pdq (+ pdna, unsupported); a tombstone; vid-0001: md5 (+ 2 large).
        // Each live entry's records follow a tombstone of the entry, so that the entry replaces any stored version.
        Assert.Equal(
            ["9002-img-0001", "9002-img-0001-md5", "9002-img-0001-sha1", "9002-img-0001-pdq", "9003-img-0002", "9003-img-0002-md5", "9003-img-0002-sha1", "9003-img-0002-pdq", "9002-img-0000", "9002-vid-0001", "9002-vid-0001-md5"],
            records.Select(r => r.ExternalId));
        Assert.Equal([true, false, false, false, true, false, false, false, true, true, false], records.Select(r => r.Deleted));
        Assert.All(records.Where(r => r.Deleted), r => Assert.Equal((string.Empty, string.Empty), (r.SignalType, r.Signal)));
        Assert.Equal(3, report.ReplacementTombstones);
        var first = records[1];
        Assert.Equal(("md5", "6b1549446a0af52e4984df28a2c3a9e9"), (first.SignalType, first.Signal));
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["content_type"] = "image",
                ["ncmec_member"] = "9002",
                ["ncmec_member_name"] = "Example Member A",
                ["ncmec_entry_id"] = "img-0001",
                ["ncmec_timestamp"] = "2025-01-10T18:00:00Z",
                [WellKnownLabels.Classification] = "A1",
            },
            first.Labels);

        var tombstone = records[8];
        Assert.True(tombstone.Deleted);
        Assert.Equal((string.Empty, string.Empty), (tombstone.SignalType, tombstone.Signal));
        Assert.Equal("2025-01-10T12:00:00Z", tombstone.Labels["ncmec_timestamp"]);

        var video = records[10];
        Assert.Equal("video", video.Labels["content_type"]);
        Assert.Equal("A2", video.Labels["classification"]);
        Assert.Equal("tmk-pdqf,videntifier", video.Labels["ncmec_large_fingerprints"]);
        Assert.DoesNotContain(video.Labels.Values, v => v.Contains("/v2/", StringComparison.Ordinal)); // hrefs are never kept

        Assert.Equal((11L, 8L, 1L, 0L, 3L), (report.Read, report.Imported, report.Deleted, report.Skipped, report.Unsupported));
        Assert.Equal(new Dictionary<string, long> { ["pdna"] = 1, ["tmk-pdqf"] = 1, ["videntifier"] = 1 }, report.UnsupportedTypes);
        Assert.Equal("read 11, imported 8 (1 deletions), skipped 0, unsupported 3 (pdna 1, tmk-pdqf 1, videntifier 1)", report.ToString());

        var page = report.NcmecPage!;
        Assert.Equal("/v2/entries?from=2025-01-10T00%3A00%3A00.000Z&to=2025-01-11T00%3A00%3A00.000Z&start=1001&size=1000&max=1003", page.Next);
        Assert.True(page.HasMore);
        Assert.Equal(DateTimeOffset.Parse("2025-01-10T18:00:00Z", System.Globalization.CultureInfo.InvariantCulture), page.ImagesMaxTimestamp);
        Assert.Equal(DateTimeOffset.Parse("2025-01-10T20:30:00Z", System.Globalization.CultureInfo.InvariantCulture), page.MaxTimestamp);
        Assert.Equal((3, 1, 3L, 1L), (page.ImagesCount, page.VideosCount, page.Entries, page.Tombstones));
    }

    [Fact]
    public void Last_and_empty_pages_have_no_next_link()
    {
        var (_, report) = ReadFile(Page("entries-window1-page2.xml"));
        Assert.Null(report.NcmecPage!.Next);
        Assert.Equal(DateTimeOffset.Parse("2025-01-10T23:00:00Z", System.Globalization.CultureInfo.InvariantCulture), report.NcmecPage.MaxTimestamp);

        var (records, empty) = ReadFile(Page("entries-window2-empty.xml"));
        Assert.Empty(records);
        Assert.Equal(new NcmecPageInfo(null, null, null, 0, 0, 0, 0), empty.NcmecPage);
        Assert.Null(empty.NcmecPage!.MaxTimestamp);
        Assert.True(empty.Completed);
    }

    [Fact]
    public void Cursed_second_page_reports_its_next_link()
    {
        var (records, report) = ReadFile(TestData.Own("ncmec-hashsharing", "entries-cursed-second.xml"));
        Assert.Equal(3, records.Count(r => !r.Deleted));
        Assert.Equal(records.Count(r => r.Deleted), report.ReplacementTombstones);
        Assert.All(records, r => Assert.False(r.Labels.ContainsKey("classification")));
        Assert.EndsWith("start=1001&size=1000&max=412000", report.NcmecPage!.Next, StringComparison.Ordinal);
    }

    /// <summary>
    /// Replays the scenario's pages and folds the records the way an exchange must (an entry re-sent replaces the
    /// stored one; a tombstone removes the whole entry), then compares with expected.json's final state.
    /// </summary>
    [Fact]
    public void Scenario_final_state_matches_expected_json()
    {
        var state = new Dictionary<string, (string Type, string? Classification, Dictionary<string, string> Fingerprints, string? Large)>();
        var tombstones = 0;
        foreach (var file in new[] { "entries-window1-page1.xml", "entries-window1-page2.xml", "entries-window2-empty.xml" })
        {
            var (records, _) = ReadFile(Page(file));
            string? current = null;
            foreach (var r in records)
            {
                if (r.Deleted)
                {
                    tombstones++;
                    state.Remove(r.ExternalId!);
                    current = null;
                    continue;
                }

                var key = $"{r.Labels["ncmec_member"]}-{r.Labels["ncmec_entry_id"]}";
                Assert.StartsWith(key + "-", r.ExternalId, StringComparison.Ordinal);
                if (key != current)
                {
                    // The records of one entry are consecutive and follow the replacement tombstone that has
                    // already removed the stored version.
                    Assert.False(state.ContainsKey(key));
                    state[key] = (r.Labels["content_type"], r.Labels.GetValueOrDefault("classification"), [], r.Labels.GetValueOrDefault("ncmec_large_fingerprints"));
                    current = key;
                }

                state[key].Fingerprints[r.SignalType] = r.Signal;
            }
        }

        using var expected = JsonDocument.Parse(File.ReadAllText(Page("expected.json")));
        var final = expected.RootElement.GetProperty("expectedState");
        var entries = final.GetProperty("entries");
        Assert.Equal(entries.EnumerateObject().Select(p => p.Name).Order(), state.Keys.Order());
        foreach (var entry in entries.EnumerateObject())
        {
            var actual = state[entry.Name];
            var e = entry.Value;
            Assert.Equal(e.GetProperty("type").GetString(), actual.Type);
            Assert.Equal(e.GetProperty("classification").ValueKind == JsonValueKind.Null ? null : e.GetProperty("classification").GetString(), actual.Classification);
            var fingerprints = e.GetProperty("fingerprints").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            Assert.Equal(fingerprints, actual.Fingerprints);
            var large = e.TryGetProperty("largeFingerprintTypesAvailable", out var l) ? string.Join(",", l.EnumerateArray().Select(x => x.GetString())) : null;
            Assert.Equal(large, actual.Large);
        }

        foreach (var absent in final.GetProperty("absent").EnumerateObject())
        {
            Assert.False(state.ContainsKey(absent.Name), absent.Name);
        }

        Assert.Equal(2 + 5, tombstones);
    }

    [Fact]
    public void Entry_problems_are_bad_lines_with_the_entry_line()
    {
        var xml = $"""
            <?xml version="1.0" encoding="UTF-8"?>
            <queryResult xmlns="{Ns}">
              <images count="4">
                <image>
                  <member id="9002">A</member><id>ok-1</id><timestamp>2025-01-10T18:00:00Z</timestamp>
                  <fingerprints><md5>{Hashes.Md5}</md5><pdq>not-a-pdq</pdq></fingerprints>
                </image>
                <image>
                  <id>no-member</id>
                  <fingerprints><md5>{Hashes.Md5}</md5></fingerprints>
                </image>
                <image>
                  <member id="9002">A</member><id>bad-class</id><classification>C9</classification>
                  <fingerprints><md5>{Hashes.Md5}</md5><sha1>{Hashes.Sha1}</sha1><pdna>x</pdna></fingerprints>
                </image>
                <deletedImage><id>orphan</id></deletedImage>
              </images>
            </queryResult>
            """;
        var (records, report) = Import.Text(xml, Ncmec(skip: true));
        Assert.Equal(["9002-ok-1", "9002-ok-1-md5"], records.Select(r => r.ExternalId));
        Assert.Equal(
            ["page.xml:6: <image> 9002-ok-1: <pdq> A PDQ hash is 64 hex digits; got 9 characters.", "page.xml:8: <image> id no-member: no <member id=\"…\">", "page.xml:12: <image> 9002-bad-class: label 'classification' must be one of A1, A2, B1, B2; got 'C9'", "page.xml:16: <deletedImage> id orphan: no <member id=\"…\">"],
            report.Errors.Select(e => e.ToString()));
        Assert.Equal((7L, 1L, 5L, 1L), (report.Read, report.Imported, report.Skipped, report.Unsupported));
        Import.AssertBalanced(report);

        var ex = Import.Fails(xml, Ncmec());
        Assert.Equal(6, ex.Line);
    }

    [Fact]
    public void Namespaces_are_matched_not_prefixes_and_unknown_elements_are_skipped()
    {
        var xml = $"""
            <h:queryResult xmlns:h="{Ns}" xmlns:x="urn:other">
              <h:future><h:image><h:member id="1"/><h:id>skipped</h:id></h:image></h:future>
              <h:images count="1">
                <x:image><h:member id="1"/><h:id>other-ns</h:id></x:image>
                <h:image>
                  <h:member id="9002">A</h:member><h:id>e1</h:id><x:extra>ignored</x:extra>
                  <h:fingerprints><h:md5><![CDATA[{Hashes.Md5}]]></h:md5><x:md5>{Hashes.Md5}</x:md5></h:fingerprints>
                </h:image>
              </h:images>
            </h:queryResult>
            """;
        var (records, report) = Import.Text(xml, Ncmec());
        Assert.Equal(["9002-e1", "9002-e1-md5"], records.Select(r => r.ExternalId));
        Assert.Equal(1, report.UnsupportedTypes["{urn:other}md5"]);
    }
}
