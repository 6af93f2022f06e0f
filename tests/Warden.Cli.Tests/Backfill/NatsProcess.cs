using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Warden.Cli.Tests.Backfill;

/// <summary>
/// A throwaway <c>nats-server -js</c> on a free loopback port with its store in a given folder, which a test can
/// stop (SIGTERM: JetStream flushes its store) and start again on the same port and store.
/// </summary>
internal sealed class NatsProcess : IDisposable
{
    private readonly string _store;
    private Process? _process;

    private NatsProcess(string store, int port)
    {
        _store = store;
        Port = port;
    }

    /// <summary>The nats-server binary ($WARDEN_NATS_SERVER, else nats-server on PATH), or null.</summary>
    public static string? Binary =>
        Environment.GetEnvironmentVariable("WARDEN_NATS_SERVER") is { Length: > 0 } b && File.Exists(b) ? b
        : (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Select(d => Path.Combine(d, "nats-server")).FirstOrDefault(File.Exists);

    /// <summary>Why NATS tests cannot run here, or null.</summary>
    public static string? Missing => Binary is null ? "the backfill tests need nats-server (Debian package nats-server; scripts/test installs and starts it)" : null;

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public static NatsProcess Start(string store)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var nats = new NatsProcess(store, port);
        nats.Start();
        return nats;
    }

    public void Start()
    {
        var info = new ProcessStartInfo(Binary!) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-js", "-a", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", _store })
        {
            info.ArgumentList.Add(a);
        }

        var ready = new TaskCompletionSource();
        _process = new Process { StartInfo = info };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("Server is ready", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        _process.OutputDataReceived += (_, _) => { };
        _process.Start();
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        if (!ready.Task.Wait(TimeSpan.FromSeconds(15)))
        {
            throw new InvalidOperationException($"nats-server did not become ready on port {Port}.");
        }
    }

    /// <summary>Graceful stop (SIGTERM), waiting for the exit.</summary>
    public void Stop()
    {
        if (_process is { HasExited: false } p)
        {
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                kill.WaitForExit();
            }

            if (!p.WaitForExit(15_000))
            {
                p.Kill();
            }
        }

        _process?.Dispose();
        _process = null;
    }

    public void Restart()
    {
        Stop();
        Start();
    }

    public void Dispose() => Stop();
}
