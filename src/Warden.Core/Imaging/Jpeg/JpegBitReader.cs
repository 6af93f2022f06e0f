using System.Buffers.Binary;
using System.Runtime.CompilerServices;

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

    /// <summary>Per zigzag index (with <see cref="NaturalOrder"/>'s tail): whether jpeg_idct_2x2 reads that coefficient.</summary>
    private static ReadOnlySpan<bool> NeededBy2x2 => NeededTable;

    private static readonly bool[] NeededTable = BuildNeeded();

    private static bool[] BuildNeeded()
    {
        var table = new bool[80];
        for (var k = 0; k < table.Length; k++)
        {
            var natural = NaturalOrder[k];
            table[k] = (natural >> 3) is 0 or 1 or 3 or 5 or 7 && (natural & 7) is 0 or 1 or 3 or 5 or 7;
        }

        return table;
    }

    /// <summary>
    /// Decodes a run of consecutive sequential blocks of one component whose IDCT libjpeg-turbo scales to 2x2
    /// (4:2:0 chroma at 1/8): DC and AC values (extended, in natural order), then <see cref="Idct2x2"/> into
    /// <paramref name="samples"/> at <paramref name="offset"/>, two samples per block across and down.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeSequentialRun2x2(
        JpegHuffmanTable dcTable, JpegHuffmanTable acTable, short[] quant, Span<short> coefficients, Span<byte> samples, int offset, int stride, ref int predictor)
    {
        var buffer = _buffer;
        var count = _bitCount;
        var dcLookup = dcTable.Lookup;
        var acLookup = acTable.Lookup;
        var value = predictor;
        Span<short> block = stackalloc short[64];
        block.Clear();
        for (var i = 0; i < coefficients.Length; i++)
        {
            value += DecodeDcDifference(dcTable, dcLookup, ref buffer, ref count);
            coefficients[i] = (short)value;

            var any = ReadAc2x2(acTable, acLookup, block, ref buffer, ref count);
            Store2x2(value, block, any, quant, samples, offset + (2 * i), stride);
        }

        predictor = value;
        _buffer = buffer;
        _bitCount = count;
    }

    /// <summary>
    /// Decodes <paramref name="mcuCount"/> interleaved MCUs of a sequential scan from MCU (<paramref name="mx"/>,
    /// <paramref name="my"/>): per block the DC (into the coefficients, predictors per component) and the AC
    /// codes, skipped, or read and put through the 2x2 IDCT for blocks of 2x2 components. One call per run keeps
    /// the bit buffer in registers.
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
        var components = layout.Component;
        var stepX = layout.McuStepX;
        Span<int> index = stackalloc int[blocks];
        layout.RowStart(my, mx, index);
        Span<short> block = stackalloc short[64];
        block.Clear();
        for (var m = 0; m < mcuCount; m++)
        {
            for (var b = 0; b < blocks; b++)
            {
                var dcTable = dcTables[b]!;
                var acTable = acTables[b]!;
                ref var predictor = ref predictors[components[b]];
                predictor += DecodeDcDifference(dcTable, dcTable.Lookup, ref buffer, ref count);
                coefficients[b][index[b]] = (short)predictor;
                if (samples[b] is { } plane)
                {
                    // A 2x2 component has one block per MCU: its samples sit at (2 (mx + m), 2 my).
                    var stride = layout.SampleStride[b];
                    var any = ReadAc2x2(acTable, acTable.Lookup, block, ref buffer, ref count);
                    Store2x2(predictor, block, any, layout.Quant[b]!, plane, (2 * my * stride) + (2 * (mx + m)), stride);
                }
                else
                {
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
    /// Steps through one block's AC codes as <see cref="SkipAc"/> does, extending only the values the 2x2 IDCT
    /// reads (rows and columns 0, 1, 3, 5, 7) into <paramref name="block"/> (natural order; k counts in zigzag
    /// order as libjpeg's decode_mcu). Returns whether any of them is non-zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ReadAc2x2(JpegHuffmanTable acTable, uint[] acLookup, scoped Span<short> block, ref ulong buffer, ref int count)
    {
        var natural = NaturalOrder;
        var needed = NeededBy2x2;
        var any = false;
        for (var k = 1; k < 64;)
        {
            if (count < 32)
            {
                (buffer, count) = Refill(buffer, count);
            }

            var entry = acLookup[(int)(buffer >> (64 - JpegHuffmanTable.LookaheadBits))];
            if (entry == 0)
            {
                entry = DecodeLongAc(acTable, buffer);
            }

            var size = (int)(entry >> 24);
            var position = k + (int)((entry >> 8) & 0xFF) - 1;
            if (size != 0 && needed[position])
            {
                // A run past the block's end lands on position 63, as in libjpeg (NaturalOrder's tail).
                var v = (short)Extend(buffer << (int)((entry >> 16) & 0xFF), size);
                block[natural[position]] = v;
                any |= v != 0;
            }

            var skip = (int)(entry & 0xFF);
            buffer <<= skip;
            count -= skip;
            k += (int)((entry >> 8) & 0xFF);
        }

        return any;
    }

    /// <summary>
    /// Writes a 2x2 block's four samples at <paramref name="offset"/> and clears <paramref name="block"/> for the
    /// next one. With no AC term, jpeg_idct_2x2's zero shortcuts give DESCALE(dc × q, 3) in all four.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Store2x2(int dc, Span<short> block, bool any, short[] quant, Span<byte> samples, int offset, int stride)
    {
        if (!any)
        {
            var sample = RangeLimit[((((short)dc * quant[0]) + 4) >> 3) & 1023];
            samples[offset] = sample;
            samples[offset + 1] = sample;
            samples[offset + stride] = sample;
            samples[offset + stride + 1] = sample;
            block.Clear();
            return;
        }

        block[0] = (short)dc;
        Idct2x2(block, quant, samples, offset, stride);
        block.Clear();
    }

    /// <summary>
    /// libjpeg-turbo's <c>jpeg_idct_2x2</c> (jidctred.c, the reduced ISLOW IDCT: columns and rows 0, 1, 3, 5, 7;
    /// 13-bit constants, 2 bits of pass-1 precision), bit for bit, including the IDCT range limiter.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Idct2x2(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, Span<byte> output, int offset, int stride)
    {
        // Columns 2, 4 and 6 are never read by pass 2 (their weights are zero at this size); the ten workspace
        // values live in locals (no stack buffer, no loop).
        var w00 = Column(block, quant, 0, out var w10);
        var w01 = Column(block, quant, 1, out var w11);
        var w03 = Column(block, quant, 3, out var w13);
        var w05 = Column(block, quant, 5, out var w15);
        var w07 = Column(block, quant, 7, out var w17);
        Row(w00, w01, w03, w05, w07, output, offset);
        Row(w10, w11, w13, w15, w17, output, offset + stride);
    }

    private const int ConstBits = 13;
    private const int Pass1Bits = 2;
    private const long Fix0720959822 = 5906;
    private const long Fix0850430095 = 6967;
    private const long Fix1272758580 = 10426;
    private const long Fix3624509785 = 29692;

    /// <summary>Pass 1 of <see cref="Idct2x2"/> for one column: returns row 0's workspace value, row 1's in <paramref name="second"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Column(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, int col, out long second)
    {
        long z0 = block[col] * quant[col];
        long z1 = block[8 + col] * quant[8 + col];
        long z3 = block[24 + col] * quant[24 + col];
        long z5 = block[40 + col] * quant[40 + col];
        long z7 = block[56 + col] * quant[56 + col];
        var tmp10 = z0 << (ConstBits + 2);
        var tmp0 = (z7 * -Fix0720959822) + (z5 * Fix0850430095) + (z3 * -Fix1272758580) + (z1 * Fix3624509785);

        // The workspace is int in libjpeg: truncate as it does.
        second = (int)Descale(tmp10 - tmp0, ConstBits - Pass1Bits + 2);
        return (int)Descale(tmp10 + tmp0, ConstBits - Pass1Bits + 2);
    }

    /// <summary>Pass 2 of <see cref="Idct2x2"/> for one row: two samples through the range limiter.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(long w0, long w1, long w3, long w5, long w7, Span<byte> output, int o)
    {
        var limit = RangeLimit;
        var tmp10 = w0 << (ConstBits + 2);
        var tmp0 = (w7 * -Fix0720959822) + (w5 * Fix0850430095) + (w3 * -Fix1272758580) + (w1 * Fix3624509785);
        output[o] = limit[(int)Descale(tmp10 + tmp0, ConstBits + Pass1Bits + 3 + 2) & 1023];
        output[o + 1] = limit[(int)Descale(tmp10 - tmp0, ConstBits + Pass1Bits + 3 + 2) & 1023];
    }

    /// <summary>libjpeg's IDCT output range limiter, indexed by (value &amp; 1023), centred on 128.</summary>
    internal static ReadOnlySpan<byte> RangeLimit => JpegDcDecoder.IdctRangeLimit;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Descale(long x, int n) => (x + (1L << (n - 1))) >> n;

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
