using System.Text.Json;

namespace Warden.Review;

/// <summary>Retroactive intake: a logged upload that a bank entry added later matches (no media: only its signals were kept).</summary>
public sealed partial class ReviewService
{
    /// <summary>The label that marks a case member as found retroactively (shown with the match in the console).</summary>
    public const string RetroactiveLabel = "retroactive";

    /// <summary>
    /// Adds a retroactive match to its uploader's case (opening one if needed), keyed by the match's idempotency
    /// key so a repeated hand-off adds nothing; the upload time is the original one.
    /// </summary>
    public bool IntakeRetroactive(string matchKey, string? uploaderId, DateTimeOffset uploadedAt, string? url, string? sha256, string bankName, string signalType, int distance, IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!_options.CaseIntake)
        {
            return false;
        }

        var submissionId = "retro-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(matchKey)))[..32];
        var marked = new Dictionary<string, string>(labels, StringComparer.Ordinal) { [RetroactiveLabel] = uploadedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture) };
        var record = new SubmissionRecord(
            submissionId,
            string.IsNullOrWhiteSpace(uploaderId) ? "unknown" : uploaderId,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            null,
            sha256 is null ? [] : new Dictionary<string, string> { ["sha256"] = sha256 },
            [new MatchRecord(bankName, signalType, distance, marked)],
            null,
            url,
            uploadedAt.ToUnixTimeMilliseconds(),
            null,
            null);
        // Idempotent by submission id (derived from the match key): a repeated hand-off adds nothing.
        return Cases.Add(record.ToSubmission(), JsonSerializer.Serialize(SealContext(record), Json)).Added;
    }
}
