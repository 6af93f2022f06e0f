using System.Globalization;
using Warden.Core.Hashing.Pdq;

namespace Warden.Bench;

/// <summary>
/// `compat [MINSIDE...]`: Hamming distance of each pipeline's hash from Meta's CLI (pdq-cli.csv) and core
/// (pdq-core-fullres.csv) on every reference image, with max/mean over quality ≥ 80 JPEG/WebP photos and
/// over the PNGs. Each MINSIDE adds a fast pipeline with that short-side floor.
/// </summary>
internal static class CompatCommand
{
    public static int Run(string[] args)
    {
        var minSides = args.Length > 0 ? args.Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [PdqHasher.FastMinSide];
        var pdq = Path.Combine(Corpora.SharedTestData(), "pdq");
        var cli = Load(Path.Combine(pdq, "expected", "pdq-cli.csv"));
        var core = Load(Path.Combine(pdq, "expected", "pdq-core-fullres.csv"));
        var pipelines = new List<(string Name, PdqImageHasher Hasher)>
        {
            ("cli512", new PdqImageHasher(PdqResize.Cli512)),
            ("fullres", new PdqImageHasher(PdqResize.FullResolution)),
        };
        pipelines.AddRange(minSides.Select(m => ($"fast{m}", new PdqImageHasher(PdqResize.Fast) { FastMinSide = m })));

        Console.WriteLine($"{"file",-48} {"q",3} " + string.Join(" ", pipelines.Select(p => $"{p.Name + ":cli",11} {p.Name + ":core",12}")));
        var photoCli = pipelines.ToDictionary(p => p.Name, _ => new List<int>());
        var photoCore = pipelines.ToDictionary(p => p.Name, _ => new List<int>());
        var pngCli = pipelines.ToDictionary(p => p.Name, _ => new List<int>());
        var pngCore = pipelines.ToDictionary(p => p.Name, _ => new List<int>());
        foreach (var (path, (cliHash, quality)) in cli)
        {
            var bytes = File.ReadAllBytes(Path.Combine(pdq, path));
            var cells = new List<string>();
            foreach (var (name, hasher) in pipelines)
            {
                var h = hasher.Hash(bytes).Pdq.Hash;
                var dc = h.DistanceTo(cliHash);
                var dk = h.DistanceTo(core[path].Hash);
                cells.Add($"{dc,11} {dk,12}");
                if (quality < 80)
                {
                    continue;
                }

                if (path.EndsWith(".jpg", StringComparison.Ordinal) || path.EndsWith(".webp", StringComparison.Ordinal))
                {
                    photoCli[name].Add(dc);
                    photoCore[name].Add(dk);
                }
                else if (path.EndsWith(".png", StringComparison.Ordinal))
                {
                    pngCli[name].Add(dc);
                    pngCore[name].Add(dk);
                }
            }

            Console.WriteLine($"{path,-48} {quality,3} " + string.Join(" ", cells));
        }

        Console.WriteLine();
        Summarise("JPEG/WebP photos with quality >= 80, distance to pdq-cli.csv:", photoCli);
        Summarise("JPEG/WebP photos with quality >= 80, distance to pdq-core-fullres.csv:", photoCore);
        Summarise("PNGs with quality >= 80, distance to pdq-cli.csv:", pngCli);
        Summarise("PNGs with quality >= 80, distance to pdq-core-fullres.csv:", pngCore);

        return 0;
    }

    private static void Summarise(string title, Dictionary<string, List<int>> stats)
    {
        Console.WriteLine(title);
        foreach (var (name, d) in stats)
        {
            Console.WriteLine($"  {name,-10} n={d.Count} max={d.Max()} mean={d.Average():F2} within8={d.Count(x => x <= 8)}/{d.Count} within10={d.Count(x => x <= 10)}/{d.Count}");
        }
    }

    private static Dictionary<string, (PdqHash Hash, int Quality)> Load(string file) =>
        File.ReadAllLines(file).Where(l => l.Length > 0).Select(l => l.Split(','))
            .ToDictionary(f => f[2], f => (PdqHash.Parse(f[0]), int.Parse(f[1], CultureInfo.InvariantCulture)), StringComparer.Ordinal);
}
