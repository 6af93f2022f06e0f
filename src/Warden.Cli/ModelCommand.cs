using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Warden.Core.Banks;
using Warden.Core.ModelFiles;

namespace Warden.Cli;

/// <summary>`warden model inspect|hash|scan|add PATH...`: AI model files, read safely (nothing is ever executed).</summary>
internal static partial class ModelCommand
{
    /// <summary>Exit code when a dangerous pickle was found (or, for scan, a block-list hit).</summary>
    public const int Dangerous = 3;

    public static Command Create(TextWriter output, TextWriter error)
    {
        return new Command("model", "AI model files (safetensors, PyTorch .ckpt/.pt/.bin zip and legacy, pickles, GGUF, diffusers and PEFT folders):\n" +
            "read by content, pickles interpreted without executing anything, fingerprints that survive re-packaging (MFv1).")
        {
            InspectCommand(output, error),
            HashCommand(output, error),
            ScanCommand(output, error),
            AddCommand(output, error),
        };
    }

    private static Argument<string[]> Paths() => new("PATH") { Description = "Model files or folders (a diffusers/PEFT/sharded folder is one model; other folders are walked).", Arity = ArgumentArity.OneOrMore };

    private static Option<bool> NoProgress() => new("--no-progress") { Description = "Do not show the progress bar on stderr." };

    private static Command InspectCommand(TextWriter output, TextWriter error)
    {
        var paths = Paths();
        var format = CommonOptions.Format("Output: 'table' or 'jsonl' (one object per model).", "table", "jsonl");
        var command = new Command("inspect", "Show format, architecture, parameters per component, dtypes, metadata, pickle verdict and anomalies.\n" +
            $"Reads headers and pickles only. Exit {Dangerous} when a dangerous pickle is found.\n\nExample:\n  warden model inspect model.ckpt lora.safetensors")
        {
            paths, format,
        };
        command.SetAction(p => Run(p.GetRequiredValue(paths), error, progress: false, fingerprint: null, (item, doc, _) =>
        {
            var arch = ModelArchitecture.Classify(doc);
            if (p.GetRequiredValue(format) == "jsonl")
            {
                CommonOptions.WriteJsonLine(output, j =>
                {
                    WriteDocument(j, item, doc, arch);
                    j.WriteStartObject("metadata");
                    foreach (var (k, v) in doc.Metadata)
                    {
                        j.WriteString(k, v.Length > 4096 ? v[..4096] + "…" : v);
                    }

                    j.WriteEndObject();
                });
            }
            else
            {
                WriteDocumentTable(output, item, doc, arch);
                foreach (var (k, v) in doc.Metadata.Take(40))
                {
                    output.WriteLine($"  meta {k} = {Shorten(v, 100)}");
                }
            }
        }));
        return command;
    }

    private static Command HashCommand(TextWriter output, TextWriter error)
    {
        var paths = Paths();
        var format = CommonOptions.Format("Output: 'table' or 'jsonl' (one object per model, with every component and tensor count).", "table", "jsonl");
        var noBlake3 = new Option<bool>("--no-blake3") { Description = "Skip BLAKE3 (saves ~0.3 CPU-s per GB)." };
        var noProgress = NoProgress();
        var command = new Command("hash", "Compute file hashes (SHA-256, Civitai AutoV1/AutoV2/AutoV3, CRC32, BLAKE3) and MFv1 model and component IDs.\n\n" +
            "Example:\n  warden model hash --format jsonl model.safetensors")
        {
            paths, format, noBlake3, noProgress,
        };
        command.SetAction(p => Run(p.GetRequiredValue(paths), error, !p.GetValue(noProgress), new FingerprintOptions { Blake3 = !p.GetValue(noBlake3) }, (item, doc, fp) =>
        {
            if (p.GetRequiredValue(format) == "jsonl")
            {
                CommonOptions.WriteJsonLine(output, j =>
                {
                    j.WriteString("path", item);
                    j.WriteString("format", Format(doc.Format));
                    WriteHashes(j, fp!);
                });
            }
            else
            {
                var f = fp!.File;
                output.WriteLine(CommonOptions.Shown(item));
                if (f is not null)
                {
                    output.WriteLine($"  sha256 {f.Sha256Hex}  autov1 {f.AutoV1Hex ?? "-"}  autov2 {f.AutoV2Hex}  autov3 {f.AutoV3Short ?? "-"}  crc32 {f.Crc32Hex}{(f.Blake3Hex is null ? string.Empty : "  blake3 " + f.Blake3Hex)}");
                }

                output.WriteLine($"  mfv1_model {fp.ModelIdHex ?? "-"}");
                foreach (var c in fp.Components)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  mfv1_component {c.IdHex}  {c.Name} ({c.Tensors} tensors, {c.Parameters:N0} parameters)"));
                }
            }
        }));
        return command;
    }

    private static Command AddCommand(TextWriter output, TextWriter error)
    {
        var paths = Paths();
        var bank = new Option<string>("--bank") { Description = "Bank to add to (create it first with 'warden bank create').", Required = true };
        var name = new Option<string?>("--name") { Description = "Name to label the entries with (default: the file or folder name)." };
        var label = new Option<string[]>("--label") { Description = "Extra label KEY=VALUE (repeatable), e.g. category=csam-generator.", AllowMultipleArgumentsPerToken = true };
        var noProgress = NoProgress();
        var db = CommonOptions.Db();
        var command = new Command("add", "Register models in a bank: file hashes (SHA-256, AutoV1/V2/V3, BLAKE3), the MFv1 model and component IDs and their\n" +
            "fp16/bf16 cast paths (so down-cast copies match exactly), and sketches for near matching (kept in DB.models/).\n\n" +
            "Example:\n  warden model add --bank bad-models --label category=csam-generator suspect.safetensors")
        {
            paths, bank, name, label, noProgress, db,
        };
        command.SetAction(p =>
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var l in p.GetValue(label) ?? [])
            {
                var eq = l.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    error.WriteLine($"warden: --label '{l}' is not KEY=VALUE.");
                    return WardenCli.UsageError;
                }

                labels[l[..eq]] = l[(eq + 1)..];
            }

            if (WellKnownLabels.Validate(labels) is { } why)
            {
                error.WriteLine($"warden: {why}");
                return WardenCli.UsageError;
            }

            return CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
            {
                var target = store.RequireBank(p.GetRequiredValue(bank));
                var records = new ModelRecordStore(store.Path + ".models");
                var explicitName = p.GetValue(name);
                return Run(p.GetRequiredValue(paths), error, !p.GetValue(noProgress), new FingerprintOptions { Blake3 = true, CastPaths = true }, (item, doc, fp) =>
                {
                    var arch = ModelArchitecture.Classify(doc);
                    var modelName = explicitName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(item));
                    var id = fp!.File?.Sha256Hex ?? fp.ModelIdHex ?? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(item)));
                    var entryLabels = new Dictionary<string, string>(labels, StringComparer.Ordinal) { ["model"] = modelName, ["architecture"] = arch.Summary };
                    var signals = ModelSignals.Identity(fp);
                    // The record first: a server's model index registers it when it sees the entries (change feed).
                    records.Save(ModelRecord.From(fp, id, modelName, target.Name, arch.Summary));
                    var result = store.Import(target.Id, signals.Select(s => new BankEntryRecord(s.Type, s.Value, entryLabels, s.Part, "model:" + id)), "warden model add");
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"added {modelName} ({arch.Summary}, {Format(doc.Format)}) to {target.Name}: {signals.Count} signals ({result.Added} new), mfv1_model {fp.ModelIdHex ?? "-"}"));
                });
            });
        });
        return command;
    }

    internal static string Format(ModelFormat f) => f.Name();

    /// <summary>
    /// Reads every model under <paramref name="paths"/> in order, fingerprints it when asked, and calls
    /// <paramref name="each"/>. Returns 3 when any pickle was dangerous, 1 when any model failed, else 0.
    /// </summary>
    private static int Run(string[] paths, TextWriter error, bool progress, FingerprintOptions? fingerprint, Action<string, ModelDocument, ModelFingerprint?> each)
    {
        var clock = Stopwatch.StartNew();
        int done = 0, failed = 0, dangerous = 0;
        long bytes = 0;
        var showBar = progress && !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error);
        foreach (var (item, walked, walkError) in Expand(paths))
        {
            if (walkError is not null)
            {
                error.WriteLine($"warden: {CommonOptions.Shown(item)}: {walkError}");
                failed++;
                continue;
            }

            ModelDocument doc;
            try
            {
                doc = ModelReader.Read(item);
            }
            catch (ModelFormatException ex) when (walked && ex.NotAModel)
            {
                // A file in a walked folder that is no model format at all (README, image…) is skipped, not failed.
                error.WriteLine($"warden: {CommonOptions.Shown(item)}: skipped: {ex.Message}");
                continue;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // One file's failure is that file's error: a malformed model fails (never "safe"), the run goes on.
                error.WriteLine($"warden: {CommonOptions.Shown(item)}: {Describe(ex)}");
                failed++;
                continue;
            }

            ModelFingerprint? fp = null;
            if (fingerprint is not null)
            {
                try
                {
                    var total = doc.Files.Sum(f => new FileInfo(f).Length);
                    if (showBar && total > 256L << 20)
                    {
                        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                        console.Progress().AutoClear(true)
                            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                            .Start(ctx =>
                            {
                                var task = ctx.AddTask(Markup.Escape(Path.GetFileName(item)), maxValue: total);
                                fp = Fingerprinter.Compute(doc, fingerprint with { Progress = b => task.Value = b });
                            });
                    }
                    else
                    {
                        fp = Fingerprinter.Compute(doc, fingerprint);
                    }

                    bytes += fp!.BytesRead;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    error.WriteLine($"warden: {CommonOptions.Shown(item)}: {Describe(ex)}");
                    failed++;
                    continue;
                }
            }

            done++;
            if (doc.Verdict == PickleVerdict.Dangerous)
            {
                dangerous++;
            }

            if (doc.Anomalies.Any(a => a.Code == "folder.unreadable"))
            {
                failed++;
            }

            try
            {
                each(item, doc, fp);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                error.WriteLine($"warden: {CommonOptions.Shown(item)}: {Describe(ex)}");
                failed++;
            }
        }

        if (done + failed > 1 || failed > 0 || fingerprint is not null)
        {
            var seconds = clock.Elapsed.TotalSeconds;
            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"warden: {done} models read{(fingerprint is null ? string.Empty : $" ({bytes / 1e6:F1} MB fingerprinted, {bytes / 1e9 / Math.Max(seconds, 1e-9):F2} GB/s)")} in {seconds:F2} s; {dangerous} with dangerous pickles; {failed} failed"));
        }

        return dangerous > 0 ? Dangerous : failed > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
    }

    /// <summary>Model items in a stable order: files, model folders as one item, other folders walked (links not followed).</summary>
    internal static IEnumerable<(string Item, bool Walked, string? Error)> Expand(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            if (File.Exists(path))
            {
                yield return (path, false, null);
            }
            else if (Directory.Exists(path))
            {
                var stack = new Stack<string>();
                stack.Push(path);
                while (stack.Count > 0)
                {
                    var dir = stack.Pop();
                    if (ModelReader.IsModelFolder(dir))
                    {
                        yield return (dir, dir != path, null);
                        continue;
                    }

                    var entries = new List<(string, bool)>();
                    foreach (var e in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
                    {
                        var info = new FileInfo(e);
                        if (info.LinkTarget is not null)
                        {
                            continue;
                        }

                        entries.Add((e, Directory.Exists(e)));
                    }

                    foreach (var (e, isDir) in entries.Where(x => !x.Item2))
                    {
                        yield return (e, true, null);
                    }

                    foreach (var (e, _) in entries.Where(x => x.Item2).Reverse())
                    {
                        stack.Push(e);
                    }
                }
            }
            else
            {
                yield return (path, false, "no such file or folder");
            }
        }
    }

    private static void WriteDocument(Utf8JsonWriter j, string item, ModelDocument doc, ArchitectureGuess arch)
    {
        j.WriteString("path", item);
        j.WriteString("format", Format(doc.Format));
        j.WriteString("architecture", arch.Family);
        if (arch.Variant is not null)
        {
            j.WriteString("variant", arch.Variant);
        }

        j.WriteString("kind", arch.Kind);
        j.WriteStartArray("evidence");
        foreach (var e in arch.Evidence)
        {
            j.WriteStringValue(e);
        }

        j.WriteEndArray();
        j.WriteNumber("tensors", doc.Tensors.Count);
        j.WriteStartObject("parameters");
        foreach (var g in doc.Tensors.GroupBy(t => TensorNames.Canonicalize(t.Name, doc.FileComponents.GetValueOrDefault(t.Source, string.Empty))?.Component ?? "buffers").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            j.WriteNumber(g.Key, SaturatingSum(g));
        }

        j.WriteEndObject();
        j.WriteStartObject("dtypes");
        foreach (var g in doc.Tensors.GroupBy(t => t.DType).OrderBy(g => g.Key))
        {
            j.WriteNumber(g.Key.ToString(), g.Count());
        }

        j.WriteEndObject();
        j.WriteString("pickle_verdict", Verdict(doc));
        j.WriteStartArray("pickle_findings");
        foreach (var p in doc.Pickles)
        {
            foreach (var f in p.Findings.Take(100))
            {
                j.WriteStartObject();
                j.WriteString("member", p.Member);
                j.WriteString("verdict", f.Verdict.ToString().ToLowerInvariant());
                j.WriteString("kind", f.Kind);
                j.WriteString("symbol", f.Symbol);
                j.WriteNumber("offset", f.Offset);
                j.WriteString("detail", f.Detail);
                j.WriteEndObject();
            }
        }

        j.WriteEndArray();
        j.WriteStartArray("anomalies");
        foreach (var a in doc.Anomalies.Take(200))
        {
            j.WriteStartObject();
            j.WriteString("severity", a.Severity.ToString().ToLowerInvariant());
            j.WriteString("code", a.Code);
            j.WriteString("message", a.Message);
            j.WriteEndObject();
        }

        j.WriteEndArray();
    }

    private static void WriteDocumentTable(TextWriter output, string item, ModelDocument doc, ArchitectureGuess arch)
    {
        output.WriteLine(CommonOptions.Shown(item));
        output.WriteLine($"  format {Format(doc.Format)}; architecture {arch.Summary}; {doc.Tensors.Count} tensors; pickle {Verdict(doc)}; {doc.Anomalies.Count} anomalies");
        foreach (var e in arch.Evidence.Take(6))
        {
            output.WriteLine($"  evidence {e}");
        }

        foreach (var g in doc.Tensors.GroupBy(t => TensorNames.Canonicalize(t.Name, doc.FileComponents.GetValueOrDefault(t.Source, string.Empty))?.Component ?? "buffers").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var dtypes = string.Join(", ", g.GroupBy(t => t.DType).Select(d => $"{d.Key}×{d.Count()}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  component {g.Key,-8} {g.Count(),6} tensors {SaturatingSum(g),14:N0} parameters  {dtypes}"));
        }

        WriteFindings(output, doc);
    }

    internal static void WriteFindings(TextWriter output, ModelDocument doc)
    {
        foreach (var p in doc.Pickles)
        {
            foreach (var f in p.Findings.Take(20))
            {
                output.WriteLine($"  {f.Verdict.ToString().ToUpperInvariant()} {p.Member}: {f.Kind} {f.Symbol} at {f.Offset}: {f.Detail}");
            }
        }

        foreach (var a in doc.Anomalies.Take(20))
        {
            output.WriteLine($"  anomaly {a.Severity.ToString().ToLowerInvariant()} {a.Code}: {a.Message}");
        }
    }

    internal static string Verdict(ModelDocument doc) => doc.Pickles.Count == 0 ? "none" : doc.Verdict.ToString().ToLowerInvariant();

    private static void WriteHashes(Utf8JsonWriter j, ModelFingerprint fp)
    {
        if (fp.File is { } f)
        {
            j.WriteString("sha256", f.Sha256Hex);
            j.WriteString("civitai_autov1", f.AutoV1Hex);
            j.WriteString("civitai_autov2", f.AutoV2Hex);
            j.WriteString("civitai_autov3", f.AutoV3Short);
            j.WriteString("autov3_full", f.AutoV3Hex);
            j.WriteString("crc32", f.Crc32Hex);
            if (f.Blake3Hex is not null)
            {
                j.WriteString("blake3", f.Blake3Hex);
            }
        }

        j.WriteString("mfv1_model", fp.ModelIdHex);
        j.WriteStartArray("components");
        foreach (var c in fp.Components)
        {
            j.WriteStartObject();
            j.WriteString("name", c.Name);
            j.WriteString("mfv1_component", c.IdHex);
            j.WriteNumber("tensors", c.Tensors);
            j.WriteNumber("parameters", c.Parameters);
            j.WriteEndObject();
        }

        j.WriteEndArray();
        if (fp.Lora.Count > 0)
        {
            j.WriteNumber("lora_modules", fp.Lora.Count);
        }

        var unread = fp.Tensors.Count(t => t.Hash is null);
        if (unread > 0)
        {
            j.WriteNumber("tensors_not_hashed", unread);
        }
    }

    private static string Describe(Exception ex) =>
        ex is ModelFormatException or IOException or UnauthorizedAccessException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";

    // Parameter totals saturate instead of overflowing (checked LINQ sums threw on absurd shapes).
    private static long SaturatingSum(IEnumerable<TensorInfo> tensors)
    {
        long total = 0;
        foreach (var t in tensors)
        {
            var n = t.Count;
            total = n > long.MaxValue - total ? long.MaxValue : total + n;
        }

        return total;
    }

    private static string Shorten(string s, int n) => s.Length <= n ? s : s[..n] + "…";
}
