using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;
using Warden.Core.Signals;
using Warden.Storage;

namespace Warden.Cli;

/// <summary>`warden bank import` and `warden bank export`.</summary>
internal static partial class BankCommand
{
    private static Command ImportCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var file = new Argument<string>("FILE") { Description = "The list to import ('-' for standard input)." };
        var format = new Option<string?>("--list-format", "-l") { Description = "The file's format: csv, jsonl, plain (one hash per line) or ncmec (Hash Sharing v2 XML). Default: detected from the content and name." };
        format.AcceptOnlyFromAmong([.. ListFormatRegistry.Current.All.SelectMany(f => f.Aliases.Prepend(f.Name))]);
        var signalType = new Option<string?>("--signal-type", "-t") { Description = "For plain lists: pdq, md5, sha1, sha256, or auto (by length; 64 digits must be named)." };
        var onError = new Option<string>("--on-error") { Description = "On a bad line: 'abort' (stop, say file:line:reason; lines before it stay imported) or 'skip' (report it and go on).", DefaultValueFactory = _ => "abort" };
        onError.AcceptOnlyFromAmong("abort", "skip");
        var noProgress = new Option<bool>("--no-progress") { Description = "Do not show the progress bar on stderr." };
        var outputFormat = CommonOptions.Format("Summary: 'table' (a sentence) or 'jsonl' (one JSON object).", "table", "jsonl");
        var db = CommonOptions.Db();
        var command = new Command("import", "Import a hash list into a bank. Re-importing the same file adds nothing; changed labels update entries; NCMEC tombstones delete them.\n\n" +
            "Examples:\n  warden bank import iwf iwf-2026-11.csv\n  warden bank import hotline list.txt --list-format plain --signal-type md5\n  warden bank import ncmec page-0001.xml --on-error skip")
        {
            name, file, format, signalType, onError, noProgress, outputFormat, db,
        };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
            Import(store, p.GetRequiredValue(name), p.GetRequiredValue(file), p.GetValue(format), p.GetValue(signalType), p.GetRequiredValue(onError) == "skip", !p.GetValue(noProgress), p.GetRequiredValue(outputFormat) == "jsonl", output, error)));
        return command;
    }

    private static int Import(BankStore store, string bankName, string path, string? formatName, string? signalType, bool skip, bool progress, bool json, TextWriter output, TextWriter error)
    {
        var bank = store.RequireBank(bankName);
        Stream raw;
        try
        {
            raw = path == "-" ? Console.OpenStandardInput() : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"warden: {path}: cannot read: {ex.Message}");
            return WardenCli.SomeFailed;
        }

        using (raw)
        {
            var stream = raw;
            BankFileFormat format;
            if (formatName is not null)
            {
                format = ParseFormat(formatName);
            }
            else
            {
                var buffered = new BufferedStream(stream, 1 << 16);
                Span<byte> head = stackalloc byte[4096];
                var n = buffered.CanSeek ? buffered.Read(head) : 0;
                if (buffered.CanSeek)
                {
                    buffered.Seek(0, SeekOrigin.Begin);
                }

                if (BankFileReader.Detect(path, head[..n]) is not { } detected)
                {
                    error.WriteLine($"warden: {path}: cannot tell the list format; give --list-format {string.Join("|", BankFileFormats.Names)}.");
                    return WardenCli.UsageError;
                }

                format = detected;
                stream = buffered;
            }

            if (format.NeedsSignalType && string.IsNullOrWhiteSpace(signalType))
            {
                // A plain list names no type: take md5/sha1 by length when every line shows it, else ask.
                if (!stream.CanSeek || !LooksLikeMd5OrSha1(stream))
                {
                    error.WriteLine($"warden: {path}: cannot tell the signal type of a plain list; give --signal-type {string.Join("|", SignalTypes.All.Select(t => t.Name))} (or auto: md5/sha1 by length).");
                    return WardenCli.UsageError;
                }

                signalType = ImportOptions.AutoSignalType;
            }

            var report = new ImportReport();
            var total = stream.CanSeek ? stream.Length : 0;
            var showProgress = progress && total > 1 << 20 && !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error);
            ProgressTask? task = null;
            var options = new ImportOptions(format, signalType, SkipBadLines: skip, SourceName: path, Progress: p =>
            {
                if (task is not null && p.BytesRead is { } b)
                {
                    task.Value = b;
                }
            })
            {
                OnError = skip ? e => error.WriteLine($"warden: {e}") : null,
            };

            IEnumerable<BankEntryRecord> records;
            try
            {
                records = BankFileReader.Read(stream, options, report);
            }
            catch (ArgumentException ex)
            {
                // Options that cannot work for this list (no or unknown signal type, bad labels): a usage error.
                error.WriteLine($"warden: {path}: {ex.Message.Split(" (Parameter", 2)[0]}");
                return WardenCli.UsageError;
            }

            ImportResult? result = null;
            try
            {
                void Run() => result = store.Import(bank.Id, records, Path.GetFileName(path));
                if (showProgress)
                {
                    AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }).Progress()
                        .AutoClear(true)
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                        .Start(ctx =>
                        {
                            task = ctx.AddTask($"importing {Path.GetFileName(path)}", maxValue: total);
                            Run();
                        });
                }
                else
                {
                    Run();
                }
            }
            catch (IOException ex)
            {
                error.WriteLine($"warden: {path}: cannot read: {ex.Message}");
                return WardenCli.SomeFailed;
            }
            catch (BankFormatException ex)
            {
                error.WriteLine($"warden: {ex.Error}");
                error.WriteLine($"warden: import stopped; {report.Read} records before line {ex.Line} are in bank {bank.Name}. Fix the line (or use --on-error skip) and import again: re-imported entries are not duplicated.");
                return WardenCli.SomeFailed;
            }

            var r = result!;
            if (json)
            {
                CommonOptions.WriteJsonLine(output, j =>
                {
                    j.WriteString("bank", bank.Name);
                    j.WriteString("file", path);
                    j.WriteString("format", BankFileFormats.Name(format));
                    j.WriteNumber("records", r.Processed);
                    j.WriteNumber("added", r.Added);
                    j.WriteNumber("updated", r.Updated);
                    j.WriteNumber("unchanged", r.Unchanged);
                    j.WriteNumber("deleted", r.Deleted);
                    j.WriteNumber("bad_lines", report.ErrorCount);
                    j.WriteNumber("unsupported", report.Unsupported);
                });
                return report.ErrorCount > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"imported {path} into {bank.Name} ({BankFileFormats.Name(format)}): {r.Processed} records, {r.Added} added, {r.Updated} updated, {r.Unchanged} unchanged, {r.Deleted} deleted; {report.ErrorCount} bad lines skipped, {report.Unsupported} unsupported fingerprints"));
            return report.ErrorCount > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
        }
    }

    private static Command ExportCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var writable = ListFormatRegistry.Current.Writable.ToList();
        var format = CommonOptions.Format($"{string.Join(", ", writable.Select(f => f.Name))} (plain: one signal per line).", [.. writable.SelectMany(f => f.Aliases.Prepend(f.Name))]);
        var to = new Option<string?>("--output", "-o") { Description = "Write to this file instead of standard output." };
        var signalType = new Option<string?>("--signal-type", "-t") { Description = "Only entries of this signal type (required for plain lists of mixed banks)." };
        var includeDeleted = new Option<bool>("--include-deleted") { Description = "Also write tombstones (jsonl and csv mark them)." };
        var db = CommonOptions.Db();
        var command = new Command("export", "Write a bank's entries as a list file that 'warden bank import' reads back.") { name, format, to, signalType, includeDeleted, db };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            var bank = store.RequireBank(p.GetRequiredValue(name));
            var f = ParseFormat(p.GetRequiredValue(format));
            var entries = store.ExportEntries(bank.Id, p.GetValue(includeDeleted))
                .Select(e => new BankEntryRecord(e.SignalType, e.Signal, e.Labels, e.Note, e.ExternalId, e.Deleted));
            var options = new ExportOptions { SignalType = p.GetValue(signalType), IncludeDeleted = p.GetValue(includeDeleted) };
            ExportResult result;
            if (p.GetValue(to) is { } file)
            {
                using var stream = new FileStream(file, FileMode.Create, FileAccess.Write);
                result = BankFileWriter.Write(stream, f, entries, options);
                error.WriteLine($"warden: wrote {result.Written} entries of {bank.Name} to {file}");
            }
            else
            {
                result = BankFileWriter.Write(output, f, entries, options);
                output.Flush();
            }

            return WardenCli.Ok;
        }));
        return command;
    }

    /// <summary>Whether the first lines of a seekable list are all 32 or 40 hex digits (md5/sha1); the position is kept.</summary>
    private static bool LooksLikeMd5OrSha1(Stream stream)
    {
        var start = stream.Position;
        var head = new byte[4096];
        var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = start;
        var lines = System.Text.Encoding.UTF8.GetString(head, 0, n).Split('\n');
        if (n == head.Length)
        {
            lines = lines[..^1]; // the last line may be cut
        }

        var values = lines.Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] != '#').ToList();
        return values.Count > 0 && values.All(v => v.Length is 32 or 40 && v.All(char.IsAsciiHexDigit));
    }

    // The options accept only known names, so a failure here is a bug, not user input.
    private static BankFileFormat ParseFormat(string name) =>
        BankFileFormats.TryParse(name, out var f) ? f : throw new InvalidOperationException($"unknown list format {name}");
}
