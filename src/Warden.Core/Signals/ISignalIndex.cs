namespace Warden.Core.Signals;

/// <summary>One index hit: the entry's index id, its distance, which query variant matched, and type-specific detail.</summary>
/// <param name="Id">The id the entry was added under.</param>
/// <param name="Distance">Distance (0 for exact types and scored video matches).</param>
/// <param name="Variant">Index of the query variant that matched (see <see cref="Signal.VariantName"/>).</param>
/// <param name="Detail">Type-specific detail (a video match's percentages and ranges), or null.</param>
/// <param name="Summary">What to report as the matched signal instead of the query's value (video scores), or null.</param>
public readonly record struct IndexHit(long Id, int Distance, int Variant, object? Detail = null, string? Summary = null);

/// <summary>
/// The index of one signal type (HMA's SignalTypeIndex). Adds and removes entries while other threads search;
/// a search takes a whole query (every variant at once, so PDQ's 8-variant batch keeps its speed): dispatch is
/// per query, never per stored hash.
/// </summary>
public interface ISignalIndex : IDisposable
{
    /// <summary>Entries indexed.</summary>
    long Count { get; }

    /// <summary>Adds <paramref name="normalized"/> under <paramref name="id"/>; false when it does not parse.</summary>
    bool Add(long id, string normalized);

    /// <summary>Removes the entry added under <paramref name="id"/>; false when it was not indexed.</summary>
    bool Remove(long id);

    /// <summary>Appends to <paramref name="hits"/> every entry within <paramref name="maxDistance"/> of some variant of <paramref name="query"/>.</summary>
    void Search(Signal query, int maxDistance, List<IndexHit> hits);

    /// <summary>Writes a snapshot that the type's <see cref="ISignalType.LoadIndex"/> reads back.</summary>
    void Save(string path);
}
