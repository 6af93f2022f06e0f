namespace Warden.Core.Hashing.Video;

/// <summary>Why a video could not be hashed.</summary>
public enum VideoDecodeError
{
    /// <summary>ffmpeg/ffprobe are not installed (or not where configured).</summary>
    FfmpegMissing,

    /// <summary>The content is not a container or stream ffmpeg recognises.</summary>
    NotVideo,

    /// <summary>The file has audio streams but no video stream.</summary>
    AudioOnly,

    /// <summary>The file ends early (e.g. an MP4 whose index is missing), so no frame could be decoded.</summary>
    Truncated,

    /// <summary>ffmpeg could not decode the stream.</summary>
    Corrupt,

    /// <summary>The video decoded to no frames at all.</summary>
    NoFrames,

    /// <summary>Decoding took longer than the time limit.</summary>
    Timeout,

    /// <summary>The video is longer (in seconds or frames) than the limits allow.</summary>
    TooLong,

    /// <summary>A frame has more pixels than the limit allows, or is too small to hash.</summary>
    BadDimensions,
}

/// <summary>A video could not be probed or decoded; <see cref="Error"/> says why in a form code can act on.</summary>
public sealed class VideoDecodeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public VideoDecodeException(VideoDecodeError error, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
    }

    /// <summary>Creates the exception (for serializers; prefer the typed constructor).</summary>
    public VideoDecodeException()
        : this(VideoDecodeError.Corrupt, "The video could not be decoded.")
    {
    }

    /// <summary>Creates the exception (for serializers; prefer the typed constructor).</summary>
    public VideoDecodeException(string message)
        : this(VideoDecodeError.Corrupt, message)
    {
    }

    /// <summary>Creates the exception (for serializers; prefer the typed constructor).</summary>
    public VideoDecodeException(string message, Exception innerException)
        : this(VideoDecodeError.Corrupt, message, innerException)
    {
    }

    /// <summary>The kind of failure.</summary>
    public VideoDecodeError Error { get; }
}
