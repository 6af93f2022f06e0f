using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;

namespace Warden.Cli.Tests.Backfill;

/// <summary>`warden worker` processes for the kill tests, their JSON lines collected, and a polling wait.</summary>
internal static class Workers
{
    public static Process Start(string name, string db, string url, string queue, int delayMs, ConcurrentQueue<(string, JsonElement)> lines, int? exitWhenIdle)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "warden.dll"));
        foreach (var arg in new[] { "worker", "--db", db, "--nats", url, "--queue", queue, "--name", name, "--lease-seconds", "2", "--max-deliver", "20", "--item-delay-ms", delayMs.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(arg);
        }

        if (exitWhenIdle is { } idle)
        {
            info.ArgumentList.Add("--exit-when-idle");
            info.ArgumentList.Add(idle.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var p = new Process { StartInfo = info };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line && line.StartsWith('{'))
            {
                lines.Enqueue((name, JsonDocument.Parse(line).RootElement.Clone()));
            }
        };
        p.ErrorDataReceived += (_, _) => { };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    public static T WaitFor<T>(Func<T?> probe, int seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (probe() is { } value && !value.Equals(default(T)))
            {
                return value;
            }

            Thread.Sleep(50);
        }

        throw new TimeoutException("The condition was not met in time.");
    }
}
