using System.CommandLine;

namespace Warden.Cli.FrontEnd;

/// <summary>Which program answers a command line.</summary>
internal enum Route
{
    /// <summary>The native (Native AOT) front end answers itself: it needs only Warden.Core.</summary>
    Native,

    /// <summary>The full program (ReadyToRun, with storage, server and review) answers: the front end execs it.</summary>
    Full,
}

/// <summary>
/// The small Native AOT `warden` (src/Warden.Cli.Native): it starts in a few milliseconds because it is machine code
/// with no runtime to load, but it may only compile code that needs no run-time code generation, so it holds
/// just the commands built on Warden.Core (`hash`, the root's help and version). Every other command line goes,
/// unchanged, to the full ReadyToRun program beside it (`warden-full`), which the front end execs: same argv,
/// same standard streams, same exit code. Both compile the same command code, so their answers are the same
/// bytes (tests compare them in process; scripts/install compares the two binaries).
/// </summary>
internal static class NativeFrontEnd
{
    /// <summary>The full program's file name, next to the front end.</summary>
    public const string FullProgram = "warden-full";

    /// <summary>The top-level commands the front end runs itself, with their real definitions.</summary>
    private static readonly (string Name, Func<TextWriter, TextWriter, Command> Make)[] NativeCommands =
    [
        ("hash", HashCommand.Create),
    ];

    // The root's own options, answered natively only when alone (any other word after them goes to the full program).
    private static readonly string[] RootOnlyTokens = ["--help", "-h", "-?", "--version"];

    /// <summary>
    /// Decides who answers <paramref name="args"/>. Native only when sure that the native tree gives the full
    /// program's answer: no words (the root's usage error), a native command first, or the root's help/version
    /// alone. Everything else (other commands, directives, response files, typos) goes to the full program, so a
    /// wrong guess costs only start-up time, never a different answer.
    /// </summary>
    public static Route Decide(IReadOnlyList<string> args)
    {
        if (args.Count == 0)
        {
            return Route.Native;
        }

        if (Array.Exists(NativeCommands, c => string.Equals(c.Name, args[0], StringComparison.Ordinal)))
        {
            return Route.Native;
        }

        return args.Count == 1 && Array.IndexOf(RootOnlyTokens, args[0]) >= 0 ? Route.Native : Route.Full;
    }

    /// <summary>
    /// The front end's command tree: the native commands for real, every other top-level command as a stub with
    /// the same name, description and arguments (CommandCatalog, checked against the real tree by the tests), so
    /// `warden --help` lists them all. A stub never runs: Decide sends its command lines to the full program.
    /// </summary>
    public static RootCommand Root(TextWriter output, TextWriter error)
    {
        var root = new RootCommand(WardenCli.Description);
        foreach (var entry in CommandCatalog.Commands)
        {
            var native = Array.Find(NativeCommands, c => string.Equals(c.Name, entry.Name, StringComparison.Ordinal));
            root.Add(native.Make is { } make ? make(output, error) : entry.Stub());
        }

        return root;
    }

    /// <summary>Runs a command line that <see cref="Decide"/> routed here, exactly as the full program would.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) =>
        WardenCli.Invoke(Root(output, error), args, output, error);
}

/// <summary>A top-level command as `warden --help` lists it (CommandCatalog).</summary>
internal sealed record CatalogCommand(string Name, string Description, string[] Aliases, bool Hidden, CatalogArgument[] Arguments)
{
    /// <summary>A command with this name, description and arguments and no action.</summary>
    public Command Stub()
    {
        var command = new Command(Name, Description) { Hidden = Hidden };
        foreach (var alias in Aliases)
        {
            command.Aliases.Add(alias);
        }

        foreach (var a in Arguments)
        {
            command.Add(new Argument<string[]>(a.Name) { Arity = new ArgumentArity(a.MinArity, a.MaxArity), Hidden = a.Hidden, HelpName = a.HelpName });
        }

        return command;
    }
}

/// <summary>One argument of a catalogued command.</summary>
internal sealed record CatalogArgument(string Name, int MinArity, int MaxArity, bool Hidden, string? HelpName);
