using System.Globalization;
using Warden.Core.Signals;

namespace Warden.Core.Banks.Formats;

/// <summary>
/// Plain hash lists: one hash per line, all of the caller's type. Blank lines and lines starting with '#' are
/// skipped. With <see cref="ImportOptions.AutoSignalType"/> each line's type comes from its length: 32 hex digits →
/// md5, 40 → sha1; 64 is an error because it could be sha256 or pdq.
/// </summary>
internal static class PlainListReader
{
    public static IEnumerable<BankEntryRecord> Read(TextReader text, ImportSession session)
    {
        var lines = new LineReader(text, session.Options.MaxLineLength);
        var report = session.Report;
        var labels = session.DefaultLabels;
        var auto = session.AutoType;
        while (lines.ReadLine(out var memory, out var tooLong))
        {
            session.Tick(lines.LineNumber);
            if (tooLong)
            {
                report.Read++;
                session.Error(lines.LineNumber, string.Create(CultureInfo.InvariantCulture, $"line longer than {session.Options.MaxLineLength} characters"));
                continue;
            }

            var record = ReadLine(memory.Span, lines.LineNumber, auto, labels, session);
            if (record is not null)
            {
                yield return record;
            }
        }

        session.Finish(lines.LineNumber);
    }

    private static BankEntryRecord? ReadLine(ReadOnlySpan<char> line, long lineNumber, bool auto, IReadOnlyDictionary<string, string> labels, ImportSession session)
    {
        line = line.Trim();
        if (line.IsEmpty || line[0] == '#')
        {
            return null;
        }

        session.Report.Read++;
        if (line.IndexOfAny(' ', '\t') >= 0)
        {
            session.Error(lineNumber, $"expected one hash per line; got '{ImportSession.Shorten(line)}'");
            return null;
        }

        ISignalType? type = session.DefaultType;
        if (auto)
        {
            type = line.Length switch
            {
                32 => SignalTypes.Md5,
                40 => SignalTypes.Sha1,
                _ => null,
            };
            if (type is null)
            {
                session.Error(lineNumber, line.Length == 64
                    ? "64 hex digits could be a sha256 or a pdq hash; give the signal type (--signal-type sha256|pdq)"
                    : string.Create(CultureInfo.InvariantCulture, $"cannot tell the signal type of a {line.Length}-character value (md5 is 32 hex digits, sha1 40); give the signal type"));
                return null;
            }
        }

        return session.Make(lineNumber, type!, line, labels, null, null);
    }
}
