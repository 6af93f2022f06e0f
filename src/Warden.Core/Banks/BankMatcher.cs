using Warden.Core.Matching;
using Warden.Core.Signals;

namespace Warden.Core.Banks;

/// <summary>One hit of content against a bank entry.</summary>
/// <param name="SignalType">Which signal matched.</param>
/// <param name="Signal">The content's signal that matched (the variant's hash for PDQ; scores for videos).</param>
/// <param name="Bank">The bank.</param>
/// <param name="EntryId">The bank entry.</param>
/// <param name="Distance">Distance (0 for exact types).</param>
/// <param name="Variant">Which query variant matched: "original", a dihedral name, or "trimmed:…" for the border-trimmed image.</param>
/// <param name="Suppressed">A block-list hit on content that an allow-list bank also matched.</param>
/// <param name="Video">For vpdq/tmk_pdqf hits: the match percentages or scores and the matched time ranges.</param>
public sealed record MatchHit(string SignalType, string Signal, Bank Bank, long EntryId, int Distance, string Variant, bool Suppressed, VideoMatch? Video = null);

/// <summary>
/// In-memory matcher over the enabled banks: one index per signal type of its registry (HMA's
/// SignalTypeIndex per type), searched once per query signal with all its variants. It knows no type by name.
/// Build once (Add), then query from many threads (Match) while a live server adds and removes. Per-bank,
/// per-type thresholds apply; an allow-list hit suppresses block-list hits on the same content (reported,
/// flagged suppressed).
/// </summary>
public sealed class BankMatcher : IDisposable
{
    // Index ids carry the bank's slot in the top 16 bits and the entry id below, so a hit names its bank
    // without a per-entry lookup table (10M entries would cost hundreds of MB).
    private const int BankShift = 47;
    private const long EntryMask = (1L << BankShift) - 1;

    private readonly List<Bank> _banks;
    private readonly Dictionary<long, int> _slotByBankId;
    private readonly Dictionary<string, TypeIndex> _indexes;

    /// <summary>Creates an empty matcher over <paramref name="banks"/> (disabled banks are ignored) for the types of <paramref name="registry"/> (default: the current one).</summary>
    public BankMatcher(IEnumerable<Bank> banks, SignalTypeRegistry? registry = null)
        : this(banks, (registry ?? SignalTypeRegistry.Current).All.ToDictionary(t => t, t => t.CreateIndex()))
    {
    }

    private BankMatcher(IEnumerable<Bank> banks, Dictionary<ISignalType, ISignalIndex> indexes)
    {
        ArgumentNullException.ThrowIfNull(banks);
        _banks = banks.Where(b => b.Enabled).ToList();
        if (_banks.Count >= 1 << (63 - BankShift))
        {
            throw new ArgumentException("Too many banks for one matcher.", nameof(banks));
        }

        _slotByBankId = _banks.Select((b, i) => (b.Id, i)).ToDictionary(p => p.Id, p => p.i);
        _indexes = new Dictionary<string, TypeIndex>(StringComparer.Ordinal);
        foreach (var (type, index) in indexes)
        {
            var thresholds = _banks.Select(b => b.ThresholdFor(type)).ToArray();
            _indexes[type.Name] = new TypeIndex(type, index, thresholds, thresholds.Length == 0 ? 0 : thresholds.Max());
        }
    }

    /// <summary>Entries indexed.</summary>
    public long Count => _indexes.Values.Sum(i => i.Index.Count);

    /// <summary>The enabled banks this matcher covers.</summary>
    public IReadOnlyList<Bank> Banks => _banks;

    /// <summary>The signal types this matcher indexes.</summary>
    public IEnumerable<ISignalType> SignalTypes => _indexes.Values.Select(i => i.Type);

    /// <summary>True when some enabled bank holds entries of a type computed from videos only (scans then hash videos).</summary>
    public bool HasVideoSignals => _indexes.Values.Any(i => i.Type.ContentKinds.HasFlag(ContentKinds.Video) && !i.Type.ContentKinds.HasFlag(ContentKinds.Photo) && !i.Type.ContentKinds.HasFlag(ContentKinds.File) && i.Index.Count > 0);

    /// <summary>True when some enabled bank holds entries of <paramref name="type"/> (so content is worth hashing with it).</summary>
    public bool HasEntries(ISignalType type) => type is not null && _indexes.TryGetValue(type.Name, out var i) && i.Index.Count > 0;

    /// <summary>Adds an entry; entries of unknown banks or signal types, or that do not parse, are skipped (returns false).</summary>
    public bool Add(long entryId, long bankId, string signalType, string signal) =>
        TryIndexId(entryId, bankId, out var id) && signalType is not null && signal is not null
        && _indexes.TryGetValue(signalType, out var index) && index.Index.Add(id, signal);

    /// <summary>
    /// Removes an entry (disabled or deleted); safe while other threads match. Returns false when it was
    /// not indexed.
    /// </summary>
    public bool Remove(long entryId, long bankId, string signalType) =>
        TryIndexId(entryId, bankId, out var id) && signalType is not null
        && _indexes.TryGetValue(signalType, out var index) && index.Index.Remove(id);

    private bool TryIndexId(long entryId, long bankId, out long id)
    {
        id = 0;
        if (!_slotByBankId.TryGetValue(bankId, out var slot) || entryId is < 0 or > EntryMask)
        {
            return false;
        }

        id = ((long)slot << BankShift) | entryId;
        return true;
    }

    /// <summary>
    /// Every hit of one signal given by value (match by hash, no content): within each bank's threshold (PDQ
    /// without dihedral variants), exact types by equality. Allow-list hits suppress block-list hits as in
    /// <see cref="Match"/>. Unknown or unindexed types give no hits.
    /// </summary>
    /// <param name="signalType">A signal type name.</param>
    /// <param name="normalized">The value, normalised by the type's <see cref="ISignalType.TryNormalize"/>.</param>
    public IReadOnlyList<MatchHit> MatchSignal(string signalType, string normalized)
    {
        var hits = new List<MatchHit>();
        if (_banks.Count > 0 && signalType is not null && normalized is not null && _indexes.TryGetValue(signalType, out var index)
            && index.Type.CreateSignal(normalized) is { } query)
        {
            Search(index, query, hits, []);
            SuppressAllowed(hits);
        }

        return hits;
    }

    /// <summary>
    /// Writes the indexes to <paramref name="directory"/> (one snapshot file per signal type). A matcher
    /// loaded from them is only valid for the same enabled banks in the same order, which the caller checks.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var index in _indexes.Values)
        {
            index.Index.Save(SnapshotPath(directory, index.Type));
        }
    }

    /// <summary>Loads indexes written by <see cref="Save"/> (the PDQ index memory-mapped) for the same banks and types.</summary>
    /// <exception cref="InvalidDataException">A snapshot is damaged.</exception>
    /// <exception cref="IOException">A type's snapshot is missing (a type was added since): rebuild.</exception>
    public static BankMatcher Load(string directory, IEnumerable<Bank> banks, SignalTypeRegistry? registry = null)
    {
        var indexes = new Dictionary<ISignalType, ISignalIndex>();
        try
        {
            foreach (var type in (registry ?? SignalTypeRegistry.Current).All)
            {
                indexes[type] = type.LoadIndex(SnapshotPath(directory, type));
            }

            return new BankMatcher(banks, indexes);
        }
        catch
        {
            foreach (var e in indexes.Values)
            {
                e.Dispose();
            }

            throw;
        }
    }

    private static string SnapshotPath(string directory, ISignalType type) => Path.Combine(directory, type.Name + ".idx");

    /// <summary>Every hit of <paramref name="content"/>, block-list hits flagged when an allow-list bank matched too.</summary>
    public IReadOnlyList<MatchHit> Match(SignalSet content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var hits = new List<MatchHit>();
        if (_banks.Count == 0)
        {
            return hits;
        }

        var found = new List<IndexHit>();
        foreach (var signal in content)
        {
            if (_indexes.TryGetValue(signal.Type.Name, out var index) && index.Index.Count > 0 && signal.Quality >= index.Type.MinQuality)
            {
                Search(index, signal, hits, found);
            }
        }

        SuppressAllowed(hits);
        return hits;
    }

    // One search per query signal (all its variants at once); the per-bank threshold is one array read per hit.
    private void Search(TypeIndex index, Signal query, List<MatchHit> hits, List<IndexHit> found)
    {
        found.Clear();
        index.Index.Search(query, index.MaxThreshold, found);
        foreach (var h in found)
        {
            var slot = (int)(h.Id >> BankShift);
            if (h.Distance <= index.Thresholds[slot])
            {
                hits.Add(new MatchHit(index.Type.Name, h.Summary ?? query.ValueAt(h.Variant), _banks[slot], h.Id & EntryMask, h.Distance, query.Prefix + query.VariantName(h.Variant), Suppressed: false, h.Detail as VideoMatch));
            }
        }
    }

    // The false-positive valve: content an allow-list vouches for is not acted on.
    private static void SuppressAllowed(List<MatchHit> hits)
    {
        if (hits.Any(h => h.Bank.Kind == BankKind.AllowList))
        {
            for (var i = 0; i < hits.Count; i++)
            {
                if (hits[i].Bank.Kind == BankKind.BlockList)
                {
                    hits[i] = hits[i] with { Suppressed = true };
                }
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var index in _indexes.Values)
        {
            index.Index.Dispose();
        }
    }

    private sealed record TypeIndex(ISignalType Type, ISignalIndex Index, int[] Thresholds, int MaxThreshold);
}
