using System.CommandLine;
using System.Globalization;
using Warden.Core.Banks;

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
        kind.AcceptOnlyFromAmong("block", "allow");
        var threshold = new Option<int?>("--pdq-threshold") { Description = "PDQ distance at or below which this bank matches (default 31)." };
        var description = new Option<string?>("--description") { Description = "Free text: where the list comes from, who curates it." };
        var format = OutputFormat();
        var db = CommonOptions.Db();
        var command = new Command("create", "Create an empty bank (and the database, if it does not exist yet).") { name, kind, threshold, description, format, db };
        command.SetAction(p => CommonOptions.WithStore(p.GetRequiredValue(db), error, store =>
        {
            var b = store.CreateBank(p.GetRequiredValue(name), p.GetRequiredValue(kind) == "allow" ? BankKind.AllowList : BankKind.BlockList, p.GetValue(threshold), p.GetValue(description));
            WriteBank(output, p.GetRequiredValue(format), b, $"created bank {b.Name} ({Kind(b.Kind)}, pdq threshold {b.PdqThreshold?.ToString(CultureInfo.InvariantCulture) ?? "31 (default)"}) in {store.Path}");
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
                        j.WriteNumber("pdq_threshold", b.PdqThreshold ?? 31);
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
                        $"{b.Name,-24}  {Kind(b.Kind),-5}  {(b.Enabled ? "yes" : "no"),-7}  {b.PdqThreshold ?? 31,4}  {counts.GetValueOrDefault(b.Id),10}  {b.Description}"));
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
                j.WriteNumber("pdq_threshold", b.PdqThreshold ?? 31);
                j.WriteString("description", b.Description);
            });
        }
        else
        {
            output.WriteLine(sentence);
        }
    }

    internal static string Kind(BankKind kind) => kind == BankKind.AllowList ? "allow" : "block";
}
