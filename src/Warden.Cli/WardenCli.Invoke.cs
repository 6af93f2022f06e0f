using System.CommandLine;

namespace Warden.Cli;

/// <summary>
/// The parts of the command tree that the native front end (src/Warden.Cli.Native) compiles too: exit codes, the
/// root description and the invocation with its error handling. Nothing here may reach Storage, Server or Review.
/// </summary>
public static partial class WardenCli
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

    /// <summary>The root command's description (the first lines of `warden --help`).</summary>
    internal const string Description =
        "Warden: hash, match and act on images, videos and AI model files for child-safety work.\n" +
        "Run 'warden COMMAND --help' for a command's options.";

    /// <summary>
    /// Every word is taken literally: no response files (an argument such as a file or bank name starting with '@'
    /// would otherwise be replaced by the contents of a file) and no POSIX bundling (which splits a word such as
    /// "-:x" into an option and a value, so an invalid name reached the command as a different, valid one).
    /// </summary>
    internal static readonly ParserConfiguration ParserSettings = new() { ResponseFileTokenReplacer = null, EnablePosixBundling = false };

    /// <summary>
    /// Parses and runs <paramref name="args"/> on <paramref name="root"/>: usage errors and failures become one line
    /// on stderr and an exit code. Shared by this program and the native front end (FrontEnd/), so both answer alike.
    /// </summary>
    internal static int Invoke(RootCommand root, string[] args, TextWriter output, TextWriter error)
    {
        var parse = root.Parse(args, ParserSettings);
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
}
