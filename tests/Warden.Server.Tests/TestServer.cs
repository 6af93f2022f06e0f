using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Storage;
using Warden.Storage.Tests;

namespace Warden.Server.Tests;

/// <summary>
/// A real <c>warden serve</c> app on 127.0.0.1 (Kestrel on a free port) over a fresh database of either
/// dialect, with one API key per role.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly TestDatabase? _db;
    private readonly string _target;
    private readonly Dictionary<Role, string> _keys = [];

    private TestServer(TestDatabase? db, string target, WebApplication app, Uri baseAddress)
    {
        _db = db;
        _target = target;
        App = app;
        BaseAddress = baseAddress;
    }

    /// <summary>The app.</summary>
    public WebApplication App { get; }

    /// <summary>http://127.0.0.1:PORT/.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The database target (file or connection string).</summary>
    public string Database => _target;

    /// <summary>Starts a server over a new database.</summary>
    public static async Task<TestServer> StartAsync(SqlDialect dialect, Action<ServerOptions>? configure = null) =>
        await StartAsync(await TestDatabases.CreateAsync(dialect), null, configure);

    /// <summary>Starts a server over an existing database (left in place on dispose).</summary>
    public static Task<TestServer> StartAsync(string database, Action<ServerOptions>? configure = null) =>
        StartAsync(null, database, configure);

    private static async Task<TestServer> StartAsync(TestDatabase? db, string? target, Action<ServerOptions>? configure)
    {
        var database = target ?? db!.Target;
        try
        {
            var app = WardenServer.Build(["--urls", "http://127.0.0.1:0"], o =>
            {
                o.Database = database;
                o.IndexPollMilliseconds = 100;
                o.WebhookPollMilliseconds = 100;
                configure?.Invoke(o);
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var server = new TestServer(db, database, app, new Uri(address.TrimEnd('/') + "/"));
            var store = app.Services.GetRequiredService<ServerStore>();
            foreach (var role in Enum.GetValues<Role>())
            {
                server._keys[role] = store.CreateKey("test-" + Roles.Name(role), role).Key;
            }

            await server.WaitReadyAsync();
            return server;
        }
        catch
        {
            if (db is not null)
            {
                await db.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>The key of a role.</summary>
    public string Key(Role role) => _keys[role];

    /// <summary>A client sending <paramref name="role"/>'s key (none when null).</summary>
    public HttpClient Client(Role? role = Role.Admin)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (role is { } r)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _keys[r]);
        }

        return client;
    }

    /// <summary>Waits until /readyz answers 200.</summary>
    public async Task WaitReadyAsync()
    {
        using var client = Client(null);
        for (var i = 0; i < 200; i++)
        {
            if ((await client.GetAsync("readyz")).IsSuccessStatusCode)
            {
                return;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("The server did not become ready.");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }
}
