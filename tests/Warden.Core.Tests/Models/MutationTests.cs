using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Every reader on mutated and truncated copies of valid files (fixed seeds): the only way out is a
/// <see cref="ModelFormatException"/>; reading, fingerprinting and classifying never crash or hang.
/// </summary>
public class MutationTests
{
    public static TheoryData<string> Formats() => ["safetensors", "torch-zip", "torch-zip-p4", "legacy", "gguf", "lora", "lycoris"];

    private static byte[] Valid(string format)
    {
        var m = ModelFixtures.Base().Take(6).ToList();
        return format switch
        {
            "safetensors" => ModelWriters.Safetensors(m, new Dictionary<string, string> { ["a"] = "b" }),
            "torch-zip" => ModelWriters.TorchZip(m, new ModelWriters.TorchOptions { Wrapper = "state_dict" }),
            "torch-zip-p4" => ModelWriters.TorchZip(m, new ModelWriters.TorchOptions { Protocol4 = true, DeflatePickle = true }),
            "legacy" => ModelWriters.LegacyTorch(m),
            "gguf" => ModelWriters.Gguf(m.Where(t => t.DType == TensorDType.F32).ToList(), [new("general.architecture", 8, "sd1"), new("n", 9, (4u, new object[] { 1u, 2u }))]),
            "lora" => ModelWriters.Safetensors(ModelFixtures.Lora(3)),
            "lycoris" => ModelWriters.Safetensors(
            [
                new("lora_unet_x.hada_w1_a", [8, 2], ModelFixtures.Gaussian(1, 16, 0.1)),
                new("lora_unet_x.hada_w1_b", [2, 6], ModelFixtures.Gaussian(2, 12, 0.1)),
                new("lora_unet_x.hada_w2_a", [8, 2], ModelFixtures.Gaussian(3, 16, 0.1)),
                new("lora_unet_x.hada_w2_b", [2, 6], ModelFixtures.Gaussian(4, 12, 0.1)),
                new("lora_unet_y.lokr_w1_a", [2, 1], [1, 2]),
                new("lora_unet_y.lokr_w1_b", [1, 3], [1, 2, 3]),
                new("lora_unet_y.lokr_w2", [4, 2], ModelFixtures.Gaussian(5, 8, 1)),
            ]),
            _ => throw new ArgumentException(format),
        };
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Mutated_files_fail_only_with_format_errors(string format)
    {
        using var dir = new TempDir();
        var valid = Valid(format);
        var rng = new Random(format.Length * 7919);
        for (var i = 0; i < 300; i++)
        {
            var bytes = (byte[])valid.Clone();
            switch (i % 3)
            {
                case 0:
                    bytes = bytes[..rng.Next(1, bytes.Length)];
                    break;
                case 1:
                    for (var k = rng.Next(1, 8); k > 0; k--)
                    {
                        bytes[rng.Next(Math.Min(bytes.Length, 4096))] = (byte)rng.Next(256);
                    }

                    break;
                default:
                    for (var k = rng.Next(1, 8); k > 0; k--)
                    {
                        bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                    }

                    break;
            }

            var path = dir.File($"m{i}", bytes);
            try
            {
                var doc = ModelReader.Read(path);
                ModelArchitecture.Classify(doc);
                Fingerprinter.Compute(doc, new FingerprintOptions { CastPaths = true });
            }
            catch (ModelFormatException)
            {
                // refused with a reason: fine
            }
            catch (Exception ex)
            {
                Assert.Fail($"{format} mutation {i}: {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
            }
        }
    }
}
