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
    public void Print_graph()
    {
        foreach (var (from, to) in Graph.Value.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"{from} -> {string.Join(", ", to.Order(StringComparer.Ordinal))}");
        }
    }
}
