namespace Warden.Review.Users;

/// <summary>
/// The rule for a console user name. Names appear in the audit log ("who viewed what"), in reports and on screen,
/// so they are kept to characters that cannot forge a line or pass for someone else: no spaces, line ends or
/// control characters, no look-alike letters from other scripts, and no two names that differ only in case.
/// </summary>
public static class UserNames
{
    /// <summary>Longest name.</summary>
    public const int MaxLength = 64;

    /// <summary>The rule in words.</summary>
    public const string Rule = "a user name is 1-64 ASCII letters, digits, '.', '_', '-', '+' or '@', starting with a letter or digit";

    /// <summary>Why <paramref name="name"/> is refused, or null when it follows the rule.</summary>
    public static string? Problem(string? name) =>
        name is { Length: > 0 and <= MaxLength } && char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+' or '@')
            ? null
            : $"Invalid user name '{Shown(name)}': {Rule}.";

    // Quoted in an error line: escaped (one line whatever the name holds), long names cut.
    private static string Shown(string? name)
    {
        var text = name ?? string.Empty;
        return Core.Runtime.ShownText.Of(text.Length > 80 ? text[..80] + "…" : text);
    }
}
