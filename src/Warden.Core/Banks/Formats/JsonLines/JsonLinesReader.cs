using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// JSON Lines: one object per line with <c>signal_type</c> (string; may be left out when the caller gives a type),
/// <c>signal</c> (string), and optionally <c>labels</c> (object), <c>note</c>, <c>external_id</c> (string or null) and
/// <c>deleted</c> (bool: a tombstone). Label values are strings; a number is taken as its JSON text (<c>1.50</c> →
/// "1.50"), a boolean as "true"/"false", null leaves the label out, and an object or array is an error. Unknown
/// properties are errors (a misspelt "label" must not drop labels silently). Blank lines are skipped.
/// </summary>
internal static class JsonLinesReader
{
    public static IEnumerable<BankEntryRecord> Read(TextReader text, ImportSession session)
    {
        var lines = new LineReader(text, session.Options.MaxLineLength);
        var buffer = new ArrayBufferWriter<byte>(4096);
        while (lines.ReadLine(out var memory, out var tooLong))
        {
            session.Tick(lines.LineNumber);
            if (tooLong)
            {
                session.Report.Read++;
                session.Error(lines.LineNumber, string.Create(CultureInfo.InvariantCulture, $"line longer than {session.Options.MaxLineLength} characters"));
                continue;
            }

            var record = ReadLine(memory.Span, lines.LineNumber, buffer, session);
            if (record is not null)
            {
                yield return record;
            }
        }

        session.Finish(lines.LineNumber);
    }

    private static BankEntryRecord? ReadLine(ReadOnlySpan<char> line, long lineNumber, ArrayBufferWriter<byte> buffer, ImportSession session)
    {
        if (line.IsWhiteSpace())
        {
            return null;
        }

        session.Report.Read++;
        buffer.ResetWrittenCount();
        var n = Encoding.UTF8.GetBytes(line, buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(line.Length)));
        buffer.Advance(n);

        string? typeName = null, signal = null, note = null, ext = null;
        var deleted = false;
        Dictionary<string, string>? labels = null;
        try
        {
            var reader = new Utf8JsonReader(buffer.WrittenSpan, new JsonReaderOptions { MaxDepth = 4 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                session.Error(lineNumber, "expected a JSON object ({\"signal_type\": …, \"signal\": …})");
                return null;
            }

            var seen = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString()!;
                reader.Read();
                var bit = name switch
                {
                    "signal_type" => 1,
                    "signal" => 2,
                    "labels" => 4,
                    "note" => 8,
                    "external_id" => 16,
                    "deleted" => 32,
                    _ => 0,
                };
                if (bit == 0)
                {
                    session.Error(lineNumber, $"unknown property '{ImportSession.Shorten(name)}' (expected signal_type, signal, labels, note, external_id, deleted)");
                    return null;
                }

                if ((seen & bit) != 0)
                {
                    session.Error(lineNumber, $"property '{name}' appears twice");
                    return null;
                }

                seen |= bit;
                string? problem = null;
                switch (bit)
                {
                    case 1:
                        problem = ReadString(ref reader, name, out typeName);
                        break;
                    case 2:
                        problem = ReadString(ref reader, name, out signal);
                        break;
                    case 4:
                        problem = ReadLabels(ref reader, session.DefaultLabels, out labels);
                        break;
                    case 8:
                        problem = ReadString(ref reader, name, out note);
                        break;
                    case 16:
                        problem = ReadString(ref reader, name, out ext);
                        break;
                    default:
                        if (reader.TokenType is JsonTokenType.True or JsonTokenType.False)
                        {
                            deleted = reader.GetBoolean();
                        }
                        else if (reader.TokenType != JsonTokenType.Null)
                        {
                            problem = "'deleted' must be true or false";
                        }

                        break;
                }

                if (problem is not null)
                {
                    session.Error(lineNumber, problem);
                    return null;
                }
            }

            // Anything after the object (a second value, trailing garbage) makes the reader throw here.
            if (reader.Read())
            {
                session.Error(lineNumber, "more than one JSON value on the line");
                return null;
            }
        }
        catch (JsonException ex)
        {
            session.Error(lineNumber, string.Create(CultureInfo.InvariantCulture, $"invalid JSON at column {ex.BytePositionInLine + 1}: {FirstSentence(ex.Message)}"));
            return null;
        }

        IReadOnlyDictionary<string, string> finalLabels = labels ?? session.DefaultLabels;
        if (deleted && string.IsNullOrWhiteSpace(signal))
        {
            // An entry-level tombstone: identified by external_id alone (see BankEntryRecord).
            if (string.IsNullOrWhiteSpace(ext))
            {
                session.Error(lineNumber, "a deleted record needs a signal or an external_id");
                return null;
            }

            return session.Accept(new BankEntryRecord(string.Empty, string.Empty, finalLabels, note, ext, Deleted: true));
        }

        if (string.IsNullOrWhiteSpace(signal))
        {
            session.Error(lineNumber, "'signal' is missing or empty");
            return null;
        }

        if (!session.TryResolveType(typeName, out var type, out var reason))
        {
            session.Error(lineNumber, reason!);
            return null;
        }

        return session.Make(lineNumber, type!, signal, finalLabels, note, ext, deleted);
    }

    private static string? ReadString(ref Utf8JsonReader reader, string name, out string? value)
    {
        value = null;
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                value = reader.GetString();
                return null;
            case JsonTokenType.Null:
                return null;
            default:
                reader.Skip();
                return $"'{name}' must be a string; got {Describe(reader.TokenType)}";
        }
    }

    private static string? ReadLabels(ref Utf8JsonReader reader, IReadOnlyDictionary<string, string> defaults, out Dictionary<string, string>? labels)
    {
        labels = null;
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return $"'labels' must be an object of string values; got {Describe(reader.TokenType)}";
        }

        labels = new Dictionary<string, string>(defaults, StringComparer.Ordinal);
        var own = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            reader.Read();
            if (string.IsNullOrWhiteSpace(key))
            {
                return "label names must not be empty";
            }

            if (!own.Add(key))
            {
                return $"label '{ImportSession.Shorten(key)}' appears twice";
            }

            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    labels[key] = reader.GetString()!;
                    break;
                case JsonTokenType.Number:
                    // The number's text as written, so 1.50 stays "1.50" and big ids keep every digit.
                    labels[key] = Encoding.UTF8.GetString(reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan);
                    break;
                case JsonTokenType.True:
                    labels[key] = "true";
                    break;
                case JsonTokenType.False:
                    labels[key] = "false";
                    break;
                case JsonTokenType.Null:
                    labels.Remove(key);
                    break;
                default:
                    return $"label '{ImportSession.Shorten(key)}' must be a string, number, boolean or null; got {Describe(reader.TokenType)}";
            }
        }

        return null;
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.String => "a string",
        _ => token.ToString(),
    };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        }

        return (cut > 0 ? message[..cut] : message).TrimEnd('.', ' ');
    }
}
