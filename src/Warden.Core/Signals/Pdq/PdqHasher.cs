namespace Warden.Core.Hashing.Pdq;

/// <summary>How pixels are brought to the size the PDQ core filters.</summary>
public enum PdqResize
{
    /// <summary>
    /// Warden's default: hash an image reduced by up to the reference's Jarosz window (JPEG DCT-scaled
    /// decode, then integer block averaging; see <see cref="PdqHasher.FastScale"/>) and emulate, from the
    /// reduced pixels, what the reference's filter and decimation give at full resolution
    /// (<see cref="PdqFastResample.ReducedResampleWeights"/>). Within a few bits of <see cref="FullResolution"/>
    /// at a fraction of its cost; everything after the 64x64 buffer is the reference's.
    /// </summary>
    Fast = 0,

    /// <summary>The reference core on every decoded pixel: HMA / python-threatexchange's pipeline.</summary>
    FullResolution = 1,

    /// <summary>
    /// The reference CLI (pdq-photo-hasher): an image larger than 512 on either side is first resized
    /// to exactly 512x512 by nearest neighbour, aspect not kept. Bit-exact with Meta's CLI on PNGs.
    /// </summary>
    Cli512 = 2,
}

/// <summary>
/// Computes PDQ hashes. Holds its work buffers so repeated calls allocate nothing but the result;
/// not thread-safe: use one instance per thread.
/// </summary>
public sealed class PdqHasher
{
    /// <summary>
    /// The <see cref="PdqResize.Fast"/> path's short-side unit: it reduces by up to ceil(short side / this)
    /// (see <see cref="FastScale"/>), so the reduced short side stays near or above it.
    /// </summary>
    public const int FastMinSide = 128;

    private readonly float[] _buffer64 = new float[64 * 64];
    private readonly float[] _buffer16x64 = new float[16 * 64];
    private readonly float[] _buffer16x16 = new float[16 * 16];
    private readonly float[] _aux16x16 = new float[16 * 16];
    private readonly int[] _startX = new int[64];
    private readonly int[] _startY = new int[64];
    private float[] _weightsX = [];
    private float[] _weightsY = [];
    private (int Full, int Scale, int Reduced) _weightsKeyX;
    private (int Full, int Scale, int Reduced) _weightsKeyY;
    private float[] _full1 = [];
    private float[] _full2 = [];

    /// <summary>Hashes interleaved 8-bit pixels (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA).</summary>
    /// <param name="pixels">The pixels, rows <paramref name="stride"/> bytes apart.</param>
    /// <param name="width">Width of <paramref name="pixels"/>.</param>
    /// <param name="height">Height of <paramref name="pixels"/>.</param>
    /// <param name="stride">Bytes from one row to the next.</param>
    /// <param name="bytesPerPixel">1 to 4.</param>
    /// <param name="resize">How pixels reach the core.</param>
    /// <param name="dihedral">Also compute the 8 dihedral variants.</param>
    /// <param name="fastMinSide">Short-side unit of the <see cref="PdqResize.Fast"/> reduction (<see cref="FastScale"/>).</param>
    /// <param name="originalWidth">
    /// The image's full-resolution width when <paramref name="pixels"/> is already reduced (JPEG shrink-on-load:
    /// each pixel the mean of a block); 0 when the pixels are full size. Only <see cref="PdqResize.Fast"/> uses it.
    /// </param>
    /// <param name="originalHeight">The full-resolution height, as <paramref name="originalWidth"/>.</param>
    public PdqResult Hash(
        ReadOnlySpan<byte> pixels,
        int width,
        int height,
        int stride,
        int bytesPerPixel,
        PdqResize resize = PdqResize.Fast,
        bool dihedral = false,
        int fastMinSide = FastMinSide,
        int originalWidth = 0,
        int originalHeight = 0)
    {
        int rows, cols;
        var grey = PdqStages.IsGrey(pixels, width, height, stride, bytesPerPixel);
        if (resize == PdqResize.Fast)
        {
            var fullWidth = originalWidth > 0 ? originalWidth : width;
            var fullHeight = originalHeight > 0 ? originalHeight : height;
            var decodedX = Math.Max(1, (int)Math.Round((double)fullWidth / width));
            var decodedY = Math.Max(1, (int)Math.Round((double)fullHeight / height));
            var factor = Math.Max(1, FastScale(fullWidth, fullHeight, fastMinSide) / Math.Max(decodedX, decodedY));
            if (decodedX * factor > 1 || decodedY * factor > 1)
            {
                return HashReduced(pixels, width, height, stride, bytesPerPixel, grey, factor, fullWidth, fullHeight, decodedX * factor, decodedY * factor, dihedral);
            }
        }

        if (resize == PdqResize.Cli512 && (width > PdqStages.CliResizeDims || height > PdqStages.CliResizeDims))
        {
            rows = cols = PdqStages.CliResizeDims;
            EnsureBuffers(rows * cols);
            PdqStages.FillLumaNearest(pixels, width, height, stride, bytesPerPixel, cols, rows, _full1, grey);
        }
        else
        {
            rows = height;
            cols = width;
            EnsureBuffers(rows * cols);
            PdqStages.FillLuma(pixels, width, height, stride, bytesPerPixel, _full1, grey);
        }

        return HashLuma(rows, cols, dihedral);
    }

    /// <summary>
    /// The overall reduction (decode scaling times block averaging) the fast path aims for on a
    /// <paramref name="width"/> x <paramref name="height"/> image: ceil(short side / <paramref name="minSide"/>),
    /// which with the default 128 is the reference's Jarosz window on the short side, so a reduced pixel is
    /// never wider than the blur being emulated. Images with a short side up to 3 x <paramref name="minSide"/>
    /// are hashed at full size: there the reference's window is at most 3 pixels and its decimation aliases
    /// detail that no reduced image keeps.
    /// </summary>
    public static int FastScale(int width, int height, int minSide = FastMinSide)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minSide, 1);
        var shortSide = Math.Min(width, height);
        return shortSide <= 3 * minSide ? 1 : (shortSide + minSide - 1) / minSide;
    }


    /// <summary>
    /// The fast path on pixels reduced by <paramref name="scaleX"/> x <paramref name="scaleY"/> overall
    /// (decode scaling times <paramref name="factor"/>): block-average by <paramref name="factor"/>, then
    /// emulate the full-resolution Jarosz filter + decimation (<see cref="PdqFastResample.ReducedResampleWeights"/>).
    /// </summary>
    private PdqResult HashReduced(
        ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel, bool grey, int factor, int fullWidth, int fullHeight, int scaleX, int scaleY, bool dihedral)
    {
        int rows, cols;
        if (factor > 1)
        {
            EnsureBuffers(((width + factor - 1) / factor) * ((height + factor - 1) / factor));
            PdqFastResample.FillLumaBoxReduced(pixels, width, height, stride, bytesPerPixel, factor, _full1, out cols, out rows, grey);
        }
        else
        {
            rows = height;
            cols = width;
            EnsureBuffers(rows * cols);
            PdqStages.FillLuma(pixels, width, height, stride, bytesPerPixel, _full1, grey);
        }

        if (fullWidth < PdqStages.MinHashableDim || fullHeight < PdqStages.MinHashableDim)
        {
            return HashLuma(0, 0, dihedral);
        }

        var tapsX = PdqFastResample.ReducedTaps(fullWidth, scaleX);
        var tapsY = PdqFastResample.ReducedTaps(fullHeight, scaleY);
        if (rows < tapsY || cols < tapsX)
        {
            // Too few reduced pixels for the emulation's taps: the reference core on what there is.
            return HashLuma(rows, cols, dihedral);
        }

        if (_weightsKeyX != (fullWidth, scaleX, cols))
        {
            EnsureWeights(ref _weightsX, tapsX);
            PdqFastResample.ReducedResampleWeights(fullWidth, scaleX, cols, _startX, _weightsX);
            _weightsKeyX = (fullWidth, scaleX, cols);
        }

        if (_weightsKeyY != (fullHeight, scaleY, rows))
        {
            EnsureWeights(ref _weightsY, tapsY);
            PdqFastResample.ReducedResampleWeights(fullHeight, scaleY, rows, _startY, _weightsY);
            _weightsKeyY = (fullHeight, scaleY, rows);
        }

        PdqFastResample.ResampleReduced(_full1.AsSpan(0, rows * cols), rows, cols, _startY, _weightsY, tapsY, _startX, _weightsX, tapsX, _full2, _buffer64);
        return HashBuffer64(dihedral);
    }

    private PdqResult HashLuma(int rows, int cols, bool dihedral)
    {
        if (rows < PdqStages.MinHashableDim || cols < PdqStages.MinHashableDim)
        {
            return new PdqResult(PdqHash.Zero, 0, dihedral ? Enumerable.Repeat(PdqHash.Zero, 8).ToArray() : null);
        }

        var full1 = _full1.AsSpan(0, rows * cols);
        if (rows == 64 && cols == 64 && !dihedral)
        {
            // pdqFloat256FromFloatLuma copies a 64x64 input as is (the dihedral entry point filters it).
            full1.CopyTo(_buffer64);
        }
        else
        {
            PdqStages.JaroszFilter(
                full1,
                _full2.AsSpan(0, rows * cols),
                rows,
                cols,
                PdqStages.JaroszWindowSize(cols, 64),
                PdqStages.JaroszWindowSize(rows, 64));
            PdqStages.Decimate(full1, rows, cols, _buffer64);
        }

        return HashBuffer64(dihedral);
    }

    /// <summary>The reference's stages after the 64x64 buffer: quality, DCT, median, bits, dihedral variants.</summary>
    private PdqResult HashBuffer64(bool dihedral)
    {
        var quality = PdqStages.Quality(_buffer64);
        PdqStages.Dct64To16(_buffer64, _buffer16x64, _buffer16x16);
        var median = PdqStages.Median(_buffer16x16);
        var hash = PdqStages.ToHash(_buffer16x16, median);
        if (!dihedral)
        {
            return new PdqResult(hash, quality);
        }

        var variants = new PdqHash[8];
        PdqStages.DihedralHashes(_buffer16x16, median, _aux16x16, variants);
        return new PdqResult(hash, quality, variants);
    }

    private static void EnsureWeights(ref float[] weights, int taps)
    {
        if (weights.Length < 64 * taps)
        {
            weights = new float[64 * taps];
        }
    }

    private void EnsureBuffers(int length)
    {
        if (_full1.Length < length)
        {
            _full1 = GC.AllocateUninitializedArray<float>(length);
            _full2 = GC.AllocateUninitializedArray<float>(length);
        }
    }
}
