using System.Buffers.Binary;

namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// Decodes a JPEG to its 1/8-scale image (one pixel per 8x8 block, the block mean) from DC coefficients
/// alone, with no IDCT: the same pixels as libjpeg-turbo's 1/8 scaled decode of the luma (its
/// <c>jpeg_idct_1x1</c>), chroma replicated from its own block grid, except 4:2:0 chroma of sequential files,
/// which gets libjpeg-turbo's 2x2 reduced IDCT as there (so baseline output is libvips' byte for byte). Progressive files are decoded from
/// their DC scans only; AC scans are stepped over by searching for the next marker, which is what makes a
/// large progressive photo cost milliseconds. Sequential Huffman files still have every AC code decoded to
/// stay in step, through a lookahead table that yields "bits to skip" without extending any value.
/// At 1/4 (sequential files only) it is libjpeg-turbo's 1/4 scaled decode: the 2x2 and 4x4 reduced IDCTs
/// (<see cref="JpegIdct"/>), fancy upsampling (<see cref="JpegUpsample"/>) and jdcolor.c's tables, byte-identical
/// to libvips' shrink-on-load.
/// </summary>
/// <remarks>
/// Supported: 8-bit Huffman SOF0/SOF1/SOF2, 1 component (grey) or 3 (YCbCr, or RGB per Adobe transform 0
/// or component ids 'R','G','B'), sampling factors 1..2, interleaved and non-interleaved scans, restart
/// intervals. Everything else valid-looking (arithmetic coding, 12/16-bit, lossless, hierarchical, 2 or 4+
/// components, DNL, duplicate component ids, other Adobe transforms) returns false so that the caller
/// can use libvips. Memory beyond the input is O(blocks): one short per block per component.
/// </remarks>
internal static class JpegDcDecoder
{
    private const int MaxBlocksInMcu = 10;

    // libjpeg's IDCT output range limiter, indexed by (value & 1023): values wrap rather than clamp
    // beyond ±512, and matching that keeps even absurd quantisers pixel-identical to libvips.
    internal static readonly byte[] IdctRangeLimit = BuildIdctRangeLimit();

    // YCbCr → RGB in libjpeg's fixed point (16 fractional bits, jdcolor.c's tables), so colour
    // conversion of the same samples gives the same bytes.
    private static readonly int[] CrToR = new int[256];
    private static readonly int[] CbToB = new int[256];
    private static readonly int[] CrToG = new int[256];
    private static readonly int[] CbToG = new int[256];

#pragma warning disable CA1810 // The four tables are built together in one loop.
    static JpegDcDecoder()
#pragma warning restore CA1810
    {
        const int scaleBits = 16;
        const int half = 1 << (scaleBits - 1);
        static int Fix(double x) => (int)((x * (1 << scaleBits)) + 0.5);
        for (var i = 0; i < 256; i++)
        {
            var x = i - 128;
            CrToR[i] = ((Fix(1.40200) * x) + half) >> scaleBits;
            CbToB[i] = ((Fix(1.77200) * x) + half) >> scaleBits;
            CrToG[i] = -Fix(0.71414) * x;
            CbToG[i] = (-Fix(0.34414) * x) + half;
        }
    }

    /// <summary>
    /// Decodes <paramref name="jpeg"/> to its 1/8-scale image. Returns false, without throwing, when the file
    /// looks valid but uses something this decoder does not handle (see the type's remarks).
    /// </summary>
    /// <exception cref="ImageDecodeException">Empty, truncated, corrupt or over-limit input.</exception>
    public static bool TryDecode(ReadOnlySpan<byte> jpeg, ImageLimits limits, out DcImage? image) => TryDecode(jpeg, limits, 8, out image);

    /// <summary>
    /// Decodes <paramref name="jpeg"/> to its 1/<paramref name="scale"/> image (8: as above; 4: sequential files only,
    /// libjpeg-turbo's 1/4 scaled decode, <c>ceil(width / 4)</c> by <c>ceil(height / 4)</c>). Returns false, without
    /// throwing, when the file looks valid but uses something this decoder does not handle at that scale.
    /// </summary>
    /// <exception cref="ImageDecodeException">Empty, truncated, corrupt or over-limit input.</exception>
    public static bool TryDecode(ReadOnlySpan<byte> jpeg, ImageLimits limits, int scale, out DcImage? image)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (scale is not (4 or 8))
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "Only 1/4 and 1/8 are supported.");
        }

        image = null;
        var decoder = new Decoder(limits, headerOnly: false, scale);
        try
        {
            if (!decoder.Run(jpeg))
            {
                return false;
            }

            image = decoder.Render();
            return true;
        }
        finally
        {
            // On every exit, exceptions included: the pooled planes and tables go back (see JpegScratch).
            decoder.ReturnBuffers();
        }
    }

    /// <summary>
    /// Reads the frame header (size, components, progressive) without decoding, to choose a path.
    /// Returns false, without throwing, when no well-formed frame header precedes the image data.
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> jpeg, out JpegHeaderInfo info)
    {
        info = new JpegHeaderInfo(0, 0, 0, false, false);
        var decoder = new Decoder(ImageLimits.Default, headerOnly: true, 8);
        try
        {
            decoder.Run(jpeg);
        }
        catch (ImageDecodeException)
        {
            return false;
        }

        if (decoder.Header is null)
        {
            return false;
        }

        info = decoder.Header;
        return true;
    }

    private static byte[] BuildIdctRangeLimit()
    {
        var table = new byte[1024];
        for (var i = 0; i < 1024; i++)
        {
            // Index i stands for the signed value i (0..511) or i - 1024 (-512..-1), centred on 128.
            var v = (i < 512 ? i : i - 1024) + 128;
            table[i] = (byte)(i is >= 512 and < 896 ? 0 : Math.Clamp(v, 0, 255));
        }

        return table;
    }

    private static ImageDecodeException Corrupt(string message) => new(ImageDecodeError.Corrupt, message);

    private static ImageDecodeException Truncated(string message) => new(ImageDecodeError.Truncated, message);

    /// <summary>What a scan does with each block.</summary>
    private enum ScanMode
    {
        /// <summary>Sequential: DC difference plus all AC codes.</summary>
        Sequential,

        /// <summary>Progressive DC first scan: DC difference, point-transformed.</summary>
        DcFirst,

        /// <summary>Progressive DC refinement: one raw bit.</summary>
        DcRefine,
    }

    /// <summary>One frame component and the DC coefficients decoded for it.</summary>
    private sealed class Component
    {
        public int Id;
        public int H;
        public int V;
        public int QuantTable;

        /// <summary>DC quantiser latched when the component first appears in a scan (as libjpeg does), or -1.</summary>
        public int QuantDc = -1;

        /// <summary>
        /// Samples a side that each block decodes to, as libjpeg-turbo scales the component's IDCT
        /// (jdmaster.c): 1 at 1/8 (DC only, no IDCT) except 4:2:0 chroma of sequential files, which gets the 2x2
        /// reduced IDCT (jpeg_idct_2x2, from AC terms too); at 1/4 2 (jpeg_idct_2x2), or 4 (jpeg_idct_4x4) where the
        /// component's sampling is half the maximum both ways. Above 1, <see cref="Samples"/> holds the IDCT output.
        /// </summary>
        public int Size = 1;

        /// <summary>The whole quantisation table in natural order, latched with <see cref="QuantDc"/> (<see cref="Size"/> above 1 only).</summary>
        public short[]? Quant;

        /// <summary>IDCT output, (<see cref="Size"/> × <see cref="Stride"/>) samples a row (<see cref="Size"/> above 1 only).</summary>
        public byte[] Samples = [];

        /// <summary>Blocks per row of the MCU-padded coefficient array.</summary>
        public int Stride;
        public int Rows;

        /// <summary>Blocks that hold image data (the extent of a non-interleaved scan).</summary>
        public int WidthInBlocks;
        public int HeightInBlocks;

        public short[] Coefficients = [];
        public int Predictor;
        public JpegHuffmanTable? DcTable;
        public JpegHuffmanTable? AcTable;

        /// <summary>Lowest DC bit known so far: -1 before any DC data, 0 when complete.</summary>
        public int DcKnownBit = -1;
    }

    /// <summary>Marker parsing and scan decoding state for one file.</summary>
    private sealed class Decoder(ImageLimits limits, bool headerOnly, int scale)
    {
        private readonly int[] _quantDc = [-1, -1, -1, -1];
        private readonly short[]?[] _quant = new short[4][];
        private readonly JpegHuffmanTable?[] _dcTables = new JpegHuffmanTable?[4];
        private readonly JpegHuffmanTable?[] _acTables = new JpegHuffmanTable?[4];
        private Component[] _components = [];
        private bool _haveFrame;
        private bool _progressive;
        private int _width;
        private int _height;
        private int _hMax;
        private int _vMax;
        private int _mcusX;
        private int _mcusY;
        private int _restartInterval;
        private bool _sawJfif;
        private bool _sawAdobe;
        private int _adobeTransform;
        private bool _scanSeen;
        private bool _rgb;

        public JpegHeaderInfo? Header { get; private set; }

        /// <summary>Returns every pooled array (planes, Huffman lookups) to the pool; the decoder is unusable after.</summary>
        public void ReturnBuffers()
        {
            foreach (var c in _components)
            {
                JpegScratch.Return(c.Coefficients);
                JpegScratch.Return(c.Samples);
                c.Coefficients = [];
                c.Samples = [];
            }

            foreach (var t in _dcTables)
            {
                t?.ReturnBuffers();
            }

            foreach (var t in _acTables)
            {
                t?.ReturnBuffers();
            }
        }

        /// <summary>Parses and decodes; false when unsupported. In header-only mode stops after the frame header.</summary>
        public bool Run(ReadOnlySpan<byte> data)
        {
            if (data.Length == 0)
            {
                throw new ImageDecodeException(ImageDecodeError.Empty, "The file is empty.");
            }

            if (data[0] != 0xFF || (data.Length >= 2 && data[1] != 0xD8))
            {
                throw Corrupt("The data does not start with a JPEG SOI marker.");
            }

            if (data.Length < 2)
            {
                throw Truncated("The JPEG data ends inside its SOI marker.");
            }

            var position = 2;
            while (true)
            {
                var marker = NextMarker(data, ref position);
                if (marker < 0)
                {
                    // No EOI is fine once every component's DC is complete (checked after each scan).
                    throw Truncated(_haveFrame ? "The JPEG data ends before its image data is complete." : "The JPEG data ends before its frame header.");
                }

                switch (marker)
                {
                    case 0xD8:
                        throw Corrupt("A second SOI marker.");
                    case 0xD9:
                        if (!_scanSeen)
                        {
                            throw Corrupt("EOI before any image data.");
                        }

                        foreach (var c in _components)
                        {
                            if (c.DcKnownBit < 0)
                            {
                                throw Truncated("EOI before every component's image data.");
                            }
                        }

                        return true;
                    case 0xC0 or 0xC1 or 0xC2:
                        {
                            var supported = ReadFrame(Segment(data, ref position), marker == 0xC2);
                            if (headerOnly || !supported)
                            {
                                return supported;
                            }

                            if (scale != 8 && _progressive)
                            {
                                // Only the DC scans are read: at 1/4 every AC scan would be needed.
                                return false;
                            }

                            break;
                        }

                    case 0xC3 or (>= 0xC5 and <= 0xC7) or (>= 0xC9 and <= 0xCB) or (>= 0xCD and <= 0xCF):
                        // Lossless, hierarchical or arithmetic-coded frames: libvips handles them.
                        if (headerOnly)
                        {
                            ReadFrameHeaderOnly(Segment(data, ref position), progressive: marker is 0xC6 or 0xCA or 0xCE);
                        }

                        return false;
                    case 0xC8 or 0xDC or 0xDE or 0xDF or 0xF7:
                        // JPG extension, DNL, DHP/EXP (hierarchical), JPEG-LS: not ours.
                        return false;
                    case 0xC4:
                        ReadHuffmanTables(Segment(data, ref position));
                        break;
                    case 0xDB:
                        ReadQuantTables(Segment(data, ref position));
                        break;
                    case 0xDD:
                        {
                            var p = Segment(data, ref position);
                            if (p.Length != 2)
                            {
                                throw Corrupt("A DRI segment has the wrong length.");
                            }

                            _restartInterval = BinaryPrimitives.ReadUInt16BigEndian(p);
                            break;
                        }

                    case 0xDA:
                        {
                            if (!_haveFrame)
                            {
                                throw Corrupt("A scan precedes the frame header.");
                            }

                            if (headerOnly)
                            {
                                return false;
                            }

                            if (!_scanSeen && !ChooseColourSpace())
                            {
                                return false;
                            }

                            _scanSeen = true;
                            DecodeScan(data, Segment(data, ref position), ref position);
                            if (Complete())
                            {
                                // Every DC coefficient is final: the rest of the file (AC refinements, EOI) is not needed.
                                return true;
                            }

                            break;
                        }

                    case 0xE0:
                        {
                            var p = Segment(data, ref position);
                            _sawJfif |= !_scanSeen && p.Length >= 14 && p[..5].SequenceEqual("JFIF\0"u8);
                            break;
                        }

                    case 0xEE:
                        {
                            var p = Segment(data, ref position);
                            if (!_scanSeen && p.Length >= 12 && p[..5].SequenceEqual("Adobe"u8))
                            {
                                _sawAdobe = true;
                                _adobeTransform = p[11];
                            }

                            break;
                        }

                    case (>= 0xD0 and <= 0xD7) or 0x01:
                        // RSTn or TEM outside entropy data carry no parameters; libjpeg ignores them too.
                        break;
                    case (>= 0xE1 and <= 0xEF) or 0xFE or 0xCC or (>= 0xF0 and <= 0xFD):
                        // APPn, COM, DAC (arithmetic only) and JPG extensions: skipped by length.
                        Segment(data, ref position);
                        break;
                    default:
                        throw Corrupt("An unknown JPEG marker.");
                }
            }
        }

        /// <summary>The 1/8-scale pixels from the decoded DC coefficients.</summary>
        public DcImage Render()
        {
            if (scale == 4)
            {
                return RenderQuarter();
            }

            var planes = new byte[_components.Length][];
            try
            {
                return RenderEighth(planes);
            }
            finally
            {
                for (var ci = 0; ci < planes.Length; ci++)
                {
                    // Size-2 components lend their IDCT samples, which ReturnBuffers gives back.
                    if (planes[ci] is { } plane && _components[ci].Size != 2)
                    {
                        JpegScratch.Return(plane);
                    }
                }
            }
        }

        /// <summary>The 1/8 image from the DC coefficients (or the 2x2 IDCT's samples), through pooled planes filled into <paramref name="planes"/>.</summary>
        private DcImage RenderEighth(byte[][] planes)
        {
            var width = (_width + 7) / 8;
            var height = (_height + 7) / 8;
            for (var ci = 0; ci < _components.Length; ci++)
            {
                var c = _components[ci];
                if (c.Size == 2)
                {
                    planes[ci] = c.Samples;
                    continue;
                }

                // libjpeg-turbo's SIMD builds multiply in 16 bits (ISLOW_MULT_TYPE is short), so a 16-bit
                // quantiser above 32767 acts negative there; do the same.
                var quant = (int)(short)c.QuantDc;
                var length = c.Stride * c.Rows;
                var plane = planes[ci] = JpegScratch.Rent<byte>(length);
                var coefficients = c.Coefficients;
                for (var i = 0; i < length; i++)
                {
                    // jpeg_idct_1x1: DESCALE(coef * quant, 3), then the range limiter.
                    plane[i] = IdctRangeLimit[(((coefficients[i] * quant) + 4) >> 3) & 1023];
                }
            }

            // Sampling factors are 1 or 2, so a component is at full or half the output resolution:
            // shifts, not divisions, map an output pixel to its block.
            if (_components.Length == 1)
            {
                var c = _components[0];
                var grey = new byte[width * height];
                for (var y = 0; y < height; y++)
                {
                    var src = planes[0].AsSpan((y >> ShiftY(c)) * PlaneStride(c));
                    var dst = grey.AsSpan(y * width, width);
                    var shift = ShiftX(c);
                    for (var x = 0; x < dst.Length; x++)
                    {
                        dst[x] = src[x >> shift];
                    }
                }

                return new DcImage(width, height, 1, grey);
            }

            var pixels = new byte[width * height * 3];
            var c0 = _components[0];
            var c1 = _components[1];
            var c2 = _components[2];
            int sx0 = ShiftX(c0), sx1 = ShiftX(c1), sx2 = ShiftX(c2);
            var rgb = _rgb;
            for (var y = 0; y < height; y++)
            {
                var p0 = planes[0].AsSpan((y >> ShiftY(c0)) * PlaneStride(c0));
                var p1 = planes[1].AsSpan((y >> ShiftY(c1)) * PlaneStride(c1));
                var p2 = planes[2].AsSpan((y >> ShiftY(c2)) * PlaneStride(c2));
                var dst = pixels.AsSpan(y * width * 3, width * 3);
                for (int x = 0, o = 0; x < width; x++, o += 3)
                {
                    // Chroma below luma resolution is replicated (nearest), not interpolated.
                    int a = p0[x >> sx0];
                    int b = p1[x >> sx1];
                    int d = p2[x >> sx2];
                    if (rgb)
                    {
                        dst[o] = (byte)a;
                        dst[o + 1] = (byte)b;
                        dst[o + 2] = (byte)d;
                    }
                    else
                    {
                        dst[o] = (byte)Math.Clamp(a + CrToR[d], 0, 255);
                        dst[o + 1] = (byte)Math.Clamp(a + ((CbToG[b] + CrToG[d]) >> 16), 0, 255);
                        dst[o + 2] = (byte)Math.Clamp(a + CbToB[b], 0, 255);
                    }
                }
            }

            return new DcImage(width, height, 3, pixels);
        }

        /// <summary>
        /// The 1/4-scale image (libjpeg's output size, <c>ceil(width / 4)</c> by <c>ceil(height / 4)</c>) from the IDCT
        /// planes: a component already at the output's resolution is used as it is, one at half of it is brought up
        /// by libjpeg-turbo's fancy upsampling (jdsample.c: h2v1, h1v2, h2v2; plain replication where a component is
        /// at most 2 samples wide), then jdcolor.c's YCbCr to RGB.
        /// </summary>
        private DcImage RenderQuarter()
        {
            var width = (_width + 3) / 4;
            var height = (_height + 3) / 4;
            var count = _components.Length;
            var planes = new byte[count][];
            var strides = new int[count];
            try
            {
                return RenderQuarter(planes, strides, width, height);
            }
            finally
            {
                for (var ci = 0; ci < count; ci++)
                {
                    // Upsampled planes are rented here; a component's own samples go back in ReturnBuffers.
                    if (planes[ci] is { } plane && !ReferenceEquals(plane, _components[ci].Samples))
                    {
                        JpegScratch.Return(plane);
                    }
                }
            }
        }

        /// <summary><see cref="RenderQuarter()"/> into the caller's <paramref name="planes"/> (so it can return pooled ones).</summary>
        private DcImage RenderQuarter(byte[][] planes, int[] strides, int width, int height)
        {
            const int minimum = 2;
            var count = _components.Length;
            for (var ci = 0; ci < count; ci++)
            {
                var c = _components[ci];
                var hIn = c.H * c.Size / minimum;
                var vIn = c.V * c.Size / minimum;
                var source = c.Samples;
                var stride = c.Size * c.Stride;
                if (hIn == _hMax && vIn == _vMax)
                {
                    planes[ci] = source;
                    strides[ci] = stride;
                    continue;
                }

                // The component's own sample extent (jdmaster.c's downsampled_width/height): edges replicate from here.
                var dw = (int)((((long)_width * c.H * c.Size) + (_hMax * 8) - 1) / (_hMax * 8));
                var dh = (int)((((long)_height * c.V * c.Size) + (_vMax * 8) - 1) / (_vMax * 8));
                var up = planes[ci] = JpegScratch.Rent<byte>(width * height);
                if (hIn * 2 == _hMax && vIn == _vMax)
                {
                    JpegUpsample.H2V1(source, stride, dw, up, width, height, fancy: dw > 2);
                }
                else if (hIn == _hMax && vIn * 2 == _vMax)
                {
                    JpegUpsample.H1V2(source, stride, dh, up, width, height);
                }
                else if (hIn * 2 == _hMax && vIn * 2 == _vMax)
                {
                    JpegUpsample.H2V2(source, stride, dw, dh, up, width, height, fancy: dw > 2);
                }
                else
                {
                    // Sampling factors are 1 or 2 (ReadFrame), which leaves only the cases above.
                    throw new InvalidOperationException("Unexpected sampling at 1/4.");
                }

                planes[ci] = up;
                strides[ci] = width;
            }

            if (count == 1)
            {
                var grey = new byte[width * height];
                for (var y = 0; y < height; y++)
                {
                    planes[0].AsSpan(y * strides[0], width).CopyTo(grey.AsSpan(y * width));
                }

                return new DcImage(width, height, 1, grey);
            }

            var pixels = new byte[width * height * 3];
            for (var y = 0; y < height; y++)
            {
                var dst = pixels.AsSpan(y * width * 3, width * 3);
                var p0 = planes[0].AsSpan(y * strides[0], width);
                var p1 = planes[1].AsSpan(y * strides[1], width);
                var p2 = planes[2].AsSpan(y * strides[2], width);
                if (_rgb)
                {
                    for (int x = 0, o = 0; x < width; x++, o += 3)
                    {
                        dst[o] = p0[x];
                        dst[o + 1] = p1[x];
                        dst[o + 2] = p2[x];
                    }
                }
                else
                {
                    YccToRgb(p0, p1, p2, dst);
                }
            }

            return new DcImage(width, height, 3, pixels);
        }

        /// <summary>jdcolor.c's ycc_rgb_convert for one row, with its tables and clamp.</summary>
        private static void YccToRgb(ReadOnlySpan<byte> y, ReadOnlySpan<byte> cb, ReadOnlySpan<byte> cr, Span<byte> dst)
        {
            var crToR = CrToR;
            var cbToB = CbToB;
            var crToG = CrToG;
            var cbToG = CbToG;
            for (int x = 0, o = 0; x < y.Length; x++, o += 3)
            {
                int a = y[x];
                int b = cb[x];
                int d = cr[x];
                dst[o] = (byte)Math.Clamp(a + crToR[d], 0, 255);
                dst[o + 1] = (byte)Math.Clamp(a + ((cbToG[b] + crToG[d]) >> 16), 0, 255);
                dst[o + 2] = (byte)Math.Clamp(a + cbToB[b], 0, 255);
            }
        }

        /// <summary>0 when the component's samples are at the output's horizontal resolution, 1 when half of it.</summary>
        private int ShiftX(Component c) => c.Size == 2 ? 0 : (_hMax / c.H) - 1;

        /// <summary>0 when the component's samples are at the output's vertical resolution, 1 when half of it.</summary>
        private int ShiftY(Component c) => c.Size == 2 ? 0 : (_vMax / c.V) - 1;

        /// <summary>Samples per row of the component's plane.</summary>
        private static int PlaneStride(Component c) => c.Size * c.Stride;

        /// <summary>
        /// Finds the next marker from <paramref name="position"/> (skipping fill bytes and, as libjpeg does,
        /// stray bytes before it); returns its code with the position just after it, or -1 at the end of the data.
        /// </summary>
        private static int NextMarker(ReadOnlySpan<byte> data, ref int position)
        {
            while (position < data.Length)
            {
                var found = data[position..].IndexOf((byte)0xFF);
                if (found < 0)
                {
                    break;
                }

                var p = position + found + 1;
                while (p < data.Length && data[p] == 0xFF)
                {
                    p++;
                }

                if (p >= data.Length)
                {
                    break;
                }

                position = p + 1;
                if (data[p] != 0x00)
                {
                    return data[p];
                }
            }

            position = data.Length;
            return -1;
        }

        /// <summary>The payload of the length-prefixed segment at <paramref name="position"/>, which moves past it.</summary>
        private static ReadOnlySpan<byte> Segment(ReadOnlySpan<byte> data, ref int position)
        {
            if (position + 2 > data.Length)
            {
                throw Truncated("The JPEG data ends inside a marker segment.");
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(data[position..]);
            if (length < 2)
            {
                throw Corrupt("A marker segment has an invalid length.");
            }

            if (position + length > data.Length)
            {
                throw Truncated("The JPEG data ends inside a marker segment.");
            }

            var payload = data.Slice(position + 2, length - 2);
            position += length;
            return payload;
        }

        private void ReadFrameHeaderOnly(ReadOnlySpan<byte> p, bool progressive)
        {
            if (p.Length >= 6)
            {
                Header = new JpegHeaderInfo(BinaryPrimitives.ReadUInt16BigEndian(p[3..]), BinaryPrimitives.ReadUInt16BigEndian(p[1..]), p[5], progressive, false);
            }
        }

        /// <summary>Parses SOF0/1/2; returns false when the frame is valid but unsupported.</summary>
        private bool ReadFrame(ReadOnlySpan<byte> p, bool progressive)
        {
            if (_haveFrame)
            {
                throw Corrupt("A second frame header.");
            }

            if (p.Length < 6)
            {
                throw Corrupt("A frame header is too short.");
            }

            var precision = p[0];
            var height = BinaryPrimitives.ReadUInt16BigEndian(p[1..]);
            var width = BinaryPrimitives.ReadUInt16BigEndian(p[3..]);
            var count = p[5];
            if (count == 0 || p.Length != 6 + (3 * count))
            {
                throw Corrupt("A frame header has the wrong length or no components.");
            }

            if (precision is not (8 or 12 or 16))
            {
                throw Corrupt($"Invalid sample precision {precision}.");
            }

            if (width == 0)
            {
                throw Corrupt("The frame width is zero.");
            }

            var supported = precision == 8 && height != 0 && count is 1 or 3;
            var components = new Component[count];
            for (var i = 0; i < count; i++)
            {
                var entry = p.Slice(6 + (3 * i), 3);
                var c = new Component { Id = entry[0], H = entry[1] >> 4, V = entry[1] & 15, QuantTable = entry[2] };
                if (c.H is < 1 or > 4 || c.V is < 1 or > 4 || c.QuantTable > 3)
                {
                    throw Corrupt("A frame component has invalid sampling factors or quantisation table.");
                }

                for (var j = 0; j < i; j++)
                {
                    // Repeated ids are out of spec; libjpeg-turbo renames them, we leave that to it.
                    supported &= components[j].Id != c.Id;
                }

                supported &= c.H <= 2 && c.V <= 2;
                components[i] = c;
            }

            Header = new JpegHeaderInfo(width, height, count, progressive, supported && HeaderColourSupported(count));
            if (!supported || headerOnly)
            {
                return supported;
            }

            if ((long)width * height > limits.MaxPixels)
            {
                throw new ImageDecodeException(ImageDecodeError.TooManyPixels, $"The image declares {width}x{height} pixels; the limit is {limits.MaxPixels} pixels.");
            }

            _width = width;
            _height = height;
            _progressive = progressive;
            _components = components;
            _hMax = components.Max(c => c.H);
            _vMax = components.Max(c => c.V);
            _mcusX = (width + (8 * _hMax) - 1) / (8 * _hMax);
            _mcusY = (height + (8 * _vMax) - 1) / (8 * _vMax);
            foreach (var c in components)
            {
                c.WidthInBlocks = (int)((((long)width * c.H) + (8L * _hMax) - 1) / (8L * _hMax));
                c.HeightInBlocks = (int)((((long)height * c.V) + (8L * _vMax) - 1) / (8L * _vMax));
                c.Stride = _mcusX * c.H;
                c.Rows = _mcusY * c.V;
                c.Coefficients = JpegScratch.Rent<short>(c.Stride * c.Rows);

                // libjpeg-turbo (jpeg_calc_output_dimensions) scales a component's IDCT up from the minimum
                // (1 at 1/8, 2 at 1/4) while its sampling divides the maximum by twice the size in both directions:
                // at 1/8, with factors of 1 or 2, exactly the 1x1 components of a 2x2 frame. Progressive files keep
                // replication at 1/8: their AC scans are skipped, not decoded.
                var minimum = 8 / scale;
                var size = minimum;
                while (size < 8 && (_hMax * minimum) % (c.H * size * 2) == 0 && (_vMax * minimum) % (c.V * size * 2) == 0)
                {
                    size *= 2;
                }

                c.Size = progressive ? 1 : size;
                if (c.Size > 1)
                {
                    c.Samples = JpegScratch.Rent<byte>(c.Size * c.Stride * c.Size * c.Rows);
                }
            }

            _haveFrame = true;
            return true;
        }

        private bool HeaderColourSupported(int count) =>
            count != 3 || _sawJfif || !_sawAdobe || _adobeTransform is 0 or 1;

        /// <summary>Decides YCbCr or RGB as libjpeg does from the markers before the first scan; false if unsupported.</summary>
        private bool ChooseColourSpace()
        {
            if (_components.Length != 3)
            {
                return true;
            }

            if (_sawJfif)
            {
                _rgb = false;
            }
            else if (_sawAdobe)
            {
                if (_adobeTransform is not (0 or 1))
                {
                    return false;
                }

                _rgb = _adobeTransform == 0;
            }
            else
            {
                _rgb = _components[0].Id == 'R' && _components[1].Id == 'G' && _components[2].Id == 'B';
            }

            return true;
        }

        private void ReadQuantTables(ReadOnlySpan<byte> p)
        {
            while (p.Length > 0)
            {
                var precision = p[0] >> 4;
                var index = p[0] & 15;
                if (precision > 1 || index > 3)
                {
                    throw Corrupt("A quantisation table has an invalid precision or index.");
                }

                var size = precision == 0 ? 64 : 128;
                if (p.Length < 1 + size)
                {
                    throw Corrupt("A DQT segment is shorter than its tables.");
                }

                // The DC entry (the first in zigzag order) serves every 1x1 component; 2x2 ones need the rest.
                _quantDc[index] = precision == 0 ? p[1] : BinaryPrimitives.ReadUInt16BigEndian(p[1..]);
                var table = _quant[index] ??= new short[64];
                for (var i = 0; i < 64; i++)
                {
                    // Held as libjpeg-turbo's SIMD builds hold it (ISLOW_MULT_TYPE is short): a 16-bit entry
                    // above 32767 acts negative there too.
                    table[JpegBitReader.NaturalOrder[i]] = (short)(precision == 0 ? p[1 + i] : BinaryPrimitives.ReadUInt16BigEndian(p[(1 + (2 * i))..]));
                }
                p = p[(1 + size)..];
            }
        }

        private void ReadHuffmanTables(ReadOnlySpan<byte> p)
        {
            while (p.Length > 0)
            {
                var tableClass = p[0] >> 4;
                var index = p[0] & 15;
                if (tableClass > 1 || index > 3)
                {
                    throw Corrupt("A Huffman table has an invalid class or index.");
                }

                if (p.Length < 17)
                {
                    throw Corrupt("A DHT segment is shorter than its tables.");
                }

                var counts = p.Slice(1, 16);
                var total = 0;
                foreach (var n in counts)
                {
                    total += n;
                }

                if (total > 256)
                {
                    throw Corrupt("A Huffman table declares more than 256 symbols.");
                }

                if (p.Length < 17 + total)
                {
                    throw Corrupt("A DHT segment is shorter than its tables.");
                }

                var tables = tableClass == 0 ? _dcTables : _acTables;
                var table = tables[index] ??= new JpegHuffmanTable(isDc: tableClass == 0);
                table.Define(counts, p.Slice(17, total));
                p = p[(17 + total)..];
            }
        }

        private void DecodeScan(ReadOnlySpan<byte> data, ReadOnlySpan<byte> p, ref int position)
        {
            if (p.Length < 1 || p[0] is < 1 or > 4 || p.Length != 4 + (2 * p[0]))
            {
                throw Corrupt("A scan header has the wrong length or component count.");
            }

            var count = p[0];
            var scan = new Component[count];
            for (var i = 0; i < count; i++)
            {
                var id = p[1 + (2 * i)];
                var tables = p[2 + (2 * i)];
                var c = Array.Find(_components, c => c.Id == id) ?? throw Corrupt("A scan names a component the frame does not have.");
                if (Array.IndexOf(scan, c, 0, i) >= 0)
                {
                    throw Corrupt("A scan names a component twice.");
                }

                if (tables >> 4 > 3 || (tables & 15) > 3)
                {
                    throw Corrupt("A scan names an invalid Huffman table.");
                }

                c.DcTable = _dcTables[tables >> 4];
                c.AcTable = _acTables[tables & 15];
                scan[i] = c;
            }

            int ss = p[1 + (2 * count)];
            int se = p[2 + (2 * count)];
            var ah = p[3 + (2 * count)] >> 4;
            var al = p[3 + (2 * count)] & 15;

            foreach (var c in scan)
            {
                if (c.QuantDc < 0)
                {
                    // Latched at first use, so a later DQT redefining the slot does not change this component.
                    c.QuantDc = _quantDc[c.QuantTable];
                    if (c.QuantDc < 0)
                    {
                        throw Corrupt("A component's quantisation table is not defined.");
                    }

                    if (c.Size > 1)
                    {
                        c.Quant = (short[])_quant[c.QuantTable]!.Clone();
                    }
                }
            }

            ScanMode mode;
            if (!_progressive)
            {
                // libjpeg decodes a sequential scan with odd Ss/Se/Ah/Al as a full one (with a warning).
                mode = ScanMode.Sequential;
            }
            else
            {
                if (ah > 13 || al > 13 || (ah != 0 && al != ah - 1))
                {
                    throw Corrupt("A progressive scan has an invalid successive-approximation setting.");
                }

                if (ss != 0)
                {
                    if (se < ss || se > 63 || count != 1)
                    {
                        throw Corrupt("A progressive AC scan has an invalid spectral range or component count.");
                    }

                    // AC data is never needed: step to the next marker without decoding.
                    position = JpegBitReader.SkipEntropyData(data, position);
                    return;
                }

                if (se != 0)
                {
                    throw Corrupt("A progressive DC scan also codes AC coefficients.");
                }

                mode = ah == 0 ? ScanMode.DcFirst : ScanMode.DcRefine;
            }

            var blocksInMcu = 0;
            foreach (var c in scan)
            {
                blocksInMcu += c.H * c.V;
                if (mode != ScanMode.DcRefine && c.DcTable is null)
                {
                    throw Corrupt("A scan uses an undefined DC Huffman table.");
                }

                if (mode == ScanMode.Sequential && c.AcTable is null)
                {
                    throw Corrupt("A scan uses an undefined AC Huffman table.");
                }

                if (mode != ScanMode.DcRefine)
                {
                    c.DcTable!.EnsureBuilt();
                }

                if (mode == ScanMode.Sequential)
                {
                    c.AcTable!.EnsureBuilt();
                }
            }

            if (count > 1 && blocksInMcu > MaxBlocksInMcu)
            {
                throw Corrupt("A scan's MCU has more than 10 blocks.");
            }

            position = DecodeEntropy(data, position, scan, mode, al);

            foreach (var c in scan)
            {
                if (mode == ScanMode.DcRefine)
                {
                    // Only a refinement that continues the sequence makes progress; others are bogus (libjpeg warns).
                    if (c.DcKnownBit == ah)
                    {
                        c.DcKnownBit = al;
                    }
                }
                else
                {
                    c.DcKnownBit = mode == ScanMode.Sequential ? 0 : al;
                }
            }
        }

        private int DecodeEntropy(ReadOnlySpan<byte> data, int position, Component[] scan, ScanMode mode, int al)
        {
            var reader = new JpegBitReader(data, position);
            var restartInterval = _restartInterval;
            var untilRestart = restartInterval;
            var nextRestart = 0;
            foreach (var c in scan)
            {
                c.Predictor = 0;
            }

            if (scan.Length == 1)
            {
                // Non-interleaved: one block per MCU, over the component's own block extent, decoded in
                // runs that end at a row's end or a restart marker.
                var c = scan[0];
                for (var by = 0; by < c.HeightInBlocks; by++)
                {
                    var row = c.Coefficients.AsSpan(by * c.Stride, c.WidthInBlocks);
                    while (!row.IsEmpty)
                    {
                        var run = row.Length;
                        if (restartInterval != 0)
                        {
                            if (untilRestart == 0)
                            {
                                reader.Restart(nextRestart);
                                nextRestart = (nextRestart + 1) & 7;
                                c.Predictor = 0;
                                untilRestart = restartInterval;
                            }

                            run = Math.Min(run, untilRestart);
                            untilRestart -= run;
                        }

                        if (c.Size > 1 && mode == ScanMode.Sequential)
                        {
                            var bx = c.WidthInBlocks - row.Length;
                            var stride = c.Size * c.Stride;
                            reader.DecodeSequentialRunScaled(c.DcTable!, c.AcTable!, c.Quant!, c.Size, row[..run], c.Samples, (by * c.Size * stride) + (bx * c.Size), stride, ref c.Predictor);
                        }
                        else
                        {
                            DecodeRun(ref reader, c, row[..run], mode, al);
                        }

                        row = row[run..];
                    }
                }
            }
            else if (mode != ScanMode.Sequential)
            {
                // Progressive DC, interleaved: runs of whole MCUs (to a row's end or a restart marker).
                var layout = new JpegMcuLayout(scan.Select(c => (c.H, c.V, c.Stride, c.Coefficients, c.DcTable)).ToArray());
                Span<int> predictors = stackalloc int[scan.Length];
                for (var my = 0; my < _mcusY; my++)
                {
                    for (var mx = 0; mx < _mcusX;)
                    {
                        var run = _mcusX - mx;
                        if (restartInterval != 0)
                        {
                            if (untilRestart == 0)
                            {
                                reader.Restart(nextRestart);
                                nextRestart = (nextRestart + 1) & 7;
                                predictors.Clear();
                                untilRestart = restartInterval;
                            }

                            run = Math.Min(run, untilRestart);
                            untilRestart -= run;
                        }

                        if (mode == ScanMode.DcFirst)
                        {
                            reader.DecodeDcFirstMcus(layout, mx, my, run, predictors, al);
                        }
                        else
                        {
                            reader.DecodeDcRefineMcus(layout, mx, my, run, al);
                        }

                        mx += run;
                    }
                }
            }
            else
            {
                // Sequential, interleaved: runs of whole MCUs, as above.
                var layout = new JpegMcuLayout(scan.Select(c => (c.H, c.V, c.Stride, c.Coefficients, c.DcTable)).ToArray());
                layout.SetSequential(scan.Select(c => (c.AcTable!, c.Quant, c.Size > 1 ? c.Samples : null, c.Size * c.Stride, c.Size)).ToArray());
                Span<int> predictors = stackalloc int[scan.Length];
                for (var my = 0; my < _mcusY; my++)
                {
                    for (var mx = 0; mx < _mcusX;)
                    {
                        var run = _mcusX - mx;
                        if (restartInterval != 0)
                        {
                            if (untilRestart == 0)
                            {
                                reader.Restart(nextRestart);
                                nextRestart = (nextRestart + 1) & 7;
                                predictors.Clear();
                                untilRestart = restartInterval;
                            }

                            run = Math.Min(run, untilRestart);
                            untilRestart -= run;
                        }

                        reader.DecodeSequentialMcus(layout, mx, my, run, predictors);
                        mx += run;
                    }
                }
            }

            return reader.FinishScan();
        }

        private static void DecodeRun(ref JpegBitReader reader, Component c, Span<short> blocks, ScanMode mode, int al)
        {
            switch (mode)
            {
                case ScanMode.Sequential:
                    reader.DecodeSequentialRun(c.DcTable!, c.AcTable!, blocks, ref c.Predictor);
                    break;
                case ScanMode.DcFirst:
                    reader.DecodeDcFirstRun(c.DcTable!, blocks, ref c.Predictor, al);
                    break;
                default:
                    reader.DecodeDcRefineRun(blocks, al);
                    break;
            }
        }

        private bool Complete()
        {
            foreach (var c in _components)
            {
                if (c.DcKnownBit != 0)
                {
                    return false;
                }
            }

            return true;
        }
    }
}
