using System.Buffers;

namespace Warden.Core.Imaging.Jpeg;

/// <summary>
/// The decoder's working arrays (Huffman lookups, coefficient and sample planes) come from the shared pool and go back
/// at the end of every decode, so a request allocates only the pixels it hands out. Arrays above
/// <see cref="MaxPooledLength"/> are allocated and left to the GC, so a hostile header cannot make the pool keep a
/// huge buffer. Every rented array is cleared over the length asked for: nothing of an earlier decode shows through.
/// </summary>
internal static class JpegScratch
{
    /// <summary>Largest array (elements) that is pooled: a 16 MP 4:4:4 photo's 1/4 planes fit; anything larger is rare.</summary>
    public const int MaxPooledLength = 1 << 20;

    /// <summary>Pooled arrays this thread has rented and not given back (0 between decodes; the tests check it).</summary>
    [ThreadStatic]
    private static int _outstanding;

    /// <summary>Pooled arrays rented on this thread and not yet returned.</summary>
    public static int Outstanding => _outstanding;

    /// <summary>An array of at least <paramref name="length"/> elements, the first <paramref name="length"/> zero.</summary>
    public static T[] Rent<T>(int length)
    {
        if (length == 0)
        {
            return [];
        }

        if (length > MaxPooledLength)
        {
            return new T[length];
        }

        var array = ArrayPool<T>.Shared.Rent(length);
        Array.Clear(array, 0, length);
        _outstanding++;
        return array;
    }

    /// <summary>Gives back an array from <see cref="Rent{T}"/> (empty and over-limit ones are dropped).</summary>
    public static void Return<T>(T[] array)
    {
        // Pooled arrays are at most MaxPooledLength long (the pool's buckets are powers of two, as the limit is);
        // longer ones were allocated, not rented.
        if (array.Length is > 0 and <= MaxPooledLength)
        {
            ArrayPool<T>.Shared.Return(array);
            _outstanding--;
        }
    }
}
