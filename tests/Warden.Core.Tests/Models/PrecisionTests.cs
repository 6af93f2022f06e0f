using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Reduced precisions: every GGUF block type Warden dequantises decodes exactly as ggml's layout says (random
/// blocks, compared value by value with a decoder written from the layout), and quantised or fp8 copies of a
/// registered model are reported as "same weights, reduced precision" (tier R) with their estimated error,
/// while an unrelated model of the same architecture in the same precision is not.
/// </summary>
public class PrecisionTests
{
    private static ModelFingerprint Print(string path) => Fingerprinter.Compute(ModelReader.Read(path), new FingerprintOptions { FileHashes = false });

    public static TheoryData<TensorDType> QuantTypes() => [.. GgmlPack.Types];

    [Property(MaxTest = 40)]
    public Property Every_block_type_decodes_as_its_layout_says() =>
        Prop.ForAll(Gen.Elements(GgmlPack.Types).Zip(Gen.Choose(0, int.MaxValue)).ToArbitrary(), p =>
        {
            var (type, seed) = p;
            var blocks = 3;
            var raw = GgmlPack.RandomBlocks(type, blocks, new Random(seed));
            var n = GgmlPack.BlockValues(type);
            var values = new float[blocks * n];
            TensorValues.Widen(raw, type, values);
            for (var b = 0; b < blocks; b++)
            {
                var block = raw.AsSpan(b * GgmlPack.BlockBytes(type), GgmlPack.BlockBytes(type));
                for (var i = 0; i < n; i++)
                {
                    var want = GgmlPack.Reference(type, block, i) + 0f;
                    if (BitConverter.SingleToInt32Bits(want) != BitConverter.SingleToInt32Bits(values[(b * n) + i]))
                    {
                        return false;
                    }
                }
            }

            return true;
        });

    [Theory]
    [MemberData(nameof(QuantTypes))]
    public void Gguf_tensors_of_every_type_are_read_and_hashed(TensorDType type)
    {
        using var dir = new TempDir();
        var w = ModelFixtures.Gaussian(5, 4 * 512, 0.02);
        var raw = GgmlPack.Quantise(type, w);
        var path = dir.File("m.gguf", ModelWriters.Gguf([new FixtureTensor("model.diffusion_model.out.2.weight", [4, 512], w, type, raw)], [new("general.architecture", 8, "sd1")]));
        var doc = ModelReader.Read(path);
        var t = Assert.Single(doc.Tensors);
        Assert.Equal(type, t.DType);
        Assert.True(t.Readable);
        Assert.DoesNotContain(doc.Anomalies, a => a.Code == "gguf.quantised");
        using var h = File.OpenHandle(path);
        var values = TensorValues.ReadAll(h, t)!;
        var expected = Enumerable.Range(0, w.Length).Select(i => GgmlPack.Reference(type, raw.AsSpan(i / GgmlPack.BlockValues(type) * GgmlPack.BlockBytes(type), GgmlPack.BlockBytes(type)), i % GgmlPack.BlockValues(type)) + 0f);
        Assert.Equal(expected, values);
        Assert.True(NearMatcher.RelativeError(values, w) <= NearMatcher.PrecisionTolerance(type), $"{type}: error {NearMatcher.RelativeError(values, w)}");
        Assert.NotNull(Print(path).Tensors.Single().Hash);
    }

    [Fact]
    public void Truncated_or_ragged_quantised_tensors_are_not_dequantised()
    {
        using var dir = new TempDir();
        foreach (var type in GgmlPack.Types)
        {
            // 300 values is no whole number of blocks (32 or 256): the reader must not read a partial block.
            var w = ModelFixtures.Gaussian(6, 300, 0.02);
            var raw = new byte[GgmlPack.BlockBytes(type) * 2];
            var doc = ModelReader.Read(dir.File($"{type}.gguf", ModelWriters.Gguf([new FixtureTensor("w", [300], w, type, raw)], [])));
            Assert.False(doc.Tensors.Single().Readable, type.ToString());

            // A whole tensor whose data runs past the end of the file.
            var ok = ModelWriters.Gguf([new FixtureTensor("w", [GgmlPack.BlockValues(type) * 4], [], type, new byte[GgmlPack.BlockBytes(type) * 4])], []);
            var bytes = GgmlPack.BlockBytes(type) * 4;
            var pad = ((bytes + 31) / 32 * 32) - bytes; // the writer pads data to the 32-byte alignment
            var cut = ModelReader.Read(dir.File($"{type}-cut.gguf", ok[..^(pad + 1)]));
            Assert.True(cut.Anomalies.Any(a => a.Code == "gguf.out-of-bounds"), $"{type}: {cut.Format} {string.Join("; ", cut.Anomalies.Select(a => a.Code + " " + a.Message))}");
            Assert.False(cut.Tensors.Single().Readable);
        }
    }

    public static TheoryData<TensorDType> ReducedTypes() => [.. GgmlPack.Types, TensorDType.F8E4M3, TensorDType.F8E5M2, TensorDType.BF16, TensorDType.F16];

    // A tiny model whose rows are whole k-quant super-blocks.
    private static List<FixtureTensor> Model(int seed) =>
    [
        .. new[] { "input_blocks.1.1.proj_in.weight", "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", "input_blocks.1.1.transformer_blocks.0.attn1.to_k.weight", "middle_block.1.proj_out.weight", "out.2.weight", "time_embed.0.weight" }
            .Select((n, i) => new FixtureTensor("model.diffusion_model." + n, [8, 256], ModelFixtures.Gaussian((seed * 100) + i, 8 * 256, 0.02))),
    ];

    private static string Write(TempDir dir, string name, List<FixtureTensor> m, TensorDType type) => type switch
    {
        TensorDType.F8E4M3 or TensorDType.F8E5M2 => dir.File(name + ".safetensors", ModelWriters.RawSafetensors(
            System.Text.Encoding.UTF8.GetBytes("{" + string.Join(',', m.Select((t, i) => $"\"{t.Name}\":{{\"dtype\":\"{(type == TensorDType.F8E4M3 ? "F8_E4M3" : "F8_E5M2")}\",\"shape\":[8,256],\"data_offsets\":[{i * 2048},{(i + 1) * 2048}]}}")) + "}"),
            [.. m.SelectMany(t => GgmlPack.Fp8(t.Values, type))])),
        TensorDType.F16 or TensorDType.BF16 => dir.File(name + ".safetensors", ModelWriters.Safetensors(ModelFixtures.Cast(m, type))),
        _ => dir.File(name + ".gguf", ModelWriters.Gguf([.. m.Select(t => t with { DType = type, Raw = GgmlPack.Quantise(type, t.Values) })], [new("general.architecture", 8, "sd1")])),
    };

    [Theory]
    [MemberData(nameof(ReducedTypes))]
    public void A_reduced_precision_copy_is_the_same_weights(TensorDType type)
    {
        using var dir = new TempDir();
        var bad = Model(1);
        var record = ModelRecord.From(Print(dir.File("bad.safetensors", ModelWriters.Safetensors(bad))), "bad", "bad", "bad-models", "sd1 checkpoint");
        var other = ModelRecord.From(Print(dir.File("other.safetensors", ModelWriters.Safetensors(Model(2)))), "other", "other", "bad-models", "sd1 checkpoint");

        var copy = Print(Write(dir, "copy", bad, type));
        var hit = Assert.Single(NearMatcher.Similar(copy, [record, other]));
        Assert.Equal("R", hit.Tier);
        Assert.Equal("bad", hit.Record.Name);
        Assert.Equal(NearMatcher.PrecisionName(type), hit.Precision);
        Assert.InRange(hit.Error!.Value, 0, NearMatcher.PrecisionTolerance(type));

        // An unrelated model in the same precision, and a fine-tune drifted by 30 %, are not the same weights.
        Assert.Empty(NearMatcher.Similar(Print(Write(dir, "unrelated", Model(3), type)), [record, other]));
        var drifted = ModelFixtures.FineTune(bad, 9, 0.006);
        Assert.DoesNotContain(NearMatcher.Similar(Print(Write(dir, "drift", drifted, type)), [record]), h => h.Tier == "R");
    }
}
