using Warden.Core.Banks;
using Warden.Core.Signals;

namespace Warden.Core.Provenance;

/// <summary>
/// Links an image's model references to model files registered in banks: every stated hash is looked up under
/// the bank signal type of its scheme (AutoV1/V2/V3 → civitai_autov1/2/3, sha256, blake3). A hit is a match
/// like any other; its evidence chain is image → signal (where the hash was written) → model reference → bank entry.
/// </summary>
public static class ModelLinker
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

    /// <summary>Looks every model hash of <paramref name="report"/> up in <paramref name="matcher"/> and records the hits.</summary>
    public static void Link(ProvenanceReport report, BankMatcher matcher)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(matcher);
        for (var i = 0; i < report.ModelRefs.Count; i++)
        {
            foreach (var hash in report.ModelRefs[i].Hashes)
            {
                var type = SignalTypeFor(hash.Scheme);
                if (type is null || hash.Value.Length != type.Bytes * 2 || !hash.Value.All(Uri.IsHexDigit))
                {
                    continue;
                }

                foreach (var hit in matcher.MatchSignal(type.Name, hash.Value.ToLowerInvariant()))
                {
                    report.ModelMatches.Add(new ModelMatch(i, hash, type.Name, hit));
                }
            }
        }
    }
}
