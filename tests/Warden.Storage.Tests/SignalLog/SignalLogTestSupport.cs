using Warden.Core.Hashing.Pdq;

namespace Warden.Storage.Tests.SignalLog;

/// <summary>A clock the test moves.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>Synthetic PDQ hashes (random bits; clusters are a centre with a few flipped bits).</summary>
internal static class Hashes
{
    public static PdqHash Random(Random rng) =>
        new((ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63), (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63), (ulong)rng.NextInt64(), (ulong)rng.NextInt64());

    public static PdqHash Flip(PdqHash h, Random rng, int bits)
    {
        Span<ulong> w = [h.W0, h.W1, h.W2, h.W3];
        for (var i = 0; i < bits; i++)
        {
            var b = rng.Next(256);
            w[b >> 6] ^= 1UL << (b & 63);
        }

        return new PdqHash(w[0], w[1], w[2], w[3]);
    }
}
