namespace Warden.Review.Cases;

/// <summary>A model file in a case: what it is (no preview: it is weights, not media) and which banked models it derives from.</summary>
/// <param name="Size">Bytes uploaded.</param>
/// <param name="Format">safetensors, gguf, onnx, torch-zip, …</param>
/// <param name="Family">Architecture family (sd1, sdxl, flux, …).</param>
/// <param name="Variant">Variant, when known.</param>
/// <param name="Kind">checkpoint, lora, unet, …</param>
/// <param name="Tensors">Tensor count.</param>
/// <param name="Verdict">Pickle verdict (safe, suspicious, dangerous).</param>
/// <param name="Links">The banked models it matched, by tier.</param>
public sealed record ModelSubject(long Size, string Format, string Family, string? Variant, string Kind, int Tensors, string Verdict, IReadOnlyList<ModelLink> Links);

/// <summary>One banked model a model upload derives from.</summary>
/// <param name="Tier">T0/T1/T2 (exact), L (declared parent), R, T3, T4 (near) or T5 (derivation).</param>
/// <param name="Bank">The bank.</param>
/// <param name="BankKind">block or allow (allow-listed bases appear as terms of a derivation).</param>
/// <param name="Model">The banked model's name.</param>
/// <param name="Signal">Exact tiers: the signal type that matched (and the part: <c>mfv1_model</c>, <c>component:vae@fp16</c>…).</param>
/// <param name="Score">R/T4: median sketch cosine; T3: share of the component's rows found.</param>
/// <param name="Coverage">R/T4: share of tensors compared; T3: sampled rows.</param>
/// <param name="Component">T3: the component contained.</param>
/// <param name="Precision">R: the file's reduced precision.</param>
/// <param name="EstimatedError">R: median relative error against the banked weights.</param>
/// <param name="Coefficient">T5: the banked model's share, or a LoRA's bake-in strength.</param>
/// <param name="Derivation">T5: merge, lora-bake-in or derived.</param>
/// <param name="Adapter">True when the banked model is a LoRA.</param>
/// <param name="Labels">The banked model's labels (category, lineage: derived_from, base_model, …).</param>
public sealed record ModelLink(
    string Tier, string Bank, string BankKind, string Model, string? Signal, double? Score, double? Coverage, string? Component,
    string? Precision, double? EstimatedError, double? Coefficient, string? Derivation, bool Adapter, IReadOnlyDictionary<string, string> Labels);
