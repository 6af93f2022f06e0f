using System.CommandLine;
using Warden.Review.Audit;
using Warden.Review.Storage;
using Warden.Server.Review;

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

            var path = p.GetValue(reviewDb) ?? ReviewService.DefaultPath(p.GetRequiredValue(db));
            var name = p.GetRequiredValue(username);
            return CommonOptions.Guarded(error, () => CreateUser(path, name, p.GetRequiredValue(role), secret, error));
        });

        var listDb = CommonOptions.Db();
        var listReviewDb = ReviewDb();
        var list = new Command("list", "List review console users.") { listDb, listReviewDb };
        list.SetAction(p =>
        {
            var path = p.GetValue(listReviewDb) ?? ReviewService.DefaultPath(p.GetRequiredValue(listDb));
            if (DatabaseGuard.WhyNotFile(path, "review database") is { } why)
            {
                error.WriteLine($"warden: {why}; create it with 'warden user create' or fix --review-db / --db.");
                return WardenCli.NoDatabase;
            }

            return CommonOptions.Guarded(error, () =>
            {
                var store = new ReviewStore(path);
                foreach (var u in store.Users())
                {
                    output.WriteLine($"{u.Username}\t{u.Role}{(u.Disabled ? "\tdisabled" : "")}");
                }

                return WardenCli.Ok;
            });
        });

        return new Command("user", "Manage review console users (log in at /review of 'warden serve').") { create, list };
    }

    /// <summary>Creates the user, and the review database (with its folder) when it does not exist yet.</summary>
    private static int CreateUser(string path, string name, string role, string secret, TextWriter error)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
        catch (IOException ex)
        {
            error.WriteLine($"warden: cannot make the folder of the review database {path}: {ex.Message}");
            return WardenCli.SomeFailed;
        }

        var store = new ReviewStore(path);
        if (!store.CreateUser(name, role, PasswordHashing.Hash(secret)))
        {
            error.WriteLine($"warden: user '{name}' exists.");
            return WardenCli.SomeFailed;
        }

        Audit(path).Append(new AuditEntry("cli", "user.create", "user:" + name, new Dictionary<string, string> { ["role"] = role }));
        error.WriteLine($"warden: created {role} '{name}' in {path}.");
        return WardenCli.Ok;
    }

    internal static Option<string?> ReviewDb() => new("--review-db")
    {
        Description = "The review database (SQLite). Default: Warden:Review:Database, else NAME.review.db beside a SQLite --db.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("Warden__Review__Database") is { Length: > 0 } env ? env : null,
    };

    internal static AuditLog Audit(string path) => new(new SqliteAuditStore(ReviewDatabase.Open(path)));
}
