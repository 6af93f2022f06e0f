using System.Text;

namespace Warden.Core.Banks.Formats;

/// <summary>The hash-list file formats Warden reads (and, except <see cref="NcmecXml"/>, writes).</summary>
public enum BankFileFormat
{
    /// <summary>RFC 4180 CSV with a header row: <c>signal_type</c>, <c>signal</c>, optional <c>note</c> and <c>external_id</c>, every other column a label.</summary>
    Csv = 0,

    /// <summary>One JSON object per line: <c>signal_type</c>, <c>signal</c>, <c>labels</c>, <c>note</c>, <c>external_id</c>, <c>deleted</c>.</summary>
    JsonLines = 1,

    /// <summary>One hash per line, the signal type given by the caller (or detected by length when asked); blank lines and <c>#</c> comments skipped.</summary>
    Plain = 2,

    /// <summary>An NCMEC Hash Sharing API v2 entries page (<c>queryResult</c>); read only.</summary>
    NcmecXml = 3,
}

/// <summary>Names and detection of <see cref="BankFileFormat"/> values.</summary>
public static class BankFileFormats
{
    /// <summary>The names a CLI accepts, in the order it lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["csv", "jsonl", "plain", "ncmec"];

    /// <summary>The CLI name of a format (<c>csv</c>, <c>jsonl</c>, <c>plain</c>, <c>ncmec</c>).</summary>
    public static string Name(BankFileFormat format) => format switch
    {
        BankFileFormat.Csv => "csv",
        BankFileFormat.JsonLines => "jsonl",
        BankFileFormat.Plain => "plain",
        BankFileFormat.NcmecXml => "ncmec",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>Parses a CLI name; a few aliases (<c>ndjson</c>, <c>txt</c>, <c>xml</c>) are accepted too. Case-insensitive.</summary>
    public static bool TryParse(string? name, out BankFileFormat format)
    {
        switch (name?.Trim().ToUpperInvariant())
        {
            case "CSV":
                format = BankFileFormat.Csv;
                return true;
            case "JSONL" or "NDJSON" or "JSONLINES" or "JSON-LINES":
                format = BankFileFormat.JsonLines;
                return true;
            case "PLAIN" or "TXT" or "TEXT":
                format = BankFileFormat.Plain;
                return true;
            case "NCMEC" or "XML" or "NCMEC-XML":
                format = BankFileFormat.NcmecXml;
                return true;
            default:
                format = default;
                return false;
        }
    }

    /// <summary>
    /// Guesses a file's format: first from an unambiguous extension (<c>.csv</c>, <c>.jsonl</c>/<c>.ndjson</c>,
    /// <c>.xml</c>), otherwise by sniffing the first bytes (<c>&lt;</c> → NCMEC XML, <c>{</c> → JSON Lines, a first line
    /// with a comma → CSV, a hex-digit first line → plain). Null when neither says.
    /// </summary>
    /// <param name="path">The file name (may be "-" or empty for standard input).</param>
    /// <param name="head">The file's first bytes (a few KiB is plenty; may be empty).</param>
    public static BankFileFormat? Detect(string? path, ReadOnlySpan<byte> head)
    {
        switch (Path.GetExtension(path ?? string.Empty).ToUpperInvariant())
        {
            case ".CSV":
                return BankFileFormat.Csv;
            case ".JSONL" or ".NDJSON":
                return BankFileFormat.JsonLines;
            case ".XML":
                return BankFileFormat.NcmecXml;
            default:
                break;
        }

        // Sniff: skip a UTF-8 BOM and leading whitespace; look at the first line that is not a comment.
        if (head.StartsWith(Encoding.UTF8.Preamble))
        {
            head = head[Encoding.UTF8.Preamble.Length..];
        }

        while (true)
        {
            head = head.TrimStart(" \t\r\n"u8);
            if (head.IsEmpty)
            {
                return null;
            }

            if (head[0] == (byte)'<')
            {
                return BankFileFormat.NcmecXml;
            }

            if (head[0] == (byte)'{')
            {
                return BankFileFormat.JsonLines;
            }

            var end = head.IndexOfAny((byte)'\n', (byte)'\r');
            var line = end < 0 ? head : head[..end];
            if (line[0] == (byte)'#')
            {
                if (end < 0)
                {
                    return null;
                }

                head = head[end..];
                continue;
            }

            if (line.Contains((byte)','))
            {
                return BankFileFormat.Csv;
            }

            line = line.TrimEnd(" \t"u8);
            foreach (var b in line)
            {
                if (!char.IsAsciiHexDigit((char)b))
                {
                    return null;
                }
            }

            return BankFileFormat.Plain;
        }
    }
}
