namespace Warden.Core.Imaging;

/// <summary>Why an image could not be decoded. Stable names: they appear in CLI output and API errors.</summary>
public enum ImageDecodeError
{
    /// <summary>Zero bytes.</summary>
    Empty,

    /// <summary>Not an image format Warden decodes.</summary>
    UnsupportedFormat,

    /// <summary>The data ends before the image does.</summary>
    Truncated,

    /// <summary>The data is not a valid image of its format.</summary>
    Corrupt,

    /// <summary>The image declares more pixels than the configured limit (decompression-bomb guard).</summary>
    TooManyPixels,

    /// <summary>The file is larger than the configured byte limit.</summary>
    TooManyBytes,
}

/// <summary>A typed decode failure. The message never contains image content.</summary>
public sealed class ImageDecodeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ImageDecodeException(ImageDecodeError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>Creates an exception of kind <see cref="ImageDecodeError.Corrupt"/>.</summary>
    public ImageDecodeException()
        : this(ImageDecodeError.Corrupt, "The image could not be decoded.")
    {
    }

    /// <summary>Creates an exception of kind <see cref="ImageDecodeError.Corrupt"/>.</summary>
    public ImageDecodeException(string message)
        : this(ImageDecodeError.Corrupt, message)
    {
    }

    /// <summary>Creates an exception of kind <see cref="ImageDecodeError.Corrupt"/>.</summary>
    public ImageDecodeException(string message, Exception innerException)
        : this(ImageDecodeError.Corrupt, message, innerException)
    {
    }

    /// <summary>The kind of failure.</summary>
    public ImageDecodeError Error { get; }
}
