using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;
using Warden.Core.Banks.Formats;
using Warden.Core.Imaging;
using Warden.Storage;

namespace Warden.Server.Api;

/// <summary>
/// Stable machine-readable error codes, sent as the <c>code</c> member of every problem+json response
/// (RFC 9457). Clients branch on these, never on the human-readable <c>detail</c>.
/// </summary>
public static class ErrorCodes
{
#pragma warning disable CS1591 // The names are the documentation; docs/api.md lists them with their statuses.
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string InvalidRequest = "invalid_request";
    public const string InvalidSignal = "invalid_signal";
    public const string UnknownSignalType = "unknown_signal_type";
    public const string UnsupportedMediaType = "unsupported_media_type";
    public const string EmptyUpload = "empty_upload";
    public const string PayloadTooLarge = "payload_too_large";
    public const string UnsupportedFormat = "unsupported_format";
    public const string CorruptImage = "corrupt_image";
    public const string TruncatedImage = "truncated_image";
    public const string ImageTooLarge = "image_too_large";
    public const string CorruptVideo = "corrupt_video";
    public const string InvalidModel = "invalid_model";
    public const string VideoTooLong = "video_too_long";
    public const string NotFound = "not_found";
    public const string Conflict = "conflict";
    public const string InvalidList = "invalid_list";
    public const string RateLimited = "rate_limited";
    public const string Timeout = "timeout";
    public const string Unavailable = "unavailable";
    public const string FetchRefused = "fetch_refused";
    public const string Internal = "internal";
#pragma warning restore CS1591
}

/// <summary>An error a handler reports to the client: status, stable code and a message safe to show.</summary>
public sealed class ApiException : Exception
{
    /// <summary>Creates the error.</summary>
    public ApiException(int status, string code, string detail)
        : base(detail)
    {
        Status = status;
        Code = code;
    }

    /// <summary>Creates a 400 invalid_request.</summary>
    public ApiException()
        : this(StatusCodes.Status400BadRequest, ErrorCodes.InvalidRequest, "Invalid request.")
    {
    }

    /// <summary>Creates a 400 invalid_request.</summary>
    public ApiException(string message)
        : this(StatusCodes.Status400BadRequest, ErrorCodes.InvalidRequest, message)
    {
    }

    /// <summary>Creates a 400 invalid_request.</summary>
    public ApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Status = StatusCodes.Status400BadRequest;
        Code = ErrorCodes.InvalidRequest;
    }

    /// <summary>HTTP status.</summary>
    public int Status { get; }

    /// <summary>Stable error code.</summary>
    public string Code { get; }

    /// <summary>400 with a code.</summary>
    public static ApiException BadRequest(string code, string detail) => new(StatusCodes.Status400BadRequest, code, detail);

    /// <summary>404 not_found.</summary>
    public static ApiException NotFound(string detail) => new(StatusCodes.Status404NotFound, ErrorCodes.NotFound, detail);
}

/// <summary>Writes problem+json responses.</summary>
public static class Problems
{
    private static readonly Dictionary<int, string> Titles = new()
    {
        [400] = "Bad request",
        [401] = "Unauthorized",
        [403] = "Forbidden",
        [404] = "Not found",
        [405] = "Method not allowed",
        [409] = "Conflict",
        [413] = "Payload too large",
        [415] = "Unsupported media type",
        [422] = "Unprocessable content",
        [429] = "Too many requests",
        [500] = "Internal server error",
        [503] = "Service unavailable",
        [504] = "Timeout",
    };

    /// <summary>Writes one problem to the response (nothing if it has started).</summary>
    public static Task WriteAsync(HttpContext context, int status, string code, string detail)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        context.Response.StatusCode = status;
        var problem = new ProblemDetails
        {
            Status = status,
            Title = Titles.GetValueOrDefault(status, "Error"),
            Detail = detail,
            Type = "https://github.com/warden-safety/warden/blob/main/docs/api.md#error-" + code.Replace('_', '-'),
            Instance = context.Request.Path,
        };
        problem.Extensions["code"] = code;
        problem.Extensions["traceId"] = context.TraceIdentifier;
        return context.Response.WriteAsJsonAsync(problem, ProblemJson.Options, "application/problem+json");
    }

    /// <summary>Maps an exception to (status, code, detail); unknown exceptions are 500 with no internals.</summary>
    public static (int Status, string Code, string Detail) Map(Exception exception) => exception switch
    {
        ApiException api => (api.Status, api.Code, api.Message),
        ImageDecodeException img => img.Error switch
        {
            ImageDecodeError.Empty => (400, ErrorCodes.EmptyUpload, img.Message),
            ImageDecodeError.UnsupportedFormat => (415, ErrorCodes.UnsupportedFormat, img.Message),
            ImageDecodeError.Truncated => (422, ErrorCodes.TruncatedImage, img.Message),
            ImageDecodeError.TooManyPixels or ImageDecodeError.TooManyBytes => (413, ErrorCodes.ImageTooLarge, img.Message),
            _ => (422, ErrorCodes.CorruptImage, img.Message),
        },
        StorageException st => st.Error switch
        {
            StorageError.NotFound => (404, ErrorCodes.NotFound, st.Message),
            StorageError.Conflict => (409, ErrorCodes.Conflict, st.Message),
            StorageError.Invalid => (400, ErrorCodes.InvalidRequest, st.Message),
            _ => (503, ErrorCodes.Unavailable, "The database is unavailable; try again."),
        },
        BankFormatException list => (400, ErrorCodes.InvalidList, list.Message),
        Warden.Core.Hashing.Video.VideoDecodeException video => video.Error switch
        {
            Warden.Core.Hashing.Video.VideoDecodeError.FfmpegMissing => (503, ErrorCodes.Unavailable, "This server cannot hash videos: ffmpeg is not installed."),
            Warden.Core.Hashing.Video.VideoDecodeError.Timeout => (504, ErrorCodes.Timeout, video.Message),
            Warden.Core.Hashing.Video.VideoDecodeError.TooLong => (413, ErrorCodes.VideoTooLong, video.Message),
            _ => (422, ErrorCodes.CorruptVideo, video.Message),
        },
        BadHttpRequestException bad when bad.StatusCode == 413 => (413, ErrorCodes.PayloadTooLarge, "The request body is larger than this server accepts."),
        BadHttpRequestException bad => (bad.StatusCode is >= 400 and < 500 ? bad.StatusCode : 400, ErrorCodes.InvalidRequest, bad.Message),
        JsonException json => (400, ErrorCodes.InvalidRequest, "The JSON body is malformed: " + json.Message),
        InvalidDataException data => (400, ErrorCodes.InvalidRequest, data.Message),
        _ => (500, ErrorCodes.Internal, "An internal error occurred; it has been logged with the trace id."),
    };
}

/// <summary>Serializer options for problem bodies.</summary>
internal static class ProblemJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}

/// <summary>Turns every unhandled exception into problem+json; logs only what is safe (never bodies).</summary>
internal sealed partial class ProblemExceptionHandler(ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (status, code, detail) = Problems.Map(exception);
        if (status >= 500)
        {
            LogUnhandled(logger, exception, httpContext.Request.Method, httpContext.Request.Path, httpContext.TraceIdentifier);
        }

        await Problems.WriteAsync(httpContext, status, code, detail).ConfigureAwait(false);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error in {Method} {Path} (trace {TraceId})")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path, string traceId);
}
