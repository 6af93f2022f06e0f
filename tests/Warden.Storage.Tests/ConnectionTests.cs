using Dapper;

namespace Warden.Storage.Tests;

/// <summary>Which string means which database, and clear refusals for the ones that do not work.</summary>
public sealed class ConnectionTests(PostgresDatabaseFixture shared) : IClassFixture<PostgresDatabaseFixture>
{
    [Theory]
    [InlineData("warden.db", false)]
    [InlineData("/var/lib/warden/warden.db", false)]
    [InlineData("dir=odd/warden.db", false)]
    [InlineData("postgres://warden@db.internal/warden", true)]
    [InlineData("  PostgreSQL://warden@db.internal:6543/warden", true)]
    [InlineData("Host=127.0.0.1;Database=warden;Username=warden", true)]
    [InlineData("Username=warden; host = db ;Database=warden", true)]
    [InlineData("Server=db;Database=warden", true)]
    public void Targets_are_told_apart(string target, bool postgres) => Assert.Equal(postgres, WardenDatabase.IsPostgres(target));

    [Fact]
    public void Uris_become_connection_strings()
    {
        var b = PostgresUri.Parse("postgresql://al%40ice:p%3Ass@db.internal:6543/war%20den?sslmode=require&application_name=node-1");
        Assert.Equal(("al@ice", "p:ss", "db.internal", 6543, "war den", "node-1"), (b.Username, b.Password, b.Host, b.Port, b.Database, b.ApplicationName));
        Assert.Equal(Npgsql.SslMode.Require, b.SslMode);

        var socket = PostgresUri.Parse("postgres:///warden?host=/run/postgresql");
        Assert.Equal(("/run/postgresql", "warden"), (socket.Host, socket.Database));

        var v6 = PostgresUri.Parse("postgres://u@[::1]:5433/db");
        Assert.Equal(("::1", 5433), (v6.Host, v6.Port));
    }

    [Theory]
    [InlineData("postgres://u:hunter2@db:notaport/warden")]
    [InlineData("postgres://db:hunter2")]
    [InlineData("postgres://u@db/warden?port=hunter2")]
    [InlineData("postgres://u:hunter2@db/warden?no_such_option=1")]
    [InlineData("Host=db;Password=hunter2;No Such Keyword=1")]
    [InlineData("Server=;Password=hunter2")]
    public void Malformed_connection_strings_are_invalid_and_never_echo_the_password(string target)
    {
        var ex = Assert.Throws<StorageException>(() => WardenDatabase.Open(target).Dispose());
        Assert.Equal(StorageError.Invalid, ex.Error);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreachable_server_is_unavailable_with_the_reason()
    {
        // Port 1 on loopback: nothing listens, so the connection is refused at once.
        using var db = WardenDatabase.Open("Host=127.0.0.1;Port=1;Username=warden;Password=hunter2;Database=warden;Timeout=5");
        Assert.Equal("postgres://warden@127.0.0.1:1/warden", db.DisplayName);
        var ex = Assert.Throws<StorageException>(() => BankStore.Open(db));
        Assert.Equal(StorageError.Unavailable, ex.Error);
        Assert.StartsWith("Cannot reach PostgreSQL at postgres://warden@127.0.0.1:1/warden: ", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_missing_database_is_named_as_such()
    {
        var missing = new Npgsql.NpgsqlConnectionStringBuilder(shared.Target) { Database = "warden_no_such_db" }.ConnectionString;
        var ex = Assert.Throws<StorageException>(() => BankStore.Open(missing));
        Assert.Equal(StorageError.Unavailable, ex.Error);
        Assert.Contains("the database does not exist", ex.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_class_database_is_a_working_postgres_database()
    {
        using var store = BankStore.Open(shared.Target);
        Assert.Equal(SqlDialect.Postgres, store.Database.Dialect);
        Assert.StartsWith("postgres://", store.Path, StringComparison.Ordinal);
        Assert.Contains("/warden_test_", store.Path, StringComparison.Ordinal);
    }

    [Fact]
    public void A_database_path_under_a_file_is_unavailable()
    {
        using var target = TestDatabases.CreateSqlite();
        File.WriteAllText(target.Target, string.Empty);
        var ex = Assert.Throws<StorageException>(() => BankStore.Open(Path.Combine(target.Target, "sub", "x.db")));
        Assert.Equal(StorageError.Unavailable, ex.Error);
    }

    [SkippableTheory]
    [MemberData(nameof(TestDatabases.Dialects), MemberType = typeof(TestDatabases))]
    public async Task One_store_serves_many_threads(SqlDialect dialect)
    {
        await using var target = await TestDatabases.CreateAsync(dialect);
        using var store = BankStore.Open(target.Target);
        var seq = store.ChangeSequence();
        await Parallel.ForEachAsync(Enumerable.Range(0, 40), async (i, _) =>
        {
            store.CreateBank($"b{i}");
            using var c = store.Database.OpenConnection();
            Assert.True(await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM banks") >= 1);
        });
        Assert.Equal(40, store.ListBanks().Count);
        Assert.Equal(seq + 40, store.ChangeSequence());
    }
}
