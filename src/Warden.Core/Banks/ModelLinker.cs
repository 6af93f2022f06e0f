using Warden.Core.Provenance;

namespace Warden.Core.Banks;

/// <summary>
/// Links an image's model references to model files registered in banks: provenance emits each stated hash as a
/// signal (<see cref="ModelReferenceSignals"/>), and each is matched here. A hit is a match like any other; its
/// evidence chain is image → signal (where the hash was written) → model reference → bank entry.
/// </summary>
public static class ModelLinker
{
    /// <summary>Looks every model hash of <paramref name="report"/> up in <paramref name="matcher"/> and records the hits.</summary>
    public static void Link(ProvenanceReport report, BankMatcher matcher)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(matcher);
        foreach (var (index, hash, signal) in ModelReferenceSignals.From(report))
        {
            foreach (var hit in matcher.MatchSignal(signal.Type.Name, signal.Value))
            {
                report.ModelMatches.Add(new ModelMatch(index, hash, signal.Type.Name, hit));
            }
        }
    }
}
