using System.CommandLine;
using Warden.Review;
using Warden.Review.Audit;
using Warden.Server;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;

namespace Warden.Cli;

/// <summary><c>warden serve</c> and <c>warden key</c>.</summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter error)
    {
        var db = CommonOptions.Db();
        var urls = new Option<string>("--urls")
        {
            Description = "Where to listen (ASP.NET syntax; several separated by ';').",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ASPNETCORE_URLS") is { Length: > 0 } env ? env : "http://127.0.0.1:8080",
        };
        var maxUpload = new Option<long?>("--max-upload-mb") { Description = "Largest upload accepted, in MiB (default 64)." };
        var hmaUrls = new Option<string?>("--hma-urls") { Description = "Also listen here (http://127.0.0.1:PORT; ';' between several) as an HMA-compatibility listener for clients that send no credentials (ROOST Coop): HMA's routes only, each request acting as --hma-role. Off by default; bind it where only those clients reach." };
        var hmaRole = new Option<string?>("--hma-role") { Description = "The role requests on --hma-urls act with: curator (HMA's whole API; the default) or submitter (hash and match only)." };
        var create = new Option<bool>("--create") { Description = "Create the database (and its schema) if it does not exist; without it a missing database is refused (exit 2)." };
        var command = new Command("serve", "Run the HTTP API (hash, match, banks, webhooks, HMA-compatible endpoints) over the database.\n\n" +
            "Every endpoint but /healthz, /readyz and /status needs an API key; create the first with 'warden key create --role admin'. " +
            "The API reference is served at /docs, the OpenAPI description at /openapi/v1.json. Settings: appsettings.json or environment variables " +
            "Warden__Name (see docs/operations.md).\n\nExamples:\n  warden serve\n  warden serve --db warden.db --urls http://127.0.0.1:8080\n  warden serve --urls http://127.0.0.1:8080 --hma-urls http://127.0.0.1:9876 --hma-role curator\n  warden serve --db 'Host=db;Database=warden;Username=warden'")
        {
            db, urls, maxUpload, create, hmaUrls, hmaRole,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(p =>
        {
            if (!p.GetValue(create) && CommonOptions.Guarded(error, () => DatabaseGuard.Refuse(p.GetRequiredValue(db), error) ?? WardenCli.Ok) is not WardenCli.Ok and var refused)
            {
                return refused;
            }

            try
            {
                var app = WardenServer.Build(
                    [.. p.UnmatchedTokens, "--urls", p.GetRequiredValue(urls)],
                    o =>
                    {
                        o.Database = p.GetRequiredValue(db);
                        if (p.GetValue(maxUpload) is { } mb)
                        {
                            o.MaxUploadBytes = mb * 1024 * 1024;
                        }

                        if (p.GetValue(hmaUrls) is { Length: > 0 } hu)
                        {
                            o.HmaUrls = hu;
                        }

                        if (p.GetValue(hmaRole) is { Length: > 0 } hr)
                        {
                            o.HmaRole = hr;
                        }
                    });
                app.Run();
                return WardenCli.Ok;
            }
            catch (StorageException ex)
            {
                error.WriteLine($"warden: {ex.Message}");
                return WardenCli.SomeFailed;
            }
            catch (InvalidOperationException ex) when (ex.Message.StartsWith("--hma", StringComparison.Ordinal) || ex.Message.StartsWith("HmaIdentity", StringComparison.Ordinal))
            {
                error.WriteLine($"warden: {ex.Message}");
                return WardenCli.UsageError;
            }
            catch (IOException ex)
            {
                error.WriteLine($"warden: cannot listen: {ex.Message}");
                return WardenCli.SomeFailed;
            }
        });
        return command;
    }

    public static Command Keys(TextWriter output, TextWriter error)
    {
        var role = new Option<string>("--role") { Description = $"What the key may do: {Roles.AllNames}.", Required = true };
        role.AcceptOnlyFromAmong(Enum.GetValues<Role>().Select(Roles.Name).ToArray());
        var name = new Option<string>("--name") { Description = "Who or what uses the key (shown in listings and logs).", DefaultValueFactory = _ => "cli" };
        var db = CommonOptions.Db();
        var create = new Command("create", "Create an API key and print it (once; only its hash is stored). Creates the database if it does not exist yet.\n\nExample:\n  warden key create --role admin --name ops") { role, name, db };
        create.SetAction(p => WithServerStore(p.GetRequiredValue(db), error, store =>
        {
            if (!Roles.TryParse(p.GetRequiredValue(role), out var r))
            {
                return WardenCli.UsageError;
            }

            var (record, key) = store.CreateKey(p.GetRequiredValue(name), r);
            UserCommand.Audit(store.Database).Append(new AuditEntry(
                "cli", "key.create", $"key:{record.Id}", new Dictionary<string, string> { ["public_id"] = record.PublicId, ["role"] = Roles.Name(r), ["name"] = record.Name }));
            error.WriteLine($"warden: created {Roles.Name(record.Role)} key {record.Id} ({record.PublicId}) for '{record.Name}'. It is shown once; store it now.");
            output.WriteLine(key);
            return WardenCli.Ok;
        }, create: true));

        var listDb = CommonOptions.Db();
        var list = new Command("list", "List API keys (never their secrets).") { listDb };
        list.SetAction(p => WithServerStore(p.GetRequiredValue(listDb), error, store =>
        {
            output.WriteLine($"{"ID",-6}{"PUBLIC ID",-11}{"ROLE",-11}{"CREATED (UTC)",-22}{"REVOKED",-22}NAME");
            foreach (var k in store.ListKeys())
            {
                output.WriteLine($"{k.Id,-6}{k.PublicId,-11}{Roles.Name(k.Role),-11}{k.CreatedAt:yyyy-MM-dd HH:mm:ss}   {(k.RevokedAt is { } at ? at.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) : "-"),-22}{k.Name}");
            }

            return WardenCli.Ok;
        }, audits: false));

        var id = new Argument<long>("id") { Description = "The key's id (from 'warden key list')." };
        var revokeDb = CommonOptions.Db();
        var revoke = new Command("revoke", "Revoke an API key: it stops working on every node within seconds.") { id, revokeDb };
        revoke.SetAction(p => WithServerStore(p.GetRequiredValue(revokeDb), error, store =>
        {
            if (!store.RevokeKey(p.GetRequiredValue(id)))
            {
                error.WriteLine($"warden: no live key {p.GetRequiredValue(id)}");
                return WardenCli.SomeFailed;
            }

            UserCommand.Audit(store.Database).Append(new AuditEntry("cli", "key.revoke", $"key:{p.GetRequiredValue(id)}"));
            error.WriteLine($"warden: revoked key {p.GetRequiredValue(id)}");
            return WardenCli.Ok;
        }));

        return new Command("key", "Manage API keys for 'warden serve'.") { create, list, revoke };
    }

    private static int WithServerStore(string db, TextWriter error, Func<ServerStore, int> action, bool create = false, bool audits = true) => CommonOptions.Guarded(error, () =>
    {
        if (!create && DatabaseGuard.Refuse(db, error) is { } refused)
        {
            return refused;
        }

        // An audit record written now would land before the legacy chain is moved in (and block the move).
        if (audits && LegacyReviewFile.Pending(db) is { } legacy)
        {
            error.WriteLine($"warden: the review state is still in {legacy}; move it first with 'warden review migrate --db <database>'.");
            return WardenCli.NoDatabase;
        }

        using var database = WardenDatabase.Open(db);
        var store = new ServerStore(database);
        store.Migrate();
        return action(store);
    });
}
