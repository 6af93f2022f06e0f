using System.Text;
using Warden.Core.ModelFiles;

namespace Warden.Core.Tests.Models;

/// <summary>
/// Deterministic synthetic models (reference/models.md §9): a tiny SD1-shaped checkpoint with real key names
/// (UNet, CLIP text encoder, VAE, noise-schedule buffers), fine-tunes of it, merges, a kohya LoRA and its
/// bake-in, and hostile pickles. Random Gaussian weights from fixed seeds; nothing is downloaded.
/// </summary>
public static class ModelFixtures
{
    /// <summary>Names and shapes of the tiny SD1-like checkpoint (attn2.to_k has the SD1 context width 768).</summary>
    public static readonly (string Name, long[] Shape)[] Sd1Layout =
    [
        ("model.diffusion_model.input_blocks.0.0.weight", [32, 4, 3, 3]),
        ("model.diffusion_model.input_blocks.0.0.bias", [32]),
        ("model.diffusion_model.input_blocks.1.1.proj_in.weight", [32, 32, 1, 1]),
        ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", [32, 32]),
        ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_k.weight", [32, 32]),
        ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight", [32, 32]),
        ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [32, 768]),
        ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight", [32, 768]),
        ("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.norm1.weight", [32]),
        ("model.diffusion_model.out.2.weight", [4, 32, 3, 3]),
        ("cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", [64, 48]),
        ("cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", [48, 48]),
        ("first_stage_model.decoder.conv_in.weight", [16, 4, 3, 3]),
        ("first_stage_model.encoder.mid.attn_1.q.weight", [16, 16, 1, 1]),
    ];

    /// <summary>The modules the fixture LoRA changes (kohya names, target shapes).</summary>
    public static readonly (string Kohya, string Target, long Out, long In)[] LoraLayout =
    [
        ("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q", "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", 32, 32),
        ("lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k", "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 32, 768),
        ("lora_te_text_model_encoder_layers_0_mlp_fc1", "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", 64, 48),
    ];

    /// <summary>Gaussian values N(0, std²) from a seed (Box–Muller).</summary>
    public static float[] Gaussian(int seed, long n, double std)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (var i = 0; i < n; i++)
        {
            var u1 = 1.0 - rng.NextDouble();
            var u2 = rng.NextDouble();
            v[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return v;
    }

    /// <summary>A base model: Gaussian weights (norm weights around 1), plus SD1's non-learned buffers.</summary>
    public static List<FixtureTensor> Base(int seed = 1)
    {
        var list = new List<FixtureTensor>();
        var i = 0;
        foreach (var (name, shape) in Sd1Layout)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var v = Gaussian(seed * 1000 + i++, n, 0.02);
            if (name.EndsWith("norm1.weight", StringComparison.Ordinal))
            {
                for (var k = 0; k < v.Length; k++)
                {
                    v[k] += 1;
                }
            }

            list.Add(new FixtureTensor(name, shape, v));
        }

        list.Add(new FixtureTensor("alphas_cumprod", [100], [.. Enumerable.Range(0, 100).Select(k => 1f - (k / 100f))]));
        list.Add(new FixtureTensor("cond_stage_model.transformer.text_model.embeddings.position_ids", [1, 77], [.. Enumerable.Range(0, 77).Select(k => (float)k)], TensorDType.I64));
        return list;
    }

    /// <summary>A fine-tune: base + Gaussian delta (std 0.006) on every learned weight.</summary>
    public static List<FixtureTensor> FineTune(List<FixtureTensor> b, int seed, double std = 0.006) =>
        [.. b.Select((t, i) => IsBuffer(t.Name) ? t : t with { Values = Add(t.Values, Gaussian(seed * 1000 + i, t.Values.Length, std), 1, 1) })];

    /// <summary>a·A + b·B tensor by tensor (buffers from A).</summary>
    public static List<FixtureTensor> Merge(List<FixtureTensor> a, double wa, List<FixtureTensor> b, double wb) =>
        [.. a.Zip(b).Select(p => IsBuffer(p.First.Name) ? p.First : p.First with { Values = Add(p.First.Values, p.Second.Values, wa, wb) })];

    /// <summary>A kohya LoRA for the base: rank 4, alpha 2 (scale 0.5); up/down Gaussian.</summary>
    public static List<FixtureTensor> Lora(int seed, int rank = 4, float alpha = 2)
    {
        var list = new List<FixtureTensor>();
        var i = 0;
        foreach (var (kohya, _, outDim, inDim) in LoraLayout)
        {
            list.Add(new FixtureTensor(kohya + ".lora_down.weight", [rank, inDim], Gaussian(seed * 100 + i++, rank * inDim, 0.1)));
            list.Add(new FixtureTensor(kohya + ".lora_up.weight", [outDim, rank], Gaussian(seed * 100 + i++, outDim * rank, 0.05)));
            list.Add(new FixtureTensor(kohya + ".alpha", [], [alpha]));
        }

        return list;
    }

    /// <summary>The same adapter in PEFT form (lora_A/lora_B, alpha in adapter_config.json) for a base whose module names are the LDM ones.</summary>
    public static List<FixtureTensor> LoraAsPeft(List<FixtureTensor> kohya)
    {
        var list = new List<FixtureTensor>();
        foreach (var t in kohya.Where(t => !t.Name.EndsWith(".alpha", StringComparison.Ordinal)))
        {
            var module = t.Name[..t.Name.IndexOf('.', StringComparison.Ordinal)];
            var target = LoraLayout.First(l => l.Kohya == module).Target;
            var path = target[..^".weight".Length];
            var prefix = path.StartsWith("model.diffusion_model.", StringComparison.Ordinal) ? "base_model.model.unet." + path["model.diffusion_model.".Length..]
                : "base_model.model.text_encoder." + path["cond_stage_model.transformer.".Length..];
            list.Add(t.Renamed(prefix + (t.Name.EndsWith("lora_down.weight", StringComparison.Ordinal) ? ".lora_A.weight" : ".lora_B.weight")));
        }

        return list;
    }

    /// <summary>base + strength·scale·up@down on the LoRA's target weights.</summary>
    public static List<FixtureTensor> BakeIn(List<FixtureTensor> b, List<FixtureTensor> lora, double strength)
    {
        var result = b.Select(t => t with { Values = (float[])t.Values.Clone() }).ToList();
        foreach (var (kohya, target, outDim, inDim) in LoraLayout)
        {
            var down = lora.First(t => t.Name == kohya + ".lora_down.weight");
            var up = lora.First(t => t.Name == kohya + ".lora_up.weight");
            var alpha = lora.First(t => t.Name == kohya + ".alpha").Values[0];
            var r = (int)down.Shape[0];
            var scale = alpha / r * strength;
            var w = result.First(t => t.Name == target).Values;
            for (var o = 0; o < outDim; o++)
            {
                for (var j = 0; j < inDim; j++)
                {
                    double s = 0;
                    for (var q = 0; q < r; q++)
                    {
                        s += (double)up.Values[(o * r) + q] * down.Values[(q * inDim) + j];
                    }

                    w[(o * inDim) + j] = (float)(w[(o * inDim) + j] + (scale * s));
                }
            }
        }

        return result;
    }

    public static bool IsBuffer(string name) => name is "alphas_cumprod" || name.EndsWith("position_ids", StringComparison.Ordinal);

    public static List<FixtureTensor> Cast(List<FixtureTensor> m, TensorDType dtype) => [.. m.Select(t => t.DType == TensorDType.F32 ? t.As(dtype) : t)];

    /// <summary>EMA copies as full LDM checkpoints carry them (model_ema.&lt;name without dots&gt;).</summary>
    public static List<FixtureTensor> WithEma(List<FixtureTensor> m) =>
        [.. m, .. m.Where(t => t.Name.StartsWith("model.diffusion_model.", StringComparison.Ordinal))
            .Select(t => t with { Name = "model_ema." + t.Name["model.".Length..].Replace(".", string.Empty, StringComparison.Ordinal), Values = Add(t.Values, t.Values, 0.999, 0) }),
            new FixtureTensor("model_ema.decay", [], [0.9999f]), new FixtureTensor("model_ema.num_updates", [], [100f])];

    /// <summary>Writes a diffusers-style folder: model_index.json, unet/, text_encoder/, vae/ with config.json and safetensors (names without LDM prefixes).</summary>
    public static void WriteDiffusers(string dir, List<FixtureTensor> m)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "model_index.json"), """{"_class_name":"StableDiffusionPipeline","unet":["diffusers","UNet2DConditionModel"],"vae":["diffusers","AutoencoderKL"],"text_encoder":["transformers","CLIPTextModel"]}""");
        foreach (var (folder, prefix) in new[] { ("unet", "model.diffusion_model."), ("text_encoder", "cond_stage_model.transformer."), ("vae", "first_stage_model.") })
        {
            var sub = Path.Combine(dir, folder);
            Directory.CreateDirectory(sub);
            File.WriteAllText(Path.Combine(sub, "config.json"), "{}");
            var tensors = m.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal) && !IsBuffer(t.Name)).Select(t => t.Renamed(t.Name[prefix.Length..])).Reverse().ToList();
            var file = folder == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
            File.WriteAllBytes(Path.Combine(sub, file), ModelWriters.Safetensors(tensors));
        }
    }

    /// <summary>Writes two shards and the index.json that names them.</summary>
    public static void WriteSharded(string dir, List<FixtureTensor> m)
    {
        Directory.CreateDirectory(dir);
        var half = m.Count / 2;
        var shards = new[] { m[..half], m[half..] };
        var map = new StringBuilder("{\"metadata\":{\"total_size\":0},\"weight_map\":{");
        for (var s = 0; s < 2; s++)
        {
            var name = $"model-0000{s + 1}-of-00002.safetensors";
            File.WriteAllBytes(Path.Combine(dir, name), ModelWriters.Safetensors(shards[s]));
            foreach (var t in shards[s])
            {
                map.Append($"\"{t.Name}\":\"{name}\",");
            }
        }

        map.Length--;
        map.Append("}}");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), map.ToString());
    }

    private static float[] Add(float[] a, float[] b, double wa, double wb)
    {
        var r = new float[a.Length];
        for (var i = 0; i < a.Length; i++)
        {
            r[i] = (float)((wa * a[i]) + (wb * b[i]));
        }

        return r;
    }

    /// <summary>Hostile pickles by bypass class (reference/models.md §3, §9.4). Each would run <c>touch MARKER</c> if unpickled.</summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> HostilePickles(string marker)
    {
        var cmd = "touch " + marker;
        var list = new List<(string, byte[])>
        {
            ("os-system-global", Encoding.ASCII.GetBytes($"cos\nsystem\n(S'{cmd}'\ntR.")),
            ("posix-system-proto2", new ModelWriters.Pickle().Proto(2).Global("posix", "system").Str(cmd).Op(0x85).Op((byte)'R').Stop().ToArray()),
            ("builtins-getattr-chain", new ModelWriters.Pickle().Proto(2).Global("builtins", "getattr").Global("builtins", "__import__").Str("os").Op(0x85).Op((byte)'R')
                .Str("system").Op(0x86).Op((byte)'R').Str(cmd).Op(0x85).Op((byte)'R').Stop().ToArray()),
            ("stack-global-memo", new ModelWriters.Pickle().Proto(4).Str4("os").Op((byte)'q').Op(7).Op((byte)'0').Str4("system").Op((byte)'q').Op(8).Op((byte)'0')
                .Op((byte)'h').Op(7).Op((byte)'h').Op(8).Op(0x93).Str4(cmd).Op(0x85).Op((byte)'R').Stop().ToArray()),
            ("stack-global-memoize", new ModelWriters.Pickle().Proto(4).Op(0x95).Raw(new byte[8]).Str4("subprocess").Op(0x94).Str4("call").Op(0x94).Op(0x93).Str4(cmd).Op(0x85).Op((byte)'R').Stop().ToArray()),
            ("stack-global-non-string", new ModelWriters.Pickle().Proto(4).Num(1).Num(2).Op(0x93).Str4(cmd).Op(0x85).Op((byte)'R').Stop().ToArray()),
            ("inst", Encoding.ASCII.GetBytes($"(S'{cmd}'\nios\nsystem\n.")),
            ("obj", new ModelWriters.Pickle().Proto(2).Mark().Global("collections", "OrderedDict").Op((byte)'o').Stop().ToArray()),
            ("ext1", new ModelWriters.Pickle().Proto(2).Op(0x82).Op(1).Op((byte)')').Op((byte)'R').Stop().ToArray()),
            ("banned-submodule", new ModelWriters.Pickle().Proto(2).Global("asyncio.unix_events", "_UnixSelectorEventLoop").Op((byte)')').Op((byte)'R').Stop().ToArray()),
            ("payload-then-corrupt", [.. Encoding.ASCII.GetBytes($"cos\nsystem\n(S'{cmd}'\ntR"), 0xFF, 0xFE, 0x00]),
            ("benign-then-payload", [.. new ModelWriters.Pickle().Proto(2).Op((byte)'}').Stop().ToArray(), .. Encoding.ASCII.GetBytes($"cos\nsystem\n(S'{cmd}'\ntR.")]),
            ("runpy-blocklist-gap", new ModelWriters.Pickle().Proto(2).Global("runpy", "_run_code").Str(cmd).Op(0x85).Op((byte)'R').Stop().ToArray()),
            ("torch-load-nested", new ModelWriters.Pickle().Proto(2).Global("torch.serialization", "load").Str(marker).Op(0x85).Op((byte)'R').Stop().ToArray()),
        };
        return list;
    }
}
