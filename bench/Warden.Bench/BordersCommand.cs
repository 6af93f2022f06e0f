using System.Collections.Concurrent;
using System.Globalization;
using NetVips;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Imaging;

namespace Warden.Bench;

/// <summary>
/// `borders [DIR] [--quality Q] [--verbose]`: how framed, letterboxed and padded copies of benign photos match their
/// originals with and without the trimmed hash (<see cref="PdqImageResult.Trimmed"/>), and what the trimmed hash
/// costs in false matches between distinct images and in false trims of un-bordered images. Without DIR: the
/// JPEGs of shared/testdata/pdq (one bridge photo, labelme, exif-rotn, small), samples/images, and the largest
/// file of every plasma wallpaper; with DIR: every image in it, each its own original.
/// </summary>
internal static class BordersCommand
{
    private const int Threshold = 31;
    private const int MinQuality = PdqResult.DefaultMinQuality;

    private static readonly (string Name, double[] Rgb)[] Colours =
    [
        ("black", [0, 0, 0]),
        ("white", [255, 255, 255]),
        ("grey", [128, 128, 128]),
    ];

    public static int Run(string[] args)
    {
        var quality = Option(args, "--quality", 85);
        var verbose = args.Contains("--verbose");
        var dir = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal) && Directory.Exists(a));
        var (originals, pool) = dir is null ? DefaultSet() : DirSet(dir);
        Console.WriteLine($"originals={originals.Count} un-bordered pool={pool.Count} jpeg-quality={quality} threshold={Threshold} min-quality={MinQuality}");

        using var hashers = new ThreadLocal<PdqImageHasher>(() => new PdqImageHasher(PdqResize.Fast));
        var options = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };

        // Every un-bordered file: how often trimming fires where there is no border, and what it does.
        var falseTrims = new ConcurrentBag<(string Path, PdqImageResult R)>();
        Parallel.ForEach(pool, options, p =>
        {
            var r = TryHash(hashers.Value!, File.ReadAllBytes(p.Path));
            if (r?.Trimmed is not null)
            {
                falseTrims.Add((p.Path, r));
            }
        });

        var orig = new PdqImageResult[originals.Count];
        var variants = new ConcurrentBag<Variant>();
        Parallel.For(0, originals.Count, options, i =>
        {
            var bytes = File.ReadAllBytes(originals[i].Path);
            orig[i] = hashers.Value!.Hash(bytes);
            List<(string Name, byte[] Data, ImageRect? Truth)> made;
            try
            {
                made = MakeVariants(bytes, quality).ToList();
            }
            catch (VipsException)
            {
                // libvips has no loader for this one (BMP): no variants.
                return;
            }

            foreach (var (name, data, truth) in made)
            {
                var r = TryHash(hashers.Value!, data);
                if (r is not null)
                {
                    variants.Add(new Variant(i, name, r, truth));
                }
            }
        });

        var byKind = variants.GroupBy(v => Kind(v.Name)).OrderBy(g => KindOrder(g.Key)).ToList();
        Console.WriteLine();
        Console.WriteLine("| variant | copies | trim fired | recall ≤ 31 without | recall with trimmed | mean distance without → with | trim edge error (stored px, median / max) |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        var all = new List<Variant>();
        foreach (var g in byKind)
        {
            var list = g.Where(v => orig[v.Original].Pdq.Quality >= MinQuality).ToList();
            all.AddRange(list);
            PrintRow(g.Key, list, orig);
        }

        PrintRow("**all bordered**", all.Where(v => v.Name != "reencode").ToList(), orig);
        if (verbose)
        {
            foreach (var v in all.OrderBy(v => v.Original).ThenBy(v => v.Name, StringComparer.Ordinal))
            {
                var (without, with) = Distances(v.Result, orig[v.Original].Pdq.Hash);
                var found = v.Result.TrimRect is { } r ? Inv($"{r.X},{r.Y} {r.Width}x{r.Height}") : "-";
                var truth = v.Truth is { } t ? Inv($"{t.X},{t.Y} {t.Width}x{t.Height}") : "-";
                Console.WriteLine(Inv($"  {Path.GetFileName(originals[v.Original].Path)} {orig[v.Original].Width}x{orig[v.Original].Height} {v.Name}: {without} -> {with}  trim {found} truth {truth}"));
            }
        }

        // False matches: queries (originals and their variants) against the other originals as stored hashes.
        var groups = originals.Select(o => o.Group).ToArray();
        var pairsWithout = 0;
        var pairsWith = 0;
        var pairs = 0;
        var nearestWithout = int.MaxValue;
        var nearestWith = int.MaxValue;
        for (var i = 0; i < orig.Length; i++)
        {
            for (var j = 0; j < orig.Length; j++)
            {
                if (groups[i] == groups[j] || orig[j].Pdq.Quality < MinQuality)
                {
                    continue;
                }

                pairs++;
                var (without, with) = Distances(orig[i], orig[j].Pdq.Hash);
                nearestWithout = Math.Min(nearestWithout, without);
                nearestWith = Math.Min(nearestWith, with);
                pairsWithout += without <= Threshold ? 1 : 0;
                pairsWith += with <= Threshold ? 1 : 0;
            }
        }

        var vPairsWithout = 0;
        var vPairsWith = 0;
        var vPairs = 0;
        var vNearestWithout = int.MaxValue;
        var vNearestWith = int.MaxValue;
        foreach (var v in variants)
        {
            for (var j = 0; j < orig.Length; j++)
            {
                if (groups[v.Original] == groups[j] || orig[j].Pdq.Quality < MinQuality)
                {
                    continue;
                }

                vPairs++;
                var (without, with) = Distances(v.Result, orig[j].Pdq.Hash);
                vNearestWithout = Math.Min(vNearestWithout, without);
                vNearestWith = Math.Min(vNearestWith, with);
                vPairsWithout += without <= Threshold ? 1 : 0;
                vPairsWith += with <= Threshold ? 1 : 0;
                if (verbose && with <= Threshold)
                {
                    Console.WriteLine($"false match: {Path.GetFileName(originals[v.Original].Path)}:{v.Name} ~ {Path.GetFileName(originals[j].Path)} ({with})");
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| false-match check (different images, quality ≥ 50) | pairs | ≤ 31 without trimming | ≤ 31 with trimmed hash | nearest distance without / with |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        Console.WriteLine(Inv($"| original vs other originals (ordered) | {pairs} | {pairsWithout} | {pairsWith} | {nearestWithout} / {nearestWith} |"));
        Console.WriteLine(Inv($"| variant vs other originals | {vPairs} | {vPairsWithout} | {vPairsWith} | {vNearestWithout} / {vNearestWith} |"));

        Console.WriteLine();
        Console.WriteLine(Inv($"false trims: {falseTrims.Count} of {pool.Count} un-bordered files"));
        foreach (var (path, r) in falseTrims.OrderBy(t => t.Path, StringComparer.Ordinal))
        {
            var t = r.TrimRect!.Value;
            Console.WriteLine(Inv($"  {path}: {r.Width}x{r.Height} -> x={t.X} y={t.Y} {t.Width}x{t.Height}, hash→trimmed {r.Pdq.Hash.DistanceTo(r.Trimmed!.Hash)} bits, quality {r.Pdq.Quality}→{r.Trimmed.Quality}"));
        }

        return 0;
    }

    private static void PrintRow(string kind, List<Variant> list, PdqImageResult[] orig)
    {
        if (list.Count == 0)
        {
            return;
        }

        var fired = list.Count(v => v.Result.Trimmed is not null);
        var without = list.Select(v => Distances(v.Result, orig[v.Original].Pdq.Hash)).ToList();
        var errors = list.Where(v => v.Result.TrimRect is not null && v.Truth is not null)
            .Select(v => EdgeError(v.Result.TrimRect!.Value, v.Truth!.Value)).Order().ToList();
        var recallWithout = without.Count(d => d.Without <= Threshold);
        var recallWith = without.Count(d => d.With <= Threshold);
        var error = errors.Count == 0 ? "–" : Inv($"{errors[errors.Count / 2]} / {errors[^1]}");
        Console.WriteLine(Inv(
            $"| {kind} | {list.Count} | {fired} | {recallWithout} ({100.0 * recallWithout / list.Count:F0}%) | {recallWith} ({100.0 * recallWith / list.Count:F0}%) | {without.Average(d => d.Without):F1} → {without.Average(d => d.With):F1} | {error} |"));
    }

    /// <summary>The query's distance to a stored hash: its own hash, and the best of own and trimmed (when usable).</summary>
    private static (int Without, int With) Distances(PdqImageResult query, PdqHash stored)
    {
        var without = query.Pdq.Quality >= MinQuality ? query.Pdq.Hash.DistanceTo(stored) : PdqHash.Bits;
        var with = without;
        if (query.Trimmed is { } t && t.Quality >= MinQuality)
        {
            with = Math.Min(with, t.Hash.DistanceTo(stored));
        }

        return (without, with);
    }

    private static int EdgeError(ImageRect a, ImageRect b) =>
        Math.Max(Math.Max(Math.Abs(a.X - b.X), Math.Abs(a.Y - b.Y)), Math.Max(Math.Abs(a.Right - b.Right), Math.Abs(a.Bottom - b.Bottom)));

    private static PdqImageResult? TryHash(PdqImageHasher hasher, byte[] data)
    {
        try
        {
            return hasher.Hash(data);
        }
        catch (ImageDecodeException)
        {
            return null;
        }
    }

    private static string Kind(string name) => name.StartsWith("frame", StringComparison.Ordinal) ? name[..name.LastIndexOf('-')] : name;

    private static int KindOrder(string kind) => kind switch
    {
        "frame5%" => 0,
        "frame10%" => 1,
        "frame20%" => 2,
        _ => 3 + kind.Length,
    };

    /// <summary>The bordered copies of one original (re-encoded as JPEG), each with where the original lies in it.</summary>
    private static IEnumerable<(string Name, byte[] Data, ImageRect? Truth)> MakeVariants(byte[] original, int quality)
    {
        using var image = Normalise(Image.NewFromBuffer(original));
        var w = image.Width;
        var h = image.Height;
        yield return ("reencode", image.JpegsaveBuffer(q: quality), new ImageRect(0, 0, w, h));

        foreach (var share in new[] { 5, 10, 20 })
        {
            var t = (int)Math.Round(share / 100.0 * Math.Min(w, h));
            foreach (var (colour, rgb) in Colours)
            {
                yield return ($"frame{share}%-{colour}", Embed(image, t, t, w + (2 * t), h + (2 * t), rgb, quality), new ImageRect(t, t, w, h));
            }
        }

        foreach (var (label, aspect) in new[] { ("16:9", 16.0 / 9), ("4:3", 4.0 / 3) })
        {
            var a = (double)w / h;
            if (a > aspect * 1.02)
            {
                var nh = (int)Math.Round(w / aspect);
                var y = (nh - h) / 2;
                yield return ($"letterbox {label}", Embed(image, 0, y, w, nh, Colours[0].Rgb, quality), new ImageRect(0, y, w, h));
            }
            else if (a < aspect / 1.02)
            {
                var nw = (int)Math.Round(h * aspect);
                var x = (nw - w) / 2;
                yield return ($"pillarbox {label}", Embed(image, x, 0, nw, h, Colours[0].Rgb, quality), new ImageRect(x, 0, w, h));
            }
        }

        if (Math.Abs(w - h) > Math.Max(w, h) / 50)
        {
            var n = Math.Max(w, h);
            yield return ("pad to square (white)", Embed(image, (n - w) / 2, (n - h) / 2, n, n, Colours[1].Rgb, quality), new ImageRect((n - w) / 2, (n - h) / 2, w, h));
        }

        var caption = (int)Math.Round(0.15 * h);
        yield return ("caption bar (bottom 15%, white)", Embed(image, 0, 0, w, h + caption, Colours[1].Rgb, quality), new ImageRect(0, 0, w, h));

        // A framed copy that was also shrunk on the way (re-upload at half size).
        var half = (int)Math.Round(0.1 * Math.Min(w, h));
        using var framed = image.Embed(half, half, w + (2 * half), h + (2 * half), extend: Enums.Extend.Background, background: Colours[0].Rgb);
        using var shrunk = framed.Resize(0.5);
        var s = (double)shrunk.Width / framed.Width;
        yield return ("shrunk: frame 10% black, half size", shrunk.JpegsaveBuffer(q: quality), new ImageRect((int)Math.Round(half * s), (int)Math.Round(half * s), (int)Math.Round(w * s), (int)Math.Round(h * s)));
    }

    private static byte[] Embed(Image image, int x, int y, int width, int height, double[] rgb, int quality)
    {
        using var bordered = image.Embed(x, y, width, height, extend: Enums.Extend.Background, background: rgb);
        return bordered.JpegsaveBuffer(q: quality);
    }

    /// <summary>8-bit sRGB without alpha, so any original takes an RGB border.</summary>
    private static Image Normalise(Image image)
    {
        var result = image;
        if (result.HasAlpha())
        {
            result = Swap(result, result.Flatten(background: [255, 255, 255]));
        }

        if (result.Interpretation != Enums.Interpretation.Srgb || result.Bands != 3)
        {
            result = Swap(result, result.Colourspace(Enums.Interpretation.Srgb));
        }

        if (result.Format != Enums.BandFormat.Uchar)
        {
            result = Swap(result, result.Cast(Enums.BandFormat.Uchar));
        }

        return result;
    }

    private static Image Swap(Image old, Image replacement)
    {
        old.Dispose();
        return replacement;
    }

    private static (List<Original> Originals, List<Original> Pool) DefaultSet()
    {
        var pdq = Path.Combine(Corpora.SharedTestData(), "pdq");
        var samples = Path.Combine(Corpora.RepoRoot(), "samples", "images");
        samples = Directory.Exists(samples) ? samples : Path.GetDirectoryName(samples)!;
        var originals = new List<Original>
        {
            new(Path.Combine(pdq, "reg-test-input", "dih", "bridge-1-original.jpg"), "bridge"),
            new(Path.Combine(pdq, "reg-test-input", "exif-rotn", "exif-rotn-6.jpg"), "exif-rotn"),
            new(Path.Combine(pdq, "misc-images", "small.jpg"), "small"),
        };
        originals.AddRange(Directory.GetFiles(Path.Combine(pdq, "reg-test-input", "labelme-subset"), "*.jpg").Order(StringComparer.Ordinal).Select(f => new Original(f, Path.GetFileName(f))));
        if (Directory.Exists(samples))
        {
            // sunset-plasma, -small and -rotated are one picture.
            originals.AddRange(Directory.GetFiles(samples).Order(StringComparer.Ordinal)
                .Where(f => !Path.GetFileName(f).StartsWith("sunset-plasma-", StringComparison.Ordinal))
                .Select(f => new Original(f, Path.GetFileNameWithoutExtension(f))));
        }

        var wallpapers = Directory.Exists("/usr/share/wallpapers") ? Directory.GetDirectories("/usr/share/wallpapers").Order(StringComparer.Ordinal).ToList() : [];
        var pool = new List<Original>();
        foreach (var theme in wallpapers)
        {
            var images = Path.Combine(theme, "contents", "images");
            if (!Directory.Exists(images))
            {
                continue;
            }

            var files = Directory.GetFiles(images, "*.jpg").Select(f => (Path: f, Pixels: Pixels(f))).OrderByDescending(f => f.Pixels).ToList();
            if (files.Count > 0)
            {
                originals.Add(new Original(files[0].Path, Path.GetFileName(theme)));
                pool.AddRange(files.Select(f => new Original(f.Path, Path.GetFileName(theme))));
            }
        }

        pool.AddRange(Directory.GetFiles(pdq, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(f => new Original(f, f)));
        if (Directory.Exists(samples))
        {
            pool.AddRange(Directory.GetFiles(samples).Order(StringComparer.Ordinal).Select(f => new Original(f, f)));
        }

        return (originals, pool);
    }

    private static (List<Original> Originals, List<Original> Pool) DirSet(string dir)
    {
        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(f => new Original(f, f)).ToList();
        return (files, files);
    }


    private static long Pixels(string path)
    {
        var name = Path.GetFileNameWithoutExtension(path).Split('x');
        return name.Length == 2 && long.TryParse(name[0], CultureInfo.InvariantCulture, out var w) && long.TryParse(name[1], CultureInfo.InvariantCulture, out var h) ? w * h : 0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private sealed record Original(string Path, string Group);

    private sealed record Variant(int Original, string Name, PdqImageResult Result, ImageRect? Truth);
}
