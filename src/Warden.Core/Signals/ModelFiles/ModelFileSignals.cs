using Warden.Core.ModelFiles;

namespace Warden.Core.Signals;

/// <summary>
/// The adapter between model-file fingerprints (<see cref="ModelSignals"/>: file hashes, MFv1 ids, lineage
/// pointers) and signal types: each becomes a typed <see cref="Signal"/> of the registry, so model files are
/// matched like any other content. The fingerprinting itself stays in ModelFiles.
/// </summary>
public static class ModelFileSignals
{
    /// <summary>
    /// The fingerprint's signals that the registry knows and that parse, each with the fingerprint signal it came
    /// from (its part and tier say what it identifies).
    /// </summary>
    public static IEnumerable<(ModelSignal Source, Signal Signal)> Adapt(IEnumerable<ModelSignal> signals, SignalTypeRegistry? registry = null)
    {
        ArgumentNullException.ThrowIfNull(signals);
        var types = registry ?? SignalTypeRegistry.Current;
        foreach (var s in signals)
        {
            if (types.TryGet(s.Type, out var type) && type.TryNormalize(s.Value, out var normalized, out _) && type.CreateSignal(normalized) is { } signal)
            {
                yield return (s, signal);
            }
        }
    }
}
