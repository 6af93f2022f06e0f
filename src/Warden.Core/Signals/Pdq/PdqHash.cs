using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Warden.Core.Hashing.Pdq;

/// <summary>
/// A 256-bit PDQ hash. Bit k (0..255) is the sign of DCT coefficient (row k/16, column k%16) against
/// the median. Stored as four 64-bit words, <see cref="W0"/> holding bits 0..63.
/// </summary>
/// <remarks>
/// The hex form is exactly the reference's: 64 lowercase digits printing the 16-bit words w[15]..w[0],
/// i.e. a big-endian 256-bit integer whose bit k is coefficient k.
/// </remarks>
public readonly record struct PdqHash(ulong W0, ulong W1, ulong W2, ulong W3) : ISpanFormattable
{
    /// <summary>Number of bits in a PDQ hash.</summary>
    public const int Bits = 256;

    /// <summary>Length of the hex form.</summary>
    public const int HexLength = 64;

    /// <summary>The all-zero hash (what the reference returns for images under 5 pixels a side).</summary>
    public static PdqHash Zero => default;

    /// <summary>Number of set bits. A normal hash has exactly 128 (bits are "above the median").</summary>
    public int PopCount =>
        BitOperations.PopCount(W0) + BitOperations.PopCount(W1) + BitOperations.PopCount(W2) + BitOperations.PopCount(W3);

    /// <summary>Reads bit k (0..255).</summary>
    public bool this[int bit]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(bit);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(bit, Bits);
            var word = (bit >> 6) switch { 0 => W0, 1 => W1, 2 => W2, _ => W3 };
            return ((word >> (bit & 63)) & 1) != 0;
        }
    }

    /// <summary>Hamming distance (popcount of XOR), using the hardware popcount instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int DistanceTo(in PdqHash other) =>
        BitOperations.PopCount(W0 ^ other.W0) + BitOperations.PopCount(W1 ^ other.W1) +
        BitOperations.PopCount(W2 ^ other.W2) + BitOperations.PopCount(W3 ^ other.W3);

    /// <summary>Hamming distance between two hashes.</summary>
    public static int Distance(in PdqHash a, in PdqHash b) => a.DistanceTo(b);

    /// <summary>Builds a hash from 256 bits, bit k taken from <paramref name="bits"/>[k].</summary>
    public static PdqHash FromBits(ReadOnlySpan<bool> bits)
    {
        if (bits.Length != Bits)
        {
            throw new ArgumentException($"A PDQ hash has {Bits} bits, got {bits.Length}.", nameof(bits));
        }

        Span<ulong> w = stackalloc ulong[4];
        for (var k = 0; k < Bits; k++)
        {
            if (bits[k])
            {
                w[k >> 6] |= 1UL << (k & 63);
            }
        }

        return new PdqHash(w[0], w[1], w[2], w[3]);
    }

    /// <summary>Parses the 64-hex-digit form (either case). Throws <see cref="FormatException"/> with the reason.</summary>
    public static PdqHash Parse(ReadOnlySpan<char> hex)
    {
        if (TryParse(hex, out var hash, out var error))
        {
            return hash;
        }

        throw new FormatException(error);
    }

    /// <summary>Parses the 64-hex-digit form; on failure <paramref name="error"/> says why.</summary>
    public static bool TryParse(ReadOnlySpan<char> hex, out PdqHash hash, out string? error)
    {
        hash = default;
        hex = hex.Trim();
        if (hex.Length != HexLength)
        {
            error = $"A PDQ hash is {HexLength} hex digits; got {hex.Length} characters.";
            return false;
        }

        // Digits 0..15 are W3 (most significant), 48..63 are W0.
        if (!ulong.TryParse(hex[..16], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var w3) ||
            !ulong.TryParse(hex[16..32], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var w2) ||
            !ulong.TryParse(hex[32..48], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var w1) ||
            !ulong.TryParse(hex[48..64], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var w0))
        {
            error = "A PDQ hash may contain only hex digits 0-9 and a-f.";
            return false;
        }

        hash = new PdqHash(w0, w1, w2, w3);
        error = null;
        return true;
    }

    /// <summary>The reference's 64-lowercase-hex-digit form.</summary>
    public override string ToString() => string.Create(HexLength, this, static (span, h) => h.TryFormat(span, out _, default, null));

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        if (destination.Length < HexLength)
        {
            charsWritten = 0;
            return false;
        }

        W3.TryFormat(destination[..16], out _, "x16", CultureInfo.InvariantCulture);
        W2.TryFormat(destination[16..32], out _, "x16", CultureInfo.InvariantCulture);
        W1.TryFormat(destination[32..48], out _, "x16", CultureInfo.InvariantCulture);
        W0.TryFormat(destination[48..64], out _, "x16", CultureInfo.InvariantCulture);
        charsWritten = HexLength;
        return true;
    }
}
