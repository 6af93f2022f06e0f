using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Warden.Review.Audit;

namespace Warden.Review.Evidence;

/// <summary>
/// Anchors the audit chain outside the database. The chain alone shows an edit only to someone who re-walks
/// it from a hash they already trust: whoever can write the database can edit a record and re-hash every
/// later one, and the chain verifies again. So at intervals the head (seq, hash) is signed (HMAC-SHA256 with a
/// key the database does not hold) and written to the blob store as checkpoint 1, 2, 3, ...;
/// <see cref="VerifyAsync"/> walks the chain and requires every checkpointed record to still carry its
/// checkpointed hash, and no checkpointed record to be missing. Checkpoints are found without a listing:
/// checkpoint n lives at a blob id derived from n, and the count is found by doubling then bisecting.
/// </summary>
public sealed class AuditCheckpoints
{
    private const string Magic = "warden-audit-checkpoint-v1";
    private readonly AuditLog _log;
    private readonly IBlobStore _blobs;
    private readonly byte[] _key;
    private readonly TimeProvider _time;

    /// <summary>Checkpoints of <paramref name="log"/> in <paramref name="blobs"/>, signed with <paramref name="key"/> (at least 32 bytes).</summary>
    public AuditCheckpoints(AuditLog log, IBlobStore blobs, byte[] key, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(blobs);
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length < 32)
        {
            throw new ArgumentException("The checkpoint key must be at least 32 bytes.", nameof(key));
        }

        _log = log;
        _blobs = blobs;
        _key = key;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The checkpoint key derived from the vault's master key (HKDF, so the master key itself signs nothing).</summary>
    public static byte[] DeriveKey(ReadOnlySpan<byte> masterKey) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, masterKey.ToArray(), 32, salt: [], info: Encoding.ASCII.GetBytes(Magic));

    /// <summary>The blob id of checkpoint <paramref name="number"/> (32 hex characters, like every blob id).</summary>
    public static string BlobId(long number) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes($"{Magic}:{number}")).AsSpan(0, 16));

    /// <summary>
    /// Writes a checkpoint of the current head; null when the log is empty or its head is already the latest
    /// checkpoint. Never overwrites a checkpoint: a number already taken (by another node) moves on to the next.
    /// </summary>
    public async Task<AuditCheckpoint?> WriteAsync(CancellationToken cancellationToken = default)
    {
        var head = _log.Head();
        if (head is null)
        {
            return null;
        }

        var count = await CountAsync(cancellationToken).ConfigureAwait(false);
        if (count > 0 && await ReadAsync(count, cancellationToken).ConfigureAwait(false) is { } last && last.Seq >= head.Seq)
        {
            return null;
        }

        for (var n = count + 1; ; n++)
        {
            if (await _blobs.ReadAsync(BlobId(n), cancellationToken).ConfigureAwait(false) is not null)
            {
                continue;
            }

            var checkpoint = new AuditCheckpoint(n, head.Seq, DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds()), head.Hash);
            await _blobs.WriteAsync(BlobId(n), Serialize(checkpoint), cancellationToken).ConfigureAwait(false);
            return checkpoint;
        }
    }

    /// <summary>Every checkpoint, in order; a checkpoint whose signature or form is wrong is a <see cref="InvalidDataException"/>.</summary>
    public async Task<IReadOnlyList<AuditCheckpoint>> ReadAllAsync(CancellationToken cancellationToken = default)
    {
        var count = await CountAsync(cancellationToken).ConfigureAwait(false);
        var all = new List<AuditCheckpoint>((int)Math.Min(count, 1 << 16));
        for (var n = 1; n <= count; n++)
        {
            all.Add(await ReadAsync(n, cancellationToken).ConfigureAwait(false) ?? throw new InvalidDataException($"audit checkpoint {n} is missing (later ones exist)"));
        }

        return all;
    }

    /// <summary>The chain walk of <see cref="AuditLog.Verify()"/>, held to every checkpoint too.</summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken = default)
    {
        IReadOnlyList<AuditCheckpoint> anchors;
        try
        {
            anchors = await ReadAllAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            return new AuditVerification(false, 0, null, ex.Message);
        }

        return _log.Verify(anchors);
    }

    /// <summary>How many checkpoints exist: doubling to the first missing number, then bisecting (they are contiguous).</summary>
    private async Task<long> CountAsync(CancellationToken cancellationToken)
    {
        long present = 0, missing = 1;
        while (await _blobs.ReadAsync(BlobId(missing), cancellationToken).ConfigureAwait(false) is not null)
        {
            present = missing;
            missing *= 2;
        }

        while (missing - present > 1)
        {
            var mid = present + ((missing - present) / 2);
            if (await _blobs.ReadAsync(BlobId(mid), cancellationToken).ConfigureAwait(false) is not null)
            {
                present = mid;
            }
            else
            {
                missing = mid;
            }
        }

        return present;
    }

    private async Task<AuditCheckpoint?> ReadAsync(long number, CancellationToken cancellationToken)
    {
        var bytes = await _blobs.ReadAsync(BlobId(number), cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : Parse(number, bytes);
    }

    private byte[] Serialize(AuditCheckpoint c) => JsonSerializer.SerializeToUtf8Bytes(new Stored(c.Number, c.Seq, c.At.ToUnixTimeMilliseconds(), Convert.ToHexStringLower(c.Hash), Convert.ToHexStringLower(Mac(c.Number, c.Seq, c.At.ToUnixTimeMilliseconds(), c.Hash))));

    /// <summary>Fails closed: anything but a well-formed, correctly signed checkpoint with the expected number is refused.</summary>
    private AuditCheckpoint Parse(long number, byte[] bytes)
    {
        Stored? s;
        byte[] hash, mac;
        try
        {
            s = JsonSerializer.Deserialize<Stored>(bytes);
            if (s?.Hash is null || s.Mac is null)
            {
                throw new InvalidDataException($"audit checkpoint {number} is malformed");
            }

            hash = Convert.FromHexString(s.Hash);
            mac = Convert.FromHexString(s.Mac);
        }
        catch (Exception ex) when (ex is JsonException or FormatException)
        {
            throw new InvalidDataException($"audit checkpoint {number} is malformed", ex);
        }

        if (s.Number != number || hash.Length != 32 || s.Seq < 1 || !CryptographicOperations.FixedTimeEquals(mac, Mac(s.Number, s.Seq, s.AtMs, hash)))
        {
            throw new InvalidDataException($"audit checkpoint {number}'s signature does not verify (forged or altered)");
        }

        return new AuditCheckpoint(s.Number, s.Seq, DateTimeOffset.FromUnixTimeMilliseconds(s.AtMs), hash);
    }

    private byte[] Mac(long number, long seq, long atMs, byte[] hash)
    {
        Span<byte> message = stackalloc byte[Magic.Length + 24 + 32];
        Encoding.ASCII.GetBytes(Magic, message);
        BinaryPrimitives.WriteInt64BigEndian(message[Magic.Length..], number);
        BinaryPrimitives.WriteInt64BigEndian(message[(Magic.Length + 8)..], seq);
        BinaryPrimitives.WriteInt64BigEndian(message[(Magic.Length + 16)..], atMs);
        hash.CopyTo(message[(Magic.Length + 24)..]);
        return HMACSHA256.HashData(_key, message);
    }

    private sealed record Stored(long Number, long Seq, long AtMs, string? Hash, string? Mac);
}
