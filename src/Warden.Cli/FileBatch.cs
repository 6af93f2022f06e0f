using System.Diagnostics;
using System.Globalization;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Imaging;

namespace Warden.Cli;

/// <summary>How a batch of files is hashed.</summary>
/// <param name="Threads">Files hashed at once.</param>
/// <param name="Progress">Show progress on stderr (a redrawn line on a terminal, a few plain lines otherwise).</param>
/// <param name="Resize">PDQ pipeline.</param>
/// <param name="MaxPixels">Image pixel limit.</param>
/// <param name="Dihedral">Compute the 8 dihedral PDQ variants.</param>
/// <param name="Verb">Past participle for progress and summary ("hashed", "scanned").</param>
/// <param name="AcceptNonImages">
/// Content that is not an image still counts as processed (its MD5/SHA hashes are the signals); otherwise it is
/// reported as unsupported.
/// </param>
/// <param name="Video">How to hash files that are videos (sniffed by content); null = treat them as other non-images.</param>
internal sealed record BatchOptions(int Threads, bool Progress, PdqResize Resize, long MaxPixels, bool Dihedral, string Verb, bool AcceptNonImages = false, VideoHashOptions? Video = null)
{
    /// <summary>Present participle for progress while it runs ("hashing"); <see cref="Verb"/> is for the summary after.</summary>
    public string Verbing => Verb switch { "hashed" => "hashing", "scanned" => "scanning", _ => Verb };
}

/// <summary>One file's result: its signals (or why not) and what the per-file step added.</summary>
internal sealed record FileOutcome<T>(string Path, ContentHashes? Hashes, T? Extra, string? Error, VideoHashes? Video = null);

/// <summary>
/// Hashes files in parallel (one <see cref="ContentHasher"/> per worker) and hands results to the caller in
/// input order, so output is the same for any number of threads. Shows progress weighted by bytes on stderr
/// (<see cref="BatchProgress"/>) and prints a summary line.
/// </summary>
internal static class FileBatch
{
    /// <summary>Runs the batch; returns (files, failed).</summary>
    public static (int Files, int Failed) Run<T>(
        IEnumerable<string> paths, BatchOptions options, TextWriter error, Func<ContentHashes, VideoHashes?, T>? perFile, Action<FileOutcome<T>> consume)
    {
        var limits = new ImageLimits(options.MaxPixels);
        var items = FileWalker.Expand(paths).ToList();
        var registry = Warden.Core.Signals.SignalTypeRegistry.Current;
        var hashers = new ThreadLocal<ContentHasher>(() => new ContentHasher(options.Resize, limits, registry), trackAllValues: true);
        var failed = 0;
        var done = 0;
        long bytes = 0;
        var clock = Stopwatch.StartNew();

        // Only the progress display stats the files; the workers report each as it finishes, not in output order.
        var progress = options.Progress && (items.Count > 1 || options.Video is not null) && ReferenceEquals(error, Console.Error)
            ? new BatchProgress(error, options.Verbing, items.Count, items.Sum(i => Size(i.Path)), terminal: !Console.IsErrorRedirected, () => clock.Elapsed)
            : null;

        // Long videos: the progress line says how far the decoders are (set from worker threads).
        void VideoProgress(string path, string what, double seconds)
        {
            if (progress is not null)
            {
                progress.Detail = string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(path)}: {what} {seconds:F0} s");
            }
        }

        // Ordered PLINQ: workers run in parallel, results come back in input order.
        var results = items
            .AsParallel()
            .AsOrdered()
            .WithDegreeOfParallelism(Math.Clamp(options.Threads, 1, 512))
            .WithMergeOptions(ParallelMergeOptions.NotBuffered)
            .Select(item =>
            {
                var outcome = Process(item.Path, item.Error, hashers.Value!, options, perFile, VideoProgress);
                progress?.FileDone(outcome.Hashes?.Length ?? Size(item.Path));
                return outcome;
            });

        try
        {
            foreach (var r in results)
            {
                done++;
                if (r.Error is not null)
                {
                    failed++;
                    var line = $"warden: {CommonOptions.Shown(r.Path)}: {r.Error}";
                    if (progress is not null)
                    {
                        progress.WriteLine(line);
                    }
                    else
                    {
                        error.WriteLine(line);
                    }
                }
                else
                {
                    bytes += r.Hashes!.Length;
                }

                consume(r);
            }
        }
        finally
        {
            foreach (var h in hashers.Values)
            {
                h.Dispose();
            }

            hashers.Dispose();
            progress?.Dispose();
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

    /// <summary>A file's size for progress weighting; 0 when it cannot be stat'ed (the hasher reports why).</summary>
    private static long Size(string path)
    {
        if (path == FileWalker.StandardInput)
        {
            return 0;
        }

        try
        {
            return new FileInfo(path).Length;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return 0;
        }
    }
}
