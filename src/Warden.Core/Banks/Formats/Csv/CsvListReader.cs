using System.Globalization;
using System.Text;
using CsvHelper;
using Warden.Core.Signals;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// CSV lists (RFC 4180, comma-separated, UTF-8): a header row naming <c>signal_type</c> and <c>signal</c>
/// (required; <c>signal_type</c> may be left out when the caller gives a type), the reserved optional <c>note</c>
/// and <c>external_id</c>, and any other column as a label (an empty cell means the label is absent). Reserved
/// names match ignoring case; label names are kept as written. Spaces around unquoted cells are trimmed, empty
/// lines and lines starting with '#' are skipped.
/// </summary>
internal static class CsvListReader
{
    internal const string SignalTypeColumn = "signal_type";
    internal const string SignalColumn = "signal";
    internal const string NoteColumn = "note";
    internal const string ExternalIdColumn = "external_id";

    private static readonly string[] Reserved = [SignalTypeColumn, SignalColumn, NoteColumn, ExternalIdColumn];

    public static IEnumerable<BankEntryRecord> Read(Stream? stream, TextReader? text, ImportSession session)
    {
        var options = new CsvReaderOptions
        {
            Separator = ',',
            HasHeader = true,
            Mode = CsvMode.Rfc4180,
            SkipEmptyLines = true,
            CommentPrefix = '#',
            TrimWhitespace = true,
            DetectSeparatorHint = false,

            // Bounded memory: an unclosed quote must not pull the rest of a large file into one record.
            MaxRecordSize = session.Options.MaxLineLength,
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Skip,
            FieldCountMismatch = CsvFieldCountHandling.Skip,
            OnMalformedRecord = m =>
            {
                session.Report.Read++;
                session.Error(m.LineNumber, Describe(m.Reason));
            },
        };

        using var csv = stream is not null ? CsvReader.Create(stream, options, leaveOpen: true) : CsvReader.Create(text!, options, leaveOpen: true);
        var columns = ReadHeader(csv, session);
        while (true)
        {
            bool more;
            try
            {
                more = csv.Read();
            }
            catch (CsvFormatException ex)
            {
                throw session.Fatal(ex.LineNumber > 0 ? ex.LineNumber : csv.LineNumber, ex.Message, ex);
            }

            if (!more)
            {
                break;
            }

            session.Tick(csv.LineNumber);
            session.Report.Read++;
            var record = ReadRow(csv, columns, session);
            if (record is not null)
            {
                yield return record;
            }
        }

        session.Finish(Math.Max(csv.LineNumber, session.Report.Lines));
    }

    private sealed record Columns(int SignalType, int Signal, int Note, int ExternalId, (int Index, string Name)[] Labels);

    private static Columns ReadHeader(CsvReader csv, ImportSession session)
    {
        IReadOnlyList<string> header;
        try
        {
            header = csv.Headers;
        }
        catch (CsvFormatException ex)
        {
            throw session.Fatal(ex.LineNumber > 0 ? ex.LineNumber : 1, "bad header row: " + ex.Message, ex);
        }

        if (header.Count == 0)
        {
            throw session.Fatal(1, "no header row; a CSV list starts with a header naming signal_type and signal (and any label columns)");
        }

        var line = Math.Max(1, csv.LineNumber);
        int type = -1, signal = -1, note = -1, ext = -1;
        var labels = new List<(int, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < header.Count; i++)
        {
            var name = header[i].Trim();
            if (name.Length == 0)
            {
                throw session.Fatal(line, string.Create(CultureInfo.InvariantCulture, $"header column {i + 1} has no name"));
            }

            var reserved = Array.FindIndex(Reserved, r => string.Equals(r, name, StringComparison.OrdinalIgnoreCase));
            var key = reserved >= 0 ? Reserved[reserved] : name;
            if (!seen.Add(key))
            {
                throw session.Fatal(line, $"header names column '{ImportSession.Shorten(name)}' twice");
            }

            switch (reserved)
            {
                case 0:
                    type = i;
                    break;
                case 1:
                    signal = i;
                    break;
                case 2:
                    note = i;
                    break;
                case 3:
                    ext = i;
                    break;
                default:
                    labels.Add((i, name));
                    break;
            }
        }

        if (signal < 0)
        {
            throw session.Fatal(line, $"the header has no '{SignalColumn}' column (columns: {ImportSession.Shorten(string.Join(",", header), 200)})");
        }

        if (type < 0 && session.DefaultType is null)
        {
            throw session.Fatal(line, $"the header has no '{SignalTypeColumn}' column and no signal type was given (--signal-type)");
        }

        return new Columns(type, signal, note, ext, [.. labels]);
    }

    private static BankEntryRecord? ReadRow(CsvReader csv, Columns columns, ImportSession session)
    {
        var line = csv.LineNumber;
        ISignalType? type;
        string? reason;
        if (columns.SignalType < 0)
        {
            type = session.DefaultType;
        }
        else
        {
            Span<char> typeChars = stackalloc char[32];
            var typeBytes = csv.GetSpan(columns.SignalType);
            if (typeBytes.Length > typeChars.Length)
            {
                session.Error(line, $"unknown signal type '{ImportSession.Shorten(Encoding.UTF8.GetString(typeBytes))}'");
                return null;
            }

            var n = Encoding.UTF8.GetChars(typeBytes, typeChars);
            if (!session.TryResolveType(typeChars[..n], out type, out reason))
            {
                session.Error(line, reason!);
                return null;
            }
        }

        var signalBytes = csv.GetSpan(columns.Signal);
        if (signalBytes.IsEmpty)
        {
            session.Error(line, "signal is empty");
            return null;
        }

        // Hashes fit the stack; video signals (vpdq frame lists, tmk_pdqf base64) are bounded by the record size limit.
        Span<char> signal = signalBytes.Length <= 128 ? stackalloc char[128] : new char[signalBytes.Length];

        signal = signal[..Encoding.UTF8.GetChars(signalBytes, signal)];

        IReadOnlyDictionary<string, string> labels = session.DefaultLabels;
        if (columns.Labels.Length > 0)
        {
            Dictionary<string, string>? own = null;
            foreach (var (index, name) in columns.Labels)
            {
                if (!csv.IsEmpty(index))
                {
                    own ??= new Dictionary<string, string>(session.DefaultLabels, StringComparer.Ordinal);
                    own[name] = csv.GetString(index);
                }
            }

            if (own is not null)
            {
                labels = own;
            }
        }

        var note = columns.Note >= 0 && !csv.IsEmpty(columns.Note) ? csv.GetString(columns.Note) : null;
        var ext = columns.ExternalId >= 0 && !csv.IsEmpty(columns.ExternalId) ? csv.GetString(columns.ExternalId) : null;
        return session.Make(line, type!, signal, labels, note, ext);
    }

    private static string Describe(CsvMalformedReason reason) => reason switch
    {
        CsvMalformedReason.StrayQuote => "malformed CSV: a quote inside an unquoted field (quote the whole field and double inner quotes)",
        CsvMalformedReason.TextAfterClosingQuote => "malformed CSV: text after a closing quote",
        CsvMalformedReason.UnterminatedQuote => "malformed CSV: a quoted field is never closed",
        CsvMalformedReason.LineBreakInQuotes => "malformed CSV: a line break inside quotes",
        CsvMalformedReason.FieldCountMismatch => "the row has a different number of fields from the header",
        _ => "malformed CSV: " + reason,
    };
}
