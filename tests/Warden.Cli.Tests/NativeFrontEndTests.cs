using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Cli.FrontEnd;

namespace Warden.Cli.Tests;

/// <summary>
/// The native front end (src/Warden.Cli.Native) answers only what it can answer exactly as the full program does:
/// its routing, its command tree and its catalog of the commands it hands on are checked here against the real
/// command tree, in process (the two binaries themselves are compared by scripts/install, which builds them).
/// </summary>
public sealed partial class NativeFrontEndTests
{
    private static readonly string RepoRoot = Warden.Core.Tests.TestData.RepoRoot;
    private static readonly string CatalogFile = Path.Combine(RepoRoot, "src", "Warden.Cli", "FrontEnd", "CommandCatalog.cs");
    private static readonly string Samples = Path.Combine(RepoRoot, "samples", "images");

    private static (int Exit, string Out, string Err) Full(string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var exit = WardenCli.Run(args, output, error);
        return (exit, output.ToString(), Timeless(error.ToString()));
    }

    private static (int Exit, string Out, string Err) Native(string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var exit = NativeFrontEnd.Run(args, output, error);
        return (exit, output.ToString(), Timeless(error.ToString()));
    }

    // The batch summary on stderr holds elapsed times and rates, which differ between any two runs.
    [GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial Regex Number();

    private static string Timeless(string stderr) => string.Join('\n', stderr.Split('\n').Select(l =>
        l.Contains(" s (", StringComparison.Ordinal) || l.Contains("files/s", StringComparison.Ordinal) ? Number().Replace(l, "N") : l));

    [Fact]
    public void The_catalog_lists_every_top_level_command_as_the_real_tree_does()
    {
        // WARDEN_UPDATE_CATALOG=1 rewrites the file after a command's name, description or arguments changed.
        var expected = Generate(WardenCli.Root(TextWriter.Null, TextWriter.Null));
        if (Environment.GetEnvironmentVariable("WARDEN_UPDATE_CATALOG") == "1")
        {
            File.WriteAllText(CatalogFile, expected);
        }

        Assert.True(expected == File.ReadAllText(CatalogFile).ReplaceLineEndings("\n"),
            "src/Warden.Cli/FrontEnd/CommandCatalog.cs is stale: a top-level command changed. Regenerate it with\n" +
            "  WARDEN_UPDATE_CATALOG=1 dotnet test tests/Warden.Cli.Tests --filter FullyQualifiedName~NativeFrontEndTests.The_catalog");
    }

    [Fact]
    public void The_front_ends_tree_has_the_same_commands_in_the_same_order_and_only_native_ones_have_actions()
    {
        var real = WardenCli.Root(TextWriter.Null, TextWriter.Null);
        var native = NativeFrontEnd.Root(TextWriter.Null, TextWriter.Null);
        Assert.Equal(real.Subcommands.Select(c => c.Name), native.Subcommands.Select(c => c.Name));
        Assert.Equal(real.Description, native.Description);
        foreach (var c in native.Subcommands)
        {
            // A stub with an action would answer for the full program; Decide must never send its lines here.
            var routed = NativeFrontEnd.Decide([c.Name]);
            Assert.Equal(c.Action is not null || c.Subcommands.Count > 0, routed == Route.Native);
        }
    }

    [Theory]
    [InlineData]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("-?")]
    [InlineData("--version")]
    [InlineData("hash", "--help")]
    [InlineData("hash")]
    [InlineData("hash", "--format", "xml", "x.jpg")]
    public void Root_and_hash_help_usage_errors_and_version_are_the_full_programs_bytes(params string[] args)
    {
        Assert.Equal(Route.Native, NativeFrontEnd.Decide(args));
        var full = Full(args);
        Assert.False(string.IsNullOrEmpty(full.Out + full.Err), "the full program said nothing");
        Assert.Equal(full, Native(args));
    }

    [Theory]
    [InlineData("scan", "x.jpg")]
    [InlineData("bank", "list")]
    [InlineData("serve")]
    [InlineData("--help", "bank")]
    [InlineData("--version", "--help")]
    [InlineData("[diagram]", "hash", "x.jpg")]
    [InlineData("@args.rsp")]
    [InlineData("Hash", "x.jpg")]
    [InlineData("hsah", "x.jpg")]
    [InlineData("/?")]
    [InlineData("--db", "x.db", "hash")]
    public void Every_other_command_line_goes_to_the_full_program(params string[] args) =>
        Assert.Equal(Route.Full, NativeFrontEnd.Decide(args));

    /// <summary>Words a command line is made of: hash's options and values, other commands, samples, junk.</summary>
    private static readonly string[] Words =
    [
        "hash", "hash", "hash", "--help", "-h", "-?", "--version", "-f", "--format", "jsonl", "csv", "table", "xml",
        "--dihedral", "--pdq-resize", "fast", "full", "cli512", "--threads", "-j", "0", "1", "2", "--max-pixels", "100",
        "--no-progress", "--tmk", "--video", "scan", "bank", "model", "serve", "key", "--db", "[diagram]", "--", "-x",
        "checkers.gif", "gradient.bmp", "radial.png", "sunset-plasma.jpg", "swirl.webp", "tile.tif", ".", "missing.jpg",
        "README.md",
    ];

    // Mostly hash command lines (the ones the front end runs), the rest anything: up to 7 words.
    private static readonly Gen<string[]> CommandLines =
        Gen.Frequency(
            (3, Gen.Elements(Words).ArrayOf().Select(rest => (string[])["hash", .. rest])),
            (1, Gen.Elements(Words).ArrayOf()))
        .Select(a => a.Length > 7 ? a[..7] : a);

    [Property(MaxTest = 150)]
    public Property Whatever_the_front_end_answers_itself_it_answers_as_the_full_program_does() =>
        Prop.ForAll(CommandLines.ToArbitrary(), words =>
        {
            // Sample names become real paths; "." the samples folder, README.md a file that is not an image.
            var args = words.Select(w => w switch
            {
                "." => Samples,
                "README.md" => Path.Combine(RepoRoot, "README.md"),
                _ when w.Contains('.', StringComparison.Ordinal) && !w.StartsWith('-') => Path.Combine(Samples, w),
                _ => w,
            }).ToArray();
            if (NativeFrontEnd.Decide(args) == Route.Native)
            {
                Assert.Equal(Full(args), Native(args));
            }
            else
            {
                // Handed on: never because it was a native command line.
                Assert.False(args.Length > 0 && args[0] == "hash");
                Assert.False(args.Length is 0 or 1 && (args.Length == 0 || args[0] is "--help" or "-h" or "-?" or "--version"));
            }
        });

    [Property(MaxTest = 300)]
    public Property A_command_line_that_starts_with_any_other_command_is_handed_on() =>
        Prop.ForAll(Gen.Elements(CommandCatalog.Commands.Where(c => c.Name != "hash").Select(c => c.Name).ToArray())
            .SelectMany(name => Gen.Elements(Words).ArrayOf().Select(rest => (string[])[name, .. rest])).ToArbitrary(),
            args => Assert.Equal(Route.Full, NativeFrontEnd.Decide(args)));

    /// <summary>The catalog's C# source for the commands of <paramref name="root"/>.</summary>
    private static string Generate(RootCommand root)
    {
        var s = new StringBuilder();
        s.Append("// Generated from the real command tree by NativeFrontEndTests (WARDEN_UPDATE_CATALOG=1): do not edit.\n");
        s.Append("namespace Warden.Cli.FrontEnd;\n\n");
        s.Append("/// <summary>Every top-level command as `warden --help` lists it, for the native front end's stubs.</summary>\n");
        s.Append("internal static class CommandCatalog\n{\n");
        s.Append("    public static readonly CatalogCommand[] Commands =\n    [\n");
        foreach (var c in root.Subcommands)
        {
            s.Append(CultureInfo.InvariantCulture, $"        new(\n            {Literal(c.Name)},\n            {Literal(c.Description ?? string.Empty)},\n");
            s.Append(CultureInfo.InvariantCulture, $"            [{string.Join(", ", c.Aliases.Order(StringComparer.Ordinal).Select(Literal))}],\n");
            s.Append(CultureInfo.InvariantCulture, $"            {(c.Hidden ? "true" : "false")},\n            [");
            s.Append(string.Join(", ", c.Arguments.Select(a => string.Create(CultureInfo.InvariantCulture,
                $"new({Literal(a.Name)}, {a.Arity.MinimumNumberOfValues}, {a.Arity.MaximumNumberOfValues}, {(a.Hidden ? "true" : "false")}, {(a.HelpName is null ? "null" : Literal(a.HelpName))})"))));
            s.Append("]),\n");
        }

        s.Append("    ];\n}\n");
        return s.ToString();
    }

    private static string Literal(string text)
    {
        var s = new StringBuilder("\"");
        foreach (var ch in text)
        {
            s.Append(ch switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(ch) => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)ch:x4}"),
                _ => ch.ToString(),
            });
        }

        return s.Append('"').ToString();
    }
}
