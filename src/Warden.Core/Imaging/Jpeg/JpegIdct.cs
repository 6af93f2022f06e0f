using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// libjpeg-turbo's reduced-size inverse DCTs as its x86-64 builds run them (libvips' bundled libjpeg-turbo has
/// SIMD): <c>jsimd_idct_2x2_sse2</c> and <c>jsimd_idct_4x4_sse2</c> (simd/x86_64/jidctred-sse2.asm), which compute
/// what jidctred.c's <c>jpeg_idct_2x2</c>/<c>jpeg_idct_4x4</c> compute (13-bit constants, 2 bits of pass-1
/// precision) but dequantise in 16 bits (pmullw), sum in wrapping 32-bit lanes, saturate the pass-1 workspace to
/// 16 bits (packssdw) and clamp the output (packsswb + 128) instead of the C range limiter's wrap-around. For
/// coefficients that any encoder produces both agree; hostile ones (huge quantisers) follow the SIMD code, which is
/// what libvips runs. Blocks are in natural order; int arithmetic is unchecked, as the SIMD lanes wrap.
/// </summary>
internal static class JpegIdct
{
    private const int F0211 = 1730;
    private const int F0509 = 4176;
    private const int F0601 = 4926;
    private const int F0720 = 5906;
    private const int F0765 = 6270;
    private const int F0850 = 6967;
    private const int F0899 = 7373;
    private const int F1061 = 8697;
    private const int F1272 = 10426;
    private const int F1451 = 11893;
    private const int F1847 = 15137;
    private const int F2172 = 17799;
    private const int F2562 = 20995;
    private const int F3624 = 29692;

    /// <summary>Flag for <see cref="Idct4x4"/>: some coefficient in rows 1, 2, 3, 5, 6 or 7 (any column) is non-zero.</summary>
    public const int AcRows = 2;

    /// <summary>Flag for <see cref="Idct4x4"/>: some coefficient of row 0 other than the DC (columns 1-3, 5-7) is non-zero.</summary>
    public const int AcRow0 = 4;

    /// <summary>
    /// <c>jsimd_idct_2x2_sse2</c>: the 2x2 samples of <paramref name="block"/> (rows and columns 0, 1, 3, 5, 7 are
    /// read) at <paramref name="offset"/> and <paramref name="offset"/> + <paramref name="stride"/>.
    /// <paramref name="anyAc"/> false says those AC terms are all zero (then all four samples are the same).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Idct2x2(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, bool anyAc, Span<byte> output, int offset, int stride)
    {
        if (anyAc && Vector128.IsHardwareAccelerated)
        {
            Check(block, quant, output, offset, stride, 2);
            Idct2x2Vector(ref MemoryMarshal.GetReference(block), ref MemoryMarshal.GetReference(quant), output, offset, stride);
            return;
        }

        Idct2x2Scalar(block, quant, anyAc, output, offset, stride);
    }

    /// <summary>
    /// <see cref="Idct2x2"/> one column (pass 1) and one row (pass 2) at a time: the reference that the vector path
    /// must equal (the property tests compare them), and the path where Vector128 is not accelerated.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Idct2x2Scalar(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, bool anyAc, Span<byte> output, int offset, int stride)
    {
        Check(block, quant, output, offset, stride, 2);
        if (!anyAc)
        {
            // Pass 1 gives 4·dq in column 0 and zeros elsewhere; pass 2 then shifts it back up, wrapping as pslld does.
            var a0 = (short)(block[0] * quant[0]) << 2;
            var sample = Clamp(((a0 << 15) + (1 << 19)) >> 20);
            output[offset] = sample;
            output[offset + 1] = sample;
            output[offset + stride] = sample;
            output[offset + stride + 1] = sample;
            return;
        }

        ref var b = ref MemoryMarshal.GetReference(block);
        ref var q = ref MemoryMarshal.GetReference(quant);
        var a00 = Column2(ref b, ref q, 0, out var a10);
        var a01 = Column2(ref b, ref q, 1, out var a11);
        var a03 = Column2(ref b, ref q, 3, out var a13);
        var a05 = Column2(ref b, ref q, 5, out var a15);
        var a07 = Column2(ref b, ref q, 7, out var a17);
        Row2(a00, a01, a03, a05, a07, output, offset);
        Row2(a10, a11, a13, a15, a17, output, offset + stride);
    }

    /// <summary>Pass 1 of the 2x2 for one column: row 0's workspace value, row 1's in <paramref name="second"/> (32-bit, unsaturated).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Column2(ref short block, ref short quant, int col, out int second)
    {
        int z0 = Dequantise(ref block, ref quant, col);
        int z1 = Dequantise(ref block, ref quant, 8 + col);
        int z3 = Dequantise(ref block, ref quant, 24 + col);
        int z5 = Dequantise(ref block, ref quant, 40 + col);
        int z7 = Dequantise(ref block, ref quant, 56 + col);
        var tmp10 = z0 << 15;
        var tmp0 = ((z1 * F3624) + (z3 * -F1272)) + ((z5 * F0850) + (z7 * -F0720));
        second = (tmp10 - tmp0 + (1 << 12)) >> 13;
        return (tmp10 + tmp0 + (1 << 12)) >> 13;
    }

    /// <summary>Pass 2 of the 2x2 for one row: the odd terms are saturated to 16 bits first (packssdw), the even one is not.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row2(int w0, int w1, int w3, int w5, int w7, Span<byte> output, int o)
    {
        var tmp10 = w0 << 15;
        var tmp0 = ((Sat16(w1) * F3624) + (Sat16(w3) * -F1272)) + ((Sat16(w5) * F0850) + (Sat16(w7) * -F0720));
        output[o] = Clamp((tmp10 + tmp0 + (1 << 19)) >> 20);
        output[o + 1] = Clamp((tmp10 - tmp0 + (1 << 19)) >> 20);
    }

    /// <summary>
    /// <c>jsimd_idct_4x4_sse2</c>: the 4x4 samples of <paramref name="block"/> (column and row 4 are not read) at
    /// <paramref name="offset"/>, rows <paramref name="stride"/> apart. <paramref name="flags"/> (<see cref="AcRows"/>,
    /// <see cref="AcRow0"/>) says which AC terms are non-zero: like the SIMD code, pass 1 takes its shortcut (each
    /// column's dequantised DC term, shifted in 16 bits) when rows 1-3 and 5-7 are all zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Idct4x4(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, int flags, Span<byte> output, int offset, int stride)
    {
        // The full case (some AC term in rows 1-7) is the common one in photos; the shortcuts stay scalar.
        if ((flags & AcRows) != 0 && Sse2.IsSupported && BitConverter.IsLittleEndian)
        {
            Check(block, quant, output, offset, stride, 4);
            Idct4x4Vector(ref MemoryMarshal.GetReference(block), ref MemoryMarshal.GetReference(quant), output, offset, stride);
            return;
        }

        Idct4x4Scalar(block, quant, flags, output, offset, stride);
    }

    /// <summary><see cref="Idct4x4"/> a column and a row at a time: the reference for the vector path, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Idct4x4Scalar(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, int flags, Span<byte> output, int offset, int stride)
    {
        Check(block, quant, output, offset, stride, 4);
        ref var b = ref MemoryMarshal.GetReference(block);
        ref var q = ref MemoryMarshal.GetReference(quant);
        if ((flags & AcRows) == 0)
        {
            if ((flags & AcRow0) == 0)
            {
                // DC only: every workspace row is (dq << 2, 0, ..., 0), so all sixteen samples are the same.
                var sample = Clamp(((int)(short)((short)(block[0] * quant[0]) << 2) + (1 << 4)) >> 5);
                for (var r = 0; r < 4; r++)
                {
                    var o = offset + (r * stride);
                    output[o] = sample;
                    output[o + 1] = sample;
                    output[o + 2] = sample;
                    output[o + 3] = sample;
                }

                return;
            }

            // The four workspace rows are the same: one row through pass 2, copied down.
            Row4(
                Shortcut(ref b, ref q, 0), Shortcut(ref b, ref q, 1), Shortcut(ref b, ref q, 2), Shortcut(ref b, ref q, 3),
                Shortcut(ref b, ref q, 5), Shortcut(ref b, ref q, 6), Shortcut(ref b, ref q, 7),
                output,
                offset);
            for (var r = 1; r < 4; r++)
            {
                output.Slice(offset, 4).CopyTo(output[(offset + (r * stride))..]);
            }

            return;
        }

        // The workspace: 4 rows of 8 (column 4 unused), on the stack.
        var ws = default(Workspace);
        ref var w = ref Unsafe.As<Workspace, short>(ref ws);
        Column4(ref b, ref q, 0, ref w);
        Column4(ref b, ref q, 1, ref w);
        Column4(ref b, ref q, 2, ref w);
        Column4(ref b, ref q, 3, ref w);
        Column4(ref b, ref q, 5, ref w);
        Column4(ref b, ref q, 6, ref w);
        Column4(ref b, ref q, 7, ref w);
        for (var r = 0; r < 4; r++)
        {
            ref var row = ref Unsafe.Add(ref w, r * 8);
            Row4(row, Unsafe.Add(ref row, 1), Unsafe.Add(ref row, 2), Unsafe.Add(ref row, 3), Unsafe.Add(ref row, 5), Unsafe.Add(ref row, 6), Unsafe.Add(ref row, 7), output, offset + (r * stride));
        }
    }

    /// <summary>
    /// The 2x2 with pass 1 over all eight columns at once (columns 2, 4 and 6 are computed and weighted by zero) and
    /// pass 2 as a dot product of each saturated workspace row with the odd constants. Sums wrap as the scalar ones
    /// do, and wrapping addition does not depend on the order, so the bytes are the scalar path's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Idct2x2Vector(ref short b, ref short q, Span<byte> output, int offset, int stride)
    {
        var d0 = Vector128.LoadUnsafe(ref b) * Vector128.LoadUnsafe(ref q);
        var d1 = Vector128.LoadUnsafe(ref b, 8) * Vector128.LoadUnsafe(ref q, 8);
        var d3 = Vector128.LoadUnsafe(ref b, 24) * Vector128.LoadUnsafe(ref q, 24);
        var d5 = Vector128.LoadUnsafe(ref b, 40) * Vector128.LoadUnsafe(ref q, 40);
        var d7 = Vector128.LoadUnsafe(ref b, 56) * Vector128.LoadUnsafe(ref q, 56);
        Pass1Of2x2(Vector128.WidenLower(d0), Vector128.WidenLower(d1), Vector128.WidenLower(d3), Vector128.WidenLower(d5), Vector128.WidenLower(d7), out var firstLo, out var secondLo);
        Pass1Of2x2(Vector128.WidenUpper(d0), Vector128.WidenUpper(d1), Vector128.WidenUpper(d3), Vector128.WidenUpper(d5), Vector128.WidenUpper(d7), out var firstHi, out var secondHi);
        var kLo = Vector128.Create(0, F3624, 0, -F1272);
        var kHi = Vector128.Create(0, F0850, 0, -F0720);
        ref var out0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(output), offset);
        Row2Vector(firstLo, firstHi, kLo, kHi, ref out0);
        Row2Vector(secondLo, secondHi, kLo, kHi, ref Unsafe.Add(ref out0, stride));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pass1Of2x2(Vector128<int> z0, Vector128<int> z1, Vector128<int> z3, Vector128<int> z5, Vector128<int> z7, out Vector128<int> first, out Vector128<int> second)
    {
        var tmp10 = z0 << 15;
        var tmp0 = ((z1 * F3624) + (z3 * -F1272)) + ((z5 * F0850) + (z7 * -F0720));
        var round = Vector128.Create(1 << 12);
        first = Vector128.ShiftRightArithmetic(tmp10 + tmp0 + round, 13);
        second = Vector128.ShiftRightArithmetic(tmp10 - tmp0 + round, 13);
    }

    /// <summary>Pass 2 of the 2x2 for one workspace row held as columns 0-3 and 4-7: the even term unsaturated, the odd ones saturated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row2Vector(Vector128<int> lo, Vector128<int> hi, Vector128<int> kLo, Vector128<int> kHi, ref byte o)
    {
        var tmp10 = lo.ToScalar() << 15;
        var tmp0 = Vector128.Sum((Sat16(lo) * kLo) + (Sat16(hi) * kHi));
        o = Clamp((tmp10 + tmp0 + (1 << 19)) >> 20);
        Unsafe.Add(ref o, 1) = Clamp((tmp10 - tmp0 + (1 << 19)) >> 20);
    }

    /// <summary>
    /// The 4x4's general case: pass 1 over all eight columns at once (column 4 is computed and never read), the
    /// workspace transposed (SSE2 unpacks) so that pass 2 runs the four rows at once, and each row's four samples
    /// packed into one 32-bit store. The arithmetic is the scalar path's, lane for lane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Idct4x4Vector(ref short b, ref short q, Span<byte> output, int offset, int stride)
    {
        var d0 = Vector128.LoadUnsafe(ref b) * Vector128.LoadUnsafe(ref q);
        var d1 = Vector128.LoadUnsafe(ref b, 8) * Vector128.LoadUnsafe(ref q, 8);
        var d2 = Vector128.LoadUnsafe(ref b, 16) * Vector128.LoadUnsafe(ref q, 16);
        var d3 = Vector128.LoadUnsafe(ref b, 24) * Vector128.LoadUnsafe(ref q, 24);
        var d5 = Vector128.LoadUnsafe(ref b, 40) * Vector128.LoadUnsafe(ref q, 40);
        var d6 = Vector128.LoadUnsafe(ref b, 48) * Vector128.LoadUnsafe(ref q, 48);
        var d7 = Vector128.LoadUnsafe(ref b, 56) * Vector128.LoadUnsafe(ref q, 56);
        Pass1Of4x4(
            Vector128.WidenLower(d0), Vector128.WidenLower(d1), Vector128.WidenLower(d2), Vector128.WidenLower(d3), Vector128.WidenLower(d5), Vector128.WidenLower(d6), Vector128.WidenLower(d7),
            out var r0, out var r1, out var r2, out var r3);
        Transpose(ref r0, ref r1, ref r2, ref r3);
        Pass1Of4x4(
            Vector128.WidenUpper(d0), Vector128.WidenUpper(d1), Vector128.WidenUpper(d2), Vector128.WidenUpper(d3), Vector128.WidenUpper(d5), Vector128.WidenUpper(d6), Vector128.WidenUpper(d7),
            out var r4, out var r5, out var r6, out var r7);
        Transpose(ref r4, ref r5, ref r6, ref r7);

        // Now r0..r7 are the workspace's columns 0..7, one lane per row (r4 is column 4: unused).
        var even = r0 << 14;
        var tmpE = (r2 * F1847) + (r6 * -F0765);
        var tmp10 = even + tmpE;
        var tmp12 = even - tmpE;
        var tmp2 = ((r1 * F2562) + (r3 * F0899)) + ((r5 * -F0601) + (r7 * -F0509));
        var tmp0 = ((r1 * F1061) + (r3 * -F2172)) + ((r5 * F1451) + (r7 * -F0211));
        var round = Vector128.Create(1 << 18);
        var c0 = ClampSample(Vector128.ShiftRightArithmetic(tmp10 + tmp2 + round, 19));
        var c1 = ClampSample(Vector128.ShiftRightArithmetic(tmp12 + tmp0 + round, 19));
        var c2 = ClampSample(Vector128.ShiftRightArithmetic(tmp12 - tmp0 + round, 19));
        var c3 = ClampSample(Vector128.ShiftRightArithmetic(tmp10 - tmp2 + round, 19));
        var rows = (c0 | (c1 << 8) | (c2 << 16) | (c3 << 24)).AsUInt32();
        ref var o = ref Unsafe.Add(ref MemoryMarshal.GetReference(output), offset);
        Unsafe.WriteUnaligned(ref o, rows.GetElement(0));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, stride), rows.GetElement(1));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 2 * stride), rows.GetElement(2));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 3 * stride), rows.GetElement(3));
    }

    /// <summary>Pass 1 of the 4x4 for four columns (one per lane): workspace rows 0-3, saturated to 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pass1Of4x4(
        Vector128<int> z0, Vector128<int> r1, Vector128<int> r2, Vector128<int> r3, Vector128<int> r5, Vector128<int> r6, Vector128<int> r7,
        out Vector128<int> w0, out Vector128<int> w1, out Vector128<int> w2, out Vector128<int> w3)
    {
        var tmp2 = ((r1 * F2562) + (r3 * F0899)) + ((r5 * -F0601) + (r7 * -F0509));
        var tmp0 = ((r1 * F1061) + (r3 * -F2172)) + ((r5 * F1451) + (r7 * -F0211));
        var even = z0 << 14;
        var tmpE = (r2 * F1847) + (r6 * -F0765);
        var tmp10 = even + tmpE;
        var tmp12 = even - tmpE;
        var round = Vector128.Create(1 << 11);
        w0 = Sat16(Vector128.ShiftRightArithmetic(tmp10 + tmp2 + round, 12));
        w3 = Sat16(Vector128.ShiftRightArithmetic(tmp10 - tmp2 + round, 12));
        w1 = Sat16(Vector128.ShiftRightArithmetic(tmp12 + tmp0 + round, 12));
        w2 = Sat16(Vector128.ShiftRightArithmetic(tmp12 - tmp0 + round, 12));
    }

    /// <summary>4x4 transpose of 32-bit lanes (rows in, columns out).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(ref Vector128<int> a, ref Vector128<int> b, ref Vector128<int> c, ref Vector128<int> d)
    {
        var t0 = Sse2.UnpackLow(a, b).AsInt64();
        var t1 = Sse2.UnpackLow(c, d).AsInt64();
        var t2 = Sse2.UnpackHigh(a, b).AsInt64();
        var t3 = Sse2.UnpackHigh(c, d).AsInt64();
        a = Sse2.UnpackLow(t0, t1).AsInt32();
        b = Sse2.UnpackHigh(t0, t1).AsInt32();
        c = Sse2.UnpackLow(t2, t3).AsInt32();
        d = Sse2.UnpackHigh(t2, t3).AsInt32();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Sat16(Vector128<int> x) =>
        Vector128.Min(Vector128.Max(x, Vector128.Create((int)short.MinValue)), Vector128.Create((int)short.MaxValue));

    /// <summary><see cref="Clamp"/> per lane: packssdw, packsswb, + 128 (the value in the low byte, 0-255).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> ClampSample(Vector128<int> x) =>
        Vector128.Min(Vector128.Max(x, Vector128.Create(-128)), Vector128.Create(127)) + Vector128.Create(128);

    /// <summary>Bounds for the unchecked reads and the writes: a whole block and table, and the output rectangle.</summary>
    private static void Check(ReadOnlySpan<short> block, ReadOnlySpan<short> quant, Span<byte> output, int offset, int stride, int size)
    {
        if (block.Length < 64 || quant.Length < 64 || offset < 0 || stride < size || (long)offset + ((long)(size - 1) * stride) + size > output.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(output), "The block, table or output region is out of range.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static short Dequantise(ref short block, ref short quant, int index) =>
        (short)(Unsafe.Add(ref block, index) * Unsafe.Add(ref quant, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static short Shortcut(ref short block, ref short quant, int col) =>
        (short)(Dequantise(ref block, ref quant, col) << 2);

    /// <summary>Pass 1 of the 4x4 for one column into the workspace (4 rows of 8), saturated to 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Column4(ref short block, ref short quant, int col, ref short ws)
    {
        int z0 = Dequantise(ref block, ref quant, col);
        int r1 = Dequantise(ref block, ref quant, 8 + col);
        int r2 = Dequantise(ref block, ref quant, 16 + col);
        int r3 = Dequantise(ref block, ref quant, 24 + col);
        int r5 = Dequantise(ref block, ref quant, 40 + col);
        int r6 = Dequantise(ref block, ref quant, 48 + col);
        int r7 = Dequantise(ref block, ref quant, 56 + col);

        // Summed in the SIMD code's pairs (pmaddwd), each pair and each sum a wrapping 32-bit lane.
        var tmp2 = ((r1 * F2562) + (r3 * F0899)) + ((r5 * -F0601) + (r7 * -F0509));
        var tmp0 = ((r1 * F1061) + (r3 * -F2172)) + ((r5 * F1451) + (r7 * -F0211));
        var even = z0 << 14;
        var tmpE = (r2 * F1847) + (r6 * -F0765);
        var tmp10 = even + tmpE;
        var tmp12 = even - tmpE;
        const int round = 1 << 11;
        Unsafe.Add(ref ws, col) = Sat16((tmp10 + tmp2 + round) >> 12);
        Unsafe.Add(ref ws, 24 + col) = Sat16((tmp10 - tmp2 + round) >> 12);
        Unsafe.Add(ref ws, 8 + col) = Sat16((tmp12 + tmp0 + round) >> 12);
        Unsafe.Add(ref ws, 16 + col) = Sat16((tmp12 - tmp0 + round) >> 12);
    }

    /// <summary>Pass 2 of the 4x4 for one workspace row (column 4 unused): four samples, clamped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row4(int w0, int w1, int w2, int w3, int w5, int w6, int w7, Span<byte> output, int o)
    {
        var even = w0 << 14;
        var tmpE = (w2 * F1847) + (w6 * -F0765);
        var tmp10 = even + tmpE;
        var tmp12 = even - tmpE;
        var tmp2 = ((w1 * F2562) + (w3 * F0899)) + ((w5 * -F0601) + (w7 * -F0509));
        var tmp0 = ((w1 * F1061) + (w3 * -F2172)) + ((w5 * F1451) + (w7 * -F0211));
        const int round = 1 << 18;
        ref var out0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(output), o);
        out0 = Clamp((tmp10 + tmp2 + round) >> 19);
        Unsafe.Add(ref out0, 1) = Clamp((tmp12 + tmp0 + round) >> 19);
        Unsafe.Add(ref out0, 2) = Clamp((tmp12 - tmp0 + round) >> 19);
        Unsafe.Add(ref out0, 3) = Clamp((tmp10 - tmp2 + round) >> 19);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static short Sat16(int x) => (short)Math.Clamp(x, short.MinValue, short.MaxValue);

    /// <summary>
    /// packssdw, packsswb, then + 128: a clamp to the sample range, by table (branch-free). Every caller passes a
    /// 32-bit value shifted right by at least 19, or a 16-bit one by 5: within ±4096.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clamp(int x) => ClampTable[(x + 4096) & 8191];

    private static readonly byte[] ClampTable = BuildClampTable();

    private static byte[] BuildClampTable()
    {
        var table = new byte[8192];
        for (var i = 0; i < table.Length; i++)
        {
            table[i] = (byte)(Math.Clamp(i - 4096, -128, 127) + 128);
        }

        return table;
    }

    /// <summary>The 4x4's pass-1 workspace: 4 rows of 8 shorts on the stack.</summary>
    [InlineArray(32)]
    private struct Workspace
    {
        private short _element;
    }
}
