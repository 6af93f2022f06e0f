using System.Runtime.InteropServices;

namespace Warden.Core.Matching;

/// <summary>
/// Fletcher-style 64-bit checksum over little-endian 64-bit words (snapshot integrity, not security): catches
/// truncation, bit flips and swapped blocks at memory speed. Inputs must be multiples of 8 bytes.
/// </summary>
internal struct Checksum
{
    private ulong _a;
    private ulong _b;

    public readonly ulong Value => _b ^ (_a * 0x9E3779B97F4A7C15UL);

    public void Add(ReadOnlySpan<byte> bytes)
    {
        if ((bytes.Length & 7) != 0)
        {
            throw new ArgumentException("Checksummed data must be a multiple of 8 bytes.", nameof(bytes));
        }

        ulong a = _a, b = _b;
        foreach (var v in MemoryMarshal.Cast<byte, ulong>(bytes))
        {
            // Mixing the word keeps a flipped top bit in two words from cancelling out in a plain sum.
            a += v ^ (v >> 31);
            b += a;
        }

        _a = a;
        _b = b;
    }
}
