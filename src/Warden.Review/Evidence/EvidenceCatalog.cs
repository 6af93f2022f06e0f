using Dapper;
using Warden.Review.Storage;

namespace Warden.Review.Evidence;

/// <summary>Who reads evidence: a person or a component.</summary>
public enum ActorKind
{
    /// <summary>A person (a reviewer). Only a person's revealed view counts as "viewed by the ESP".</summary>
    Human = 0,

    /// <summary>A component (the report uploader, a preservation export).</summary>
    System = 1,
}

/// <summary>An identified reader.</summary>
/// <param name="Id">User id or component name.</param>
/// <param name="Kind">Person or component.</param>
public sealed record EvidenceActor(string Id, ActorKind Kind)
{
    /// <summary>A reviewer.</summary>
    public static EvidenceActor Person(string id) => new(id, ActorKind.Human);

    /// <summary>A component.</summary>
    public static EvidenceActor Component(string name) => new(name, ActorKind.System);
}

/// <summary>Catalogue row of one vault item (no media, no context: those are sealed in the object).</summary>
public sealed record EvidenceItem(
    string Id,
    string? CaseId,
    string KeyId,
    long Size,
    DateTimeOffset CapturedAt,
    DateTimeOffset? ReportedAt,
    DateTimeOffset RetainUntil,
    bool LegalHold,
    string? HoldReason,
    DateTimeOffset? DestroyedAt);

/// <summary>One read of an item: who, when, what (revealed or obscured) and why.</summary>
public sealed record EvidenceView(string ItemId, string Actor, ActorKind ActorKind, DateTimeOffset At, string What, string Purpose);

/// <summary>The record left when an item is destroyed.</summary>
public sealed record EvidenceDestruction(string ItemId, DateTimeOffset At, string Actor, string Reason);

/// <summary>The vault's catalogue: retention, holds, views, destructions.</summary>
public interface IEvidenceCatalog
{
    /// <summary>Adds an item.</summary>
    void Insert(EvidenceItem item);

    /// <summary>An item, or null.</summary>
    EvidenceItem? Find(string id);

    /// <summary>Live items past retention and not on hold.</summary>
    IReadOnlyList<EvidenceItem> Due(DateTimeOffset now, int limit);

    /// <summary>All live items.</summary>
    IReadOnlyList<EvidenceItem> Live();

    /// <summary>Records the report time and the new retention end.</summary>
    void SetReported(string id, DateTimeOffset reportedAt, DateTimeOffset retainUntil);

    /// <summary>Sets the retention end.</summary>
    void SetRetention(string id, DateTimeOffset retainUntil);

    /// <summary>Sets or clears the legal hold.</summary>
    void SetHold(string id, bool hold, string? reason);

    /// <summary>Records the key an item is wrapped with.</summary>
    void SetKey(string id, string keyId);

    /// <summary>Marks an item destroyed and records who and why, atomically.</summary>
    void MarkDestroyed(EvidenceDestruction destruction);

    /// <summary>The destruction record, or null.</summary>
    EvidenceDestruction? GetDestruction(string id);

    /// <summary>Records a view.</summary>
    void AddView(EvidenceView view);

    /// <summary>All views of an item, oldest first.</summary>
    IReadOnlyList<EvidenceView> Views(string id);

    /// <summary>Whether a person has seen the item revealed.</summary>
    bool ViewedByHuman(string id);
}

/// <summary>The catalogue in the review database.</summary>
public sealed class DbEvidenceCatalog(ReviewDatabase database) : IEvidenceCatalog
{
    /// <inheritdoc/>
    public void Insert(EvidenceItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        using var c = database.Connect();
        c.Execute(ReviewSql.EvidenceInsert, new { item.Id, item.CaseId, item.KeyId, item.Size, CapturedAt = Ms(item.CapturedAt), RetainUntil = Ms(item.RetainUntil) });
    }

    /// <inheritdoc/>
    public EvidenceItem? Find(string id)
    {
        using var c = database.Connect();
        return c.QuerySingleOrDefault<Row>(ReviewSql.EvidenceGet, new { Id = id })?.ToItem();
    }

    /// <inheritdoc/>
    public IReadOnlyList<EvidenceItem> Due(DateTimeOffset now, int limit)
    {
        using var c = database.Connect();
        return [.. c.Query<Row>(ReviewSql.EvidenceDue, new { Now = Ms(now), Limit = limit }).Select(r => r.ToItem())];
    }

    /// <inheritdoc/>
    public IReadOnlyList<EvidenceItem> Live()
    {
        using var c = database.Connect();
        return [.. c.Query<Row>(ReviewSql.EvidenceLive).Select(r => r.ToItem())];
    }

    /// <inheritdoc/>
    public void SetReported(string id, DateTimeOffset reportedAt, DateTimeOffset retainUntil)
    {
        using var c = database.Connect();
        c.Execute(ReviewSql.EvidenceSetReported, new { Id = id, ReportedAt = Ms(reportedAt), RetainUntil = Ms(retainUntil) });
    }

    /// <inheritdoc/>
    public void SetRetention(string id, DateTimeOffset retainUntil)
    {
        using var c = database.Connect();
        c.Execute(ReviewSql.EvidenceSetRetention, new { Id = id, RetainUntil = Ms(retainUntil) });
    }

    /// <inheritdoc/>
    public void SetHold(string id, bool hold, string? reason)
    {
        using var c = database.Connect();
        c.Execute(ReviewSql.EvidenceSetHold, new { Id = id, Hold = hold ? 1 : 0, Reason = reason });
    }

    /// <inheritdoc/>
    public void SetKey(string id, string keyId)
    {
        using var c = database.Connect();
        c.Execute(ReviewSql.EvidenceSetKey, new { Id = id, KeyId = keyId });
    }

    /// <inheritdoc/>
    public void MarkDestroyed(EvidenceDestruction destruction)
    {
        ArgumentNullException.ThrowIfNull(destruction);
        using var c = database.Connect();
        using var tx = c.BeginTransaction();
        var changed = c.Execute(ReviewSql.EvidenceSetDestroyed, new { Id = destruction.ItemId, At = Ms(destruction.At) }, tx);
        if (changed == 1)
        {
            c.Execute(ReviewSql.EvidenceInsertDestruction, new { Id = destruction.ItemId, At = Ms(destruction.At), destruction.Actor, destruction.Reason }, tx);
        }

        tx.Commit();
    }

    /// <inheritdoc/>
    public EvidenceDestruction? GetDestruction(string id)
    {
        using var c = database.Connect();
        var r = c.QuerySingleOrDefault<DestructionRow>(ReviewSql.EvidenceDestruction, new { Id = id });
        return r is null ? null : new EvidenceDestruction(r.ItemId, DateTimeOffset.FromUnixTimeMilliseconds(r.AtMs), r.Actor, r.Reason);
    }

    /// <inheritdoc/>
    public void AddView(EvidenceView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        using var c = database.Connect();
        c.Execute(ReviewSql.EvidenceInsertView, new { view.ItemId, view.Actor, ActorKind = (int)view.ActorKind, AtMs = Ms(view.At), view.What, view.Purpose });
    }

    /// <inheritdoc/>
    public IReadOnlyList<EvidenceView> Views(string id)
    {
        using var c = database.Connect();
        return [.. c.Query<ViewRow>(ReviewSql.EvidenceViews, new { Id = id })
            .Select(r => new EvidenceView(r.ItemId, r.Actor, (ActorKind)r.ActorKind, DateTimeOffset.FromUnixTimeMilliseconds(r.AtMs), r.What, r.Purpose))];
    }

    /// <inheritdoc/>
    public bool ViewedByHuman(string id)
    {
        using var c = database.Connect();
        return c.ExecuteScalar<long>(ReviewSql.EvidenceHumanViewed, new { Id = id }) > 0;
    }

    private static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    private static DateTimeOffset? Ms(long? t) => t is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(t.Value);

    private sealed record Row(string Id, string? CaseId, string KeyId, long Size, long CapturedAt, long? ReportedAt, long RetainUntil, long LegalHold, string? HoldReason, long? DestroyedAt)
    {
        public EvidenceItem ToItem() => new(Id, CaseId, KeyId, Size, DateTimeOffset.FromUnixTimeMilliseconds(CapturedAt), Ms(ReportedAt),
            DateTimeOffset.FromUnixTimeMilliseconds(RetainUntil), LegalHold != 0, HoldReason, Ms(DestroyedAt));
    }

    private sealed record ViewRow(string ItemId, string Actor, long ActorKind, long AtMs, string What, string Purpose);

    private sealed record DestructionRow(string ItemId, long AtMs, string Actor, string Reason);
}
