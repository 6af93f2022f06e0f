using System.Buffers;
using System.Runtime.CompilerServices;

namespace Warden.Core.ModelFiles;

/// <summary>
/// The bytes a <see cref="PickleMachine"/> reads: a memory block (sliced in place) or a stream read through one
/// pooled window, so a stream of any size is scanned in bounded memory. Lines (protocol-0 arguments) are kept
/// up to <see cref="MaxLine"/> bytes; longer ones are skipped and measured, never buffered.
/// </summary>
internal sealed class PickleInput : IDisposable
{
    /// <summary>Longest text line kept (CPython has no limit; longer lines are skipped and reported as a cap).</summary>
    public const int MaxLine = 16 << 20;

    private readonly Stream? _stream;
    private byte[]? _buf;
    private ReadOnlyMemory<byte> _win;
    private int _pos;
    private long _base;
    private bool _eof;

    // The C unpickler reading a file holds the last chunk it read; after a FRAME that chunk is the frame. A read
    // that runs past its end drops the rest of the chunk and goes on after it ("straddle"). _chunkEnd is the end
    // of the current FRAME chunk (-1: none); Lossy applies the drop, otherwise straddles are only counted.
    private long _chunkEnd = -1;

    public PickleInput(ReadOnlyMemory<byte> data, long start)
    {
        _win = data;
        _pos = (int)Math.Clamp(start, 0, data.Length);
        _eof = true;
    }

    public PickleInput(Stream stream)
    {
        _stream = stream;
        _buf = ArrayPool<byte>.Shared.Rent(1 << 16);
        _win = ReadOnlyMemory<byte>.Empty;
    }

    public enum LineStatus
    {
        Ok,
        TooLong,
        Eof,
    }

    /// <summary>Read as the C unpickler over a file does: bytes left in a FRAME are dropped by a read that runs past it.</summary>
    public bool Lossy { get; init; }

    /// <summary>Only FRAMEs of at least this many bytes become chunks (a buffered file peeks smaller frames: no loss).</summary>
    public long FrameChunkMin { get; init; }

    /// <summary>A read ran past the end of a FRAME (a file loader reads a different pickle than <c>pickle.loads</c>).</summary>
    public bool Straddled { get; private set; }

    /// <summary>A straddled FRAME was at least 128 KiB (a buffered file reads it lossily too).</summary>
    public bool BigStraddled { get; private set; }

    private long _chunkLength;

    /// <summary>Offset of the next byte from the start of the input.</summary>
    public long Position => _base + _pos;

    /// <summary>True when values can be sliced from the input without copying.</summary>
    public bool IsMemory => _stream is null;

    /// <summary>Makes <paramref name="n"/> bytes available at the cursor; false at the end of the input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Ensure(int n) => _win.Length - _pos >= n || Fill(n);

    public int PeekByte() => Ensure(1) ? _win.Span[_pos] : -1;

    public int ReadByte()
    {
        if (_chunkEnd >= 0 && _base + _pos >= _chunkEnd)
        {
            _chunkEnd = -1;
        }

        return Ensure(1) ? _win.Span[_pos++] : -1;
    }

    /// <summary>Before the C unpickler's buffered read of <paramref name="n"/> bytes: applies a FRAME straddle.</summary>
    public void Need(long n)
    {
        if (_chunkEnd < 0)
        {
            return;
        }

        var p = Position;
        if (p >= _chunkEnd)
        {
            _chunkEnd = -1;
        }
        else if (p + n > _chunkEnd)
        {
            Straddle(p);
        }
    }

    /// <summary>After a read that copies through the buffer into the object (BINBYTES, BYTEARRAY8): no loss.</summary>
    public void AfterReadInto()
    {
        if (_chunkEnd >= 0 && Position >= _chunkEnd)
        {
            _chunkEnd = -1;
        }
    }

    /// <summary>FRAME of <paramref name="length"/> bytes: the C unpickler makes it its buffer unless it already holds it.</summary>
    public void Frame(long length)
    {
        var p = Position;
        if (_chunkEnd > p && p + length <= _chunkEnd)
        {
            return;
        }

        if (_chunkEnd > p)
        {
            Straddle(p);
        }

        p = Position;
        _chunkEnd = length >= FrameChunkMin ? p + length : -1;
        _chunkLength = length;
    }

    private void Straddle(long p)
    {
        Straddled = true;
        BigStraddled |= _chunkLength >= 128 * 1024;
        var left = _chunkEnd - p;
        _chunkEnd = -1;
        if (Lossy)
        {
            Skip(left);
        }
    }

    /// <summary>The next <paramref name="n"/> bytes (call <see cref="Ensure"/> first); valid until the next read.</summary>
    public ReadOnlySpan<byte> Take(int n)
    {
        var s = _win.Span.Slice(_pos, n);
        _pos += n;
        return s;
    }

    /// <summary>The next <paramref name="n"/> bytes as memory: a slice of the input, or a copy from a stream.</summary>
    public ReadOnlyMemory<byte> TakeMemory(int n)
    {
        if (_stream is null)
        {
            var m = _win.Slice(_pos, n);
            _pos += n;
            return m;
        }

        return Take(n).ToArray();
    }

    /// <summary>Skips up to <paramref name="n"/> bytes without buffering them; returns how many were there.</summary>
    public long Skip(long n)
    {
        var inWindow = Math.Min(n, _win.Length - _pos);
        _pos += (int)inWindow;
        var left = n - inWindow;
        if (left == 0 || _stream is null || _eof)
        {
            return inWindow;
        }

        _base += _pos;
        _pos = 0;
        _win = ReadOnlyMemory<byte>.Empty;
        long skipped = 0;
        if (_stream.CanSeek)
        {
            var avail = Math.Max(0, _stream.Length - _stream.Position);
            skipped = Math.Min(avail, left);
            _stream.Seek(skipped, SeekOrigin.Current);
            if (skipped < left)
            {
                _eof = true;
            }
        }
        else
        {
            while (skipped < left)
            {
                var r = _stream.Read(_buf!, 0, (int)Math.Min(_buf!.Length, left - skipped));
                if (r <= 0)
                {
                    _eof = true;
                    break;
                }

                skipped += r;
            }
        }

        _base += skipped;
        return inWindow + skipped;
    }

    /// <summary>
    /// Reads up to the next newline. <see cref="LineStatus.Ok"/>: <paramref name="line"/> is the line without it.
    /// <see cref="LineStatus.TooLong"/>: the line was skipped, <paramref name="length"/> says how long it was.
    /// <see cref="LineStatus.Eof"/>: the input ended first; <paramref name="line"/> holds what was there (if kept).
    /// </summary>
    public LineStatus ReadLine(out ReadOnlySpan<byte> line, out long length)
    {
        if (_chunkEnd >= 0)
        {
            var p = Position;
            if (p >= _chunkEnd)
            {
                _chunkEnd = -1;
            }
            else
            {
                // The line must end inside the chunk, or the C unpickler drops the chunk's rest and reads a fresh line.
                var inChunk = (int)Math.Min(_chunkEnd - p, int.MaxValue);
                Ensure((int)Math.Min(inChunk, MaxLine + 1L));
                var avail = Math.Min(inChunk, _win.Length - _pos);
                if (_win.Span.Slice(_pos, avail).IndexOf((byte)'\n') < 0)
                {
                    Straddle(p);
                }
            }
        }

        var scanned = 0;
        while (true)
        {
            var span = _win.Span[(_pos + scanned)..];
            var nl = span.IndexOf((byte)'\n');
            if (nl >= 0 && scanned + nl <= MaxLine)
            {
                var len = scanned + nl;
                line = _win.Span.Slice(_pos, len);
                _pos += len + 1;
                length = len;
                return LineStatus.Ok;
            }

            scanned += nl >= 0 ? nl : span.Length;
            if (scanned > MaxLine)
            {
                long total = scanned;
                _pos += scanned;
                line = default;
                while (true)
                {
                    if (!Ensure(1))
                    {
                        length = total;
                        return LineStatus.Eof;
                    }

                    var rest = _win.Span[_pos..];
                    var i = rest.IndexOf((byte)'\n');
                    if (i >= 0)
                    {
                        _pos += i + 1;
                        length = total + i;
                        return LineStatus.TooLong;
                    }

                    total += rest.Length;
                    _pos += rest.Length;
                }
            }

            if (!Fill(scanned + 1))
            {
                line = _win.Span[_pos..];
                length = line.Length;
                _pos = _win.Length;
                return LineStatus.Eof;
            }
        }
    }

    public void Dispose()
    {
        if (_buf is not null)
        {
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = null;
        }
    }

    private bool Fill(int n)
    {
        if (_stream is null || _eof)
        {
            return false;
        }

        var keep = _win.Length - _pos;
        if (n > _buf!.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(n, Math.Min(_buf.Length * 2, MaxLine + 2)));
            Buffer.BlockCopy(_buf, _pos, bigger, 0, keep);
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = bigger;
        }
        else if (keep > 0 && _pos > 0)
        {
            Buffer.BlockCopy(_buf, _pos, _buf, 0, keep);
        }

        _base += _pos;
        _pos = 0;
        var len = keep;
        while (len < n)
        {
            var r = _stream.Read(_buf, len, _buf.Length - len);
            if (r <= 0)
            {
                _eof = true;
                break;
            }

            len += r;
        }

        _win = _buf.AsMemory(0, len);
        return len >= n;
    }
}
