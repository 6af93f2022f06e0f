using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Warden.Core.Banks;

namespace Warden.Cli.Tests;

/// <summary>
/// Every word on a command line reaches the command as written. System.CommandLine, by default, replaces a word
/// starting with '@' by the lines of the file it names (a response file) and splits "-x:value" / "-x=value" into two
/// tokens; either turned an invalid bank name into a different, valid one ("-:a09" created bank "a09"), and a path
/// such as "@upload.jpg" would have been read as a list of other paths — or crashed the process when unreadable.
/// </summary>
public sealed class LiteralArgumentsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("warden-literal-").FullName;

    private string Db => Path.Combine(_dir, "warden.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private string[] BankList()
    {
        var r = Run("bank", "list", "-f", "jsonl", "--db", Db);
        Assert.True(r.Exit == 0, r.Err);
        return [.. r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("name").GetString()!)];
    }

    [Fact]
    public void A_word_starting_with_at_is_a_name_not_a_response_file()
    {
        Assert.Equal(0, Run("bank", "create", "first", "--db", Db).Exit);

        // A file whose lines would make a valid command line if it were expanded.
        var file = Path.Combine(_dir, "words");
        File.WriteAllText(file, "valid\n");
        var unreadable = Path.Combine(_dir, "locked");
        Directory.CreateDirectory(unreadable); // reading a directory as a file fails: the old parser crashed here

        foreach (var word in new[] { "@" + file, "@" + unreadable, "@" + Path.Combine(_dir, "missing"), "@", "@@x" })
        {
            var r = Run("bank", "create", word, "--db", Db);
            Assert.True(r.Exit == 1, $"{word}: exit {r.Exit} {r.Err}");
            Assert.Contains($"Invalid bank name '{word}'", r.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        }

        Assert.Equal(["first"], BankList());

        // A file path starting with '@' is hashed as that path (here: missing, so a one-line error naming it).
        var hash = Run("hash", "@" + file);
        Assert.NotEqual(0, hash.Exit);
        Assert.Contains("@" + file, hash.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("valid", hash.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Dash_words_with_colon_or_equals_are_not_split_into_option_and_value()
    {
        foreach (var word in new[] { "-:a09", "-=a", "-a:b", "-a=b", "-x:valid", "-:", "-=" })
        {
            var r = Run("bank", "create", word, "--db", Db);
            Assert.True(r.Exit != 0, $"{word}: exit 0, {r.Out}");
            Assert.DoesNotContain("created bank", r.Out, StringComparison.Ordinal);
        }

        // Nothing was created under the word's tail, and the database may not even exist.
        Assert.True(!File.Exists(Db) || BankList().Length == 0);

        // The documented option forms still work: "--option value" and "--option=value".
        Assert.Equal(0, Run("bank", "create", "ok", "--description=from:a=b", "--db", Db).Exit);
        var ok = Run("bank", "list", "-f", "jsonl", "--db", Db);
        Assert.Contains("\"description\":\"from:a=b\"", ok.Out, StringComparison.Ordinal);
    }

    /// <summary>
    /// For any word built from characters that parsers and regexes treat specially, `bank create` succeeds exactly
    /// when the one name rule says so, and then the bank has exactly that name.
    /// </summary>
    [Fact]
    public void Bank_create_takes_any_word_literally()
    {
        var special = "aZ09_-.@:=\n\r \t\"'\\/#%!~é\0".ToCharArray();
        var words = Gen.Elements(special).ArrayOf().Select(c => new string(c)).Where(w => w.Length <= 70);
        var created = new HashSet<string>(StringComparer.Ordinal);
        Prop.ForAll(words.ToArbitrary(), word =>
        {
            if (created.Contains(word))
            {
                return;
            }

            var r = Run("bank", "create", word, "--db", Db);
            var valid = BankNames.IsValid(word);
            Assert.True(valid ? r.Exit == 0 : r.Exit != 0, $"{JsonSerializer.Serialize(word)}: exit {r.Exit} {r.Err}");
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
            if (valid)
            {
                created.Add(word);
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(400));

        Assert.Equal(created.Order(StringComparer.Ordinal), BankList().Order(StringComparer.Ordinal));
    }
}
