namespace Warden.Server.Auth;

/// <summary>
/// What an API key may do. Roles are separate duties, not a ladder: a submitter's key (in an upload
/// pipeline, the most exposed) cannot read or change banks; only <see cref="Admin"/> can do everything.
/// </summary>
public enum Role
{
    /// <summary>Hash and match content (the upload pipeline).</summary>
    Submitter = 1,

    /// <summary>Create, import, edit and export banks; match to test them.</summary>
    Curator = 2,

    /// <summary>Review matched content (the review console).</summary>
    Reviewer = 3,

    /// <summary>Everything, including keys, webhooks and settings.</summary>
    Admin = 4,
}

/// <summary>Role names and the authorization policies built on them.</summary>
public static class Roles
{
    /// <summary>Policy: hash and match (submitter, curator, admin).</summary>
    public const string Submit = "submit";

    /// <summary>Policy: read and change banks (curator, admin).</summary>
    public const string Curate = "curate";

    /// <summary>Policy: review (reviewer, admin).</summary>
    public const string Review = "review";

    /// <summary>Policy: keys, webhooks, settings, metrics (admin).</summary>
    public const string Administer = "administer";

    /// <summary>The lower-case name used in the API, the CLI and the database.</summary>
    public static string Name(Role role) => role switch
    {
        Role.Submitter => "submitter",
        Role.Curator => "curator",
        Role.Reviewer => "reviewer",
        Role.Admin => "admin",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>Parses a role name (case-insensitive).</summary>
    public static bool TryParse(string? text, out Role role)
    {
        role = default;
        foreach (var r in Enum.GetValues<Role>())
        {
            if (string.Equals(Name(r), text?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                role = r;
                return true;
            }
        }

        return false;
    }

    /// <summary>All role names, for messages.</summary>
    public static string AllNames => string.Join(", ", Enum.GetValues<Role>().Select(Name));

    /// <summary>The roles a policy admits.</summary>
    public static Role[] Admitted(string policy) => policy switch
    {
        Submit => [Role.Submitter, Role.Curator, Role.Admin],
        Curate => [Role.Curator, Role.Admin],
        Review => [Role.Reviewer, Role.Admin],
        Administer => [Role.Admin],
        _ => throw new ArgumentOutOfRangeException(nameof(policy)),
    };
}
