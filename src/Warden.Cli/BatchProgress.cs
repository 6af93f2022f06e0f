using System.Globalization;

namespace Warden.Cli;

/// <summary>
/// Progress of a batch of files on stderr, in the present tense ("hashing 1200 files") and weighted by bytes:
/// the percentage, the MB/s rate and the ETA count bytes of finished files against all bytes, so a large file still
/// in flight keeps the ETA above zero and a run of small files does not promise too much. Workers report each
/// file as it finishes (not when its ordered result is printed). On a terminal it is one line redrawn in place
/// and cleared at the end; otherwise (a log, a pipe, CI) a few plain lines, the first after 2 s and then at
/// doubling intervals up to every 30 s, so short runs print none and long ones stay readable.
/// </summary>
internal sealed class BatchProgress : IDisposable
{
    private static readonly TimeSpan FirstLine = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LongestInterval = TimeSpan.FromSeconds(30);

    private readonly TextWriter _error;
    private readonly Func<TimeSpan> _clock;
    private readonly string _label;
    private readonly int _files;
    private readonly long _totalBytes;
    private readonly Lock _lock = new();
    private readonly Timer? _timer;
    private long _doneBytes;
    private int _doneFiles;
    private string? _detail;
    private TimeSpan _nextLine = FirstLine;
    private TimeSpan _interval = FirstLine;
    private bool _drawn;
    private bool _disposed;

    /// <param name="error">Where progress goes (stderr).</param>
    /// <param name="verbing">Present participle: "hashing", "scanning".</param>
    /// <param name="files">Files in the batch.</param>
    /// <param name="totalBytes">Their bytes (0 when unknown, e.g. standard input: then files weigh).</param>
    /// <param name="terminal">Redraw one line in place (stderr is a terminal) instead of writing plain lines.</param>
    /// <param name="clock">Time since the batch started (tests pass their own).</param>
    /// <param name="timer">Tick by itself (false in tests, which call <see cref="Tick"/>).</param>
    public BatchProgress(TextWriter error, string verbing, int files, long totalBytes, bool terminal, Func<TimeSpan> clock, bool timer = true)
    {
        _error = error;
        _clock = clock;
        _files = files;
        _totalBytes = totalBytes;
        Terminal = terminal;
        _label = string.Create(CultureInfo.InvariantCulture, $"{verbing} {files} files{(totalBytes > 0 ? $" ({Size(totalBytes)})" : string.Empty)}");
        if (timer)
        {
            var period = terminal ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromMilliseconds(500);
            _timer = new Timer(_ => Tick(), null, period, period);
        }
    }

    /// <summary>True when the line is redrawn in place.</summary>
    public bool Terminal { get; }

    /// <summary>What a long file is doing now (e.g. a video's decoder position); null clears it.</summary>
    public string? Detail
    {
        get => Volatile.Read(ref _detail);
        set => Volatile.Write(ref _detail, value);
    }

    /// <summary>A worker finished a file of <paramref name="bytes"/> bytes (thread-safe).</summary>
    public void FileDone(long bytes)
    {
        Interlocked.Add(ref _doneBytes, bytes);
        Interlocked.Increment(ref _doneFiles);
    }

    /// <summary>Writes a line of its own (an error about a file) without tearing the progress line.</summary>
    public void WriteLine(string line)
    {
        lock (_lock)
        {
            Clear();
            _error.WriteLine(line);
        }
    }

    /// <summary>Draws (terminal) or, when due, writes a line (otherwise). Called by the timer.</summary>
    public void Tick()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            var now = _clock();
            if (Terminal)
            {
                _error.Write("\r" + Line(now, bar: true) + "\u001b[K");
                _error.Flush();
                _drawn = true;
            }
            else if (now >= _nextLine)
            {
                _error.WriteLine("warden: " + Line(now, bar: false));
                _error.Flush();
                _interval = _interval * 2 > LongestInterval ? LongestInterval : _interval * 2;
                _nextLine = now + _interval;
            }
        }
    }

    /// <summary>The progress text at <paramref name="now"/>: label, share done, rates, ETA.</summary>
    internal string Line(TimeSpan now, bool bar)
    {
        var doneBytes = Interlocked.Read(ref _doneBytes);
        var doneFiles = Volatile.Read(ref _doneFiles);
        var seconds = Math.Max(now.TotalSeconds, 1e-3);

        // Bytes weigh when known; files only when there are no bytes to count (standard input, empty files).
        var fraction = _totalBytes > 0 ? (double)doneBytes / _totalBytes : _files > 0 ? (double)doneFiles / _files : 1;
        fraction = Math.Clamp(fraction, 0, 1);
        string eta;
        if (doneFiles >= _files)
        {
            eta = "0:00:00";
        }
        else if (fraction <= 0)
        {
            eta = "--:--:--";
        }
        else
        {
            // Remaining work at the rate so far; a file in flight is remaining work, so this is never 0 early.
            // When every byte is done but (empty) files remain, the files' own rate says how long they take.
            var remaining = fraction < 1 ? seconds * (1 - fraction) / fraction : seconds * (_files - doneFiles) / Math.Max(1, doneFiles);
            eta = remaining > 359_999 ? "99:59:59+" : Clock(remaining);
        }

        // Rounded down, and never 100 % while a file is in flight; elapsed is rounded down too (the ETA up).
        var percent = doneFiles >= _files ? 100 : (int)Math.Min(99, _totalBytes > 0 ? Math.Min(doneBytes, _totalBytes) * 100 / _totalBytes : doneFiles * 100L / Math.Max(1, _files));
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{_label}: {doneFiles}/{_files} done, {percent}%, {doneFiles / seconds:F1} files/s, {doneBytes / 1e6 / seconds:F1} MB/s, ETA {eta}, {Clock(Math.Floor(now.TotalSeconds))} elapsed");
        if (Detail is { } detail)
        {
            text += " (" + detail + ")";
        }

        if (bar)
        {
            const int width = 20;
            var filled = doneFiles >= _files ? width : Math.Min(width - 1, (int)Math.Round(fraction * width));
            text = "[" + new string('#', filled) + new string('-', width - filled) + "] " + text;
        }

        return text;
    }

    private void Clear()
    {
        if (Terminal && _drawn)
        {
            _error.Write("\r\u001b[K");
            _drawn = false;
        }
    }

    private static string Clock(double seconds)
    {
        var s = (long)Math.Ceiling(seconds);
        return string.Create(CultureInfo.InvariantCulture, $"{s / 3600}:{s / 60 % 60:D2}:{s % 60:D2}");
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:F1} GB"),
        >= 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:F1} MB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e3:F0} kB"),
    };

    /// <summary>Stops ticking and clears the line (the caller prints its own past-tense summary).</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        lock (_lock)
        {
            Clear();
            _disposed = true;
        }
    }
}
