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
    /// (or invalid). DC: <see cref="DcEntry"/>. AC (<see cref="AcEntry"/>):
    /// <c>codeLength + size | advance &lt;&lt; 8 | codeLength &lt;&lt; 16 | size &lt;&lt; 24</c>, where advance is
    /// run + 1, 16 for ZRL and 64 for end-of-block; the last two fields serve blocks whose values are needed.
    /// </summary>
    public uint[] Lookup { get; private set; } = [];

    /// <summary>
    /// AC tables only: the run of whole symbols (code and magnitude bits) that the next <see cref="LookaheadBits"/>
    /// bits hold, so that skipping a block's AC codes takes one table read per several short codes instead of one
    /// per code (the serial load-shift chain is what bounds the 1/8 decode). Entry:
    /// <c>bits | advance &lt;&lt; 8 | prefix &lt;&lt; 16</c>, where advance is the sum of the symbols' advances
    /// (as in <see cref="AcEntry"/>; the run stops after an end-of-block) and prefix the sum without the last symbol:
    /// the entry applies only while k + prefix &lt; 64, i.e. when every symbol in it still belongs to the block.
    /// 0 where the first code is longer than the lookahead (or invalid).
    /// </summary>
    public uint[] SkipLookup { get; private set; } = [];

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

        // The two lookups (16 KiB) are rented at first build and given back by ReturnBuffers at the end of the decode.
        if (Lookup.Length == 0)
        {
            Lookup = JpegScratch.Rent<uint>(1 << LookaheadBits);
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
                    var entry = IsDc ? DcEntry(length, symbol) : AcEntry(length, symbol);
                    var shift = LookaheadBits - length;
                    Lookup.AsSpan(code << shift, 1 << shift).Fill(entry);
                }
            }

            _maxCode[length] = count == 0 ? -1 : code - 1;
            code <<= 1;
        }

        _maxCode[17] = int.MaxValue;
        if (!IsDc)
        {
            BuildSkipLookup();
        }

        _built = true;
    }

    /// <summary>Gives the lookups back to the pool; the table must be built again before further use.</summary>
    public void ReturnBuffers()
    {
        JpegScratch.Return(Lookup);
        JpegScratch.Return(SkipLookup);
        Lookup = [];
        SkipLookup = [];
        _built = false;
    }

    private void BuildSkipLookup()
    {
        if (SkipLookup.Length == 0)
        {
            // Every entry is written below, so the rented array needs no clearing beyond Rent's.
            SkipLookup = JpegScratch.Rent<uint>(1 << LookaheadBits);
        }

        const int window = LookaheadBits;
        const int mask = (1 << window) - 1;
        var lookup = Lookup;
        var skip = SkipLookup;
        for (var bits = 0; bits < skip.Length; bits++)
        {
            var first = lookup[bits];
            if (first == 0)
            {
                skip[bits] = 0;
                continue;
            }

            var used = (int)(first & 0xFF);
            var advance = (int)((first >> 8) & 0xFF);
            var prefix = 0;

            // Further symbols join only when their code and magnitude lie wholly inside the window (zeros shifted
            // in below it cannot change a code that ends inside it) and the block cannot have ended already.
            while (used < window && advance < 63)
            {
                var next = lookup[(bits << used) & mask];
                var length = (int)(next & 0xFF);
                if (next == 0 || length > window - used)
                {
                    break;
                }

                prefix = advance;
                advance += (int)((next >> 8) & 0xFF);
                used += length;
            }

            skip[bits] = (uint)(used | (advance << 8) | (prefix << 16));
        }
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
    /// The DC lookahead entry for a category: bits to skip (code + magnitude), the category, and the code length,
    /// so the skip does not wait for the magnitude's extension.
    /// </summary>
    public static uint DcEntry(int codeLength, int category) => (uint)((codeLength + category) | (category << 8) | (codeLength << 16));

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
