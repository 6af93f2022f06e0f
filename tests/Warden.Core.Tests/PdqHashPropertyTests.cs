using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Tests;

public sealed class PdqHashPropertyTests
{
    private static PdqHash Make(ulong a, ulong b, ulong c, ulong d) => new(a, b, c, d);

    [Property(MaxTest = 500)]
    public bool Hex_round_trips(ulong a, ulong b, ulong c, ulong d)
    {
        var h = Make(a, b, c, d);
        var hex = h.ToString();
        return hex.Length == 64 && !hex.Any(char.IsUpper) && PdqHash.Parse(hex) == h && PdqHash.Parse(hex.ToUpperInvariant()) == h;
    }

    [Property(MaxTest = 500)]
    public bool Distance_is_symmetric_and_zero_only_to_itself(ulong a, ulong b, ulong c, ulong d, ulong e, ulong f, ulong g, ulong h)
    {
        var x = Make(a, b, c, d);
        var y = Make(e, f, g, h);
        var dxy = x.DistanceTo(y);
        return dxy == y.DistanceTo(x) && x.DistanceTo(x) == 0 && (dxy == 0) == (x == y) && dxy is >= 0 and <= 256;
    }

    [Property(MaxTest = 500)]
    public bool Distance_obeys_triangle_inequality(ulong a, ulong b, ulong c, ulong d, ulong e, ulong f, ulong g, ulong h, ulong i, ulong j, ulong k, ulong l)
    {
        var x = Make(a, b, c, d);
        var y = Make(e, f, g, h);
        var z = Make(i, j, k, l);
        return x.DistanceTo(z) <= x.DistanceTo(y) + y.DistanceTo(z);
    }

    [Property(MaxTest = 300)]
    public bool Distance_equals_bitwise_count(ulong a, ulong b, ulong c, ulong d, ulong e, ulong f, ulong g, ulong h)
    {
        var x = Make(a, b, c, d);
        var y = Make(e, f, g, h);
        var count = 0;
        for (var bit = 0; bit < 256; bit++)
        {
            count += x[bit] != y[bit] ? 1 : 0;
        }

        return count == x.DistanceTo(y);
    }

    [Fact]
    public void Hex_prints_word_15_first_as_the_reference_does()
    {
        // Bit k is bit (k mod 16) of 16-bit word k/16; the hex prints w[15]..w[0].
        Span<bool> bits = stackalloc bool[256];
        bits[0] = true;
        Assert.Equal(new string('0', 63) + "1", PdqHash.FromBits(bits).ToString());
        bits[0] = false;
        bits[255] = true;
        Assert.Equal("8" + new string('0', 63), PdqHash.FromBits(bits).ToString());
        bits[255] = false;
        bits[16] = true;
        Assert.Equal(new string('0', 59) + "10000", PdqHash.FromBits(bits).ToString());
    }

    [Theory]
    [InlineData("", "64 hex digits")]
    [InlineData("abc", "64 hex digits")]
    [InlineData("d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b2", "64 hex digits")]
    [InlineData("d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22ff", "64 hex digits")]
    [InlineData("z8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22", "hex digits")]
    [InlineData("-8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22", "hex digits")]
    [InlineData("0x8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22", "hex digits")]
    public void Parse_rejects_bad_hex_with_a_reason(string hex, string reason)
    {
        var ex = Assert.Throws<FormatException>(() => PdqHash.Parse(hex));
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        Assert.False(PdqHash.TryParse(hex, out _, out var error));
        Assert.NotNull(error);
    }
}

public sealed class DihedralLawTests
{
    private static float[] Apply(Dihedral d, float[] a)
    {
        var b = new float[256];
        PdqStages.DihedralDct(d, a, b);
        return b;
    }

    private static Arbitrary<float[]> Dcts() =>
        Gen.Choose(-100000, 100000).Select(i => i / 100f).ArrayOf(256).ToArbitrary();

    // The 8 variants as 2x2 matrices acting on (x, y) image coordinates; composition in the group must
    // agree with composing the DCT sign/transpose rules.
    private static readonly int[][] Matrices =
    [
        [1, 0, 0, 1], // original
        [0, -1, 1, 0], // rot90 (ccw)
        [-1, 0, 0, -1], // rot180
        [0, 1, -1, 0], // rot270
        [1, 0, 0, -1], // flipx: top <-> bottom
        [-1, 0, 0, 1], // flipy: mirror
        [0, 1, 1, 0], // flipplus1: transpose
        [0, -1, -1, 0], // flipminus1: anti-transpose
    ];

    // Applying `inner` then `outer` to an image reads source pixels through M_inner · M_outer.
    private static int Compose(int outer, int inner)
    {
        var a = Matrices[inner];
        var b = Matrices[outer];
        int[] m = [(a[0] * b[0]) + (a[1] * b[2]), (a[0] * b[1]) + (a[1] * b[3]), (a[2] * b[0]) + (a[3] * b[2]), (a[2] * b[1]) + (a[3] * b[3])];
        return Array.FindIndex(Matrices, x => x.SequenceEqual(m));
    }

    [Property(MaxTest = 50)]
    public Property Variants_compose_as_the_dihedral_group() =>
        Prop.ForAll(Dcts(), a =>
        {
            for (var i = 0; i < 8; i++)
            {
                for (var j = 0; j < 8; j++)
                {
                    var k = Compose(i, j);
                    if (k < 0 || !Apply((Dihedral)i, Apply((Dihedral)j, a)).SequenceEqual(Apply((Dihedral)k, a)))
                    {
                        return false;
                    }
                }
            }

            return true;
        });

    [Property(MaxTest = 50)]
    public Property Rotating_four_times_and_flipping_twice_is_the_identity() =>
        Prop.ForAll(Dcts(), a =>
            Apply(Dihedral.Rotate90, Apply(Dihedral.Rotate90, Apply(Dihedral.Rotate90, Apply(Dihedral.Rotate90, a)))).SequenceEqual(a) &&
            Apply(Dihedral.FlipX, Apply(Dihedral.FlipX, a)).SequenceEqual(a) &&
            Apply(Dihedral.FlipPlus1, Apply(Dihedral.FlipPlus1, a)).SequenceEqual(a));

    [SkippableFact]
    public void Variants_of_the_bridge_photo_land_near_the_hashes_of_its_rotated_files()
    {
        // Meta's dih set: one photo saved in all 8 orientations, in Dihedral order. A variant computed
        // from the original's DCT is only close to hashing the turned pixels (0-18 bits in the reference).
        var dir = TestData.SharedPath("pdq", "reg-test-input", "dih");
        var files = Directory.GetFiles(dir, "bridge-*.jpg").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(8, files.Length);
        var hasher = new PdqImageHasher();
        var variants = hasher.Hash(File.ReadAllBytes(files[0]), dihedral: true).Pdq.Dihedral!;
        for (var v = 0; v < 8; v++)
        {
            var direct = hasher.Hash(File.ReadAllBytes(files[v])).Pdq.Hash;
            Assert.True(direct.DistanceTo(variants[v]) <= 24, $"{(Dihedral)v}: {direct.DistanceTo(variants[v])} bits");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Variants_of_a_64x64_image_equal_the_hashes_of_its_transformed_pixels(int seed)
    {
        // At 64x64 there is no filter or decimation to break the symmetry, so the sign/transpose rules
        // must reproduce the DCT of the turned pixels up to float rounding. (At other sizes the
        // reference's even-width boxes and centre sampling shift by a pixel, so variants are only close.)
        const int n = 64;
        var pixels = SyntheticImages.Blobs(n, n, seed);
        var hasher = new PdqHasher();
        var variants = hasher.Hash(pixels, n, n, n * 3, 3, PdqResize.FullResolution, dihedral: true).Dihedral!;
        var distances = new int[8];
        for (var v = 0; v < 8; v++)
        {
            var transformed = SyntheticImages.Transform(pixels, n, (Dihedral)v);
            distances[v] = hasher.Hash(transformed, n, n, n * 3, 3, PdqResize.FullResolution).Hash.DistanceTo(variants[v]);
        }

        Assert.True(distances.All(d => d <= 2), string.Join(", ", distances.Select((d, v) => $"{(Dihedral)v}={d}")));
    }
}
