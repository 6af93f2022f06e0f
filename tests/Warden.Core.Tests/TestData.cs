namespace Warden.Core.Tests;

/// <summary>Locates test data: ours (copied to the output folder) and ../shared/testdata beside the repo.</summary>
internal static class TestData
{
    public static string Own(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    /// <summary>The repository root (the folder holding Warden.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared/testdata, or null when absent (a user's clone).</summary>
    public static string? Shared { get; } = FindShared();

    public const string SharedMissing = "../shared/testdata is absent (a user's clone): its reference data (Meta's PDQ test images, NCMEC's CyberTipline schema and documents, …) is not redistributed here.";

    public static string SharedPath(params string[] parts)
    {
        Skip.If(Shared is null, SharedMissing);
        return Path.Combine([Shared!, .. parts]);
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Warden.sln not found above the test output folder.");
    }

    private static string? FindShared()
    {
        var env = Environment.GetEnvironmentVariable("WARDEN_SHARED_TESTDATA");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env))
        {
            return env;
        }

        var candidate = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "testdata"));
        return Directory.Exists(candidate) ? candidate : null;
    }
}

/// <summary>One row of the reference's hash CSVs: hash,quality,path (or 8 hashes,quality,path).</summary>
internal sealed record OracleRow(string[] Hashes, int Quality, string Path)
{
    public string Hash => Hashes[0];

    public static IReadOnlyList<OracleRow> Load(string file) =>
        File.ReadAllLines(file)
            .Where(l => l.Length > 0)
            .Select(l =>
            {
                var f = l.Split(',');
                return new OracleRow(f[..^2], int.Parse(f[^2], System.Globalization.CultureInfo.InvariantCulture), f[^1]);
            })
            .ToList();
}
