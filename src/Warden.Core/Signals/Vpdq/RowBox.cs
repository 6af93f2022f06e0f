using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Hashing.Video;

/// <summary>
/// PDQ's box filter along rows (PdqStages.Box1D on every row), eight rows at a time: a strip of 8 rows is
/// interleaved so that each SIMD lane runs one row's running sum. Every lane performs exactly Box1D's float
/// sequence (add the entering value, subtract the leaving one, divide by the window size), so the output is
/// bit-identical; the win is 8 divides and adds per instruction instead of one, which matters on full-HD
/// video frames where this pass dominates the hash.
/// </summary>
internal static class RowBox
{
    private const int Lanes = 8;

    public static void Filter(ReadOnlySpan<float> input, Span<float> output, int rows, int cols, int window, float[] tile, float[] tileOut)
    {
        var y = 0;
        if (Vector256.IsHardwareAccelerated && cols >= window)
        {
            for (; y + Lanes <= rows; y += Lanes)
            {
                Strip(input.Slice(y * cols, Lanes * cols), output.Slice(y * cols, Lanes * cols), cols, window, tile, tileOut);
            }
        }

        for (; y < rows; y++)
        {
            PdqStages.Box1D(input.Slice(y * cols, cols), output.Slice(y * cols, cols), window);
        }
    }

    /// <summary>Work space <see cref="Filter"/> needs for rows of <paramref name="cols"/> values.</summary>
    public static int TileLength(int cols) => cols * Lanes;

    private static void Strip(ReadOnlySpan<float> input, Span<float> output, int cols, int window, float[] tile, float[] tileOut)
    {
        // Interleave: tile[x * 8 + r] = row r, column x.
        for (var r = 0; r < Lanes; r++)
        {
            var row = input.Slice(r * cols, cols);
            for (var x = 0; x < cols; x++)
            {
                tile[(x * Lanes) + r] = row[x];
            }
        }

        var half = (window + 2) / 2;
        var phase1 = half - 1;
        var phase2 = window - half + 1;
        var phase3 = cols - window;
        var phase4 = half - 1;
        ref var inRef = ref tile[0];
        ref var outRef = ref tileOut[0];
        int li = 0, ri = 0, oi = 0;
        var size = 0;
        var sum = Vector256<float>.Zero;
        for (var i = 0; i < phase1; i++)
        {
            sum += Load(ref inRef, ri++);
            size++;
        }

        for (var i = 0; i < phase2; i++)
        {
            sum += Load(ref inRef, ri++);
            size++;
            Store(ref outRef, oi++, sum / Vector256.Create((float)size));
        }

        var divisor = Vector256.Create((float)size);
        for (var i = 0; i < phase3; i++)
        {
            sum += Load(ref inRef, ri++);
            sum -= Load(ref inRef, li++);
            Store(ref outRef, oi++, sum / divisor);
        }

        for (var i = 0; i < phase4; i++)
        {
            sum -= Load(ref inRef, li++);
            size--;
            Store(ref outRef, oi++, sum / Vector256.Create((float)size));
        }

        for (var r = 0; r < Lanes; r++)
        {
            var row = output.Slice(r * cols, cols);
            for (var x = 0; x < cols; x++)
            {
                row[x] = tileOut[(x * Lanes) + r];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load(ref float start, int index) =>
        Vector256.LoadUnsafe(ref start, (nuint)(index * Lanes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref float start, int index, Vector256<float> value) =>
        value.StoreUnsafe(ref start, (nuint)(index * Lanes));
}
