using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Warden.Core.ModelFiles;

/// <summary>
/// Turns adapter files into their effective weight changes: kohya (<c>lora_unet_…lora_down/up + alpha</c>),
/// PEFT/diffusers (<c>…lora_A/lora_B</c>, alpha from adapter_config.json), LoCon (conv), LoHa and LoKr. ΔW is
/// evaluated only at the sketch positions of its target shape (in double, stored as fp32), so an adapter is
/// identified by what it does, not how it is written: kohya and PEFT forms, zero-padded ranks and alpha folded
/// into the factors (exactly, by a power of two) give the same module hashes.
/// </summary>
public static class LoraAnalyzer
{
    private static readonly string[] KohyaPrefixes = ["lora_unet_", "lora_te1_", "lora_te2_", "lora_te3_", "lora_te_", "lycoris_"];

    /// <summary>True when the tensor names look like an adapter.</summary>
    public static bool IsAdapter(ModelDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        return doc.Tensors.Any(t => Suffix(t.Name, out _, out _) is not null);
    }

    /// <summary>Modules of an adapter (empty for full models).</summary>
    public static List<LoraModule> Analyze(ModelDocument doc, int sketchSize)
    {
        ArgumentNullException.ThrowIfNull(doc);
        var groups = new Dictionary<string, Dictionary<string, TensorInfo>>(StringComparer.Ordinal);
        foreach (var t in doc.Tensors)
        {
            if (Suffix(t.Name, out var module, out var part) is not null)
            {
                if (!groups.TryGetValue(module, out var g))
                {
                    groups[module] = g = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
                }

                g[part] = t;
            }
        }

        if (groups.Count == 0)
        {
            return [];
        }

        var (peftAlpha, peftRank) = PeftConfig(doc);
        var handles = new Dictionary<string, Microsoft.Win32.SafeHandles.SafeFileHandle>(StringComparer.Ordinal);
        float[]? Values(TensorInfo t)
        {
            if (!handles.TryGetValue(t.Source, out var h))
            {
                handles[t.Source] = h = ModelReader.Open(t.Source);
            }

            return TensorValues.ReadAll(h, t);
        }

        var result = new List<LoraModule>();
        try
        {
            foreach (var (module, parts) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                try
                {
                    var m = Build(module, parts, Values, sketchSize, peftAlpha, peftRank);
                    if (m is not null)
                    {
                        result.AddRange(m);
                    }
                    else
                    {
                        doc.Flag(AnomalySeverity.Info, "lora.unsupported-module", $"adapter module '{module}' ({string.Join(",", parts.Keys)}) is not evaluated");
                    }
                }
                catch (ModelFormatException ex)
                {
                    doc.Flag(AnomalySeverity.Warning, "lora.bad-module", $"adapter module '{module}': {ex.Message}");
                }
            }
        }
        finally
        {
            foreach (var h in handles.Values)
            {
                h.Dispose();
            }
        }

        return result;
    }

    // Splits "<module>.<part>" for adapter parts; module becomes "component:path_with_underscores".
    private static string? Suffix(string name, out string module, out string part)
    {
        module = part = string.Empty;
        string[] parts = ["lora_down.weight", "lora_up.weight", "lora_A.weight", "lora_B.weight", "lora_A.default.weight", "lora_B.default.weight", "alpha",
            "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "lokr_w1", "lokr_w2", "lokr_w1_a", "lokr_w1_b", "lokr_w2_a", "lokr_w2_b", "lora_mid.weight",
            "down.weight", "up.weight"];
        foreach (var p in parts)
        {
            if (!name.EndsWith("." + p, StringComparison.Ordinal))
            {
                continue;
            }

            var path = name[..^(p.Length + 1)];
            if (p is "down.weight" or "up.weight")
            {
                // diffusers attention-processor LoRA: "...attn1.processor.to_q_lora.down.weight"; diffusers training
                // scripts (convert_state_dict_to_diffusers of a PEFT state dict): "...to_q.lora.down.weight", and the
                // text-encoder form "...q_proj.lora_linear_layer.down.weight".
                if (path.EndsWith("_lora", StringComparison.Ordinal))
                {
                    path = path[..^"_lora".Length].Replace(".processor.", ".", StringComparison.Ordinal);
                }
                else if (path.EndsWith(".lora_linear_layer", StringComparison.Ordinal))
                {
                    path = path[..^".lora_linear_layer".Length];
                }
                else if (path.EndsWith(".lora", StringComparison.Ordinal))
                {
                    path = path[..^".lora".Length];
                }
                else
                {
                    return null;
                }
            }

            var kohya = KohyaPrefixes.FirstOrDefault(k => path.StartsWith(k, StringComparison.Ordinal));
            if (kohya is not null)
            {
                var component = kohya switch
                {
                    "lora_unet_" or "lycoris_" => "denoiser",
                    "lora_te2_" => "te2",
                    "lora_te3_" => "te3",
                    _ => "te1",
                };
                var rest = path[kohya.Length..];
                module = component + ":" + (TensorLayouts.Rename(component, rest) ?? rest);
            }
            else if (p is "alpha" or "lokr_w1" or "lokr_w2" or "lokr_w1_a" or "lokr_w1_b" or "lokr_w2_a" or "lokr_w2_b" or "hada_w1_a" or "hada_w1_b" or "hada_w2_a" or "hada_w2_b" or "lora_down.weight" or "lora_up.weight" or "lora_mid.weight"
                && !path.Contains('.', StringComparison.Ordinal))
            {
                return null;
            }
            else
            {
                var p2 = path;
                foreach (var wrap in new[] { "base_model.model.", "base_model." })
                {
                    if (p2.StartsWith(wrap, StringComparison.Ordinal))
                    {
                        p2 = p2[wrap.Length..];
                    }
                }

                var component = "denoiser";
                var folder = false;
                foreach (var (prefix, c) in new[] { ("unet.", "denoiser"), ("transformer.", "denoiser"), ("text_encoder_2.", "te2"), ("text_encoder_3.", "te3"), ("text_encoder.", "te1") })
                {
                    if (p2.StartsWith(prefix, StringComparison.Ordinal))
                    {
                        component = c;
                        p2 = p2[prefix.Length..];
                        folder = true;
                        break;
                    }
                }

                var canonical = folder ? new CanonicalName(component, TensorLayouts.Rename(component, p2 + ".weight") ?? p2 + ".weight") : TensorNames.Canonicalize(p2 + ".weight");
                if (canonical is { } cn && cn.Component != "other" && cn.Name.EndsWith(".weight", StringComparison.Ordinal))
                {
                    component = cn.Component;
                    p2 = cn.Name[..^".weight".Length];
                }

                module = component + ":" + p2.Replace('.', '_');
            }

            part = p switch
            {
                "lora_A.weight" or "lora_A.default.weight" or "down.weight" => "lora_down.weight",
                "lora_B.weight" or "lora_B.default.weight" or "up.weight" => "lora_up.weight",
                _ => p,
            };
            return part;
        }

        return null;
    }

    private static (double? Alpha, double? Rank) PeftConfig(ModelDocument doc)
    {
        if (!doc.Metadata.TryGetValue("config:adapter_config.json", out var json))
        {
            return (null, null);
        }

        try
        {
            using var d = JsonDocument.Parse(json);
            var alpha = d.RootElement.TryGetProperty("lora_alpha", out var a) && a.TryGetDouble(out var av) ? av : (double?)null;
            var rank = d.RootElement.TryGetProperty("r", out var r) && r.TryGetDouble(out var rv) ? rv : (double?)null;
            return (alpha, rank);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }

    private static List<LoraModule>? Build(string module, Dictionary<string, TensorInfo> parts, Func<TensorInfo, float[]?> values, int k, double? peftAlpha, double? peftRank)
    {
        double? alpha = null;
        if (parts.TryGetValue("alpha", out var at) && values(at) is [var a, ..])
        {
            alpha = a;
        }

        if (parts.TryGetValue("lora_down.weight", out var down) && parts.TryGetValue("lora_up.weight", out var up))
        {
            if (parts.ContainsKey("lora_mid.weight"))
            {
                return null; // Tucker-decomposed LoCon: structure only in this version.
            }

            if (down.Shape.Length < 2 || up.Shape.Length < 2 || down.Shape[0] is <= 0 or > 65536)
            {
                throw new ModelFormatException($"up {up.ShapeText} / down {down.ShapeText} are not factor matrices");
            }

            var r = (int)down.Shape[0];
            if (up.Shape[1] != r || up.Count != up.Shape[0] * r)
            {
                throw new ModelFormatException($"up {up.ShapeText} and down {down.ShapeText} ranks differ");
            }

            var target = TensorNames.CanonicalShape([up.Shape[0], .. down.Shape[1..]]);
            var inner = down.Count / r;
            var dv = Need(values(down));
            var uv = Need(values(up));
            var scale = alpha is { } al && al != 0 ? al / r : peftAlpha is { } pa ? pa / (peftRank ?? r) : 1.0;
            return Emit(module, "lora", target, r, scale, k, (o, j) =>
            {
                double s = 0;
                for (var q = 0; q < r; q++)
                {
                    s += (double)uv[(o * r) + q] * dv[(q * inner) + j];
                }

                return s;
            }, inner);
        }

        if (parts.TryGetValue("hada_w1_a", out var w1a) && parts.TryGetValue("hada_w1_b", out var w1b) && parts.TryGetValue("hada_w2_a", out var w2a) && parts.TryGetValue("hada_w2_b", out var w2b))
        {
            if (w1a.Shape.Length < 2 || w1b.Shape.Length < 2 || w2a.Shape.Length < 2 || w2b.Shape.Length < 2 || w1b.Shape[0] is <= 0 or > 65536 || w2b.Shape[0] is <= 0 or > 65536)
            {
                throw new ModelFormatException("LoHa factors are not matrices");
            }

            var r = (int)w1b.Shape[0];
            var r2 = (int)w2b.Shape[0];
            var target = TensorNames.CanonicalShape([w1a.Shape[0], .. w1b.Shape[1..]]);
            var inner = w1b.Count / r;
            if (w1a.Count != w1a.Shape[0] * r || w2a.Count != w1a.Shape[0] * r2 || w2b.Count != r2 * inner || w1b.Count != r * inner)
            {
                throw new ModelFormatException("LoHa factor shapes do not fit together");
            }

            var (a1, b1, a2, b2) = (Need(values(w1a)), Need(values(w1b)), Need(values(w2a)), Need(values(w2b)));
            var scale = alpha is { } al && al != 0 ? al / r : 1.0;
            return Emit(module, "loha", target, r, scale, k, (o, j) =>
            {
                double s1 = 0, s2 = 0;
                for (var q = 0; q < r; q++)
                {
                    s1 += (double)a1[(o * r) + q] * b1[(q * inner) + j];
                }

                for (var q = 0; q < r2; q++)
                {
                    s2 += (double)a2[(o * r2) + q] * b2[(q * inner) + j];
                }

                return s1 * s2;
            }, inner);
        }

        var hasW1 = parts.ContainsKey("lokr_w1") || (parts.ContainsKey("lokr_w1_a") && parts.ContainsKey("lokr_w1_b"));
        var hasW2 = parts.ContainsKey("lokr_w2") || (parts.ContainsKey("lokr_w2_a") && parts.ContainsKey("lokr_w2_b"));
        if (hasW1 && hasW2)
        {
            var (m1, o1, i1, _) = Dense(parts, "lokr_w1", values);
            var (m2, o2, i2, r) = Dense(parts, "lokr_w2", values);
            var scale = r > 0 && alpha is { } al && al != 0 ? al / r : 1.0;
            var target = TensorNames.CanonicalShape([o1 * o2, i1 * i2]);
            return Emit(module, "lokr", target, r, scale, k, (o, j) => (double)m1[((o / o2) * i1) + (j / i2)] * m2[((o % o2) * i2) + (j % i2)], i1 * i2);
        }

        return null;
    }

    // A LoKr factor as a dense [rows, cols] matrix (either stored whole or as a @ b); rank 0 when whole.
    private static (double[] M, long Rows, long Cols, int Rank) Dense(Dictionary<string, TensorInfo> parts, string name, Func<TensorInfo, float[]?> values)
    {
        if (parts.TryGetValue(name, out var w))
        {
            if (w.Shape.Length < 2 || w.Shape[0] <= 0)
            {
                throw new ModelFormatException($"{name} is not a matrix");
            }

            var v = Need(values(w));
            var cols = w.Count / Math.Max(1, w.Shape[0]);
            return (v.Select(x => (double)x).ToArray(), w.Shape[0], cols, 0);
        }

        var a = parts[name + "_a"];
        var b = parts[name + "_b"];
        if (a.Shape.Length < 2 || b.Shape.Length < 2 || a.Shape[1] is <= 0 or > 65536 || a.Shape[1] != b.Shape[0] || a.Count != a.Shape[0] * a.Shape[1])
        {
            throw new ModelFormatException($"{name}_a {a.ShapeText} and {name}_b {b.ShapeText} do not fit together");
        }

        var av = Need(values(a));
        var bv = Need(values(b));
        var r = (int)a.Shape[1];
        var rows = a.Shape[0];
        var c = b.Count / r;
        if (rows * c > 1 << 24)
        {
            throw new ModelFormatException($"{name} factor too large to expand");
        }

        var m = new double[rows * c];
        for (var o = 0; o < rows; o++)
        {
            for (var j = 0; j < c; j++)
            {
                double s = 0;
                for (var q = 0; q < r; q++)
                {
                    s += (double)av[(o * r) + q] * bv[(q * c) + j];
                }

                m[(o * c) + j] = s;
            }
        }

        return (m, rows, c, r);
    }

    private static float[] Need(float[]? v) => v ?? throw new ModelFormatException("factor values unreadable (dtype, size or storage)");

    // One module per canonical weight: a change to a fused projection (kohya Flux "img_attn_qkv") is split into
    // the rows of the weights the canonical layout keeps, as the model's own tensors are.
    private static List<LoraModule> Emit(string key, string kind, long[] target, int rank, double scale, int k, Func<long, long, double> at, long inner)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        var pieces = target.Length >= 1 ? TensorLayouts.RowPieces(key[(colon + 1)..], target[0], target.Length > 1 ? inner : 0) : null;
        if (pieces is null)
        {
            return [Module(key, kind, target, rank, scale, k, at, inner)];
        }

        return [.. pieces.Select(p => Module(key[..(colon + 1)] + p.Name, kind, [p.Rows, .. target[1..]], rank, scale, k, (o, j) => at(o + p.Start, j), inner))];
    }

    private static LoraModule Module(string key, string kind, long[] target, int rank, double scale, int k, Func<long, long, double> at, long inner)
    {
        var positions = Fingerprinter.SketchPositions(target, k);
        var delta = new float[positions.Length];
        for (var i = 0; i < positions.Length; i++)
        {
            var p = positions[i];
            delta[i] = (float)(at(p / inner, p % inner) * scale) + 0f;
        }

        var h = new XxHash128();
        h.Append(Fingerprinter.ShapeBytes(target));
        h.Append(MemoryMarshal.AsBytes(delta.AsSpan()));
        return new LoraModule(key, kind, target, rank, scale, delta, h.GetCurrentHash());
    }

    /// <summary>Short description, e.g. "lora r=8 scale=0.5".</summary>
    public static string Describe(LoraModule m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return string.Create(CultureInfo.InvariantCulture, $"{m.Kind} r={m.Rank} scale={m.Scale:G4}");
    }
}
