using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Warden.Server.Tests;

/// <summary>
/// <c>warden serve</c> as a separate process (so it can be killed with SIGKILL and run twice on one
/// database), on a free 127.0.0.1 port.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    /// <summary>http://127.0.0.1:PORT/.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The process id (a report lease's owner names it).</summary>
    public int ProcessId => _process.Id;

    /// <summary>What the process printed (for failure messages).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>A free loopback port.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the server and waits until /readyz answers 200.</summary>
    public static async Task<ServerProcess> StartAsync(string database, int? port = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var p = port ?? FreePort();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "warden.dll"));
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add("--create"); // a fresh test database: serve refuses a missing one without it
        info.ArgumentList.Add("--db");
        info.ArgumentList.Add(database);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://127.0.0.1:{p}");
        info.Environment["Warden__IndexPollMilliseconds"] = "200";
        info.Environment["Warden__WebhookPollMilliseconds"] = "200";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start warden serve");
        var server = new ServerProcess(process, new Uri($"http://127.0.0.1:{p}/"));
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"warden serve exited with {process.ExitCode}:\n{server.Log}");
            }

            try
            {
                if ((await client.GetAsync("readyz")).IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(100);
        }

        server.Dispose();
        throw new TimeoutException($"warden serve did not become ready:\n{server.Log}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    /// <summary>A client with a key.</summary>
    public HttpClient Client(string key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void KillHard()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        KillHard();
        _process.Dispose();
    }
}
