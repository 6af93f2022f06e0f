using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Warden.Core.Imaging;
using Warden.Core.Imaging.Jpeg;

namespace Warden.Core.Tests;

/// <summary>
/// The 1/8 decoder skips AC codes several at a time (JpegHuffmanTable.SkipLookup) and shifts DC codes and their
/// magnitude bits in one step. Both must consume exactly the bits libjpeg's one-symbol-at-a-time decode_mcu does,
/// for any Huffman table a file may define: random canonical tables (codes from 1 to 16 bits, long codes past the
/// lookahead, one-bit ZRL or EOB, size-0 symbols that end a block), random symbol streams whose runs cross the end
/// of the block, 0xFF stuffing, and a truncated stream. The oracle is a plain encoder written here.
/// </summary>
public sealed class JpegEntropySkipTests
{
    public static Arbitrary<ScanCase> Cases() => Arb.From(
        from seed in Gen.Choose(0, int.MaxValue)
        from blocks in Gen.Choose(1, 300)
        from maxLength in Gen.Elements(3, 6, 8, 11, 12, 16)
        from endBias in Gen.Elements(0.02, 0.15, 0.5)
        select new ScanCase(seed, blocks, maxLength, endBias));

    [Property(MaxTest = 400, Arbitrary = [typeof(JpegEntropySkipTests)])]
    public void Run_decode_consumes_exactly_the_encoded_symbols(ScanCase c)
    {
        var (scan, dcTable, acTable, expected) = c.Build();
        var coefficients = new short[expected.Length];
        var predictor = 0;
        var reader = new JpegBitReader(scan, 0);
        reader.DecodeSequentialRun(dcTable, acTable, coefficients, ref predictor);
        Assert.Equal(expected, coefficients);

        // The scan's padding and then its marker come next: any bit too many or too few shows up here or above.
        Assert.Equal(scan.Length - 2, reader.FinishScan());
    }

    [Property(MaxTest = 150, Arbitrary = [typeof(JpegEntropySkipTests)])]
    public void Truncated_stream_is_a_typed_error_or_a_correct_prefix(ScanCase c)
    {
        var (scan, dcTable, acTable, expected) = c.Build();
        var cut = new Random(c.Seed).Next(0, scan.Length - 2);
        var truncated = scan[..cut];
        var coefficients = new short[expected.Length];
        var predictor = 0;
        try
        {
            var reader = new JpegBitReader(truncated, 0);
            reader.DecodeSequentialRun(dcTable, acTable, coefficients, ref predictor);
            reader.FinishScan();

            // Zero fill past the end can only decode when the cut removed padding alone.
            Assert.Equal(expected, coefficients);
        }
        catch (ImageDecodeException e)
        {
            Assert.True(e.Error is ImageDecodeError.Truncated or ImageDecodeError.Corrupt, e.Error.ToString());
        }
    }

    /// <summary>One generated scan: table shapes and symbol statistics from the seed.</summary>
    public sealed record ScanCase(int Seed, int Blocks, int MaxLength, double EndBias)
    {
        internal (byte[] Scan, JpegHuffmanTable Dc, JpegHuffmanTable Ac, short[] Expected) Build()
        {
            var rng = new Random(Seed);
            var dcSymbols = Enumerable.Range(0, 12).Where(_ => rng.Next(3) > 0).Select(i => (byte)i).ToList();
            if (dcSymbols.Count == 0)
            {
                dcSymbols.Add((byte)rng.Next(12));
            }

            var acSymbols = new HashSet<byte> { 0x00, 0xF0 };
            for (var i = rng.Next(1, 160); i > 0; i--)
            {
                var run = rng.Next(16);
                var size = rng.Next(20) == 0 ? 0 : rng.Next(1, 11);
                acSymbols.Add((byte)((run << 4) | size));
            }

            var (dcCounts, dcValues, dcCodes) = Canonical(dcSymbols.OrderBy(_ => rng.Next()).ToArray(), rng);
            var (acCounts, acValues, acCodes) = Canonical(acSymbols.OrderBy(_ => rng.Next()).ToArray(), rng);
            var dc = new JpegHuffmanTable(isDc: true);
            dc.Define(dcCounts, dcValues);
            dc.EnsureBuilt();
            var ac = new JpegHuffmanTable(isDc: false);
            ac.Define(acCounts, acValues);
            ac.EnsureBuilt();

            var writer = new BitWriter();
            var expected = new short[Blocks];
            var value = 0;
            var acList = acValues.ToArray();
            for (var b = 0; b < Blocks; b++)
            {
                var category = dcSymbols[rng.Next(dcSymbols.Count)];
                writer.Write(dcCodes[category]);
                var raw = category == 0 ? 0 : rng.Next(1 << category);
                writer.Write((raw, category));
                value += category == 0 ? 0 : raw >= 1 << (category - 1) ? raw : raw - (1 << category) + 1;
                expected[b] = (short)value;

                // Symbols until k passes 63, exactly as decode_mcu counts them (runs may overshoot the block).
                for (var k = 1; k < 64;)
                {
                    var symbol = rng.NextDouble() < EndBias ? (byte)0 : acList[rng.Next(acList.Length)];
                    writer.Write(acCodes[symbol]);
                    var size = symbol & 15;
                    writer.Write((rng.Next(1 << size), size));
                    var run = symbol >> 4;
                    k += size != 0 ? run + 1 : run == 15 ? 16 : 64;
                }
            }

            return ([.. writer.Finish(), 0xFF, 0xD9], dc, ac, expected);
        }

        /// <summary>
        /// Random code lengths (up to <see cref="MaxLength"/> where they fit, else longer) for the symbols, and their
        /// canonical codes (T.81 Annex C), leaving the all-ones code unused as a valid table must.
        /// </summary>
        private (byte[] Counts, byte[] Values, Dictionary<byte, (int Code, int Length)> Codes) Canonical(byte[] symbols, Random rng)
        {
            var counts = new byte[16];
            var assigned = 0;
            var code = 0;
            for (var length = 1; length <= 16 && assigned < symbols.Length; length++)
            {
                var room = (1 << length) - 1 - code;
                var left = symbols.Length - assigned;

                var take = length == 16 ? Math.Min(room, left) : rng.Next(0, Math.Min(room, left) + 1);
                if (length >= MaxLength)
                {
                    take = Math.Min(room, left);
                }

                // Keep room for the rest: each code left free here can hold 2^(16 - length) codes of 16 bits.
                while (take > 0 && ((long)(room - take) << (16 - length)) < left - take)
                {
                    take--;
                }

                counts[length - 1] = (byte)take;
                assigned += take;
                code = (code + take) << 1;
            }

            var values = symbols[..assigned];
            var codes = new Dictionary<byte, (int, int)>();
            code = 0;
            var index = 0;
            for (var length = 1; length <= 16; length++)
            {
                for (var i = 0; i < counts[length - 1]; i++)
                {
                    codes[values[index++]] = (code++, length);
                }

                code <<= 1;
            }

            return (counts, values, codes);
        }
    }

    /// <summary>MSB-first bit writer with JPEG byte stuffing and 1-bit padding.</summary>
    private sealed class BitWriter
    {
        private readonly List<byte> _bytes = [];
        private int _accumulator;
        private int _bits;

        public void Write((int Value, int Length) code)
        {
            for (var i = code.Length - 1; i >= 0; i--)
            {
                _accumulator = (_accumulator << 1) | ((code.Value >> i) & 1);
                if (++_bits == 8)
                {
                    Emit();
                }
            }
        }

        public byte[] Finish()
        {
            while (_bits != 0)
            {
                Write((1, 1));
            }

            return [.. _bytes];
        }

        private void Emit()
        {
            var b = (byte)_accumulator;
            _bytes.Add(b);
            if (b == 0xFF)
            {
                _bytes.Add(0);
            }

            _accumulator = 0;
            _bits = 0;
        }
    }
}
