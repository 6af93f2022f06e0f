using System.Text;

namespace Warden.Fuzz.Tests;

/// <summary>
/// The CI part of fuzzing: every target runs its committed seed corpus plus a fixed, seeded set of mutations in
/// process (scripts/test counts each target as one test). Long coverage-guided runs are scripts/fuzz's job.
/// </summary>
public sealed class FuzzSmokeTests
{
    private const int Mutations = 2000;

    public static TheoryData<string> Names() => [.. Targets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Names))]
    public void Target_survives_its_corpus_and_mutations(string name)
    {
        var target = Targets.Find(name)!;
        var corpus = Corpus(name);
        Assert.NotEmpty(corpus);
        var cap = TimeSpan.FromSeconds(30);
        var result = FuzzEngine.Run(target, corpus, new FuzzOptions(cap, Mutations, Seed: 20261207) { Minimize = false });

        var report = new StringBuilder();
        foreach (var f in result.Findings)
        {
            report.AppendLine($"{f.Kind} {f.Key}, input (base64) {Convert.ToBase64String(f.Input)}\n{f.Detail}");
        }

        Assert.True(result.Findings.Count == 0, $"{result}\n{report}");
        Assert.Equal(0, result.Crashes + result.Hangs + result.MemoryFindings);

        // All of them ran, unless a loaded machine hit the time cap first.
        Assert.True(result.Executions == corpus.Count + Mutations || result.Seconds >= cap.TotalSeconds, result.ToString());
    }

    [Fact]
    public void Every_target_has_a_seed_corpus_and_every_corpus_a_target()
    {
        var folders = Directory.GetDirectories(Path.Combine(RepoRoot(), "fuzz", "corpus")).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(Targets.All.Select(t => t.Name).Order(StringComparer.Ordinal), folders);
        Assert.Equal(Targets.All.Count, Targets.All.Select(t => t.Name).Distinct().Count());
    }

    [Fact]
    public void The_seeds_are_small()
    {
        // Seeds are synthetic and tiny: big files slow mutation down and have no place in the repo.
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepoRoot(), "fuzz", "corpus"), "*", SearchOption.AllDirectories))
        {
            Assert.True(new FileInfo(file).Length <= 64 * 1024, file);
        }
    }

    internal static List<byte[]> Corpus(string name) =>
        [.. Directory.EnumerateFiles(Path.Combine(RepoRoot(), "fuzz", "corpus", name)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Warden.sln not found above " + AppContext.BaseDirectory);
    }
}
