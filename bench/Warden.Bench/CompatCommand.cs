using System.Globalization;
using Warden.Core.Hashing.Pdq;

namespace Warden.Bench;

/// <summary>
/// `compat`: Hamming distance of each pipeline's hash from Meta's CLI (pdq-cli.csv) and core
/// (pdq-core-fullres.csv) on every reference image, with the max/mean over quality ≥ 80 JPEGs.
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
        var jpegStats = pipelines.ToDictionary(p => p.Name, _ => new List<int>());
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
                if (path.EndsWith(".jpg", StringComparison.Ordinal) && quality >= 80)
                {
                    jpegStats[name].Add(dc);
                }
            }

            Console.WriteLine($"{path,-48} {quality,3} " + string.Join(" ", cells));
        }

        Console.WriteLine();
        Console.WriteLine("JPEG photos with quality >= 80, distance to pdq-cli.csv:");
        foreach (var (name, d) in jpegStats)
        {
            Console.WriteLine($"  {name,-10} n={d.Count} max={d.Max()} mean={d.Average():F2} within10={d.Count(x => x <= 10)}/{d.Count}");
        }

        return 0;
    }

    private static Dictionary<string, (PdqHash Hash, int Quality)> Load(string file) =>
        File.ReadAllLines(file).Where(l => l.Length > 0).Select(l => l.Split(','))
            .ToDictionary(f => f[2], f => (PdqHash.Parse(f[0]), int.Parse(f[1], CultureInfo.InvariantCulture)), StringComparer.Ordinal);
}
