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
        var root = Root(output, error);
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

    /// <summary>The whole command tree (tests walk it to find every command that takes --db).</summary>
    internal static RootCommand Root(TextWriter output, TextWriter error)
    {
        return new RootCommand(
            "Warden: hash, match and act on images, videos and AI model files for child-safety work.\n" +
            "Run 'warden COMMAND --help' for a command's options.")
        {
            HashCommand.Create(output, error),
            ScanCommand.Create(output, error),
            BankCommand.Create(output, error),
            ServeCommand.Create(error),
            ServeCommand.Keys(output, error),
            ProvenanceCommand.Create(output, error),
            ModelCommand.Create(output, error),
            UserCommand.Create(output, error),
            ReviewCommand.Create(output, error),
        };
    }
}
