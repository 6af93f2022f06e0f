using System.Data.Common;
using Microsoft.Data.Sqlite;
using Warden.Storage;

namespace Warden.Cli;

/// <summary>
/// The one check every database command makes before it opens storage: the database must already exist and
/// hold Warden's schema. Opening storage creates and migrates whatever it is given, so without this a mistyped
/// --db or $WARDEN_DB became an empty database, and <c>scan --fail-on-match</c> then passed: a fail-open.
/// Only the commands that are asked to create one skip it (<c>bank create</c>, <c>key create</c>,
/// <c>serve --create</c>, <c>user create</c> for the review database).
/// </summary>
internal static class DatabaseGuard
{
    /// <summary>What to do instead, said once in every refusal.</summary>
    public const string CreateHint = "create it with 'warden bank create NAME', 'warden key create' or 'warden serve --create', or fix --db / $" + CommonOptions.DbEnvironmentVariable;

    /// <summary>
    /// Null when <paramref name="target"/> names an existing Warden database; otherwise writes one line on
    /// <paramref name="error"/> and returns <see cref="WardenCli.NoDatabase"/>. Creates nothing.
    /// </summary>
    public static int? Refuse(string target, TextWriter error)
    {
        var why = WhyNot(target);
        if (why is null)
        {
            return null;
        }

        error.WriteLine($"warden: {why}; {CreateHint}.");
        return WardenCli.NoDatabase;
    }

    /// <summary>Null when the database exists and holds Warden's schema; else the reason (no password in it).</summary>
    internal static string? WhyNot(string target)
    {
        if (string.IsNullOrWhiteSpace(target))
        {
            return "no database given";
        }

        return WardenDatabase.IsPostgres(target) ? WhyNotPostgres(target) : WhyNotSqlite(target);
    }

    /// <summary>Null when the SQLite review database at <paramref name="path"/> exists; else the reason.</summary>
    internal static string? WhyNotFile(string path, string what)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            return $"the {what} {full} is a folder, not a database file";
        }

        return File.Exists(full) ? null : $"no {what} at {full}";
    }

    private static string? WhyNotSqlite(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"'{path}' is not a usable database path ({ex.Message})";
        }

        if (WhyNotFile(full, "database") is { } missing)
        {
            return missing;
        }

        // Read-only and unpooled: looking must neither create, migrate nor keep the file open.
        var cs = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString();
        try
        {
            using var connection = new SqliteConnection(cs);
            connection.Open();
            using var cmd = connection.CreateCommand();
            cmd.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('schema_versions', 'schema_version')";
            return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0
                ? null
                : $"{full} is not a Warden database (it holds no Warden schema)";
        }
        catch (SqliteException ex)
        {
            return $"{full} is not a Warden database ({ex.Message.TrimEnd('.')})";
        }
    }

    private static string? WhyNotPostgres(string target)
    {
        using var db = WardenDatabase.Open(target);
        try
        {
            using var connection = db.OpenConnection();
            using var cmd = connection.CreateCommand();
            cmd.CommandText = "SELECT to_regclass('schema_versions') IS NOT NULL";
            return cmd.ExecuteScalar() is true ? null : $"the PostgreSQL database {db.DisplayName} holds no Warden schema";
        }
        catch (StorageException ex) when (ex.InnerException is DbException { SqlState: "3D000" })
        {
            return $"the PostgreSQL database {db.DisplayName} does not exist (CREATE DATABASE it first)";
        }
    }
}
