namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// The blocks of one interleaved MCU, flattened (at most 10), so progressive DC scans can decode whole
/// runs of MCUs with the bit buffer held in registers instead of one call per block.
/// </summary>
internal sealed class JpegMcuLayout
{
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
                }
            }
        }
    }

    /// <summary>
    /// For sequential scans: each block's AC table and, for blocks of components decoded through the 2x2 IDCT,
    /// where their samples go (Samples null for the others).
    /// </summary>
    public void SetSequential(ReadOnlySpan<(JpegHuffmanTable AcTable, short[]? Quant, byte[]? Samples, int SampleStride)> components)
    {
        var b = 0;
        for (var ci = 0; ci < components.Length; ci++)
        {
            var c = components[ci];
            for (; b < BlockCount && Component[b] == ci; b++)
            {
                AcTables[b] = c.AcTable;
                Quant[b] = c.Quant;
                Samples[b] = c.Samples;
                SampleStride[b] = c.SampleStride;
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
}
