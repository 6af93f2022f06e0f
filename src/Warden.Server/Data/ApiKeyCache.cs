using System.Collections.Concurrent;
using Warden.Server.Auth;

namespace Warden.Server.Data;

/// <summary>
/// Resolves presented keys to their records with a short-lived cache: a request costs one SHA-256 and a
/// dictionary lookup; a revoked key stops working within <see cref="Ttl"/> on every node.
/// </summary>
public sealed class ApiKeyCache(ServerStore store, TimeProvider time)
{
    /// <summary>How long a lookup (found or not) is trusted.</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, (ApiKeyRecord? Record, long Expires)> _cache = new(StringComparer.Ordinal);

    /// <summary>The live key record for a presented key, or null.</summary>
    public ApiKeyRecord? Resolve(string presented)
    {
        // Malformed keys never reach the database.
        if (ApiKeys.PublicIdOf(presented) is null || presented.Length > 100)
        {
            return null;
        }

        var hash = ApiKeys.Hash(presented);
        var now = time.GetTimestamp();
        if (_cache.TryGetValue(hash, out var cached) && cached.Expires > now)
        {
            return cached.Record;
        }

        var record = store.FindKey(hash);
        if (_cache.Count > 100_000)
        {
            _cache.Clear(); // bounded: a flood of random well-formed keys cannot grow it without limit
        }

        _cache[hash] = (record, now + (long)(Ttl.TotalSeconds * time.TimestampFrequency));
        return record;
    }

    /// <summary>Drops every cached lookup (after a key is created or revoked on this node).</summary>
    public void Invalidate() => _cache.Clear();
}
