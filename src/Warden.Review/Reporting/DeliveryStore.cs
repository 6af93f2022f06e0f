using Dapper;
using Warden.Review.Evidence;
using Warden.Review.Storage;

namespace Warden.Review.Reporting;

/// <summary>Where a delivery stands.</summary>
public enum DeliveryStatus
{
    /// <summary>Waiting to be opened (submitted) at the destination.</summary>
    Queued = 0,

    /// <summary>Opened: the destination's report id is stored; files are being added.</summary>
    Open = 1,

    /// <summary>The open report's state is uncertain (an upload or file description may or may not have landed): cancel it, then start over.</summary>
    Retracting = 2,

    /// <summary>Finished: the destination's receipt is stored. Terminal.</summary>
    Finished = 3,

    /// <summary>Refused by the destination or missing evidence: an operator must act. Terminal.</summary>
    Failed = 4,

    /// <summary>Cancelled by an operator before it finished (any open report was retracted). Terminal.</summary>
    Cancelled = 5,

    /// <summary>
    /// A step failed the same way <see cref="DeliveryOptions.MaxAttempts"/> times (or the report was restarted
    /// <see cref="DeliveryOptions.MaxRestarts"/> times): parked with an alarm until an admin requeues or cancels it.
    /// </summary>
    DeadLettered = 6,
}

/// <summary>One file of a delivery.</summary>
/// <param name="Index">Position in the report.</param>
/// <param name="EvidenceRef">Vault item holding the media.</param>
/// <param name="FileName">Upload name.</param>
/// <param name="Metadata">Destination-specific JSON (NCMEC: <see cref="CyberTipFile"/>).</param>
/// <param name="Md5">Our MD5 of the uploaded bytes (hex), once uploaded.</param>
/// <param name="FileId">The destination's file id, once uploaded.</param>
/// <param name="Described">Whether the details were accepted.</param>
public sealed record DeliveryFile(int Index, string EvidenceRef, string FileName, string Metadata, string? Md5 = null, string? FileId = null, bool Described = false);

/// <summary>A durable outbox row: one report of one case to one destination.</summary>
public sealed record Delivery(
    long Id,
    string CaseId,
    string Destination,
    string Environment,
    DeliveryStatus Status,
    string? InFlight,
    string? ReportId,
    int Generation,
    string Document,
    DateTimeOffset CreatedAt,
    DateTimeOffset? OpenedAt,
    DateTimeOffset? FinishedAt,
    int Failures,
    DateTimeOffset NextAttemptAt,
    string? LastError,
    DateTimeOffset? AlarmedAt,
    long Version,
    string? FailureKey = null,
    int Restarts = 0)
{
    /// <summary>True when nothing more will happen by itself (a parked delivery waits for an admin).</summary>
    public bool IsTerminal => Status is DeliveryStatus.Finished or DeliveryStatus.Failed or DeliveryStatus.Cancelled or DeliveryStatus.DeadLettered;

    /// <summary>Failed or dead-lettered: an admin must requeue or cancel it.</summary>
    public bool NeedsAttention => Status is DeliveryStatus.Failed or DeliveryStatus.DeadLettered;
}

/// <summary>One call and its answer, kept as the receipt.</summary>
public sealed record DeliveryReceipt(long DeliveryId, DateTimeOffset At, int Generation, string Step, string Outcome, int? HttpStatus, int? ResponseCode, string? RequestId, string? Request, string? Body);

/// <summary>A write lost a race with another writer of the same delivery.</summary>
public sealed class DeliveryConflictException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DeliveryConflictException(string message)
        : base(message)
    {
    }

    /// <summary>Convention constructor.</summary>
    public DeliveryConflictException()
    {
    }

    /// <summary>Convention constructor.</summary>
    public DeliveryConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Persistence of the report outbox. <see cref="Save"/> is atomic and version-checked.</summary>
public interface IDeliveryStore
{
    /// <summary>Queues a delivery, or returns the existing one for the same case and destination (idempotent).</summary>
    Delivery Enqueue(string caseId, string destination, string environment, string document, IReadOnlyList<DeliveryFile> files, DateTimeOffset now);

    /// <summary>A delivery by id, or null.</summary>
    Delivery? Find(long id);

    /// <summary>The delivery of a case to a destination, or null.</summary>
    Delivery? FindByCase(string caseId, string destination);

    /// <summary>The files of a delivery.</summary>
    IReadOnlyList<DeliveryFile> Files(long id);

    /// <summary>Non-terminal deliveries whose next attempt is due.</summary>
    IReadOnlyList<Delivery> Due(DateTimeOffset now, int limit);

    /// <summary>Open or retracting deliveries opened at or before <paramref name="before"/>.</summary>
    IReadOnlyList<Delivery> OpenSince(DateTimeOffset before);

    /// <summary>Deliveries newest first, optionally of one status (the admin view).</summary>
    IReadOnlyList<Delivery> List(DeliveryStatus? status, int limit);

    /// <summary>
    /// Writes a new state (from <paramref name="delivery"/>, whose <see cref="Delivery.Version"/> must be the
    /// stored one), changed files and a receipt in one transaction; returns the stored state.
    /// </summary>
    Delivery Save(Delivery delivery, IReadOnlyList<DeliveryFile>? changedFiles = null, DeliveryReceipt? receipt = null);

    /// <summary>The receipts of a delivery, in order.</summary>
    IReadOnlyList<DeliveryReceipt> Receipts(long id);

    /// <summary>
    /// Takes or renews the lease on a delivery for <paramref name="owner"/> until <paramref name="now"/> +
    /// <paramref name="duration"/>: true when it was free, already the owner's, or expired (its node died).
    /// Stores that serve one process need no lease.
    /// </summary>
    bool TryLease(long id, string owner, DateTimeOffset now, TimeSpan duration) => true;

    /// <summary>Gives the lease back (only the owner's).</summary>
    void ReleaseLease(long id, string owner)
    {
    }
}

/// <summary>
/// The outbox in the review database. With a <see cref="ContextSeal"/>, the report document, the per-file
/// details and the recorded requests (which carry the uploader's IP, URL and file names) are stored sealed
/// and opened only when a delivery is read; rows written without one stay readable.
/// </summary>
public sealed class DbDeliveryStore(ReviewDatabase database, ContextSeal? seal = null) : IDeliveryStore
{
    /// <inheritdoc/>
    public Delivery Enqueue(string caseId, string destination, string environment, string document, IReadOnlyList<DeliveryFile> files, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(files);
        using var c = database.Connect();
        using var tx = database.BeginWrite(c);

        // The unique (case, destination) index decides between nodes enqueueing the same case at once.
        var id = c.ExecuteScalar<long?>(ReviewSql.DeliveryInsert, new { CaseId = caseId, Destination = destination, Environment = environment, Document = seal?.Wrap(DocumentBinding(caseId, destination), document) ?? document, CreatedAt = now.ToUnixTimeMilliseconds() }, tx);
        if (id is null)
        {
            var existing = c.QuerySingle<Row>(ReviewSql.DeliveryByCase, new { CaseId = caseId, Destination = destination }, tx);
            tx.Commit();
            return Open(existing);
        }

        foreach (var f in files)
        {
            c.Execute(ReviewSql.DeliveryFileInsert, new { DeliveryId = id, Idx = f.Index, f.EvidenceRef, FileName = seal?.Wrap(FileBinding(id.Value, f.Index), f.FileName) ?? f.FileName, Metadata = seal?.Wrap(FileBinding(id.Value, f.Index), f.Metadata) ?? f.Metadata }, tx);
        }

        var row = c.QuerySingle<Row>(ReviewSql.DeliveryById, new { Id = id }, tx);
        tx.Commit();
        return Open(row);
    }

    /// <inheritdoc/>
    public bool TryLease(long id, string owner, DateTimeOffset now, TimeSpan duration)
    {
        using var c = database.Connect();
        return c.Execute(ReviewSql.DeliveryLease, new { Id = id, Owner = owner, Now = now.ToUnixTimeMilliseconds(), Until = (now + duration).ToUnixTimeMilliseconds() }) == 1;
    }

    /// <inheritdoc/>
    public void ReleaseLease(long id, string owner)
    {
        using var c = database.Connect();
        c.Execute(ReviewSql.DeliveryRelease, new { Id = id, Owner = owner });
    }

    /// <inheritdoc/>
    public Delivery? Find(long id)
    {
        using var c = database.Connect();
        return c.QuerySingleOrDefault<Row>(ReviewSql.DeliveryById, new { Id = id }) is { } row ? Open(row) : null;
    }

    /// <inheritdoc/>
    public Delivery? FindByCase(string caseId, string destination)
    {
        using var c = database.Connect();
        return c.QuerySingleOrDefault<Row>(ReviewSql.DeliveryByCase, new { CaseId = caseId, Destination = destination }) is { } row ? Open(row) : null;
    }

    /// <inheritdoc/>
    public IReadOnlyList<DeliveryFile> Files(long id)
    {
        using var c = database.Connect();
        return [.. c.Query<FileRow>(ReviewSql.DeliveryFiles, new { Id = id }).Select(f => new DeliveryFile((int)f.Idx, f.EvidenceRef, Unwrap(FileBinding(id, (int)f.Idx), f.FileName)!, Unwrap(FileBinding(id, (int)f.Idx), f.Metadata)!, f.Md5, f.FileId, f.Described != 0))];
    }

    /// <inheritdoc/>
    public IReadOnlyList<Delivery> Due(DateTimeOffset now, int limit)
    {
        using var c = database.Connect();
        return [.. c.Query<Row>(ReviewSql.DeliveryDue, new { Now = now.ToUnixTimeMilliseconds(), Limit = limit }).Select(Open)];
    }

    /// <inheritdoc/>
    public IReadOnlyList<Delivery> OpenSince(DateTimeOffset before)
    {
        using var c = database.Connect();
        return [.. c.Query<Row>(ReviewSql.DeliveryOpenBefore, new { Before = before.ToUnixTimeMilliseconds() }).Select(Open)];
    }

    /// <summary>How many deliveries have this status (the attention gauge, the console notice).</summary>
    public int Count(DeliveryStatus status)
    {
        using var c = database.Connect();
        return c.ExecuteScalar<int>(ReviewSql.DeliveryCount, new { Status = (int)status });
    }

    /// <inheritdoc/>
    public IReadOnlyList<Delivery> List(DeliveryStatus? status, int limit)
    {
        using var c = database.Connect();
        return [.. c.Query<Row>(ReviewSql.DeliveryList, new { Status = (int?)status, Limit = Math.Clamp(limit, 1, 10_000) }).Select(Open)];
    }

    /// <inheritdoc/>
    public Delivery Save(Delivery delivery, IReadOnlyList<DeliveryFile>? changedFiles = null, DeliveryReceipt? receipt = null)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        using var c = database.Connect();
        using var tx = database.BeginWrite(c);
        var changed = c.Execute(ReviewSql.DeliveryUpdate, new
        {
            delivery.Id,
            delivery.Version,
            Status = (int)delivery.Status,
            delivery.InFlight,
            delivery.ReportId,
            delivery.Generation,
            OpenedAt = delivery.OpenedAt?.ToUnixTimeMilliseconds(),
            FinishedAt = delivery.FinishedAt?.ToUnixTimeMilliseconds(),
            delivery.Failures,
            NextAttemptAt = delivery.NextAttemptAt.ToUnixTimeMilliseconds(),
            delivery.LastError,
            AlarmedAt = delivery.AlarmedAt?.ToUnixTimeMilliseconds(),
            delivery.FailureKey,
            delivery.Restarts,
        }, tx);
        if (changed != 1)
        {
            throw new DeliveryConflictException($"Delivery {delivery.Id} changed underneath (version {delivery.Version}); another worker owns it.");
        }

        foreach (var f in changedFiles ?? [])
        {
            c.Execute(ReviewSql.DeliveryFileUpdate, new { DeliveryId = delivery.Id, Idx = f.Index, f.Md5, f.FileId, Described = f.Described ? 1 : 0 }, tx);
        }

        if (receipt is not null)
        {
            c.Execute(ReviewSql.ReceiptInsert, new
            {
                receipt.DeliveryId,
                AtMs = receipt.At.ToUnixTimeMilliseconds(),
                receipt.Generation,
                receipt.Step,
                receipt.Outcome,
                receipt.HttpStatus,
                receipt.ResponseCode,
                receipt.RequestId,
                Request = seal?.Wrap(ReceiptBinding(receipt.DeliveryId), receipt.Request) ?? receipt.Request,
                receipt.Body,
            }, tx);
        }

        var row = c.QuerySingle<Row>(ReviewSql.DeliveryById, new { delivery.Id }, tx);
        tx.Commit();
        return Open(row);
    }

    /// <inheritdoc/>
    public IReadOnlyList<DeliveryReceipt> Receipts(long id)
    {
        using var c = database.Connect();
        return [.. c.Query<ReceiptRow>(ReviewSql.Receipts, new { Id = id }).Select(r => new DeliveryReceipt(
            r.DeliveryId, DateTimeOffset.FromUnixTimeMilliseconds(r.AtMs), (int)r.Generation, r.Step, r.Outcome,
            (int?)r.HttpStatus, (int?)r.ResponseCode, r.RequestId, Unwrap(ReceiptBinding(id), r.Request), r.Body))];
    }

    private static string DocumentBinding(string caseId, string destination) => "report:" + caseId + ":" + destination;

    private static string FileBinding(long deliveryId, int index) => "report-file:" + deliveryId.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string ReceiptBinding(long deliveryId) => "report-request:" + deliveryId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private Delivery Open(Row row)
    {
        var d = row.ToDelivery();
        return d with { Document = Unwrap(DocumentBinding(d.CaseId, d.Destination), d.Document)! };
    }

    private string? Unwrap(string binding, string? stored)
    {
        if (stored is null || !stored.StartsWith(ContextSeal.Marker, StringComparison.Ordinal))
        {
            return stored;
        }

        // Sealed, and no key to open it: refuse (a report is never sent with its evidence missing).
        return (seal ?? throw new EvidenceException(EvidenceError.UnknownKey, "This report outbox row is sealed; configure the review master key to read it.")).Unwrap(binding, stored);
    }

    private static DateTimeOffset? Time(long? ms) => ms is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(ms.Value);

    private sealed record Row(
        long Id, string CaseId, string Destination, string Environment, long Status, string? InFlight, string? ReportId, long Generation,
        string Document, long CreatedAt, long? OpenedAt, long? FinishedAt, long Failures, long NextAttemptAt, string? LastError, long? AlarmedAt, long Version,
        string? FailureKey, long Restarts)
    {
        public Delivery ToDelivery() => new(Id, CaseId, Destination, Environment, (DeliveryStatus)Status, InFlight, ReportId, (int)Generation, Document,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), Time(OpenedAt), Time(FinishedAt), (int)Failures,
            DateTimeOffset.FromUnixTimeMilliseconds(NextAttemptAt), LastError, Time(AlarmedAt), Version, FailureKey, (int)Restarts);
    }

    private sealed record FileRow(long DeliveryId, long Idx, string EvidenceRef, string FileName, string Metadata, string? Md5, string? FileId, long Described);

    private sealed record ReceiptRow(long DeliveryId, long AtMs, long Generation, string Step, string Outcome, long? HttpStatus, long? ResponseCode, string? RequestId, string? Request, string? Body);
}
