using System.CommandLine;
using System.Globalization;
using Warden.Core.Banks;
using Warden.Core.Signals;

namespace Warden.Cli;

/// <summary>`warden bank create|list|import|export|enable|disable`.</summary>
internal static partial class BankCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var bank = new Command("bank", "Manage banks: named hash lists (block lists, or allow lists that suppress false positives).")
        {
            CreateCommand(output, error),
            ListCommand(output, error),
            SwitchCommand("enable", true, output, error),
            SwitchCommand("disable", false, output, error),
            ImportCommand(output, error),
            ExportCommand(output, error),
        };
        return bank;
    }

    private static Argument<string> NameArgument() => new("NAME") { Description = "The bank's name: " + BankNames.Rule + "." };

    private static Command CreateCommand(TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var kind = new Option<string>("--kind") { Description = "'block' (matches are acted on) or 'allow' (matches suppress block-list hits on the same content).", DefaultValueFactory = _ => "block" };
        kind.AcceptOnlyFromAmong([.. BankKinds.Names]);
        var threshold = new Option<int?>("--pdq-threshold") { Description = $"PDQ distance at or below which this bank matches (default {SignalTypes.Pdq.DefaultThreshold}); short for --threshold pdq=N." };
        var thresholds = new Option<string[]>("--threshold") { Description = "TYPE=DISTANCE: this bank's threshold for a signal type (repeatable), e.g. --threshold tmk_pdqf=80.", AllowMultipleArgumentsPerToken = false };
        var description = new Option<string?>("--description") { Description = "Free text: where the list comes from, who curates it." };
        var format = OutputFormat();
        var db = CommonOptions.Db();
        var command = new Command("create", "Create an empty bank (and the database, if it does not exist yet).") { name, kind, threshold, thresholds, description, format, db };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            if (!TryParseThresholds(p.GetValue(thresholds) ?? [], out var map, out var bad))
            {
                error.WriteLine($"warden: --threshold {bad}: expected TYPE=DISTANCE, e.g. pdq=24.");
                return WardenCli.UsageError;
            }

            _ = BankKinds.TryParse(p.GetRequiredValue(kind), out var bankKind); // the option accepts only BankKinds.Names
            var b = store.CreateBank(p.GetRequiredValue(name), bankKind, p.GetValue(threshold), p.GetValue(description), map);
            WriteBank(output, p.GetRequiredValue(format), b, $"created bank {b.Name} ({Kind(b.Kind)}, {ThresholdText(b)}) in {store.Path}");
            return WardenCli.Ok;
        }, create: true));
        return command;
    }

    private static Command ListCommand(TextWriter output, TextWriter error)
    {
        var format = CommonOptions.Format("Output: 'table' or 'jsonl'.", "table", "jsonl");
        var db = CommonOptions.Db();
        var command = new Command("list", "List the banks with their switches and entry counts.") { format, db };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            var counts = store.CountEntries();
            var banks = store.ListBanks();
            if (p.GetRequiredValue(format) == "jsonl")
            {
                foreach (var b in banks)
                {
                    CommonOptions.WriteJsonLine(output, j =>
                    {
                        j.WriteString("name", b.Name);
                        j.WriteString("kind", Kind(b.Kind));
                        j.WriteBoolean("enabled", b.Enabled);
                        j.WriteNumber("pdq_threshold", b.ThresholdFor(SignalTypes.Pdq));
                        WriteThresholds(j, b);
                        j.WriteNumber("entries", counts.GetValueOrDefault(b.Id));
                        j.WriteString("description", b.Description);
                    });
                }
            }
            else
            {
                output.WriteLine($"{"name",-24}  {"kind",-5}  {"enabled",-7}  {"pdq≤",4}  {"entries",10}  description");
                foreach (var b in banks)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{b.Name,-24}  {Kind(b.Kind),-5}  {(b.Enabled ? "yes" : "no"),-7}  {b.ThresholdFor(SignalTypes.Pdq),4}  {counts.GetValueOrDefault(b.Id),10}  {b.Description}"));
                }
            }

            return WardenCli.Ok;
        }));
        return command;
    }

    private static Command SwitchCommand(string verb, bool enabled, TextWriter output, TextWriter error)
    {
        var name = NameArgument();
        var format = OutputFormat();
        var db = CommonOptions.Db();
        var command = new Command(verb, enabled ? "Match this bank again." : "Stop matching this bank (its entries are kept).") { name, format, db };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            var b = store.UpdateBank(p.GetRequiredValue(name), enabled: enabled);
            WriteBank(output, p.GetRequiredValue(format), b, $"bank {b.Name} {(b.Enabled ? "enabled" : "disabled")}");
            return WardenCli.Ok;
        }));
        return command;
    }

    private static Option<string> OutputFormat() => CommonOptions.Format("Output: 'table' (a sentence) or 'jsonl' (one JSON object).", "table", "jsonl");

    private static void WriteBank(TextWriter output, string format, Bank b, string sentence)
    {
        if (format == "jsonl")
        {
            CommonOptions.WriteJsonLine(output, j =>
            {
                j.WriteString("name", b.Name);
                j.WriteNumber("id", b.Id);
                j.WriteString("kind", Kind(b.Kind));
                j.WriteBoolean("enabled", b.Enabled);
                j.WriteNumber("pdq_threshold", b.ThresholdFor(SignalTypes.Pdq));
                WriteThresholds(j, b);
                j.WriteString("description", b.Description);
            });
        }
        else
        {
            output.WriteLine(sentence);
        }
    }

    internal static string Kind(BankKind kind) => BankKinds.Name(kind);

    // The bank's own settings only; "thresholds": {} means every type at its default.
    private static void WriteThresholds(System.Text.Json.Utf8JsonWriter j, Bank b)
    {
        j.WriteStartObject("thresholds");
        foreach (var (type, value) in (b.Thresholds ?? new Dictionary<string, int>()).OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            j.WriteNumber(type, value);
        }

        j.WriteEndObject();
    }

    private static string ThresholdText(Bank b)
    {
        var own = (b.Thresholds ?? new Dictionary<string, int>()).Where(t => t.Key != SignalTypes.Pdq.Name).OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => string.Create(CultureInfo.InvariantCulture, $", {t.Key} threshold {t.Value}"));
        return string.Create(CultureInfo.InvariantCulture, $"pdq threshold {b.ThresholdFor(SignalTypes.Pdq)}{(b.PdqThreshold is null ? " (default)" : string.Empty)}") + string.Concat(own);
    }

    /// <summary>Parses TYPE=DISTANCE pairs; the values' range is storage's rule (<see cref="BankThresholds"/>), checked there.</summary>
    private static bool TryParseThresholds(string[] values, out Dictionary<string, int> map, out string? bad)
    {
        map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            var eq = value.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !int.TryParse(value.AsSpan(eq + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var distance))
            {
                bad = value;
                return false;
            }

            map[value[..eq].Trim()] = distance;
        }

        bad = null;
        return true;
    }
}
