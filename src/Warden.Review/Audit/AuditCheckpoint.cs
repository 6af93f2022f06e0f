namespace Warden.Review.Audit;

/// <summary>A signed head of the audit chain, kept outside the database.</summary>
/// <param name="Number">1, 2, 3, ... in the order written.</param>
/// <param name="Seq">The head record's sequence number.</param>
/// <param name="At">When the checkpoint was written.</param>
/// <param name="Hash">The head record's hash.</param>
public sealed record AuditCheckpoint(long Number, long Seq, DateTimeOffset At, byte[] Hash);
