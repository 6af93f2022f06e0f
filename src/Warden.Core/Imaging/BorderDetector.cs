namespace Warden.Core.Imaging;

/// <summary>An axis-aligned rectangle of pixels: columns [X, X + Width), rows [Y, Y + Height).</summary>
/// <param name="X">The first column.</param>
/// <param name="Y">The first row.</param>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
public readonly record struct ImageRect(int X, int Y, int Width, int Height)
{
    /// <summary>One past the last column.</summary>
    public int Right => X + Width;

    /// <summary>One past the last row.</summary>
    public int Bottom => Y + Height;
}

/// <summary>
/// Finds uniform bands (frames, letterbox and pillarbox bars, padding) along the edges of an image, so the
/// content inside them can be hashed on its own. A band is a run of rows or columns, scanned inward from an
/// edge, whose pixels are one solid colour (any colour) up to JPEG noise; see <see cref="TryDetect(DecodedImage, out ImageRect, out ImageRect)"/>
/// for the rule. It reads a few lines per side on a photo, allocates nothing and never reads a pixel
/// more than twice per side.
/// </summary>
public static class BorderDetector
{
    /// <summary>A band pixel may differ from the band's colour by at most this much in any channel (JPEG noise).</summary>
    public const int PixelTolerance = 14;

    /// <summary>
    /// A band line's mean may differ from the band's colour by at most this much per channel. Much tighter
    /// than <see cref="PixelTolerance"/>: a solid colour decodes to its own mean, a gradient drifts away.
    /// </summary>
    public const int MeanTolerance = 3;

    /// <summary>
    /// A band line's pixels (outliers aside) may vary around their own mean by at most this variance per
    /// channel: solid colour decodes to within a level or two, a faint pattern (tiles, wood grain) does not.
    /// </summary>
    public const int MaxTextureVariance = 9;

    /// <summary>A line whose mean is this far from the band's colour ends the band with an edge, outliers or not.</summary>
    public const int StepTolerance = 4 * MeanTolerance;

    /// <summary>Past a band's end, a line whose mean differs from the previous line's by more than this is its edge.</summary>
    public const int JumpTolerance = 6;

    /// <summary>Per mille of a line's pixels that may break <see cref="PixelTolerance"/> (logos, dust, noise).</summary>
    public const int OutlierPerMille = 20;

    /// <summary>A band thinner than this share of its side is ignored (per mille): edge artefacts, not framing.</summary>
    public const int MinBandPerMille = 20;

    /// <summary>Trimming must keep at least this share of each side (per mille); otherwise the image itself is flat.</summary>
    public const int MinKeptPerMille = 300;

    /// <summary>Trimming must keep at least this many stored pixels on each side.</summary>
    public const int MinKeptPixels = 64;

    /// <summary>
    /// Stored pixels past where a band stops (at least <see cref="EdgeSearchLines"/> lines) that may show its
    /// edge: content of nearly the band's colour (a dark photo in a black frame) drifts for a few lines first.
    /// </summary>
    public const int EdgeSearchPixels = 12;

    /// <summary>
    /// The fewest lines past where a band stops that are searched for its edge (a line with more than
    /// <see cref="OutlierPerMille"/> off-colour pixels, texture, or a step in the mean). A band that merely drifts out of
    /// <see cref="MeanTolerance"/> without one is a gradient (sky, vignette), not a border.
    /// </summary>
    public const int EdgeSearchLines = 3;

    // Past a strict band's end: up to this many stored pixels whose lines have RingingMinPerMille of their
    // pixels within RingingTolerance of the band's colour are JPEG ringing around the content's edge.
    private const int RingingPixels = 7;
    private const int RingingTolerance = 20;
    private const int RingingMinPerMille = 800;

    // Each pass can let a perpendicular side see past a band it was blocked by (a frame whose top and left
    // bars differ in colour); three passes settle every frame of up to two colours per axis.
    private const int MaxPasses = 3;

    private enum Side
    {
        Top,
        Bottom,
        Left,
        Right,
    }

    private enum LineResult
    {
        Band,
        Drift,
        Edge,
    }

    /// <summary>
    /// Detects uniform borders on a decoded (possibly shrink-on-load) image.
    /// </summary>
    /// <remarks>
    /// Rule: from each edge, the outermost line (row or column, limited to what the perpendicular bands
    /// found so far leave) sets the band's colour as its mean; lines are taken into the band while at most
    /// <see cref="OutlierPerMille"/> of their pixels differ from that colour by more than
    /// <see cref="PixelTolerance"/> in a channel and their mean stays within <see cref="MeanTolerance"/>.
    /// A band counts only if one of the <see cref="EdgeSearchLines"/> lines after it has the outliers of a
    /// real edge, and it is at least <see cref="MinBandPerMille"/> of its side. The trim is refused when
    /// it would keep less than <see cref="MinKeptPerMille"/> or <see cref="MinKeptPixels"/> of either side:
    /// then the image is mostly flat and there is nothing to trim to.
    /// </remarks>
    /// <param name="image">The decoded image; only its colour channels are read (alpha is ignored, as the hasher does).</param>
    /// <param name="pixelContent">The content in decoded-pixel coordinates (<see cref="DecodedImage.PixelWidth"/>).</param>
    /// <param name="storedContent">
    /// The same content in stored-image coordinates (<see cref="DecodedImage.Width"/>): each decoded pixel
    /// covers a block of the stored image, so edges are multiples of the decode's scale, except a kept right
    /// or bottom edge, which stays the image's own.
    /// </param>
    /// <returns>True when at least one side has a band to trim.</returns>
    public static bool TryDetect(DecodedImage image, out ImageRect pixelContent, out ImageRect storedContent)
    {
        ArgumentNullException.ThrowIfNull(image);
        return TryDetect(image.Pixels, image.PixelWidth, image.PixelHeight, image.Stride, image.BytesPerPixel, image.Width, image.Height, out pixelContent, out storedContent);
    }

    /// <summary>Detects uniform borders on full-size pixels; see <see cref="TryDetect(DecodedImage, out ImageRect, out ImageRect)"/>.</summary>
    /// <param name="pixels">Interleaved 8-bit pixels (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA).</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="stride">Bytes from one row to the next.</param>
    /// <param name="bytesPerPixel">1 to 4.</param>
    /// <param name="content">The rectangle inside the bands.</param>
    /// <returns>True when at least one side has a band to trim.</returns>
    public static bool TryDetect(ReadOnlySpan<byte> pixels, int width, int height, int stride, int bytesPerPixel, out ImageRect content) =>
        TryDetect(pixels, width, height, stride, bytesPerPixel, width, height, out content, out _);

    /// <summary>
    /// Detects uniform borders on pixels that may be a reduced image of a <paramref name="storedWidth"/> x
    /// <paramref name="storedHeight"/> original; see <see cref="TryDetect(DecodedImage, out ImageRect, out ImageRect)"/>.
    /// </summary>
    /// <param name="pixels">Interleaved 8-bit pixels (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA).</param>
    /// <param name="width">Width of <paramref name="pixels"/>.</param>
    /// <param name="height">Height of <paramref name="pixels"/>.</param>
    /// <param name="stride">Bytes from one row to the next.</param>
    /// <param name="bytesPerPixel">1 to 4.</param>
    /// <param name="storedWidth">The original's width (the thresholds are in its pixels).</param>
    /// <param name="storedHeight">The original's height.</param>
    /// <param name="pixelContent">The content in <paramref name="pixels"/> coordinates.</param>
    /// <param name="storedContent">The content in original coordinates.</param>
    /// <returns>True when at least one side has a band to trim.</returns>
    public static bool TryDetect(
        ReadOnlySpan<byte> pixels,
        int width,
        int height,
        int stride,
        int bytesPerPixel,
        int storedWidth,
        int storedHeight,
        out ImageRect pixelContent,
        out ImageRect storedContent)
    {
        pixelContent = new ImageRect(0, 0, width, height);
        storedContent = new ImageRect(0, 0, storedWidth, storedHeight);
        if (width < 1 || height < 1 || bytesPerPixel is < 1 or > 4 || stride < width * bytesPerPixel ||
            pixels.Length < ((long)stride * (height - 1)) + ((long)width * bytesPerPixel) ||
            storedWidth < width || storedHeight < height)
        {
            return false;
        }

        // The decode's scale per axis, as PdqHasher derives it: libjpeg's scaled size is ceil(stored / s).
        var scaleX = Math.Max(1, (int)Math.Round((double)storedWidth / width));
        var scaleY = Math.Max(1, (int)Math.Round((double)storedHeight / height));

        // Most lines that all bands on an axis may take, in decoded pixels: what keeps 30% and 64 stored pixels.
        var keepX = Math.Max(CeilDiv(storedWidth * (long)MinKeptPerMille, 1000), MinKeptPixels);
        var keepY = Math.Max(CeilDiv(storedHeight * (long)MinKeptPerMille, 1000), MinKeptPixels);
        var maxX = width - (int)CeilDiv(keepX, scaleX);
        var maxY = height - (int)CeilDiv(keepY, scaleY);
        if (maxX < 1 && maxY < 1)
        {
            return false;
        }

        var channels = bytesPerPixel >= 3 ? 3 : 1;
        Span<int> bands = stackalloc int[4];
        Span<int> colours = stackalloc int[4 * 3];
        for (var pass = 0; pass < MaxPasses; pass++)
        {
            var changed = false;
            for (var s = Side.Top; s <= Side.Right; s++)
            {
                var vertical = s is Side.Top or Side.Bottom;
                var before = bands[(int)s];
                var limit = (vertical ? maxY : maxX) - bands[(int)Opposite(s)];
                if (!Scan(pixels, width, height, stride, bytesPerPixel, channels, s, bands, colours.Slice((int)s * 3, 3), limit, vertical ? scaleY : scaleX))
                {
                    // A band ran into the kept minimum: the image is (nearly) one colour.
                    return false;
                }

                changed |= bands[(int)s] != before;
            }

            if (!changed)
            {
                break;
            }
        }

        // Bands are in decoded lines; thresholds are shares of the stored sides.
        var top = Significant(bands[(int)Side.Top], scaleY, storedHeight);
        var bottom = Significant(bands[(int)Side.Bottom], scaleY, storedHeight);
        var left = Significant(bands[(int)Side.Left], scaleX, storedWidth);
        var right = Significant(bands[(int)Side.Right], scaleX, storedWidth);
        if (top + bottom + left + right == 0)
        {
            return false;
        }

        var x0 = left * scaleX;
        var y0 = top * scaleY;
        var x1 = right == 0 ? storedWidth : Math.Min(storedWidth, (width - right) * scaleX);
        var y1 = bottom == 0 ? storedHeight : Math.Min(storedHeight, (height - bottom) * scaleY);
        if (x1 - x0 < keepX || y1 - y0 < keepY)
        {
            return false;
        }

        pixelContent = new ImageRect(left, top, width - left - right, height - top - bottom);
        storedContent = new ImageRect(x0, y0, x1 - x0, y1 - y0);
        return true;
    }

    private static long CeilDiv(long a, long b) => (a + b - 1) / b;

    private static Side Opposite(Side s) => s switch
    {
        Side.Top => Side.Bottom,
        Side.Bottom => Side.Top,
        Side.Left => Side.Right,
        _ => Side.Left,
    };

    private static int Significant(int band, int scale, int storedSide) =>
        (long)band * scale * 1000 >= (long)storedSide * MinBandPerMille ? band : 0;

    /// <summary>
    /// Extends side <paramref name="side"/>'s band inward. Returns false when the band would pass
    /// <paramref name="limit"/> lines (too little left). A band with no edge after it is dropped (set to 0).
    /// </summary>
    private static bool Scan(
        ReadOnlySpan<byte> pixels, int width, int height, int stride, int bpp, int channels, Side side, Span<int> bands, Span<int> colour, int limit, int scale)
    {
        var vertical = side is Side.Top or Side.Bottom;

        // A line runs between the perpendicular bands found so far.
        var from = vertical ? bands[(int)Side.Left] : bands[(int)Side.Top];
        var count = (vertical ? width - bands[(int)Side.Right] : height - bands[(int)Side.Bottom]) - from;
        var lines = vertical ? height : width;
        var step = vertical ? bpp : stride;
        if (count < 1)
        {
            return true;
        }

        var band = bands[(int)side];
        if (band == 0)
        {
            // A new band takes the colour of its outermost line.
            MeanColour(pixels, LineStart(side, 0, from, lines, stride, bpp), step, count, channels, colour);
        }

        LineResult result;
        while ((result = Classify(pixels, LineStart(side, band, from, lines, stride, bpp), step, count, channels, colour)) == LineResult.Band)
        {
            if (++band > limit)
            {
                return false;
            }
        }

        if (band == bands[(int)side])
        {
            // Nothing new (a later pass): the edge was checked when the band was found.
            return true;
        }

        // Only a band that ends in an edge is a border: a drift is a gradient running on.
        var edge = result == LineResult.Edge;
        // Past the stop, an edge is a line that is textured or jumps from the line before it; measured
        // against the band's colour instead, a gradient would always end in an "edge" eventually.
        var search = Math.Max(EdgeSearchLines, EdgeSearchPixels / scale);
        Span<int> previous = stackalloc int[3];
        Span<int> current = stackalloc int[3];
        if (!edge)
        {
            LineStats(pixels, LineStart(side, band, from, lines, stride, bpp), step, count, channels, previous);
        }

        for (var k = 1; !edge && k < search && band + k < lines; k++)
        {
            edge = LineStats(pixels, LineStart(side, band + k, from, lines, stride, bpp), step, count, channels, current);
            for (var c = 0; c < channels; c++)
            {
                edge |= Math.Abs(current[c] - previous[c]) > JumpTolerance;
            }

            current.CopyTo(previous);
        }

        band = edge ? band : bands[(int)side];

        // JPEG rings for up to a block (8 stored pixels) beyond a sharp edge, so the last border lines
        // fail the strict test. Take them while they are mostly the band's colour, at most a block's worth.
        for (var k = 0; band > 0 && k < RingingPixels / scale && band < limit && MostlyBand(pixels, LineStart(side, band, from, lines, stride, bpp), step, count, channels, colour); k++)
        {
            band++;
        }

        bands[(int)side] = band;
        return true;
    }

    /// <summary>A line's mean colour (rounded); true when it is textured (some channel's variance above <see cref="MaxTextureVariance"/>).</summary>
    private static bool LineStats(ReadOnlySpan<byte> pixels, int start, int step, int count, int channels, Span<int> mean)
    {
        var textured = false;
        for (var c = 0; c < channels; c++)
        {
            long sum = 0, squares = 0;
            for (int i = 0, p = start + c; i < count; i++, p += step)
            {
                int v = pixels[p];
                sum += v;
                squares += v * v;
            }

            mean[c] = (int)((sum + (count / 2)) / count);
            textured |= (count * squares) - (sum * sum) > (long)MaxTextureVariance * count * count;
        }

        return textured;
    }

    private static bool MostlyBand(ReadOnlySpan<byte> pixels, int start, int step, int count, int channels, ReadOnlySpan<int> colour)
    {
        var budget = count - (int)((long)count * RingingMinPerMille / 1000);
        var misses = 0;
        for (int i = 0, p = start; i < count; i++, p += step)
        {
            var deviation = Math.Abs(pixels[p] - colour[0]);
            if (channels == 3)
            {
                deviation = Math.Max(deviation, Math.Max(Math.Abs(pixels[p + 1] - colour[1]), Math.Abs(pixels[p + 2] - colour[2])));
            }

            if (deviation > RingingTolerance && ++misses > budget)
            {
                return false;
            }
        }

        return true;
    }

    private static int LineStart(Side side, int index, int from, int lines, int stride, int bpp) => side switch
    {
        Side.Top => (index * stride) + (from * bpp),
        Side.Bottom => ((lines - 1 - index) * stride) + (from * bpp),
        Side.Left => (from * stride) + (index * bpp),
        _ => (from * stride) + ((lines - 1 - index) * bpp),
    };

    private static void MeanColour(ReadOnlySpan<byte> pixels, int start, int step, int count, int channels, Span<int> colour)
    {
        for (var c = 0; c < channels; c++)
        {
            long sum = 0;
            for (int i = 0, p = start + c; i < count; i++, p += step)
            {
                sum += pixels[p];
            }

            colour[c] = (int)((sum + (count / 2)) / count);
        }
    }

    private static LineResult Classify(ReadOnlySpan<byte> pixels, int start, int step, int count, int channels, ReadOnlySpan<int> colour)
    {
        var budget = (int)((long)count * OutlierPerMille / 1000);
        var outliers = 0;
        var inliers = 0;

        // Sums over the inliers of each channel's offset from the band colour, and of its square: the mean
        // tells drift (gradients), the variance texture (a low-contrast pattern stays within the tolerance
        // but is not the near-constant a solid colour decodes to).
        Span<long> sum = stackalloc long[3];
        Span<long> squares = stackalloc long[3];
        sum.Clear();
        squares.Clear();
        for (int i = 0, p = start; i < count; i++, p += step)
        {
            var d0 = pixels[p] - colour[0];
            int d1 = 0, d2 = 0;
            if (channels == 3)
            {
                d1 = pixels[p + 1] - colour[1];
                d2 = pixels[p + 2] - colour[2];
            }

            if (Math.Max(Math.Abs(d0), Math.Max(Math.Abs(d1), Math.Abs(d2))) > PixelTolerance)
            {
                if (++outliers > budget)
                {
                    return LineResult.Edge;
                }

                continue;
            }

            inliers++;
            sum[0] += d0;
            sum[1] += d1;
            sum[2] += d2;
            squares[0] += d0 * d0;
            squares[1] += d1 * d1;
            squares[2] += d2 * d2;
        }

        var drift = false;
        for (var c = 0; c < channels; c++)
        {
            // n² var = n Σd² − (Σd)², compared without division.
            var n = (long)inliers;
            if ((n * squares[c]) - (sum[c] * sum[c]) > (long)MaxTextureVariance * n * n)
            {
                return LineResult.Edge;
            }

            // A step in the mean is an edge too (content close in colour to the band); a small shift is drift.
            var shift = Math.Abs(sum[c]);
            if (shift > (long)StepTolerance * n)
            {
                return LineResult.Edge;
            }

            drift |= shift > (long)MeanTolerance * n;
        }

        return drift ? LineResult.Drift : LineResult.Band;
    }
}
