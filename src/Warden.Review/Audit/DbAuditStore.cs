using System.Data.Common;
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

    /// <summary>The newest record, or null when empty.</summary>
    AuditRecord? Last() => Query(new AuditFilter()).LastOrDefault();
}

/// <summary>
/// The audit log in the review database (table <c>audit_log</c>, append-only by trigger). One chain however
/// many nodes append: each append reads the tail and inserts under a write lock (SQLite: the IMMEDIATE
/// transaction; PostgreSQL: an advisory lock), and the primary key on <c>seq</c> refuses a second record
/// with the same number whatever happens.
/// </summary>
public sealed class DbAuditStore(ReviewDatabase database) : IAuditStore
{
    private const int PageSize = 2000;

    // In-process writers queue here instead of each holding a pooled connection while they wait for the
    // database lock; other processes are serialised by the database.
    private readonly Lock _appendLock = new();

    /// <inheritdoc/>
    public AuditRecord Append(Func<long, byte[]?, AuditRecord> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        lock (_appendLock)
        {
            using var connection = database.Connect();
            using var tx = database.BeginWrite(connection, ReviewDatabase.AuditLockKey);
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
    public IEnumerable<AuditRecord> Query(AuditFilter filter) => Query(database.Connect, filter);

    /// <inheritdoc/>
    public AuditRecord? Last()
    {
        using var connection = database.Connect();
        var r = connection.QuerySingleOrDefault<Row>(ReviewSql.AuditSelectColumns + " ORDER BY seq DESC LIMIT 1");
        return r?.ToRecord();
    }

    /// <summary>The records of the <c>audit_log</c> reached through <paramref name="connect"/>, in pages (also for a legacy review file).</summary>
    internal static IEnumerable<AuditRecord> Query(Func<DbConnection> connect, AuditFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        long after = 0;
        while (true)
        {
            List<Row> page;
            using (var connection = connect())
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
                yield return r.ToRecord();
            }

            if (page.Count < PageSize)
            {
                yield break;
            }

            after = page[^1].Seq;
        }
    }

    private sealed record TailRow(long Seq, byte[] Hash);

    private sealed record Row(long Seq, long AtMs, string Actor, string Action, string Subject, string Details, byte[] PrevHash, byte[] Hash)
    {
        public AuditRecord ToRecord() => new(Seq, DateTimeOffset.FromUnixTimeMilliseconds(AtMs), Actor, Action, Subject, AuditLog.ParseDetails(Details), PrevHash, Hash);
    }
}
