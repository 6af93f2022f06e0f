using System.Text;
using Warden.Core.Banks;
using Warden.Core.Banks.Formats;

namespace Warden.Core.Tests.Formats;

internal static class Hashes
{
    public const string Md5 = "d41d8cd98f00b204e9800998ecf8427e";
    public const string Sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    public const string Sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    public const string Pdq = "f550f550f550f5500aaff5500aaff5500aaff5500aaff5500aaf0aaf0aaf0aaf";

    /// <summary>A distinct valid md5 per index.</summary>
    public static string Md5Of(long i) => i.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);
}

internal static class Import
{
    public static (List<BankEntryRecord> Records, ImportReport Report) Text(string text, ImportOptions options)
    {
        var report = new ImportReport();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var records = BankFileReader.Read(stream, options, report).ToList();
        return (records, report);
    }

    public static BankFormatException Fails(string text, ImportOptions options) =>
        Assert.Throws<BankFormatException>(() => Text(text, options));

    public static void AssertBalanced(ImportReport report) =>
        Assert.Equal(report.Read, report.Imported + report.Skipped + report.Unsupported);
}

/// <summary>
/// A read-only stream that generates its content on demand (header, then <c>line(i)</c> for i in [0, count), then a
/// trailer), so tests can stream millions of lines without holding them, and can see how far a reader has read.
/// </summary>
internal sealed class GeneratedStream(string header, Func<long, string> line, long count, string trailer = "") : Stream
{
    private readonly byte[] _trailer = Encoding.UTF8.GetBytes(trailer);
    private byte[] _pending = Encoding.UTF8.GetBytes(header);
    private int _offset;
    private long _next;
    private bool _trailerDone;

    public long Produced { get; private set; }

    public long LinesProduced => _next;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => Produced;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            if (_offset == _pending.Length)
            {
                if (_next < count)
                {
                    _pending = Encoding.UTF8.GetBytes(line(_next++));
                }
                else if (!_trailerDone)
                {
                    _pending = _trailer;
                    _trailerDone = true;
                }
                else
                {
                    break;
                }

                _offset = 0;
                continue;
            }

            var n = Math.Min(buffer.Length - total, _pending.Length - _offset);
            _pending.AsSpan(_offset, n).CopyTo(buffer[total..]);
            _offset += n;
            total += n;
        }

        Produced += total;
        return total;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Yields its items once; a second enumeration fails (proves a writer makes one pass).</summary>
internal sealed class OneShot<T>(IEnumerable<T> items) : IEnumerable<T>
{
    private bool _used;

    public IEnumerator<T> GetEnumerator()
    {
        Assert.False(_used, "enumerated twice");
        _used = true;
        return items.GetEnumerator();
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
