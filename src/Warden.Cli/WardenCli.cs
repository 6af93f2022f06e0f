using System.CommandLine;

namespace Warden.Cli;

/// <summary>The `warden` command tree. Output writers are injected so tests run it in process.</summary>
public static partial class WardenCli
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // Startup: build only the command asked for (hash need not load the server's or storage's code).
        var only = args.Length > 0 && Array.Exists(Commands, c => c.Name == args[0]) ? args[0] : null;
        return Invoke(Root(output, error, only), args, output, error);
    }

    /// <summary>The top-level commands, in help order, each made only when needed.</summary>
    private static readonly (string Name, Func<TextWriter, TextWriter, Command> Make)[] Commands =
    [
        ("hash", HashCommand.Create),
        ("scan", ScanCommand.Create),
        ("bank", BankCommand.Create),
        ("exchange", ExchangeCommand.Create),
        ("serve", (_, error) => ServeCommand.Create(error)),
        ("key", ServeCommand.Keys),
        ("provenance", ProvenanceCommand.Create),
        ("model", ModelCommand.Create),
        ("user", UserCommand.Create),
        ("review", ReviewCommand.Create),
        ("backfill", Backfill.BackfillCommand.Create),
        ("worker", Backfill.BackfillCommand.Worker),
        ("bench", BenchCommand.Create),
    ];

    /// <summary>
    /// The command tree: every command (tests walk it to find each command that takes --db), or only
    /// <paramref name="only"/> when the command line names it.
    /// </summary>
    internal static RootCommand Root(TextWriter output, TextWriter error, string? only = null)
    {
        var root = new RootCommand(Description);
        foreach (var (name, make) in Commands)
        {
            if (only is null || only == name)
            {
                root.Add(make(output, error));
            }
        }

        return root;
    }
}
