namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// The blocks of one interleaved MCU, flattened (at most 10), so progressive DC scans can decode whole
/// runs of MCUs with the bit buffer held in registers instead of one call per block.
/// </summary>
internal sealed class JpegMcuLayout
{
    private readonly int[] _v;

    /// <summary>Lays out the MCU of a scan over components with the given sampling and coefficient arrays.</summary>
    public JpegMcuLayout(ReadOnlySpan<(int H, int V, int Stride, short[] Coefficients, JpegHuffmanTable? DcTable)> components)
    {
        var count = 0;
        foreach (var c in components)
        {
            count += c.H * c.V;
        }

        BlockCount = count;
        Component = new int[count];
        Coefficients = new short[count][];
        DcTables = new JpegHuffmanTable?[count];
        Offset = new int[count];
        McuStepX = new int[count];
        McuStepY = new int[count];
        AcTables = new JpegHuffmanTable?[count];
        Quant = new short[count][];
        Samples = new byte[count][];
        SampleStride = new int[count];
        Size = new int[count];
        _v = new int[count];
        SampleOffset = new int[count];
        SampleStepX = new int[count];
        SampleStepY = new int[count];
        var b = 0;
        for (var ci = 0; ci < components.Length; ci++)
        {
            var c = components[ci];
            for (var v = 0; v < c.V; v++)
            {
                for (var h = 0; h < c.H; h++, b++)
                {
                    Component[b] = ci;
                    Coefficients[b] = c.Coefficients;
                    DcTables[b] = c.DcTable;
                    Offset[b] = (v * c.Stride) + h;
                    McuStepX[b] = c.H;
                    McuStepY[b] = c.V * c.Stride;
                    _v[b] = c.V;
                }
            }
        }
    }

    /// <summary>
    /// For sequential scans: each block's AC table and, for blocks of components decoded through a reduced IDCT
    /// (Size 2 or 4 samples a side), where their samples go (Samples null and Size 1 for the others).
    /// </summary>
    public void SetSequential(ReadOnlySpan<(JpegHuffmanTable AcTable, short[]? Quant, byte[]? Samples, int SampleStride, int Size)> components)
    {
        var b = 0;
        for (var ci = 0; ci < components.Length; ci++)
        {
            var c = components[ci];
            var first = b;
            for (; b < BlockCount && Component[b] == ci; b++)
            {
                AcTables[b] = c.AcTable;
                Quant[b] = c.Quant;
                Samples[b] = c.Samples;
                SampleStride[b] = c.SampleStride;
                Size[b] = c.Samples is null ? 1 : c.Size;

                // Blocks of the MCU are row-major (H across, V down); each covers Size x Size samples.
                var h = McuStepX[b];
                var i = b - first;
                SampleOffset[b] = ((i / h) * c.Size * c.SampleStride) + ((i % h) * c.Size);
                SampleStepX[b] = h * c.Size;
                SampleStepY[b] = _v[b] * c.Size * c.SampleStride;
            }
        }
    }

    /// <summary>Writes each block's coefficient index in MCU (<paramref name="mx"/>, <paramref name="my"/>).</summary>
    public void RowStart(int my, int mx, Span<int> index)
    {
        for (var b = 0; b < BlockCount; b++)
        {
            index[b] = (my * McuStepY[b]) + (mx * McuStepX[b]) + Offset[b];
        }
    }

    /// <summary>As <see cref="RowStart(int, int, Span{int})"/>, with each reduced-IDCT block's sample index too.</summary>
    public void RowStart(int my, int mx, Span<int> index, Span<int> sampleIndex)
    {
        RowStart(my, mx, index);
        for (var b = 0; b < BlockCount; b++)
        {
            sampleIndex[b] = (my * SampleStepY[b]) + (mx * SampleStepX[b]) + SampleOffset[b];
        }
    }

    /// <summary>Blocks per MCU.</summary>
    public int BlockCount { get; }

    /// <summary>Index within the scan of each block's component (its predictor).</summary>
    public int[] Component { get; }

    /// <summary>Each block's component coefficient array.</summary>
    public short[][] Coefficients { get; }

    /// <summary>Each block's DC table (null in refinement scans, which use none).</summary>
    public JpegHuffmanTable?[] DcTables { get; }

    /// <summary>Each block's index in its array within MCU (0, 0).</summary>
    public int[] Offset { get; }

    /// <summary>Index step per MCU to the right.</summary>
    public int[] McuStepX { get; }

    /// <summary>Index step per MCU row.</summary>
    public int[] McuStepY { get; }

    /// <summary>Sequential scans: each block's AC table.</summary>
    public JpegHuffmanTable?[] AcTables { get; }

    /// <summary>Sequential scans: the natural-order quantisation table of 2x2 blocks, else null.</summary>
    public short[]?[] Quant { get; }

    /// <summary>Sequential scans: the sample plane of 2x2 blocks (one block per MCU), else null.</summary>
    public byte[]?[] Samples { get; }

    /// <summary>Sequential scans: samples per row of <see cref="Samples"/>.</summary>
    public int[] SampleStride { get; }

    /// <summary>Sequential scans: samples a side that each block's IDCT gives (1: DC only, no samples).</summary>
    public int[] Size { get; }

    /// <summary>Sequential scans: each reduced-IDCT block's sample index within MCU (0, 0).</summary>
    public int[] SampleOffset { get; }

    /// <summary>Sequential scans: sample index step per MCU to the right.</summary>
    public int[] SampleStepX { get; }

    /// <summary>Sequential scans: sample index step per MCU row.</summary>
    public int[] SampleStepY { get; }
}
