using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.OpenApi;
using Prometheus;
using Scalar.AspNetCore;
using Warden.Server.Actions;
using Warden.Server.Api;
using Warden.Server.Auth;
using Warden.Server.Data;
using Warden.Server.Exchanges;
using Warden.Server.Index;
using Warden.Server.Review;
using Warden.Storage;

namespace Warden.Server;

/// <summary>Builds the <c>warden serve</c> web application.</summary>
public static class WardenServer
{
    /// <summary>
    /// Builds the app: configuration from appsettings.json / environment (<c>Warden__…</c>) / args, then
    /// <paramref name="configure"/> (command-line flags) on top. Opens and migrates the database.
    /// </summary>
    public static WebApplication Build(string[] args, Action<ServerOptions>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var options = new ServerOptions();
        builder.Configuration.GetSection("Warden").Bind(options);
        configure?.Invoke(options);

        // Before the server's threads start: each thread that decodes would otherwise bind its own malloc arena, and
        // glibc's dynamic mmap threshold would move decode buffers into the arenas after the first one is freed.
        NativeHeap.Configure(options);
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (options.MinThreads > workers)
        {
            ThreadPool.SetMinThreads(options.MinThreads, io);
        }

        // Requests are not logged line by line: query strings carry hashes and uploader ids.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http.HttpClient", LogLevel.Warning);
        builder.Logging.AddFilter("Warden.Server.Auth", LogLevel.Warning);
        builder.WebHost.UseSockets(o => o.WaitForDataBeforeAllocatingBuffer = options.SocketWaitForData);
        if (options.ReceiveBlockBytes > 0)
        {
            // Registered after Kestrel's default factory, so this one is what the transport resolves.
            builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>>(new ReceiveBlockPoolFactory(Math.Clamp(options.ReceiveBlockBytes, 4096, 1 << 20)));
        }

        ServerMetrics.LimitMeters();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxUploadBytes + (64 * 1024);
            k.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            k.AddServerHeader = false;
        });

        // The HMA-compatibility listener adds its own addresses beside --urls (off unless HmaUrls is set).
        var hma = HmaListener.From(options, builder.Configuration["urls"]);
        if (hma is not null)
        {
            builder.WebHost.UseUrls([.. (builder.Configuration["urls"] ?? "http://localhost:5000").Split(';', StringSplitOptions.RemoveEmptyEntries), .. hma.Urls]);
        }

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(options.SignalTypes);
        if (hma is not null)
        {
            services.AddSingleton(hma);
        }

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(_ => WardenDatabase.Open(options.Database));
        services.AddSingleton(sp => BankStore.Open(sp.GetRequiredService<WardenDatabase>()));
        services.AddSingleton(sp =>
        {
            var store = new ServerStore(sp.GetRequiredService<WardenDatabase>());
            store.Migrate();
            return store;
        });
        services.AddSingleton<LiveIndex>();
        services.AddHostedService(sp => sp.GetRequiredService<LiveIndex>());
        services.AddSingleton<ModelIndex>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelIndex>());
        services.AddSingleton<FloodControl>();
        services.AddSingleton<MatchActions>();
        services.AddSingleton<MatchService>();
        if (options.SignalLog)
        {
            services.AddSingleton(sp =>
            {
                var banks = sp.GetRequiredService<BankStore>();
                return new Storage.SignalLog(sp.GetRequiredService<WardenDatabase>(), banks.CacheDirectory("signal-log"), options.SignalLogRetentionDays);
            });
            services.AddSingleton<SignalLog.IUploadRecorder, SignalLog.SignalLogRecorder>();
            services.AddSingleton<SignalLog.RetroactiveService>();
            services.AddHostedService(sp => sp.GetRequiredService<SignalLog.RetroactiveService>());
        }

        services.AddHostedService<NativeHeap>();
        services.AddSingleton<ApiKeyCache>();
        services.AddSingleton<UrlFetcher>();
        services.AddHostedService<WebhookDeliverer>();
        services.AddHttpClient(WebhookDeliverer.ClientName).ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
        services.AddHttpClient(UrlFetcher.ClientName).ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false });
        services.AddReviewConsole();
        services.AddExchanges(builder.Configuration);
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DictionaryKeyPolicy = null;
            o.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping; // JSON API, never embedded in HTML
        });

        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Roles.Submit, p => p.RequireRole(Roles.Admitted(Roles.Submit).Select(Roles.Name)))
            .AddPolicy(Roles.Curate, p => p.RequireRole(Roles.Admitted(Roles.Curate).Select(Roles.Name)))
            .AddPolicy(Roles.Review, p => p.RequireRole(Roles.Admitted(Roles.Review).Select(Roles.Name)))
            .AddPolicy(Roles.Administer, p => p.RequireRole(Roles.Admitted(Roles.Administer).Select(Roles.Name)));

        services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                // Per key; unauthenticated requests share one bucket per client address.
                var key = context.User.FindFirst(ClaimTypes.NameIdentifier)?.Value is { } id ? "key:" + id : "ip:" + context.Connection.RemoteIpAddress;
                return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = Math.Max(1, options.RateLimitPerSecond * 2),
                    TokensPerPeriod = Math.Max(1, options.RateLimitPerSecond),
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            o.OnRejected = (context, _) =>
            {
                context.HttpContext.Response.Headers.RetryAfter = "1";
                return new ValueTask(Problems.WriteAsync(context.HttpContext, 429, ErrorCodes.RateLimited, $"This key is limited to {options.RateLimitPerSecond} requests per second."));
            };
        });
        services.AddRequestTimeouts(o => o.DefaultPolicy = new RequestTimeoutPolicy
        {
            Timeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds),
            WriteTimeoutResponse = context => Problems.WriteAsync(context, 504, ErrorCodes.Timeout, $"The request took longer than {options.RequestTimeoutSeconds} s."),
        });

        services.AddOpenApi("v1", o =>
        {
            OpenApiDocs.Configure(o);
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Warden API",
                    Version = "v1",
                    License = new OpenApiLicense { Name = "MIT", Identifier = "MIT" },
                    Description = "Hash, match and act on uploads for child-safety work. Every endpoint but health needs an API key: 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'. Errors are application/problem+json with a stable 'code'. See docs/api.md.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme { Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "A Warden API key (wdn_…)." };
                document.Security ??= [];
                document.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] });
                return Task.CompletedTask;
            });
        });

        var app = builder.Build();

        // Code below the endpoints (list readers, normalisation) asks SignalTypeRegistry.Current and ListFormatRegistry.Current: this server's.
        app.Use((context, next) =>
        {
            // Already current (the built-ins, unless a host plugs in its own): no AsyncLocal writes on every request.
            if (ReferenceEquals(Warden.Core.Signals.SignalTypeRegistry.Current, options.SignalTypes) && ReferenceEquals(Warden.Core.Banks.Formats.ListFormatRegistry.Current, options.ListFormats))
            {
                return next(context);
            }

            return WithRegistriesAsync(context, next, options);
        });

        if (hma is not null)
        {
            hma.Use(app);
            app.UseRouting(); // after the listener's path clean-up, so "//c/banks" routes as "/c/banks"
        }

        app.UseExceptionHandler();
        app.UseStatusCodePages(context => context.HttpContext.Response.ContentLength is null && !context.HttpContext.Response.HasStarted
            ? Problems.WriteAsync(context.HttpContext, context.HttpContext.Response.StatusCode, context.HttpContext.Response.StatusCode switch
            {
                404 => ErrorCodes.NotFound,
                405 => ErrorCodes.InvalidRequest,
                415 => ErrorCodes.UnsupportedMediaType,
                _ => ErrorCodes.InvalidRequest,
            }, context.HttpContext.Response.StatusCode switch
            {
                404 => "No such endpoint; see /docs for the API.",
                405 => "This endpoint does not take that method.",
                _ => "The request was not accepted.",
            })
            : Task.CompletedTask);
        app.UseHttpMetrics();
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseRequestTimeouts();
        app.UseAuthorization();

        var docs = app.MapOpenApi("/openapi/{documentName}.json");
        // Offline and quiet: the page is served with its script bundled, no web fonts, no telemetry, and none of
        // the vendor's AI, MCP or developer-tools (share/deploy) buttons.
        var reference = app.MapScalarApiReference("/docs", o =>
        {
            o.WithTitle("Warden API").WithOpenApiRoutePattern("/openapi/{documentName}.json").DisableDefaultFonts().DisableAgent().DisableMcp();
            o.ShowDeveloperTools = DeveloperToolsVisibility.Never;
            o.Telemetry = false;
            o.HideClientButton = true;
        });
        if (!options.PublicDocs)
        {
            docs.RequireAuthorization(Roles.Administer);
            reference.RequireAuthorization(Roles.Administer);
        }

        app.MapGet("/healthz", () => Results.Text("ok")).AllowAnonymous().WithTags("Health").WithSummary("Liveness: the process is up");
        app.MapGet("/readyz", (LiveIndex index) =>
        {
            var state = index.Current;
            var body = new
            {
                ready = index.IsReady,
                index_entries = state?.Matcher.Count ?? 0,
                sequence = index.Sequence,
                last_poll = index.LastPoll,
            };
            return index.IsReady ? Results.Json(body) : Results.Json(body, statusCode: 503);
        }).AllowAnonymous().WithTags("Health").WithSummary("Readiness: the index is built and current");
        app.MapMetrics("/metrics").RequireAuthorization(Roles.Administer);

        HashingEndpoints.Map(app);
        CurationEndpoints.Map(app);
        AdminEndpoints.Map(app);
        HmaEndpoints.Map(app);
        ModelEndpoints.Map(app);
        ExchangeEndpoints.Map(app);
        app.MapReviewConsole();

        // Touch the stores now so a bad database fails at start with a clear message, not on the first request.
        app.Services.GetRequiredService<BankStore>();
        app.Services.GetRequiredService<ServerStore>();
        return app;
    }

    private static async Task WithRegistriesAsync(HttpContext context, RequestDelegate next, ServerOptions options)
    {
        using (Warden.Core.Signals.SignalTypeRegistry.Use(options.SignalTypes))
        using (Warden.Core.Banks.Formats.ListFormatRegistry.Use(options.ListFormats))
        {
            await next(context).ConfigureAwait(false);
        }
    }

    /// <summary>For tests: the options the app runs with.</summary>
    public static ServerOptions Options(this WebApplication app) => app.Services.GetRequiredService<ServerOptions>();

    internal static string Invariant(this long value) => value.ToString(CultureInfo.InvariantCulture);
}
