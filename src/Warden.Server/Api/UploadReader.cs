using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Warden.Server.Api;

/// <summary>Uploaded content, in memory only.</summary>
/// <param name="Data">The bytes (exactly the content).</param>
/// <param name="FieldName">The multipart field it came in (HMA names the field after the content type).</param>
public sealed record Upload(byte[] Data, string? FieldName);

/// <summary>
/// Reads an upload from a raw body (any non-form content type) or the first file part of a multipart form.
/// Never touches the disk: ASP.NET's form reader spools large files to temp files, so multipart is parsed
/// here section by section into memory, with the size limit enforced while reading.
/// </summary>
public static class UploadReader
{
    private const int MaxBoundaryLength = 256;

    /// <summary>Reads the upload or throws <see cref="ApiException"/> (400/413/415).</summary>
    public static async Task<Upload> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var feature = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            // Multipart framing adds a little; the content itself is checked against maxBytes below.
            feature.MaxRequestBodySize = maxBytes + (64 * 1024);
        }

        if (request.ContentLength > maxBytes + (64 * 1024))
        {
            throw new ApiException(413, ErrorCodes.PayloadTooLarge, $"The upload is {request.ContentLength} bytes; this server accepts up to {maxBytes}.");
        }

        var contentType = request.ContentType;
        if (contentType is not null && contentType.StartsWith("multipart/", StringComparison.OrdinalIgnoreCase))
        {
            return await ReadMultipartAsync(request, contentType, maxBytes, cancellationToken).ConfigureAwait(false);
        }

        // Any other content type is the content itself (curl --data-binary sends x-www-form-urlencoded).
        var data = await ReadLimitedAsync(request.Body, maxBytes, request.ContentLength, cancellationToken).ConfigureAwait(false);
        return new Upload(data, null);
    }

    private static async Task<Upload> ReadMultipartAsync(HttpRequest request, string contentType, long maxBytes, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) ||
            HeaderUtilities.RemoveQuotes(media.Boundary).Value is not { Length: > 0 and <= MaxBoundaryLength } boundary)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "The multipart/form-data content type has no valid boundary.");
        }

        var reader = new MultipartReader(boundary, request.Body) { HeadersCountLimit = 16, HeadersLengthLimit = 16 * 1024 };
        try
        {
            for (var sections = 0; sections < 32; sections++)
            {
                var section = await reader.ReadNextSectionAsync(cancellationToken).ConfigureAwait(false);
                if (section is null)
                {
                    break;
                }

                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || !disposition.IsFileDisposition())
                {
                    continue; // text fields (metadata) are not content
                }

                var data = await ReadLimitedAsync(section.Body, maxBytes, null, cancellationToken).ConfigureAwait(false);
                return new Upload(data, HeaderUtilities.RemoveQuotes(disposition.Name).Value);
            }
        }
        catch (IOException ex) when (ex is not EndOfStreamException)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "The multipart body is malformed: " + ex.Message);
        }
        catch (InvalidDataException ex)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidRequest, "The multipart body is malformed: " + ex.Message);
        }

        throw ApiException.BadRequest(ErrorCodes.EmptyUpload, "The multipart form has no file part; send the content as a file field (e.g. -F file=@image.jpg).");
    }

    private static async Task<byte[]> ReadLimitedAsync(Stream body, long maxBytes, long? declared, CancellationToken cancellationToken)
    {
        if (declared is > 0 && declared <= maxBytes && declared <= Array.MaxLength)
        {
            // A declared length is the body's exact size (Kestrel holds the client to it), so the bytes go straight
            // into the upload's own array: one copy, no growing buffer, no chunk buffer.
            var data = GC.AllocateUninitializedArray<byte>((int)declared.Value);
            var read = await body.ReadAtLeastAsync(data, data.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read < data.Length)
            {
                throw ApiException.BadRequest(ErrorCodes.InvalidRequest, $"The body ended after {read} of its declared {data.Length} bytes.");
            }

            return data;
        }

        using var buffer = new MemoryStream(64 * 1024);
        var chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    throw new ApiException(413, ErrorCodes.PayloadTooLarge, $"The upload is larger than this server accepts ({maxBytes} bytes).");
                }

                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
        }

        if (buffer.Length == 0)
        {
            throw ApiException.BadRequest(ErrorCodes.EmptyUpload, "The upload is empty.");
        }

        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }
}
