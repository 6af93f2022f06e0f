using System.Text.RegularExpressions;

namespace Warden.Cli.Tests;

/// <summary>Batch progress: present tense, byte-weighted rate and ETA, and a few plain lines when not a terminal.</summary>
public sealed partial class BatchProgressTests
{
    private sealed class FakeClock
    {
        public TimeSpan Now { get; set; }
    }

    private static (BatchProgress Progress, StringWriter Text, FakeClock Clock) Make(int files, long bytes, bool terminal, string verbing = "hashing")
    {
        var text = new StringWriter();
        var clock = new FakeClock();
        return (new BatchProgress(text, verbing, files, bytes, terminal, () => clock.Now, timer: false), text, clock);
    }

    [GeneratedRegex(@"(\d+)%, [\d.]+ files/s, [\d.]+ MB/s, ETA (\S+)")]
    private static partial Regex Shape();

    [Theory]
    [InlineData("hashing")]
    [InlineData("scanning")]
    public void The_label_is_present_tense_from_zero_percent(string verbing)
    {
        var (progress, _, clock) = Make(12, 12_000_000, terminal: false, verbing);
        clock.Now = TimeSpan.FromSeconds(3);
        var line = progress.Line(clock.Now, bar: false);
        Assert.StartsWith($"{verbing} 12 files (12.0 MB): 0/12 done, 0%", line, StringComparison.Ordinal);
        Assert.Contains("ETA --:--:--", line, StringComparison.Ordinal);
        Assert.DoesNotContain("hashed", line, StringComparison.Ordinal);
    }

    [Fact]
    public void While_any_file_is_in_flight_the_eta_is_never_zero_and_the_share_is_byte_weighted()
    {
        // Many random batches: sizes spanning 1 kB to 2 GB, a random subset finished, at least one in flight.
        var rng = new Random(1234);
        for (var trial = 0; trial < 2000; trial++)
        {
            var n = rng.Next(1, 40);
            var sizes = Enumerable.Range(0, n).Select(_ => (long)Math.Pow(10, 3 + (rng.NextDouble() * 6.3))).ToArray();
            var (progress, _, clock) = Make(n, sizes.Sum(), terminal: false);
            var inFlight = rng.Next(n);
            long done = 0;
            for (var i = 0; i < n; i++)
            {
                if (i != inFlight && rng.Next(2) == 0)
                {
                    progress.FileDone(sizes[i]);
                    done += sizes[i];
                }
            }

            clock.Now = TimeSpan.FromSeconds(0.5 + (rng.NextDouble() * 600));
            var m = Shape().Match(progress.Line(clock.Now, bar: false));
            Assert.True(m.Success, progress.Line(clock.Now, bar: false));
            Assert.NotEqual("0:00:00", m.Groups[2].Value);
            Assert.InRange(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 0, 100);
            Assert.Equal(Math.Min(99, done * 100 / sizes.Sum()), int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)); // rounded down: a file is in flight
        }
    }

    [Fact]
    public void A_large_file_in_flight_keeps_the_eta_proportional_to_its_bytes()
    {
        // Ten 1 MB files done in 1 s, one 990 MB file running: about 99 % of the work, and of the time, remains.
        var (progress, _, clock) = Make(11, (10 * 1_000_000L) + 990_000_000L, terminal: false);
        for (var i = 0; i < 10; i++)
        {
            progress.FileDone(1_000_000);
        }

        clock.Now = TimeSpan.FromSeconds(1);
        var line = progress.Line(clock.Now, bar: false);
        Assert.Contains("10/11 done, 1%", line, StringComparison.Ordinal);
        Assert.Contains("ETA 0:01:39", line, StringComparison.Ordinal);
        progress.FileDone(990_000_000);
        Assert.Contains("ETA 0:00:00", progress.Line(clock.Now, bar: false), StringComparison.Ordinal);
    }

    [Fact]
    public void Not_a_terminal_a_few_plain_lines_with_rate_and_eta()
    {
        var (progress, text, clock) = Make(10_000, 10_000_000_000, terminal: false);
        for (var t = 0.0; t < 600; t += 0.5)
        {
            clock.Now = TimeSpan.FromSeconds(t);
            progress.FileDone(8_000_000);
            progress.Tick();
        }

        progress.Dispose();
        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.InRange(lines.Length, 5, 30);
        Assert.All(lines, l =>
        {
            Assert.StartsWith("warden: hashing 10000 files (10.0 GB): ", l, StringComparison.Ordinal);
            Assert.Matches(Shape(), l);
        });
        Assert.DoesNotContain('\u001b', text.ToString());
        Assert.DoesNotContain('\r', text.ToString());
    }

    [Fact]
    public void A_short_run_off_a_terminal_prints_no_progress_at_all()
    {
        var (progress, text, clock) = Make(50, 50_000_000, terminal: false);
        for (var t = 0.0; t < 1.9; t += 0.1)
        {
            clock.Now = TimeSpan.FromSeconds(t);
            progress.FileDone(1_000_000);
            progress.Tick();
        }

        progress.Dispose();
        Assert.Empty(text.ToString());
    }

    [Fact]
    public void On_a_terminal_one_line_is_redrawn_kept_apart_from_errors_and_cleared_at_the_end()
    {
        var (progress, text, clock) = Make(4, 4_000_000, terminal: true);
        clock.Now = TimeSpan.FromSeconds(1);
        progress.FileDone(1_000_000);
        progress.Tick();
        progress.WriteLine("warden: bad.jpg: truncated");
        progress.Tick();
        progress.Dispose();
        var s = text.ToString();
        Assert.StartsWith("\r[#####---------------] hashing 4 files (4.0 MB): 1/4 done, 25%", s, StringComparison.Ordinal);
        Assert.Contains("\r\u001b[Kwarden: bad.jpg: truncated\n", s.Replace("\r\n", "\n", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.EndsWith("\r\u001b[K", s, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", s.Replace("warden: bad.jpg: truncated" + Environment.NewLine, string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void Standard_input_or_empty_files_weigh_by_count()
    {
        var (progress, _, clock) = Make(4, 0, terminal: false);
        progress.FileDone(0);
        clock.Now = TimeSpan.FromSeconds(2);
        Assert.Contains("hashing 4 files: 1/4 done, 25%", progress.Line(clock.Now, bar: false), StringComparison.Ordinal);
    }

    /// <summary>
    /// Any batch (1–40 files of 0 B–4 GB), any subset finished in any order, at any time: while a file is in
    /// flight the ETA is never zero and the share never reads 100 %; the share counts bytes when there are any;
    /// elapsed never runs ahead of the clock; the label stays present tense.
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 500)]
    public void Eta_share_and_elapsed_are_honest_for_any_batch(FsCheck.NonEmptyArray<uint> sizes, int seed, FsCheck.PositiveInt millis)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        var files = sizes.Get.Take(40).Select(s => (long)s).ToArray();
        var total = files.Sum();
        var random = new Random(seed);
        var done = random.Next(files.Length + 1);
        var (progress, _, clock) = Make(files.Length, total, terminal: false);
        long doneBytes = 0;
        foreach (var i in Enumerable.Range(0, files.Length).OrderBy(_ => random.Next()).Take(done))
        {
            progress.FileDone(files[i]);
            doneBytes += files[i];
        }

        clock.Now = TimeSpan.FromMilliseconds(millis.Get % 100_000_000);
        var line = progress.Line(clock.Now, bar: random.Next(2) == 0);
        var match = Shape().Match(line);
        Assert.True(match.Success, line);
        var eta = match.Groups[2].Value.TrimEnd(',');
        var percent = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Regex.IsMatch(line, $@"^(\[[#-]{{20}}\] )?hashing {files.Length} files"), line);
        var elapsed = Regex.Match(line, @"(\d+):(\d\d):(\d\d) elapsed");
        var shown = (int.Parse(elapsed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 3600) + (int.Parse(elapsed.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) * 60) + int.Parse(elapsed.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(elapsed.Success && shown <= clock.Now.TotalSeconds, line);
        if (done < files.Length)
        {
            Assert.True(eta != "0:00:00", line);
            Assert.InRange(percent, 0, 99);
            if (total > 0)
            {
                Assert.Equal((int)Math.Min(99, doneBytes * 100 / total), percent);
            }
        }
        else
        {
            Assert.Equal(100, percent);
            Assert.True(eta == "0:00:00", line);
        }
    }
}
