namespace Warden.Core.Hashing.Pdq;

/// <summary>How pixels are brought to the size the PDQ core filters.</summary>
public enum PdqResize
{
    /// <summary>
    /// Warden's default: average integer blocks so the short side stays at or above
    /// <see cref="PdqHasher.FastMinSide"/>, then the reference core. Close to <see cref="FullResolution"/>
    /// (the Jarosz filter averages far wider than a block) at a fraction of its cost.
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
    /// <summary>Short-side floor of the <see cref="PdqResize.Fast"/> block reduction.</summary>
    public const int FastMinSide = 256;

    private readonly float[] _buffer64 = new float[64 * 64];
    private readonly float[] _buffer16x64 = new float[16 * 64];
    private readonly float[] _buffer16x16 = new float[16 * 16];
    private readonly float[] _aux16x16 = new float[16 * 16];
    private float[] _full1 = [];
    private float[] _full2 = [];

    /// <summary>Hashes interleaved 8-bit pixels (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA).</summary>
    public PdqResult Hash(ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel, PdqResize resize = PdqResize.Fast, bool dihedral = false, int fastMinSide = FastMinSide)
    {
        int rows, cols;
        var grey = PdqStages.IsGrey(pixels, width, height, stride, bytesPerPixel);
        if (resize == PdqResize.Cli512 && (width > PdqStages.CliResizeDims || height > PdqStages.CliResizeDims))
        {
            rows = cols = PdqStages.CliResizeDims;
            EnsureBuffers(rows * cols);
            PdqStages.FillLumaNearest(pixels, width, height, stride, bytesPerPixel, cols, rows, _full1, grey);
        }
        else if (resize == PdqResize.Fast && FastReductionFactor(width, height, fastMinSide) is var factor and > 1)
        {
            EnsureBuffers(((width + factor - 1) / factor) * ((height + factor - 1) / factor));
            PdqStages.FillLumaBoxReduced(pixels, width, height, stride, bytesPerPixel, factor, _full1, out cols, out rows, grey);
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

    /// <summary>The integer block size the fast path averages over: keeps the short side ≥ <see cref="FastMinSide"/>.</summary>
    public static int FastReductionFactor(int width, int height, int minSide = FastMinSide) => Math.Max(1, Math.Min(width, height) / minSide);

    /// <summary>
    /// Hashes a float luma image (row-major, <paramref name="rows"/> x <paramref name="cols"/>) with the
    /// reference core. The luma span is copied; use <see cref="Hash"/> to avoid the copy.
    /// </summary>
    public PdqResult HashLuma(ReadOnlySpan<float> luma, int rows, int cols, bool dihedral = false)
    {
        EnsureBuffers(rows * cols);
        luma[..(rows * cols)].CopyTo(_full1);
        return HashLuma(rows, cols, dihedral);
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

        var quality = PdqStages.Quality(_buffer64);
        PdqStages.Dct64To16(_buffer64, _buffer16x64, _buffer16x16);
        var hash = PdqStages.ToHash(_buffer16x16);
        if (!dihedral)
        {
            return new PdqResult(hash, quality);
        }

        var variants = new PdqHash[8];
        variants[0] = hash;
        for (var v = 1; v < 8; v++)
        {
            PdqStages.DihedralDct((Dihedral)v, _buffer16x16, _aux16x16);
            variants[v] = PdqStages.ToHash(_aux16x16);
        }

        return new PdqResult(hash, quality, variants);
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
