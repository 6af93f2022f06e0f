using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Warden.Core.Banks;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;
using Warden.Core.Matching;
using Warden.Core.Signals;
using Warden.Storage;

namespace Warden.Cli;

/// <summary>`warden scan PATH...`: hash files and match them against the enabled banks.</summary>
internal static class ScanCommand
{
    /// <summary>Exit code with --fail-on-match when any block-list hit was not suppressed.</summary>
    public const int MatchFound = 3;

    /// <summary>
    /// Exit code with --fail-on-match when there is nothing to match against (no enabled block-list bank holds an
    /// entry): a gate that cannot fail must not pass.
    /// </summary>
    public const int NothingToMatch = 4;

    public static Command Create(TextWriter output, TextWriter error)
    {
        var paths = new Argument<string[]>("PATH") { Description = "Files or folders to scan ('-' reads one file from standard input).", Arity = ArgumentArity.OneOrMore };
        var format = CommonOptions.Format("Output, one row per hit: 'table', 'jsonl' or 'csv'.", "table", "jsonl", "csv");
        var failOnMatch = new Option<bool>("--fail-on-match")
        {
            Description = $"Exit with {MatchFound} when any content matched a block list (and no allow list suppressed it); with {NothingToMatch} before hashing when no enabled " +
                $"block-list bank holds an entry; with {WardenCli.SomeFailed} when a file could not be read or hashed; with {WardenCli.NoDatabase} when the database does not exist.",
        };
        var noDihedral = new Option<bool>("--no-dihedral") { Description = "Match only the image as stored, not its 7 rotations and mirror images." };
        var threads = new Option<int>("--threads", "-j") { Description = "Files hashed at once (default: one per CPU core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var noProgress = new Option<bool>("--no-progress") { Description = "Do not show the progress bar on stderr." };
        var noCache = new Option<bool>("--no-index-cache") { Description = "Build the indexes from the database and do not keep a snapshot beside it (DB.index/)." };
        var db = CommonOptions.Db();
        var videoMode = VideoFiles.ModeOption();
        var vpdqSeconds = VideoFiles.SecondsOption();
        var videoMaxSeconds = VideoFiles.MaxSecondsOption();
        var command = new Command("scan", "Hash files (PDQ, MD5, SHA-1, SHA-256) and match them against every enabled bank.\n" +
            "PDQ matches at each bank's threshold (default: distance ≤ 31, quality ≥ 50), over the 8 rotations/mirror images, and on the\n" +
            "image with uniform borders trimmed; crypto hashes match exactly (for any file, image or not). A hit in an allow-list bank suppresses block-list hits on the same file.\n" +
            "Videos (recognised by content; needs ffmpeg) match vpdq entries (query frames matched ≥ 80 %, with the matched time ranges), tmk_pdqf entries (level 1 and 2 ≥ 0.7) and video_md5.\n\n" +
            "Examples:\n  warden scan uploads/\n  warden scan --format jsonl --fail-on-match incoming.jpg")
        {
            paths, format, failOnMatch, noDihedral, threads, noProgress, noCache, db, videoMode, vpdqSeconds, videoMaxSeconds,
        };
        command.SetAction(p =>
        {
            if (p.GetValue(threads) < 1)
            {
                error.WriteLine("warden: --threads must be at least 1.");
                return WardenCli.UsageError;
            }

            var video = (p.GetRequiredValue(videoMode), p.GetValue(vpdqSeconds), p.GetValue(videoMaxSeconds));
            return CommonOptions.WithStore(p.GetRequiredValue(db), error, store => Execute(
                store,
                p.GetRequiredValue(paths),
                p.GetRequiredValue(format),
                p.GetValue(failOnMatch),
                !p.GetValue(noDihedral),
                p.GetValue(threads),
                !p.GetValue(noProgress),
                !p.GetValue(noCache),
                video,
                output,
                error));
        });
        return command;
    }

    private static int Execute(
        BankStore store, string[] paths, string format, bool failOnMatch, bool dihedral, int threads, bool progress, bool indexCache,
        (string Mode, double Seconds, int MaxSeconds) video, TextWriter output, TextWriter error)
    {
        var clock = Stopwatch.StartNew();
        var banks = store.ListBanks();
        if (RefuseNothingToMatch(store, banks, failOnMatch, error) is { } refused)
        {
            return refused;
        }

        using var matcher = MatcherCache.Open(store, banks, indexCache, error, out var fromCache);
        var enabled = banks.Count(b => b.Enabled);
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"warden: matching against {matcher.Count} entries in {enabled} enabled banks (loaded {(fromCache ? "from the index snapshot" : "from the database")} in {clock.Elapsed.TotalSeconds:F2} s)"));
        var writer = new HitWriter(format, output);
        var filesWithHits = 0;
        var filesActionable = 0;
        var perBank = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var (_, failed) = FileBatch.Run(
            paths,
            new BatchOptions(threads, progress, PdqResize.Fast, ImageLimits.DefaultMaxPixels, dihedral, "scanned", AcceptNonImages: true,
                Video: matcher.HasVideoSignals ? VideoFiles.Options(video.Mode, video.Seconds, matcher.HasEntries(SignalTypes.TmkPdqf), video.MaxSeconds, 1) : null),
            error,
            perFile: (hashes, v) => matcher.Match(hashes.ToSignals(v)),
            consume: r =>
            {
                if (r.Extra is not { Count: > 0 } hits)
                {
                    return;
                }

                filesWithHits++;
                if (hits.Any(h => h.Bank.Kind == BankKind.BlockList && !h.Suppressed))
                {
                    filesActionable++;
                }

                var entries = store.GetEntries(hits.Select(h => h.EntryId));
                foreach (var h in hits)
                {
                    perBank[h.Bank.Name] = perBank.GetValueOrDefault(h.Bank.Name) + 1;
                    writer.Write(r.Path, h, entries.TryGetValue(h.EntryId, out var entry) ? entry.Labels : new Dictionary<string, string>());
                }
            });
        output.Flush();
        error.WriteLine($"warden: {filesWithHits} files matched ({filesActionable} on block lists, not suppressed); hits per bank: " +
            (perBank.Count == 0 ? "none" : string.Join(", ", perBank.Select(p => $"{p.Key}={p.Value}"))));

        if (failOnMatch && filesActionable > 0)
        {
            return MatchFound;
        }

        return failed > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
    }

    /// <summary>
    /// With --fail-on-match and no enabled block-list bank holding an entry, writes why and returns
    /// <see cref="NothingToMatch"/>: refused before hashing, since such a gate would pass every upload. Without
    /// --fail-on-match it only warns. Null when there is something to match against.
    /// </summary>
    internal static int? RefuseNothingToMatch(BankStore store, IReadOnlyList<Bank> banks, bool failOnMatch, TextWriter error)
    {
        var counts = store.CountEntries();
        if (banks.Any(b => b.Enabled && b.Kind == BankKind.BlockList && counts.GetValueOrDefault(b.Id) > 0))
        {
            return null;
        }

        var why = !banks.Any(b => b.Enabled) ? "no enabled banks" : "no enabled block-list bank holds an entry";
        if (failOnMatch)
        {
            error.WriteLine($"warden: {why}, so --fail-on-match could not fail; refusing (exit {NothingToMatch}). Fill a block list with 'warden bank import' or turn one on with 'warden bank enable'.");
            return NothingToMatch;
        }

        error.WriteLine($"warden: {why}: create one with 'warden bank create' and fill it with 'warden bank import'.");
        return null;
    }

    private static string RangesText(VideoMatch m) =>
        string.Join(", ", m.Ranges.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Start:F3}-{r.End:F3} s")));

    private static void WriteVideo(Utf8JsonWriter j, VideoMatch m)
    {
        j.WriteStartObject("video");
        if (m.SignalType == "vpdq")
        {
            j.WriteNumber("query_match_percent", Math.Round(m.QueryMatchPercent, 6));
            j.WriteNumber("compared_match_percent", Math.Round(m.ComparedMatchPercent, 6));
            j.WriteStartArray("matched_ranges");
            foreach (var r in m.Ranges)
            {
                j.WriteStartObject();
                j.WriteNumber("start", Math.Round(r.Start, 3));
                j.WriteNumber("end", Math.Round(r.End, 3));
                j.WriteEndObject();
            }

            j.WriteEndArray();
        }
        else
        {
            j.WriteNumber("level1", Math.Round(m.Level1, 6));
            j.WriteNumber("level2", Math.Round(m.Level2, 6));
        }

        j.WriteEndObject();
    }

    private sealed class HitWriter(string format, TextWriter output)
    {
        private bool _header;

        public void Write(string path, MatchHit h, IReadOnlyDictionary<string, string> labels)
        {
            switch (format)
            {
                case "jsonl":
                    CommonOptions.WriteJsonLine(output, j =>
                    {
                        j.WriteString("path", path);
                        j.WriteString("signal_type", h.SignalType);
                        j.WriteString("signal", h.Signal);
                        j.WriteString("bank", h.Bank.Name);
                        j.WriteString("bank_kind", BankCommand.Kind(h.Bank.Kind));
                        j.WriteNumber("entry_id", h.EntryId);
                        j.WriteNumber("distance", h.Distance);
                        j.WriteString("variant", h.Variant);
                        j.WriteBoolean("suppressed", h.Suppressed);
                        if (h.Video is { } vm)
                        {
                            WriteVideo(j, vm);
                        }

                        j.WriteStartObject("labels");
                        foreach (var (k, v) in labels)
                        {
                            j.WriteString(k, v);
                        }

                        j.WriteEndObject();
                    });
                    break;
                case "csv":
                    if (!_header)
                    {
                        output.WriteLine("path,signal_type,signal,bank,bank_kind,entry_id,distance,variant,suppressed,labels");
                        _header = true;
                    }

                    output.WriteLine(string.Join(',', CommonOptions.CsvField(path), h.SignalType, h.Signal, CommonOptions.CsvField(h.Bank.Name), BankCommand.Kind(h.Bank.Kind),
                        h.EntryId.ToString(CultureInfo.InvariantCulture), h.Distance.ToString(CultureInfo.InvariantCulture), h.Variant, h.Suppressed ? "true" : "false",
                        CommonOptions.CsvField(JsonSerializer.Serialize(labels))));
                    break;
                default:
                    if (!_header)
                    {
                        output.WriteLine($"{"bank",-20}  {"type",-6}  {"dist",4}  {"variant",-18}  {"entry",8}  {"labels",-30}  path");
                        _header = true;
                    }

                    var bank = h.Suppressed ? h.Bank.Name + " (suppressed)" : h.Bank.Name;
                    var text = string.Join(';', labels.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{bank,-20}  {h.SignalType,-6}  {h.Distance,4}  {h.Variant,-18}  {h.EntryId,8}  {CommonOptions.Shown(text),-30}  {CommonOptions.Shown(path)}"));
                    if (h.Video is { } match)
                    {
                        output.WriteLine($"{"",-20}  {h.Signal}{(match.Ranges.Count > 0 ? "; matched at " + RangesText(match) : string.Empty)}");
                    }

                    break;
            }
        }

    }
}
