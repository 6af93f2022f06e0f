using System.Collections;

namespace Warden.Core.Signals;

/// <summary>
/// One signal of one piece of content: its type and one or more variants (PDQ's 8 dihedral hashes; one for most
/// types). Subclasses keep the parsed form their index searches, so a query is parsed once; text is made only for
/// the variants that hit.
/// </summary>
/// <param name="type">Its type.</param>
/// <param name="value">The normalised text of the (single) variant.</param>
/// <param name="quality">0–100; under the type's <see cref="ISignalType.MinQuality"/> it is not matched.</param>
/// <param name="prefix">Prefix for the reported variant name ("trimmed:" for the border-trimmed image).</param>
public class Signal(ISignalType type, string? value, int quality = 100, string prefix = "")
{
    /// <summary>Its type.</summary>
    public ISignalType Type { get; } = type ?? throw new ArgumentNullException(nameof(type));

    /// <summary>0–100.</summary>
    public int Quality { get; } = quality;

    /// <summary>Prefix of the reported variant name ("" or "trimmed:").</summary>
    public string Prefix { get; } = prefix;

    /// <summary>How many variants it has.</summary>
    public virtual int VariantCount => 1;

    /// <summary>The text of the first variant (the content as it is).</summary>
    public string Value => ValueAt(0);

    /// <summary>The normalised text of variant <paramref name="variant"/>.</summary>
    public virtual string ValueAt(int variant) => value ?? string.Empty;

    /// <summary>The reported name of variant <paramref name="variant"/>: "original", then the dihedral names.</summary>
    public virtual string VariantName(int variant) => VariantNames.Name(variant);
}

/// <summary>The names of the 8 dihedral variants in index order: the one spelling used in hits, the API and the CLI.</summary>
public static class VariantNames
{
    private static readonly string[] Names = ["original", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1"];

    /// <summary>All 8, "original" first.</summary>
    public static IReadOnlyList<string> All => Names;

    /// <summary>The name of variant <paramref name="variant"/> (clamped to the 8).</summary>
    public static string Name(int variant) => Names[Math.Clamp(variant, 0, Names.Length - 1)];
}

/// <summary>
/// Every signal of one piece of content (image, video, model file or a plug-in's), in the order they are matched:
/// the one value that flows from hashing to matching and output.
/// </summary>
public sealed class SignalSet : IReadOnlyList<Signal>
{
    private readonly List<Signal> _signals = [];

    /// <summary>An empty set.</summary>
    public SignalSet()
    {
    }

    /// <summary>A set of <paramref name="signals"/>.</summary>
    public SignalSet(IEnumerable<Signal> signals) => _signals.AddRange(signals);

    /// <inheritdoc />
    public int Count => _signals.Count;

    /// <inheritdoc />
    public Signal this[int index] => _signals[index];

    /// <summary>Adds a signal (null is ignored, so hashers' results can be added as they are).</summary>
    public SignalSet Add(Signal? signal)
    {
        if (signal is not null)
        {
            _signals.Add(signal);
        }

        return this;
    }

    /// <summary>Adds several.</summary>
    public SignalSet AddRange(IEnumerable<Signal>? signals)
    {
        if (signals is not null)
        {
            _signals.AddRange(signals);
        }

        return this;
    }

    /// <summary>The first signal of the type named <paramref name="typeName"/> without a variant prefix, or null.</summary>
    public Signal? Find(string typeName)
    {
        foreach (var s in _signals)
        {
            if (s.Prefix.Length == 0 && string.Equals(s.Type.Name, typeName, StringComparison.Ordinal))
            {
                return s;
            }
        }

        return null;
    }

    /// <inheritdoc />
    public IEnumerator<Signal> GetEnumerator() => _signals.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
