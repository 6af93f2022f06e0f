using System.Buffers;
using System.Text;

namespace Warden.Review.Reporting;

/// <summary>
/// Makes untrusted text safe to carry in an XML 1.0 document. Uploaders choose file names, ids, URLs and
/// e-mail addresses, so any of them may hold characters XML 1.0 forbids (C0 controls other than tab, LF
/// and CR, lone surrogates, U+FFFE, U+FFFF); one such character made the CyberTipline writer throw and a
/// delivery loop forever. Every forbidden character, and those XML 1.0 asks documents to avoid (DEL, C1
/// controls, the non-characters U+FDD0–U+FDEF and U+xFFFE/U+xFFFF of every plane), becomes U+FFFD, so a
/// reader can see that something was replaced. The raw value stays in the evidence record.
/// </summary>
public static class XmlSafeText
{
    /// <summary>What replaces a character XML cannot carry.</summary>
    public const char Replacement = '\uFFFD';

    /// <summary>Marks a value shortened to a documented maximum length.</summary>
    public const char Ellipsis = '\u2026';

    // Everything at or above U+0020 up to U+007E is fine; the search for the first bad char is vectorised.
    private static readonly SearchValues<char> Suspect = SearchValues.Create(BuildSuspect());

    /// <summary>True when <paramref name="text"/> holds only characters <see cref="Clean(string)"/> keeps.</summary>
    public static bool IsClean(ReadOnlySpan<char> text) => FirstBad(text) < 0;

    /// <summary>
    /// Returns <paramref name="text"/> with every character XML 1.0 forbids or discourages replaced by
    /// U+FFFD; the same instance when nothing needs replacing (no allocation on the common path).
    /// </summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var first = FirstBad(text);
        if (first < 0)
        {
            return text;
        }

        return string.Create(text.Length, (text, first), static (dest, state) =>
        {
            var (src, start) = state;
            src.AsSpan(0, start).CopyTo(dest);
            var i = start;
            while (i < src.Length)
            {
                var c = src[i];
                if (char.IsHighSurrogate(c) && i + 1 < src.Length && char.IsLowSurrogate(src[i + 1]))
                {
                    var cp = char.ConvertToUtf32(c, src[i + 1]);
                    var keep = (cp & 0xFFFE) != 0xFFFE; // U+xFFFE / U+xFFFF are non-characters
                    dest[i] = keep ? c : Replacement;
                    dest[i + 1] = keep ? src[i + 1] : Replacement;
                    i += 2;
                    continue;
                }

                dest[i] = IsBadBmp(c) ? Replacement : c;
                i++;
            }
        });
    }

    /// <summary>
    /// <see cref="Clean(string)"/>, then trimmed; null when nothing but white space remains, and shortened to
    /// <paramref name="maxLength"/> UTF-16 units (NCMEC counts Java characters) with a trailing ellipsis and
    /// without splitting a surrogate pair.
    /// </summary>
    public static string? Field(string? text, int maxLength = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        if (text is null)
        {
            return null;
        }

        var clean = Clean(text).Trim();
        if (clean.Length == 0)
        {
            return null;
        }

        if (clean.Length <= maxLength)
        {
            return clean;
        }

        var cut = maxLength - 1;
        if (char.IsLowSurrogate(clean[cut]) && char.IsHighSurrogate(clean[cut - 1]))
        {
            cut--;
        }

        return string.Concat(clean.AsSpan(0, cut), [Ellipsis]);
    }

    /// <summary>
    /// A printable, single-line, bounded form for logs and alarm messages: controls (CR and LF included,
    /// against forged log lines) become U+FFFD, as does anything <see cref="Clean(string)"/> replaces.
    /// </summary>
    public static string ForLog(string? text, int maxLength = 300)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }

        var sb = new StringBuilder(Math.Min(text.Length, maxLength));
        foreach (var c in Clean(text))
        {
            if (sb.Length >= maxLength)
            {
                sb.Append(Ellipsis);
                break;
            }

            sb.Append(char.IsControl(c) ? Replacement : c);
        }

        return sb.ToString();
    }

    private static int FirstBad(ReadOnlySpan<char> text)
    {
        var offset = 0;
        while (true)
        {
            var i = text[offset..].IndexOfAny(Suspect);
            if (i < 0)
            {
                return -1;
            }

            i += offset;
            var c = text[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    if ((char.ConvertToUtf32(c, text[i + 1]) & 0xFFFE) == 0xFFFE)
                    {
                        return i;
                    }

                    offset = i + 2;
                    continue;
                }

                return i;
            }

            if (IsBadBmp(c))
            {
                return i;
            }

            offset = i + 1;
        }
    }

    // A BMP code unit judged alone (a low surrogate here has no high surrogate before it).
    private static bool IsBadBmp(char c) =>
        (c < 0x20 && c is not ('\t' or '\n' or '\r'))
        || c is >= '\u007F' and <= '\u009F'
        || char.IsSurrogate(c)
        || c is >= '\uFDD0' and <= '\uFDEF'
        || c is '\uFFFE' or '\uFFFF';

    private static string BuildSuspect()
    {
        var sb = new StringBuilder();
        for (var c = 0; c <= 0xFFFF; c++)
        {
            if (c < 0x20 || c is >= 0x7F and <= 0x9F || c is >= 0xD800 and <= 0xDFFF || c is >= 0xFDD0 and <= 0xFDEF || c is 0xFFFE or 0xFFFF)
            {
                sb.Append((char)c);
            }
        }

        return sb.ToString();
    }
}
