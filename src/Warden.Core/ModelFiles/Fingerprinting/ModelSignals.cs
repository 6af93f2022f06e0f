using System.Text.Json;
using Warden.Core.Signals;

namespace Warden.Core.ModelFiles;

/// <summary>One signal of a model with what it identifies.</summary>
/// <param name="Type">Signal type name (sha256, civitai_autov1/2/3, blake3, mfv1_model, mfv1_component).</param>
/// <param name="Value">Normalised value (lowercase hex of the type's length).</param>
/// <param name="Part">file, model, model@fp16, component:denoiser, component:denoiser@bf16, lineage:ss_new_sd_model_hash, …</param>
/// <param name="Tier">T0 file hash, T1 AutoV3/embedded hash, T2 MFv1 ID, L lineage pointer.</param>
public sealed record ModelSignal(string Type, string Value, string Part, string Tier);

/// <summary>
/// The bank signals of a model: what <c>warden model add</c> stores and <c>warden model scan</c> looks up.
/// Types and encodings are those of <see cref="SignalTypes"/> so image provenance (A1111 "Model hash",
/// "Lora hashes") finds the same entries.
/// </summary>
public static class ModelSignals
{
    /// <summary>Signals identifying the model itself (registration adds cast paths when they were computed).</summary>
    public static List<ModelSignal> Identity(ModelFingerprint fp)
    {
        ArgumentNullException.ThrowIfNull(fp);
        var list = new List<ModelSignal>();
        if (fp.File is { } f)
        {
            list.Add(new(SignalTypes.Sha256.Name, f.Sha256Hex, "file", "T0"));
            list.Add(new(SignalTypes.CivitaiAutoV2.Name, f.AutoV2Hex, "file", "T0"));
            if (f.AutoV1Hex is { } v1)
            {
                list.Add(new(SignalTypes.CivitaiAutoV1.Name, v1, "file", "T0"));
            }

            if (f.Blake3Hex is { } b3)
            {
                list.Add(new(SignalTypes.Blake3.Name, b3, "file", "T0"));
            }

            if (f.AutoV3Short is { } v3)
            {
                list.Add(new(SignalTypes.CivitaiAutoV3.Name, v3, "file", "T1"));
            }
        }

        if (fp.ModelIdHex is { } id)
        {
            list.Add(new(SignalTypes.Mfv1Model.Name, id, "model", "T2"));
        }

        foreach (var (path, mid) in fp.CastModelIds)
        {
            list.Add(new(SignalTypes.Mfv1Model.Name, Convert.ToHexStringLower(mid), "model@" + path, "T2"));
        }

        foreach (var c in fp.Components)
        {
            list.Add(new(SignalTypes.Mfv1Component.Name, c.IdHex, "component:" + c.Name, "T2"));
            foreach (var (path, cid) in c.CastIds)
            {
                list.Add(new(SignalTypes.Mfv1Component.Name, Convert.ToHexStringLower(cid), $"component:{c.Name}@{path}", "T2"));
            }
        }

        // One row per (type, value): a cast path that changes nothing (fp16 of an fp16 model) is the same ID.
        return [.. list.GroupBy(s => (s.Type, s.Value)).Select(g => g.First())];
    }

    /// <summary>
    /// Hashes the file says it derives from or claims to have: kohya <c>sshs_model_hash</c> (AutoV3 of itself; a
    /// mismatch is a tamper signal), <c>ss_new_sd_model_hash</c> (SHA-256 of the training base),
    /// <c>ss_sd_model_hash</c> (AutoV1 of the base), A1111 <c>sd_merge_models</c> parents (SHA-256 keys),
    /// <c>modelspec.hash_sha256</c>.
    /// </summary>
    public static List<ModelSignal> Lineage(ModelDocument doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        var list = new List<ModelSignal>();
        void Add(ISignalType type, string? raw, string part, int prefix = 0)
        {
            if (raw is null)
            {
                return;
            }

            var text = raw.Trim();
            if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                text = text[2..];
            }

            if (prefix > 0 && text.Length > prefix)
            {
                text = text[..prefix];
            }

            if (type.TryNormalize(text, out var n, out _))
            {
                list.Add(new ModelSignal(type.Name, n, part, "L"));
            }
        }

        var m = doc.Metadata;
        Add(SignalTypes.CivitaiAutoV3, m.GetValueOrDefault("sshs_model_hash"), "claimed:sshs_model_hash", 12);
        Add(SignalTypes.Sha256, m.GetValueOrDefault("ss_new_sd_model_hash"), "lineage:ss_new_sd_model_hash");
        Add(SignalTypes.CivitaiAutoV1, m.GetValueOrDefault("ss_sd_model_hash"), "lineage:ss_sd_model_hash");
        Add(SignalTypes.Sha256, m.GetValueOrDefault("modelspec.hash_sha256"), "lineage:modelspec.hash_sha256");
        if (m.TryGetValue("sd_merge_models", out var merge))
        {
            try
            {
                using var d = JsonDocument.Parse(merge, new JsonDocumentOptions { MaxDepth = 8 });
                if (d.RootElement.ValueKind == JsonValueKind.Object)
                {
                    foreach (var p in d.RootElement.EnumerateObject().Take(64))
                    {
                        Add(SignalTypes.Sha256, p.Name, "lineage:sd_merge_models");
                        if (p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("legacy_hash", out var lh) && lh.ValueKind == JsonValueKind.String)
                        {
                            Add(SignalTypes.CivitaiAutoV1, lh.GetString(), "lineage:sd_merge_models");
                        }
                    }
                }
            }
            catch (JsonException)
            {
                doc.Flag(AnomalySeverity.Warning, "metadata.sd_merge_models", "sd_merge_models is not valid JSON");
            }
        }

        return list;
    }
}
