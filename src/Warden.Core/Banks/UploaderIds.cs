namespace Warden.Core.Banks;

/// <summary>
/// The one rule for an uploader id (the platform's account id that cases are grouped by), applied alike by the
/// HTTP API, `warden backfill --uploader` and the backfill worker.
/// </summary>
public static class UploaderIds
{
    /// <summary>Longest uploader id accepted.</summary>
    public const int MaxLength = 256;

    /// <summary>Why <paramref name="id"/> is refused, or null when it is acceptable (null means "not known").</summary>
    public static string? Problem(string? id) =>
        id is { Length: > MaxLength } ? $"uploader_id is longer than {MaxLength} characters." : null;
}
