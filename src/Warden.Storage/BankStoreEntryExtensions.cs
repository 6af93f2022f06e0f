using Dapper;
using Warden.Core.Banks;
namespace Warden.Storage;

/// <summary>Entry operations the API needs on top of <see cref="BankStore"/> (here, so bank tables are queried only in Warden.Storage).</summary>
public static class BankStoreEntryExtensions
{
    /// <summary>
    /// Adds one entry through the import path (so it takes a change number and reaches every node's index)
    /// and returns it; adding an identical entry again returns the existing one.
    /// </summary>
    public static BankEntry AddEntry(this BankStore store, long bankId, BankEntryRecord record, string source)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(record);
        store.Import(bankId, [record], source);
        using var c = store.Database.OpenConnection();
        var id = c.ExecuteScalar<long?>(
            "SELECT id FROM bank_entries WHERE bank_id = @bankId AND signal_type = @SignalType AND signal = @Signal AND external_id = @externalId",
            new { bankId, record.SignalType, record.Signal, externalId = record.ExternalId ?? string.Empty })
            ?? throw new InvalidOperationException("The entry was imported but cannot be found.");
        return store.GetEntries([id])[id];
    }

    /// <summary>A page of a bank's entries in id order, after <paramref name="afterId"/>.</summary>
    public static IEnumerable<BankEntry> ListEntries(this BankStore store, long bankId, long afterId, int limit)
    {
        ArgumentNullException.ThrowIfNull(store);
        using var c = store.Database.OpenConnection();
        var ids = c.Query<long>("SELECT id FROM bank_entries WHERE bank_id = @bankId AND id > @afterId ORDER BY id LIMIT @limit", new { bankId, afterId, limit }).ToList();
        var entries = store.GetEntries(ids);
        return ids.Where(entries.ContainsKey).Select(id => entries[id]);
    }
}
