using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Warden.Core.Banks;
using Warden.Core.Provenance;
using Warden.Core.Runtime;

namespace Warden.Cli;

/// <summary>`warden provenance PATH...`: AI-generation signals of images and their links to banked model files.</summary>
internal static class ProvenanceCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var paths = new Argument<string[]>("PATH")
        {
            Description = "Files or folders ('-' reads one file from standard input). Folders are walked recursively.",
            Arity = ArgumentArity.OneOrMore,
        };
        var format = CommonOptions.Format("Output: 'table' (for reading) or 'jsonl' (one JSON object per file).", "table", "jsonl");
        var db = new Option<string?>("--db")
        {
            Description = $"Look the model hashes the images name up in the banks of this database (default: ${CommonOptions.DbEnvironmentVariable} if set; otherwise no lookup).",
        };
        var includePrompts = new Option<bool>("--include-prompts") { Description = "Print prompt text (by default only its SHA-256: prompts can be evidence)." };
        var pixels = new Option<string>("--pixels")
        {
            Description = "Decode pixels for the invisible watermark and alpha-LSB data: 'none' (default, metadata only), 'auto' (when the metadata says nothing), 'always'.",
            DefaultValueFactory = _ => "none",
        };
        pixels.AcceptOnlyFromAmong("none", "auto", "always");
        var anchors = new Option<string?>("--trust-anchors") { Description = "PEM file of trusted C2PA signing roots (e.g. the C2PA trust list). Without it, valid signatures are reported as untrusted." };
        var noVerify = new Option<bool>("--no-verify") { Description = "Read C2PA manifests without checking hashes and signatures." };
        var threads = new Option<int>("--threads", "-j") { Description = "Files read at once (default: one per CPU core).", DefaultValueFactory = _ => Environment.ProcessorCount };

        var command = new Command("provenance", "Report AI-generation signals: generator metadata (A1111/Forge, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI, Midjourney), " +
            "model references with their hashes, C2PA manifests (verified), IPTC XMP, invisible watermarks and weak hints, with a verdict.\n" +
            "Metadata is a claim by whoever wrote the file: it can be forged or stripped, and its absence proves nothing.\n\n" +
            "Examples:\n  warden provenance image.png\n  warden provenance --format jsonl --db warden.db uploads/\n  warden provenance --pixels auto --trust-anchors c2pa-trust.pem photo.jpg")
        {
            paths, format, db, includePrompts, pixels, anchors, noVerify, threads,
        };

        command.SetAction(p =>
        {
            if (p.GetValue(threads) < 1)
            {
                error.WriteLine("warden: --threads must be at least 1.");
                return WardenCli.UsageError;
            }

            X509Certificate2[]? trust = null;
            if (p.GetValue(anchors) is { } pem)
            {
                try
                {
                    var collection = new X509Certificate2Collection();
                    collection.ImportFromPemFile(pem);
                    trust = [.. collection];
                }
                catch (Exception ex) when (ex is IOException or CryptographicException or UnauthorizedAccessException)
                {
                    error.WriteLine($"warden: --trust-anchors {pem}: {ex.Message}");
                    return WardenCli.UsageError;
                }
            }

            var options = ProvenanceOptions.Default with
            {
                IncludePrompts = p.GetValue(includePrompts),
                Pixels = p.GetRequiredValue(pixels) switch { "auto" => PixelChecks.WhenNoMetadata, "always" => PixelChecks.Always, _ => PixelChecks.None },
                TrustAnchors = trust,
                VerifyC2pa = !p.GetValue(noVerify),
            };
            var dbPath = p.GetValue(db) ?? (Environment.GetEnvironmentVariable(CommonOptions.DbEnvironmentVariable) is { Length: > 0 } env ? env : null);
            var run = (BankMatcher? matcher) => Execute(p.GetRequiredValue(paths), p.GetRequiredValue(format), options, matcher, p.GetValue(threads), output, error);
            if (dbPath is null)
            {
                return run(null);
            }

            return CommonOptions.WithStore(dbPath, error, store =>
            {
                using var matcher = MatcherCache.Open(store, store.ListBanks(), useCache: true, error, out _);
                return run(matcher);
            });
        });
        return command;
    }

    private sealed record Outcome(string Path, ProvenanceReport? Report, string? Error);

    internal static int Execute(string[] paths, string format, ProvenanceOptions options, BankMatcher? matcher, int threads, TextWriter output, TextWriter error)
    {
        var items = FileWalker.Expand(paths).ToList();
        var results = items
            .AsParallel()
            .AsOrdered()
            .WithDegreeOfParallelism(Math.Clamp(threads, 1, 512))
            .WithMergeOptions(ParallelMergeOptions.NotBuffered)
            .Select(item => item.Error is not null ? new Outcome(item.Path, null, item.Error) : Process(item.Path, options, matcher));
        var failed = 0;
        var files = 0;
        foreach (var r in results)
        {
            files++;
            if (r.Error is not null)
            {
                failed++;
                error.WriteLine($"warden: {CommonOptions.Shown(r.Path)}: {r.Error}");
                continue;
            }

            if (format == "jsonl")
            {
                CommonOptions.WriteJsonLine(output, json => ProvenanceJson.WriteProperties(json, r.Report!, r.Path));
            }
            else
            {
                WriteTable(output, r.Path, r.Report!);
            }
        }

        if (format == "table" && files - failed > 0)
        {
            output.WriteLine($"note: {ProvenanceReport.Caveat}.");
        }

        output.Flush();
        return failed > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
    }

    private static Outcome Process(string path, ProvenanceOptions options, BankMatcher? matcher)
    {
        try
        {
            byte[] bytes;

            // Standard input and named paths alike are read with the size limit as a ceiling: a pipe or device
            // that never ends (/dev/zero) is refused at the limit instead of filling memory.
            var max = options.Limits.MaxFileBytes;
            using (var source = path == FileWalker.StandardInput ? Console.OpenStandardInput() : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
            {
                if (source.CanSeek && source.Length > max)
                {
                    return new Outcome(path, null, $"the file has {source.Length} bytes; the limit is {max}");
                }

                if (BoundedRead.ReadAll(source, max) is not { } read)
                {
                    return new Outcome(path, null, $"more than {max} bytes arrived; the limit is {max}");
                }

                bytes = read;
            }

            var report = ProvenanceReader.Read(bytes, options);
            if (matcher is not null)
            {
                ModelLinker.Link(report, matcher);
            }

            return new Outcome(path, report, null);
        }
        catch (ProvenanceException ex)
        {
            return new Outcome(path, null, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Outcome(path, null, $"cannot read: {ex.Message}");
        }
    }

    private static void WriteTable(TextWriter output, string path, ProvenanceReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        var generator = r.Generator is { } g ? g.Tool + (g.Version is null ? string.Empty : " " + g.Version) : "-";
        var c2pa = r.C2pa is { Present: true } c ? "c2pa:" + c.Validation : r.C2pa?.RemoteManifestUrl is not null ? "c2pa:remote" : "-";
        output.WriteLine(string.Create(inv, $"{CommonOptions.Shown(path)}  ai={r.Verdict.AiGenerated} score={r.Verdict.Score:0.00}  generator={CommonOptions.Shown(generator)}  {c2pa}  models={r.ModelRefs.Count}  bank-hits={r.ModelMatches.Count}"));
        foreach (var s in r.Signals)
        {
            var where = s.Location is { } l ? $"{l.Container}:{l.Chunk}{(l.Key is null ? string.Empty : ":" + l.Key)}" : string.Empty;
            var fields = string.Join(", ", s.Parsed.Where(p => !p.Key.EndsWith("_sha256", StringComparison.Ordinal)).Take(6).Select(p => $"{p.Key}={Short(p.Value)}"));
            // Keys, values and chunk names come from the file itself: shown escaped, one line per signal whatever they hold.
            output.WriteLine(string.Create(inv, $"  {s.Id} {s.Type,-22} {s.AiIndication.ToString().ToLowerInvariant(),-8} {s.Confidence:0.00}  {CommonOptions.Shown(where)}  {CommonOptions.Shown(fields)}"));
        }

        for (var i = 0; i < r.ModelRefs.Count; i++)
        {
            var m = r.ModelRefs[i];
            var hashes = string.Join(" ", m.Hashes.Select(h => $"{h.Scheme}:{h.Value}"));
            var weight = m.Weight is { } w ? string.Create(inv, $" weight={w:0.###}") : string.Empty;
            output.WriteLine($"  model {m.Role} {CommonOptions.Shown(m.Name ?? "?")}{weight} {CommonOptions.Shown(hashes)} (from {m.SignalId})");
            foreach (var hit in r.ModelMatches.Where(x => x.ModelIndex == i))
            {
                output.WriteLine($"    MATCH {hit.SignalType}:{hit.Hash.Value} in bank '{hit.Hit.Bank.Name}' ({hit.Hit.Bank.Kind}) entry {hit.Hit.EntryId}{(hit.Hit.Suppressed ? " (suppressed by an allow list)" : string.Empty)}");
            }
        }

        foreach (var w in r.Warnings.Skip(1))
        {
            output.WriteLine($"  warning: {w}");
        }
    }

    private static string Short(string s) => s.Length > 60 ? s[..57] + "..." : s.ReplaceLineEndings(" ");
}
