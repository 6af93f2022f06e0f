using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Warden.Cli.Backfill;

/// <summary>
/// S3-compatible buckets as backfill sources (<c>s3://BUCKET/PREFIX</c>): listing a prefix into items and
/// reading one object. The endpoint and keys come from the environment, as the AWS tools read them:
/// <c>AWS_ENDPOINT_URL</c> (MinIO, Ceph, R2, ...; unset: AWS), <c>AWS_ACCESS_KEY_ID</c>,
/// <c>AWS_SECRET_ACCESS_KEY</c>, <c>AWS_REGION</c> (default us-east-1).
/// </summary>
internal static class S3Source
{
    public static bool TryParse(string source, out string bucket, out string key)
    {
        bucket = key = string.Empty;
        if (!source.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var rest = source[5..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        bucket = slash < 0 ? rest : rest[..slash];
        key = slash < 0 ? string.Empty : rest[(slash + 1)..];
        return IsBucketName(bucket) && !key.Contains('\0', StringComparison.Ordinal);
    }

    /// <summary>
    /// A bucket name as S3-compatible services accept it: 1-255 letters, digits, '.', '-' or '_' (AWS's current rule
    /// is stricter; the legacy rule and MinIO/Ceph allow these). Anything else (a space, '%', a control character)
    /// is refused before a request is made.
    /// </summary>
    public static bool IsBucketName(string bucket) =>
        bucket.Length is > 0 and <= 255 && bucket.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    public static AmazonS3Client Client()
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = true,
            AuthenticationRegion = Environment.GetEnvironmentVariable("AWS_REGION") is { Length: > 0 } r ? r : "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL") is { Length: > 0 } endpoint)
        {
            config.ServiceURL = endpoint;
        }
        else
        {
            // AWS itself: the SDK needs a region endpoint (without one it refuses every call).
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(config.AuthenticationRegion);
        }

        var id = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        return id is { Length: > 0 } && secret is { Length: > 0 } ? new AmazonS3Client(new BasicAWSCredentials(id, secret), config) : new AmazonS3Client(new AnonymousAWSCredentials(), config);
    }

    /// <summary>Every object under the prefix, as s3:// sources.</summary>
    public static async IAsyncEnumerable<string> ListAsync(string source, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!TryParse(source, out var bucket, out var prefix))
        {
            throw new ArgumentException($"'{source}' is not s3://BUCKET/PREFIX (a bucket name is letters, digits, '.', '-' or '_').");
        }

        using var client = Client();
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        while (true)
        {
            var page = await client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
            foreach (var o in page.S3Objects ?? [])
            {
                if (!o.Key.EndsWith('/'))
                {
                    yield return $"s3://{bucket}/{o.Key}";
                }
            }

            if (page.IsTruncated != true)
            {
                yield break;
            }

            request.ContinuationToken = page.NextContinuationToken;
        }
    }

    /// <summary>Reads one object (permanent failure: missing or too large; transient: the service failed).</summary>
    public static async Task<(byte[]? Data, DateTimeOffset? Modified, string? Permanent, string? Transient)> ReadAsync(string source, long maxBytes, CancellationToken cancellationToken)
    {
        if (!TryParse(source, out var bucket, out var key) || key.Length == 0)
        {
            return (null, null, "not s3://BUCKET/KEY", null);
        }

        try
        {
            using var client = Client();
            using var response = await client.GetObjectAsync(bucket, key, cancellationToken).ConfigureAwait(false);
            if (response.ContentLength > maxBytes)
            {
                return (null, null, $"larger than {maxBytes} bytes", null);
            }

            // Bounded even when the service sent more than it declared.
            var data = await Warden.Core.Runtime.BoundedRead.ReadAllAsync(response.ResponseStream, maxBytes, cancellationToken).ConfigureAwait(false);
            return data is null
                ? (null, null, $"larger than {maxBytes} bytes", null)
                : (data, response.LastModified is { } m ? new DateTimeOffset(m.ToUniversalTime()) : null, null, null);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
        {
            return (null, null, $"S3 {(int)ex.StatusCode}: {ex.Message}", null);
        }
        catch (AmazonServiceException ex)
        {
            return (null, null, null, "S3: " + ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Anything else the SDK throws on what the service sent (a malformed ETag, an unreadable body, a
            // connection cut mid-object): a failure of this item, retried and then dead-lettered, never the worker's end.
            return (null, null, null, $"S3: {ex.GetType().Name}: {ex.Message}");
        }
    }
}
