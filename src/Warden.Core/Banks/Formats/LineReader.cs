namespace Warden.Core.Banks.Formats;

/// <summary>
/// Reads lines from a TextReader into one reusable buffer, never holding more than the longest allowed line: a
/// longer line is reported as too long and skipped without being kept (a newline-free 50 MB file stays bounded).
/// Lines end at '\n'; a '\r' before it is dropped.
/// </summary>
internal sealed class LineReader(TextReader reader, int maxLineLength)
{
    private readonly TextReader _reader = reader;
    private readonly int _maxLineLength = maxLineLength;
    private char[] _buffer = new char[Math.Min(64 * 1024, maxLineLength + 2)];
    private int _start;
    private int _end;
    private bool _eof;

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>
    /// Reads the next line; false at the end. The memory is valid until the next call. When the line is longer than
    /// the limit, <paramref name="tooLong"/> is true and <paramref name="line"/> is empty.
    /// </summary>
    public bool ReadLine(out ReadOnlyMemory<char> line, out bool tooLong)
    {
        tooLong = false;
        var scanned = 0; // chars after _start already known to hold no '\n'
        while (true)
        {
            var idx = _buffer.AsSpan(_start + scanned, _end - _start - scanned).IndexOf('\n');
            if (idx >= 0)
            {
                var nl = _start + scanned + idx;
                var lineEnd = nl > _start && _buffer[nl - 1] == '\r' ? nl - 1 : nl;
                line = tooLong || lineEnd - _start > _maxLineLength ? default : _buffer.AsMemory(_start, lineEnd - _start);
                tooLong |= lineEnd - _start > _maxLineLength;
                _start = nl + 1;
                LineNumber++;
                return true;
            }

            scanned = _end - _start;
            if (_eof)
            {
                if (scanned == 0 && !tooLong)
                {
                    line = default;
                    return false;
                }

                // The last line has no newline.
                var lineEnd = _end > _start && _buffer[_end - 1] == '\r' ? _end - 1 : _end;
                tooLong |= lineEnd - _start > _maxLineLength;
                line = tooLong ? default : _buffer.AsMemory(_start, lineEnd - _start);
                _start = _end;
                LineNumber++;
                return true;
            }

            if (tooLong || scanned > _maxLineLength + 1)
            {
                // Drop what we have of an over-long line and keep looking for its end.
                tooLong = true;
                _start = _end = 0;
                scanned = 0;
            }
            else if (_start > 0)
            {
                _buffer.AsSpan(_start, scanned).CopyTo(_buffer);
                _start = 0;
                _end = scanned;
            }

            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, (int)Math.Min((long)_buffer.Length * 2, _maxLineLength + 2L)); // a full line plus '\r'
            }

            var n = _reader.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0)
            {
                _eof = true;
            }
            else
            {
                _end += n;
            }
        }
    }
}
