using System.CommandLine;
using Warden.Review;
using Warden.Review.Audit;
using Warden.Review.Storage;
using Warden.Review.Users;
using Warden.Storage;

namespace Warden.Cli;

/// <summary><c>warden user</c>: review console users (people; API keys are separate).</summary>
internal static class UserCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var username = new Argument<string>("username") { Description = "Login name." };
        var role = new Option<string>("--role") { Description = "reviewer or admin.", Required = true };
        role.AcceptOnlyFromAmong("reviewer", "admin");
        var password = new Option<string?>("--password") { Description = "The password (visible in the process list; prefer --password-stdin)." };
        var stdin = new Option<bool>("--password-stdin") { Description = "Read the password from the first line of standard input." };
        var db = CommonOptions.Db();
        var reviewDb = ReviewDb();
        var create = new Command("create", "Create a review console user.\n\nExample:\n  echo 'a long passphrase' | warden user create alice --role reviewer --password-stdin")
        {
            username, role, password, stdin, db, reviewDb,
        };
        create.SetAction(p =>
        {
            var secret = p.GetValue(stdin) ? Console.In.ReadLine() : p.GetValue(password);
            if (string.IsNullOrEmpty(secret) || secret.Length < 12)
            {
                error.WriteLine("warden: a password of at least 12 characters is required (--password or --password-stdin).");
                return WardenCli.UsageError;
            }

            var name = p.GetRequiredValue(username);
            if (UserNames.Problem(name) is { } problem)
            {
                error.WriteLine($"warden: {problem}");
                return WardenCli.UsageError;
            }

            return CommonOptions.Guarded(error, () => Target(p.GetValue(reviewDb), p.GetRequiredValue(db), create: true, error) is { } target
                ? CreateUser(target, name, p.GetRequiredValue(role), secret, error)
                : WardenCli.NoDatabase);
        });

        var listDb = CommonOptions.Db();
        var listReviewDb = ReviewDb();
        var list = new Command("list", "List review console users.") { listDb, listReviewDb };
        list.SetAction(p =>
        {
            return CommonOptions.Guarded(error, () =>
            {
                if (Target(p.GetValue(listReviewDb), p.GetRequiredValue(listDb), create: false, error) is not { } target)
                {
                    return WardenCli.NoDatabase;
                }

                using var database = ReviewDatabase.Open(target);
                foreach (var u in new ReviewStore(database).Users())
                {
                    output.WriteLine($"{u.Username}\t{u.Role}{(u.Disabled ? "\tdisabled" : "")}");
                }

                return WardenCli.Ok;
            });
        });

        return new Command("user", "Manage review console users (log in at /review of 'warden serve').")
        {
            create, list, Disable(error, disable: true), Disable(error, disable: false), ResetPassword(output, error),
        };
    }

    /// <summary><c>warden user disable NAME</c> / <c>enable NAME</c>: disabling ends the user's sessions at once.</summary>
    private static Command Disable(TextWriter error, bool disable)
    {
        var username = new Argument<string>("username") { Description = "Login name." };
        var db = CommonOptions.Db();
        var reviewDb = ReviewDb();
        var command = disable
            ? new Command("disable", "Disable a review console user: they cannot log in, and their sessions end now.\n\nExample:\n  warden user disable alice --db warden.db") { username, db, reviewDb }
            : new Command("enable", "Enable a disabled review console user again.") { username, db, reviewDb };
        command.SetAction(p => CommonOptions.Guarded(error, () =>
        {
            if (Target(p.GetValue(reviewDb), p.GetRequiredValue(db), create: false, error) is not { } target)
            {
                return WardenCli.NoDatabase;
            }

            var name = p.GetRequiredValue(username);
            using var database = ReviewDatabase.Open(target);
            if (!new ConsoleStore(database).SetDisabled(name, disable))
            {
                error.WriteLine($"warden: no user '{name}'.");
                return WardenCli.SomeFailed;
            }

            Audit(database).Append(new AuditEntry("cli", disable ? "user.disable" : "user.enable", "user:" + name, new Dictionary<string, string> { ["via"] = "cli" }));
            error.WriteLine(disable ? $"warden: disabled '{name}'; their sessions ended." : $"warden: enabled '{name}'.");
            return WardenCli.Ok;
        }));
        return command;
    }

    /// <summary><c>warden user reset-password NAME</c>: a given or generated password; the user's sessions end.</summary>
    private static Command ResetPassword(TextWriter output, TextWriter error)
    {
        var username = new Argument<string>("username") { Description = "Login name." };
        var password = new Option<string?>("--password") { Description = "The new password (visible in the process list; prefer --password-stdin). Neither: one is generated and printed." };
        var stdin = new Option<bool>("--password-stdin") { Description = "Read the new password from the first line of standard input." };
        var db = CommonOptions.Db();
        var reviewDb = ReviewDb();
        var command = new Command("reset-password", "Set a new password for a review console user and end their sessions.\n\nExample:\n  warden user reset-password alice --db warden.db   (prints a generated password)")
        {
            username, password, stdin, db, reviewDb,
        };
        command.SetAction(p =>
        {
            var given = p.GetValue(stdin) ? Console.In.ReadLine() : p.GetValue(password);
            if (given is not null && given.Length < 12)
            {
                error.WriteLine("warden: a password needs at least 12 characters (or leave out --password to have one generated).");
                return WardenCli.UsageError;
            }

            return CommonOptions.Guarded(error, () =>
            {
                if (Target(p.GetValue(reviewDb), p.GetRequiredValue(db), create: false, error) is not { } target)
                {
                    return WardenCli.NoDatabase;
                }

                var name = p.GetRequiredValue(username);
                var secret = given ?? ConsoleStore.GeneratePassword();
                using var database = ReviewDatabase.Open(target);
                if (!new ConsoleStore(database).SetPassword(name, PasswordHashing.Hash(secret)))
                {
                    error.WriteLine($"warden: no user '{name}'.");
                    return WardenCli.SomeFailed;
                }

                Audit(database).Append(new AuditEntry("cli", "user.password_reset", "user:" + name, new Dictionary<string, string> { ["via"] = "cli", ["generated"] = given is null ? "true" : "false" }));
                if (given is null)
                {
                    output.WriteLine(secret); // the only copy: hand it to the user over a safe channel
                }

                error.WriteLine($"warden: new password set for '{name}'; their sessions ended.");
                return WardenCli.Ok;
            });
        });
        return command;
    }

    /// <summary>
    /// The database holding the review tables: --review-db when given, else --db (one persistence). Null, with
    /// the reason written, when a legacy review file still waits to be moved, or (for a command that creates
    /// nothing) when the database does not exist.
    /// </summary>
    internal static string? Target(string? reviewDb, string db, bool create, TextWriter error)
    {
        if (reviewDb is null && LegacyReviewFile.Pending(db) is { } legacy)
        {
            error.WriteLine($"warden: the review state is still in {legacy}; move it first with 'warden review migrate --db <database>'.");
            return null;
        }

        if (create)
        {
            return reviewDb ?? db;
        }

        if (reviewDb is null)
        {
            return DatabaseGuard.Refuse(db, error) is null ? db : null;
        }

        if (!WardenDatabase.IsPostgres(reviewDb) && DatabaseGuard.WhyNotFile(reviewDb, "review database") is { } why)
        {
            error.WriteLine($"warden: {why}; create it with 'warden user create' or fix --review-db.");
            return null;
        }

        return reviewDb;
    }

    /// <summary>Creates the user (and the database and its folder when they do not exist yet).</summary>
    private static int CreateUser(string target, string name, string role, string secret, TextWriter error)
    {
        using var database = ReviewDatabase.Open(target);
        if (!new ReviewStore(database).CreateUser(name, role, PasswordHashing.Hash(secret)))
        {
            error.WriteLine($"warden: user '{name}' exists (names are compared without regard to case).");
            return WardenCli.SomeFailed;
        }

        Audit(database).Append(new AuditEntry("cli", "user.create", "user:" + name, new Dictionary<string, string> { ["role"] = role }));
        error.WriteLine($"warden: created {role} '{name}' in {database.DisplayName}.");
        return WardenCli.Ok;
    }

    internal static Option<string?> ReviewDb() => new("--review-db")
    {
        Description = "A separate database for the review tables (SQLite file or PostgreSQL connection string). Default: Warden:Review:Database, else --db.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("Warden__Review__Database") is { Length: > 0 } env ? env : null,
    };

    /// <summary>The audit log on an open review database.</summary>
    internal static AuditLog Audit(ReviewDatabase database) => new(new DbAuditStore(database));

    /// <summary>The audit log in the review tables of an open database (migrated when needed).</summary>
    internal static AuditLog Audit(WardenDatabase database) => Audit(ReviewDatabase.On(database));
}
