namespace Warden.Core.Matching;

/// <summary>One hit of a PDQ range query.</summary>
/// <param name="Id">The bank-entry id stored with the matching hash.</param>
/// <param name="Distance">Hamming distance between the query (variant) and the stored hash, 0..256.</param>
/// <param name="Variant">Index in the query span of the variant that matched (0 for single queries).</param>
public readonly record struct PdqMatch(long Id, int Distance, int Variant);
