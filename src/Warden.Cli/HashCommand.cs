using System.CommandLine;
using System.Globalization;
using Warden.Core.Hashing;
using Warden.Core.Hashing.Pdq;
using Warden.Core.Hashing.Video;
using Warden.Core.Imaging;

namespace Warden.Cli;

/// <summary>`warden hash PATH...`: every signal of every file, in parallel, printed in input order.</summary>
internal static class HashCommand
{
    private static readonly string[] DihedralNames = ["orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1"];

    public static Command Create(TextWriter output, TextWriter error)
    {
        var paths = new Argument<string[]>("PATH")
        {
            Description = "Files or folders to hash ('-' reads one file from standard input). Folders are walked recursively; files are recognised by content, not by name.",
            Arity = ArgumentArity.OneOrMore,
        };
        var format = new Option<string>("--format", "-f")
        {
            Description = "Output: 'table' (aligned columns for reading), 'jsonl' (one JSON object per line), 'csv' (with a header row).",
            DefaultValueFactory = _ => "table",
        };
        format.AcceptOnlyFromAmong("table", "jsonl", "csv");
        var dihedral = new Option<bool>("--dihedral")
        {
            Description = "Also print the PDQ hashes of the 7 rotations/mirror images (computed from the same DCT), to match re-uploads that were turned or flipped.",
        };
        var resize = new Option<string>("--pdq-resize")
        {
            Description = "How images are brought to PDQ's working size: 'fast' (default: scaled decode + block averaging; within a few bits of Meta's hashes), " +
                          "'full' (every pixel, as HMA/python-threatexchange), 'cli512' (Meta's pdq-photo-hasher: 512x512 nearest-neighbour; bit-exact with it).",
            DefaultValueFactory = _ => "fast",
        };
        resize.AcceptOnlyFromAmong("fast", "full", "cli512");
        var threads = new Option<int>("--threads", "-j")
        {
            Description = "Files hashed at once (default: one per CPU core).",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var noProgress = new Option<bool>("--no-progress") { Description = "Do not show the progress bar on stderr." };
        var maxPixels = new Option<long>("--max-pixels")
        {
            Description = "Refuse images declaring more pixels than this (decompression-bomb guard).",
            DefaultValueFactory = _ => ImageLimits.DefaultMaxPixels,
        };

        var videoMode = VideoFiles.ModeOption();
        var vpdqSeconds = VideoFiles.SecondsOption();
        var videoMaxSeconds = VideoFiles.MaxSecondsOption();
        var tmk = new Option<bool>("--tmk") { Description = "Videos: also compute TMK+PDQF (printed as tmk1:base64 of the .tmk file, about 350 KB per video; jsonl and csv only)." };
        var command = new Command("hash", "Compute PDQ (with quality), MD5, SHA-1 and SHA-256 of images, with width and height.\n" +
            "Videos (recognised by content; needs ffmpeg) get vPDQ (Meta's format, one line per hashed frame joined by ';') and, with --tmk, TMK+PDQF.\n" +
            "Files that cannot be hashed are reported on stderr with the reason; the others are still hashed, and the exit code is 1.\n\n" +
            "Examples:\n  warden hash photo.jpg\n  cat upload.bin | warden hash -f jsonl -\n  warden hash --format jsonl uploads/ > hashes.jsonl\n  warden hash --dihedral --format csv a.png b.webp")
        {
            paths, format, dihedral, resize, threads, noProgress, maxPixels, videoMode, vpdqSeconds, videoMaxSeconds, tmk,
        };

        command.SetAction(parse =>
        {
            var options = new HashOptions(
                parse.GetRequiredValue(paths),
                parse.GetRequiredValue(format),
                parse.GetValue(dihedral),
                parse.GetRequiredValue(resize) switch { "full" => PdqResize.FullResolution, "cli512" => PdqResize.Cli512, _ => PdqResize.Fast },
                parse.GetValue(threads),
                !parse.GetValue(noProgress),
                parse.GetValue(maxPixels),
                VideoFiles.Options(parse.GetRequiredValue(videoMode), parse.GetValue(vpdqSeconds), parse.GetValue(tmk), parse.GetValue(videoMaxSeconds), 1));
            if (options.Threads < 1 || options.MaxPixels < 1)
            {
                error.WriteLine("warden: --threads and --max-pixels must be at least 1.");
                return WardenCli.UsageError;
            }

            return Execute(options, output, error);
        });
        return command;
    }

    internal sealed record HashOptions(string[] Paths, string Format, bool Dihedral, PdqResize Resize, int Threads, bool Progress, long MaxPixels, VideoHashOptions? Video = null);

    internal static int Execute(HashOptions options, TextWriter output, TextWriter error)
    {
        var writer = RowWriter.For(options.Format, options.Dihedral, output);
        var (_, failed) = FileBatch.Run<object?>(
            options.Paths,
            new BatchOptions(options.Threads, options.Progress, options.Resize, options.MaxPixels, options.Dihedral, "hashed", Video: options.Video),
            error,
            perFile: null,
            consume: r =>
            {
                if (r.Hashes is not null && r.Video is not null)
                {
                    writer.WriteVideo(r.Path, r.Hashes, r.Video);
                }
                else if (r.Hashes is not null)
                {
                    writer.Write(r.Path, r.Hashes);
                }
            });
        output.Flush();
        return failed > 0 ? WardenCli.SomeFailed : WardenCli.Ok;
    }

    /// <summary>Formats one result row.</summary>
    private abstract class RowWriter(TextWriter output, bool dihedral)
    {
        protected TextWriter Output { get; } = output;

        protected bool Dihedral { get; } = dihedral;

        public static RowWriter For(string format, bool dihedral, TextWriter output) => format switch
        {
            "jsonl" => new JsonLinesWriter(output, dihedral),
            "csv" => new CsvWriter(output, dihedral),
            _ => new TableWriter(output, dihedral),
        };

        public abstract void Write(string path, ContentHashes h);

        public abstract void WriteVideo(string path, ContentHashes h, VideoHashes v);

        protected static string FormatName(ImageFormat f) => f.ToString().ToLowerInvariant();
    }

    private sealed class TableWriter(TextWriter output, bool dihedral) : RowWriter(output, dihedral)
    {
        private bool _headerWritten;

        public override void WriteVideo(string path, ContentHashes h, VideoHashes v)
        {
            // The frame hashes are too long for a table: a summary, then the reference's lines indented.
            Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"video {v.Info.Codec} {v.Info.Width}x{v.Info.Height} {VideoFiles.Fps(v.Info)} fps, {v.Vpdq?.Frames.Count ?? 0} vPDQ frames  {h.Exact.Md5Hex}  {h.Exact.Sha1Hex}  {h.Exact.Sha256Hex}  {CommonOptions.Shown(path)}"));
            foreach (var f in v.Vpdq?.Frames ?? [])
            {
                Output.WriteLine("  " + f);
            }
        }

        public override void Write(string path, ContentHashes h)
        {
            if (!_headerWritten)
            {
                Output.WriteLine($"{"pdq",-64}  {"q",3}  {"width",5}  {"height",6}  {"md5",-32}  {"sha1",-40}  {"sha256",-64}  path");
                _headerWritten = true;
            }

            var img = h.Image!;
            Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{img.Pdq.Hash}  {img.Pdq.Quality,3}  {img.Width,5}  {img.Height,6}  {h.Exact.Md5Hex}  {h.Exact.Sha1Hex}  {h.Exact.Sha256Hex}  {CommonOptions.Shown(path)}"));
            if (Dihedral && img.Pdq.Dihedral is { } variants)
            {
                for (var v = 1; v < variants.Count; v++)
                {
                    Output.WriteLine($"{variants[v]}  {DihedralNames[v]}");
                }
            }
        }
    }

    private sealed class CsvWriter(TextWriter output, bool dihedral) : RowWriter(output, dihedral)
    {
        private bool _headerWritten;

        public override void WriteVideo(string path, ContentHashes h, VideoHashes v)
        {
            if (!_headerWritten)
            {
                Output.WriteLine("path,format,width,height,pdq,quality,md5,sha1,sha256,vpdq,tmk_pdqf");
                _headerWritten = true;
            }

            Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{CommonOptions.CsvField(path)},video,{v.Info.Width},{v.Info.Height},,,{h.Exact.Md5Hex},{h.Exact.Sha1Hex},{h.Exact.Sha256Hex},{v.Vpdq?.ToSignal()},{(v.Tmk is null ? string.Empty : TmkHasher.ToSignal(v.Tmk))}"));
        }

        public override void Write(string path, ContentHashes h)
        {
            if (!_headerWritten)
            {
                Output.Write("path,format,width,height,pdq,quality,md5,sha1,sha256");
                if (Dihedral)
                {
                    Output.Write(string.Concat(DihedralNames.Skip(1).Select(n => ",pdq_" + n)));
                }

                Output.WriteLine();
                _headerWritten = true;
            }

            var img = h.Image!;
            Output.Write(string.Create(CultureInfo.InvariantCulture,
                $"{CommonOptions.CsvField(path)},{FormatName(img.Format)},{img.Width},{img.Height},{img.Pdq.Hash},{img.Pdq.Quality},{h.Exact.Md5Hex},{h.Exact.Sha1Hex},{h.Exact.Sha256Hex}"));
            if (Dihedral && img.Pdq.Dihedral is { } variants)
            {
                Output.Write(string.Concat(variants.Skip(1).Select(v => "," + v)));
            }

            Output.WriteLine();
        }

    }

    private sealed class JsonLinesWriter(TextWriter output, bool dihedral) : RowWriter(output, dihedral)
    {
        public override void WriteVideo(string path, ContentHashes h, VideoHashes v)
        {
            CommonOptions.WriteJsonLine(Output, json =>
            {
                json.WriteString("path", path);
                json.WriteString("format", "video");
                json.WriteString("codec", v.Info.Codec);
                json.WriteNumber("width", v.Info.Width);
                json.WriteNumber("height", v.Info.Height);
                json.WriteNumber("fps", Math.Round(v.Info.FrameRate, 6));
                json.WriteNumber("bytes", h.Length);
                json.WriteString("md5", h.Exact.Md5Hex);
                json.WriteString("sha1", h.Exact.Sha1Hex);
                json.WriteString("sha256", h.Exact.Sha256Hex);
                if (v.Vpdq is { } vpdq)
                {
                    json.WriteNumber("vpdq_frames", vpdq.Frames.Count);
                    json.WriteString("vpdq", vpdq.ToSignal());
                }

                if (v.Tmk is { } tmk)
                {
                    json.WriteNumber("tmk_frames", tmk.FrameCount);
                    json.WriteString("tmk_pdqf", TmkHasher.ToSignal(tmk));
                }

                if (v.Problems is { } problems)
                {
                    json.WriteString("decode_problems", problems);
                }

                json.WriteNumber("seconds", Math.Round(v.Elapsed.TotalSeconds, 3));
                WritePlugins(json, h);
            });
        }

        public override void Write(string path, ContentHashes h)
        {
            var img = h.Image!;
            CommonOptions.WriteJsonLine(Output, json =>
            {
                json.WriteString("path", path);
                json.WriteString("format", FormatName(img.Format));
                json.WriteNumber("width", img.Width);
                json.WriteNumber("height", img.Height);
                json.WriteNumber("bytes", h.Length);
                json.WriteString("pdq", img.Pdq.Hash.ToString());
                json.WriteNumber("quality", img.Pdq.Quality);
                json.WriteString("md5", h.Exact.Md5Hex);
                json.WriteString("sha1", h.Exact.Sha1Hex);
                json.WriteString("sha256", h.Exact.Sha256Hex);
                if (img.Trimmed is { } trimmed && img.TrimRect is { } rect)
                {
                    // The image had uniform borders: the hash of what is inside them (used by matching).
                    json.WriteStartObject("trimmed");
                    json.WriteString("pdq", trimmed.Hash.ToString());
                    json.WriteNumber("quality", trimmed.Quality);
                    json.WriteNumber("x", rect.X);
                    json.WriteNumber("y", rect.Y);
                    json.WriteNumber("width", rect.Width);
                    json.WriteNumber("height", rect.Height);
                    json.WriteEndObject();
                }

                if (Dihedral && img.Pdq.Dihedral is { } variants)
                {
                    json.WriteStartObject("dihedral");
                    for (var v = 1; v < variants.Count; v++)
                    {
                        json.WriteString(DihedralNames[v], variants[v].ToString());
                    }

                    json.WriteEndObject();
                }

                WritePlugins(json, h);
            });
        }

        // Plug-in signal types (SignalTypeRegistry), each under its own name: the built-ins have fields above.
        private static void WritePlugins(System.Text.Json.Utf8JsonWriter json, ContentHashes h)
        {
            if (h.Extra is not { Count: > 0 } extra)
            {
                return;
            }

            json.WriteStartObject("signals");
            foreach (var s in extra)
            {
                json.WriteString(s.Type.Name, s.Value);
            }

            json.WriteEndObject();
        }
    }
}
