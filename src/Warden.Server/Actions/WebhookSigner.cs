using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Warden.Server.Actions;

/// <summary>
/// Webhook signatures: <c>Warden-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(secret, "t.body")&gt;</c>.
/// The timestamp is inside the MAC so a captured request cannot be replayed later; receivers reject
/// timestamps older than a few minutes and drop repeats by <c>Warden-Delivery</c> (the idempotency key).
/// </summary>
public static class WebhookSigner
{
    /// <summary>Signature header name.</summary>
    public const string SignatureHeader = "Warden-Signature";

    /// <summary>Idempotency key header name (the same on every retry of one delivery).</summary>
    public const string DeliveryHeader = "Warden-Delivery";

    /// <summary>Event name header.</summary>
    public const string EventHeader = "Warden-Event";

    /// <summary>The header value for <paramref name="body"/> at <paramref name="timestamp"/>.</summary>
    public static string Sign(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var prefix = Encoding.UTF8.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(prefix.Length));
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message);
        return $"t={timestamp.ToString(CultureInfo.InvariantCulture)},v1={Convert.ToHexStringLower(mac)}";
    }

    /// <summary>
    /// Checks a signature header as a receiver should: the MAC in constant time and the timestamp within
    /// <paramref name="tolerance"/> of <paramref name="now"/>.
    /// </summary>
    public static bool Verify(string secret, string? header, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (string.IsNullOrEmpty(header))
        {
            return false;
        }

        long? t = null;
        string? v1 = null;
        foreach (var part in header.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv.Length == 2 && kv[0].Trim() == "t" && long.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ts))
            {
                t = ts;
            }
            else if (kv.Length == 2 && kv[0].Trim() == "v1")
            {
                v1 = kv[1].Trim();
            }
        }

        if (t is null || v1 is null || Math.Abs(now.ToUnixTimeSeconds() - t.Value) > tolerance.TotalSeconds)
        {
            return false;
        }

        var expected = Encoding.ASCII.GetBytes(Sign(secret, t.Value, body));
        var given = Encoding.ASCII.GetBytes($"t={t.Value.ToString(CultureInfo.InvariantCulture)},v1={v1}");
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }
}
