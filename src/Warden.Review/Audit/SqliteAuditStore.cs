using Dapper;
using Warden.Review.Storage;

namespace Warden.Review.Audit;

/// <summary>Where audit records live. <see cref="Append"/> must be atomic: read the tail and insert in one step.</summary>
public interface IAuditStore
{
    /// <summary>Reads the last (seq, hash) — (0, null) when empty — builds the record with <paramref name="build"/> and inserts it, atomically.</summary>
    AuditRecord Append(Func<long, byte[]?, AuditRecord> build);

    /// <summary>Matching records in sequence order, streamed in pages.</summary>
    IEnumerable<AuditRecord> Query(AuditFilter filter);
}

/// <summary>The audit log in the review database (table <c>audit_log</c>, append-only by trigger).</summary>
public sealed class SqliteAuditStore(ReviewDatabase database) : IAuditStore
{
    private const int PageSize = 2000;

    // In-process writers queue here instead of spinning on SQLITE_BUSY; other processes are serialised by
    // the IMMEDIATE transaction.
    private readonly Lock _appendLock = new();

    /// <inheritdoc/>
    public AuditRecord Append(Func<long, byte[]?, AuditRecord> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        lock (_appendLock)
        {
            using var connection = database.Connect();
            using var tx = connection.BeginTransaction(deferred: false);
            var last = connection.QuerySingleOrDefault<TailRow>(ReviewSql.AuditLast, transaction: tx);
            var record = build(last?.Seq ?? 0, last?.Hash);
            connection.Execute(ReviewSql.AuditInsert, new
            {
                record.Seq,
                AtMs = record.At.ToUnixTimeMilliseconds(),
                record.Actor,
                record.Action,
                record.Subject,
                Details = AuditLog.DetailsJson(record.Details),
                record.PrevHash,
                record.Hash,
            }, tx);
            tx.Commit();
            return record;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<AuditRecord> Query(AuditFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        long after = 0;
        while (true)
        {
            List<Row> page;
            using (var connection = database.Connect())
            {
                page = connection.Query<Row>(ReviewSql.AuditQuery, new
                {
                    After = after,
                    filter.Actor,
                    filter.Action,
                    filter.Subject,
                    FromMs = filter.From?.ToUnixTimeMilliseconds(),
                    ToMs = filter.To?.ToUnixTimeMilliseconds(),
                    Limit = PageSize,
                }).AsList();
            }

            foreach (var r in page)
            {
                yield return new AuditRecord(r.Seq, DateTimeOffset.FromUnixTimeMilliseconds(r.AtMs), r.Actor, r.Action, r.Subject, AuditLog.ParseDetails(r.Details), r.PrevHash, r.Hash);
            }

            if (page.Count < PageSize)
            {
                yield break;
            }

            after = page[^1].Seq;
        }
    }

    private sealed record TailRow(long Seq, byte[] Hash);

    private sealed record Row(long Seq, long AtMs, string Actor, string Action, string Subject, string Details, byte[] PrevHash, byte[] Hash);
}
