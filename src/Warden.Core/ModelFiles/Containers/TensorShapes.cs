namespace Warden.Core.ModelFiles;

/// <summary>
/// Checked arithmetic for tensor shapes, strides and byte sizes: every product a reader forms from a file's
/// numbers goes through here, so an absurd shape (2^31 × 2^31 × …) is a malformed tensor, never an overflow
/// that wraps, saturates into a later sum or crashes a caller.
/// </summary>
public static class TensorShapes
{
    /// <summary>More elements than any real tensor holds (2^48); a larger shape is malformed.</summary>
    public const long MaxElements = 1L << 48;

    /// <summary>
    /// Element count, or -1 when a dimension is negative or the product of the non-zero dimensions overflows (a
    /// zero dimension makes the tensor empty, but does not excuse absurd neighbours).
    /// </summary>
    public static long Count(ReadOnlySpan<long> shape)
    {
        long n = 1;
        var empty = false;
        foreach (var d in shape)
        {
            if (d < 0)
            {
                return -1;
            }

            if (d == 0)
            {
                empty = true;
                continue;
            }

            if (n > long.MaxValue / d)
            {
                return -1;
            }

            n *= d;
        }

        return empty ? 0 : n;
    }

    /// <summary>Bytes of <paramref name="count"/> elements of <paramref name="elementSize"/> bytes, or -1 on overflow.</summary>
    public static long Bytes(long count, long elementSize) =>
        count < 0 || elementSize < 0 || (elementSize > 0 && count > long.MaxValue / elementSize) ? -1 : count * elementSize;

    /// <summary>
    /// Where a strided view lies in its storage: start byte, bytes spanned and whether it is C-contiguous. False
    /// when any number is negative, any product overflows, or the view runs past <paramref name="storageBytes"/>.
    /// </summary>
    public static bool TryView(long[] size, long[] stride, long storageOffset, int elementSize, long storageBytes, out long start, out long bytes, out bool contiguous)
    {
        ArgumentNullException.ThrowIfNull(size);
        ArgumentNullException.ThrowIfNull(stride);
        start = bytes = 0;
        contiguous = true;
        if (size.Length != stride.Length || storageOffset < 0 || elementSize <= 0)
        {
            return false;
        }

        try
        {
            checked
            {
                long expect = 1;
                long extent = 1;
                var empty = false;
                for (var i = size.Length - 1; i >= 0; i--)
                {
                    if (size[i] < 0 || stride[i] < 0)
                    {
                        return false;
                    }

                    if (size[i] != 1 && stride[i] != expect)
                    {
                        contiguous = false;
                    }

                    empty |= size[i] == 0;
                    expect *= Math.Max(1, size[i]);
                    extent = size[i] == 0 ? extent : extent + ((size[i] - 1) * stride[i]);
                }

                start = storageOffset * elementSize;
                bytes = empty ? 0 : extent * elementSize;
                return start + bytes <= storageBytes && Count(size) is >= 0 and <= MaxElements;
            }
        }
        catch (OverflowException)
        {
            return false;
        }
    }
}
