using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;

namespace Warden.Core.Signals;

/// <summary>The PDQ signal type: Meta's 256-bit perceptual hash, Hamming distance, match at ≤ 31 with quality ≥ 50.</summary>
public sealed class PdqSignalType : ISignalType
{
    /// <summary>Meta's recommended match threshold.</summary>
    public const int DefaultMatchThreshold = 31;

    /// <summary>Hashes of lower quality are not matched (too featureless).</summary>
    public const int MinQuality = PdqResult.DefaultMinQuality;

    /// <inheritdoc />
    public string Name => "pdq";

    /// <inheritdoc />
    public bool IsExact => false;

    /// <inheritdoc />
    public int DefaultThreshold => DefaultMatchThreshold;

    /// <summary>Every distance a 256-bit hash can have.</summary>
    public int MaxThreshold => 64;

    int ISignalType.MinQuality => MinQuality;

    /// <inheritdoc />
    public ContentKinds ContentKinds => ContentKinds.Photo;

    /// <inheritdoc />
    public IReadOnlyList<string> Examples { get; } = ["f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"];

    /// <inheritdoc />
    public bool TryNormalize(ReadOnlySpan<char> text, out string normalized, out string? reason)
    {
        if (PdqHash.TryParse(text, out var hash, out reason))
        {
            normalized = hash.ToString();
            return true;
        }

        normalized = string.Empty;
        return false;
    }

    /// <inheritdoc />
    public Signal? CreateSignal(string normalized) =>
        PdqHash.TryParse(normalized, out var hash, out _) ? new PdqSignal(this, [hash], 100) : null;

    /// <inheritdoc />
    public ISignalIndex CreateIndex() => new PdqSignalIndex(new PdqIndex());

    /// <inheritdoc />
    public ISignalIndex LoadIndex(string path) => new PdqSignalIndex(PdqIndex.Load(path));
}

/// <summary>A PDQ hash and its dihedral variants (original first), searched as one batch.</summary>
/// <param name="type">The PDQ type.</param>
/// <param name="hashes">The variants, original first.</param>
/// <param name="quality">The hash's quality.</param>
/// <param name="prefix">"" or "trimmed:".</param>
public sealed class PdqSignal(ISignalType type, PdqHash[] hashes, int quality, string prefix = "") : Signal(type, null, quality, prefix)
{
    /// <summary>The variants, original first.</summary>
    public PdqHash[] Hashes { get; } = hashes;

    /// <inheritdoc />
    public override int VariantCount => Hashes.Length;

    /// <inheritdoc />
    public override string ValueAt(int variant) => Hashes[variant].ToString();
}

/// <summary>A <see cref="PdqIndex"/> as a signal index: one multi-index batch search for all variants.</summary>
internal sealed class PdqSignalIndex(PdqIndex index) : ISignalIndex
{
    [ThreadStatic]
    private static List<PdqMatch>? _threadFound;

    public long Count => index.Count;

    public bool Add(long id, string normalized)
    {
        if (!PdqHash.TryParse(normalized, out var hash, out _))
        {
            return false;
        }

        index.Add(hash, id);
        return true;
    }

    public bool Remove(long id) => index.Remove(id);

    public void Search(Signal query, int maxDistance, List<IndexHit> hits)
    {
        ReadOnlySpan<PdqHash> variants;
        if (query is PdqSignal pdq)
        {
            variants = pdq.Hashes;
        }
        else if (PdqHash.TryParse(query.Value, out var one, out _))
        {
            variants = new[] { one };
        }
        else
        {
            return;
        }

        if (variants.IsEmpty)
        {
            return;
        }

        var found = _threadFound ??= [];
        found.Clear();
        index.SearchDihedral(variants, maxDistance, found);
        foreach (var m in found)
        {
            hits.Add(new IndexHit(m.Id, m.Distance, m.Variant));
        }
    }

    public void Save(string path) => index.Save(path);

    public void Dispose() => index.Dispose();
}
