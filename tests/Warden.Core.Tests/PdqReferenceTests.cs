using Warden.Core.Hashing.Pdq;
using Xunit.Abstractions;

namespace Warden.Core.Tests;

/// <summary>
/// Bit-exactness against the outputs of Meta's C++ reference (shared/testdata/pdq/expected). PNGs and
/// lossless WebPs decode to the same pixels everywhere, so they must match exactly; JPEG hashes depend on
/// the decoder and are held to the reference project's own rule (≤ 10 bits where quality ≥ 80).
/// </summary>
public sealed class PdqReferenceTests(ITestOutputHelper output)
{
    private static readonly string[] LosslessExtensions = [".png"];

    public static TheoryData<string> SyntheticFiles()
    {
        var data = new TheoryData<string>();
        foreach (var row in OracleRow.Load(TestData.Own("pdq-synthetic", "pdq-cli.csv")))
        {
            data.Add(Path.GetFileName(row.Path));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SyntheticFiles))]
    public void Synthetic_png_matches_reference_core_and_cli(string file)
    {
        var bytes = File.ReadAllBytes(TestData.Own("pdq-synthetic", file));
        var core = OracleRow.Load(TestData.Own("pdq-synthetic", "pdq-core-fullres.csv")).Single(r => r.Path.EndsWith(file, StringComparison.Ordinal));
        var cli = OracleRow.Load(TestData.Own("pdq-synthetic", "pdq-cli.csv")).Single(r => r.Path.EndsWith(file, StringComparison.Ordinal));
        var dih = OracleRow.Load(TestData.Own("pdq-synthetic", "pdq-cli-dihedral.csv")).Single(r => r.Path.EndsWith(file, StringComparison.Ordinal));

        var full = new PdqImageHasher(PdqResize.FullResolution).Hash(bytes).Pdq;
        var cliResult = new PdqImageHasher(PdqResize.Cli512).Hash(bytes, dihedral: true).Pdq;

        Assert.Equal(core.Quality, full.Quality);
        Assert.Equal(cli.Quality, cliResult.Quality);
        if (core.Quality > 0)
        {
            Assert.Equal(core.Hash, full.Hash.ToString());
            Assert.Equal(cli.Hash, cliResult.Hash.ToString());
            Assert.Equal(dih.Hashes, cliResult.Dihedral!.Select(h => h.ToString()));
        }
        else if (file.StartsWith("tiny", StringComparison.Ordinal))
        {
            Assert.Equal(PdqHash.Zero, full.Hash);
            Assert.All(cliResult.Dihedral!, h => Assert.Equal(PdqHash.Zero, h));
        }
    }

    public static TheoryData<string> SharedLosslessFiles()
    {
        var data = new TheoryData<string>();
        if (TestData.Shared is null)
        {
            data.Add("(shared testdata absent)");
            return data;
        }

        foreach (var row in OracleRow.Load(Path.Combine(TestData.Shared, "pdq", "expected", "pdq-cli.csv")))
        {
            if (!row.Path.StartsWith("synthetic/", StringComparison.Ordinal) && IsLossless(row.Path))
            {
                data.Add(row.Path);
            }
        }

        return data;
    }

    private static bool IsLossless(string path) =>
        LosslessExtensions.Contains(Path.GetExtension(path)) || path.EndsWith(".webp", StringComparison.Ordinal);

    [SkippableTheory]
    [MemberData(nameof(SharedLosslessFiles))]
    public void Reference_lossless_images_match_core_and_cli_bit_for_bit(string path)
    {
        var root = TestData.SharedPath("pdq");
        var bytes = File.ReadAllBytes(Path.Combine(root, path));
        var core = OracleRow.Load(Path.Combine(root, "expected", "pdq-core-fullres.csv")).Single(r => r.Path == path);
        var cli = OracleRow.Load(Path.Combine(root, "expected", "pdq-cli.csv")).Single(r => r.Path == path);
        var dih = OracleRow.Load(Path.Combine(root, "expected", "pdq-cli-dihedral.csv")).Single(r => r.Path == path);

        var full = new PdqImageHasher(PdqResize.FullResolution).Hash(bytes).Pdq;
        var cliResult = new PdqImageHasher(PdqResize.Cli512).Hash(bytes, dihedral: true).Pdq;
        output.WriteLine($"{path}: core {full.Hash} (d={full.Hash.DistanceTo(PdqHash.Parse(core.Hash))}), cli {cliResult.Hash} (d={cliResult.Hash.DistanceTo(PdqHash.Parse(cli.Hash))})");

        Assert.Equal(core.Quality, full.Quality);
        Assert.Equal(core.Hash, full.Hash.ToString());
        Assert.Equal(cli.Quality, cliResult.Quality);
        Assert.Equal(cli.Hash, cliResult.Hash.ToString());
        Assert.Equal(dih.Hashes, cliResult.Dihedral!.Select(h => h.ToString()));
    }
}

/// <summary>
/// Lossy photos: JPEG pixels depend on the decoder, so Meta's rule is ≤ 10 bits from its CLI where quality ≥ 80.
/// Warden's libjpeg-turbo decode gives the reference's pixels, so the CLI pipeline is even exact here.
/// </summary>
public sealed class PdqLossyReferenceTests(ITestOutputHelper output)
{
    public static TheoryData<string> LossyPhotos()
    {
        var data = new TheoryData<string>();
        if (TestData.Shared is null)
        {
            data.Add("(shared testdata absent)");
            return data;
        }

        foreach (var row in OracleRow.Load(Path.Combine(TestData.Shared, "pdq", "expected", "pdq-cli.csv")))
        {
            if (row.Quality >= 80 && (row.Path.EndsWith(".jpg", StringComparison.Ordinal) || row.Path.EndsWith(".webp", StringComparison.Ordinal)))
            {
                data.Add(row.Path);
            }
        }

        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(LossyPhotos))]
    public void Every_pipeline_is_within_10_bits_of_the_reference_cli_and_cli512_is_exact(string path)
    {
        var root = TestData.SharedPath("pdq");
        var bytes = File.ReadAllBytes(Path.Combine(root, path));
        var cli = OracleRow.Load(Path.Combine(root, "expected", "pdq-cli.csv")).Single(r => r.Path == path);
        var expected = PdqHash.Parse(cli.Hash);

        var fast = new PdqImageHasher(PdqResize.Fast).Hash(bytes).Pdq;
        var full = new PdqImageHasher(PdqResize.FullResolution).Hash(bytes).Pdq;
        var cli512 = new PdqImageHasher(PdqResize.Cli512).Hash(bytes).Pdq;
        output.WriteLine($"{path}: fast {fast.Hash.DistanceTo(expected)}, full {full.Hash.DistanceTo(expected)}, cli512 {cli512.Hash.DistanceTo(expected)} bits");

        Assert.InRange(fast.Hash.DistanceTo(expected), 0, 10);
        Assert.InRange(full.Hash.DistanceTo(expected), 0, 10);
        Assert.Equal(cli.Hash, cli512.Hash.ToString());
        Assert.Equal(cli.Quality, cli512.Quality);
        Assert.InRange(fast.Quality, 80, 100);
    }
}
