using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Warden.Core.Hashing.Video;

/// <summary>Where the ffmpeg and ffprobe programs are: $WARDEN_FFMPEG / $WARDEN_FFPROBE, else the PATH.</summary>
public static class FfmpegTools
{
    /// <summary>The ffmpeg program.</summary>
    public static string Ffmpeg => Environment.GetEnvironmentVariable("WARDEN_FFMPEG") is { Length: > 0 } p ? p : "ffmpeg";

    /// <summary>The ffprobe program.</summary>
    public static string Ffprobe => Environment.GetEnvironmentVariable("WARDEN_FFPROBE") is { Length: > 0 } p ? p : "ffprobe";

    /// <summary>True when both programs can be found (absolute paths are checked; bare names searched on the PATH).</summary>
    public static bool Available => Exists(Ffmpeg) && Exists(Ffprobe);

    private static bool Exists(string program)
    {
        if (Path.IsPathRooted(program))
        {
            return File.Exists(program);
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, program)));
    }
}

/// <summary>
/// A child ffmpeg/ffprobe process whose stdout is read by the caller. Standard error is collected in the
/// background (bounded: its last 8 KiB) for error messages. The process tree is killed on dispose, on
/// cancellation and when the time limit passes, so a hostile file can never leave a decoder running.
/// </summary>
internal sealed class FfmpegProcess : IDisposable
{
    private const int StderrKeep = 8192;

    private readonly Process _process;
    private const int MaxLine = 4096;

    private readonly StringBuilder _stderr = new();
    private readonly Thread _stderrPump;
    private readonly Action<string>? _onLine;
    private readonly CancellationTokenSource _limit;
    private readonly CancellationTokenRegistration _killOnCancel;
    private int _killed;

    private FfmpegProcess(Process process, CancellationTokenSource limit, Action<string>? onLine, long started, TimeSpan timeout)
    {
        _process = process;
        _limit = limit;
        _onLine = onLine;
        _started = started;
        _timeout = timeout;

        // A dedicated thread: callers may block on what it parses, so it must not wait for a pool thread.
        _stderrPump = new Thread(PumpStderr) { IsBackground = true, Name = "ffmpeg-stderr" };
        _stderrPump.Start();
        _killOnCancel = limit.Token.Register(Kill);
    }

    /// <summary>Standard output (raw frames or JSON).</summary>
    public Stream Output => _process.StandardOutput.BaseStream;

    /// <summary>
    /// True when the process ran past its time limit (measured to its exit once <see cref="WaitForExit"/> returned).
    /// Judged by the clock, not by whether the kill timer fired: under load that callback can run late, after the
    /// process already finished past its limit, and that still counts.
    /// </summary>
    public bool TimedOut => _timeout != Timeout.InfiniteTimeSpan && (_ranFor ?? Stopwatch.GetElapsedTime(_started)) >= _timeout;

    private readonly long _started;
    private readonly TimeSpan _timeout;
    private TimeSpan? _ranFor;

    /// <summary>Starts <paramref name="program"/> with <paramref name="arguments"/> (no shell).</summary>
    /// <exception cref="VideoDecodeException">The program is not installed.</exception>
    /// <param name="program">ffmpeg or ffprobe.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="timeout">Kill it after this long.</param>
    /// <param name="cancel">Kill it when cancelled.</param>
    /// <param name="onStderrLine">Called (on the reader thread) with each standard-error line, cut at 4096 characters.</param>
    public static FfmpegProcess Start(string program, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancel, Action<string>? onStderrLine = null)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var started = Stopwatch.GetTimestamp();
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new VideoDecodeException(VideoDecodeError.FfmpegMissing, $"Could not start {program}.");
        }
        catch (Win32Exception e)
        {
            limit.Dispose();
            throw new VideoDecodeException(VideoDecodeError.FfmpegMissing, $"{program} is not installed or not on the PATH (install Debian's ffmpeg package, or set WARDEN_FFMPEG/WARDEN_FFPROBE): {e.Message}", e);
        }

        // ffmpeg must never wait for keyboard input.
        process.StandardInput.Close();
        var p = new FfmpegProcess(process, limit, onStderrLine, started, timeout);
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            limit.CancelAfter(timeout);
        }

        return p;
    }

    /// <summary>The last few KiB of standard error, trimmed.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString().Trim();
            }
        }
    }

    /// <summary>Waits for exit (after stdout was read to its end) and returns the exit code.</summary>
    public int WaitForExit()
    {
        _process.WaitForExit();
        _ranFor ??= Stopwatch.GetElapsedTime(_started);
        _stderrPump.Join(TimeSpan.FromSeconds(5));
        return _process.ExitCode;
    }

    /// <summary>Kills the process tree (idempotent).</summary>
    public void Kill()
    {
        if (Interlocked.Exchange(ref _killed, 1) != 0)
        {
            return;
        }

        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }
        catch (Win32Exception)
        {
            // Already gone.
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _killOnCancel.Dispose();
        Kill();
        try
        {
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }

        _process.Dispose();
        _limit.Dispose();
    }

    private void PumpStderr()
    {
        var buffer = new char[1024];
        var line = new StringBuilder();
        var reader = _process.StandardError;
        try
        {
            int n;
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                lock (_stderr)
                {
                    _stderr.Append(buffer, 0, n);
                    if (_stderr.Length > 2 * StderrKeep)
                    {
                        _stderr.Remove(0, _stderr.Length - StderrKeep);
                    }
                }

                if (_onLine is null)
                {
                    continue;
                }

                for (var i = 0; i < n; i++)
                {
                    var c = buffer[i];
                    if (c is '\n' or '\r')
                    {
                        if (line.Length > 0)
                        {
                            _onLine(line.ToString());
                            line.Clear();
                        }
                    }
                    else if (line.Length < MaxLine)
                    {
                        line.Append(c);
                    }
                }
            }

            if (line.Length > 0)
            {
                _onLine?.Invoke(line.ToString());
            }
        }
        catch (IOException)
        {
            // The process was killed.
        }
        catch (ObjectDisposedException)
        {
            // Disposed while reading.
        }
    }
}
