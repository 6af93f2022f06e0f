using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Warden.Review.Evidence;

/// <summary>Settings of an S3-compatible evidence store (AWS S3, MinIO, Ceph RGW, Garage…).</summary>
public sealed record S3BlobStoreOptions
{
    /// <summary>Endpoint, e.g. <c>https://s3.eu-central-1.amazonaws.com</c> or <c>http://minio:9000</c>.</summary>
    public required Uri ServiceUrl { get; init; }

    /// <summary>The bucket (private; versioning off, or non-current versions expired, so deletes are final).</summary>
    public required string Bucket { get; init; }

    /// <summary>Key prefix inside the bucket.</summary>
    public string Prefix { get; init; } = "evidence/";

    /// <summary>Access key id.</summary>
    public required string AccessKey { get; init; }

    /// <summary>Secret key.</summary>
    public required string SecretKey { get; init; }

    /// <summary>Signing region.</summary>
    public string Region { get; init; } = "us-east-1";

    /// <summary>Path-style addressing (<c>host/bucket/key</c>), which most self-hosted stores need.</summary>
    public bool ForcePathStyle { get; init; } = true;

    /// <summary>Largest object read.</summary>
    public long MaxObjectBytes { get; init; } = 1L << 31;
}

/// <summary>
/// Sealed evidence objects in an S3-compatible bucket under <c>prefix/ab/abcd…</c>. A PutObject replaces an
/// object atomically (readers see the old or the new one), which is all <see cref="IBlobStore"/> asks. The
/// objects are already encrypted; server-side encryption on the bucket is a second layer, not a substitute.
/// </summary>
public sealed class S3BlobStore : IBlobStore, IDisposable
{
    private readonly AmazonS3Client _client;
    private readonly S3BlobStoreOptions _options;

    /// <summary>Creates the store.</summary>
    public S3BlobStore(S3BlobStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _client = new AmazonS3Client(new BasicAWSCredentials(options.AccessKey, options.SecretKey), new AmazonS3Config
        {
            ServiceURL = options.ServiceUrl.AbsoluteUri,
            ForcePathStyle = options.ForcePathStyle,
            AuthenticationRegion = options.Region,

            // Plain requests that every S3-compatible server understands (no aws-chunked trailers).
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
    }

    /// <inheritdoc/>
    public async Task WriteAsync(string id, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        using var stream = new MemoryStream(data.ToArray(), writable: false);
        await _client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = _options.Bucket,
            Key = Key(id),
            InputStream = stream,
            AutoCloseStream = false,
            UseChunkEncoding = false,
            ContentType = "application/octet-stream",
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<byte[]?> ReadAsync(string id, CancellationToken cancellationToken = default)
    {
        try
        {
            using var response = await _client.GetObjectAsync(_options.Bucket, Key(id), cancellationToken).ConfigureAwait(false);
            if (response.ContentLength > _options.MaxObjectBytes)
            {
                throw new EvidenceException(EvidenceError.NotAllowed, $"Evidence object {id} is {response.ContentLength} bytes, over the {_options.MaxObjectBytes}-byte limit.");
            }

            using var ms = new MemoryStream(response.ContentLength > 0 ? (int)response.ContentLength : 0);
            await response.ResponseStream.CopyToAsync(ms, cancellationToken).ConfigureAwait(false);
            return ms.ToArray();
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        // S3 answers a delete of a missing key with success, so ask first to report "absent".
        try
        {
            await _client.GetObjectMetadataAsync(_options.Bucket, Key(id), cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await _client.DeleteObjectAsync(_options.Bucket, Key(id), cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc/>
    public void Dispose() => _client.Dispose();

    private string Key(string id) => IBlobStore.IsValidId(id)
        ? $"{_options.Prefix}{id[..2]}/{id}"
        : throw new ArgumentException("An evidence object id is 32 lower-case hex digits.", nameof(id));
}
