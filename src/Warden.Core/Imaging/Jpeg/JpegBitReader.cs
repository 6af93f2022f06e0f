using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// Reads entropy-coded bits MSB first through a 64-bit buffer, removing 0xFF00 stuffing. At a marker or
/// the end of the data it feeds zero bits (so lookahead past the last code is harmless) and counts them;
/// consuming any of those is how truncation is detected, as a typed error instead of libjpeg's grey fill.
/// </summary>
internal ref struct JpegBitReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;
    private ulong _buffer;
    private int _bitCount;
    private int _fakeBits;
    private bool _atMarker;

    /// <summary>Starts reading entropy-coded data at <paramref name="position"/>.</summary>
    public JpegBitReader(ReadOnlySpan<byte> data, int position)
    {
        _data = data;
        _position = position;
    }

    /// <summary>
    /// Decodes a run of consecutive sequential blocks of one component: each DC difference (accumulated in
    /// <paramref name="predictor"/>, stored as libjpeg's 16-bit coefficient) and every AC code after it,
    /// whose values are skipped without being extended.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeSequentialRun(JpegHuffmanTable dcTable, JpegHuffmanTable acTable, Span<short> coefficients, ref int predictor)
    {
        // Locals, not fields: the JIT keeps them in registers across the loops.
        var buffer = _buffer;
        var count = _bitCount;
        var dcLookup = dcTable.Lookup;
        var acLookup = acTable.Lookup;
        var value = predictor;
        for (var i = 0; i < coefficients.Length; i++)
        {
            value += DecodeDcDifference(dcTable, dcLookup, ref buffer, ref count);
            coefficients[i] = (short)value;

            SkipAc(acTable, acLookup, ref buffer, ref count);
        }

        predictor = value;
        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>
    /// Zigzag index to natural (row-major) position, with libjpeg's 16 extra entries of 63 after the 64 so that
    /// a corrupt run past the block's end lands where libjpeg puts it.
    /// </summary>
    public static ReadOnlySpan<byte> NaturalOrder =>
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55,
        62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    ];


    /// <summary>Entries of the per-position tables: k + advance - 1 reaches 63 + 64 - 1 at an end-of-block.</summary>
    private const int PositionEntries = 128;

    /// <summary>Where a block's scratch slot is: values the IDCT does not read are written there, unread.</summary>
    public const int ScratchSlot = 64;

    /// <summary>
    /// Per zigzag position k + run (to <see cref="PositionEntries"/>; past 63 as <see cref="NaturalOrder"/>'s tail,
    /// then nothing), for blocks through the 2x2 IDCT: 1 | 2 where jpeg_idct_2x2 reads the coefficient (rows and
    /// columns 0, 1, 3, 5, 7), else 0.
    /// </summary>
    private static readonly byte[] Flags2x2 = BuildFlags(2);

    /// <summary>
    /// As <see cref="Flags2x2"/> for the 4x4 IDCT: 1 where it reads the coefficient (row and column 4 are never
    /// read), plus <see cref="JpegIdct.AcRows"/> for rows 1-3 and 5-7 (all columns: the SIMD zero test looks at
    /// whole rows) and <see cref="JpegIdct.AcRow0"/> for row 0's AC terms.
    /// </summary>
    private static readonly byte[] Flags4x4 = BuildFlags(4);

    /// <summary>Per position as <see cref="Flags2x2"/>: the natural-order index to write, or <see cref="ScratchSlot"/>.</summary>
    private static readonly byte[] Destination2x2 = BuildDestinations(Flags2x2);

    /// <summary>As <see cref="Destination2x2"/> for the 4x4 IDCT.</summary>
    private static readonly byte[] Destination4x4 = BuildDestinations(Flags4x4);

    private static byte[] BuildDestinations(byte[] flags)
    {
        var table = new byte[PositionEntries];
        for (var k = 0; k < table.Length; k++)
        {
            table[k] = (byte)((flags[k] & 1) != 0 ? NaturalOrder[k] : ScratchSlot);
        }

        return table;
    }

    private static byte[] BuildFlags(int size)
    {
        var table = new byte[PositionEntries];
        for (var k = 1; k < NaturalOrder.Length; k++)
        {
            var natural = NaturalOrder[k];
            int row = natural >> 3, col = natural & 7;
            if (size == 2)
            {
                table[k] = (byte)(row is 0 or 1 or 3 or 5 or 7 && col is 0 or 1 or 3 or 5 or 7 ? 3 : 0);
            }
            else
            {
                var flags = row != 4 && col != 4 ? 1 : 0;
                flags |= row is 0 ? (col != 4 ? JpegIdct.AcRow0 : 0) : row != 4 ? JpegIdct.AcRows : 0;
                table[k] = (byte)flags;
            }
        }

        return table;
    }

    /// <summary>
    /// Decodes a run of consecutive sequential blocks of one component whose IDCT is scaled to
    /// <paramref name="size"/> × <paramref name="size"/> (2 or 4): DC and the AC values that IDCT reads (extended,
    /// in natural order), then the IDCT into <paramref name="samples"/> at <paramref name="offset"/>,
    /// <paramref name="size"/> samples per block across and down.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeSequentialRunScaled(
        JpegHuffmanTable dcTable, JpegHuffmanTable acTable, short[] quant, int size, Span<short> coefficients, Span<byte> samples, int offset, int stride, ref int predictor)
    {
        var flags = size == 2 ? Flags2x2 : Flags4x4;
        var destinations = size == 2 ? Destination2x2 : Destination4x4;
        Span<short> block = stackalloc short[ScratchSlot + 1];
        block.Clear();
        for (var i = 0; i < coefficients.Length; i++)
        {
            var mask = ReadScaledBlock(dcTable, acTable, flags, destinations, block, ref predictor);
            coefficients[i] = (short)predictor;
            Store(size, predictor, block, mask, quant, samples, offset + (size * i), stride);
        }
    }

    /// <summary>
    /// Decodes <paramref name="mcuCount"/> interleaved MCUs of a sequential scan from MCU (<paramref name="mx"/>,
    /// <paramref name="my"/>): per block the DC (into the coefficients, predictors per component) and the AC
    /// codes, skipped, or read and put through the reduced IDCT for blocks of components that have one. One call
    /// per run keeps the bit buffer in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeSequentialMcus(JpegMcuLayout layout, int mx, int my, int mcuCount, scoped Span<int> predictors)
    {
        var buffer = _buffer;
        var count = _bitCount;
        var blocks = layout.BlockCount;
        var coefficients = layout.Coefficients;
        var dcTables = layout.DcTables;
        var acTables = layout.AcTables;
        var samples = layout.Samples;
        var sizes = layout.Size;
        var components = layout.Component;
        var stepX = layout.McuStepX;
        var sampleStepX = layout.SampleStepX;
        Span<int> index = stackalloc int[blocks];
        Span<int> sampleIndex = stackalloc int[blocks];
        layout.RowStart(my, mx, index, sampleIndex);
        Span<short> block = stackalloc short[ScratchSlot + 1];
        block.Clear();
        for (var m = 0; m < mcuCount; m++)
        {
            for (var b = 0; b < blocks; b++)
            {
                var dcTable = dcTables[b]!;
                var acTable = acTables[b]!;
                ref var predictor = ref predictors[components[b]];
                var size = sizes[b];
                if (size > 1)
                {
                    // Its own method, on the fields: the value-reading loop keeps the bit buffer in registers there,
                    // where inlined into this loop it would be spilled.
                    _buffer = buffer;
                    _bitCount = count;
                    var mask = size == 2
                        ? ReadScaledBlock(dcTable, acTable, Flags2x2, Destination2x2, block, ref predictor)
                        : ReadScaledBlock(dcTable, acTable, Flags4x4, Destination4x4, block, ref predictor);
                    buffer = _buffer;
                    count = _bitCount;
                    coefficients[b][index[b]] = (short)predictor;
                    Store(size, predictor, block, mask, layout.Quant[b]!, samples[b]!, sampleIndex[b], layout.SampleStride[b]);
                    sampleIndex[b] += sampleStepX[b];
                }
                else
                {
                    predictor += DecodeDcDifference(dcTable, dcTable.Lookup, ref buffer, ref count);
                    coefficients[b][index[b]] = (short)predictor;
                    SkipAc(acTable, acTable.Lookup, ref buffer, ref count);
                }

                index[b] += stepX[b];
            }
        }

        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>
    /// Steps over one block's AC codes without extending any value, several short codes per table read
    /// (<see cref="JpegHuffmanTable.SkipLookup"/>); one code at a time where a run could cross the block's end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SkipAc(JpegHuffmanTable acTable, uint[] acLookup, ref ulong buffer, ref int count)
    {
        var skipLookup = acTable.SkipLookup;
        for (var k = 1; k < 64;)
        {
            if (count < 32)
            {
                (buffer, count) = Refill(buffer, count);
            }

            var bits = (int)(buffer >> (64 - JpegHuffmanTable.LookaheadBits));
            var entry = skipLookup[bits];
            if (entry == 0)
            {
                entry = DecodeLongAc(acTable, buffer) & 0xFFFF;
            }
            else if (k + (int)(entry >> 16) >= 64)
            {
                // The block ends inside this run: what follows its last code is the next block's DC.
                entry = acLookup[bits] & 0xFFFF;
            }

            var skip = (int)(entry & 0xFF);
            buffer <<= skip;
            count -= skip;
            k += (int)((entry >> 8) & 0xFF);
        }
    }

    /// <summary>
    /// Decodes one block whose values are needed: the DC difference (accumulated in <paramref name="predictor"/>),
    /// then the AC codes as <see cref="SkipAc"/> steps through them, extending only the values whose
    /// <paramref name="flags"/> entry has bit 0 (the reduced IDCT reads them) into <paramref name="block"/> (natural
    /// order, at <paramref name="destinations"/>; k counts in zigzag order as libjpeg's decode_mcu). Returns the OR of
    /// the flags of every coded (so non-zero) coefficient.
    /// </summary>
    /// <remarks>
    /// Branch-free per code: whether a position is needed follows the image, not a pattern, so a branch on it
    /// mispredicts often. Every value is written, unneeded ones to the scratch slot; a ZRL or end-of-block writes a
    /// 0 (EXTEND of 0 bits) where a coefficient is still 0, and adds no flags.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private int ReadScaledBlock(JpegHuffmanTable dcTable, JpegHuffmanTable acTable, byte[] flags, byte[] destinations, scoped Span<short> block, ref int predictor)
    {
        var buffer = _buffer;
        var count = _bitCount;
        predictor += DecodeDcDifference(dcTable, dcTable.Lookup, ref buffer, ref count);

        // Unchecked reads: the lookup index is 11 bits of a 2048-entry table, and a position is at most 63 + 15,
        // inside the 80 entries of the flag and zigzag tables; natural-order indices are below 64.
        ref var lookup = ref MemoryMarshal.GetArrayDataReference(acTable.Lookup);
        ref var flag = ref MemoryMarshal.GetArrayDataReference(flags);
        ref var destination = ref MemoryMarshal.GetArrayDataReference(destinations);
        ref var coefficient = ref MemoryMarshal.GetReference(block);
        if (block.Length <= ScratchSlot || flags.Length < PositionEntries || destinations.Length < PositionEntries || acTable.Lookup.Length != 1 << JpegHuffmanTable.LookaheadBits)
        {
            throw new InvalidOperationException("Block or table of the wrong size.");
        }

        var mask = 0;
        for (var k = 1; k < 64;)
        {
            if (count < 32)
            {
                (buffer, count) = Refill(buffer, count);
            }

            var entry = Unsafe.Add(ref lookup, (nint)(buffer >> (64 - JpegHuffmanTable.LookaheadBits)));
            if (entry == 0)
            {
                entry = DecodeLongAc(acTable, buffer);
            }

            var size = (int)(entry >> 24);
            var advance = (int)((entry >> 8) & 0xFF);

            // A run past the block's end lands on position 63, as in libjpeg (the tables' tail).
            var position = k + advance - 1;
            mask |= Unsafe.Add(ref flag, position) & -((size + 15) >> 4);
            Unsafe.Add(ref coefficient, Unsafe.Add(ref destination, position)) = (short)Extend(buffer << (int)((entry >> 16) & 0xFF), size);

            var skip = (int)(entry & 0xFF);
            buffer <<= skip;
            count -= skip;
            k += advance;
        }

        _buffer = buffer;
        _bitCount = count;
        return mask;
    }

    /// <summary>Writes a block's reduced IDCT at <paramref name="offset"/> and clears <paramref name="block"/> for the next one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(int size, int dc, Span<short> block, int mask, short[] quant, Span<byte> samples, int offset, int stride)
    {
        block[0] = (short)dc;
        if (size == 2)
        {
            JpegIdct.Idct2x2(block, quant, (mask & 2) != 0, samples, offset, stride);
        }
        else
        {
            JpegIdct.Idct4x4(block, quant, mask, samples, offset, stride);
        }

        block.Clear();
    }

    /// <summary>
    /// Decodes a run of consecutive progressive DC-first blocks: each difference is accumulated in
    /// <paramref name="predictor"/> and stored shifted left by the point transform <paramref name="al"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeDcFirstRun(JpegHuffmanTable dcTable, Span<short> coefficients, ref int predictor, int al)
    {
        var buffer = _buffer;
        var count = _bitCount;
        var lookup = dcTable.Lookup;
        var value = predictor;
        for (var i = 0; i < coefficients.Length; i++)
        {
            value += DecodeDcDifference(dcTable, lookup, ref buffer, ref count);
            coefficients[i] = (short)(value << al);
        }

        predictor = value;
        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>One DC difference: Huffman category, then that many raw bits, sign-extended.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int DecodeDcDifference(JpegHuffmanTable dcTable, uint[] lookup, ref ulong buffer, ref int count)
    {
        if (count < 32)
        {
            (buffer, count) = Refill(buffer, count);
        }

        var entry = lookup[(int)(buffer >> (64 - JpegHuffmanTable.LookaheadBits))];
        if (entry == 0)
        {
            entry = DecodeLongDc(dcTable, buffer);
        }

        // One shift by code + magnitude keeps the extension off the bit buffer's dependency chain.
        var total = (int)(entry & 0xFF);
        var difference = Extend(buffer << (int)(entry >> 16), (int)((entry >> 8) & 0xFF));
        buffer <<= total;
        count -= total;
        return difference;
    }

    /// <summary>Applies a run of progressive DC refinement bits: one raw bit per block, OR-ed in at bit <paramref name="al"/>.</summary>
    public void DecodeDcRefineRun(Span<short> coefficients, int al)
    {
        var buffer = _buffer;
        var count = _bitCount;
        for (var i = 0; i < coefficients.Length; i++)
        {
            if (count < 32)
            {
                (buffer, count) = Refill(buffer, count);
            }

            coefficients[i] |= (short)((int)(buffer >> 63) << al);

            buffer <<= 1;
            count--;
        }

        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>
    /// Decodes <paramref name="mcuCount"/> interleaved MCUs of a progressive DC-first scan starting at MCU
    /// (<paramref name="mx"/>, <paramref name="my"/>), accumulating each component's difference in
    /// <paramref name="predictors"/> and storing it shifted left by <paramref name="al"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeDcFirstMcus(JpegMcuLayout layout, int mx, int my, int mcuCount, scoped Span<int> predictors, int al)
    {
        var buffer = _buffer;
        var count = _bitCount;
        var blocks = layout.BlockCount;
        var coefficients = layout.Coefficients;
        var tables = layout.DcTables;
        var components = layout.Component;
        var stepX = layout.McuStepX;
        Span<int> index = stackalloc int[blocks];
        layout.RowStart(my, mx, index);
        for (var m = 0; m < mcuCount; m++)
        {
            for (var b = 0; b < blocks; b++)
            {
                var table = tables[b]!;
                ref var predictor = ref predictors[components[b]];
                predictor += DecodeDcDifference(table, table.Lookup, ref buffer, ref count);
                coefficients[b][index[b]] = (short)(predictor << al);
                index[b] += stepX[b];
            }
        }

        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>Applies <paramref name="mcuCount"/> interleaved MCUs of progressive DC refinement bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeDcRefineMcus(JpegMcuLayout layout, int mx, int my, int mcuCount, int al)
    {
        var buffer = _buffer;
        var count = _bitCount;
        var blocks = layout.BlockCount;
        var coefficients = layout.Coefficients;
        var stepX = layout.McuStepX;
        Span<int> index = stackalloc int[blocks];
        layout.RowStart(my, mx, index);
        for (var m = 0; m < mcuCount; m++)
        {
            for (var b = 0; b < blocks; b++)
            {
                if (count < 32)
                {
                    (buffer, count) = Refill(buffer, count);
                }

                // Branch-free: refinement bits are close to random, so a branch would mispredict half the time.
                coefficients[b][index[b]] |= (short)((int)(buffer >> 63) << al);

                buffer <<= 1;
                count--;
                index[b] += stepX[b];
            }
        }

        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>T.81 F.12 EXTEND of the <paramref name="category"/> bits at the top of <paramref name="buffer"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Extend(ulong buffer, int category)
    {
        // Branch-free. Two shifts so that category 0 reads nothing (a single shift by 64 would be a no-op);
        // then raw = 0, negative = 1 and the result is 0 - (1 - 1) = 0, as it should be.
        var raw = (int)(buffer >> (63 - category) >> 1);
        var negative = (raw >> (category - 1)) ^ 1;
        return raw - ((negative << category) - negative);
    }

    /// <summary>
    /// Refill for the run loops. The common case (8 bytes ahead, none of them 0xFF) stays inline on the loop's
    /// locals; markers, stuffing and the end of the data spill them to the fields for <see cref="Refill()"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private (ulong Buffer, int Count) Refill(ulong buffer, int count)
    {
        var position = _position;
        var data = _data;
        if ((uint)position + 8 <= (uint)data.Length && !_atMarker)
        {
            var word = BinaryPrimitives.ReadUInt64BigEndian(data.Slice(position, 8));
            var inverted = ~word;
            if (((inverted - 0x0101010101010101UL) & ~inverted & 0x8080808080808080UL) == 0)
            {
                // Nothing past a marker was read (that sets _atMarker), so the over-read check can wait for the slow path.
                var bytes = (64 - count) >> 3;
                _position = position + bytes;
                return (buffer | ((word >> (64 - (bytes * 8))) << (64 - (bytes * 8) - count)), count + (bytes * 8));
            }
        }

        _buffer = buffer;
        _bitCount = count;
        Refill();
        return (_buffer, _bitCount);
    }

    /// <summary>
    /// Ends a restart interval: drops the padding bits, then requires RST<paramref name="expected"/>
    /// as the next marker and continues after it.
    /// </summary>
    public void Restart(int expected)
    {
        var marker = EndSegment(out var markerPosition);
        if (marker != 0xD0 + expected)
        {
            throw marker is < 0 or 0xD9
                ? new ImageDecodeException(ImageDecodeError.Truncated, "The JPEG data ends inside a scan.")
                : new ImageDecodeException(ImageDecodeError.Corrupt, "A restart marker is missing or out of sequence.");
        }

        _position = markerPosition;
        SkipMarker();
        _buffer = 0;
        _bitCount = 0;
        _fakeBits = 0;
        _atMarker = false;
    }

    /// <summary>
    /// Ends the scan: checks no bits beyond the data were used and returns the position of the 0xFF
    /// that starts the next marker (or the data length when none follows).
    /// </summary>
    public int FinishScan()
    {
        EndSegment(out var markerPosition);
        return markerPosition;
    }

    /// <summary>
    /// Finds the next marker that is not a restart marker, from <paramref name="position"/>, without decoding:
    /// how progressive AC scans are skipped. Returns the position of its 0xFF, or the data length.
    /// </summary>
    public static int SkipEntropyData(ReadOnlySpan<byte> data, int position)
    {
        while (true)
        {
            var found = position < data.Length ? data[position..].IndexOf((byte)0xFF) : -1;
            if (found < 0)
            {
                return data.Length;
            }

            var ff = position + found;
            var next = ff + 1;
            if (next >= data.Length)
            {
                return data.Length;
            }

            var b = data[next];
            if (b == 0xFF)
            {
                // Fill bytes: the marker code is the first byte after them.
                position = next;
                continue;
            }

            if (b == 0x00 || (b >= 0xD0 && b <= 0xD7))
            {
                position = next + 1;
                continue;
            }

            return ff;
        }
    }

    private void SkipMarker()
    {
        // _position is at an 0xFF: step over it, any fill bytes and the marker code.
        _position++;
        while (_position < _data.Length && _data[_position] == 0xFF)
        {
            _position++;
        }

        _position++;
    }

    /// <summary>Checks for over-read, then locates the marker ending this segment; returns its code or -1 at the end of data.</summary>
    private int EndSegment(out int markerPosition)
    {
        if (_fakeBits > _bitCount)
        {
            throw Overrun();
        }

        // Whole bytes still buffered were read ahead of the marker, so the marker is where reading stopped
        // when it was reached; otherwise bytes remain (padding, or garbage libjpeg would warn about).
        var from = _position;
        markerPosition = _atMarker ? from : FindMarker(_data, from);
        if (markerPosition >= _data.Length)
        {
            return -1;
        }

        var p = markerPosition + 1;
        while (p < _data.Length && _data[p] == 0xFF)
        {
            p++;
        }

        return p < _data.Length ? _data[p] : -1;
    }

    private static int FindMarker(ReadOnlySpan<byte> data, int position)
    {
        while (true)
        {
            var found = position < data.Length ? data[position..].IndexOf((byte)0xFF) : -1;
            if (found < 0)
            {
                return data.Length;
            }

            var ff = position + found;
            var p = ff + 1;
            while (p < data.Length && data[p] == 0xFF)
            {
                p++;
            }

            if (p >= data.Length)
            {
                return data.Length;
            }

            if (data[p] != 0x00)
            {
                return ff;
            }

            position = p + 1;
        }
    }

    /// <summary>Tops the buffer up to at least 57 bits (zeros past a marker or the end of the data).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void Refill()
    {
        if (_fakeBits > _bitCount)
        {
            // Bits past the end were consumed: no valid stream does that.
            throw Overrun();
        }

        var data = _data;
        var position = _position;
        var buffer = _buffer;
        var count = _bitCount;
        if (!_atMarker && position + 8 <= data.Length)
        {
            var word = BinaryPrimitives.ReadUInt64BigEndian(data[position..]);
            var inverted = ~word;
            if (((inverted - 0x0101010101010101UL) & ~inverted & 0x8080808080808080UL) == 0)
            {
                // No 0xFF among the next 8 bytes: take as many whole bytes as fit.
                var bytes = (64 - count) >> 3;
                buffer |= (word >> (64 - (bytes * 8))) << (64 - (bytes * 8) - count);
                _buffer = buffer;
                _bitCount = count + (bytes * 8);
                _position = position + bytes;
                return;
            }
        }

        while (count <= 56)
        {
            if (_atMarker || position >= data.Length)
            {
                _atMarker = true;
                count += 8;
                _fakeBits += 8;
                continue;
            }

            var b = data[position];
            if (b != 0xFF)
            {
                buffer |= (ulong)b << (56 - count);
                count += 8;
                position++;
                continue;
            }

            var p = position + 1;
            while (p < data.Length && data[p] == 0xFF)
            {
                p++;
            }

            if (p < data.Length && data[p] == 0x00)
            {
                buffer |= 0xFFUL << (56 - count);
                count += 8;
                position = p + 1;
                continue;
            }

            // A marker (or the end): stop here, leaving the position on its first 0xFF.
            _atMarker = true;
        }

        _buffer = buffer;
        _bitCount = count;
        _position = position;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private uint DecodeLongDc(JpegHuffmanTable dcTable, ulong buffer)
    {
        var category = dcTable.DecodeLong(buffer, out var length);
        return category < 0 ? throw BadCode() : JpegHuffmanTable.DcEntry(length, category);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private uint DecodeLongAc(JpegHuffmanTable acTable, ulong buffer)
    {
        var symbol = acTable.DecodeLong(buffer, out var length);
        return symbol < 0 ? throw BadCode() : JpegHuffmanTable.AcEntry(length, symbol);
    }

    private readonly ImageDecodeException BadCode() =>
        _fakeBits > 0
            ? Overrun()
            : new ImageDecodeException(ImageDecodeError.Corrupt, "The entropy-coded data holds an invalid Huffman code.");

    /// <summary>The error for a scan that needs more bits than precede its ending marker.</summary>
    private readonly ImageDecodeException Overrun()
    {
        // The end of the data, or EOI, means a cut-off file; any other marker means damaged data.
        var p = _position;
        while (p < _data.Length && _data[p] == 0xFF)
        {
            p++;
        }

        return p >= _data.Length || _data[p] == 0xD9
            ? new ImageDecodeException(ImageDecodeError.Truncated, "The JPEG data ends inside a scan.")
            : new ImageDecodeException(ImageDecodeError.Corrupt, "A marker interrupts the entropy-coded data of a scan.");
    }
}
