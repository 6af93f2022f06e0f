using System.Runtime.InteropServices;
using Warden.Core.Hashing.Pdq;

namespace Warden.Review.Cases;

/// <summary>One cluster's representative as clustering needs it: its PDQ (if any) and its exact digest key (if any).</summary>
/// <param name="ClusterId">The cluster.</param>
/// <param name="Pdq">The representative's PDQ, or null (video, models, undecodable).</param>
/// <param name="Digest">"sha256:…" (or sha1/md5) of the representative, or null.</param>
public sealed record Representative(string ClusterId, PdqHash? Pdq, string? Digest);

/// <summary>
/// The cluster representatives of recently active cases, least recently used evicted first, capped by the
/// total number of representatives held (not cases), so memory stays bounded whatever the number of open
/// cases: the database is the truth and a miss reloads from it. Each entry records how many clusters it
/// knows; a case that grew on another node (a larger count in the database) is topped up from the database
/// before it is used, so every node clusters against the same representatives. Thread-safe.
/// </summary>
public sealed class CaseRepresentativeCache
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _lru = new();
    private long _held;
    private long _hits;
    private long _misses;

    /// <summary>Creates a cache holding at most <paramref name="maxRepresentatives"/> representatives in all.</summary>
    public CaseRepresentativeCache(int maxRepresentatives)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRepresentatives, 1);
        Capacity = maxRepresentatives;
    }

    /// <summary>The cap on representatives held.</summary>
    public int Capacity { get; }

    /// <summary>Representatives held now (never above <see cref="Capacity"/>).</summary>
    public long Count
    {
        get
        {
            lock (_lock)
            {
                return _held;
            }
        }
    }

    /// <summary>Cases held now.</summary>
    public int Cases
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Look-ups answered without reading the database.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Look-ups that read (some of) the representatives from the database.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>
    /// The nearest cluster for a submission among the case's first <paramref name="clusterCount"/> clusters
    /// (the count the database holds now): <paramref name="load"/>(from) reads clusters from index
    /// <c>from</c> on, in order, when the cache lacks them. Same rule as <see cref="CaseBuilder"/>: the
    /// nearest representative PDQ within <paramref name="threshold"/> (the earliest on ties), else a cluster
    /// whose representative has the same exact digest.
    /// </summary>
    public string? FindCluster(string caseId, int clusterCount, PdqHash? pdq, string? digest, int threshold, Func<int, IReadOnlyList<Representative>> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        var entry = Take(caseId, clusterCount);
        if (entry.Count < clusterCount)
        {
            Interlocked.Increment(ref _misses);
            var more = load(entry.Count);
            if (entry.Count + more.Count != clusterCount)
            {
                throw new InvalidOperationException($"Case {caseId}: expected {clusterCount} clusters, read {entry.Count + more.Count}.");
            }

            foreach (var r in more)
            {
                entry.Add(r);
            }
        }
        else
        {
            Interlocked.Increment(ref _hits);
        }

        try
        {
            return entry.Find(pdq, digest, threshold);
        }
        finally
        {
            Put(caseId, entry);
        }
    }

    /// <summary>
    /// Records a cluster committed at <paramref name="index"/>; ignored unless the cached entry knows exactly the
    /// clusters before it (otherwise the next look-up reads it from the database).
    /// </summary>
    public void Added(string caseId, int index, Representative representative)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(caseId, out var node) || node.Value.Count != index)
            {
                return;
            }

            node.Value.Add(representative);
            _held++;
            _lru.Remove(node);
            _lru.AddFirst(node);
            Trim();
        }
    }

    /// <summary>Drops a case (closed or reported: new matches open a new case).</summary>
    public void Forget(string caseId)
    {
        lock (_lock)
        {
            if (_entries.Remove(caseId, out var node))
            {
                _held -= node.Value.Count;
                _lru.Remove(node);
            }
        }
    }

    // Takes the entry out while it is used, so a concurrent eviction cannot count it twice; an entry that knows
    // more clusters than the database says (a failed write) is dropped and reread.
    private Entry Take(string caseId, int clusterCount)
    {
        lock (_lock)
        {
            if (_entries.Remove(caseId, out var node))
            {
                _lru.Remove(node);
                _held -= node.Value.Count;
                if (node.Value.Count <= clusterCount)
                {
                    return node.Value;
                }
            }

            return new Entry(caseId);
        }
    }

    private void Put(string caseId, Entry entry)
    {
        lock (_lock)
        {
            if (entry.Count > Capacity)
            {
                return; // one case larger than the whole cache is read from the database each time
            }

            if (_entries.Remove(caseId, out var old))
            {
                // Another thread put one back meanwhile: keep the one that knows more.
                _lru.Remove(old);
                _held -= old.Value.Count;
                if (old.Value.Count > entry.Count)
                {
                    entry = old.Value;
                }
            }

            _entries[caseId] = _lru.AddFirst(entry);
            _held += entry.Count;
            Trim();
        }
    }

    private void Trim()
    {
        while ((_held > Capacity || _entries.Count > Capacity) && _lru.Last is { } last)
        {
            _lru.RemoveLast();
            _held -= last.Value.Count;
            _entries.Remove(last.Value.CaseId);
        }
    }

    /// <summary>One case's representatives: PDQs in a flat array (popcount distance over a span), digests in a map.</summary>
    private sealed class Entry(string caseId)
    {
        private readonly List<PdqHash> _pdqs = [];
        private readonly List<string> _pdqClusters = [];
        private readonly Dictionary<string, string> _byDigest = new(StringComparer.Ordinal);

        public string CaseId { get; } = caseId;

        public int Count { get; private set; }

        public void Add(Representative r)
        {
            if (r.Pdq is { } pdq)
            {
                _pdqs.Add(pdq);
                _pdqClusters.Add(r.ClusterId);
            }

            if (r.Digest is { } d)
            {
                _byDigest.TryAdd(d, r.ClusterId);
            }

            Count++;
        }

        public string? Find(PdqHash? pdq, string? digest, int threshold)
        {
            if (pdq is { } p)
            {
                var best = -1;
                var bestDistance = int.MaxValue;
                var reps = CollectionsMarshal.AsSpan(_pdqs);
                for (var i = 0; i < reps.Length; i++)
                {
                    var d = reps[i].DistanceTo(p);
                    if (d < bestDistance)
                    {
                        bestDistance = d;
                        best = i;
                        if (d == 0)
                        {
                            break;
                        }
                    }
                }

                if (best >= 0 && bestDistance <= threshold)
                {
                    return _pdqClusters[best];
                }
            }

            return digest is not null ? _byDigest.GetValueOrDefault(digest) : null;
        }
    }
}
