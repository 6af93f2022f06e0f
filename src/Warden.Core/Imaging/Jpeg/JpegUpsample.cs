namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// libjpeg-turbo's upsamplers (jdsample.c; its SIMD versions give the same bytes) over whole component planes, as
/// used when a scaled decode leaves a component at half the output's resolution. Edges replicate the component's
/// last real sample (column <c>downsampled_width - 1</c>, row <c>downsampled_height - 1</c>, the row above the first
/// being the first), which is what jdmainct.c's context rows and the upsamplers' edge cases amount to.
/// </summary>
internal static class JpegUpsample
{
    /// <summary>Twice as wide: fancy (3/4 nearer + 1/4 further, rounding 1 then 2) or, for narrow planes, replicated.</summary>
    public static void H2V1(byte[] source, int sourceStride, int sourceWidth, byte[] output, int width, int height, bool fancy)
    {
        for (var y = 0; y < height; y++)
        {
            var input = source.AsSpan(y * sourceStride, sourceWidth);
            var row = output.AsSpan(y * width, width);
            for (var i = 0; i < input.Length; i++)
            {
                int v = input[i];
                int left = fancy ? input[Math.Max(i - 1, 0)] : v;
                int right = fancy ? input[Math.Min(i + 1, input.Length - 1)] : v;
                var x = 2 * i;
                if (x < row.Length)
                {
                    row[x] = fancy ? (byte)(((3 * v) + left + 1) >> 2) : (byte)v;
                }

                if (x + 1 < row.Length)
                {
                    row[x + 1] = fancy ? (byte)(((3 * v) + right + 2) >> 2) : (byte)v;
                }
            }
        }
    }

    /// <summary>Twice as tall, fancy: 3/4 the nearer row + 1/4 the other, rounding 1 above and 2 below.</summary>
    public static void H1V2(byte[] source, int sourceStride, int sourceHeight, byte[] output, int width, int height)
    {
        for (var y = 0; y < height; y++)
        {
            var inRow = y >> 1;
            var lower = (y & 1) != 0;
            var otherRow = lower ? Math.Min(inRow + 1, sourceHeight - 1) : Math.Max(inRow - 1, 0);
            var near = source.AsSpan(inRow * sourceStride, width);
            var far = source.AsSpan(otherRow * sourceStride, width);
            var bias = lower ? 2 : 1;
            var row = output.AsSpan(y * width, width);
            for (var x = 0; x < row.Length; x++)
            {
                row[x] = (byte)(((3 * near[x]) + far[x] + bias) >> 2);
            }
        }
    }

    /// <summary>
    /// Twice as wide and tall: fancy (column sums 3 × nearer row + other row, then 3 × nearer sum + other sum, rounding
    /// 8 then 7) or, for narrow planes, replicated.
    /// </summary>
    public static void H2V2(byte[] source, int sourceStride, int sourceWidth, int sourceHeight, byte[] output, int width, int height, bool fancy)
    {
        Span<int> sums = sourceWidth <= 1024 ? stackalloc int[sourceWidth] : new int[sourceWidth];
        for (var y = 0; y < height; y++)
        {
            var inRow = y >> 1;
            var row = output.AsSpan(y * width, width);
            var near = source.AsSpan(inRow * sourceStride, sourceWidth);
            if (!fancy)
            {
                for (var x = 0; x < row.Length; x++)
                {
                    row[x] = near[x >> 1];
                }

                continue;
            }

            var otherRow = (y & 1) != 0 ? Math.Min(inRow + 1, sourceHeight - 1) : Math.Max(inRow - 1, 0);
            var far = source.AsSpan(otherRow * sourceStride, sourceWidth);
            for (var i = 0; i < sums.Length; i++)
            {
                sums[i] = (3 * near[i]) + far[i];
            }

            for (var i = 0; i < sums.Length; i++)
            {
                var v = 3 * sums[i];
                var x = 2 * i;
                if (x < row.Length)
                {
                    row[x] = (byte)((v + sums[Math.Max(i - 1, 0)] + 8) >> 4);
                }

                if (x + 1 < row.Length)
                {
                    row[x + 1] = (byte)((v + sums[Math.Min(i + 1, sums.Length - 1)] + 7) >> 4);
                }
            }
        }
    }
}
