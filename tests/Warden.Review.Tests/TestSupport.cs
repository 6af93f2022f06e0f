using Warden.Review.Storage;

namespace Warden.Review.Tests;

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "warden-review-" + Guid.NewGuid().ToString("N"));

    public ReviewDatabase OpenDatabase(string name = "review.db") => ReviewDatabase.Open(System.IO.Path.Combine(Path, name));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>"Now" under test control.</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

/// <summary>Locates ../shared/testdata beside the repository.</summary>
internal static class TestData
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string? Shared { get; } = FindShared();

    public const string SharedMissing = "../shared/testdata is absent (a user's clone): NCMEC's XSD and reference documents are not redistributed here.";

    public static string SharedPath(params string[] parts)
    {
        Skip.If(Shared is null, SharedMissing);
        var path = System.IO.Path.Combine([Shared!, .. parts]);
        Skip.If(!File.Exists(path) && !Directory.Exists(path), $"{path} is absent.");
        return path;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Warden.sln")))
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

        var candidate = System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoRoot, "..", "shared", "testdata"));
        return Directory.Exists(candidate) ? candidate : null;
    }
}
