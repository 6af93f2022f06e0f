using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Hashing.Video;

/// <summary>
/// PDQ of one RGB24 video frame exactly as vPDQ's reference hashes it: float luma from R, G, B (never the
/// grey shortcut the image path takes, since the reference always converts frames to RGB24), the Jarosz
/// filter and decimation at the frame's own size (skipped for an exact 64x64 frame), quality, DCT, median.
/// Also gives the 256 DCT floats before thresholding (TMK's PDQF frame feature). Holds its buffers; one
/// instance per thread.
/// </summary>
public sealed class VideoFrameHasher
{
    private readonly float[] _buffer64 = new float[64 * 64];
    private readonly float[] _buffer16x64 = new float[16 * 64];
    private readonly float[] _buffer16x16 = new float[16 * 16];
    private float[] _full1 = [];
    private float[] _full2 = [];
    private float[] _tile = [];
    private float[] _tileOut = [];

    /// <summary>Hashes a packed RGB24 frame (<paramref name="width"/> x 3 bytes per row).</summary>
    public PdqResult Hash(ReadOnlySpan<byte> rgb, int width, int height)
    {
        if (width < PdqStages.MinHashableDim || height < PdqStages.MinHashableDim)
        {
            return new PdqResult(PdqHash.Zero, 0);
        }

        Core(rgb, width, height);
        var quality = PdqStages.Quality(_buffer64);
        PdqStages.Dct64To16(_buffer64, _buffer16x64, _buffer16x16);
        return new PdqResult(PdqStages.ToHash(_buffer16x16), quality);
    }

    /// <summary>The PDQF feature of a packed RGB24 frame: the 256 DCT floats, written to <paramref name="feature"/>.</summary>
    public void Features(ReadOnlySpan<byte> rgb, int width, int height, Span<float> feature)
    {
        Core(rgb, width, height);
        PdqStages.Dct64To16(_buffer64, _buffer16x64, _buffer16x16);
        _buffer16x16.CopyTo(feature);
    }

    private void Core(ReadOnlySpan<byte> rgb, int width, int height)
    {
        var n = width * height;
        if (_full1.Length < n)
        {
            _full1 = GC.AllocateUninitializedArray<float>(n);
            _full2 = GC.AllocateUninitializedArray<float>(n);
        }

        var full1 = _full1.AsSpan(0, n);
        PdqStages.FillLuma(rgb, width, height, width * 3, 3, full1, grey: false);
        if (width == 64 && height == 64)
        {
            full1.CopyTo(_buffer64);
            return;
        }

        // PdqStages.JaroszFilter with the row pass eight rows at a time (same floats, see RowBox).
        if (_tile.Length < RowBox.TileLength(width))
        {
            _tile = new float[RowBox.TileLength(width)];
            _tileOut = new float[RowBox.TileLength(width)];
        }

        var full2 = _full2.AsSpan(0, n);
        var alongRows = PdqStages.JaroszWindowSize(width, 64);
        var alongCols = PdqStages.JaroszWindowSize(height, 64);
        for (var pass = 0; pass < PdqStages.JaroszPasses; pass++)
        {
            RowBox.Filter(full1, full2, height, width, alongRows, _tile, _tileOut);
            PdqStages.BoxAlongCols(full2, full1, height, width, alongCols);
        }

        PdqStages.Decimate(full1, height, width, _buffer64);
    }
}
