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
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            error.WriteLine($"warden: internal error ({ex.GetType().Name}): {ex.Message}");
            return SomeFailed;
        }
    }
}
