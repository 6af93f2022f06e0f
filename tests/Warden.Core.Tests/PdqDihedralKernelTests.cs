using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Tests;

/// <summary>
/// The dihedral stage of the hasher (sign masks, shared medians, vectorised bit extraction) against a literal
/// transcription of the reference's per-coefficient rules, one Torben median per variant and a scalar bit loop,
/// on buffers built to be hard: many ties, both zeros, values on both sides of the median.
/// </summary>
public sealed class PdqDihedralKernelTests
{
    // Half the buffers draw from a handful of values (ties, +0 and -0); the rest are spread out.
    private static Arbitrary<float[]> Buffers() =>
        Gen.OneOf(
            Gen.Elements(0f, -0f, 1f, -1f, 2.5f, -2.5f, 1e-30f, -1e30f).ArrayOf(256),
            Gen.Choose(-100000, 100000).Select(i => i / 100f).ArrayOf(256),
            Gen.Choose(-3, 3).Select(i => (float)i).ArrayOf(256))
        .ToArbitrary();

    // pdqhashing.cpp dct16OriginalTo*, one coefficient at a time.
    private static float[] ReferenceVariant(Dihedral variant, float[] a)
    {
        var b = new float[256];
        for (var i = 0; i < 16; i++)
        {
            for (var j = 0; j < 16; j++)
            {
                var v = a[(i * 16) + j];
                switch (variant)
                {
                    case Dihedral.Original: b[(i * 16) + j] = v; break;
                    case Dihedral.Rotate90: b[(j * 16) + i] = (j & 1) != 0 ? v : -v; break;
                    case Dihedral.Rotate180: b[(i * 16) + j] = ((i + j) & 1) != 0 ? -v : v; break;
                    case Dihedral.Rotate270: b[(j * 16) + i] = (i & 1) != 0 ? v : -v; break;
                    case Dihedral.FlipX: b[(i * 16) + j] = (i & 1) != 0 ? v : -v; break;
                    case Dihedral.FlipY: b[(i * 16) + j] = (j & 1) != 0 ? v : -v; break;
                    case Dihedral.FlipPlus1: b[(j * 16) + i] = v; break;
                    case Dihedral.FlipMinus1: b[(j * 16) + i] = ((i + j) & 1) != 0 ? -v : v; break;
                }
            }
        }

        return b;
    }

    // pdqBuffer16x16ToBits with its own median.
    private static PdqHash ReferenceHash(float[] b)
    {
        var median = PdqStages.Torben(b);
        var words = new ulong[4];
        for (var k = 0; k < 256; k++)
        {
            if (b[k] > median)
            {
                words[k >> 6] |= 1UL << (k & 63);
            }
        }

        return new PdqHash(words[0], words[1], words[2], words[3]);
    }

    [Property(MaxTest = 300)]
    public Property Each_variant_is_the_reference_coefficient_rule_bit_for_bit() =>
        Prop.ForAll(Buffers(), a =>
        {
            var b = new float[256];
            for (var v = 0; v < 8; v++)
            {
                PdqStages.DihedralDct((Dihedral)v, a, b);
                var expected = ReferenceVariant((Dihedral)v, a);
                for (var k = 0; k < 256; k++)
                {
                    if (BitConverter.SingleToInt32Bits(b[k]) != BitConverter.SingleToInt32Bits(expected[k]))
                    {
                        return false;
                    }
                }
            }

            return true;
        });

    [Property(MaxTest = 300)]
    public Property Bits_against_a_median_match_the_scalar_loop() =>
        Prop.ForAll(Buffers(), Gen.Choose(-300, 300).ToArbitrary(), (b, m) =>
        {
            var median = m / 100f;
            var words = new ulong[4];
            for (var k = 0; k < 256; k++)
            {
                if (b[k] > median)
                {
                    words[k >> 6] |= 1UL << (k & 63);
                }
            }

            return PdqStages.ToHash(b, median) == new PdqHash(words[0], words[1], words[2], words[3])
                && PdqStages.ToHash(b) == ReferenceHash(b);
        });

    [Property(MaxTest = 300)]
    public Property Eight_hashes_from_four_medians_equal_eight_from_eight() =>
        Prop.ForAll(Buffers(), a =>
        {
            var variants = new PdqHash[8];
            PdqStages.DihedralHashes(a, PdqStages.Torben(a), new float[256], variants);
            for (var v = 0; v < 8; v++)
            {
                if (variants[v] != ReferenceHash(ReferenceVariant((Dihedral)v, a)))
                {
                    return false;
                }
            }

            return true;
        });

    // Any length the radix median takes, from values that stress it: ties, both zeros, neighbouring floats (whose
    // bit patterns share all but the last byte), subnormals, huge magnitudes and all-equal runs.
    private static Arbitrary<float[]> MedianInputs()
    {
        var near = Gen.Choose(-40, 40).Select(i => BitConverter.Int32BitsToSingle(0x3F80_0000 + i));
        var wild = Gen.Elements(0f, -0f, float.Epsilon, -float.Epsilon, 1e-39f, -1e-39f, 1e30f, -1e30f, 3e33f, -1f, 1f, float.MaxValue, -float.MaxValue, 3e38f, -3e38f);
        var spread = Gen.Choose(-2_000_000_000, 2_000_000_000).Select(BitConverter.Int32BitsToSingle).Where(f => !float.IsNaN(f));
        var value = Gen.Frequency((3, near), (2, wild), (3, spread), (2, Gen.Choose(-3, 3).Select(i => (float)i)));
        return Gen.Choose(1, 1024).SelectMany(n => Gen.OneOf(value.ArrayOf(n), value.Select(v => Enumerable.Repeat(v, n).ToArray()))).ToArbitrary();
    }

    [Property(MaxTest = 2000)]
    public Property Radix_median_is_torbens_median() =>
        Prop.ForAll(MedianInputs(), a =>
        {
            var torben = PdqStages.Torben(a);
            var radix = PdqStages.Median(a);

            // Equal as numbers (a zero may differ in sign), so "strictly above the median" sets the same bits.
            Assert.True(torben == radix, $"n={a.Length}: Torben {torben:R}, radix {radix:R}");
            Assert.Equal(a.Count(v => v > torben), a.Count(v => v > radix));
            if (a.Length >= 256)
            {
                Assert.Equal(PdqStages.ToHash(a.AsSpan(0, 256), PdqStages.Torben(a.AsSpan(0, 256))), PdqStages.ToHash(a.AsSpan(0, 256)));
            }
        });

    /// <summary>
    /// Regression: Torben's midpoint overflowed to ±infinity when every value was near ±float.MaxValue (an all-equal
    /// run drawn from the property's "spread" values), and the search never ended: Warden.Core.Tests hung in CI.
    /// </summary>
    [Fact]
    public async Task Torben_ends_for_values_near_the_float_limits()
    {
        float[][] cases =
        [
            [-float.MaxValue, -float.MaxValue, -float.MaxValue],
            [float.MaxValue, float.MaxValue],
            [float.MaxValue, 3e38f, float.MaxValue, 3.3e38f],
            [-float.MaxValue, -3e38f, -3.1e38f],
            [-float.MaxValue, float.MaxValue, 0f],
            [BitConverter.Int32BitsToSingle(unchecked((int)0xFF7FFFFE)), BitConverter.Int32BitsToSingle(unchecked((int)0xFF7FFFFF))],
        ];
        foreach (var a in cases)
        {
            // A hang fails here (TimeoutException) instead of stalling the run.
            var torben = await Task.Run(() => PdqStages.Torben(a)).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(PdqStages.Median(a), torben);
        }
    }

    [Fact]
    public void Radix_median_refuses_empty_and_oversized_input()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PdqStages.Median([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => PdqStages.Median(new float[1025]));
        Assert.Equal(7f, PdqStages.Median([7f]));
        Assert.Equal(2f, PdqStages.Median([3f, 1f, 2f, 4f]));
    }

    [Fact]
    public void Variants_said_to_share_values_hold_the_same_multiset()
    {
        var a = Enumerable.Range(0, 256).Select(i => (float)((i * 37) % 101) - 50).ToArray();
        for (var v = 0; v < 8; v++)
        {
            var same = PdqStages.SameValuesAs((Dihedral)v);
            Assert.True((int)same <= v, $"{(Dihedral)v} maps to a later variant {same}");
            var mine = ReferenceVariant((Dihedral)v, a).Order();
            var theirs = ReferenceVariant(same, a).Order();
            Assert.Equal(theirs, mine);
        }
    }

    [Fact]
    public void Unknown_variants_and_short_buffers_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PdqStages.DihedralDct((Dihedral)8, new float[256], new float[256]));
        Assert.Throws<ArgumentException>(() => PdqStages.DihedralDct(Dihedral.FlipX, new float[255], new float[256]));
        Assert.Throws<ArgumentException>(() => PdqStages.ToHash(new float[255], 0f));
    }
}

/// <summary><see cref="ContentHasher.HashBytes(byte[], bool)"/> (uploads, no copy) gives what <see cref="ContentHasher.HashStream"/> gives.</summary>
public sealed class ContentHasherBytesTests
{
    private static Arbitrary<byte[]> Contents() =>
        Gen.OneOf(
            Gen.Choose(0, 5000).SelectMany(n => Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf(n)),
            Gen.Choose(1, 40).SelectMany(seed => Gen.Choose(8, 200).Select(side => Encoded(side, (side * 3 / 4) + 1, seed, seed % 2 == 0 ? "jpg" : "png"))),
            Gen.Choose(1, 40).SelectMany(seed => Gen.Choose(1, 4000).Select(cut =>
            {
                var png = Encoded(120, 90, seed, "png");
                return png[..Math.Min(cut, png.Length)]; // truncated images
            })))
        .ToArbitrary();

    private static byte[] Encoded(int width, int height, int seed, string format) =>
        SyntheticImages.Encode(SyntheticImages.Blobs(width, height, seed), width, height, format);

    [Property(MaxTest = 80)]
    public Property Bytes_and_stream_agree(bool dihedral) =>
        Prop.ForAll(Contents(), data =>
        {
            using var hasher = new ContentHasher();
            var a = hasher.HashBytes(data, dihedral);
            var b = hasher.HashStream(new MemoryStream(data, writable: false), dihedral);
            return a.Length == b.Length && a.Exact.Sha256Hex == b.Exact.Sha256Hex && a.Exact.Md5Hex == b.Exact.Md5Hex && a.Exact.Sha1Hex == b.Exact.Sha1Hex
                && a.Image?.Pdq.Hash == b.Image?.Pdq.Hash && a.Image?.Pdq.Quality == b.Image?.Pdq.Quality
                && (a.Image?.Pdq.Dihedral ?? []).SequenceEqual(b.Image?.Pdq.Dihedral ?? [])
                && a.Image?.Trimmed?.Hash == b.Image?.Trimmed?.Hash
                && a.Error?.Error == b.Error?.Error;
        });

    [Fact]
    public void Over_the_byte_limit_keeps_the_digests_and_says_why()
    {
        var data = Encoded(64, 48, 3, "png");
        using var hasher = new ContentHasher(limits: Warden.Core.Imaging.ImageLimits.Default with { MaxBytes = data.Length - 1 });
        var hashes = hasher.HashBytes(data);
        Assert.Null(hashes.Image);
        Assert.Equal(Warden.Core.Imaging.ImageDecodeError.TooManyBytes, hashes.Error?.Error);
        Assert.Equal(ExactHashes.Compute(data).Sha256Hex, hashes.Exact.Sha256Hex);
        Assert.Equal(data.Length, hashes.Length);
    }
}
