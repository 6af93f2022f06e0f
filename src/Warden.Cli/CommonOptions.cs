using System.CommandLine;
using Warden.Storage;

namespace Warden.Cli;

/// <summary>Options shared by the commands that touch storage.</summary>
internal static partial class CommonOptions
{
    /// <summary>The environment variable that names the default database.</summary>
    public const string DbEnvironmentVariable = "WARDEN_DB";

    public static Option<string> Db() => new("--db")
    {
        Description = $"The Warden database: a SQLite file or a PostgreSQL connection string (postgres://user@host/db or Host=...;Database=...). Default: ${DbEnvironmentVariable}, else warden.db in the working directory. " +
            "Only 'bank create', 'key create' and 'serve --create' create a missing one; every other command refuses it (exit 2).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(DbEnvironmentVariable) is { Length: > 0 } env ? env : "warden.db",
    };

    public static Option<string> Format(string description, params string[] allowed)
    {
        var option = new Option<string>("--format", "-f") { Description = description, DefaultValueFactory = _ => allowed[0] };
        option.AcceptOnlyFromAmong(allowed);
        return option;
    }

    /// <summary>
    /// Runs a storage command, turning refusals into a message and exit code 1. Unless <paramref name="create"/>,
    /// a database that does not exist (or holds no Warden schema) is refused first with exit code 2 and nothing
    /// is created: a mistyped --db must not become an empty database that matches nothing.
    /// </summary>
    public static int WithStore(string db, TextWriter error, Func<BankStore, int> action, bool create = false) => Guarded(error, () =>
    {
        if (!create && DatabaseGuard.Refuse(db, error) is { } refused)
        {
            return refused;
        }

        using var store = BankStore.Open(db);
        return action(store);
    });

    /// <summary>Runs a database command, turning storage refusals into one line on stderr and exit code 1.</summary>
    public static int Guarded(TextWriter error, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (StorageException ex)
        {
            error.WriteLine($"warden: {ex.Message}");
            return WardenCli.SomeFailed;
        }
        catch (System.Data.Common.DbException ex)
        {
            // Not the raw --db text: a PostgreSQL connection string may hold a password.
            error.WriteLine($"warden: database error: {ex.Message}");
            return WardenCli.SomeFailed;
        }
        catch (UnauthorizedAccessException ex)
        {
            error.WriteLine($"warden: database: {ex.Message}");
            return WardenCli.SomeFailed;
        }
    }
}
