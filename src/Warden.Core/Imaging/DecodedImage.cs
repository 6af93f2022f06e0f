namespace Warden.Core.Imaging;

/// <summary>
/// 8-bit interleaved pixels of a decoded image (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA), held in
/// native memory until disposed. <see cref="Width"/>/<see cref="Height"/> are the image's own size;
/// <see cref="PixelWidth"/>/<see cref="PixelHeight"/> the size actually decoded (smaller after shrink-on-load).
/// </summary>
public sealed unsafe class DecodedImage : IDisposable
{
    private readonly Action<nint>? _free;
    private nint _pixels;
    private byte[]? _managed;

    internal DecodedImage(ImageFormat format, int width, int height, int pixelWidth, int pixelHeight, int bytesPerPixel, nint pixels, long length, Action<nint>? free)
    {
        Format = format;
        Width = width;
        Height = height;
        PixelWidth = pixelWidth;
        PixelHeight = pixelHeight;
        BytesPerPixel = bytesPerPixel;
        _pixels = pixels;
        Length = length;
        _free = free;
    }

    internal DecodedImage(ImageFormat format, int width, int height, int pixelWidth, int pixelHeight, int bytesPerPixel, byte[] pixels, int? length = null)
        : this(format, width, height, pixelWidth, pixelHeight, bytesPerPixel, 0, length ?? pixels.Length, null) => _managed = pixels;

    /// <summary>The container format.</summary>
    public ImageFormat Format { get; }

    /// <summary>Width of the image as stored.</summary>
    public int Width { get; }

    /// <summary>Height of the image as stored.</summary>
    public int Height { get; }

    /// <summary>Width of the decoded pixels.</summary>
    public int PixelWidth { get; }

    /// <summary>Height of the decoded pixels.</summary>
    public int PixelHeight { get; }

    /// <summary>Bytes per pixel: 1, 2, 3 or 4.</summary>
    public int BytesPerPixel { get; }

    /// <summary>Bytes per row.</summary>
    public int Stride => PixelWidth * BytesPerPixel;

    private long Length { get; }

    /// <summary>The pixels, row-major, rows <see cref="Stride"/> bytes apart.</summary>
    public ReadOnlySpan<byte> Pixels
    {
        get
        {
            if (_managed is not null)
            {
                return _managed.AsSpan(0, checked((int)Length));
            }

            ObjectDisposedException.ThrowIf(_pixels == 0, this);
            return new ReadOnlySpan<byte>((void*)_pixels, checked((int)Length));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _managed = null;
        var p = _pixels;
        _pixels = 0;
        if (p != 0)
        {
            _free?.Invoke(p);
        }
    }
}
