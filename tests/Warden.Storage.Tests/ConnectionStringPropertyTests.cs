using FsCheck;
using FsCheck.Xunit;

namespace Warden.Storage.Tests;

/// <summary>Any text as a database target: parsed or refused with a StorageException, never anything else.</summary>
public sealed class ConnectionStringPropertyTests
{
    [Property(MaxTest = 500)]
    public void Percent_encoded_uri_parts_round_trip(NonNull<string> userText, NonNull<string> passwordText, NonNull<string> databaseText)
    {
        // NUL is the one character no PostgreSQL name or password may hold (refused, as the next property checks).
        static string NoNul(NonNull<string> s) => s.Get.Replace('\0', ' ');
        var (user, password, database) = (NoNul(userText), NoNul(passwordText), NoNul(databaseText));
        var b = PostgresUri.Parse($"postgres://{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@db.internal:6543/{Uri.EscapeDataString(database)}");
        Assert.Equal((user, password, "db.internal", 6543), (b.Username ?? string.Empty, b.Password ?? string.Empty, b.Host, b.Port));
        Assert.Equal(database, b.Database ?? string.Empty);
    }

    [Property(MaxTest = 1000)]
    public void Arbitrary_text_after_the_scheme_is_parsed_or_refused_clearly(NonNull<string> rest, bool keyValue)
    {
        var target = keyValue ? "Host=db;" + rest.Get : "postgres://" + rest.Get;
        try
        {
            using var db = WardenDatabase.Open(target);
            Assert.Equal(SqlDialect.Postgres, db.Dialect);
            Assert.StartsWith("postgres://", db.DisplayName, StringComparison.Ordinal);
        }
        catch (StorageException ex)
        {
            Assert.Equal(StorageError.Invalid, ex.Error);
        }
    }
}
