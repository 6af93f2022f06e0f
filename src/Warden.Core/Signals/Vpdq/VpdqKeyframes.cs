using System.Globalization;
using System.Text.RegularExpressions;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Hashing.Video;

/// <summary>
/// vPDQ's fast mode in one ffmpeg process (a process start costs about as much as decoding a short clip's
/// keyframes): the decoder skips every frame but keyframes (`-skip_frame nokey`), the `showinfo` filter reports
/// each keyframe's timestamp and full size on standard error, and `scale` reduces it (area averaging) by
/// PDQ's Jarosz window before it is piped as a PAM image. Frames at PDQ's working size are hashed with the
/// reference core exactly; larger ones with PdqHasher's fast path, which emulates the full-size filter.
/// </summary>
internal static partial class VpdqKeyframes
{
    // The reduction PdqHasher.FastScale picks, as an ffmpeg expression: 1 up to a 384-pixel short side, else ceil(short/128).
    private const string Scale = "if(lte(min(iw\\,ih)\\,384)\\,1\\,ceil(min(iw\\,ih)/128))";

    public static VpdqResult Hash(string path, VpdqOptions options, VideoLimits limits, CancellationToken cancel)
    {
        var gate = new object();
        var shown = new List<(double Time, int Width, int Height)>();
        var rate = (Num: 0, Den: 0);
        var codec = "unknown";
        var format = "unknown";
        var streamIndex = -1;
        var (fullWidth, fullHeight) = (0, 0);
        var pumpDone = false;

        void OnLine(string line)
        {
            if (line.StartsWith("[Parsed_showinfo", StringComparison.Ordinal))
            {
                var m = ShowInfo().Match(line);
                if (m.Success)
                {
                    lock (gate)
                    {
                        shown.Add((double.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].ValueSpan, CultureInfo.InvariantCulture), int.Parse(m.Groups[3].ValueSpan, CultureInfo.InvariantCulture)));
                        Monitor.PulseAll(gate);
                    }
                }
                else if (FrameRate().Match(line) is { Success: true } r)
                {
                    rate = (int.Parse(r.Groups[1].ValueSpan, CultureInfo.InvariantCulture), int.Parse(r.Groups[2].ValueSpan, CultureInfo.InvariantCulture));
                }
            }
            else if (streamIndex < 0 && InputStream().Match(line) is { Success: true } s)
            {
                streamIndex = int.Parse(s.Groups[1].ValueSpan, CultureInfo.InvariantCulture);
                codec = s.Groups[2].Value;
                if (StreamSize().Match(line) is { Success: true } z)
                {
                    fullWidth = int.Parse(z.Groups[1].ValueSpan, CultureInfo.InvariantCulture);
                    fullHeight = int.Parse(z.Groups[2].ValueSpan, CultureInfo.InvariantCulture);
                }
            }
            else if (line.StartsWith("Input #0, ", StringComparison.Ordinal))
            {
                var from = line.IndexOf(", from ", StringComparison.Ordinal);
                format = from > 10 ? line[10..from] : format;
            }
        }

        string[] input = options.DecoderThreads > 0
            ? ["-noautorotate", "-threads", options.DecoderThreads.ToString(CultureInfo.InvariantCulture), "-skip_frame", "nokey"]
            : ["-noautorotate", "-skip_frame", "nokey"];
        string[] output =
        [
            "-map", "0:V:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough",
            "-vf", $"scale=w='max(5\\,trunc(iw/{Scale}))':h='max(5\\,trunc(ih/{Scale}))':flags=area,showinfo",
            "-pix_fmt", "rgb24", "-f", "image2pipe", "-c:v", "pam",
        ];

        var exact = new VideoFrameHasher();
        var reduced = new PdqHasher();
        var hashed = new List<(PdqResult Pdq, double Time)>();
        var first = double.NaN;
        var run = FrameSource.RunPam(path, input, output, limits, (frame, width, height, index) =>
        {
            // showinfo writes a frame's line before the frame reaches the pipe; wait for the reader thread to parse it.
            (double Time, int Width, int Height) info;
            lock (gate)
            {
                while (shown.Count <= index && !pumpDone)
                {
                    if (!Monitor.Wait(gate, TimeSpan.FromSeconds(10)))
                    {
                        pumpDone = true;
                    }
                }

                info = shown.Count > index ? shown[(int)index] : (double.NaN, width, height);
            }

            if (double.IsNaN(first))
            {
                first = info.Time;
            }

            var seconds = info.Time - first;
            if (seconds > limits.MaxDurationSeconds || index >= limits.MaxFrames)
            {
                throw new VideoDecodeException(VideoDecodeError.TooLong, string.Create(CultureInfo.InvariantCulture, $"The video is longer than the limit ({limits.MaxDurationSeconds:F0} s)."));
            }

            // showinfo runs after the reduction (its checksums on full HD frames cost as much as the decode); the
            // full size comes from the stream line ffmpeg printed before the first frame.
            var pdq = fullWidth <= width || fullHeight <= height
                ? exact.Hash(frame, width, height)
                : reduced.Hash(frame, width, height, width * 3, 3, PdqResize.Fast, originalWidth: fullWidth, originalHeight: fullHeight);
            hashed.Add((pdq, seconds));
            return true;
        }, OnLine, cancel);

        var fps = rate.Num > 0 && rate.Den > 0 ? (double)rate.Num / rate.Den : 25;
        var frames = new List<VpdqFrame>(hashed.Count);
        var last = -1;
        foreach (var (pdq, seconds) in hashed)
        {
            // Frame numbers from the timestamps (NaN when a showinfo line was missing: the next number).
            var number = double.IsFinite(seconds) ? Math.Max(last + 1, (int)Math.Round(seconds * fps)) : last + 1;
            last = number;
            frames.Add(new VpdqFrame(number, pdq.Quality, pdq.Hash, VpdqFrame.TimestampOf(number, fps)));
        }

        var videoInfo = new VideoInfo(streamIndex, 0, codec, fullWidth, fullHeight, rate.Num > 0 ? rate.Num : 25, rate.Den > 0 ? rate.Den : 1, null, null, 0, format);
        return new VpdqResult(new VpdqHash(frames), videoInfo, run.Problems);
    }

    [GeneratedRegex(@"\] n:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[0-9.e+-]+)\s.*?\bs:(\d+)x(\d+)\s", RegexOptions.CultureInvariant)]
    private static partial Regex ShowInfo();

    [GeneratedRegex(@"config in time_base: \S+, frame_rate: (\d+)/(\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex FrameRate();

    [GeneratedRegex(@"^\s*Stream #0:(\d+)\S*: Video: (\w+)", RegexOptions.CultureInvariant)]
    private static partial Regex InputStream();

    [GeneratedRegex(@", (\d{1,5})x(\d{1,5})[ ,]", RegexOptions.CultureInvariant)]
    private static partial Regex StreamSize();
}
