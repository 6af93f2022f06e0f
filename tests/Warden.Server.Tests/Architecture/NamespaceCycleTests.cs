using System.Reflection;
using Xunit.Abstractions;

namespace Warden.Server.Tests.Architecture;

/// <summary>Issue 13 §5: the namespace loops named there stay broken, checked on the built assemblies.</summary>
public sealed class NamespaceCycleTests(ITestOutputHelper output)
{
    private static readonly Assembly[] Assemblies =
    [
        typeof(Warden.Core.Banks.BankMatcher).Assembly,
        typeof(Warden.Storage.BankStore).Assembly,
        typeof(Warden.Review.ReviewService).Assembly,
        typeof(ServerOptions).Assembly,
    ];

    private static readonly Lazy<Dictionary<string, HashSet<string>>> Graph = new(() => NamespaceGraph.Build(Assemblies, "Warden."));

    // The server's root namespace is its composition root (WardenServer wires every role group; ServerOptions and
    // Metrics are read by all): a loop through it is the wiring, not a seam, so the checks leave it out.
    private static readonly Lazy<Dictionary<string, HashSet<string>>> WithoutRoot = new(() => Graph.Value
        .Where(kv => kv.Key != CompositionRoot)
        .ToDictionary(kv => kv.Key, kv => kv.Value.Where(n => n != CompositionRoot).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal));

    private const string CompositionRoot = "Warden.Server";

    [Theory]
    [InlineData("Warden.Core.Signals", "Warden.Core.Hashing.Video")]
    [InlineData("Warden.Server.Api", "Warden.Server.Auth")]
    [InlineData("Warden.Server.Api", "Warden.Server.Review")]
    [InlineData("Warden.Server.Data", "Warden.Server.Auth")]
    [InlineData("Warden.Review.Cases", "Warden.Review.Reporting")]
    [InlineData("Warden.Server.Api", "Warden.Server.Actions")]
    public void Named_namespaces_are_not_in_one_loop(string a, string b)
    {
        var graph = WithoutRoot.Value;
        Assert.True(graph.ContainsKey(a), $"{a} has no types: the check would pass vacuously.");
        Assert.True(graph.ContainsKey(b), $"{b} has no types: the check would pass vacuously.");
        var there = NamespaceGraph.Path(graph, a, b);
        var back = NamespaceGraph.Path(graph, b, a);
        Assert.False(there is not null && back is not null, $"Loop: {string.Join(" → ", there ?? [])} and back {string.Join(" → ", back ?? [])}.");
    }

    [Fact]
    public void No_namespace_loops_in_the_review_assembly_or_between_server_role_groups()
    {
        var graph = WithoutRoot.Value;
        var cycles = NamespaceGraph.Cycles(graph)
            .Where(c => c.Any(n => n.StartsWith("Warden.Server.", StringComparison.Ordinal) || n.StartsWith("Warden.Review", StringComparison.Ordinal)))
            .ToList();
        foreach (var c in cycles)
        {
            output.WriteLine(string.Join(" ⇄ ", c));
        }

        Assert.Empty(cycles);
    }

    [Fact]
    public void The_graph_reader_sees_dependencies_hidden_in_bodies_and_lambdas()
    {
        // Self-check on known edges: a missed edge would make the loop tests pass for the wrong reason.
        var graph = Graph.Value;
        Assert.Contains("Warden.Server.Actions", graph["Warden.Server.Api"]); // MatchService → MatchActions (field)
        Assert.Contains("Warden.Review.Audit", graph["Warden.Server.Api"]); // ConfigAudit: AuditEntry built in a body
        Assert.Contains("Warden.Storage", graph["Warden.Review"]); // ReviewService → BankStore

        var loop = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal)
        {
            ["a"] = ["b"],
            ["b"] = ["c"],
            ["c"] = ["a", "d"],
            ["d"] = [],
        };
        Assert.Equal(["a", "b", "c"], Assert.Single(NamespaceGraph.Cycles(loop)));
        Assert.Equal(["c", "a", "b"], NamespaceGraph.Path(loop, "c", "b"));
        Assert.Null(NamespaceGraph.Path(loop, "d", "a"));
    }

    [Fact]
    public void Only_serve_and_key_commands_of_the_cli_use_the_server_assembly()
    {
        // User and review commands work on Warden.Review and Warden.Storage alone (issue 13 §3); ServeCommand
        // (serve, and key, whose api_keys table is the server's) is the CLI's one door into Warden.Server.
        var cli = typeof(Warden.Cli.WardenCli).Assembly;
        var leaks = new List<string>();
        foreach (var type in cli.GetTypes())
        {
            var outer = type;
            while (outer.DeclaringType is { } d)
            {
                outer = d;
            }

            if (outer.Name == "ServeCommand")
            {
                continue;
            }

            var used = NamespaceGraph.Referenced(type).SelectMany(NamespaceGraph.Namespaces)
                .Where(n => n == "Warden.Server" || n.StartsWith("Warden.Server.", StringComparison.Ordinal))
                .Distinct(StringComparer.Ordinal)
                .ToList();
            if (used.Count > 0)
            {
                leaks.Add($"{type.FullName} uses {string.Join(", ", used)}");
            }
        }

        Assert.Empty(leaks);
        Assert.Contains(NamespaceGraph.Referenced(cli.GetType("Warden.Cli.UserCommand", throwOnError: true)!).SelectMany(NamespaceGraph.Namespaces), n => n.StartsWith("Warden.Review", StringComparison.Ordinal));
    }

    [Fact]
    public void No_source_compares_action_or_bank_kind_words()
    {
        // Hits carry a typed outcome (Actions.HitOutcome) and matches a typed action (Actions.MatchAction): the wire
        // words are written in one place (MatchActionNames, BankDto.KindName) and never compared to decide anything.
        var words = new[] { "block", "allow", "quarantine", "record", "suppressed", "flood_quarantined" };
        var offending = new List<string>();
        foreach (var project in new[] { "Warden.Server", "Warden.Review" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(NodeTools.RepoRoot, "src", project), "*.cs", SearchOption.AllDirectories))
            {
                var lines = File.ReadAllLines(file);
                for (var i = 0; i < lines.Length; i++)
                {
                    foreach (var w in words)
                    {
                        var quoted = "\"" + w + "\"";
                        if (lines[i].Contains("== " + quoted, StringComparison.Ordinal) || lines[i].Contains("!= " + quoted, StringComparison.Ordinal)
                            || lines[i].Contains(quoted + " ==", StringComparison.Ordinal) || lines[i].Contains("Equals(" + quoted, StringComparison.Ordinal))
                        {
                            offending.Add($"{Path.GetRelativePath(NodeTools.RepoRoot, file)}:{i + 1}: {lines[i].Trim()}");
                        }
                    }
                }
            }
        }

        Assert.Empty(offending);
    }
}
