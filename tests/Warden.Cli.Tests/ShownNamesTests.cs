using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Tests;

namespace Warden.Cli.Tests;

/// <summary>
/// File names are outside text: a name holding a line end, a control character or a bidirectional override could
/// add a forged row to a text table or a message, or reorder what a reviewer reads. Text output and messages show
/// such names escaped (one row per file, always); jsonl keeps the exact name.
/// </summary>
public sealed class ShownNamesTests : IDisposable
{
    private static readonly string[] Hostile =
    [
        "a.png\nd41d8cd98f00b204e9800998ecf8427e  forged.png",
        "carriage\r.png",
        "tab\t.png",
        "esc\u001b[31mred.png",
        "bidi-\u202Egnp.exe",
        "sep\u2028line.png",
        "back\\slash.png",
        "plain name.png",
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("warden-shown-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Folder(bool images)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, images ? "images" : "junk")).FullName;
        var i = 0;
        foreach (var name in Hostile)
        {
            File.WriteAllBytes(Path.Combine(folder, name), images ? SyntheticImages.Encode(SyntheticImages.Blobs(48, 48, 60 + i++), 48, 48, "png") : [1, 2, 3]);
        }

        return folder;
    }

    [Fact]
    public void Hash_tables_show_one_escaped_row_per_file_and_jsonl_keeps_the_name()
    {
        var folder = Folder(images: true);
        var table = Cli.Run("hash", "--no-progress", folder);
        Assert.True(table.Exit == 0, table.Err);
        var rows = table.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Hostile.Length + 1, rows.Length); // the header and one row per file: nothing forged
        foreach (var name in Hostile)
        {
            Assert.Single(rows, r => r.EndsWith("  " + Path.Combine(folder, CommonOptions.Shown(name)), StringComparison.Ordinal));
        }

        Assert.DoesNotContain(rows, r => r.Any(c => char.IsControl(c) || c is '\u202E' or '\u2028'));

        var jsonl = Cli.Run("hash", "--no-progress", "-f", "jsonl", folder);
        var paths = jsonl.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()).ToHashSet();
        Assert.True(Hostile.All(n => paths.Contains(Path.Combine(folder, n))), string.Join(" | ", paths));
    }

    [Fact]
    public void Messages_about_files_are_one_line_each()
    {
        var folder = Folder(images: false);
        var r = Cli.Run("hash", "--no-progress", folder);
        Assert.Equal(WardenCli.SomeFailed, r.Exit);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.StartsWith("warden: ", l, StringComparison.Ordinal));
        foreach (var name in Hostile)
        {
            Assert.Single(lines, l => l.StartsWith("warden: " + Path.Combine(folder, CommonOptions.Shown(name)) + ": ", StringComparison.Ordinal));
        }

        var provenance = Cli.Run("provenance", folder);
        Assert.All(provenance.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.StartsWith("warden: ", l, StringComparison.Ordinal));
    }

    /// <summary>Shown never yields a line end, control or bidi character, leaves plain text alone, and tells different texts apart.</summary>
    [Fact]
    public void Shown_is_single_line_and_unambiguous()
    {
        var chars = Gen.Elements("ab.\\/ \n\r\t\u0000\u001b\u007f\u0085\u202A\u202E\u2066\u2069\u200E\u2028\u2029éx".ToCharArray());
        Prop.ForAll(chars.ArrayOf().Select(c => new string(c)).ToArbitrary(), chars.ArrayOf().Select(c => new string(c)).ToArbitrary(), (a, b) =>
        {
            var shown = CommonOptions.Shown(a);
            Assert.DoesNotContain(shown, c => char.IsControl(c) || c is '\u2028' or '\u2029' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069') or '\u200E' or '\u200F');
            if (!a.Any(c => c == '\\' || char.IsControl(c) || c > 0x2000))
            {
                Assert.Equal(a, shown);
            }

            Assert.True(a == b || shown != CommonOptions.Shown(b), $"'{shown}' shows two texts");
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(1000));
    }
}
