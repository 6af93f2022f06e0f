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

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "Warden: hash, match and act on images, videos and AI model files for child-safety work.\n" +
            "Run 'warden COMMAND --help' for a command's options.")
        {
            HashCommand.Create(output, error),
            ScanCommand.Create(output, error),
            BankCommand.Create(output, error),
            ExchangeCommand.Create(output, error),
            ServeCommand.Create(error),
            ServeCommand.Keys(output, error),
            ProvenanceCommand.Create(output, error),
            ModelCommand.Create(output, error),
            UserCommand.Create(output, error),
            ReviewCommand.Create(output, error),
        };

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

        return parse.Invoke(config);
    }
}
