using System.Buffers.Binary;
using Warden.Core.Hashing.Pdq;

namespace Warden.Storage;

/// <summary>
/// The signals of one matched upload as the signal log keeps them (never the media). Built from the hashing
/// types by <see cref="SignalLogAdapter"/>, the one place that knows them.
/// </summary>
/// <param name="Pdq">The PDQ variants that were matched (original first, then dihedral ones), or null.</param>
/// <param name="PdqQuality">Their quality (the log keeps PDQ only at or above the match minimum).</param>
/// <param name="Trimmed">The border-trimmed image's variants, or null.</param>
/// <param name="Exact">Signals matched by equality: digests (md5, sha1, sha256) and model fingerprints, as (type, normalised value).</param>
/// <param name="Extra">Other similarity signals as a JSON object of type to signal: vPDQ ("vpdq") and TMK+PDQF ("tmk_pdqf"), searched retroactively against new entries of their type; null when none.</param>
public sealed record LoggedSignals(PdqHash[]? Pdq, int PdqQuality, PdqHash[]? Trimmed, IReadOnlyList<(string Type, string Value)> Exact, string? Extra = null)
{
    /// <summary>Every PDQ hash to index for the upload: its variants then its trimmed variants.</summary>
    public IEnumerable<PdqHash> AllPdq => (Pdq ?? []).Concat(Trimmed ?? []);

    internal static byte[]? Pack(PdqHash[]? hashes)
    {
        if (hashes is null || hashes.Length == 0)
        {
            return null;
        }

        var bytes = new byte[hashes.Length * 32];
        for (var i = 0; i < hashes.Length; i++)
        {
            var s = bytes.AsSpan(i * 32);
            BinaryPrimitives.WriteUInt64LittleEndian(s, hashes[i].W0);
            BinaryPrimitives.WriteUInt64LittleEndian(s[8..], hashes[i].W1);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], hashes[i].W2);
            BinaryPrimitives.WriteUInt64LittleEndian(s[24..], hashes[i].W3);
        }

        return bytes;
    }

    /// <summary>Reads packed hashes; a blob that is not a whole number of hashes is refused (the log was damaged).</summary>
    internal static int Unpack(ReadOnlySpan<byte> bytes, List<PdqHash> into)
    {
        if (bytes.Length % 32 != 0)
        {
            throw new InvalidDataException($"A signal log PDQ blob of {bytes.Length} bytes is not a whole number of 32-byte hashes.");
        }

        for (var i = 0; i < bytes.Length; i += 32)
        {
            var s = bytes[i..];
            into.Add(new PdqHash(
                BinaryPrimitives.ReadUInt64LittleEndian(s),
                BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(s[24..])));
        }

        return bytes.Length / 32;
    }
}

/// <summary>Where an upload came from and when (kept with its signals).</summary>
/// <param name="Uploader">The platform's uploader id, if known.</param>
/// <param name="ContentId">The platform's content id or the backfill item (path, URL, object key).</param>
/// <param name="ContentUrl">Where the content is published, if known.</param>
/// <param name="UploadedAt">When the platform received it (the time a retroactive case reports).</param>
/// <param name="Source">"api" (the match API) or "backfill".</param>
/// <param name="BankSequence">The bank change number the upload was matched at: entries changed after it are what retroactive matching searches for.</param>
public sealed record UploadRecord(string? Uploader, string? ContentId, string? ContentUrl, DateTimeOffset UploadedAt, string Source, long BankSequence);

/// <summary>A logged upload: its partition (day), row id and context.</summary>
/// <param name="Day">The partition (UTC day logged, yyyymmdd).</param>
/// <param name="Id">The row id within the partition.</param>
/// <param name="LoggedAt">When it was logged.</param>
/// <param name="Upload">Its context.</param>
/// <param name="Sha256">The content's SHA-256 (hex), when logged.</param>
public sealed record LoggedUpload(int Day, long Id, DateTimeOffset LoggedAt, UploadRecord Upload, string? Sha256);

/// <summary>A recorded match of the signal log's uploads (retroactive or backfill), exactly once per <see cref="Key"/>.</summary>
/// <param name="Key">Idempotency key: "rt:ENTRY:DAY:ID" (retroactive) or "bf:ITEM:ENTRY:TYPE" (backfill).</param>
/// <param name="Kind">"retroactive" or "backfill".</param>
/// <param name="Day">The upload's partition.</param>
/// <param name="LogId">The upload's row.</param>
/// <param name="BankId">The bank.</param>
/// <param name="EntryId">The bank entry.</param>
/// <param name="SignalType">The signal type that matched.</param>
/// <param name="Distance">Hamming distance (0 for exact types).</param>
/// <param name="Uploader">The uploader, if known.</param>
/// <param name="ContentId">The content id / backfill item.</param>
/// <param name="UploadedAt">The original upload time.</param>
/// <param name="Sha256">The content's SHA-256, when known.</param>
public sealed record SignalMatch(string Key, string Kind, int Day, long LogId, long BankId, long EntryId, string SignalType, int Distance, string? Uploader, string? ContentId, DateTimeOffset UploadedAt, string? Sha256);
