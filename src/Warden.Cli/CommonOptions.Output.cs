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

    /// <summary>Outside text as shown in a text table or a one-line message (see <see cref="Core.Runtime.ShownText"/>); jsonl and csv keep the exact text.</summary>
    public static string Shown(string s) => Core.Runtime.ShownText.Of(s);
}
