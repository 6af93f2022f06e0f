namespace Warden.Core.Tests;

/// <summary>
/// Writes a baseline Huffman JPEG straight from quantised coefficients, with any sampling factors (1-2), 8- or
/// 16-bit quantisation tables and restart intervals: what no encoder emits (4:4:0, luma sampled below chroma,
/// quantisers up to 65535, coefficients up to ±32767) but any file may hold. Its Huffman tables cover every symbol
/// (DC categories 0-15, AC run/size 0-15/1-15 plus EOB and ZRL), so any coefficient can be coded.
/// </summary>
internal static class JpegCoefficientWriter
{
    /// <summary>One frame component: sampling factors and its quantisation table (natural order).</summary>
    public sealed record Component(int H, int V, ushort[] Quant);

    /// <summary>
    /// Writes the file. <paramref name="coefficient"/> gives component c's block (bx, by) coefficient at zigzag index k
    /// (k = 0 is the DC value, not the difference).
    /// </summary>
    public static byte[] Write(int width, int height, IReadOnlyList<Component> components, int restartInterval, Func<int, int, int, int, int> coefficient)
    {
        var output = new List<byte>();
        void Marker(int code) => output.AddRange([0xFF, (byte)code]);
        void Segment(int code, List<byte> payload)
        {
            Marker(code);
            output.Add((byte)((payload.Count + 2) >> 8));
            output.Add((byte)(payload.Count + 2));
            output.AddRange(payload);
        }

        Marker(0xD8);
        for (var c = 0; c < components.Count; c++)
        {
            var q = components[c].Quant;
            var wide = q.Any(v => v > 255);
            var dqt = new List<byte> { (byte)((wide ? 0x10 : 0) | c) };
            for (var k = 0; k < 64; k++)
            {
                var v = q[ZigZag[k]];
                if (wide)
                {
                    dqt.Add((byte)(v >> 8));
                }

                dqt.Add((byte)v);
            }

            Segment(0xDB, dqt);
        }

        var hMax = components.Max(c => c.H);
        var vMax = components.Max(c => c.V);
        var sof = new List<byte> { 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, (byte)components.Count };
        for (var c = 0; c < components.Count; c++)
        {
            sof.AddRange([(byte)(c + 1), (byte)((components[c].H << 4) | components[c].V), (byte)c]);
        }

        Segment(0xC0, sof);

        // DC: 16 categories at 5 bits. AC: EOB, ZRL and run/size 0-15/1-15, 242 symbols at 8 bits.
        var dcSymbols = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        var acSymbols = new List<byte> { 0x00, 0xF0 };
        for (var r = 0; r < 16; r++)
        {
            for (var s = 1; s < 16; s++)
            {
                acSymbols.Add((byte)((r << 4) | s));
            }
        }

        var dht = new List<byte> { 0x00 };
        dht.AddRange(Counts(5, dcSymbols.Length));
        dht.AddRange(dcSymbols);
        dht.Add(0x10);
        dht.AddRange(Counts(8, acSymbols.Count));
        dht.AddRange(acSymbols);
        Segment(0xC4, dht);
        if (restartInterval > 0)
        {
            Segment(0xDD, [(byte)(restartInterval >> 8), (byte)restartInterval]);
        }

        var sos = new List<byte> { (byte)components.Count };
        for (var c = 0; c < components.Count; c++)
        {
            sos.AddRange([(byte)(c + 1), 0x00]);
        }

        sos.AddRange([0, 63, 0]);
        Segment(0xDA, sos);

        var bits = new BitWriter(output);
        var predictors = new int[components.Count];
        void Block(int c, int bx, int by)
        {
            var dc = coefficient(c, bx, by, 0);
            var diff = dc - predictors[c];
            predictors[c] = dc;
            var category = Category(diff);
            bits.Write(category, 5);
            bits.WriteValue(diff, category);
            var run = 0;
            for (var k = 1; k < 64; k++)
            {
                var v = coefficient(c, bx, by, k);
                if (v == 0)
                {
                    run++;
                    continue;
                }

                for (; run > 15; run -= 16)
                {
                    bits.Write(1, 8);
                }

                var size = Category(v);
                bits.Write(acSymbols.IndexOf((byte)((run << 4) | size)), 8);
                bits.WriteValue(v, size);
                run = 0;
            }

            if (run > 0)
            {
                bits.Write(0, 8);
            }
        }

        var units = 0;
        var nextRestart = 0;
        void Unit()
        {
            if (restartInterval > 0 && units > 0 && units % restartInterval == 0)
            {
                bits.Flush();
                Marker(0xD0 + nextRestart);
                nextRestart = (nextRestart + 1) & 7;
                Array.Clear(predictors);
            }

            units++;
        }

        if (components.Count == 1)
        {
            // Non-interleaved: the component's own block grid, one block per unit.
            var c = components[0];
            var blocksX = (((width * c.H) + (8 * hMax) - 1) / (8 * hMax));
            var blocksY = (((height * c.V) + (8 * vMax) - 1) / (8 * vMax));
            for (var by = 0; by < blocksY; by++)
            {
                for (var bx = 0; bx < blocksX; bx++)
                {
                    Unit();
                    Block(0, bx, by);
                }
            }
        }
        else
        {
            var mcusX = (width + (8 * hMax) - 1) / (8 * hMax);
            var mcusY = (height + (8 * vMax) - 1) / (8 * vMax);
            for (var my = 0; my < mcusY; my++)
            {
                for (var mx = 0; mx < mcusX; mx++)
                {
                    Unit();
                    for (var c = 0; c < components.Count; c++)
                    {
                        for (var v = 0; v < components[c].V; v++)
                        {
                            for (var h = 0; h < components[c].H; h++)
                            {
                                Block(c, (mx * components[c].H) + h, (my * components[c].V) + v);
                            }
                        }
                    }
                }
            }
        }

        bits.Flush();
        Marker(0xD9);
        return [.. output];
    }

    /// <summary>Zigzag index to natural position.</summary>
    public static readonly int[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55,
        62, 63,
    ];

    private static int Category(int v)
    {
        var a = Math.Abs(v);
        var n = 0;
        while (a > 0)
        {
            n++;
            a >>= 1;
        }

        return n;
    }

    /// <summary>A DHT's 16 counts: all <paramref name="symbols"/> at one code length.</summary>
    private static byte[] Counts(int length, int symbols)
    {
        var counts = new byte[16];
        counts[length - 1] = (byte)symbols;
        return counts;
    }

    private sealed class BitWriter(List<byte> output)
    {
        private int _buffer;
        private int _count;

        public void Write(int code, int length)
        {
            for (var i = length - 1; i >= 0; i--)
            {
                _buffer = (_buffer << 1) | ((code >> i) & 1);
                if (++_count == 8)
                {
                    Emit();
                }
            }
        }

        /// <summary>T.81's magnitude bits: v itself when positive, v - 1 (in <paramref name="size"/> bits) when negative.</summary>
        public void WriteValue(int v, int size) => Write(v >= 0 ? v : v + (1 << size) - 1, size);

        /// <summary>Pads the last byte with 1 bits.</summary>
        public void Flush()
        {
            while (_count != 0)
            {
                Write(1, 1);
            }
        }

        private void Emit()
        {
            output.Add((byte)_buffer);
            if ((byte)_buffer == 0xFF)
            {
                output.Add(0);
            }

            _buffer = 0;
            _count = 0;
        }
    }
}
