using System.Globalization;
using System.Text;
using Warden.Core.Hashing.Pdq;

namespace Warden.Core.Hashing.Video;

/// <summary>One hashed frame of a vPDQ hash.</summary>
/// <param name="FrameNumber">0-based index among the frames the decoder returned (presentation order).</param>
/// <param name="Quality">PDQ quality, 0..100.</param>
/// <param name="Hash">PDQ hash of the whole frame.</param>
/// <param name="Timestamp">frameNumber / frameRate in float32, as the reference computes it.</param>
public readonly record struct VpdqFrame(int FrameNumber, int Quality, PdqHash Hash, float Timestamp)
{
    /// <summary>The reference's line: `frame,quality,hex,seconds` with the seconds in fixed 3 decimals.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{FrameNumber},{Quality},{Hash},{FormatTimestamp(Timestamp)}");

    /// <summary>
    /// The reference prints the float with std::fixed and setprecision(3): round half to even on the exact
    /// binary value. .NET's "F3" on the widened double is exact-value rounding too (ties such as 0.0625 are exact).
    /// </summary>
    public static string FormatTimestamp(float seconds) => ((double)seconds).ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>The reference's timestamp: (float)frameNumber / (float)frameRate.</summary>
    public static float TimestampOf(int frameNumber, double frameRate) => frameNumber / (float)frameRate;
}

/// <summary>
/// A vPDQ video hash: the PDQ hashes of the sampled frames in frame order. Text forms: the reference's
/// lines (`frame,quality,hex,seconds`, one per line), Warden's one-line bank form (the same lines joined by
/// ';'), and HMA's JSON list of "hex,quality,seconds" strings (read only).
/// </summary>
public sealed class VpdqHash
{
    /// <summary>Most frames accepted when parsing a hash (a 4-hour video at 60 fps, every frame).</summary>
    public const int MaxFrames = 1_000_000;

    /// <summary>Creates a hash from frames (kept in the order given).</summary>
    public VpdqHash(IReadOnlyList<VpdqFrame> frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        Frames = frames;
    }

    /// <summary>The frames.</summary>
    public IReadOnlyList<VpdqFrame> Frames { get; }

    /// <summary>The reference's output file: one `\n`-terminated line per frame.</summary>
    public string ToReferenceText()
    {
        var sb = new StringBuilder(Frames.Count * 80);
        foreach (var f in Frames)
        {
            sb.Append(f.ToString()).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>The one-line bank form: the reference's lines joined by ';' (lossless).</summary>
    public string ToSignal() => string.Join(';', Frames.Select(f => f.ToString()));

    /// <summary>Parses any of the text forms; on failure <paramref name="reason"/> says why.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out VpdqHash hash, out string? reason)
    {
        hash = new VpdqHash([]);
        text = text.Trim();
        if (text.Length > MaxFrames * 100)
        {
            reason = "The vPDQ hash is too long.";
            return false;
        }

        if (text.Length > 0 && text[0] == '[')
        {
            return TryParseHmaJson(text, out hash, out reason);
        }

        var frames = new List<VpdqFrame>();
        var n = 0;
        foreach (var range in text.SplitAny(";\n"))
        {
            n++;
            var line = text[range].Trim();
            if (line.IsEmpty)
            {
                continue;
            }

            if (frames.Count >= MaxFrames)
            {
                reason = $"A vPDQ hash may have at most {MaxFrames} frames.";
                return false;
            }

            if (!TryParseLine(line, out var frame, out reason))
            {
                reason = $"vPDQ frame {n}: {reason}";
                return false;
            }

            frames.Add(frame);
        }

        if (frames.Count == 0)
        {
            reason = "A vPDQ hash needs at least one frame line (frame,quality,pdq hex,seconds).";
            return false;
        }

        hash = new VpdqHash(frames);
        reason = null;
        return true;
    }

    /// <summary>Parses one reference line `frame,quality,hex,seconds`.</summary>
    public static bool TryParseLine(ReadOnlySpan<char> line, out VpdqFrame frame, out string? reason)
    {
        frame = default;
        Span<Range> parts = stackalloc Range[5];
        if (line.Split(parts, ',') != 4)
        {
            reason = "expected 4 comma-separated fields: frame,quality,pdq hex,seconds.";
            return false;
        }

        if (!int.TryParse(line[parts[0]], NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            reason = "the frame number is not a non-negative integer.";
            return false;
        }

        if (!int.TryParse(line[parts[1]], NumberStyles.None, CultureInfo.InvariantCulture, out var quality) || quality > 100)
        {
            reason = "the quality is not an integer 0..100.";
            return false;
        }

        if (!PdqHash.TryParse(line[parts[2]], out var pdq, out var pdqError))
        {
            reason = pdqError;
            return false;
        }

        if (!float.TryParse(line[parts[3]], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) || !float.IsFinite(seconds))
        {
            reason = "the timestamp is not a non-negative number of seconds.";
            return false;
        }

        frame = new VpdqFrame(number, quality, pdq, seconds);
        reason = null;
        return true;
    }

    private static bool TryParseHmaJson(ReadOnlySpan<char> text, out VpdqHash hash, out string? reason)
    {
        hash = new VpdqHash([]);
        string[]? items;
        try
        {
            items = System.Text.Json.JsonSerializer.Deserialize<string[]>(text, VideoJson.Default.StringArray);
        }
        catch (System.Text.Json.JsonException e)
        {
            reason = $"not a JSON list of strings: {e.Message}";
            return false;
        }

        if (items is null || items.Length == 0 || items.Length > MaxFrames)
        {
            reason = "HMA's vPDQ form is a JSON list of 1 or more \"hex,quality,seconds\" strings.";
            return false;
        }

        var frames = new List<VpdqFrame>(items.Length);
        for (var i = 0; i < items.Length; i++)
        {
            // HMA keeps no frame numbers: the list position stands in for them.
            var parts = (items[i] ?? string.Empty).Split(',');
            if (parts.Length != 3 || !PdqHash.TryParse(parts[0], out var pdq, out _) ||
                !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var quality) || quality > 100 ||
                !float.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !float.IsFinite(seconds) || seconds < 0)
            {
                reason = $"HMA vPDQ item {i + 1} is not \"hex,quality,seconds\".";
                return false;
            }

            frames.Add(new VpdqFrame(i, quality, pdq, seconds));
        }

        hash = new VpdqHash(frames);
        reason = null;
        return true;
    }
}

/// <summary>Source-generated JSON metadata for the video types (trimming/AOT-safe).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class VideoJson : System.Text.Json.Serialization.JsonSerializerContext
{
}
