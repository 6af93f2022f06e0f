using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Warden.Storage.Tests;

/// <summary>
/// Fresh, empty databases for tests, on either backend. PostgreSQL ones are made on the server named by
/// <c>WARDEN_TEST_POSTGRES</c> (an Npgsql connection string; scripts/test and scripts/with-postgres start a
/// throwaway server and set it) as <c>CREATE DATABASE warden_test_RANDOM</c>, dropped on dispose. Where the
/// variable is unset, <see cref="CreatePostgresAsync"/> skips the test (Xunit.SkippableFact: use
/// [SkippableFact]/[SkippableTheory]) saying so.
/// <code>
/// await using var db = await TestDatabases.CreateAsync(dialect);
/// using var store = BankStore.Open(db.Target);      // or WardenDatabase.Open(db.Target)
/// </code>
/// Other test projects link this file (Compile Include="../Warden.Storage.Tests/TestDatabases.cs"). For one
/// database per test class instead of per test, use <see cref="PostgresDatabaseFixture"/>.
/// </summary>
public static class TestDatabases
{
    /// <summary>The environment variable that names the test PostgreSQL server.</summary>
    public const string PostgresVariable = "WARDEN_TEST_POSTGRES";

    /// <summary>The test server's connection string, or null.</summary>
    public static string? PostgresServer => Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } s ? s : null;

    /// <summary>Both backends, for [MemberData] theories.</summary>
    public static TheoryData<SqlDialect> Dialects => new() { SqlDialect.Sqlite, SqlDialect.Postgres };

    /// <summary>A fresh database of <paramref name="dialect"/>.</summary>
    public static Task<TestDatabase> CreateAsync(SqlDialect dialect) =>
        dialect == SqlDialect.Sqlite ? Task.FromResult(CreateSqlite()) : CreatePostgresAsync();

    /// <summary>A SQLite file in a new temp folder (deleted on dispose).</summary>
    public static TestDatabase CreateSqlite()
    {
        var dir = Directory.CreateTempSubdirectory("warden-store-").FullName;
        return new TestDatabase(SqlDialect.Sqlite, Path.Combine(dir, "warden.db"), dir, null);
    }

    /// <summary>A new database on the test PostgreSQL server (dropped on dispose); skips the test when there is none.</summary>
    public static async Task<TestDatabase> CreatePostgresAsync()
    {
        var server = PostgresServer;
        Skip.If(server is null, $"PostgreSQL tests need a server: set {PostgresVariable} to an Npgsql connection string (scripts/test starts one).");
        var name = "warden_test_" + Guid.NewGuid().ToString("N")[..16];
        var admin = new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false }.ConnectionString;
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
            await cmd.ExecuteNonQueryAsync();
        }

        var target = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        return new TestDatabase(SqlDialect.Postgres, target, null, admin);
    }
}

/// <summary>A throwaway database: <see cref="Target"/> is what <see cref="WardenDatabase.Open"/> takes.</summary>
public sealed class TestDatabase : IAsyncDisposable, IDisposable
{
    private readonly string? _dir;
    private readonly string? _admin;

    internal TestDatabase(SqlDialect dialect, string target, string? dir, string? admin)
    {
        Dialect = dialect;
        Target = target;
        _dir = dir;
        _admin = admin;
    }

    /// <summary>SQLite or PostgreSQL.</summary>
    public SqlDialect Dialect { get; }

    /// <summary>The SQLite file path or the PostgreSQL connection string.</summary>
    public string Target { get; }

    /// <inheritdoc />
    public override string ToString() => Dialect.ToString();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_admin is not null)
        {
            var name = new NpgsqlConnectionStringBuilder(Target).Database;
            await using var c = new NpgsqlConnection(_admin);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand(string.Create(CultureInfo.InvariantCulture, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)"), c);
            await cmd.ExecuteNonQueryAsync();
        }
        else
        {
            Dispose();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_dir is not null)
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(_dir, recursive: true);
        }
        else if (_admin is not null)
        {
            DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}

/// <summary>
/// One fresh PostgreSQL database for a whole test class (<c>IClassFixture&lt;PostgresDatabaseFixture&gt;</c>),
/// dropped after the class. Reading <see cref="Target"/> skips the test when no test server is configured.
/// </summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    private TestDatabase? _database;

    /// <summary>The database's connection string; skips the calling test when there is no test server.</summary>
    public string Target
    {
        get
        {
            Skip.If(_database is null, $"PostgreSQL tests need a server: set {TestDatabases.PostgresVariable} to an Npgsql connection string (scripts/test starts one).");
            return _database!.Target;
        }
    }

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        if (TestDatabases.PostgresServer is not null)
        {
            _database = await TestDatabases.CreatePostgresAsync();
        }
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
