using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;
using CsvHelper;

namespace Warden.Review.Audit;

/// <summary>What to record: who did what to which subject, with small string details.</summary>
/// <param name="Actor">Who: a user id (<c>user:alice</c>) or a system component (<c>system:reporter</c>).</param>
/// <param name="Action">What, dotted lower case: <c>evidence.view</c>, <c>cluster.decide</c>, <c>report.finish</c>, <c>config.change</c>, <c>key.rotate</c>.</param>
/// <param name="Subject">Which object: <c>case:…</c>, <c>evidence:…</c>, <c>report:…</c>.</param>
/// <param name="Details">Free key/value details (no media, no secrets).</param>
public sealed record AuditEntry(string Actor, string Action, string Subject, IReadOnlyDictionary<string, string>? Details = null);

/// <summary>One stored record of the chain.</summary>
public sealed record AuditRecord(
    long Seq,
    DateTimeOffset At,
    string Actor,
    string Action,
    string Subject,
    IReadOnlyDictionary<string, string> Details,
    byte[] PrevHash,
    byte[] Hash)
{
    /// <summary>The hash as lower-case hex.</summary>
    public string HashHex => Convert.ToHexStringLower(Hash);
}

/// <summary>Which records to return; null fields match anything. <see cref="To"/> is exclusive.</summary>
public sealed record AuditFilter(string? Actor = null, string? Action = null, string? Subject = null, DateTimeOffset? From = null, DateTimeOffset? To = null);

/// <summary>The result of walking the chain.</summary>
/// <param name="Ok">True when every record links to its predecessor and hashes to its stored hash.</param>
/// <param name="RecordsChecked">Records read.</param>
/// <param name="FirstBrokenSeq">The first record that fails (null when <see cref="Ok"/>).</param>
/// <param name="Reason">Why it fails.</param>
public sealed record AuditVerification(bool Ok, long RecordsChecked, long? FirstBrokenSeq, string? Reason);

/// <summary>
/// Append-only, hash-chained audit log. Record <c>n</c>'s hash is
/// <c>SHA-256(hash[n-1] ‖ canonical JSON of record n)</c> with 32 zero bytes before the first record, so
/// editing, inserting or deleting any record breaks every later link and <see cref="Verify()"/> names the
/// first bad one. Appends are serialised by the store (one transaction reads the tail and inserts), so
/// parallel writers, threads or processes, still build one chain.
/// </summary>
public sealed class AuditLog
{
    /// <summary>The hash before the first record.</summary>
    public static ReadOnlyMemory<byte> GenesisHash { get; } = new byte[32];

    private static readonly JsonWriterOptions JsonOptions = new() { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly IAuditStore _store;
    private readonly TimeProvider _time;

    /// <summary>Creates a log over <paramref name="store"/>.</summary>
    public AuditLog(IAuditStore store, TimeProvider? time = null)
    {
        _store = store;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Appends a record and returns it with its sequence number and hash.</summary>
    public AuditRecord Append(AuditEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentException.ThrowIfNullOrWhiteSpace(entry.Actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(entry.Action);
        ArgumentNullException.ThrowIfNull(entry.Subject);
        var details = entry.Details is null
            ? new SortedDictionary<string, string>(StringComparer.Ordinal)
            : new SortedDictionary<string, string>(entry.Details.ToDictionary(), StringComparer.Ordinal);

        return _store.Append((lastSeq, lastHash) =>
        {
            // Millisecond precision: the stored value is what gets hashed.
            var at = DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());
            var seq = lastSeq + 1;
            var prev = lastHash ?? GenesisHash.ToArray();
            var hash = ComputeHash(prev, seq, at, entry.Actor, entry.Action, entry.Subject, details);
            return new AuditRecord(seq, at, entry.Actor, entry.Action, entry.Subject, details, prev, hash);
        });
    }

    /// <summary>Records matching <paramref name="filter"/>, oldest first.</summary>
    public IEnumerable<AuditRecord> Query(AuditFilter? filter = null) => _store.Query(filter ?? new AuditFilter());

    /// <summary>The newest record, or null when the log is empty.</summary>
    public AuditRecord? Head() => _store.Last();

    /// <summary>Walks the whole chain and reports the first record that does not verify.</summary>
    public AuditVerification Verify() => Verify([]);

    /// <summary>
    /// Walks the whole chain and reports the first record that does not verify, or that differs from a
    /// checkpoint kept outside the database (a re-hashed tail verifies as a chain but not against these).
    /// </summary>
    public AuditVerification Verify(IReadOnlyList<AuditCheckpoint> checkpoints)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        var anchors = new Dictionary<long, AuditCheckpoint>();
        foreach (var c in checkpoints)
        {
            anchors[c.Seq] = c;
        }

        var prev = GenesisHash.ToArray();
        long expectedSeq = 1, checkedCount = 0;
        foreach (var r in _store.Query(new AuditFilter()))
        {
            checkedCount++;
            if (r.Seq != expectedSeq)
            {
                return new AuditVerification(false, checkedCount, r.Seq, r.Seq > expectedSeq
                    ? $"records {expectedSeq}..{r.Seq - 1} are missing"
                    : $"sequence number {r.Seq} is out of order");
            }

            if (!r.PrevHash.AsSpan().SequenceEqual(prev))
            {
                return new AuditVerification(false, checkedCount, r.Seq, "its previous-hash does not match the hash of the record before it");
            }

            var hash = ComputeHash(prev, r.Seq, r.At, r.Actor, r.Action, r.Subject, r.Details);
            if (!hash.AsSpan().SequenceEqual(r.Hash))
            {
                return new AuditVerification(false, checkedCount, r.Seq, "its content does not hash to its stored hash (the record was edited)");
            }

            if (anchors.TryGetValue(r.Seq, out var anchor) && !anchor.Hash.AsSpan().SequenceEqual(r.Hash))
            {
                return new AuditVerification(false, checkedCount, r.Seq, $"it differs from checkpoint {anchor.Number} of {anchor.At:O} (the chain was rewritten after it)");
            }

            prev = r.Hash;
            expectedSeq++;
        }

        var lastSeq = expectedSeq - 1;
        if (checkpoints.Count > 0 && checkpoints.Max(c => c.Seq) is var anchored && anchored > lastSeq)
        {
            return new AuditVerification(false, checkedCount, lastSeq + 1, $"records {lastSeq + 1}..{anchored} are missing (checkpointed outside the database)");
        }

        return new AuditVerification(true, checkedCount, null, null);
    }

    /// <summary>Writes the matching records as CSV (header: seq, at, actor, action, subject, details, prev_hash, hash).</summary>
    public void ExportCsv(TextWriter writer, AuditFilter? filter = null)
    {
        using var csv = CsvWriter.Create(writer, new CsvWriterOptions { NewLine = "\n" }, leaveOpen: true);
        csv.WriteHeader(["seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"]);
        foreach (var r in Query(filter))
        {
            csv.WriteField(r.Seq.ToString(CultureInfo.InvariantCulture));
            csv.WriteField(r.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            csv.WriteField(r.Actor);
            csv.WriteField(r.Action);
            csv.WriteField(r.Subject);
            csv.WriteField(DetailsJson(r.Details));
            csv.WriteField(Convert.ToHexStringLower(r.PrevHash));
            csv.WriteField(Convert.ToHexStringLower(r.Hash));
            csv.EndRecord();
        }

        csv.Flush();
    }

    /// <summary>The details as canonical JSON (keys in ordinal order): the form stored and hashed.</summary>
    public static string DetailsJson(IReadOnlyDictionary<string, string> details)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            WriteDetails(w, details);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Parses stored details JSON.</summary>
    internal static IReadOnlyDictionary<string, string> ParseDetails(string json) =>
        new SortedDictionary<string, string>(JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [], StringComparer.Ordinal);

    /// <summary>
    /// The canonical JSON of a record: fixed key order, no whitespace, time as Unix milliseconds, details
    /// sorted by key. Hash = SHA-256(prev ‖ that JSON in UTF-8).
    /// </summary>
    internal static byte[] ComputeHash(byte[] prev, long seq, DateTimeOffset at, string actor, string action, string subject, IReadOnlyDictionary<string, string> details)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Write(prev);
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", seq);
            w.WriteNumber("at", at.ToUnixTimeMilliseconds());
            w.WriteString("actor", actor);
            w.WriteString("action", action);
            w.WriteString("subject", subject);
            w.WritePropertyName("details");
            WriteDetails(w, details);
            w.WriteEndObject();
        }

        return SHA256.HashData(buffer.WrittenSpan);
    }

    private static void WriteDetails(Utf8JsonWriter w, IReadOnlyDictionary<string, string> details)
    {
        w.WriteStartObject();
        foreach (var (k, v) in details.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.WriteString(k, v);
        }

        w.WriteEndObject();
    }
}
