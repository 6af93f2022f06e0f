using Warden.Core.Banks;

namespace Warden.Storage;

/// <summary>An entry's state after a change, as an index tailer needs it.</summary>
/// <param name="Id">Entry id.</param>
/// <param name="BankId">Bank id.</param>
/// <param name="SignalType">Signal type name.</param>
/// <param name="Signal">Normalised signal (never changes for an id).</param>
/// <param name="Enabled">False when the entry was disabled.</param>
/// <param name="Deleted">True when the entry is a tombstone.</param>
/// <param name="Seq">Number of the entry's latest change.</param>
public readonly record struct EntryChange(long Id, long BankId, string SignalType, string Signal, bool Enabled, bool Deleted, long Seq)
{
    /// <summary>True when a matcher should hold the entry (it must also check its bank is enabled).</summary>
    public bool Live => Enabled && !Deleted;
}

/// <summary>One page of the change feed (see <see cref="BankStore.ChangesSince"/>).</summary>
/// <param name="Banks">Banks changed in the page, in their current state (enabled, kind, threshold, ...).</param>
/// <param name="Entries">Entries changed in the page, in change order, in their current state.</param>
/// <param name="HighWater">The change number to ask after next time. Below the afterSeq asked with, the database was replaced: rebuild.</param>
/// <param name="HasMore">True when more changes are already committed beyond <paramref name="HighWater"/>.</param>
public sealed record ChangeBatch(IReadOnlyList<Bank> Banks, IReadOnlyList<EntryChange> Entries, long HighWater, bool HasMore);
