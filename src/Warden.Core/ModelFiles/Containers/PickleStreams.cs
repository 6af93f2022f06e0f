using System.Buffers;
using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace Warden.Core.ModelFiles;

/// <summary>Which bytes can start a pickle stream.</summary>
public static class PickleOpcodes
{
    // Every opcode CPython's unpickler dispatches on (Lib/pickle.py, Modules/_pickle.c load_* table). Any of them
    // can be the first byte of a stream: pickle.load needs no PROTO, '(' or 'c' first ('}', 'N0', 'K\x01 0' all run).
    private static ReadOnlySpan<byte> Ascii => "(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrstu)GBC"u8;

    /// <summary>True when CPython's unpickler would start executing a stream whose first byte is <paramref name="b"/>.</summary>
    public static bool IsOpcode(byte b) => b is >= 0x80 and <= 0x98 || Ascii.Contains(b);

    /// <summary>
    /// True when a stream's scan shows it can reach something a loader would call or look up: a global, a dangerous
    /// opcode, a limit, anything but a plain parse failure before any of those. A stream that fails on its first
    /// bytes with nothing of the kind is not a pickle any loader could run (a README that happens to start with 'N').
    /// </summary>
    public static bool Reaches(PickleReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return report.Globals.Count > 0 || report.Findings.Any(f => f.Kind != "corrupt");
    }
}

/// <summary>
/// A file region as read-only memory without a heap copy: small regions are read into an array, larger ones are
/// memory-mapped (pages come from the page cache, so memory stays bounded whatever the size). One window holds at
/// most <see cref="MaxLength"/> bytes (the span limit); <see cref="Truncated"/> says when the region is longer.
/// </summary>
internal sealed class FileWindow : IDisposable
{
    /// <summary>The largest window: a span's length is an int.</summary>
    public const long MaxLength = int.MaxValue - 4096;

    private const int ReadBelow = 1 << 20;

    private readonly MemoryMappedFile? _map;
    private readonly MappedMemory? _mapped;

    private FileWindow(long start, long length, bool truncated, byte[]? array, MemoryMappedFile? map, MappedMemory? mapped)
    {
        Start = start;
        Length = length;
        Truncated = truncated;
        _map = map;
        _mapped = mapped;
        Memory = array is not null ? array : mapped!.Memory;
    }

    /// <summary>Absolute file offset of byte 0.</summary>
    public long Start { get; }

    /// <summary>Bytes in the window.</summary>
    public long Length { get; }

    /// <summary>Absolute offset just past the window.</summary>
    public long End => Start + Length;

    /// <summary>True when the region goes on past the window.</summary>
    public bool Truncated { get; }

    /// <summary>The bytes.</summary>
    public ReadOnlyMemory<byte> Memory { get; }

    /// <summary>Maps [<paramref name="start"/>, <paramref name="regionEnd"/>) or its first <paramref name="maxLength"/> bytes.</summary>
    public static FileWindow Open(SafeFileHandle handle, long start, long regionEnd, long maxLength)
    {
        var length = Math.Max(0, Math.Min(regionEnd - start, Math.Min(maxLength, MaxLength)));
        var truncated = start + length < regionEnd;
        if (length < ReadBelow)
        {
            var array = new byte[length];
            ZipDirectory.ReadExactly(handle, array, start);
            return new FileWindow(start, length, truncated, array, null, null);
        }

        var map = MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        try
        {
            var view = map.CreateViewAccessor(start, length, MemoryMappedFileAccess.Read);
            return new FileWindow(start, length, truncated, null, map, new MappedMemory(view, (int)length));
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>An in-memory region (an inflated zip member).</summary>
    public static FileWindow FromArray(byte[] data, long start) => new(start, data.Length, false, data, null, null);

    public void Dispose()
    {
        ((IDisposable?)_mapped)?.Dispose();
        _map?.Dispose();
    }

    private sealed unsafe class MappedMemory : MemoryManager<byte>
    {
        private readonly MemoryMappedViewAccessor _view;
        private readonly int _length;
        private byte* _pointer;

        public MappedMemory(MemoryMappedViewAccessor view, int length)
        {
            _view = view;
            _length = length;
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _pointer = p + view.PointerOffset;
        }

        public override Span<byte> GetSpan() => _pointer is null ? throw new ObjectDisposedException(nameof(FileWindow)) : new Span<byte>(_pointer, _length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
            if (_pointer is not null)
            {
                _pointer = null;
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
                _view.Dispose();
            }
        }
    }
}

/// <summary>
/// Runs <see cref="PickleMachine"/> over pickle streams anywhere in a file region, back to back as a loader calling
/// <c>pickle.load</c> again and again reads them, mapping windows as it goes so memory stays bounded. A stream that
/// would need bytes past its window is read again as a stream over the rest of the region, so no window edge ever
/// hides bytes; the machine's own caps are dangerous, never a silent stop.
/// </summary>
internal sealed class PickleStreamReader(SafeFileHandle handle, long regionStart, long regionEnd, ModelLimits limits) : IDisposable
{
    private readonly PickleMachine _machine = new(limits);
    private readonly List<FileWindow> _windows = [];
    private readonly byte[]? _inMemory;
    private FileWindow? _window;

    /// <summary>A reader over bytes already in memory (an inflated member); offsets are relative to it.</summary>
    public PickleStreamReader(byte[] data, ModelLimits limits)
        : this(null!, 0, data.Length, limits) => _inMemory = data;

    public long RegionStart => regionStart;

    public long RegionEnd => regionEnd;

    /// <summary>
    /// Runs one stream at <paramref name="at"/> (absolute). Returns the result with findings moved to absolute
    /// offsets, the absolute end, and whether the scan stopped at the window's edge rather than at the region's.
    /// </summary>
    public (PickleResult Result, long End) RunAt(long at, string member)
    {
        var w = WindowFor(at);
        var r = _machine.Run(w.Memory, member, scanTrailing: false, start: at - w.Start);
        if (!r.Report.Complete && w.Truncated && _inMemory is null)
        {
            // The stream stopped inside a window that ends before the region does: the failure may only be the
            // window's edge. Scan it again as a stream over the whole region (bounded memory, any length), which
            // reads exactly what a loader reads; its own caps are dangerous.
            using var region = new ZipDirectory.HandleStream(handle, at, regionEnd - at);
            var streamed = _machine.Run(region, member, scanTrailing: false);
            var shifted = streamed.Report with { Findings = [.. streamed.Report.Findings.Select(f => f with { Offset = f.Offset + at })] };
            return (streamed with { Report = shifted }, at + streamed.End);
        }

        var report = w.Start == 0 ? r.Report : r.Report with { Findings = [.. r.Report.Findings.Select(f => f with { Offset = f.Offset + w.Start })] };
        return (r with { Report = report }, w.Start + r.End);
    }

    /// <summary>
    /// Scans streams from <paramref name="at"/> until the region ends, a stream fails, or the time budget runs out,
    /// merging every stream that reaches anything into <paramref name="into"/>. The first stream is merged whatever
    /// it holds when <paramref name="firstIsPickle"/> (a member named as a pickle); later ones only when they reach
    /// something (zero padding or raw bytes after the last STOP are not a pickle any loader could run).
    /// </summary>
    public long ScanUntilEnd(long at, string member, StreamScan into, bool firstIsPickle)
    {
        var clock = Stopwatch.StartNew();
        var budget = limits.MaxPickleTime * 3;
        var first = true;
        while (at < regionEnd)
        {
            if (clock.Elapsed > budget)
            {
                into.Add(new PickleFinding(PickleVerdict.Dangerous, "limit", null, null, at, $"stopped after {into.Streams} streams ({budget.TotalSeconds:F0} s): the rest of the file is unscanned"));
                into.Complete = false;
                return at;
            }

            var (r, end) = RunAt(at, member);
            into.Streams++;

            if ((first && firstIsPickle) || PickleOpcodes.Reaches(r.Report))
            {
                into.Merge(r.Report);
            }

            first = false;
            if (!r.Report.Complete || end <= at)
            {
                return end;
            }

            at = end;
        }

        return at;
    }

    public void Dispose()
    {
        foreach (var w in _windows)
        {
            w.Dispose();
        }

        _windows.Clear();
    }

    private FileWindow WindowFor(long at)
    {
        if (_inMemory is not null)
        {
            return _window ??= FileWindow.FromArray(_inMemory, 0);
        }

        if (_window is null || at < _window.Start || at >= _window.End || (_window.Truncated && at - _window.Start > _window.Length / 2))
        {
            // Old windows stay mapped until disposal: roots of earlier streams may still point into them.
            _window = FileWindow.Open(handle, at, regionEnd, limits.MaxPickleWindow);
            _windows.Add(_window);
        }

        return _window;
    }
}

/// <summary>Merges the reports of many streams of one member into one report, in bounded memory.</summary>
internal sealed class StreamScan
{
    private const int MaxFindings = 10_000;
    private const int MaxGlobals = 10_000;
    private readonly List<PickleFinding> _findings = [];
    private readonly SortedSet<string> _globals = new(StringComparer.Ordinal);
    private PickleVerdict _worst;

    public long Ops { get; private set; }

    public int Streams { get; set; }

    public bool Complete { get; set; } = true;

    public bool Any { get; private set; }

    public void Merge(PickleReport r)
    {
        Any = true;
        Ops += r.Ops;
        Complete &= r.Complete;
        foreach (var f in r.Findings)
        {
            Add(f);
        }

        foreach (var g in r.Globals)
        {
            if (_globals.Count >= MaxGlobals)
            {
                break;
            }

            _globals.Add(g);
        }
    }

    // Past the cap only worse findings are kept, so the verdict is never understated.
    public void Add(PickleFinding f)
    {
        Any = true;
        if (_findings.Count < MaxFindings || f.Verdict > _worst)
        {
            _findings.Add(f);
            _worst = f.Verdict > _worst ? f.Verdict : _worst;
        }
    }

    public PickleReport ToReport(string member) => new(member, [.. _findings], [.. _globals], Ops, Complete);
}

