using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Matching;
using Warden.Core.Signals;

namespace Warden.Core.Banks;

/// <summary>What a piece of content offers for matching.</summary>
/// <param name="Pdq">PDQ hash variants to query: the original first, then the dihedral variants if computed.</param>
/// <param name="PdqQuality">Quality of the PDQ hash; under the signal type's minimum, PDQ is not matched.</param>
/// <param name="Exact">MD5/SHA-1/SHA-256 of the bytes.</param>
/// <param name="Trimmed">PDQ variants of the image with its uniform borders trimmed, when it had any.</param>
/// <param name="TrimmedQuality">Quality of <paramref name="Trimmed"/>.</param>
/// <param name="Video">A video's vPDQ/TMK signals, when the content is a video (see BankMatcher.Video.cs).</param>
public sealed record ContentSignals(IReadOnlyList<PdqHash>? Pdq, int PdqQuality, ExactHashes? Exact, IReadOnlyList<PdqHash>? Trimmed = null, int TrimmedQuality = 0, VideoSignals? Video = null)
{
    /// <summary>The signals of hashed content.</summary>
    public static ContentSignals From(ContentHashes hashes)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        var pdq = hashes.Image?.Pdq;
        var trimmed = hashes.Image?.Trimmed;
        return new ContentSignals(
            pdq is null ? null : pdq.Dihedral ?? [pdq.Hash],
            pdq?.Quality ?? 0,
            hashes.Exact,
            trimmed is null ? null : trimmed.Dihedral ?? [trimmed.Hash],
            trimmed?.Quality ?? 0);
    }
}

/// <summary>One hit of content against a bank entry.</summary>
/// <param name="SignalType">Which signal matched.</param>
/// <param name="Signal">The content's signal that matched (the variant's hash for PDQ).</param>
/// <param name="Bank">The bank.</param>
/// <param name="EntryId">The bank entry.</param>
/// <param name="Distance">Hamming distance (0 for exact types).</param>
/// <param name="Variant">Which query variant matched: "original", a dihedral name, or "trimmed:…" for the border-trimmed image.</param>
/// <param name="Suppressed">A block-list hit on content that an allow-list bank also matched.</param>
/// <param name="Video">For vpdq/tmk_pdqf hits: the match percentages or scores and the matched time ranges.</param>
public sealed record MatchHit(string SignalType, string Signal, Bank Bank, long EntryId, int Distance, string Variant, bool Suppressed, VideoMatch? Video = null);

/// <summary>
/// In-memory matcher over the enabled banks: a PDQ Hamming index and exact indexes for the crypto types.
/// Build once (Add), then query from many threads (Match). Per-bank PDQ thresholds apply; an allow-list hit
/// suppresses block-list hits on the same content (reported, flagged suppressed).
/// </summary>
public sealed partial class BankMatcher : IDisposable
{
    // Index ids carry the bank's slot in the top 16 bits and the entry id below, so a hit names its bank
    // without a per-entry lookup table (10M entries would cost hundreds of MB).
    private const int BankShift = 47;
    private const long EntryMask = (1L << BankShift) - 1;

    private static readonly string[] VariantNames = ["original", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1"];

    private const string PdqFile = "pdq.idx";

    private readonly List<Bank> _banks;
    private readonly Dictionary<long, int> _slotByBankId;
    private readonly PdqIndex _pdq;
    private readonly Dictionary<string, ExactIndex> _exact;
    private readonly int _maxThreshold;

    /// <summary>Creates an empty matcher over <paramref name="banks"/> (disabled banks are ignored).</summary>
    public BankMatcher(IEnumerable<Bank> banks)
        : this(banks, new PdqIndex(), null)
    {
    }

    private BankMatcher(IEnumerable<Bank> banks, PdqIndex pdq, Dictionary<string, ExactIndex>? exact)
    {
        ArgumentNullException.ThrowIfNull(banks);
        _pdq = pdq;
        _banks = banks.Where(b => b.Enabled).ToList();
        if (_banks.Count >= 1 << (63 - BankShift))
        {
            throw new ArgumentException("Too many banks for one matcher.", nameof(banks));
        }

        _slotByBankId = _banks.Select((b, i) => (b.Id, i)).ToDictionary(p => p.Id, p => p.i);
        _exact = exact ?? SignalTypes.Exact.ToDictionary(t => t.Name, t => new ExactIndex(t.Bytes), StringComparer.Ordinal);
        _count = _pdq.Count + _exact.Values.Sum(e => (long)e.Count);
        _maxThreshold = _banks.Count == 0 ? 0 : _banks.Max(b => b.PdqThreshold ?? PdqSignalType.DefaultMatchThreshold);
    }

    private long _count;

    /// <summary>Entries indexed.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>The enabled banks this matcher covers.</summary>
    public IReadOnlyList<Bank> Banks => _banks;

    /// <summary>Whether <paramref name="bankId"/> is one of the enabled banks this matcher covers.</summary>
    public bool Covers(long bankId) => _slotByBankId.ContainsKey(bankId);

    /// <summary>Adds an entry; entries of unknown banks or signal types are skipped (returns false).</summary>
    public bool Add(long entryId, long bankId, string signalType, string signal)
    {
        if (!TryIndexId(entryId, bankId, out var id))
        {
            return false;
        }

        if (signalType == SignalTypes.Pdq.Name)
        {
            if (!PdqHash.TryParse(signal, out var hash, out _))
            {
                return false;
            }

            _pdq.Add(hash, id);
        }
        else if (_exact.TryGetValue(signalType, out var exact))
        {
            Span<byte> key = stackalloc byte[32];
            if (signal.Length > 64 || Convert.FromHexString(signal, key, out _, out var written) != System.Buffers.OperationStatus.Done)
            {
                return false;
            }

            exact.Add(key[..written], id);
        }
        else if (!AddVideo(id, signalType, signal))
        {
            return false;
        }

        Interlocked.Increment(ref _count);
        return true;
    }

    /// <summary>
    /// Removes an entry (disabled or deleted); safe while other threads match. Returns false when it was
    /// not indexed.
    /// </summary>
    public bool Remove(long entryId, long bankId, string signalType)
    {
        if (!TryIndexId(entryId, bankId, out var id))
        {
            return false;
        }

        var removed = signalType == SignalTypes.Pdq.Name ? _pdq.Remove(id)
            : _exact.TryGetValue(signalType, out var exact) ? exact.Remove(id)
            : RemoveVideo(id, signalType);
        if (removed)
        {
            Interlocked.Decrement(ref _count);
        }

        return removed;
    }

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
    /// Every hit of one signal given by value (match by hash, no content): PDQ within each bank's threshold
    /// (no dihedral variants), exact types by equality. Allow-list hits suppress block-list hits as in
    /// <see cref="Match"/>. Unknown or unindexed types give no hits.
    /// </summary>
    /// <param name="signalType">A signal type name.</param>
    /// <param name="normalized">The value, normalised by the type's <see cref="ISignalType.TryNormalize"/>.</param>
    public IReadOnlyList<MatchHit> MatchSignal(string signalType, string normalized)
    {
        var hits = new List<MatchHit>();
        if (_banks.Count == 0)
        {
            return hits;
        }

        if (signalType == SignalTypes.Pdq.Name)
        {
            if (PdqHash.TryParse(normalized, out var hash, out _))
            {
                MatchPdq([hash], PdqSignalType.MinQuality, string.Empty, [], hits);
            }
        }
        else if (_exact.ContainsKey(signalType))
        {
            var key = Convert.FromHexString(normalized);
            MatchExact(signalType, key, normalized, [], hits);
        }

        SuppressAllowed(hits);
        return hits;
    }

    /// <summary>
    /// Writes the indexes to <paramref name="directory"/> (one snapshot file per signal type). A matcher
    /// loaded from them is only valid for the same enabled banks in the same order, which the caller checks.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        _pdq.Save(Path.Combine(directory, PdqFile));
        foreach (var (type, index) in _exact)
        {
            index.Save(Path.Combine(directory, type + ".idx"));
        }

        SaveVideo(directory);
    }

    /// <summary>Loads indexes written by <see cref="Save"/> (the PDQ index memory-mapped) for the same banks.</summary>
    /// <exception cref="InvalidDataException">A snapshot is damaged.</exception>
    public static BankMatcher Load(string directory, IEnumerable<Bank> banks)
    {
        var pdq = PdqIndex.Load(Path.Combine(directory, PdqFile));
        var exact = new Dictionary<string, ExactIndex>(StringComparer.Ordinal);
        try
        {
            foreach (var type in SignalTypes.Exact)
            {
                exact[type.Name] = ExactIndex.Load(Path.Combine(directory, type.Name + ".idx"));
            }

            var matcher = new BankMatcher(banks, pdq, exact);
            matcher.LoadVideo(directory);
            return matcher;
        }
        catch
        {
            pdq.Dispose();
            foreach (var e in exact.Values)
            {
                e.Dispose();
            }

            throw;
        }
    }

    /// <summary>Every hit of <paramref name="content"/>, block-list hits flagged when an allow-list bank matched too.</summary>
    public IReadOnlyList<MatchHit> Match(ContentSignals content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var hits = new List<MatchHit>();
        if (_banks.Count == 0)
        {
            return hits;
        }

        var found = new List<PdqMatch>();
        MatchPdq(content.Pdq, content.PdqQuality, string.Empty, found, hits);
        MatchPdq(content.Trimmed, content.TrimmedQuality, "trimmed:", found, hits);
        if (content.Exact is { } exact)
        {
            var ids = new List<long>();
            MatchExact(SignalTypes.Md5.Name, exact.Md5, exact.Md5Hex, ids, hits);
            MatchExact(SignalTypes.Sha1.Name, exact.Sha1, exact.Sha1Hex, ids, hits);
            MatchExact(SignalTypes.Sha256.Name, exact.Sha256, exact.Sha256Hex, ids, hits);
            if (content.Video is not null)
            {
                MatchExact(SignalTypes.VideoMd5.Name, exact.Md5, exact.Md5Hex, ids, hits);
            }
        }

        MatchVideo(content.Video, hits);
        SuppressAllowed(hits);
        return hits;
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

    private void MatchPdq(IReadOnlyList<PdqHash>? variants, int quality, string prefix, List<PdqMatch> found, List<MatchHit> hits)
    {
        if (variants is null || variants.Count == 0 || quality < PdqSignalType.MinQuality)
        {
            return;
        }

        found.Clear();
        var span = variants is PdqHash[] array ? array : variants.ToArray();
        _pdq.SearchDihedral(span, _maxThreshold, found);
        foreach (var m in found)
        {
            var bank = _banks[(int)(m.Id >> BankShift)];
            if (m.Distance <= (bank.PdqThreshold ?? PdqSignalType.DefaultMatchThreshold))
            {
                hits.Add(new MatchHit(SignalTypes.Pdq.Name, span[m.Variant].ToString(), bank, m.Id & EntryMask, m.Distance, prefix + VariantNames[Math.Min(m.Variant, 7)], Suppressed: false));
            }
        }
    }

    private void MatchExact(string type, byte[] key, string hex, List<long> ids, List<MatchHit> hits)
    {
        ids.Clear();
        _exact[type].Lookup(key, ids);
        foreach (var id in ids)
        {
            hits.Add(new MatchHit(type, hex, _banks[(int)(id >> BankShift)], id & EntryMask, 0, "original", Suppressed: false));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _pdq.Dispose();
        _video.Dispose();
        _videoLock.Dispose();
        foreach (var index in _exact.Values)
        {
            index.Dispose();
        }
    }
}
