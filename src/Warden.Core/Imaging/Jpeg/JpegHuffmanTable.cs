namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// One DHT table, kept as defined and turned into decoding tables only when a scan uses it, so a file
/// of many redefinitions costs no more than its own length. DC tables decode to a category; AC tables
/// decode straight to "bits to skip, coefficients to advance", because the DC decoder never needs AC values.
/// </summary>
internal sealed class JpegHuffmanTable
{
    /// <summary>Bits of lookahead: codes up to this length decode with one table read.</summary>
    public const int LookaheadBits = 11;

    private readonly byte[] _counts = new byte[17];
    private readonly byte[] _values = new byte[256];
    private readonly int[] _maxCode = new int[18];
    private readonly int[] _valueOffset = new int[17];
    private bool _built;

    /// <summary>Creates an empty table of the given class.</summary>
    public JpegHuffmanTable(bool isDc) => IsDc = isDc;

    /// <summary>True for a DC table (class 0), false for AC (class 1).</summary>
    public bool IsDc { get; }

    /// <summary>
    /// Lookahead table indexed by the next <see cref="LookaheadBits"/> bits; 0 where the code is longer
    /// (or invalid). DC: <c>codeLength | category &lt;&lt; 8</c>. AC (<see cref="AcEntry"/>):
    /// <c>codeLength + size | advance &lt;&lt; 8 | codeLength &lt;&lt; 16 | size &lt;&lt; 24</c>, where advance is
    /// run + 1, 16 for ZRL and 64 for end-of-block; the last two fields serve blocks whose values are needed.
    /// </summary>
    public uint[] Lookup { get; } = new uint[1 << LookaheadBits];

    /// <summary>Replaces the table from a DHT's 16 counts and its symbols (already bounds-checked by the caller).</summary>
    /// <exception cref="ImageDecodeException">The counts oversubscribe the code space.</exception>
    public void Define(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> values)
    {
        // Canonical codes must fit their lengths with the all-ones code left unused (T.81 Annex C;
        // libjpeg rejects the same tables, so libvips would fail on them too).
        var code = 0;
        for (var length = 1; length <= 16; length++)
        {
            code += counts[length - 1];
            if (counts[length - 1] != 0 && code >= 1 << length)
            {
                throw new ImageDecodeException(ImageDecodeError.Corrupt, "A Huffman table has more codes than fit its code lengths.");
            }

            code <<= 1;
        }

        _counts[0] = 0;
        counts.CopyTo(_counts.AsSpan(1));
        values.CopyTo(_values);
        _built = false;
    }

    /// <summary>Builds the decoding tables if the definition changed since the last build.</summary>
    /// <exception cref="ImageDecodeException">A DC table holds a category above 15.</exception>
    public void EnsureBuilt()
    {
        if (_built)
        {
            return;
        }

        Array.Clear(Lookup);
        var code = 0;
        var index = 0;
        for (var length = 1; length <= 16; length++)
        {
            int count = _counts[length];
            _valueOffset[length] = index - code;
            for (var i = 0; i < count; i++, code++, index++)
            {
                var symbol = _values[index];
                if (IsDc && symbol > 15)
                {
                    throw new ImageDecodeException(ImageDecodeError.Corrupt, "A DC Huffman table holds a category above 15.");
                }

                if (length <= LookaheadBits)
                {
                    var entry = IsDc ? (uint)(length | (symbol << 8)) : AcEntry(length, symbol);
                    var shift = LookaheadBits - length;
                    Lookup.AsSpan(code << shift, 1 << shift).Fill(entry);
                }
            }

            _maxCode[length] = count == 0 ? -1 : code - 1;
            code <<= 1;
        }

        _maxCode[17] = int.MaxValue;
        _built = true;
    }

    /// <summary>
    /// Decodes a code longer than the lookahead from the 16 bits at the top of <paramref name="bits"/>.
    /// Returns the symbol and sets <paramref name="length"/>, or returns -1 when no code matches.
    /// </summary>
    public int DecodeLong(ulong bits, out int length)
    {
        for (length = LookaheadBits + 1; length <= 16; length++)
        {
            var code = (int)(bits >> (64 - length));
            if (code <= _maxCode[length])
            {
                return _values[_valueOffset[length] + code];
            }
        }

        return -1;
    }

    /// <summary>
    /// The AC lookahead entry for a symbol: bits to skip (code + magnitude), how far k advances, and the code
    /// length and magnitude size apart, for reading the value when it is needed.
    /// </summary>
    public static uint AcEntry(int codeLength, int symbol)
    {
        var run = symbol >> 4;
        var size = symbol & 15;
        // As libjpeg: size 0 is ZRL when run is 15, otherwise end-of-block (only run 0 is legal, but
        // libjpeg ends the block for the others too, and staying in step with it matters more).
        var advance = size != 0 ? run + 1 : run == 15 ? 16 : 64;
        return (uint)((codeLength + size) | (advance << 8) | (codeLength << 16) | (size << 24));
    }
}
