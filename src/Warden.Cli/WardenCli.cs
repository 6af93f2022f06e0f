using System.CommandLine;

namespace Warden.Cli;

/// <summary>The `warden` command tree. Output writers are injected so tests run it in process.</summary>
public static class WardenCli
{
    /// <summary>Exit code: every file processed.</summary>
    public const int Ok = 0;

    /// <summary>Exit code: at least one file failed (the others were still processed).</summary>
    public const int SomeFailed = 1;

    /// <summary>Exit code: bad command line.</summary>
    public const int UsageError = 2;

    /// <summary>
    /// Exit code: the database named by --db / $WARDEN_DB does not exist or is not a Warden database, and the
    /// command was not asked to create one (a configuration mistake, hence the usage code).
    /// </summary>
    public const int NoDatabase = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // Startup: build only the command asked for (hash need not load the server's or storage's code).
        var only = args.Length > 0 && Array.Exists(Commands, c => c.Name == args[0]) ? args[0] : null;
        var root = Root(output, error, only);
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { Output = output, Error = error };
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                error.WriteLine($"warden: {e.Message}");
            }

            error.WriteLine("Run 'warden --help' for usage.");
            return UsageError;
        }

        // Last line of defence: a command that meets a file or value it cannot handle says so on one line and
        // exits non-zero; no stack trace reaches the user (commands handle their expected failures themselves).
        config.EnableDefaultExceptionHandler = false;
        try
        {
            return parse.Invoke(config);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or FormatException or NotSupportedException)
        {
            error.WriteLine($"warden: {ex.Message}");
            return SomeFailed;
        }
        catch (ArgumentException ex)
        {
            error.WriteLine($"warden: {ex.Message.Split(" (Parameter", 2)[0]}");
            return UsageError;
        }
        catch (HttpRequestException ex)
        {
            // A client command (seed-demo, …) whose server is down or not yet listening: one line, not a trace.
            error.WriteLine($"warden: cannot reach the server ({ex.Message}); is 'warden serve' running and ready (GET /readyz)?");
            return SomeFailed;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            error.WriteLine($"warden: internal error ({ex.GetType().Name}): {ex.Message}");
            return SomeFailed;
        }
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
        var root = new RootCommand(
            "Warden: hash, match and act on images, videos and AI model files for child-safety work.\n" +
            "Run 'warden COMMAND --help' for a command's options.");
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
