using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Imaging;

namespace Warden.Cli;

/// <summary>How a batch of files is hashed.</summary>
/// <param name="Threads">Files hashed at once.</param>
/// <param name="Progress">Show a progress bar when stderr is a terminal.</param>
/// <param name="Resize">PDQ pipeline.</param>
/// <param name="MaxPixels">Image pixel limit.</param>
/// <param name="Dihedral">Compute the 8 dihedral PDQ variants.</param>
/// <param name="Verb">Past participle for progress and summary ("hashed", "scanned").</param>
/// <param name="AcceptNonImages">
/// Content that is not an image still counts as processed (its MD5/SHA hashes are the signals); otherwise it is
/// reported as unsupported.
/// </param>
/// <param name="Video">How to hash files that are videos (sniffed by content); null = treat them as other non-images.</param>
internal sealed record BatchOptions(int Threads, bool Progress, PdqResize Resize, long MaxPixels, bool Dihedral, string Verb, bool AcceptNonImages = false, VideoHashOptions? Video = null);

/// <summary>One file's result: its signals (or why not) and what the per-file step added.</summary>
internal sealed record FileOutcome<T>(string Path, ContentHashes? Hashes, T? Extra, string? Error, VideoHashes? Video = null);

/// <summary>
/// Hashes files in parallel (one <see cref="ContentHasher"/> per worker) and hands results to the caller in
/// input order, so output is the same for any number of threads. Shows a progress bar with rate and ETA on
/// stderr when it is a terminal, and prints a summary line.
/// </summary>
internal static class FileBatch
{
    /// <summary>Runs the batch; returns (files, failed).</summary>
    public static (int Files, int Failed) Run<T>(
        IEnumerable<string> paths, BatchOptions options, TextWriter error, Func<ContentHashes, VideoHashes?, T>? perFile, Action<FileOutcome<T>> consume)
    {
        var limits = new ImageLimits(options.MaxPixels);
        var items = FileWalker.Expand(paths).ToList();
        var hashers = new ThreadLocal<ContentHasher>(() => new ContentHasher(options.Resize, limits), trackAllValues: true);
        var failed = 0;
        var done = 0;
        long bytes = 0;
        var clock = Stopwatch.StartNew();

        // Long videos: the progress bar's description says how far the decoders are (set from worker threads).
        ProgressTask? progressTask = null;
        var description = $"{options.Verb} {items.Count} files";
        void VideoProgress(string path, string what, double seconds)
        {
            if (progressTask is { } t)
            {
                t.Description = string.Create(CultureInfo.InvariantCulture, $"{description} ({Path.GetFileName(path)}: {what} {seconds:F0} s)").EscapeMarkup();
            }
        }

        // Ordered PLINQ: workers run in parallel, results come back in input order.
        var results = items
            .AsParallel()
            .AsOrdered()
            .WithDegreeOfParallelism(Math.Clamp(options.Threads, 1, 512))
            .WithMergeOptions(ParallelMergeOptions.NotBuffered)
            .Select(item => Process(item.Path, item.Error, hashers.Value!, options, perFile, VideoProgress));

        void Consume(Action? onEach)
        {
            foreach (var r in results)
            {
                done++;
                if (r.Error is not null)
                {
                    failed++;
                    error.WriteLine($"warden: {r.Path}: {r.Error}");
                }
                else
                {
                    bytes += r.Hashes!.Length;
                }

                consume(r);
                onEach?.Invoke();
            }
        }

        try
        {
            if (options.Progress && (items.Count > 1 || options.Video is not null) && !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error))
            {
                var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                console.Progress()
                    .AutoClear(true)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RateColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask(description, maxValue: items.Count);
                        progressTask = task;
                        Consume(() =>
                        {
                            task.Increment(1);
                            task.Description = description;
                        });
                    });
            }
            else
            {
                Consume(null);
            }
        }
        finally
        {
            foreach (var h in hashers.Values)
            {
                h.Dispose();
            }

            hashers.Dispose();
        }

        if (items.Count > 1 || failed > 0)
        {
            var seconds = clock.Elapsed.TotalSeconds;
            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"warden: {options.Verb} {done - failed} of {done} files ({bytes / 1e6:F1} MB) in {seconds:F2} s ({(done - failed) / Math.Max(seconds, 1e-9):F1} files/s); {failed} failed"));
        }

        return (done, failed);
    }

    private static FileOutcome<T> Process<T>(
        string path, string? walkError, ContentHasher hasher, BatchOptions options, Func<ContentHashes, VideoHashes?, T>? perFile, Action<string, string, double> videoProgress)
    {
        if (walkError is not null)
        {
            return new FileOutcome<T>(path, null, default, walkError);
        }

        try
        {
            ContentHashes hashes;
            if (path == FileWalker.StandardInput)
            {
                using var stdin = Console.OpenStandardInput();
                hashes = hasher.HashStream(stdin, options.Dihedral);
            }
            else
            {
                hashes = hasher.HashFile(path, options.Dihedral);
            }

            if (hashes.Image is null && options.Video is not null && VideoFiles.TryHash(path, hashes, options, (what, seconds) => videoProgress(path, what, seconds), out var video, out var videoError))
            {
                return videoError is not null
                    ? new FileOutcome<T>(path, null, default, videoError)
                    : new FileOutcome<T>(path, hashes, perFile is null ? default : perFile(hashes, video), null, video);
            }

            return hashes.Error is null || (options.AcceptNonImages && hashes.Error.Error == ImageDecodeError.UnsupportedFormat)
                ? new FileOutcome<T>(path, hashes, perFile is null ? default : perFile(hashes, null), null)
                : new FileOutcome<T>(path, null, default, $"{Describe(hashes.Error.Error)}: {hashes.Error.Message}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new FileOutcome<T>(path, null, default, $"cannot read: {ex.Message}");
        }
    }

    private static string Describe(ImageDecodeError e) => e switch
    {
        ImageDecodeError.Empty => "empty",
        ImageDecodeError.UnsupportedFormat => "unsupported",
        ImageDecodeError.Truncated => "truncated",
        ImageDecodeError.Corrupt => "corrupt",
        ImageDecodeError.TooManyPixels => "too many pixels",
        ImageDecodeError.TooManyBytes => "too large",
        _ => "error",
    };

    /// <summary>Files per second, from Spectre's own speed estimate.</summary>
    private sealed class RateColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(string.Create(CultureInfo.InvariantCulture, $"{task.Speed ?? 0:F0} files/s"));
    }
}
