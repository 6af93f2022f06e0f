using Warden.Core.Signals;

namespace Warden.Core.Provenance;

/// <summary>A model reference's hash as a signal: which reference, which stated hash, and the signal to look up.</summary>
/// <param name="ModelIndex">Index into <see cref="ProvenanceReport.ModelRefs"/>.</param>
/// <param name="Hash">The stated hash.</param>
/// <param name="Signal">It as a signal of the bank type of its scheme.</param>
public sealed record ModelReferenceSignal(int ModelIndex, ModelHash Hash, Signal Signal);

/// <summary>
/// Provenance's output for matching: every model hash an image states, as a signal of the bank type of its scheme
/// (AutoV1/V2/V3 → civitai_autov1/2/3, sha256, blake3). Matching them is the banks' business (Banks.ModelLinker);
/// provenance does not know banks.
/// </summary>
public static class ModelReferenceSignals
{
    /// <summary>The bank signal type for a hash scheme, or null when banks cannot hold it (names, NAI ids, 8-hex LoRA prefixes).</summary>
    public static ExactSignalType? SignalTypeFor(string scheme) => scheme switch
    {
        "autov1" => SignalTypes.CivitaiAutoV1,
        "autov2" => SignalTypes.CivitaiAutoV2,
        "autov3" => SignalTypes.CivitaiAutoV3,
        "sha256" => SignalTypes.Sha256,
        "blake3" => SignalTypes.Blake3,
        _ => null,
    };

    /// <summary>The signals of <paramref name="report"/>'s model references (hashes of the wrong length or not hex are left out).</summary>
    public static IEnumerable<ModelReferenceSignal> From(ProvenanceReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        for (var i = 0; i < report.ModelRefs.Count; i++)
        {
            foreach (var hash in report.ModelRefs[i].Hashes)
            {
                if (SignalTypeFor(hash.Scheme) is { } type && hash.Value.Length == type.Bytes * 2 && hash.Value.All(Uri.IsHexDigit)
                    && type.CreateSignal(hash.Value.ToLowerInvariant()) is { } signal)
                {
                    yield return new ModelReferenceSignal(i, hash, signal);
                }
            }
        }
    }
}
