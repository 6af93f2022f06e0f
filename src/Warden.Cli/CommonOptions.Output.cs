using System.Text.Json;

namespace Warden.Cli;

/// <summary>Output helpers shared with the native front end (no storage here: it compiles them too).</summary>
internal static partial class CommonOptions
{
    /// <summary>Writes one JSON object per line.</summary>
    public static void WriteJsonLine(TextWriter output, Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            write(json);
            json.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    /// <summary>An RFC 4180 CSV field: quoted when it holds a comma, quote or line break.</summary>
    public static string CsvField(string s) =>
        s.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;

    /// <summary>
    /// A file name or other outside text as shown in a text table or a one-line message: a backslash, control
    /// characters, line and paragraph separators and bidirectional overrides are written as escapes (<c>\n</c>,
    /// <c>\x1b</c>, <c>\u202e</c>, <c>\\</c>), so a name such as "a.png\n&lt;forged row&gt;" cannot add a line to the
    /// output or reorder what is shown. Plain names come back unchanged; jsonl and csv keep the exact bytes.
    /// </summary>
    public static string Shown(string s)
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
