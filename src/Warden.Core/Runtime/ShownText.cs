namespace Warden.Core.Runtime;

/// <summary>
/// Outside text (a file name, a user or bank name, a feed's label) as shown in a text table or a one-line message:
/// a backslash, control characters, line and paragraph separators and bidirectional overrides are written as
/// escapes (<c>\n</c>, <c>\x1b</c>, <c>\u202e</c>, <c>\\</c>), so the text cannot add a line to the output or
/// reorder what is shown. Plain text comes back unchanged. The one escaping rule for the CLI, storage and review.
/// </summary>
public static class ShownText
{
    /// <summary><paramref name="s"/> escaped as described above.</summary>
    public static string Of(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (!s.Any(NeedsEscape))
        {
            return s;
        }

        var b = new System.Text.StringBuilder(s.Length + 8);
        foreach (var c in s)
        {
            _ = c switch
            {
                '\\' => b.Append("\\\\"),
                '\n' => b.Append("\\n"),
                '\r' => b.Append("\\r"),
                '\t' => b.Append("\\t"),
                _ when NeedsEscape(c) => c < 0x100 ? b.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{(int)c:x2}") : b.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => b.Append(c),
            };
        }

        return b.ToString();
    }

    private static bool NeedsEscape(char c) =>
        c == '\\' || char.IsControl(c) || c is '\u2028' or '\u2029' or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069') or '\u200e' or '\u200f';
}
