namespace Warden.Bench;

/// <summary>The two corpora of shared/testdata/bench-corpus.md, so figures compare with the reference's.</summary>
internal static class Corpora
{
    private static readonly string[] Wallpapers =
    [
        "Autumn/contents/images/1920x1080.jpg",
        "ColorfulCups/contents/images/2560x1600.jpg",
        "Flow/contents/images/5120x2880.jpg",
        "Honeywave/contents/images/5120x2880.jpg",
        "OneStandsOut/contents/images/1920x1080.jpg",
        "PastelHills/contents/images/1920x1080.jpg",
        "Path/contents/images/1920x1080.jpg",
        "SafeLanding/contents/images/1622x2880.jpg",
        "SafeLanding/contents/images/5120x2880.jpg",
        "Shell/contents/images/5120x2880.jpg",
        "Volna/contents/images/5120x2880.jpg",
    ];

    public static string SharedTestData()
    {
        var env = Environment.GetEnvironmentVariable("WARDEN_SHARED_TESTDATA");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        return Path.GetFullPath(Path.Combine(RepoRoot(), "..", "shared", "testdata"));
    }

    /// <summary>The folder holding Warden.sln, above the build output (the working directory if not found).</summary>
    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }

    /// <summary>"test": 28 JPEGs from Meta's PDQ test data.</summary>
    public static IReadOnlyList<string> Test()
    {
        var pdq = Path.Combine(SharedTestData(), "pdq");
        var files = new List<string>();
        foreach (var dir in new[] { "bridge-mods", "reg-test-input/dih", "reg-test-input/labelme-subset" })
        {
            files.AddRange(Directory.GetFiles(Path.Combine(pdq, dir), "*.jpg").Order(StringComparer.Ordinal));
        }

        files.Add(Path.Combine(pdq, "misc-images", "small.jpg"));
        files.Add(Path.Combine(pdq, "misc-images", "wee.jpg"));
        return files;
    }

    /// <summary>"large": 11 Debian plasma wallpapers + the 12 MP phone photo.</summary>
    public static IReadOnlyList<string> Large()
    {
        var files = Wallpapers.Select(w => Path.Combine("/usr/share/wallpapers", w)).ToList();
        files.Add(Path.Combine(SharedTestData(), "pdq", "reg-test-input", "exif-rotn", "exif-rotn-6.jpg"));
        return files;
    }

    public static IReadOnlyList<string> Named(string name) => name switch
    {
        "test" => Test(),
        "large" => Large(),
        _ when File.Exists(name) => File.ReadAllLines(name).Where(l => l.Length > 0).ToList(),
        _ when Directory.Exists(name) => Directory.GetFiles(name, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList(),
        _ => throw new ArgumentException($"Unknown corpus '{name}': use test, large, a folder or a file list."),
    };
}
