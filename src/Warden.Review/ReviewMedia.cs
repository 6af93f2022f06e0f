using System.Security.Cryptography;
using System.Text;
using Warden.Core.Imaging;

namespace Warden.Review;

/// <summary>
/// Short-lived, single-use, per-user grants to receive one item's original bytes, issued only by a logged
/// reveal. The bytes read by that reveal are held in memory (never on disk) until the grant is redeemed,
/// replaced by the same person's next reveal, evicted, or expires; then they are zeroed. A token is useless to
/// anyone but its owner, for anything but its item, after its expiry, or a second time.
/// </summary>
internal sealed class RevealGrants(long maxBytes)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Grant> _byToken = new(StringComparer.Ordinal);
    private readonly Dictionary<long, string> _byUser = [];
    private long _bytes;

    /// <summary>The clock (tests move it).</summary>
    internal TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Grants held now (for tests and metrics).</summary>
    internal int Count
    {
        get
        {
            lock (_lock)
            {
                return _byToken.Count;
            }
        }
    }

    /// <summary>Issues a grant over <paramref name="media"/> (which the grant now owns); returns the token and expiry.</summary>
    public (string Token, DateTimeOffset ExpiresAt) Issue(long userId, string caseId, string itemId, byte[] media, TimeSpan lifetime)
    {
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var expires = Time.GetUtcNow() + lifetime;
        lock (_lock)
        {
            // One grant per person: a new reveal replaces the previous one, so memory is bounded by reviewers.
            if (_byUser.TryGetValue(userId, out var previous))
            {
                Drop(previous);
            }

            Sweep();
            while (_bytes + media.Length > maxBytes && _byToken.Count > 0)
            {
                Drop(_byToken.MinBy(g => g.Value.ExpiresAt).Key);
            }

            var hash = Hash(token);
            _byToken[hash] = new Grant(userId, caseId, itemId, expires, media);
            _byUser[userId] = hash;
            _bytes += media.Length;
        }

        return (token, expires);
    }

    /// <summary>
    /// The original bytes when <paramref name="token"/> is a live grant of this user for this case and item
    /// (consumed: a grant serves once); else null. A mismatched attempt does not consume the owner's grant.
    /// </summary>
    public byte[]? Redeem(string? token, long userId, string caseId, string itemId)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return null;
        }

        var hash = Hash(token);
        lock (_lock)
        {
            if (!_byToken.TryGetValue(hash, out var g))
            {
                return null;
            }

            if (g.ExpiresAt <= Time.GetUtcNow())
            {
                Drop(hash);
                return null;
            }

            if (g.UserId != userId || !string.Equals(g.CaseId, caseId, StringComparison.Ordinal) || !string.Equals(g.ItemId, itemId, StringComparison.Ordinal))
            {
                return null;
            }

            _byToken.Remove(hash);
            _byUser.Remove(userId);
            _bytes -= g.Media.Length;
            return g.Media;
        }
    }

    /// <summary>Drops this person's unredeemed grant (re-obscure).</summary>
    public bool Revoke(long userId)
    {
        lock (_lock)
        {
            if (!_byUser.TryGetValue(userId, out var hash))
            {
                return false;
            }

            Drop(hash);
            return true;
        }
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private void Sweep()
    {
        var now = Time.GetUtcNow();
        foreach (var expired in _byToken.Where(g => g.Value.ExpiresAt <= now).Select(g => g.Key).ToList())
        {
            Drop(expired);
        }
    }

    private void Drop(string hash)
    {
        if (_byToken.Remove(hash, out var g))
        {
            _byUser.Remove(g.UserId);
            _bytes -= g.Media.Length;
            CryptographicOperations.ZeroMemory(g.Media);
        }
    }

    private sealed record Grant(long UserId, string CaseId, string ItemId, DateTimeOffset ExpiresAt, byte[] Media);
}

/// <summary>
/// A bounded least-recently-used cache of obscured derivatives, in memory only (derivatives are never written
/// to disk). Keyed by item and look, so a settings change makes a new derivative rather than reusing another.
/// </summary>
internal sealed class PreviewCache(long maxBytes)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, ObscuredImage Image)>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, ObscuredImage Image)> _order = new();
    private long _bytes;

    public static string Key(string itemId, ObscureOptions look) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{itemId}|{look.MaxSide}|{look.BlurPercent:R}|{(look.Greyscale ? 1 : 0)}");

    public bool TryGet(string key, out ObscuredImage image)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                image = node.Value.Image;
                return true;
            }
        }

        image = null!;
        return false;
    }

    public void Add(string key, ObscuredImage image)
    {
        if (image.Png.Length > maxBytes)
        {
            return;
        }

        lock (_lock)
        {
            if (_map.ContainsKey(key))
            {
                return;
            }

            _map[key] = _order.AddFirst((key, image));
            _bytes += image.Png.Length;
            while (_bytes > maxBytes && _order.Last is { } last)
            {
                _order.RemoveLast();
                _map.Remove(last.Value.Key);
                _bytes -= last.Value.Image.Png.Length;
            }
        }
    }
}
