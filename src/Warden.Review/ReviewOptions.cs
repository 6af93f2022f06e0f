using Warden.Review.Users;

namespace Warden.Review;

/// <summary>
/// Review console settings (configuration section <c>Warden:Review</c>, environment <c>Warden__Review__…</c>).
/// Evidence preservation is off unless both <see cref="EvidenceDirectory"/> and <see cref="MasterKey"/> are set;
/// then matched media is stored encrypted for review and reporting, otherwise media is never stored.
/// </summary>
public sealed class ReviewOptions
{
    /// <summary>Whether matched uploads open review cases (default true). Off: nothing is added to cases and no media is kept, e.g. on match-only nodes.</summary>
    public bool CaseIntake { get; set; } = true;

    /// <summary>SQLite file of the review state (cases, users, sessions, audit log, evidence catalogue, report outbox). Default: next to the database file, <c>NAME.review.db</c>.</summary>
    public string? Database { get; set; }

    /// <summary>Folder of the encrypted evidence files; null: preservation is off.</summary>
    public string? EvidenceDirectory { get; set; }

    /// <summary>Base64 of the 32-byte master key that wraps each item's key; null: preservation is off.</summary>
    public string? MasterKey { get; set; }

    /// <summary>Id of the master key (stored in each item's header, for rotation).</summary>
    public string MasterKeyId { get; set; } = "k1";

    /// <summary>Reveals one reviewer may make per UTC day; further reveals are refused.</summary>
    public int DailyExposureCap { get; set; } = 200;

    /// <summary>Known-hash matches may be decided without viewing (the record says so).</summary>
    public bool AllowDecisionWithoutViewing { get; set; } = true;

    /// <summary>Organisation default: media blurred.</summary>
    public bool DefaultBlur { get; set; } = true;

    /// <summary>Organisation default: media greyscale.</summary>
    public bool DefaultGreyscale { get; set; } = true;

    /// <summary>
    /// Organisation default blur strength of the served derivative: the gaussian sigma as a percentage of the
    /// derivative's longest side (6: a 256-pixel preview is blurred with sigma ≈ 15 px). Users may choose their own.
    /// </summary>
    public int DefaultBlurPercent { get; set; } = 6;

    /// <summary>
    /// The lightest blur the server ever serves without a logged reveal, also when a user turns blur off
    /// (at least 1). Seeing the picture unobscured is a reveal: logged, counted and reported as viewed.
    /// </summary>
    public int MinimumBlurPercent { get; set; } = 2;

    /// <summary>Longest side of the served derivative in pixels (32–512; users may choose smaller).</summary>
    public int PreviewSize { get; set; } = 256;

    /// <summary>How long a reveal's grant to receive the original bytes lasts (seconds, 5–600; used once).</summary>
    public int RevealSeconds { get; set; } = 60;

    /// <summary>Minutes between signed checkpoints of the audit chain's head in the blob store (with evidence preservation on; 0: off).</summary>
    public int AuditCheckpointMinutes { get; set; } = 10;

    /// <summary>
    /// Cluster representatives of recently active cases held in memory (all cases together, least recently used
    /// dropped first); the rest are read from the database when an upload for their case arrives.
    /// </summary>
    public int CaseCacheRepresentatives { get; set; } = 100_000;

    /// <summary>Memory for cached derivatives (MiB, in memory only).</summary>
    public int PreviewCacheMegabytes { get; set; } = 32;

    /// <summary>Session lifetime (minutes of inactivity are not tracked: a session ends this long after login).</summary>
    public int SessionMinutes { get; set; } = 8 * 60;

    /// <summary>Minutes a reviewer's claim on a case lasts unless renewed (1–240; the console renews it while the case is open).</summary>
    public int ClaimMinutes { get; set; } = 15;

    /// <summary>Name of the allow-list bank that false-positive decisions add to (created when missing).</summary>
    public string FalsePositiveBank { get; set; } = "review-false-positives";

    /// <summary>CyberTipline reporting.</summary>
    public CyberTiplineSettings CyberTipline { get; set; } = new();

    /// <summary>Console login backoff and lockout.</summary>
    public LoginThrottleSettings Login { get; set; } = new();
}

/// <summary>Where and as whom reports are filed (section <c>Warden:Review:CyberTipline</c>).</summary>
public sealed class CyberTiplineSettings
{
    /// <summary><c>test</c> (default) or <c>production</c>.</summary>
    public string Environment { get; set; } = "test";

    /// <summary>Base URL used when the environment is test (default: NCMEC's test server; the bundled fake in demos).</summary>
    public string? TestUrl { get; set; }

    /// <summary>Base URL used when the environment is production (default: NCMEC's production server).</summary>
    public string? ProductionUrl { get; set; }

    /// <summary>ISPWS user name.</summary>
    public string Username { get; set; } = "";

    /// <summary>ISPWS password.</summary>
    public string Password { get; set; } = "";

    /// <summary>How often the delivery worker looks for due reports (milliseconds).</summary>
    public int PollMilliseconds { get; set; } = 1000;

    /// <summary>First retry delay of a failed step (milliseconds); doubles per consecutive failure of that step.</summary>
    public int RetryBaseMilliseconds { get; set; } = 30_000;

    /// <summary>Longest retry delay (seconds).</summary>
    public int RetryMaxSeconds { get; set; } = 600;

    /// <summary>Failures of one step in a row before the delivery is dead-lettered (alarm, console notice, admin requeue).</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Fresh reports (after retractions or deleted reports) before the delivery is dead-lettered.</summary>
    public int MaxRestarts { get; set; } = 10;

    /// <summary>Deliveries advanced at once: a slow or failing one does not hold up the others.</summary>
    public int Parallelism { get; set; } = 4;

    /// <summary>Seconds a node's lease on a delivery lasts (renewed every third of it while it works): how long another node waits before taking over the deliveries of a node that died (3–3600).</summary>
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>The service name in reports.</summary>
    public string? ServiceName { get; set; }

    /// <summary>Reporting person's first name.</summary>
    public string ReporterFirstName { get; set; } = "Trust";

    /// <summary>Reporting person's last name.</summary>
    public string ReporterLastName { get; set; } = "Safety";

    /// <summary>Reporting person's e-mail (required by NCMEC).</summary>
    public string ReporterEmail { get; set; } = "trust-and-safety@example.org";

    /// <summary>Whether the organisation signed NCMEC's hash-sharing MOU (then the industry classification is sent).</summary>
    public bool IndustryClassificationMou { get; set; }
}
